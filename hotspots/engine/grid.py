"""Square and hexagon grids in a metric CRS, numbered exactly as PostGIS numbers them.

Cells are anchored at the origin of the metric CRS (the region's UTM zone), like
``ST_SquareGrid`` and ``ST_HexagonGrid``, so that runs over different areas or periods
share cells and can be compared cell by cell.

* square of side ``s``: cell (i, j) is ``[i·s, (i+1)·s] × [j·s, (j+1)·s]``;
* hexagon of edge ``s`` (PostGIS' ``size``: edge = circumradius, flat top): the centre of
  cell (i, j) is ``(1.5·s·i, √3·s·(j + ½·[i odd]))``.

Incidents are counted in the database without any polygon test: each point's cell index
is computed from ``ST_X``/``ST_Y`` of its metric position with floor arithmetic (for
hexagons: the nearer of the two candidate column centres, the hexagon tiling being the
Voronoi diagram of its centres), then ``GROUP BY i, j``. Planning measured an
``ST_HexagonGrid`` join at ~5 s for a million points; the arithmetic is far cheaper. The
list of cells covering the analysis area comes from ``ST_SquareGrid``/``ST_HexagonGrid``
over the area's metric polygon, so both sides use PostGIS' numbering
(tests/test_grid.py checks that every counted point lies in its cell's polygon).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from django.db import transaction
from django.db.models import BinaryField, Func, Value
from django.db.models.functions import TruncDate
from scipy import sparse
from scipy.spatial import cKDTree

from hotspots.engine import HotspotRefused

SQRT3 = math.sqrt(3.0)
KINDS = ("hex", "square")
# Neighbour rules: the touching cells plus the cell itself (square: 8 + 1, "queen";
# hexagon: 6 + 1), or every cell whose centre is within a distance band (itself included).
CONTIGUITY = "contiguity"
DISTANCE_BAND = "distance_band"
NEIGHBOUR_RULES = (CONTIGUITY, DISTANCE_BAND)
# A run refuses grids larger than this (the planner is told to choose larger cells).
MAX_CELLS = 1_500_000
MIN_CELL_SIZE_M = 5.0

# Offsets (di, dj) of the touching cells.
_SQUARE_OFFSETS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
# Hexagon columns alternate: odd columns sit half a row higher.
_HEX_OFFSETS_EVEN = [(0, -1), (0, 1), (-1, -1), (-1, 0), (1, -1), (1, 0)]
_HEX_OFFSETS_ODD = [(0, -1), (0, 1), (-1, 0), (-1, 1), (1, 0), (1, 1)]


def _f8(value: float) -> str:
    """A float8 SQL literal that parses back to exactly ``value``."""
    return f"{float(value)!r}::float8"


@dataclass(frozen=True)
class Grid:
    kind: str  # "hex" | "square"
    size: float  # square side, or hexagon edge (PostGIS' size), in metres
    srid: int  # the metric CRS the grid lives in

    def __post_init__(self):
        if self.kind not in KINDS:
            raise HotspotRefused(f"unknown grid kind {self.kind!r}: use hex or square")
        if not (math.isfinite(self.size) and self.size >= MIN_CELL_SIZE_M):
            raise HotspotRefused(f"the cell size must be at least {MIN_CELL_SIZE_M:g} m")

    # --- geometry ---------------------------------------------------------------------

    @property
    def cell_area_m2(self) -> float:
        if self.kind == "square":
            return self.size * self.size
        return 1.5 * SQRT3 * self.size * self.size

    @property
    def spacing_m(self) -> float:
        """Distance between the centres of two cells sharing an edge."""
        return self.size if self.kind == "square" else SQRT3 * self.size

    def centres(self, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        i = np.asarray(i, dtype=np.float64)
        j = np.asarray(j, dtype=np.float64)
        s = self.size
        if self.kind == "square":
            return (i + 0.5) * s, (j + 0.5) * s
        odd = np.abs(np.fmod(i, 2.0))
        return 1.5 * s * i, SQRT3 * s * (j + 0.5 * odd)

    def index(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cell indices of metric points: the same arithmetic as :meth:`sql_indexed`."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        s = self.size
        if self.kind == "square":
            return np.floor(x / s).astype(np.int64), np.floor(y / s).astype(np.int64)
        a, h = 1.5 * s, SQRT3 * s
        c0 = np.floor(x / a)
        off0 = 0.5 * np.abs(np.fmod(c0, 2.0))
        off1 = 0.5 - off0
        j0 = np.floor(y / h - off0 + 0.5)
        j1 = np.floor(y / h - off1 + 0.5)
        dx0, dy0 = x - a * c0, y - h * (j0 + off0)
        dx1, dy1 = x - a * (c0 + 1), y - h * (j1 + off1)
        d0 = dx0 * dx0 + dy0 * dy0
        d1 = dx1 * dx1 + dy1 * dy1
        first = d0 <= d1
        i = np.where(first, c0, c0 + 1)
        j = np.where(first, j0, j1)
        return i.astype(np.int64), j.astype(np.int64)

    # --- SQL ----------------------------------------------------------------------------

    def sql_indexed(self, rows_sql: str, keep: tuple[str, ...] = ()) -> str:
        """A query adding the cell indices ``i``, ``j`` to ``rows_sql`` (which has metric
        columns ``x``, ``y`` and the ``keep`` columns), with the same operations in the same
        order as :meth:`index`, in float8 throughout.

        Every intermediate value sits in a derived table fenced with ``OFFSET 0``: without
        the fences PostgreSQL inlines the subqueries and evaluates each shared expression
        (the column, its parity, the row candidates) once per use, which made the hexagon
        arithmetic several times slower than the ST_Transform it follows.
        """
        cols = "".join(f"{c}, " for c in keep)
        if self.kind == "square":
            size = _f8(self.size)
            return f"""
                SELECT {cols}floor(x / {size})::integer AS i, floor(y / {size})::integer AS j
                FROM ({rows_sql}) r
            """
        a, h, half = _f8(1.5 * self.size), _f8(SQRT3 * self.size), _f8(0.5)
        return f"""
            SELECT {cols}(CASE WHEN d0 <= d1 THEN c0 ELSE c0 + 1 END)::integer AS i,
                   (CASE WHEN d0 <= d1 THEN j0 ELSE j1 END)::integer AS j
            FROM (
                SELECT {cols}c0, j0, j1, dx0 * dx0 + dy0 * dy0 AS d0, dx1 * dx1 + dy1 * dy1 AS d1
                FROM (
                    SELECT {cols}c0, j0, j1,
                           x - {a} * c0 AS dx0, y - {h} * (j0 + off0) AS dy0,
                           x - {a} * (c0 + 1) AS dx1, y - {h} * (j1 + ({half} - off0)) AS dy1
                    FROM (
                        SELECT {cols}x, y, c0, off0,
                               floor(y / {h} - off0 + {half}) AS j0,
                               floor(y / {h} - ({half} - off0) + {half}) AS j1
                        FROM (
                            SELECT {cols}x, y, c0,
                                   {half} * abs(mod(c0::bigint, 2))::float8 AS off0
                            FROM (
                                SELECT {cols}x, y, floor(x / {a}) AS c0 FROM ({rows_sql}) r
                                OFFSET 0
                            ) s1 OFFSET 0
                        ) s2 OFFSET 0
                    ) s3 OFFSET 0
                ) s4 OFFSET 0
            ) s5
        """

    def sql_cell(self, i: str, j: str) -> str:
        """SQL geometry (in the metric SRID) of cell ``i``, ``j``: PostGIS' own polygon."""
        function = "ST_Square" if self.kind == "square" else "ST_Hexagon"
        return f"ST_SetSRID({function}({float(self.size)!r}, {i}, {j}), {int(self.srid)})"

    @property
    def sql_grid_function(self) -> str:
        return "ST_SquareGrid" if self.kind == "square" else "ST_HexagonGrid"


