# ruff: noqa: F811 (the town fixture is imported from test_runs)
"""DBSCAN, kernel density and emerging hot spot runs end to end through execute_run,
against PostGIS, on the seeded test town of test_runs (UTM 18S metres)."""

from __future__ import annotations

import datetime as dt
import json
import math
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from django.contrib.gis.geos import Point
from django.db import connection

from hotspots import selectors
from hotspots.engine import HotspotRefused
from hotspots.engine import emerging as emerging_engine
from hotspots.models import HotspotCell, HotspotRun, HotspotZone
from hotspots.services import methods, runs
from hotspots.services.context import STEPS
from hotspots.services.params import time_steps
from hotspots.tests.test_runs import (  # noqa: F401 (town is a fixture)
    CLUSTERS,
    PERIOD,
    SRID,
    X0,
    Y0,
    add_incidents,
    cells_bytes,
    district,
    lonlat,
    planted_town,
    run_for,
    town,
)
from incidents.models import Incident

pytestmark = pytest.mark.django_db


def zone_snapshot(run):
    return [
        (
            z.rank,
            z.incident_count,
            z.cell_count,
            round(z.area_m2, 3),
            z.geom.wkb.hex(),
            z.top_categories,
        )
        for z in HotspotZone.objects.filter(run=run).order_by("rank")
    ]


# --- DBSCAN -------------------------------------------------------------------------------


def test_dbscan_finds_the_planted_clusters_as_concave_hull_zones(town):
    d1 = planted_town(town)
    params = {"eps_m": 60, "min_points": 25}
    run = run_for(town, districts=[d1], method="dbscan", params=params)

    assert run.status == HotspotRun.Status.SUCCEEDED, run.message
    assert not HotspotCell.objects.filter(run=run).exists()  # zones only
    zones = list(selectors.zone_list(run))
    assert len(zones) == len(CLUSTERS)
    for zone, (cx, cy, n, category) in zip(zones, CLUSTERS, strict=True):
        # ranked by incidents: the clusters were planted largest first
        assert zone.geom.contains(Point(*lonlat(X0 + cx, Y0 + cy), srid=4326))
        assert zone.top_categories[0]["code"] == category
        # σ = 90 m: most of the cluster's points are core or border points of it, and
        # at 1,800 background points over 16 km² hardly any stray point joins.
        assert 0.6 * n < zone.incident_count < n + 40
        assert zone.cell_count == 0
        metric_area = zone.geom.transform(SRID, clone=True).area
        assert zone.area_m2 == pytest.approx(metric_area, rel=1e-3)
        assert zone.density_per_km2 == pytest.approx(zone.incident_count / (zone.area_m2 / 1e6))
        assert zone.share == pytest.approx(zone.incident_count / Incident.objects.count())
    s = run.summary
    assert s["clustered_incidents"] == sum(z.incident_count for z in zones)
    assert s["noise_incidents"] == Incident.objects.count() - s["clustered_incidents"]
    assert s["warnings"] == []  # a district, not the whole region
    assert run.params == {"eps_m": 60.0, "min_points": 25, "concave_ratio": 0.5}
    assert {"area", "dbscan", "zones", "write", "total"} <= set(run.timings)

    # The same inputs give the same zones, polygons included.
    again = run_for(town, districts=[d1], method="dbscan", params=params)
    assert zone_snapshot(again) == zone_snapshot(run)


def test_dbscan_chooses_min_points_from_spatial_randomness_and_records_why(town):
    d1 = planted_town(town, seed=5, background=1200)
    run = run_for(town, districts=[d1], method="dbscan", params={"eps_m": 80})
    total = Incident.objects.count()
    expected = total * math.pi * 80**2 / run.area_m2  # neighbours of a random point
    assert run.params["min_points"] >= 5
    # Under randomness a point has min_points − 1 neighbours with probability < 0.001.
    from scipy.stats import poisson

    assert poisson.sf(run.params["min_points"] - 2, expected) <= 0.001
    assert poisson.sf(run.params["min_points"] - 3, expected) > 0.001 or (
        run.params["min_points"] == 5
    )
    assert "complete spatial randomness" in run.params["min_points_reason"]
    assert run.summary["zones"] >= 3


