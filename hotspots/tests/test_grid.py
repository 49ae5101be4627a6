"""Grids: cell numbering (numpy, SQL and PostGIS agree), counting in the database,
coverage of the analysis area, neighbours, and the automatic cell size."""

from __future__ import annotations

import math

import numpy as np
import pytest
from django.db import connection

from hotspots import queries
from hotspots.engine import HotspotRefused
from hotspots.engine import grid as grids

SRID = 32718  # UTM 18S (Lima)


def random_points(n: int, seed: int, *, around=(0.0, 0.0), spread=2000.0):
    rng = np.random.default_rng(seed)
    x = around[0] + rng.uniform(-spread, spread, n)
    y = around[1] + rng.uniform(-spread, spread, n)
    return x, y


def sql_indices(grid: grids.Grid, x: np.ndarray, y: np.ndarray):
    """The SQL index expressions evaluated by PostgreSQL on the given metric points."""
    rows_sql = "SELECT * FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY AS p(x, y, n)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT i, j FROM ({queries.indexed_sql(grid, rows_sql, keep=('n',))}) c ORDER BY n",
            [x.tolist(), y.tolist()],
        )
        rows = np.array(cursor.fetchall(), dtype=np.int64)
    return rows[:, 0], rows[:, 1]


def points_outside_their_cell(grid: grids.Grid, x, y, i, j) -> int:
    """How many points are farther than 1 µm from the PostGIS polygon of their cell."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT count(*)
            FROM unnest(%s::float8[], %s::float8[], %s::int[], %s::int[]) AS p(x, y, i, j)
            WHERE NOT ST_DWithin({queries.cell_sql(grid, "p.i", "p.j")},
                                 ST_SetSRID(ST_MakePoint(p.x, p.y), {grid.srid}), 1e-6)
            """,
            [x.tolist(), y.tolist(), i.tolist(), j.tolist()],
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["hex", "square"])
@pytest.mark.parametrize(
    "around", [(0.0, 0.0), (283_417.0, 8_667_251.0)], ids=["origin", "utm-lima"]
)
def test_numpy_and_sql_indices_agree_and_points_lie_in_their_postgis_cell(kind, around):
    grid = grids.Grid(kind, 73.0, SRID)
    x, y = random_points(4000, seed=11, around=around)
    i, j = grid.index(x, y)
    si, sj = sql_indices(grid, x, y)
    assert np.array_equal(i, si) and np.array_equal(j, sj)
    assert points_outside_their_cell(grid, x, y, i, j) == 0


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["hex", "square"])
def test_postgis_grid_function_numbers_cells_like_our_arithmetic(kind):
    """ST_HexagonGrid/ST_SquareGrid's (i, j) are the cells whose centre we compute."""
    grid = grids.Grid(kind, 50.0, SRID)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT c.i, c.j, ST_X(ST_Centroid(c.geom)), ST_Y(ST_Centroid(c.geom))
            FROM {queries.grid_function(grid)}(50, ST_MakeEnvelope(-430, -310, 520, 270, {SRID})) c
            """
        )
        rows = np.array(cursor.fetchall())
    i, j = rows[:, 0].astype(np.int64), rows[:, 1].astype(np.int64)
    assert (i < 0).any() and (j < 0).any() and (i % 2 == 1).any()
    cx, cy = grid.centres(i, j)
    assert np.allclose(cx, rows[:, 2], atol=1e-6) and np.allclose(cy, rows[:, 3], atol=1e-6)
    # and a centre is indexed to its own cell
    ci, cj = grid.index(cx, cy)
    assert np.array_equal(ci, i) and np.array_equal(cj, j)


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["hex", "square"])
def test_touching_pairs_are_the_cells_postgis_sees_touching(kind):
    grid = grids.Grid(kind, 40.0, SRID)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT c.i, c.j FROM {queries.grid_function(grid)}(
                40, ST_Buffer(ST_SetSRID(ST_MakePoint(15, -20), {SRID}), 260)) c
            ORDER BY c.i, c.j
            """
        )
        cells = np.array(cursor.fetchall(), dtype=np.int64)
        i, j = cells[:, 0], cells[:, 1]
        cursor.execute(
            f"""
            WITH c AS (
                SELECT n, {queries.cell_sql(grid, "u.i", "u.j")} AS g
                FROM unnest(%s::int[], %s::int[]) WITH ORDINALITY AS u(i, j, n)
            )
            SELECT a.n - 1, b.n - 1 FROM c a JOIN c b ON a.n <> b.n AND ST_DWithin(a.g, b.g, 1e-6)
            """,
            [i.tolist(), j.tolist()],
        )
        expected = {tuple(r) for r in cursor.fetchall()}
    a, b = grids.touching_pairs(grid, i, j)
    assert set(zip(a.tolist(), b.tolist(), strict=True)) == expected
    degree = np.bincount(a, minlength=len(i))
    assert degree.max() == (8 if kind == "square" else 6)