# --- cell keys and neighbours ---------------------------------------------------------


def cell_keys(i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """One sortable int64 per cell; sorting by key sorts by (i, j)."""
    return (np.asarray(i, dtype=np.int64) << 32) + (np.asarray(j, dtype=np.int64) + (1 << 31))


def split_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keys = np.asarray(keys, dtype=np.int64)
    i = keys >> 32
    j = (keys - (i << 32)) - (1 << 31)
    return i, j


def touching_pairs(grid: Grid, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) index pairs of cells that touch (both directions, no self pairs).

    ``i``, ``j`` must be sorted by :func:`cell_keys` (as every cell array here is).
    """
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    keys = cell_keys(i, j)
    if len(keys) > 1 and not np.all(keys[1:] > keys[:-1]):
        raise ValueError("cells must be sorted by (i, j) without duplicates")
    rows, cols = [], []
    if grid.kind == "square":
        groups = [(np.arange(len(i)), _SQUARE_OFFSETS)]
    else:
        odd = (i % 2) != 0
        groups = [
            (np.flatnonzero(~odd), _HEX_OFFSETS_EVEN),
            (np.flatnonzero(odd), _HEX_OFFSETS_ODD),
        ]
    for members, offsets in groups:
        for di, dj in offsets:
            wanted = cell_keys(i[members] + di, j[members] + dj)
            at = np.searchsorted(keys, wanted)
            at_clipped = np.minimum(at, len(keys) - 1)
            found = (at < len(keys)) & (keys[at_clipped] == wanted)
            rows.append(members[found])
            cols.append(at_clipped[found])
    if not rows:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(rows), np.concatenate(cols)


def band_pairs(
    grid: Grid, i: np.ndarray, j: np.ndarray, band_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) pairs of distinct cells whose centres are at most ``band_m`` apart."""
    x, y = grid.centres(i, j)
    tree = cKDTree(np.column_stack([x, y]))
    # A relative epsilon so that a band equal to the cell spacing includes those cells.
    pairs = tree.query_pairs(r=band_m * (1 + 1e-9), output_type="ndarray")
    if len(pairs) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    a, b = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
    return np.concatenate([a, b]), np.concatenate([b, a])


def weights_matrix(
    grid: Grid,
    i: np.ndarray,
    j: np.ndarray,
    *,
    rule: str = CONTIGUITY,
    band_m: float | None = None,
) -> sparse.csr_matrix:
    """Binary spatial weights with the focal cell included (the * of Gi*), as CSR."""
    n = len(i)
    if rule == CONTIGUITY:
        a, b = touching_pairs(grid, i, j)
    elif rule == DISTANCE_BAND:
        if band_m is None or not math.isfinite(band_m) or band_m <= 0:
            raise HotspotRefused("a distance band neighbour rule needs a positive band in metres")
        if band_m < grid.spacing_m:
            raise HotspotRefused(
                f"the distance band ({band_m:g} m) is shorter than the distance between "
                f"neighbouring cell centres ({grid.spacing_m:.1f} m): no cell would have a neighbour"
            )
        a, b = band_pairs(grid, i, j, band_m)
    else:
        raise HotspotRefused(f"unknown neighbour rule {rule!r}: use {' or '.join(NEIGHBOUR_RULES)}")
    diagonal = np.arange(n, dtype=np.int64)
    rows = np.concatenate([a, diagonal])
    cols = np.concatenate([b, diagonal])
    data = np.ones(len(rows), dtype=np.float64)
    matrix = sparse.csr_matrix((data, (rows, cols)), shape=(n, n))
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix


def adjacency_matrix(grid: Grid, i: np.ndarray, j: np.ndarray) -> sparse.csr_matrix:
    """Touching cells, without the diagonal (for merging hot cells into zones)."""
    a, b = touching_pairs(grid, i, j)
    n = len(i)
    return sparse.csr_matrix((np.ones(len(a)), (a, b)), shape=(n, n))


# --- automatic cell size (Optimized Hot Spot Analysis) ---------------------------------


def choose_cell_size(x: np.ndarray, y: np.ndarray, kind: str) -> tuple[float, str]:
    """Cell size the way ArcGIS' Optimized Hot Spot Analysis sizes its fishnet.

    The larger of the mean and the median nearest-neighbour distance between incident
    locations, times max(2, their ratio), is the square's side. Coincident incidents
    (several records at one address) are one location here: their zero distances
    would say nothing about spacing. A hexagon gets the same area as that square.
    Returns the size (whole metres) and the reason, for the run's parameters.
    """
    points = np.unique(np.round(np.column_stack([x, y]), 2), axis=0)
    if len(points) < 3:
        raise HotspotRefused(
            "the cell size cannot be chosen automatically: fewer than 3 distinct incident "
            "locations; give a cell size"
        )
    distances, _ = cKDTree(points).query(points, k=2)
    nearest = distances[:, 1]
    mean, median = float(nearest.mean()), float(np.median(nearest))
    larger, smaller = max(mean, median), min(mean, median)
    ratio = larger / smaller if smaller > 0 else math.inf
    factor = max(2.0, ratio) if math.isfinite(ratio) else 2.0
    side = larger * factor
    reason = (
        f"Optimized Hot Spot Analysis fishnet rule over {len(points):,} distinct incident "
        f"locations: mean nearest-neighbour distance {mean:.1f} m, median {median:.1f} m; "
        f"the larger ({larger:.1f} m) × max(2, ratio {ratio:.2f}) = {side:.1f} m square side"
    )
    if kind == "hex":
        edge = side * math.sqrt(2.0 / (3.0 * SQRT3))
        size = max(MIN_CELL_SIZE_M, float(round(edge)))
        reason += f"; hexagon of the same area: edge {edge:.1f} m, rounded to {size:g} m"
    else:
        size = max(MIN_CELL_SIZE_M, float(round(side)))
        reason += f", rounded to {size:g} m"
    return size, reason


# --- database ---------------------------------------------------------------------------


class _MetricPoint(Func):
    """``ST_Transform(point, srid)``, declared as a non-geometry output so that Django
    selects the geometry as is (no ``::bytea`` round trip): only SQL reads it."""

    function = "ST_Transform"
    output_field = BinaryField()


def incidents_sql(queryset, srid: int, *, time_zone: str | None = None) -> tuple[str, tuple]:
    """SQL and parameters selecting ``id``, ``category_id``, the metric point ``g`` and, with
    ``time_zone``, the local ``day`` of the incidents of ``queryset`` (any filters)."""
    queryset = queryset.order_by().annotate(g=_MetricPoint("point", Value(int(srid))))
    columns = ["id", "category_id", "g"]
    if time_zone:
        queryset = queryset.annotate(day=TruncDate("occurred_at", tzinfo=ZoneInfo(time_zone)))
        columns.append("day")
    sql, params = queryset.values_list(*columns).query.sql_with_params()
    return sql, tuple(params)


def _metric_xy_sql(inner_sql: str, keep: tuple[str, ...] = ("category_id",)) -> str:
    """Metric x, y (float8) of :func:`incidents_sql` rows, with the ``keep`` columns.
    ``OFFSET 0`` keeps the planner from inlining the subquery, which would repeat
    ST_Transform for every use of x and y; below the fence the scan and the transform
    still run in parallel workers."""
    cols = "".join(f"s.{c}, " for c in keep)
    return f"""
        SELECT {cols}ST_X(s.g) AS x, ST_Y(s.g) AS y
        FROM ({inner_sql}) s
        OFFSET 0
    """


def _fetch_tuned(cursor, sql: str, params) -> list[tuple]:
    """Runs a counting query with two planner settings, local to a short transaction:

    * JIT off: PostgreSQL compiles these arithmetic-heavy plans for seconds (the
      ST_Transform cost estimate makes them look expensive) before running them in
      milliseconds;
    * no sorting for the GROUP BY: the planner cannot estimate how many cells there are
      and sorts a million rows where hashing them is several times faster.
    """
    with transaction.atomic(using=cursor.db.alias):
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute(sql, params)
        return cursor.fetchall()


def count_incidents(
    cursor, grid: Grid, inner_sql: str, params: list | tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Incidents per (cell, category), counted in the database with arithmetic indices.

    ``inner_sql`` comes from :func:`incidents_sql` (in the grid's SRID). Returns arrays i,
    j, category_id, count, sorted by (i, j, category).
    """
    indexed = grid.sql_indexed(_metric_xy_sql(inner_sql), keep=("category_id",))
    rows = _fetch_tuned(
        cursor,
        f"SELECT i, j, category_id, count(*) FROM ({indexed}) c GROUP BY 1, 2, 3",
        params,
    )
    if not rows:
        empty = np.empty(0, np.int64)
        return empty, empty, empty, empty
    table = np.array(rows, dtype=np.int64)
    order = np.lexsort((table[:, 2], table[:, 1], table[:, 0]))
    table = table[order]
    return table[:, 0], table[:, 1], table[:, 2], table[:, 3]


def count_incidents_by_step(
    cursor, grid: Grid, inner_sql: str, params: list | tuple, boundaries: list[dt.date]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Incidents per (cell, time step), counted in the database.

    ``inner_sql`` comes from :func:`incidents_sql` with a time zone (it has ``day``);
    ``boundaries`` are the steps' first days followed by the day after the last step.
    Step ``s`` (0-based) holds the days in ``[boundaries[s], boundaries[s + 1])``; rows
    outside every step are left out. Returns arrays i, j, step, count sorted by (i, j, step).
    """
    indexed = grid.sql_indexed(_metric_xy_sql(inner_sql, keep=("day",)), keep=("day",))
    rows = _fetch_tuned(
        cursor,
        f"""
        SELECT i, j, step - 1, n FROM (
            SELECT i, j, width_bucket(day, %s::date[]) AS step, count(*) AS n
            FROM ({indexed}) c GROUP BY 1, 2, 3
        ) b
        WHERE step BETWEEN 1 AND %s
        """,
        [list(boundaries), *params, len(boundaries) - 1],
    )
    if not rows:
        empty = np.empty(0, np.int64)
        return empty, empty, empty, empty
    table = np.array(rows, dtype=np.int64)
    order = np.lexsort((table[:, 2], table[:, 1], table[:, 0]))
    table = table[order]
    return table[:, 0], table[:, 1], table[:, 2], table[:, 3]


def cell_polygons(grid: Grid, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Shapely polygons (metric CRS) of cells: the same shapes as ``ST_Square`` /
    ``ST_Hexagon`` (hexagons flat-topped, vertices at 0°, 60°, … from the centre)."""
    x, y = grid.centres(i, j)
    s = grid.size
    if grid.kind == "square":
        h = s / 2.0
        return shapely.box(x - h, y - h, x + h, y + h)
    angles = np.deg2rad(np.arange(0, 360, 60))
    ring = np.stack(
        [x[:, None] + s * np.cos(angles)[None, :], y[:, None] + s * np.sin(angles)[None, :]],
        axis=-1,
    )
    return shapely.polygons(np.concatenate([ring, ring[:, :1]], axis=1))


def area_extent(cursor, area_ewkb: bytes, srid: int) -> tuple[float, float, float, float]:
    """(min x, min y, max x, max y) of the area (WGS84 EWKB) in the metric CRS ``srid``."""
    cursor.execute(
        """
        SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b)
        FROM (SELECT ST_Transform(ST_GeomFromEWKB(%s), %s)::box2d AS b) e
        """,
        [area_ewkb, int(srid)],
    )
    return tuple(float(v) for v in cursor.fetchone())


def metric_points(cursor, inner_sql: str, params) -> tuple[np.ndarray, np.ndarray]:
    """Metric coordinates of :func:`incidents_sql` rows (for the automatic cell size)."""
    rows = _fetch_tuned(cursor, f"SELECT x, y FROM ({_metric_xy_sql(inner_sql, ())}) p", params)
    if not rows:
        return np.empty(0), np.empty(0)
    table = np.array(rows, dtype=np.float64)
    return table[:, 0], table[:, 1]


def estimated_cells(cursor, grid: Grid, area_ewkb: bytes) -> int:
    """Cells of the area's bounding box: checked before the grid is built."""
    cursor.execute(
        """
        SELECT ST_XMax(b) - ST_XMin(b), ST_YMax(b) - ST_YMin(b)
        FROM (SELECT ST_Envelope(ST_Transform(ST_GeomFromEWKB(%s), %s)) AS b) e
        """,
        [area_ewkb, grid.srid],
    )
    width, height = cursor.fetchone()
    return int(((width + 2 * grid.size) * (height + 2 * grid.size)) / grid.cell_area_m2)


def area_cells(
    cursor, grid: Grid, area_ewkb: bytes, *, coverage: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Every cell intersecting the area (WGS84 EWKB), from PostGIS' grid function, sorted,
    with the share of each cell's area inside the area (``None`` without ``coverage``).

    The share is 1 for a cell the area covers; otherwise area(cell ∩ area) / area(cell),
    in the grid's metric CRS. ``ST_Covers(area, cell)`` rather than the equivalent
    ``ST_CoveredBy(cell, area)``: PostGIS prepares (and caches) only the first argument,
    and the prepared area made the test ten times faster on the demo city. Only the few
    cells cut by the outline get an intersection, each against the pieces of the
    subdivided area whose boxes touch it: with the whole outline of a large city (Lima,
    24,000 vertices, 150 m hexagons) the query took 16 s, with the pieces 4 s (1.5 s
    without the shares); on the demo city (50 m hexagons) 0.3 s, 0.1 s without.
    """
    estimate = estimated_cells(cursor, grid, area_ewkb)
    if estimate > MAX_CELLS:
        raise HotspotRefused(
            f"a {grid.size:g} m grid over this area would have about {estimate:,} cells "
            f"(at most {MAX_CELLS:,}): choose larger cells or a smaller area"
        )
    pieces = ""
    if coverage:
        pieces = ", pieces AS MATERIALIZED (SELECT ST_Subdivide(area.g, 256) AS g FROM area)"
        share = """
            CASE WHEN ST_Covers(area.g, c.geom) THEN 1.0::float8 ELSE (
                SELECT coalesce(sum(ST_Area(ST_Intersection(c.geom, p.g))), 0.0)
                FROM pieces p WHERE p.g && c.geom
            ) / ST_Area(c.geom) END
        """
    else:
        share = "NULL::float8"
    cursor.execute(
        f"""
        WITH area AS MATERIALIZED (SELECT ST_Transform(ST_GeomFromEWKB(%s), %s) AS g){pieces}
        SELECT c.i, c.j, {share}
        FROM area, {grid.sql_grid_function}(%s, area.g) AS c
        WHERE ST_Intersects(c.geom, area.g)
        ORDER BY c.i, c.j
        """,
        [area_ewkb, grid.srid, float(grid.size)],
    )
    rows = cursor.fetchall()
    if not rows:
        empty = np.empty(0, np.int64)
        return empty, empty, (np.empty(0) if coverage else None)
    i = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    j = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    if not coverage:
        return i, j, None
    # A sliver's intersection can come out a hair above the cell's own area.
    share = np.fromiter((r[2] for r in rows), dtype=np.float64, count=len(rows))
    return i, j, np.clip(share, 0.0, 1.0)
