# ruff: noqa: F811  (pytest fixtures imported from hotspot_fixtures)
"""A region's metric CRS chosen at load (--metric-crs) or by an admin; hotspot runs keep
the CRS they were computed in (issue 12, item 7)."""

import datetime as dt
from io import StringIO

import numpy as np
import pytest
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import translation

from hotspots.models import HotspotRun
from hotspots.services.validation import validate_run
from hotspots.tests.hotspot_fixtures import (  # noqa: F401  (fixtures)
    CLUSTERS,
    X0,
    Y0,
    add_incidents,
    gistar_run,
    town,
)
from neighborhoods.models import District, Region
from tests.geodata import grid_cell

pytestmark = pytest.mark.django_db

LONDON = (-0.13, 51.50)


def _records(origin=None, n=2):
    kwargs = {"origin": origin} if origin else {}
    return [
        {"code": f"D{i}", "name": f"District {i}", "geometry": grid_cell(i, **kwargs)}
        for i in range(n)
    ]


def _argv(path, *more):
    return [str(path), "--region", "city", "--level", "district", "--code-field", "code",
            "--name-field", "name", *more]  # fmt: skip


def _load(path, *more):
    stdout, stderr = StringIO(), StringIO()
    call_command("load_boundaries", *_argv(path, *more), stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def _load_fails(path, *more):
    with pytest.raises(CommandError) as exc:
        call_command("load_boundaries", *_argv(path, *more), stdout=StringIO(), stderr=StringIO())
    return str(exc.value)


def test_without_the_option_a_new_region_gets_the_utm_zone_of_its_centre(write_geojson):
    out, _ = _load(write_geojson(_records()))
    assert Region.objects.get(code="city").metric_srid == 32718
    assert "with metric CRS EPSG:32718 (the UTM zone of its centre)" in out


@pytest.mark.parametrize("value", ["EPSG:24892", "epsg:24892", "24892", " EPSG : 24892 "])
def test_metric_crs_is_taken_in_either_spelling(write_geojson, value):
    # PSAD56 / Peru central zone: the CRS of many Peruvian police and municipal maps.
    out, err = _load(write_geojson(_records()), "--metric-crs", value)

    assert err == ""
    assert Region.objects.get(code="city").metric_srid == 24892
    assert "region city was created with metric CRS EPSG:24892 (given by --metric-crs)" in out


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("EPSG:4326", "--metric-crs: EPSG:4326 (WGS 84) is a geographic CRS, in degrees: "
         "distances, areas and grid cells need a projected CRS in metres, such as the UTM "
         "zone of the region (EPSG:32718)"),
        ("2263", "--metric-crs: EPSG:2263 (NAD83 / New York Long Island (ftUS)) measures in "
         "us survey foot, not metres"),
        ("3857", "--metric-crs: EPSG:3857 (WGS 84 / Pseudo-Mercator) is a web map projection "
         "whose metres stretch with latitude"),
        ("ESRI:102033", "--metric-crs: 'ESRI:102033' is not an EPSG code: give a number such "
         "as 32718 or EPSG:32718"),
        ("EPSG:0", "--metric-crs: 'EPSG:0' is not an EPSG code"),
        ("999999", "--metric-crs: EPSG:999999 is not a known coordinate reference system"),
        ("6257", "--metric-crs: EPSG:6257 is not in PostGIS's spatial_ref_sys table"),
    ],
)  # fmt: skip
def test_a_metric_crs_that_is_not_projected_in_metres_is_refused(write_geojson, value, message):
    refusal = _load_fails(write_geojson(_records()), "--metric-crs", value)

    assert refusal.startswith(message)
    assert not Region.objects.exists()


def test_a_metric_crs_far_from_the_data_is_taken_with_a_note(write_geojson):
    out, _ = _load(write_geojson(_records(LONDON)), "--metric-crs", "32718")

    assert Region.objects.get(code="city").metric_srid == 32718
    assert "is outside the area of use of EPSG:32718" in out


def test_british_national_grid_for_a_london_region(write_geojson):
    out, _ = _load(write_geojson(_records(LONDON)), "--metric-crs", "EPSG:27700")

    assert Region.objects.get(code="city").metric_srid == 27700
    assert "area of use" not in out


def test_changing_the_metric_crs_on_reload_is_reported(write_geojson):
    path = write_geojson(_records())
    _load(path)

    out, _ = _load(path, "--metric-crs", "24892")

    assert (
        "region city was updated: metric CRS EPSG:32718 -> EPSG:24892 (hotspot runs already "
        "computed keep the CRS they were computed in)"
    ) in out.splitlines()
    assert Region.objects.get(code="city").metric_srid == 24892
    out, _ = _load(path, "--metric-crs", "24892")
    assert "updated:" not in out


