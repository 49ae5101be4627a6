"""No incident coordinate reaches anyone but a planner, from any URL (reliability plan B1/B2).

Every route the project serves is requested as an anonymous visitor, a municipal user and
a program-staff user (including the admin and the API schema). Incidents are placed at
coordinates no boundary or demo file contains, and every response body is searched for
them in the forms a client could read (decimal text at 4–6 places).
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.contrib.gis.geos import Point
from django.urls import get_resolver
from django.urls.resolvers import URLPattern, URLResolver

from accounts.models import Role, StaffProfile
from incidents.models import Category, ImportBatch, Incident, IncidentSource, SourceLabel
from neighborhoods.models import District
from tests.geodata import grid_cell

pytestmark = pytest.mark.django_db

# Points inside the test district, with digits that appear nowhere else.
SECRET_POINTS = [(-77.0913579, -12.0957913), (-77.0972468, -12.0924681)]


def _routes(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def _concrete(route: str, ids: dict[str, int]) -> str | None:
    if route.startswith("^"):  # regex routes (static/media in DEBUG): not served in tests
        return None
    path = route
    for name, value in {"z": 12, "x": 1216, "y": 2185}.items():
        path = path.replace(f"<int:{name}>", str(value))
    path = re.sub(r"<int:pk>", str(ids["batch"]), path)
    path = re.sub(r"<path:object_id>", str(ids["incident"]), path)
    path = re.sub(r"<[^>]+>", "1", path)
    return "/" + path


def _secret_forms() -> list[str]:
    forms = []
    for lon, lat in SECRET_POINTS:
        for places in (4, 5, 6):
            forms += [f"{lon:.{places}f}", f"{lat:.{places}f}"]
    return forms


@pytest.fixture
def secret_incidents(make_region):
    region = make_region("crawl", {"C1": ("Crawl district", grid_cell(0))})
    district = District.objects.get(region=region, code="C1")
    source = IncidentSource.objects.create(name="crawl-source")
    category = Category.objects.get(code="robbery-person")
    label = SourceLabel.objects.create(source=source, label="ROBO", category=category)
    batch = ImportBatch.objects.create(source=source, status=ImportBatch.Status.SUCCEEDED)
    incidents = [
        Incident.objects.create(
            source=source,
            external_id=f"secret-{i}",
            point=Point(lon, lat, srid=4326),
            occurred_at="2025-05-01T22:00:00Z",
            label=label,
            category=category,
            region=region,
            district=district,
            batch=batch,
        )
        for i, (lon, lat) in enumerate(SECRET_POINTS)
    ]
    return {"batch": batch.pk, "incident": incidents[0].pk, "district": district}


def _user(django_user_model, name, role, district=None):
    user = django_user_model.objects.create_user(name, password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    if district is not None:
        StaffProfile.objects.create(user=user, district=district)
    return user


@pytest.mark.parametrize("who", ["anonymous", "municipal", "program"])
def test_no_incident_coordinate_leaves_through_any_url(
    client, django_user_model, secret_incidents, who
):
    if who == "municipal":
        client.force_login(
            _user(django_user_model, "muni", Role.MUNICIPAL, secret_incidents["district"])
        )
    elif who == "program":
        client.force_login(_user(django_user_model, "prog", Role.PROGRAM))
    secrets = _secret_forms()
    routes = sorted({r for r in _routes(get_resolver().url_patterns)})
    crawled = 0
    for route in routes:
        url = _concrete(route, secret_incidents)
        if url is None:
            continue
        response = client.get(url)
        crawled += 1
        body = b"".join(response.streaming_content) if response.streaming else response.content
        text = body.decode("utf-8", errors="replace")
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{who} read incident coordinates {leaked} at {url}"
        if url.startswith(
            (
                "/api/v1/incidents",
                "/api/v1/tiles/",
                "/api/v1/import-batches",
                "/api/v1/hotspot-runs",
                "/planner/",
            )
        ):
            assert response.status_code in (302, 401, 403), (
                f"{who} got {response.status_code} at {url}"
            )
    # The admin's incident pages, by object too.
    for url in (
        "/admin/incidents/incident/",
        f"/admin/incidents/incident/{secret_incidents['incident']}/change/",
        f"/admin/incidents/importbatch/{secret_incidents['batch']}/change/",
    ):
        response = client.get(url)
        text = response.content.decode("utf-8", errors="replace")
        assert not [s for s in secrets if s in text], f"{who} read coordinates at {url}"
        assert response.status_code in (302, 403, 404)
    assert crawled >= 20


def test_the_crawl_would_see_a_leak_planners_can_read_the_points(
    client, django_user_model, secret_incidents
):
    # Control: the same search finds the coordinates where they are allowed to be.
    client.force_login(_user(django_user_model, "planner", Role.PLANNER))
    response = client.get("/api/v1/incidents/")
    text = b"".join(response.streaming_content).decode()
    assert response.status_code == 200
    assert all(s in text for s in _secret_forms()[4:6])  # 6-decimal lon/lat of the first point
