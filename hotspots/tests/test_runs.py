"""Hotspot runs end to end against PostGIS: areas, counting, guards, planted clusters,
repeatability, atomic failure and the background task.

The test town is built in UTM 18S metres (Lima) and stored in WGS84 like real data;
incidents are seeded random points, so every expected number below follows from the
construction, not from a previous run.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import shapely
from django.contrib.gis.geos import GEOSGeometry, Point
from django.db import connection
from pyproj import Transformer

from hotspots import exports, queries, selectors, tasks
from hotspots.engine import HotspotRefused
from hotspots.engine import grid as grids
from hotspots.models import HotspotCell, HotspotRun, HotspotZone
from hotspots.services import runs
from hotspots.services.params import PARAM_NAMES
from incidents.models import Incident
from incidents.tests.factories import make_batch, make_label, make_source

pytestmark = pytest.mark.django_db

SRID = 32718
# South-west corner of the town, on every 100 m grid line.
X0, Y0 = 280_000.0, 8_666_000.0
WHEN = dt.datetime(2024, 3, 10, 15, 0, tzinfo=dt.UTC)
PERIOD = {"date_from": dt.date(2024, 1, 1), "date_to": dt.date(2024, 12, 31)}
_to_lonlat = Transformer.from_crs(SRID, 4326, always_xy=True)
_to_metric = Transformer.from_crs(4326, SRID, always_xy=True)


def lonlat(x, y):
    return _to_lonlat.transform(x, y)


def metric_box(x0: float, y0: float, x1: float, y1: float, *, inset: float = 0.0):
    """A box drawn in metres, returned in lon/lat (edges densified so that it stays the
    same box after the round trip)."""
    box = shapely.segmentize(shapely.box(x0 + inset, y0 + inset, x1 - inset, y1 - inset), 50)
    return shapely.transform(box, lambda xy: np.column_stack(lonlat(xy[:, 0], xy[:, 1])))


def add_incidents(region, xs, ys, *, category="theft-person", district=None, when=WHEN):
    """Incidents at metric points, in one INSERT (one source, label and batch)."""
    source = make_source("hotspot-tests")
    label = make_label(source, category)
    batch = make_batch(source)
    lons, lats = lonlat(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float))
    start = Incident.objects.count()
    Incident.objects.bulk_create(
        [
            Incident(
                source=source,
                external_id=f"{category}-{start + n}",
                point=Point(lon, lat, srid=4326),
                occurred_at=when,
                label=label,
                category_id=label.category_id,
                region=region,
                district=district,
                batch=batch,
            )
            for n, (lon, lat) in enumerate(zip(lons, lats, strict=True))
        ],
        batch_size=5000,
    )


@pytest.fixture
def town(make_region):
    """Two 4 × 4 km districts side by side (D1 west, D2 east), inset 1 m from grid lines."""
    return make_region(
        "hotville",
        {
            "D1": ("Oeste", metric_box(X0, Y0, X0 + 4000, Y0 + 4000, inset=1)),
            "D2": ("Este", metric_box(X0 + 4000, Y0, X0 + 8000, Y0 + 4000, inset=1)),
        },
    )


def district(region, code):
    return region.district_set.get(code=code)


CLUSTERS = [  # (centre x, centre y, points, category), metres from the corner
    (900.0, 1100.0, 260, "robbery-person"),
    (2900.0, 3000.0, 200, "public-drinking"),
    (3000.0, 800.0, 140, "burglary"),
]


def planted_town(region, seed: int = 3, background: int = 1800):
    d1 = district(region, "D1")
    rng = np.random.default_rng(seed)
    add_incidents(
        region,
        X0 + rng.uniform(1, 3999, background),
        Y0 + rng.uniform(1, 3999, background),
        district=d1,
    )
    for cx, cy, n, category in CLUSTERS:
        add_incidents(
            region,
            X0 + cx + rng.normal(0, 90, n),
            Y0 + cy + rng.normal(0, 90, n),
            category=category,
            district=d1,
        )
    return d1


def run_for(region, **kwargs):
    params = kwargs.pop("params", None)
    run = runs.create_run(region=region, **{**PERIOD, **kwargs}, params=params)
    return runs.execute_run(run=run)


def cells_bytes(run) -> bytes:
    return b"".join(exports.cells_geojson(run))


# --- planted clusters, repeatability -----------------------------------------------------


def test_planted_clusters_are_found_and_runs_are_repeatable(town):
    d1 = planted_town(town)
    run = run_for(town, districts=[d1])  # every default: auto hexagons, FDR, alpha 0.05

    assert run.status == HotspotRun.Status.SUCCEEDED, run.message
    zones = list(selectors.zone_list(run))
    centres = [Point(*lonlat(X0 + cx, Y0 + cy), srid=4326) for cx, cy, _n, _c in CLUSTERS]
    found = [any(zone.geom.intersects(c) for zone in zones) for c in centres]
    assert found == [True, True, True]  # recall 3/3
    # ... and no zone away from the planted clusters (400 m ≈ 4.5 σ).
    for zone in zones:
        x, y = _to_metric.transform(zone.geom.centroid.x, zone.geom.centroid.y)
        assert min(np.hypot(x - X0 - cx, y - Y0 - cy) for cx, cy, _n, _c in CLUSTERS) < 400

    # Ranks by incidents; the biggest cluster's zone is first with its category on top.
    counts = [z.incident_count for z in zones]
    assert counts == sorted(counts, reverse=True) and [z.rank for z in zones] == list(
        range(1, len(zones) + 1)
    )
    assert zones[0].top_categories[0]["code"] == "robbery-person"
    total = run.summary["incidents"]
    assert total == Incident.objects.count()
    for zone in zones:
        cells = HotspotCell.objects.filter(zone=zone)
        assert zone.cell_count == cells.count()
        assert zone.incident_count == sum(c.count for c in cells)
        assert zone.area_m2 == pytest.approx(
            zone.cell_count * run.summary["cell_area_m2"], rel=1e-6
        )
        assert zone.density_per_km2 == pytest.approx(zone.incident_count / (zone.area_m2 / 1e6))
        assert zone.share == pytest.approx(zone.incident_count / total)
        assert all(c.gi_bin >= 2 for c in cells)
        assert sum(t["count"] for t in zone.top_categories) <= zone.incident_count
        # the zone polygon is the union of its cells
        metric_area = GEOSGeometry(zone.geom.wkt, srid=4326).transform(SRID, clone=True).area
        assert metric_area == pytest.approx(zone.area_m2, rel=1e-4)

    # Everything needed to repeat it is recorded.
    params = run.params
    assert set(PARAM_NAMES) <= set(params)
    assert params["grid"] == "hex" and params["cell_size_m"] >= 5
    assert "Optimized Hot Spot Analysis" in params["cell_size_reason"]
    assert run.metric_srid == SRID and "PostGIS" in run.software_version
    assert {"area", "cell_size", "grid", "count", "gistar", "zones", "write", "total"} <= set(
        run.timings
    )
    assert run.progress == 1.0 and run.finished_at is not None
    assert run.area_m2 == pytest.approx(3998 * 3998, rel=1e-3)

    again = run_for(town, districts=[d1])
    assert again.pk != run.pk
    assert cells_bytes(again) == cells_bytes(run)
    assert again.params == run.params and again.summary == run.summary


# --- counting matches geometry ------------------------------------------------------------


@pytest.mark.parametrize("grid_kind", ["hex", "square"])
def test_every_counted_incident_lies_in_the_cell_it_was_counted_in(town, grid_kind):
    d1 = planted_town(town, seed=8, background=900)
    run = run_for(town, districts=[d1], params={"grid": grid_kind, "cell_size_m": 130})
    grid = grids.Grid(grid_kind, 130.0, SRID)
    with connection.cursor() as cursor:
        # Incidents inside each cell's PostGIS polygon vs the count stored for it.
        cursor.execute(
            f"""
            WITH c AS (
                SELECT id, count, {queries.cell_sql(grid, "i", "j")} AS g, geom
                FROM hotspots_hotspotcell WHERE run_id = %s
            )
            SELECT c.count,
                   (SELECT count(*) FROM incidents_incident n
                    WHERE ST_DWithin(c.g, ST_Transform(n.point, {SRID}), 1e-6)),
                   ST_HausdorffDistance(ST_Transform(c.g, 4326), c.geom)
            FROM c
            """,
            [run.pk],
        )
        rows = np.array(cursor.fetchall())
        # The cells cover the whole analysis area.
        cursor.execute(
            f"""
            SELECT ST_Covers(ST_Union({queries.cell_sql(grid, "i", "j")}, 0.001),
                             (SELECT ST_Transform(area_geom, {SRID}) FROM hotspots_hotspotrun
                              WHERE id = %s))
            FROM hotspots_hotspotcell WHERE run_id = %s
            """,
            [run.pk, run.pk],
        )
        covers = cursor.fetchone()[0]
    assert np.array_equal(rows[:, 0], rows[:, 1])
    assert rows[:, 0].sum() == Incident.objects.count()
    assert rows[:, 2].max() < 1e-9  # stored geometry is that polygon, in WGS84
    assert covers
    assert (rows[:, 0] == 0).any()  # zero-count cells are included


# --- areas and filters ------------------------------------------------------------------------


def test_area_districts_polygon_and_categories(town):
    d1 = planted_town(town, seed=5, background=700)
    d2 = district(town, "D2")
    rng = np.random.default_rng(9)
    add_incidents(
        town, X0 + 4000 + rng.uniform(1, 3999, 500), Y0 + rng.uniform(1, 3999, 500), district=d2
    )

    whole = run_for(town, params={"grid": "square", "cell_size_m": 200})
    only_d2 = run_for(town, districts=[d2], params={"grid": "square", "cell_size_m": 200})
    assert whole.summary["incidents"] == Incident.objects.count()
    assert only_d2.summary["incidents"] == 500
    # The district's cells: 20 × 20 of them, none from D1 (the districts share an edge
    # on a grid line, and the outline is inset by 1 m).
    assert only_d2.summary["cells"] == 400
    assert whole.summary["cells"] == 800
    x_min = HotspotCell.objects.filter(run=only_d2).order_by("i").first().i * 200
    assert x_min == X0 + 4000

    polygon = GEOSGeometry(metric_box(X0, Y0, X0 + 2000, Y0 + 2000, inset=1).wkt, srid=4326)
    drawn = run_for(town, polygon=polygon, params={"grid": "square", "cell_size_m": 100})
    inside = Incident.objects.filter(point__intersects=polygon).count()
    assert drawn.summary["incidents"] == inside
    assert drawn.summary["cells"] == 400
    assert drawn.area_m2 == pytest.approx(1998 * 1998, rel=1e-3)

    from incidents.models import Category

    burglary = Category.objects.get(code="burglary")
    only_burglary = run_for(
        town, districts=[d1], categories=[burglary], params={"cell_size_m": 100}
    )
    assert only_burglary.summary["incidents"] == CLUSTERS[2][2]
    crimes = run_for(town, family="incivility", params={"cell_size_m": 100})
    assert crimes.summary["incidents"] == CLUSTERS[1][2]  # public drinking only


def test_period_is_whole_days_in_the_region_time_zone(town):
    d1 = planted_town(town, seed=2, background=400)
    # After the period ends in UTC but still on 31 December in Lima (UTC−5).
    late = dt.datetime(2025, 1, 1, 3, 0, tzinfo=dt.UTC)
    add_incidents(town, [X0 + 500] * 7, [Y0 + 500] * 7, district=d1, when=late)
    town.time_zone = "America/Lima"
    town.save()
    run = run_for(town, districts=[d1], params={"cell_size_m": 100})
    assert run.summary["incidents"] == Incident.objects.count()
    town.time_zone = "UTC"
    town.save()
    assert run_for(town, districts=[d1], params={"cell_size_m": 100}).summary["incidents"] == (
        Incident.objects.count() - 7
    )


# --- random points ----------------------------------------------------------------------------


def test_spatially_random_points_about_alpha_before_fdr_and_almost_none_after(town):
    d1 = district(town, "D1")
    rng = np.random.default_rng(2024)
    add_incidents(
        town, X0 + rng.uniform(1, 3999, 24_000), Y0 + rng.uniform(1, 3999, 24_000), district=d1
    )
    # 100 m squares on grid lines: 1,600 whole cells, ~15 incidents each.
    run = run_for(town, districts=[d1], params={"grid": "square", "cell_size_m": 100})
    s = run.summary
    assert s["cells"] == 1600
    before = s["hot_cells_without_fdr"] + s["cold_cells_without_fdr"]
    assert 0.03 * 1600 <= before <= 0.07 * 1600
    assert s["hot_cells"] + s["cold_cells"] <= 3
    assert s["zones"] <= 1


# --- guards --------------------------------------------------------------------------------------


def test_fewer_than_30_incidents_is_refused_and_writes_nothing(town):
    d1 = district(town, "D1")
    rng = np.random.default_rng(1)
    add_incidents(town, X0 + rng.uniform(1, 3999, 29), Y0 + rng.uniform(1, 3999, 29), district=d1)
    run = runs.create_run(region=town, **PERIOD, params={"cell_size_m": 200})
    with pytest.raises(HotspotRefused, match="only 29 incidents"):
        runs.execute_run(run=run)
    run.refresh_from_db()
    assert run.status == HotspotRun.Status.FAILED
    assert "at least 30" in run.message
    assert not HotspotCell.objects.filter(run=run).exists()

    # automatic cell size: refused before choosing it
    auto = runs.create_run(region=town, **PERIOD)
    with pytest.raises(HotspotRefused, match="only 29 incidents"):
        runs.execute_run(run=auto)


def test_constant_counts_are_refused_with_no_variation(make_region):
    # A 600 m square on 100 m grid lines (inset 1 m): exactly 36 cells, 2 incidents each.
    region = make_region(
        "flatville", {"F": ("Plana", metric_box(X0, Y0, X0 + 600, Y0 + 600, inset=1))}
    )
    i, j = np.meshgrid(np.arange(6), np.arange(6))
    xs = np.repeat(X0 + 100 * i.ravel() + 50, 2) + np.tile([-20, 20], 36)
    ys = np.repeat(Y0 + 100 * j.ravel() + 50, 2)
    add_incidents(region, xs, ys)
    run = runs.create_run(region=region, **PERIOD, params={"grid": "square", "cell_size_m": 100})
    with pytest.raises(HotspotRefused, match="no variation"):
        runs.execute_run(run=run)
    run.refresh_from_db()
    assert run.status == HotspotRun.Status.FAILED and "no variation" in run.message


def test_region_without_metric_crs_is_refused(town):
    for srid in (None, 3857, 4326):
        town.metric_srid = srid  # not saved: load_boundaries and the admin refuse it
        with pytest.raises(HotspotRefused, match="no metric CRS"):
            runs.create_run(region=town, **PERIOD)
    assert not HotspotRun.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "voronoi"}, "not available"),
        ({"method": "dbscan", "params": {"eps_m": 0}}, "eps_m must be between"),
        ({"method": "dbscan", "params": {"cell_size_m": 100}}, "unknown parameter"),
        ({"method": "kde", "params": {"bandwidth_m": -5}}, "bandwidth_m must be positive"),
        ({"method": "emerging", "params": {"step": "day"}}, "step must be one of"),
        ({"method": "emerging", "params": {"time_lag": 1.5}}, "time_lag must be a whole"),
        ({"params": {"stability": "yes"}}, "stability must be true or false"),
        ({"params": {"alpha": 0.2}}, "alpha must be one of"),
        ({"params": {"permutations": -1}}, "permutations must be"),
        ({"params": {"grid": "triangle"}}, "grid must be one of"),
        ({"params": {"cell_size_m": 2}}, "at least"),
        ({"params": {"neighbour_rule": "distance_band"}}, "needs distance_band_m"),
        ({"params": {"bogus": 1}}, "unknown parameter"),
        ({"family": "weather"}, "family must be"),
        ({"date_from": dt.date(2025, 1, 1)}, "ends before it starts"),
    ],
)
def test_bad_requests_are_refused_before_saving(town, kwargs, message):
    with pytest.raises(HotspotRefused, match=message):
        runs.create_run(region=town, **{**PERIOD, **kwargs})
    assert not HotspotRun.objects.exists()


def test_a_failure_while_writing_leaves_nothing_half_written(town, monkeypatch):
    d1 = planted_town(town, seed=4, background=600)

    def broken(summary):
        raise RuntimeError("disk full")

    # summary_line runs at the very end of the write, after the cells and zones went in.
    monkeypatch.setattr(runs, "summary_line", broken)
    run = runs.create_run(region=town, districts=[d1], **PERIOD, params={"cell_size_m": 100})
    with pytest.raises(RuntimeError):
        runs.execute_run(run=run)
    run.refresh_from_db()
    assert run.status == HotspotRun.Status.FAILED
    assert "disk full" in run.message
    assert not HotspotCell.objects.filter(run=run).exists()
    assert not HotspotZone.objects.filter(run=run).exists()


# --- the background task ---------------------------------------------------------------------


def test_the_task_executes_a_queued_run(town):
    d1 = planted_town(town, seed=6, background=600)
    run = runs.create_run(region=town, districts=[d1], **PERIOD, params={"grid": "square"})
    assert run.status == HotspotRun.Status.QUEUED
    run = tasks.enqueue_run(run)  # the test settings run tasks immediately
    assert run.status == HotspotRun.Status.SUCCEEDED
    assert run.summary["zones"] >= 3
    assert run.params["cell_size_reason"]

    empty = runs.create_run(
        region=town, date_from=dt.date(2020, 1, 1), date_to=dt.date(2020, 1, 31)
    )
    empty = tasks.enqueue_run(empty)
    assert empty.status == HotspotRun.Status.FAILED and "only 0 incidents" in empty.message


def test_permutation_runs_record_the_seed_and_repeat(town):
    d1 = planted_town(town, seed=7, background=600)
    params = {"cell_size_m": 120, "permutations": 99, "seed": 5}
    first = run_for(town, districts=[d1], params=params)
    second = run_for(town, districts=[d1], params=params)
    assert first.params["seed"] == 5 and first.params["permutations"] == 99
    assert "permutations (99)" in first.summary["p_value"]
    assert cells_bytes(first) == cells_bytes(second)
    # pseudo p-values come in steps of 2/(R+1)
    p = np.array(list(HotspotCell.objects.filter(run=first).values_list("gi_p", flat=True)))
    assert p.min() >= 2 / 100 - 1e-12
