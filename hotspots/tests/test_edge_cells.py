"""Cells cut by the area's outline: their share inside the area (``area_cells``) and the
rule that a cell less than half inside is never reported cold (Gi* and emerging runs).

The test town is a 2 km square of 100 m cells plus a strip 20 m wide on its east side, so
that the easternmost column of cells lies 20 % inside the area. Incidents sit on a lattice
(25 per whole cell, 5 per strip cell: the same density everywhere), with an empty 3 × 3
park inside and a cluster straddling the east edge; each cell's points are spread over
the twelve months of 2024 in turn. The strip cells hold few incidents only because most
of them lies outside the area: Gi* calls them cold, the run must not.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from django.contrib.gis.geos import GEOSGeometry
from django.db import connection

from hotspots import queries
from hotspots.engine import emerging as emerging_engine
from hotspots.engine import grid as grids
from hotspots.engine.gistar import confidence_bins, run_gistar
from hotspots.models import HotspotCell, HotspotRun
from hotspots.services.context import EDGE_COVERAGE
from hotspots.tests.test_runs import SRID, X0, Y0, add_incidents, metric_box, run_for

pytestmark = pytest.mark.django_db

CELL = 100.0
N = 20  # whole columns and rows
STRIP = 20.0  # metres of the east column inside the area
I0, J0 = int(X0 // CELL), int(Y0 // CELL)
PARK = (4, 10)  # centre of the empty 3 × 3 block (column, row from the corner)
HOT = (N, 17)  # the strip cell at the centre of the cluster
CLUSTER_EXTRA = 20  # incidents added to each cell of the cluster's 2 × 3 block
EDGE_ROW = 5  # a strip cell far from the cluster


def area_polygon():
    """Inset 1 m from the grid lines on the west, south and north sides (whole cells)."""
    return metric_box(X0 + 1, Y0 + 1, X0 + N * CELL + STRIP, Y0 + N * CELL - 1)


def ewkb(polygon) -> bytes:
    return bytes(GEOSGeometry(polygon.wkt, srid=4326).ewkb)


def cell_points(col: int, row: int) -> tuple[np.ndarray, np.ndarray]:
    """The lattice points of one cell, inside the area (strip cells: the west 20 m)."""
    x0, y0 = X0 + col * CELL, Y0 + row * CELL
    if abs(col - PARK[0]) <= 1 and abs(row - PARK[1]) <= 1:
        xs, ys = np.empty(0), np.empty(0)
    elif col == N:
        ys = y0 + 10 + 20 * np.arange(5)
        xs = np.full(5, x0 + 10)
    else:
        u, v = np.meshgrid(np.arange(5), np.arange(5))
        xs, ys = x0 + 10 + 20 * u.ravel(), y0 + 10 + 20 * v.ravel()
    if col >= N - 1 and abs(row - HOT[1]) <= 1:
        n = np.arange(CLUSTER_EXTRA)
        xs = np.concatenate([xs, x0 + 5 + 5 * (n % 3)])
        ys = np.concatenate([ys, y0 + 5 + 4.5 * n])
    return xs, ys


@pytest.fixture
def edge_town(make_region):
    region = make_region("edgeville", {"E1": ("Borde", area_polygon())})
    district = region.district_set.get(code="E1")
    by_month = [([], []) for _ in range(12)]
    for col in range(N + 1):
        for row in range(N):
            xs, ys = cell_points(col, row)
            for n, (x, y) in enumerate(zip(xs, ys, strict=True)):
                by_month[n % 12][0].append(x)
                by_month[n % 12][1].append(y)
    for month, (xs, ys) in enumerate(by_month, start=1):
        add_incidents(
            region,
            xs,
            ys,
            district=district,
            when=dt.datetime(2024, month, 15, 12, 0, tzinfo=dt.UTC),
        )
    return region


def run_coverage(run: HotspotRun, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Share inside the run's area of each of the run's cells (0 for a cell outside it)."""
    grid = grids.Grid("square", CELL, SRID)
    with connection.cursor() as cursor:
        ai, aj, share = queries.area_cells(cursor, grid, bytes(run.area_geom.ewkb))
    found = dict(zip(zip(ai.tolist(), aj.tolist(), strict=True), share.tolist(), strict=True))
    return np.array([found.get(ij, 0.0) for ij in zip(i.tolist(), j.tolist(), strict=True)])


def at(i, j, col, row) -> int:
    (index,) = np.flatnonzero((i == I0 + col) & (j == J0 + row))
    return int(index)


# --- coverage ----------------------------------------------------------------------------


def test_area_cells_share_inside_the_area():
    # West, south and north sides 1 m inside the grid lines; east side through the
    # centres of the third column.
    polygon = metric_box(X0 + 1, Y0 + 1, X0 + 250, Y0 + 499)
    grid = grids.Grid("square", CELL, SRID)
    with connection.cursor() as cursor:
        i, j, share = queries.area_cells(cursor, grid, ewkb(polygon))
        plain = queries.area_cells(cursor, grid, ewkb(polygon), coverage=False)
    assert len(i) == 3 * 5
    assert plain[2] is None and np.array_equal(plain[0], i) and np.array_equal(plain[1], j)
    inside = at(i, j, 1, 2)
    halved = at(i, j, 2, 2)
    assert share[inside] == 1.0  # covered: no intersection computed
    assert share[halved] == pytest.approx(0.5, abs=1e-6)
    # The cut corner cells lose another metre of the half: 50 × 99 / 100².
    assert share[at(i, j, 2, 0)] == pytest.approx(0.495, abs=1e-6)
    # A west cell loses its westmost metre.
    assert share[at(i, j, 0, 2)] == pytest.approx(0.99, abs=1e-6)


