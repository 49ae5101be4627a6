"""Query counts of every endpoint that answers a GeoJSON FeatureCollection.

Each endpoint is read, as a user who may see it, over a world built at two sizes (1 and
3): ``2·size`` regions of two districts with two neighborhoods each, three incidents of
different categories and sources per district, ``2·size`` public spaces per district
with their recovery projects, photos and activities, and a hotspot run whose cells and
zones grow with the size. Every endpoint must take exactly the same number of queries at
both sizes, so a query per feature (an N+1) fails at size 3 even when size 1 is right;
each test also checks that the features did grow with the world, so an endpoint that
silently returned nothing could not pass.

The counts include the session and user loads, the role checks and the look-ups of the
filters; see ENDPOINTS for each one's breakdown. A warm-up request comes first, as on a
running server: the counts are the same without it today, but a process-wide cache added
later would otherwise make them depend on which test ran first.

The data is written through the models (and incidents.tests.factories), not the
services, so that moving service functions between modules does not touch this file.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.contrib.gis.geos import MultiPolygon, Polygon
from rest_framework.test import APIClient

from accounts.models import Role, StaffProfile
from geo.conf import STORAGE_SRID
from hotspots.models import HotspotCell, HotspotRun, HotspotZone
from incidents.models import Incident
from incidents.tests.factories import build_incident, make_region, make_source, make_user
from neighborhoods.models import District, Neighborhood
from publicspaces.models import (
    Activity,
    Condition,
    ProjectPhoto,
    ProjectStatus,
    PublicSpace,
    RecoveryProject,
    SpaceKind,
)

pytestmark = pytest.mark.django_db

SIZES = (1, 3)
REGION_WIDTH = 0.04  # degrees; a region is two districts side by side, 0.02° × 0.04° each
DISTRICT_WIDTH = REGION_WIDTH / 2
CATEGORIES = ("assault", "burglary", "graffiti")
RECOVERED_ON = dt.date(2025, 6, 1)


def _box(x0: float, y0: float, x1: float, y1: float) -> MultiPolygon:
    return MultiPolygon(_polygon(x0, y0, x1, y1), srid=STORAGE_SRID)


def _polygon(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    polygon = Polygon.from_bbox((x0, y0, x1, y1))
    polygon.srid = STORAGE_SRID
    return polygon


def _square(lon: float, lat: float, half: float = 0.0002) -> Polygon:
    return _polygon(lon - half, lat - half, lon + half, lat + half)


@dataclass
class World:
    """What was built, and how many features each endpoint should return."""

    size: int
    regions: list = field(default_factory=list)
    districts: list = field(default_factory=list)
    neighborhoods: int = 0
    incidents: int = 0
    spaces: int = 0
    public_spaces: int = 0
    recovered_spaces: int = 0
    run: HotspotRun | None = None
    gistar_cells: int = 0
    emerging_cells: int = 0
    kde_cells: int = 0
    forecast_cells: int = 0
    zones: int = 0

    @property
    def municipal_district(self) -> District:
        return self.districts[0]

    def spaces_in(self, district: District) -> int:
        return PublicSpace.objects.filter(district=district).count()


def _add_spaces(world: World, district: District, x0: float, y0: float, user) -> None:
    """``2 × size`` spaces in the district: even ones recovered (a finished project, two
    published photos, two activities), odd ones degraded with a planned project, a
    working photo and an activity."""
    for k in range(2 * world.size):
        lon, lat = x0 + 0.001 * (k + 1), y0 + 0.004
        recovered = k % 2 == 0
        space = PublicSpace.objects.create(
            name=f"Espacio {district.code}-{k}",
            kind=SpaceKind.PARK if recovered else SpaceKind.PLAZA,
            geom=_square(lon, lat),
            address=f"Calle {k}",
            region=district.region,
            district=district,
            neighborhood=Neighborhood.objects.filter(district=district).first(),
            condition=Condition.RECOVERED if recovered else Condition.DEGRADED,
            condition_score=70 if recovered else 20,
            recovered_on=RECOVERED_ON if recovered else None,
            created_by=user,
        )
        dates = {"identified_on": dt.date(2025, 1, 10), "planned_on": dt.date(2025, 2, 1)}
        if recovered:
            dates |= {"works_started_on": dt.date(2025, 3, 1), "recovered_on": RECOVERED_ON}
        project = RecoveryProject.objects.create(
            space=space,
            title=f"Obra {space.name}",
            status=ProjectStatus.RECOVERED if recovered else ProjectStatus.PLANNED,
            created_by=user,
            **dates,
        )
        stages = ("before", "after") if recovered else ("before",)
        ProjectPhoto.objects.bulk_create(
            ProjectPhoto(
                project=project,
                stage=stage,
                image=f"publicspaces/photos/qa-{space.pk}-{stage}.jpg",
                width=64,
                height=48,
            )
            for stage in stages
        )
        Activity.objects.bulk_create(
            Activity(
                space=space,
                project=project,
                date=dt.date(2025, 7, 1 + n),
                kind=Activity.Kind.CULTURAL,
                participants=10 * (n + 1),
            )
            for n in range(2 if recovered else 1)
        )
        world.spaces += 1
        world.public_spaces += recovered
        world.recovered_spaces += recovered


def _add_run(world: World, region, owner) -> None:
    """A succeeded run over the first region: a 4 × 3·size grid of cells with every
    layer's values, and 2·size zones (one per one and a half columns of cells) holding
    the hot cells."""
    x0, y0 = region.geom.extent[:2]
    run = HotspotRun.objects.create(
        region=region,
        date_from=dt.date(2025, 1, 1),
        date_to=dt.date(2025, 6, 30),
        method=HotspotRun.Method.EMERGING,
        params={"grid": "square", "cell_size_m": 200, "steps": ["2025-01-01", "2025-04-01"]},
        metric_srid=region.metric_srid,
        area_geom=region.geom,
        area_m2=1.0e7,
        status=HotspotRun.Status.SUCCEEDED,
        progress=1.0,
        summary={"incidents": world.incidents, "cells": 12 * world.size},
        created_by=owner,
    )
    run.districts.set([d for d in world.districts if d.region_id == region.pk])
    columns = 3 * world.size
    zones = [
        HotspotZone.objects.create(
            run=run,
            rank=rank + 1,
            geom=_box(x0 + 0.003 * rank, y0, x0 + 0.003 * (rank + 1), y0 + 0.008),
            cell_count=4,
            incident_count=20 - rank,
            area_m2=160000.0,
            density_per_km2=125.0,
            share=0.1,
            top_categories=[{"code": "assault", "count": 12}, {"code": "burglary", "count": 8}],
        )
        for rank in range(2 * world.size)
    ]
    bins = (3, 2, 1, 0, -1, -2)
    emerging = (1, 2, 3, 0, -1, 4)
    cells = []
    for i in range(4):
        for j in range(columns):
            n = i * columns + j
            hot = bins[n % len(bins)] > 0
            cells.append(
                HotspotCell(
                    run=run,
                    i=i,
                    j=j,
                    geom=_polygon(
                        x0 + 0.002 * j, y0 + 0.002 * i, x0 + 0.002 * (j + 1), y0 + 0.002 * (i + 1)
                    ),
                    count=n % 7,
                    gi_z=bins[n % len(bins)] * 1.1,
                    gi_p=0.01,
                    gi_bin=bins[n % len(bins)],
                    density=float(n),
                    score=float(n),
                    emerging=emerging[n % len(emerging)],
                    trend_tau=0.5,
                    trend_p=0.05,
                    step_counts=[n % 3, n % 5],
                    step_bins=[0, 0] if emerging[n % len(emerging)] == 0 else [1, 2],
                    zone=zones[2 * j // 3] if hot else None,
                )
            )
    HotspotCell.objects.bulk_create(cells)
    world.run = run
    world.gistar_cells = len(cells)
    world.kde_cells = len(cells)
    world.forecast_cells = sum(1 for c in cells if c.zone is not None)
    world.emerging_cells = sum(1 for c in cells if c.emerging != 0)
    world.zones = len(zones)


def build_world(size: int, owner) -> World:
    """``2·size`` regions of two districts (two neighborhoods each); per district three
    incidents of different categories and sources and ``2·size`` public spaces; a
    hotspot run over the first region."""
    world = World(size=size)
    sources = [make_source("qa-one"), make_source("qa-two")]
    incidents = []
    for r in range(2 * size):
        x0, y0 = -77.30 + 0.05 * r, -12.20
        region = make_region(f"qa-region-{r}", lon=x0, lat=y0)
        region.time_zone = "America/Lima"
        region.geom = _box(x0, y0, x0 + REGION_WIDTH, y0 + 0.04)
        region.save()
        world.regions.append(region)
        for d in range(2):
            dx0 = x0 + DISTRICT_WIDTH * d
            district = District.objects.create(
                region=region,
                code=f"D{r}{d}",
                name=f"Distrito {r}-{d}",
                population=1000 * (d + 1),
                geom=_box(dx0, y0, dx0 + DISTRICT_WIDTH, y0 + 0.04),
            )
            world.districts.append(district)
            for h in range(2):
                Neighborhood.objects.create(
                    region=region,
                    district=district,
                    code=f"N{r}{d}{h}",
                    name=f"Barrio {r}-{d}-{h}",
                    geom=_box(dx0, y0 + 0.02 * h, dx0 + DISTRICT_WIDTH, y0 + 0.02 * (h + 1)),
                )
                world.neighborhoods += 1
            hood = Neighborhood.objects.get(code=f"N{r}{d}0")
            for k, category in enumerate(CATEGORIES):
                # Next to the spaces (within the incident-change layer's 200 m), before and
                # after their recovery; each at its own point, so one cluster each.
                incidents.append(
                    build_incident(
                        dx0 + 0.001 * (k + 1),
                        y0 + 0.0045,
                        category=category,
                        when=dt.datetime(2025, 3 + 2 * k, 10, 12, tzinfo=dt.UTC),
                        source=sources[k % 2],
                        region=region,
                        district=district,
                        neighborhood=hood,
                    )
                )
            _add_spaces(world, district, dx0, y0, owner)
    Incident.objects.bulk_create(incidents)
    world.incidents = len(incidents)
    _add_run(world, world.regions[0], owner)
    return world


# --- clients ---------------------------------------------------------------------------


@pytest.fixture
def login(django_user_model):
    def client_for(who: str, world: World) -> APIClient:
        client = APIClient()
        if who == "anonymous":
            return client
        user = make_user(django_user_model, who, username=f"qa-{who}")
        if who == Role.MUNICIPAL:
            StaffProfile.objects.create(user=user, district=world.municipal_district)
        client.force_login(user)
        return client

    return client_for


@pytest.fixture(params=SIZES, ids=lambda size: f"size{size}")
def world(request, django_user_model) -> World:
    owner = make_user(django_user_model, "program", username="qa-owner")
    return build_world(request.param, owner)


# --- endpoints ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    name: str
    who: str
    queries: int
    features: Callable[[World], int]  # the features the world should give
    params: dict = field(default_factory=dict)

    def url(self, world: World) -> str:
        run = world.run.pk if world.run else 0
        return self.name.format(run=run)


# Queries, as counted: "auth" is the session and the user, "role" the planner check
# (accounts.roles), "scope" the groups (+ the StaffProfile for municipal staff) read by
# publicspaces.scope.scope_for; "features" the one streamed query.
ENDPOINTS = [
    # Boundaries, for the public map: features only (no session cookie, no auth query).
    Endpoint("/api/v1/regions/geojson/", "anonymous", 1, lambda w: len(w.regions), {"zoom": 12}),
    Endpoint("/api/v1/districts/", "anonymous", 1, lambda w: len(w.districts)),
    Endpoint("/api/v1/neighborhoods/", "anonymous", 1, lambda w: w.neighborhoods),
    # Incidents: auth 2 + role 1 (+ category and source look-ups) + features.
    Endpoint(
        "/api/v1/incidents/",
        "planner",
        6,
        # The "qa-one" source's incidents: the first and the third of each district.
        lambda w: 2 * len(w.districts),
        {"category": list(CATEGORIES), "source": "qa-one", "from": "2025-01-01"},
    ),
    Endpoint("/api/v1/incidents/", "planner", 4, lambda w: w.incidents),
    Endpoint("/api/v1/incidents/clusters/", "planner", 4, lambda w: w.incidents, {"zoom": 18}),
    # A run's layers: auth 2 + role 1 + the run + features (+ the run's top density, kde).
    Endpoint("/api/v1/hotspot-runs/{run}/cells/", "planner", 5, lambda w: w.gistar_cells),
    Endpoint("/api/v1/hotspot-runs/{run}/zones/", "planner", 5, lambda w: w.zones),
    Endpoint("/api/v1/hotspot-runs/{run}/emerging/", "planner", 5, lambda w: w.emerging_cells),
    Endpoint("/api/v1/hotspot-runs/{run}/kde/", "planner", 6, lambda w: w.kde_cells),
    # (+ the flagged cells' score range, forecast)
    Endpoint("/api/v1/hotspot-runs/{run}/forecast/", "planner", 6, lambda w: w.forecast_cells),
    # Staff list: auth 2 + scope twice (the permission, then spaces_visible_to) + features.
    Endpoint(
        "/api/v1/public-spaces/",
        Role.MUNICIPAL,
        7,
        lambda w: w.spaces_in(w.municipal_district),
    ),
    Endpoint("/api/v1/public-spaces/", Role.PROGRAM, 5, lambda w: w.spaces),
    Endpoint("/api/v1/public-spaces/", Role.PLANNER, 5, lambda w: w.spaces),
    # The public layer: no authentication at all, photos and counts are subqueries.
    Endpoint("/api/v1/public-spaces/public/", "anonymous", 1, lambda w: w.public_spaces),
    # The planner layer: auth 2 + role 1 + scope 1 + features (counts are subqueries).
    Endpoint(
        "/api/v1/public-spaces/incident-change/",
        Role.PLANNER,
        5,
        lambda w: w.recovered_spaces,
        {"distance": 300, "months": 6},
    ),
]


def _id(endpoint: Endpoint) -> str:
    query = "&".join(sorted(endpoint.params)) if endpoint.params else ""
    return f"{endpoint.name}?{query} as {endpoint.who}"


def _collection(response) -> dict:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return json.loads(body)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_id)
def test_geojson_endpoint_query_count_does_not_grow_with_the_data(
    endpoint, world, login, django_assert_num_queries
):
    client = login(endpoint.who, world)
    url = endpoint.url(world)
    warm = client.get(url, endpoint.params)
    assert warm.status_code == 200, warm.content
    _collection(warm)

    # The body is streamed: its queries run while it is read, inside the block.
    with django_assert_num_queries(endpoint.queries):
        response = client.get(url, endpoint.params)
        data = _collection(response)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/geo+json")
    assert data["type"] == "FeatureCollection"
    expected = endpoint.features(world)
    # At least two features per unit of size: the larger world is really larger.
    assert expected >= 2 * world.size
    assert len(data["features"]) == data["numberReturned"] == expected
    assert data["truncated"] is False


# --- the municipal map page --------------------------------------------------------------


def test_municipal_map_page_embeds_its_district_outline_in_constant_queries(
    world, login, django_assert_num_queries
):
    """/municipality/ carries the municipal user's district border as a FeatureCollection
    (publicspaces.views.district_outlines); the spaces come from /api/v1/public-spaces/.
    Auth 2 + scope 2 (groups, StaffProfile) + the attributions + their extents (one
    union) + the outline + the district's name = 8, however many spaces, districts and
    regions there are."""
    client = login(Role.MUNICIPAL, world)
    assert client.get("/municipality/").status_code == 200

    with django_assert_num_queries(8):
        response = client.get("/municipality/")

    assert response.status_code == 200
    outline = response.context["map_config"]["districtOutline"]
    assert outline["type"] == "FeatureCollection"
    assert [f["properties"]["code"] for f in outline["features"]] == [world.municipal_district.code]
