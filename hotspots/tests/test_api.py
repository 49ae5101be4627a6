# ruff: noqa: F811  (pytest fixtures imported from hotspot_fixtures)
"""The hotspot API against a real run: who may use it, starting runs (and the 400s of bad
requests), lists, details, the GeoJSON layers and validations.

Runs are computed by the real service over seeded incidents (hotspot_fixtures); the
expected numbers follow from the planted clusters or from the database itself, never from
a previous response.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from django.contrib.gis.geos import Point, Polygon
from django.urls import reverse

from hotspots.engine.emerging import LEGEND
from hotspots.models import HotspotCell, HotspotRun, HotspotZone
from hotspots.services.context import incident_queryset
from hotspots.services.params import SUPPORTED_METHODS
from hotspots.tests.hotspot_fixtures import (  # noqa: F401  (fixtures)
    CLUSTERS,
    PERIOD,
    X0,
    Y0,
    add_incidents,
    add_validation,
    client_for,
    cluster_lonlat,
    copy_run,
    gistar_run,
    town,
)

pytestmark = pytest.mark.django_db

DENIED = ["anonymous", "municipal", "program"]


def geojson(response) -> dict:
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == "application/geo+json"
    return json.loads(b"".join(response.streaming_content))


def _endpoints(run) -> list[tuple[str, str]]:
    return [
        ("get", reverse("hotspot-run-list")),
        ("get", reverse("hotspot-run-detail", args=[run.pk])),
        ("get", reverse("hotspot-run-validations", args=[run.pk])),
        ("get", reverse("hotspot-run-cells", args=[run.pk])),
        ("get", reverse("hotspot-run-zones", args=[run.pk])),
        ("get", reverse("hotspot-run-emerging", args=[run.pk])),
        ("get", reverse("hotspot-run-kde", args=[run.pk])),
        ("get", reverse("hotspot-run-week-hours", args=[run.pk])),
        ("get", reverse("hotspot-cell-tile", args=[run.pk, 14, 4700, 8700])),
        ("get", reverse("hotspot-zone-tile", args=[run.pk, 14, 4700, 8700])),
        ("post", reverse("hotspot-run-list")),
        ("post", reverse("hotspot-run-validations", args=[run.pk])),
    ]


# --- who may use it ---------------------------------------------------------------------


@pytest.mark.parametrize("who", DENIED)
def test_only_planners_reach_any_hotspot_endpoint(gistar_run, django_user_model, who):
    client = client_for(django_user_model, who, district=gistar_run.region.district_set.first())
    runs_before = HotspotRun.objects.count()
    cell = gistar_run.cells.filter(gi_bin=3).first()
    for method, url in _endpoints(gistar_run):
        # A well-formed request a planner would get data for: denial comes first.
        body = {"region": gistar_run.region.code, **{k: str(v) for k, v in PERIOD.items()}}
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code in (401, 403), (who, url, response.status_code)
        text = response.content.decode()
        assert str(round(cell.gi_z, 4)) not in text
        assert '"features"' not in text
        assert response["Cache-Control"] == "private, no-store"
    assert HotspotRun.objects.count() == runs_before
    # An unknown run gets the same answer as a known one: no existence oracle.
    missing = reverse("hotspot-run-detail", args=[gistar_run.pk + 1000])
    assert client.get(missing).status_code in (401, 403)


@pytest.mark.parametrize("who", ["planner", "superuser"])
def test_planners_read_every_hotspot_endpoint(gistar_run, django_user_model, who):
    client = client_for(django_user_model, who)
    for method, url in _endpoints(gistar_run):
        if method != "get":
            continue
        response = client.get(url)
        assert response.status_code in (200, 204), (url, response.status_code)
        assert response["Cache-Control"] == "private, no-store"
    missing = client.get(reverse("hotspot-run-cells", args=[gistar_run.pk + 1000]))
    assert missing.status_code == 404


# --- starting a run -------------------------------------------------------------------------


def test_a_planner_starts_a_run_and_it_executes(town, django_user_model):
    client = client_for(django_user_model, "planner")
    response = client.post(
        reverse("hotspot-run-list"),
        {
            "region": town.code,
            "districts": ["T1"],
            "date_from": "2024-01-01",
            "date_to": "2024-06-30",
            "family": "crime",
            "params": {"grid": "hex", "cell_size_m": 120},
        },
        format="json",
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert response["Location"] == body["url"]
    run = HotspotRun.objects.get(pk=body["id"])
    assert run.created_by.username == "planner-client"
    assert run.params["grid"] == "hex" and run.params["cell_size_m"] == 120
    assert list(run.districts.values_list("code", flat=True)) == ["T1"]
    # The test settings run tasks at once: the answer already holds the finished run.
    assert body["status"] == "succeeded" and body["finished"] is True
    assert body["progress"] == 1.0
    assert body["summary"]["incidents"] == run.summary["incidents"] > 0
    assert body["summary"]["zones"] == HotspotZone.objects.filter(run=run).count() >= 1
    assert set(body["timings"]) >= {"area", "count", "gistar", "write", "total"}
    # Every default filled in and recorded, so the run can be repeated.
    assert set(body["params"]) >= {"grid", "cell_size_m", "neighbour_rule", "alpha", "fdr", "seed"}


def test_the_same_request_twice_reuses_the_finished_run(town, django_user_model):
    client = client_for(django_user_model, "planner")
    request = {
        "region": town.code,
        "districts": ["T1"],
        "date_from": "2024-01-01",
        "date_to": "2024-06-30",
        "params": {"grid": "square", "cell_size_m": 200},
    }
    url = reverse("hotspot-run-list")
    first = client.post(url, request, format="json")
    assert first.status_code == 202 and first.json()["reused"] is False
    run = HotspotRun.objects.get()
    assert run.status == HotspotRun.Status.SUCCEEDED

    # Exactly the same inputs (defaults left out or spelled out alike): the same run.
    defaults = {**request["params"], "alpha": run.params["alpha"], "fdr": run.params["fdr"]}
    for body in (request, {**request, "params": defaults}):
        again = client.post(url, body, format="json")
        assert again.status_code == 200, again.json()
        assert again.json()["reused"] is True and again.json()["id"] == run.pk
        assert again["Location"] == again.json()["url"]
    assert HotspotRun.objects.count() == 1

    # Another parameter, another period or the data changed: a new run each time.
    other = client.post(
        url, {**request, "params": {"grid": "square", "cell_size_m": 250}}, format="json"
    )
    assert other.status_code == 202 and other.json()["reused"] is False
    assert HotspotRun.objects.count() == 2
    add_incidents(town, town.district_set.get(code="T1"), [X0 + 1500.0], [Y0 + 1500.0])
    changed = client.post(url, request, format="json")
    assert changed.status_code == 202 and changed.json()["reused"] is False
    assert HotspotRun.objects.count() == 3
    # Bad parameters are still refused with their reason, not matched.
    bad = client.post(url, {**request, "params": {"cell_size_m": -5}}, format="json")
    assert bad.status_code == 400


def test_a_run_refused_by_the_data_is_failed_with_its_reason(town, django_user_model):
    client = client_for(django_user_model, "planner")
    response = client.post(
        reverse("hotspot-run-list"),
        {"region": town.code, "date_from": "2020-01-01", "date_to": "2020-01-31"},
        format="json",
    )
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "failed"
    assert "only 0 incidents" in body["message"]


def _post(client, **body):
    return client.post(reverse("hotspot-run-list"), body, format="json")


def test_bad_run_requests_are_400_with_field_messages(town, django_user_model):
    client = client_for(django_user_model, "planner")
    good = {"region": town.code, "date_from": "2024-01-01", "date_to": "2024-06-30"}
    unsupported = [m for m in HotspotRun.Method.values if m not in SUPPORTED_METHODS]
    cases = [
        ({"date_from": "2024-01-01", "date_to": "2024-06-30"}, "region"),
        ({**good, "region": "atlantis"}, "region"),
        ({**good, "date_from": "2024-02-30"}, "date_from"),
        ({**good, "date_to": "2023-12-31"}, "date_to"),
        ({**good, "districts": ["T1", "nope"]}, "districts"),
        ({**good, "neighborhoods": "x1"}, "neighborhoods"),
        ({**good, "categories": ["burglary", "no-such-category"]}, "categories"),
        ({**good, "family": "weather"}, "family"),
        ({**good, "method": "crystal-ball"}, "method"),
        ({**good, "params": [1, 2]}, "params"),
        ({**good, "polygon": {"type": "Point", "coordinates": [-77, -12]}}, "polygon"),
        ({**good, "polygon": {"type": "Polygon", "coordinates": "nonsense"}}, "polygon"),
        # Refused by the service's own checks: a message for the request as a whole.
        ({**good, "params": {"cell_size_m": "big"}}, "non_field_errors"),
        ({**good, "params": {"alpha": 0.2}}, "non_field_errors"),
        ({**good, "params": {"colour": "red"}}, "non_field_errors"),
    ] + [({**good, "method": m}, "method") for m in unsupported]
    before = HotspotRun.objects.count()
    for body, field in cases:
        response = _post(client, **body)
        assert response.status_code == 400, (body, response.content)
        errors = response.json()
        assert field in errors, (body, errors)
        assert all(isinstance(m, str) and m for m in errors[field])
    assert HotspotRun.objects.count() == before  # nothing half-written


def test_a_region_without_boundaries_is_refused_by_the_service(django_user_model):
    from incidents.tests.factories import make_region

    empty = make_region("noborders")
    client = client_for(django_user_model, "planner")
    response = _post(client, region=empty.code, date_from="2024-01-01", date_to="2024-06-30")
    assert response.status_code == 400
    assert "no boundaries" in response.json()["non_field_errors"][0]
    assert not HotspotRun.objects.filter(region=empty).exists()


def test_a_drawn_polygon_limits_the_run(town, django_user_model):
    client = client_for(django_user_model, "planner")
    lon, lat = cluster_lonlat(0)
    square = Polygon.from_bbox((lon - 0.006, lat - 0.006, lon + 0.006, lat + 0.006))
    response = _post(
        client,
        region=town.code,
        date_from="2024-01-01",
        date_to="2024-06-30",
        polygon=json.loads(square.geojson),
        params={"grid": "square", "cell_size_m": 100},
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["polygon"]["type"] == "MultiPolygon"
    run = HotspotRun.objects.get(pk=body["id"])
    assert body["status"] == "succeeded", body["message"]
    # Only the incidents inside the square were counted.
    inside = incident_queryset(run).count()
    assert body["summary"]["incidents"] == inside < run.region.incident_set.count()


# --- list and detail ----------------------------------------------------------------------


def test_runs_are_listed_newest_first_and_filtered(gistar_run, django_user_model):
    client = client_for(django_user_model, "planner")
    kde = copy_run(gistar_run, method="kde")
    failed = copy_run(gistar_run, method="gistar")
    HotspotRun.objects.filter(pk=failed.pk).update(status="failed", message="too few")
    listing = client.get(reverse("hotspot-run-list")).json()
    assert listing["count"] == 3
    assert [r["id"] for r in listing["results"]] == [failed.pk, kde.pk, gistar_run.pk]
    by_method = client.get(reverse("hotspot-run-list"), {"method": "kde"}).json()
    assert [r["id"] for r in by_method["results"]] == [kde.pk]
    by_status = client.get(reverse("hotspot-run-list"), {"status": "failed"}).json()
    assert [r["id"] for r in by_status["results"]] == [failed.pk]
    by_region = client.get(reverse("hotspot-run-list"), {"region": "elsewhere"}).json()
    assert by_region["count"] == 0
    bad = client.get(reverse("hotspot-run-list"), {"status": "sleeping", "method": "magic"})
    assert bad.status_code == 400 and set(bad.json()) == {"status", "method"}


def test_run_detail_has_everything_to_repeat_and_judge_it(gistar_run, django_user_model):
    HotspotRun.objects.filter(pk=gistar_run.pk).update(
        stability={"rows": [{"cell_size_m": 150.0, "hot_cells": 12, "jaccard": 0.71}]}
    )
    validation = add_validation(gistar_run)
    client = client_for(django_user_model, "planner")
    body = client.get(reverse("hotspot-run-detail", args=[gistar_run.pk])).json()
    assert body["region"] == gistar_run.region.code
    assert body["districts"] == ["T1"]
    assert body["method"] == "gistar" and body["status"] == "succeeded"
    assert body["params"] == gistar_run.params
    assert body["summary"]["zones"] == gistar_run.zones.count()
    assert body["stability"]["rows"][0]["jaccard"] == 0.71
    assert [v["id"] for v in body["validations"]] == [validation.pk]
    assert body["validations"][0]["report"]["rows"][0]["pai"] == 2.431
    minlon, minlat, maxlon, maxlat = body["bbox"]
    lon, lat = cluster_lonlat(0)
    assert minlon < lon < maxlon and minlat < lat < maxlat
    assert body["layers"]["cells"].endswith(f"/api/v1/hotspot-runs/{gistar_run.pk}/cells/")
    assert body["layers"]["cell_tiles"].endswith(
        f"/api/v1/tiles/hotspots/{gistar_run.pk}/cells/{{z}}/{{x}}/{{y}}.mvt"
    )
    assert body["page_url"].endswith(f"/planner/hotspots/{gistar_run.pk}/")
    assert body["report_url"].endswith(f"/planner/hotspots/{gistar_run.pk}/report.html")


# --- layers -------------------------------------------------------------------------------


def _containing(features, lon, lat):
    point = Point(lon, lat, srid=4326)
    from django.contrib.gis.geos import GEOSGeometry

    return [f for f in features if GEOSGeometry(json.dumps(f["geometry"])).intersects(point)]


def test_cells_geojson_carries_gi_star_and_filters(gistar_run, django_user_model):
    client = client_for(django_user_model, "planner")
    url = reverse("hotspot-run-cells", args=[gistar_run.pk])
    everything = geojson(client.get(url))
    assert (
        everything["numberReturned"] == gistar_run.summary["cells"] == len(everything["features"])
    )
    assert everything["truncated"] is False
    assert everything["run"] == gistar_run.pk and everything["method"] == "gistar"
    props = everything["features"][0]["properties"]
    assert set(props) == {"i", "j", "count", "gi_z", "gi_p", "gi_bin", "zone"}
    # Most significant first.
    bins = [abs(f["properties"]["gi_bin"]) for f in everything["features"]]
    assert bins == sorted(bins, reverse=True)
    # The planted clusters sit in hot cells of a zone.
    for index in (0, 1):
        (cell,) = _containing(everything["features"], *cluster_lonlat(index))
        assert cell["properties"]["gi_bin"] >= 2 and cell["properties"]["zone"] is not None
    # The counts are the incidents: every one of the run's incidents in exactly one cell.
    assert (
        sum(f["properties"]["count"] for f in everything["features"])
        == incident_queryset(gistar_run).count()
    )

    hot = geojson(client.get(url, {"min_bin": 2}))
    assert hot["features"] and all(f["properties"]["gi_bin"] >= 2 for f in hot["features"])
    assert hot["numberReturned"] == gistar_run.cells.filter(gi_bin__gte=2).count()
    significant = geojson(client.get(url, {"significant": "true"}))
    assert all(f["properties"]["gi_bin"] != 0 for f in significant["features"])
    assert significant["numberReturned"] == gistar_run.cells.exclude(gi_bin=0).count()
    picked = geojson(client.get(url, {"bins": "3,-3"}))
    assert {f["properties"]["gi_bin"] for f in picked["features"]} <= {3, -3}

    lon, lat = cluster_lonlat(0)
    box = f"{lon - 0.002},{lat - 0.002},{lon + 0.002},{lat + 0.002}"
    near = geojson(client.get(url, {"bbox": box}))
    assert 0 < near["numberReturned"] < 16
    query = Polygon.from_bbox((lon - 0.002, lat - 0.002, lon + 0.002, lat + 0.002))
    from django.contrib.gis.geos import GEOSGeometry

    assert all(GEOSGeometry(json.dumps(f["geometry"])).intersects(query) for f in near["features"])


def test_bad_layer_parameters_are_400(gistar_run, django_user_model):
    client = client_for(django_user_model, "planner")
    cells = reverse("hotspot-run-cells", args=[gistar_run.pk])
    for params, field in [
        ({"min_bin": "4"}, "min_bin"),
        ({"min_bin": "hot"}, "min_bin"),
        ({"min_bin": "2", "max_bin": "1"}, "max_bin"),
        ({"bins": "1,9"}, "bins"),
        ({"significant": "maybe"}, "significant"),
        ({"bbox": "1,2,3"}, "bbox"),
    ]:
        response = client.get(cells, params)
        assert response.status_code == 400, params
        assert field in response.json()
    kde = reverse("hotspot-run-kde", args=[gistar_run.pk])
    assert "min_density" in client.get(kde, {"min_density": "-1"}).json()
    emerging = reverse("hotspot-run-emerging", args=[gistar_run.pk])
    assert "category" in client.get(emerging, {"category": "42"}).json()
    zones = reverse("hotspot-run-zones", args=[gistar_run.pk])
    assert "zoom" in client.get(zones, {"zoom": "40"}).json()
    # A zoom that 2 would be raised to: refused before any arithmetic, on every layer.
    for name in (
        "hotspot-run-cells",
        "hotspot-run-zones",
        "hotspot-run-emerging",
        "hotspot-run-kde",
    ):
        response = client.get(reverse(name, args=[gistar_run.pk]), {"zoom": str(2**40)})
        assert response.status_code == 400, name
        assert "zoom" in response.json(), name


def test_zones_geojson_has_their_stats(gistar_run, django_user_model):
    client = client_for(django_user_model, "planner")
    data = geojson(client.get(reverse("hotspot-run-zones", args=[gistar_run.pk])))
    features = data["features"]
    assert [f["properties"]["rank"] for f in features] == list(range(1, len(features) + 1))
    total = gistar_run.summary["incidents"]
    for feature in features:
        props = feature["properties"]
        assert props["share"] == pytest.approx(props["incident_count"] / total)
        assert props["density_per_km2"] == pytest.approx(
            props["incident_count"] / (props["area_m2"] / 1e6)
        )
        assert props["area_m2"] == pytest.approx(props["cell_count"] * 200.0**2, rel=1e-6)
    # The zone over the first cluster names its category first.
    (zone,) = _containing(features, *cluster_lonlat(0))
    assert zone["properties"]["top_categories"][0]["code"] == "robbery-person"
    (zone,) = _containing(features, *cluster_lonlat(1))
    assert zone["properties"]["top_categories"][0]["code"] == "burglary"


def test_emerging_layer_has_categories_labels_and_steps(gistar_run, django_user_model):
    steps = ["2024-01-01", "2024-02-01", "2024-03-01"]
    run = copy_run(gistar_run, method="emerging", params={"steps": steps})
    cells = list(run.cells.order_by("i", "j"))
    HotspotCell.objects.filter(run=run).update(emerging=0, step_bins=[0, 0, 0])
    patterns = {
        cells[0].pk: (4, [2, 3, 3]),
        cells[1].pk: (-1, [0, 0, -2]),
        cells[2].pk: (1, [0, 0, 1]),
    }
    for pk, (code, step_bins) in patterns.items():
        HotspotCell.objects.filter(pk=pk).update(
            emerging=code, step_bins=step_bins, step_counts=[1, 2, 3], trend_tau=0.5, trend_p=0.01
        )
    # No pattern overall but hot in one step: kept for the time slider.
    HotspotCell.objects.filter(pk=cells[3].pk).update(step_bins=[0, 1, 0])
    client = client_for(django_user_model, "planner")
    url = reverse("hotspot-run-emerging", args=[run.pk])

    data = geojson(client.get(url, HTTP_ACCEPT_LANGUAGE="en"))
    assert data["steps"] == steps
    assert {entry["code"] for entry in data["legend"]} == set(LEGEND)
    by_cell = {
        (f["properties"]["i"], f["properties"]["j"]): f["properties"] for f in data["features"]
    }
    assert len(by_cell) == 4
    persistent = by_cell[(cells[0].i, cells[0].j)]
    assert persistent["emerging"] == 4
    assert persistent["emerging_key"] == "persistent_hot_spot"
    assert persistent["emerging_label"] == "Persistent hot spot"
    assert persistent["step_bins"] == [2, 3, 3]
    assert by_cell[(cells[3].i, cells[3].j)]["emerging"] == 0
    assert data["features"][0]["properties"]["emerging"] == 4  # strongest pattern first

    spanish = geojson(client.get(url, {"category": "-1"}, HTTP_ACCEPT_LANGUAGE="es"))
    (cold,) = spanish["features"]
    assert cold["properties"]["emerging_label"] == LEGEND[-1]["es"] == "Nuevo punto frío"
    everything = geojson(client.get(url, {"include_no_pattern": "1"}))
    assert everything["numberReturned"] == len(cells)


def test_kde_layer_has_densities_densest_first(gistar_run, django_user_model):
    run = copy_run(gistar_run, method="kde", params={"bandwidth_m": 400})
    for cell in run.cells.all():
        HotspotCell.objects.filter(pk=cell.pk).update(density=float(cell.count) * 25.0)
    client = client_for(django_user_model, "planner")
    url = reverse("hotspot-run-kde", args=[run.pk])
    data = geojson(client.get(url))
    densities = [f["properties"]["density"] for f in data["features"]]
    assert densities == sorted(densities, reverse=True)
    assert len(densities) == run.cells.count()
    dense = geojson(client.get(url, {"min_density": "500"}))
    assert all(f["properties"]["density"] >= 500 for f in dense["features"])
    assert dense["numberReturned"] == run.cells.filter(count__gte=20).count()
    # The Gi* layer of a KDE-only run is empty, not an error.
    assert geojson(client.get(reverse("hotspot-run-cells", args=[run.pk])))["numberReturned"] == 0


def test_kde_layer_keeps_to_the_view_and_its_zoom(gistar_run, django_user_model):
    from django.contrib.gis.geos import GEOSGeometry

    run = copy_run(gistar_run, method="kde", params={"bandwidth_m": 400})
    run.cells.update(density=7.123456789)
    client = client_for(django_user_model, "planner")
    url = reverse("hotspot-run-kde", args=[run.pk])
    whole = client.get(url)
    assert whole.status_code == 200
    whole_bytes = b"".join(whole.streaming_content)

    lon, lat = cluster_lonlat(0)
    query = Polygon.from_bbox((lon - 0.002, lat - 0.002, lon + 0.002, lat + 0.002))
    query.srid = 4326
    box = ",".join(str(v) for v in query.extent)
    near = client.get(url, {"bbox": box})
    near_bytes = b"".join(near.streaming_content)
    data = json.loads(near_bytes)
    expected = run.cells.filter(geom__bboverlaps=query).count()
    assert 0 < data["numberReturned"] == expected < run.cells.count()
    assert all(GEOSGeometry(json.dumps(f["geometry"])).intersects(query) for f in data["features"])
    assert len(near_bytes) * 5 < len(whole_bytes)

    # A city-wide zoom: fewer decimals (about a metre at zoom 12), the same cells.
    far = geojson(client.get(url, {"bbox": box, "zoom": "12"}))
    assert far["numberReturned"] == expected
    ring = far["features"][0]["geometry"]["coordinates"][0]
    assert max(len(repr(v).split(".")[1]) for point in ring for v in point) <= 5
    fine = geojson(client.get(url, {"bbox": box, "zoom": "18"}))
    assert (
        max(
            len(repr(v).split(".")[1])
            for f in fine["features"]
            for point in f["geometry"]["coordinates"][0]
            for v in point
        )
        == 6
    )
    assert "zoom" in client.get(url, {"zoom": "99"}).json()


# --- validations --------------------------------------------------------------------------


def test_validations_are_listed(gistar_run, django_user_model):
    validation = add_validation(gistar_run)
    client = client_for(django_user_model, "planner")
    body = client.get(reverse("hotspot-run-validations", args=[gistar_run.pk])).json()
    assert [v["id"] for v in body] == [validation.pk]
    assert body[0]["eval_from"] == "2024-07-01"


def test_bad_validation_requests_are_400(gistar_run, django_user_model):
    client = client_for(django_user_model, "planner")
    url = reverse("hotspot-run-validations", args=[gistar_run.pk])
    for body, field in [
        ({}, "eval_from"),
        ({"eval_from": "2024-07-01"}, "eval_to"),
        ({"eval_from": "2024-09-01", "eval_to": "2024-07-01"}, "eval_to"),
        ({"eval_from": "July", "eval_to": "2024-07-01"}, "eval_from"),
    ]:
        response = client.post(url, body, format="json")
        assert response.status_code == 400 and field in response.json(), body
    assert gistar_run.validations.count() == 0


def test_a_planner_validates_a_run_against_a_later_period(gistar_run, django_user_model):
    # The later period repeats the first cluster only.
    rng = np.random.default_rng(11)
    cx, cy, n, category = CLUSTERS[0]
    add_incidents(
        gistar_run.region,
        gistar_run.region.district_set.get(code="T1"),
        X0 + cx + rng.normal(0, 80, n),
        Y0 + cy + rng.normal(0, 80, n),
        category=category,
        when=dt.datetime(2024, 8, 1, 12, tzinfo=dt.UTC),
    )
    client = client_for(django_user_model, "planner")
    url = reverse("hotspot-run-validations", args=[gistar_run.pk])
    response = client.post(url, {"eval_from": "2024-07-01", "eval_to": "2024-09-30"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["eval_from"] == "2024-07-01" and body["report"]
    assert gistar_run.validations.count() == 1