def test_weights_include_the_focal_cell_and_follow_the_rule():
    i, j = np.meshgrid(np.arange(-3, 4), np.arange(-3, 4), indexing="ij")
    i, j = i.ravel(), j.ravel()
    order = np.argsort(grids.cell_keys(i, j))
    i, j = i[order], j[order]
    centre = int(np.flatnonzero((i == 0) & (j == 0))[0])

    square = grids.Grid("square", 100.0, SRID)
    queen = grids.weights_matrix(square, i, j)
    assert np.all(queen.diagonal() == 1)
    assert queen[centre].sum() == 9  # 8 touching + itself
    rook_band = grids.weights_matrix(square, i, j, rule=grids.DISTANCE_BAND, band_m=100.0)
    assert rook_band[centre].sum() == 5
    queen_band = grids.weights_matrix(
        square, i, j, rule=grids.DISTANCE_BAND, band_m=100.0 * math.sqrt(2)
    )
    assert (queen_band != queen).nnz == 0

    hexagons = grids.Grid("hex", 100.0, SRID)
    touching = grids.weights_matrix(hexagons, i, j)
    assert touching[centre].sum() == 7  # 6 touching + itself
    band = grids.weights_matrix(hexagons, i, j, rule=grids.DISTANCE_BAND, band_m=hexagons.spacing_m)
    assert (band != touching).nnz == 0
    assert (touching != touching.T).nnz == 0

    with pytest.raises(HotspotRefused, match="shorter than the distance"):
        grids.weights_matrix(hexagons, i, j, rule=grids.DISTANCE_BAND, band_m=50.0)


def test_keys_round_trip_and_sort_like_i_then_j():
    i = np.array([-5, -5, 0, 3, 3, 2**20])
    j = np.array([-7, 4, 0, -(2**20), 9, -1])
    keys = grids.cell_keys(i, j)
    assert np.all(np.diff(keys) > 0)
    back_i, back_j = grids.split_keys(keys)
    assert np.array_equal(back_i, i) and np.array_equal(back_j, j)


def test_automatic_cell_size_follows_the_optimized_hot_spot_rule():
    # A lattice of 10 m spacing with a tight cluster: NN distances known by construction.
    lattice = np.stack(np.meshgrid(np.arange(40) * 10.0, np.arange(40) * 10.0), -1).reshape(-1, 2)
    cluster = 1000.0 + np.stack(np.meshgrid(np.arange(20) * 1.0, np.arange(20) * 1.0), -1).reshape(
        -1, 2
    )
    points = np.vstack([lattice, cluster, cluster])  # the cluster twice: duplicates ignored
    nn = np.concatenate([np.full(len(lattice), 10.0), np.full(len(cluster), 1.0)])
    mean, median = nn.mean(), np.median(nn)
    side = max(mean, median) * max(2.0, max(mean, median) / min(mean, median))

    size, reason = grids.choose_cell_size(points[:, 0], points[:, 1], "square")
    assert size == round(side)
    assert f"mean nearest-neighbour distance {mean:.1f} m" in reason
    assert "1,600 distinct" not in reason and f"{len(lattice) + len(cluster):,} distinct" in reason

    hex_size, hex_reason = grids.choose_cell_size(points[:, 0], points[:, 1], "hex")
    edge = side * math.sqrt(2 / (3 * math.sqrt(3)))
    assert hex_size == round(edge)
    # the same area as the square
    assert math.isclose(1.5 * math.sqrt(3) * edge**2, side**2)
    assert "hexagon of the same area" in hex_reason


def test_grid_guards():
    with pytest.raises(HotspotRefused, match="unknown grid kind"):
        grids.Grid("triangle", 100.0, SRID)
    with pytest.raises(HotspotRefused, match="at least"):
        grids.Grid("hex", 1.0, SRID)
    with pytest.raises(HotspotRefused, match="fewer than 3 distinct"):
        grids.choose_cell_size(np.array([1.0, 1.0]), np.array([2.0, 2.0]), "hex")