def test_dbscan_over_a_whole_large_region_is_refused_and_points_to_a_district(town, monkeypatch):
    planted_town(town, seed=2, background=600)
    monkeypatch.setattr(methods, "DBSCAN_REGION_MAX_INCIDENTS", 500)
    run = runs.create_run(region=town, **PERIOD, method="dbscan")
    with pytest.raises(HotspotRefused, match="use density clustering inside a district"):
        runs.execute_run(run=run)
    run.refresh_from_db()
    assert run.status == HotspotRun.Status.FAILED and "district" in run.message
    assert not HotspotZone.objects.filter(run=run).exists()

    # Below the limit a whole-region run goes ahead with the warning recorded.
    monkeypatch.setattr(methods, "DBSCAN_REGION_MAX_INCIDENTS", 50_000)
    ok = run_for(town, method="dbscan", params={"eps_m": 60, "min_points": 25})
    assert ok.status == HotspotRun.Status.SUCCEEDED
    assert "prefer a district" in ok.summary["warnings"][0]


# --- kernel density -------------------------------------------------------------------------


def quartic_density(x0, y0, xs, ys, h):
    """Σ 3/(π h²) (1 − d²/h²)² per km², written out independently of the engine."""
    d2 = (xs - x0) ** 2 + (ys - y0) ** 2
    inside = d2 < h * h
    return float((3 / (math.pi * h * h) * (1 - d2[inside] / (h * h)) ** 2).sum() * 1e6)


def metric_incidents():
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT ST_X(ST_Transform(point, {SRID})), ST_Y(ST_Transform(point, {SRID})) FROM incidents_incident"
        )
        xy = np.array(cursor.fetchall())
    return xy[:, 0], xy[:, 1]