def test_a_dry_run_does_not_change_the_metric_crs(write_geojson):
    path = write_geojson(_records())
    _load(path)

    out, _ = _load(path, "--metric-crs", "24892", "--dry-run")

    assert "region city would be updated: metric CRS EPSG:32718 -> EPSG:24892" in out
    assert Region.objects.get(code="city").metric_srid == 32718


# --- the admin ---------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", password="x"))
    return client


@pytest.fixture
def region():
    region = Region.objects.create(code="lima", name="Lima", metric_srid=32718)
    District.objects.create(
        region=region,
        code="D1",
        name="Uno",
        geom=MultiPolygon(Polygon.from_bbox((-77.05, -12.06, -77.04, -12.05)), srid=4326),
    )
    Region.objects.filter(pk=region.pk).update(geom=District.objects.get().geom)
    region.refresh_from_db()
    return region


def _post(client, region, srid):
    return client.post(
        reverse("admin:neighborhoods_region_change", args=[region.pk]),
        {
            "code": region.code,
            "name": region.name,
            "metric_srid": str(srid),
            "time_zone": region.time_zone,
        },
    )


def test_an_admin_changes_the_metric_crs(admin_client, region):
    response = _post(admin_client, region, 24892)

    assert response.status_code == 302, response.content.decode()[:3000]
    assert Region.objects.get(pk=region.pk).metric_srid == 24892


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("en", "EPSG:4326 (WGS 84) is a geographic CRS, in degrees: distances, areas and grid "
         "cells need a projected CRS in metres, such as the UTM zone of the region (EPSG:32718)"),
        ("es", "EPSG:4326 (WGS 84) es un CRS geográfico, en grados: las distancias, áreas y "
         "celdas de cuadrícula necesitan un CRS proyectado en metros, como la zona UTM de la "
         "región (EPSG:32718)"),
    ],
)  # fmt: skip
def test_the_admin_refuses_a_geographic_crs_with_a_message(admin_client, region, language, message):
    with translation.override(language):
        admin_client.cookies["django_language"] = language
        response = _post(admin_client, region, 4326)

    assert response.status_code == 200
    page = response.content.decode()
    assert "errorlist" in page
    assert message in page.replace("&#x27;", "'")
    assert Region.objects.get(pk=region.pk).metric_srid == 32718


# --- hotspot runs keep theirs ------------------------------------------------------------


def test_a_run_keeps_the_crs_it_was_computed_in_after_the_region_changes(gistar_run, admin_client):
    region = gistar_run.region
    rng = np.random.default_rng(3)
    later = dt.datetime(2024, 8, 10, 12, 0, tzinfo=dt.UTC)
    for cx, cy, _n, _category in CLUSTERS:  # the clusters go on after the run's period
        add_incidents(
            region, region.district_set.get(code="T1"),
            X0 + cx + rng.normal(0, 80, 60), Y0 + cy + rng.normal(0, 80, 60), when=later,
        )  # fmt: skip
    period = {"eval_from": dt.date(2024, 7, 1), "eval_to": dt.date(2024, 9, 30)}
    before = validate_run(run=gistar_run, **period).report

    response = _post(admin_client, region, 24892)
    assert response.status_code == 302, response.content.decode()[:3000]

    run = HotspotRun.objects.get(pk=gistar_run.pk)
    assert run.metric_srid == 32718 and run.region.metric_srid == 24892
    after = validate_run(run=run, **period).report
    assert after["grid"] == before["grid"] and after["rows"] == before["rows"]
    # The same validation in the region's new CRS scores another grid: the check above is
    # not vacuous.
    run.metric_srid = None
    moved = validate_run(run=run, **period).report
    assert (moved["grid"], moved["rows"]) != (before["grid"], before["rows"])


def test_a_new_run_uses_the_region_crs_of_its_creation(town):
    from hotspots.services import runs

    Region.objects.filter(pk=town.pk).update(metric_srid=24892)
    town.refresh_from_db()
    run = runs.create_run(
        region=town,
        districts=[town.district_set.get(code="T1")],
        date_from=dt.date(2024, 1, 1),
        date_to=dt.date(2024, 6, 30),
        params={"grid": "square", "cell_size_m": 200},
    )
    Region.objects.filter(pk=town.pk).update(metric_srid=32718)  # changed while queued
    run = runs.execute_run(run=run)

    assert run.status == HotspotRun.Status.SUCCEEDED, run.message
    assert run.metric_srid == 24892