# --- Gi* ---------------------------------------------------------------------------------


def test_gistar_never_calls_a_mostly_outside_cell_cold(edge_town):
    run = run_for(
        edge_town,
        districts=[edge_town.district_set.get(code="E1")],
        params={"grid": "square", "cell_size_m": CELL},
    )
    assert run.status == HotspotRun.Status.SUCCEEDED, run.message
    rows = np.array(
        HotspotCell.objects.filter(run=run)
        .order_by("i", "j")
        .values_list("i", "j", "count", "gi_z", "gi_bin"),
        dtype=np.float64,
    )
    i, j = rows[:, 0].astype(np.int64), rows[:, 1].astype(np.int64)
    counts, stored_z, stored = rows[:, 2], rows[:, 3], rows[:, 4].astype(np.int64)
    assert len(i) == (N + 1) * N
    coverage = run_coverage(run, i, j)
    edge = coverage < EDGE_COVERAGE
    assert edge.sum() == N and np.all(i[edge] == I0 + N)

    # Gi* without the rule, on the stored counts: the z-scores are the run's own.
    grid = grids.Grid("square", CELL, SRID)
    plain = run_gistar(counts, grids.weights_matrix(grid, i, j), fdr=True)
    np.testing.assert_allclose(stored_z, plain.z, rtol=0, atol=1e-9)

    strip_cell = at(i, j, N, EDGE_ROW)
    assert coverage[strip_cell] == pytest.approx(STRIP / CELL, abs=1e-6)
    assert plain.bins[strip_cell] <= -2  # cold at 95 % without the rule...
    assert stored[strip_cell] == 0  # ...not significant with it
    park = at(i, j, *PARK)
    assert coverage[park] == 1.0 and stored[park] <= -2  # an interior cold cell stays cold
    hot = at(i, j, *HOT)
    assert coverage[hot] < EDGE_COVERAGE and stored[hot] >= 2  # hot despite the cut: kept

    suppressed = edge & (plain.bins < 0)
    assert suppressed.sum() >= N - 5
    assert np.all(stored[suppressed] == 0)
    assert np.array_equal(stored[~suppressed], plain.bins[~suppressed])
    summary = run.summary
    assert summary["edge_cells"] == N
    assert summary["cold_suppressed_at_edge"] == int(suppressed.sum())
    assert summary["cold_cells"] == int((stored <= -2).sum())
    assert summary["hot_cells"] == int((plain.bins >= 2).sum())
    assert summary["bins"]["0"] == int((stored == 0).sum())
    assert summary["bins"]["-3"] == int((stored == -3).sum())
    # The stability reruns still ran (they compare hot cells only).
    assert run.stability["rows"] and all(r["jaccard"] is not None for r in run.stability["rows"])


# --- emerging hot spots ------------------------------------------------------------------


def test_emerging_gives_no_cold_category_to_a_mostly_outside_cell(edge_town):
    run = run_for(
        edge_town,
        districts=[edge_town.district_set.get(code="E1")],
        method="emerging",
        params={"grid": "square", "cell_size_m": CELL},
    )
    assert run.status == HotspotRun.Status.SUCCEEDED, run.message
    cells = list(HotspotCell.objects.filter(run=run).order_by("i", "j"))
    i = np.array([c.i for c in cells], dtype=np.int64)
    j = np.array([c.j for c in cells], dtype=np.int64)
    cube = np.array([c.step_counts for c in cells], dtype=np.float64)
    stored_bins = np.array([c.step_bins for c in cells], dtype=np.int64)
    category = np.array([c.emerging for c in cells], dtype=np.int64)
    edge = run_coverage(run, i, j) < EDGE_COVERAGE

    grid = grids.Grid("square", CELL, SRID)
    plain = emerging_engine.emerging_hotspots(cube, grids.weights_matrix(grid, i, j))
    plain_bins = np.column_stack(
        [confidence_bins(plain.z[:, t], plain.p[:, t], fdr=True) for t in range(cube.shape[1])]
    )
    strip_cell = at(i, j, N, EDGE_ROW)
    assert plain.category[strip_cell] < 0  # a cold pattern without the rule
    assert category[strip_cell] == emerging_engine.NO_PATTERN
    assert np.all(stored_bins[strip_cell] == 0)
    assert np.all(category[edge] >= 0) and np.all(stored_bins[edge] >= 0)
    assert category[at(i, j, *PARK)] < 0  # the park stays a cold pattern
    assert (
        category[at(i, j, *HOT)] > 0 and category[at(i, j, *HOT)] == plain.category[at(i, j, *HOT)]
    )
    # Away from the edge nothing changes.
    np.testing.assert_array_equal(category[~edge], plain.category[~edge])
    np.testing.assert_array_equal(stored_bins[~edge], plain_bins[~edge])

    summary = run.summary
    assert summary["edge_cells"] == N
    assert summary["cold_suppressed_at_edge"] == int((edge & (plain_bins < 0).any(axis=1)).sum())
    assert summary["cold_suppressed_at_edge"] >= N - 5
    assert summary["cold_pattern_cells"] == int((category < 0).sum())