def test_kde_stores_the_density_surface_as_square_cells(town):
    d1 = planted_town(town, seed=4, background=900)
    run = run_for(
        town, districts=[d1], method="kde", params={"cell_size_m": 100, "bandwidth_m": 250}
    )
    assert run.status == HotspotRun.Status.SUCCEEDED, run.message
    cells = list(HotspotCell.objects.filter(run=run).order_by("i", "j"))
    # 4 km inset by 1 m on 100 m grid lines: 40 × 40 cells, all within 250 m of a point.
    assert len(cells) == 1600
    assert all(c.gi_z is None and c.gi_bin is None and c.emerging is None for c in cells)
    xs, ys = metric_incidents()
    assert sum(c.count for c in cells) == len(xs)
    peak = max(cells, key=lambda c: c.density)
    cx, cy = (peak.i + 0.5) * 100, (peak.j + 0.5) * 100
    assert peak.density == pytest.approx(quartic_density(cx, cy, xs, ys, 250.0), rel=1e-9)
    # the densest cell is at the biggest planted cluster
    big = CLUSTERS[0]
    assert math.hypot(cx - X0 - big[0], cy - Y0 - big[1]) < 150
    # any cell, checked against the formula too
    some = cells[777]
    assert some.density == pytest.approx(
        quartic_density((some.i + 0.5) * 100, (some.j + 0.5) * 100, xs, ys, 250.0), rel=1e-9
    )
    # each cell's count is the incidents in its square
    inside = ((xs // 100 == peak.i) & (ys // 100 == peak.j)).sum()
    assert peak.count == inside
    assert run.summary["bandwidth_m"] == 250.0 and "bandwidth_rule" not in run.params


def test_kde_defaults_are_recorded_and_zero_density_cells_are_not_stored(town):
    planted_town(town, seed=6, background=600)
    # The whole town: D2 (east) has no incidents, most of it farther than the bandwidth.
    run = run_for(town, method="kde")
    p = run.params
    assert p["bandwidth_rule"]["rule"] == "arcgis_default" and p["bandwidth_m"] > 0
    assert "/ 250" in p["cell_size_reason"]
    # shorter side of an 8 × 4 km extent / 250 = 16 m
    assert p["cell_size_m"] == 16.0
    stored = HotspotCell.objects.filter(run=run)
    assert not stored.filter(density__lte=0, count=0).exists()
    assert run.summary["cells_zero_density_not_stored"] > 0
    far_east = X0 + 4000 + p["bandwidth_m"] + 100
    assert not stored.filter(i__gte=math.ceil(far_east / p["cell_size_m"])).exists()
    # Repeating with the stored (completed) parameters gives the same surface.
    again = run_for(town, method="kde", params=run.params)
    assert cells_bytes(again).split(b'"features"')[1] == cells_bytes(run).split(b'"features"')[1]
    feature = json.loads(cells_bytes(run))["features"][0]["properties"]
    assert set(feature) == {"i", "j", "count", "gi_z", "gi_p", "gi_bin", "zone", "density"}
    assert feature["gi_z"] is None and feature["density"] >= 0


# --- emerging hot spots --------------------------------------------------------------------


PERSISTENT = (1100.0, 1100.0)
EMERGING = (3100.0, 2900.0)


def emerging_town(region, *, months: int = 12, seed: int = 11):
    """Monthly incidents in 2024: background everywhere, a cluster every month, and a
    cluster only in the last three months."""
    d1 = district(region, "D1")
    rng = np.random.default_rng(seed)
    for month in range(1, months + 1):
        when = dt.datetime(2024, month, 15, 12, 0, tzinfo=dt.UTC)
        add_incidents(
            region,
            X0 + rng.uniform(1, 3999, 150),
            Y0 + rng.uniform(1, 3999, 150),
            district=d1,
            when=when,
        )
        spots = [PERSISTENT] + ([EMERGING] if month > months - 3 else [])
        for cx, cy in spots:
            add_incidents(
                region,
                X0 + cx + rng.normal(0, 60, 40),
                Y0 + cy + rng.normal(0, 60, 40),
                category="robbery-person",
                district=d1,
                when=when,
            )
    return d1


def cell_at(run, x, y):
    point = Point(*lonlat(X0 + x, Y0 + y), srid=4326)
    return HotspotCell.objects.get(run=run, geom__contains=point)


def test_emerging_run_classifies_persistent_and_new_clusters(town):
    d1 = emerging_town(town)
    run = run_for(
        town, districts=[d1], method="emerging", params={"grid": "square", "cell_size_m": 200}
    )
    assert run.status == HotspotRun.Status.SUCCEEDED, run.message
    assert run.params["steps"] == [dt.date(2024, m, 1).isoformat() for m in range(1, 13)]
    assert run.summary["steps"] == 12

    persistent = cell_at(run, *PERSISTENT)
    new = cell_at(run, *EMERGING)
    assert persistent.emerging == emerging_engine.PERSISTENT
    assert new.emerging == emerging_engine.CONSECUTIVE
    assert run.summary["categories"]["persistent_hot_spot"] >= 1
    assert run.summary["categories"]["consecutive_hot_spot"] >= 1
    # no cold patterns and almost nothing in the uniform background
    assert run.summary["cold_pattern_cells"] == 0
    assert run.summary["hot_pattern_cells"] <= 30

    cells = list(HotspotCell.objects.filter(run=run))
    assert sum(c.count for c in cells) == Incident.objects.count() == run.summary["incidents"]
    for cell in cells:
        assert len(cell.step_counts) == 12 and sum(cell.step_counts) == cell.count
        assert len(cell.step_bins) == 12 and cell.step_bins[-1] == cell.gi_bin
        assert -1 <= cell.trend_tau <= 1 and 0 <= cell.trend_p <= 1
    # the new cluster's cell: nothing before October, hot in the last steps
    assert new.step_counts[:9] == [0] * 9 or sum(new.step_counts[:9]) < 5
    assert all(b >= 2 for b in new.step_bins[-3:]) and all(b < 1 for b in new.step_bins[:8])
    assert persistent.trend_p > 0.05

    # The cells file carries the category key; repeating gives the same bytes.
    again = run_for(
        town, districts=[d1], method="emerging", params={"grid": "square", "cell_size_m": 200}
    )
    assert cells_bytes(again) == cells_bytes(run)
    features = json.loads(cells_bytes(run))["features"]
    keys = {f["properties"]["emerging"] for f in features}
    assert {"persistent_hot_spot", "consecutive_hot_spot", "no_pattern"} <= keys
    assert set(features[0]["properties"]) >= {
        "count",
        "gi_z",
        "gi_p",
        "gi_bin",
        "zone",
        "emerging",
        "step_counts",
    }


def test_emerging_steps_are_whole_months_or_weeks_in_the_region_time_zone(town):
    d1 = emerging_town(town, months=12, seed=3)
    # 15 Jan – 30 Dec: whole months February … November (10 steps).
    run = run_for(
        town,
        districts=[d1],
        date_from=dt.date(2024, 1, 15),
        date_to=dt.date(2024, 12, 30),
        method="emerging",
        params={"cell_size_m": 150},
    )
    assert run.params["steps"][0] == "2024-02-01" and run.params["steps"][-1] == "2024-11-01"
    outside = Incident.objects.filter(occurred_at__month__in=[1, 12]).count()
    assert run.summary["incidents"] == Incident.objects.count() - outside
    weekly = time_steps(dt.date(2024, 1, 3), dt.date(2024, 3, 31), "week")
    assert weekly[0] == dt.date(2024, 1, 8) and all(d.weekday() == 0 for d in weekly)
    assert weekly[-1] == dt.date(2024, 4, 1)  # the day after the last whole week


def test_emerging_refuses_too_few_steps(town):
    emerging_town(town, months=6)
    with pytest.raises(HotspotRefused, match="only 6 whole monthly step"):
        runs.create_run(
            region=town,
            date_from=dt.date(2024, 1, 1),
            date_to=dt.date(2024, 6, 30),
            method="emerging",
        )
    assert not HotspotRun.objects.exists()


# --- guards common to every method --------------------------------------------------------------


@pytest.mark.parametrize("method", ["dbscan", "kde", "emerging"])
def test_every_method_refuses_fewer_than_30_incidents(town, method):
    d1 = district(town, "D1")
    for month in range(1, 13):
        add_incidents(
            town, [X0 + 500 + 40 * month, X0 + 900], [Y0 + 700, Y0 + 900 + 30 * month],
            district=d1, when=dt.datetime(2024, month, 3, tzinfo=dt.UTC),
        )  # fmt: skip
    add_incidents(town, [X0 + 100] * 5, [Y0 + 100] * 5, district=d1)  # 29 in all
    run = runs.create_run(region=town, **PERIOD, method=method)
    with pytest.raises(HotspotRefused, match="only 29 incidents"):
        runs.execute_run(run=run)
    run.refresh_from_db()
    assert run.status == HotspotRun.Status.FAILED
    assert not HotspotCell.objects.filter(run=run).exists()
    assert not HotspotZone.objects.filter(run=run).exists()


@pytest.mark.parametrize("method", ["dbscan", "kde", "emerging"])
def test_every_method_refuses_a_region_without_metric_crs(town, method):
    town.metric_srid = 3857  # not saved: load_boundaries and the admin refuse it
    with pytest.raises(HotspotRefused, match="no metric CRS"):
        runs.create_run(region=town, **PERIOD, method=method)
    assert not HotspotRun.objects.exists()


def test_progress_is_reported_between_the_steps_of_every_method(town):
    d1 = emerging_town(town, months=12, seed=8)
    for method, params in (
        ("gistar", {"cell_size_m": 150}),
        ("dbscan", {"eps_m": 60, "min_points": 20}),
        ("kde", {"cell_size_m": 100}),
        ("emerging", {"cell_size_m": 200}),
    ):
        seen = []
        run = runs.create_run(region=town, districts=[d1], **PERIOD, method=method, params=params)
        runs.execute_run(run=run, progress=lambda f, step, seen=seen: seen.append((f, step)))
        fractions = [f for f, _step in seen]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0, method
        assert seen[0][1] == "area" and seen[-1][1] == "write"
        run.refresh_from_db()
        assert set(step for _f, step in seen) <= set(run.timings)
        assert set(run.timings) <= set(STEPS)


def test_emerging_splits_a_windowed_incident_over_the_steps_it_overlaps(town):
    """Aoristic weights: a window from 1 March to 1 May (region time) counts 31/61 in
    March and 30/61 in April; the same incidents at exact times count whole in March."""
    d1 = emerging_town(town, months=12, seed=5)
    zone = ZoneInfo(town.time_zone)
    march = dt.datetime(2024, 3, 1, tzinfo=zone)
    may = dt.datetime(2024, 5, 1, tzinfo=zone)
    add_incidents(town, [X0 + 3500] * 30, [Y0 + 3500] * 30, district=d1, when=march)
    params = {"grid": "square", "cell_size_m": 200}
    exact = run_for(town, districts=[d1], method="emerging", params=params)
    Incident.objects.filter(occurred_at=march).update(occurred_until=may, time_precision="range")
    windowed = run_for(town, districts=[d1], method="emerging", params=params)

    def corner(run):
        return HotspotCell.objects.get(run=run, i=(X0 + 3500) // 200, j=(Y0 + 3500) // 200)

    steps = exact.params["steps"]
    march_step, april_step = steps.index("2024-03-01"), steps.index("2024-04-01")
    before, after = corner(exact), corner(windowed)
    assert after.count == before.count  # still the same incidents in the cell
    in_april = 30 * (may - dt.datetime(2024, 4, 1, tzinfo=zone)) / (may - march)
    assert in_april == pytest.approx(30 * 30 / 61)
    assert after.step_counts[march_step] == pytest.approx(before.step_counts[march_step] - in_april)
    assert after.step_counts[april_step] == pytest.approx(before.step_counts[april_step] + in_april)
    assert sum(after.step_counts) == pytest.approx(sum(before.step_counts))
    assert windowed.summary["time_weighting"] == "aoristic"
    assert windowed.summary["incidents"] == exact.summary["incidents"]
    assert windowed.summary["incidents_per_step"][march_step] == pytest.approx(
        exact.summary["incidents_per_step"][march_step] - in_april, abs=1e-3
    )
    assert -1 <= after.trend_tau <= 1 and len(after.step_bins) == len(steps)
    # The run page and report (same tables) name the weighting.
    from django.utils import translation

    from hotspots.tables import summary_table

    with translation.override("en"):
        rows = {str(label): str(value) for label, value in summary_table(windowed).rows}
    assert rows["Time weighting"].startswith("aoristic: each incident's weight is split")
