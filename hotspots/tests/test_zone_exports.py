# ruff: noqa: F811  (pytest fixtures imported from hotspot_fixtures)
"""A finished run's zones as downloads from its page: GeoJSON (the byte-stable file of
hotspots.exports) and GeoPackage, both in EPSG:4326 with the zones' attributes, checked
against the zone rows; planners only, and only for a run that has a result."""

from __future__ import annotations

import json

import pyogrio
import pytest
import shapely
from django.contrib.gis.db.models.functions import AsWKB
from django.test import Client
from django.urls import reverse

from hotspots import exports, views
from hotspots.models import HotspotRun, HotspotZone
from hotspots.tests.hotspot_fixtures import (  # noqa: F401  (fixtures)
    copy_run,
    gistar_run,
    town,
)
from incidents.tests.factories import make_user

pytestmark = pytest.mark.django_db

ATTRIBUTES = ["rank", "incident_count", "cell_count", "area_m2", "density_per_km2", "share"]


def browser(django_user_model, who: str, lang: str = "en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=lang)
    if who != "anonymous":
        client.force_login(make_user(django_user_model, who, username=f"{who}-export"))
    return client


def urls(run) -> dict[str, str]:
    return {
        "geojson": reverse("hotspots:run-zones-geojson", args=[run.pk]),
        "gpkg": reverse("hotspots:run-zones-gpkg", args=[run.pk]),
    }


def zone_rows(run) -> list[dict]:
    """The run's zones as the database holds them, in rank order."""
    return [
        {**row, "geom": shapely.from_wkb(bytes(row.pop("wkb")))}
        for row in HotspotZone.objects.filter(run=run)
        .annotate(wkb=AsWKB("geom"))
        .order_by("rank")
        .values(*ATTRIBUTES, "top_categories", "wkb")
    ]


def download(client, url) -> bytes:
    response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return b"".join(response.streaming_content)


def test_the_geojson_has_the_zones_and_their_attributes(gistar_run, django_user_model):
    response = browser(django_user_model, "planner").get(urls(gistar_run)["geojson"])
    assert response.status_code == 200
    assert response["Content-Type"] == "application/geo+json"
    assert response["Content-Disposition"] == (
        f'attachment; filename="hotspot-run-{gistar_run.pk}-zones.geojson"'
    )
    body = b"".join(response.streaming_content)
    # The same bytes as the export module writes (the byte-stable file).
    assert body == b"".join(exports.zones_geojson(gistar_run))
    collection = json.loads(body)
    assert collection["type"] == "FeatureCollection"
    assert "crs" not in collection  # RFC 7946: longitude/latitude, EPSG:4326
    assert collection["hotspot_run"]["method"] == "gistar"
    rows = zone_rows(gistar_run)
    assert len(rows) >= 2
    assert len(collection["features"]) == len(rows)
    for feature, row in zip(collection["features"], rows, strict=True):
        properties = feature["properties"]
        for name in ("rank", "incident_count", "cell_count"):
            assert properties[name] == row[name], name
        for name in ("area_m2", "density_per_km2", "share"):
            assert properties[name] == pytest.approx(row[name], rel=1e-5, abs=1e-6), name
        assert properties["top_categories"] == row["top_categories"]
        geometry = shapely.geometry.shape(feature["geometry"])
        assert geometry.geom_type == "MultiPolygon"
        assert geometry.equals_exact(row["geom"], tolerance=1e-6)
        lon, lat = geometry.centroid.coords[0]
        assert -80 < lon < -70 and -15 < lat < -10  # degrees (the town is in Lima's UTM zone)


def test_the_geopackage_has_the_same_zones(gistar_run, django_user_model, tmp_path):
    response = browser(django_user_model, "planner").get(urls(gistar_run)["gpkg"])
    assert response.status_code == 200
    assert response["Content-Type"] == "application/geopackage+sqlite3"
    assert response["Content-Disposition"] == (
        f'attachment; filename="hotspot-run-{gistar_run.pk}-zones.gpkg"'
    )
    path = tmp_path / "zones.gpkg"
    path.write_bytes(b"".join(response.streaming_content))
    info = pyogrio.read_info(path)
    assert info["layer_name"] == "zones" and info["geometry_type"] == "MultiPolygon"
    assert info["crs"] == "EPSG:4326"
    record = json.loads(info["layer_metadata"]["hotspot_run"])
    assert record == exports.run_record(gistar_run)
    frame = pyogrio.read_dataframe(path)
    rows = zone_rows(gistar_run)
    assert list(frame["rank"]) == [row["rank"] for row in rows]
    for (_index, feature), row in zip(frame.iterrows(), rows, strict=True):
        for name in ("rank", "incident_count", "cell_count"):
            assert feature[name] == row[name], name
        for name in ("area_m2", "density_per_km2", "share"):
            assert feature[name] == pytest.approx(row[name]), name
        assert json.loads(feature["top_categories"]) == row["top_categories"]
        assert feature.geometry.equals_exact(row["geom"], tolerance=1e-9)


def test_the_temporary_geopackage_is_not_left_behind(gistar_run, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    handle = exports.zones_geopackage_file(gistar_run)
    try:
        assert handle.read(16) == b"SQLite format 3\x00"
        assert list(tmp_path.iterdir()) == []
    finally:
        handle.close()


def test_a_run_without_zones_gives_valid_empty_files(gistar_run, django_user_model, tmp_path):
    empty = copy_run(gistar_run, method="kde")  # succeeded, no zones
    assert not empty.zones.exists()
    client = browser(django_user_model, "planner")
    collection = json.loads(download(client, urls(empty)["geojson"]))
    assert collection["type"] == "FeatureCollection" and collection["features"] == []
    path = tmp_path / "empty.gpkg"
    path.write_bytes(download(client, urls(empty)["gpkg"]))
    info = pyogrio.read_info(path)
    assert info["features"] == 0 and info["geometry_type"] == "MultiPolygon"
    assert list(info["fields"]) == [c for c in exports.ZONE_COLUMNS]
    assert len(pyogrio.read_dataframe(path)) == 0


@pytest.mark.parametrize("status", ["queued", "running", "failed"])
def test_a_run_without_a_result_is_refused(gistar_run, django_user_model, monkeypatch, status):
    # The pages fail a running run whose job is gone: this one stays running.
    monkeypatch.setattr(views, "fail_abandoned_runs", lambda: 0)
    HotspotRun.objects.filter(pk=gistar_run.pk).update(status=status)
    client = browser(django_user_model, "planner")
    for url in urls(gistar_run).values():
        response = client.get(url)
        assert response.status_code == 409, url
        html = response.content.decode()
        assert 'id="export-refused"' in html
        if status == "failed":
            assert "This run failed and wrote no zones" in html
        else:
            assert "This run has not finished yet" in html
        assert reverse("hotspots:run-detail", args=[gistar_run.pk]) in html


def test_the_refusal_is_in_spanish(gistar_run, django_user_model):
    HotspotRun.objects.filter(pk=gistar_run.pk).update(status="queued")
    response = browser(django_user_model, "planner", "es").get(urls(gistar_run)["gpkg"])
    assert response.status_code == 409
    html = response.content.decode()
    assert "Este análisis aún no ha terminado" in html and "has not finished" not in html


def test_anonymous_visitors_are_sent_to_the_login_page(gistar_run, django_user_model):
    client = browser(django_user_model, "anonymous")
    for url in urls(gistar_run).values():
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("who", ["municipal", "program"])
def test_other_roles_are_refused(gistar_run, django_user_model, who):
    client = browser(django_user_model, who)
    for url in urls(gistar_run).values():
        assert client.get(url).status_code == 403, url


def test_a_superuser_may_download(gistar_run, django_user_model):
    client = Client()
    client.force_login(make_user(django_user_model, superuser=True))
    assert client.get(urls(gistar_run)["geojson"]).status_code == 200


def test_the_run_page_links_the_downloads(gistar_run, django_user_model):
    client = browser(django_user_model, "planner")
    detail = reverse("hotspots:run-detail", args=[gistar_run.pk])
    html = client.get(detail).content.decode()
    for key, url in urls(gistar_run).items():
        assert f'href="{url}" download' in html, key
    assert "Download the zones (GeoJSON)" in html
    assert "Download the zones (GeoPackage)" in html
    HotspotRun.objects.filter(pk=gistar_run.pk).update(status="failed", message="nope")
    html = client.get(detail).content.decode()
    assert 'id="zones-geojson-link"' not in html and 'id="zones-gpkg-link"' not in html
