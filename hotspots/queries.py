"""The SQL behind hotspot runs: the incidents of a run as metric points, counted per grid
cell in PostGIS, the cells covering the analysis area, the area itself, and DBSCAN's
clusters. What it returns are numpy arrays for :mod:`hotspots.engine`, which knows no SQL.

Incidents are counted in the database without any polygon test: each point's cell index
is computed from ``ST_X``/``ST_Y`` of its metric position with floor arithmetic (for
hexagons: the nearer of the two candidate column centres, the hexagon tiling being the
Voronoi diagram of its centres), then ``GROUP BY i, j``. Planning measured an
``ST_HexagonGrid`` join at ~5 s for a million points; the arithmetic is far cheaper. The
list of cells covering the analysis area comes from ``ST_SquareGrid``/``ST_HexagonGrid``
over the area's metric polygon, so both sides use PostGIS' numbering
(tests/test_grid.py checks that every counted point lies in its cell's polygon).

Raw SQL throughout: the ORM has no window functions over geometries, no set-returning
grid functions and no planner settings local to a query.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import numpy as np
from django.db import connections, transaction
from django.db.models import BinaryField, Case, Count, FloatField, Func, Value, When
from django.db.models.functions import Floor, TruncDate

from geo.conf import STORAGE_SRID
from hotspots.engine import HotspotRefused
from hotspots.engine import grid as grids
from hotspots.engine.grid import SQRT3, Grid
from hotspots.models import HotspotRun, HotspotZone
from neighborhoods import selectors as neighborhood_selectors

# --- cells ------------------------------------------------------------------------------


def _f8(value: float) -> str:
    """A float8 SQL literal that parses back to exactly ``value``."""
    return f"{float(value)!r}::float8"


def indexed_sql(grid: Grid, rows_sql: str, keep: tuple[str, ...] = ()) -> str:
    """A query adding the cell indices ``i``, ``j`` to ``rows_sql`` (which has metric
    columns ``x``, ``y`` and the ``keep`` columns), with the same operations in the same
    order as :meth:`Grid.index`, in float8 throughout.

    Every intermediate value sits in a derived table fenced with ``OFFSET 0``: without
    the fences PostgreSQL inlines the subqueries and evaluates each shared expression
    (the column, its parity, the row candidates) once per use, which made the hexagon
    arithmetic several times slower than the ST_Transform it follows.
    """
    cols = "".join(f"{c}, " for c in keep)
    if grid.shifted:
        # Relative to the grid's origin first, as Grid.index subtracts it.
        ox, oy = grid.origin
        rows_sql = f"""
            SELECT {cols}x - {_f8(ox)} AS x, y - {_f8(oy)} AS y FROM ({rows_sql}) r0
        """
    if grid.kind == "square":
        size = _f8(grid.size)
        return f"""
            SELECT {cols}floor(x / {size})::integer AS i, floor(y / {size})::integer AS j
            FROM ({rows_sql}) r
        """
    a, h, half = _f8(1.5 * grid.size), _f8(SQRT3 * grid.size), _f8(0.5)
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


def cell_sql(grid: Grid, i: str, j: str) -> str:
    """SQL geometry (in the metric SRID) of cell ``i``, ``j``: PostGIS' own polygon."""
    function = "ST_Square" if grid.kind == "square" else "ST_Hexagon"
    ox, oy = grid.origin
    origin = f"ST_MakePoint({_f8(ox)}, {_f8(oy)})"
    return f"ST_SetSRID({function}({float(grid.size)!r}, {i}, {j}, {origin}), {int(grid.srid)})"


def grid_function(grid: Grid) -> str:
    """The PostGIS function that lists the grid's cells over a geometry."""
    return "ST_SquareGrid" if grid.kind == "square" else "ST_HexagonGrid"


# --- incidents --------------------------------------------------------------------------


class _MetricPoint(Func):
    """``ST_Transform(point, srid)``, declared as a non-geometry output so that Django
    selects the geometry as is (no ``::bytea`` round trip): only SQL reads it."""

    function = "ST_Transform"
    output_field = BinaryField()


def incidents_sql(
    queryset, srid: int, *, time_zone: str | None = None, window: bool = False
) -> tuple[str, tuple]:
    """SQL and parameters selecting ``id``, ``category_id``, the metric point ``g`` and, with
    ``time_zone``, the local ``day`` of the incidents of ``queryset`` (any filters); with
    ``window``, their time window ``occurred_at`` and ``occurred_until`` (NULL: exact)."""
    queryset = queryset.order_by().annotate(g=_MetricPoint("point", Value(int(srid))))
    columns = ["id", "category_id", "g"]
    if time_zone:
        queryset = queryset.annotate(day=TruncDate("occurred_at", tzinfo=ZoneInfo(time_zone)))
        columns.append("day")
    if window:
        columns += ["occurred_at", "occurred_until"]
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


def _sorted_columns(rows: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows of four whole numbers as four arrays, sorted by the first three columns."""
    if not rows:
        empty = np.empty(0, np.int64)
        return empty, empty, empty, empty
    table = np.array(rows, dtype=np.int64)
    order = np.lexsort((table[:, 2], table[:, 1], table[:, 0]))
    table = table[order]
    return table[:, 0], table[:, 1], table[:, 2], table[:, 3]


def count_incidents(
    cursor, grid: Grid, inner_sql: str, params: list | tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Incidents per (cell, category), counted in the database with arithmetic indices.

    ``inner_sql`` comes from :func:`incidents_sql` (in the grid's SRID). Returns arrays i,
    j, category_id, count, sorted by (i, j, category).
    """
    indexed = indexed_sql(grid, _metric_xy_sql(inner_sql), keep=("category_id",))
    rows = _fetch_tuned(
        cursor,
        f"SELECT i, j, category_id, count(*) FROM ({indexed}) c GROUP BY 1, 2, 3",
        params,
    )
    return _sorted_columns(rows)


def count_incidents_by_step(
    cursor, grid: Grid, inner_sql: str, params: list | tuple, boundaries: list[dt.date]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Incidents per (cell, time step), counted in the database.

    ``inner_sql`` comes from :func:`incidents_sql` with a time zone (it has ``day``);
    ``boundaries`` are the steps' first days followed by the day after the last step.
    Step ``s`` (0-based) holds the days in ``[boundaries[s], boundaries[s + 1])``; rows
    outside every step are left out. Returns arrays i, j, step, count sorted by (i, j, step).
    """
    indexed = indexed_sql(grid, _metric_xy_sql(inner_sql, keep=("day",)), keep=("day",))
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
    return _sorted_columns(rows)


def weigh_incidents_by_step(
    cursor, grid: Grid, inner_sql: str, params: list | tuple, bounds: list[dt.datetime]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Aoristic weights of the incidents per (cell, time step), summed in the database.

    ``inner_sql`` comes from :func:`incidents_sql` with ``window``; ``bounds`` are the
    instants where the steps start, then the end of the last one. Each incident's weight
    of 1 is split over the steps its window ``[occurred_at, occurred_until)`` overlaps,
    in proportion to the overlap (an exact time: all of it in its step); the share of a
    window outside every step is left out. Returns arrays i, j, step, weight and, per
    row, how many incidents have their first weighted step there (summed over a cell's
    steps: the incidents of the cell), sorted by (i, j, step).
    """
    keep = ("occurred_at", "occurred_until")
    indexed = indexed_sql(grid, _metric_xy_sql(inner_sql, keep=keep), keep=keep)
    # The steps an incident overlaps are width_bucket of its start to width_bucket of its
    # last microsecond (timestamps have microseconds), clipped to 1 … n_steps.
    rows = _fetch_tuned(
        cursor,
        f"""
        SELECT i, j, step - 1,
               sum(CASE WHEN t1 IS NULL THEN 1.0::float8 ELSE
                   extract(epoch FROM least(t1, b[step + 1]) - greatest(t0, b[step]))
                   / extract(epoch FROM t1 - t0) END),
               count(*) FILTER (WHERE step = lo)
        FROM (
            SELECT i, j, occurred_at AS t0, occurred_until AS t1, b,
                   greatest(width_bucket(occurred_at, b), 1) AS lo,
                   least(width_bucket(coalesce(occurred_until - interval '1 microsecond',
                                               occurred_at), b), %s) AS hi
            FROM ({indexed}) c, (SELECT %s::timestamptz[] AS b) bounds
        ) w, generate_series(lo, hi) AS step
        GROUP BY 1, 2, 3
        """,
        [len(bounds) - 1, *params, list(bounds)],
    )
    if not rows:
        empty, none = np.empty(0, np.int64), np.empty(0)
        return empty, empty, empty, none, empty
    table = np.array(rows, dtype=np.float64)
    order = np.lexsort((table[:, 2], table[:, 1], table[:, 0]))
    table = table[order]
    ints = table[:, [0, 1, 2, 4]].astype(np.int64)
    return ints[:, 0], ints[:, 1], ints[:, 2], table[:, 3], ints[:, 3]


class _Epoch(Func):
    """Seconds since 1970 of a timestamp, as float8 (``extract`` gives numeric, which
    psycopg would hand over as Decimal)."""

    template = "extract(epoch FROM %(expressions)s)::float8"
    output_field = FloatField()


def incident_windows(
    queryset, *, quantum: float = 1.0, chunk: int = 50_000
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The time windows of ``queryset``'s incidents, grouped in the database, as chunks of
    arrays (start, end, count) in epoch seconds; ``end`` is NaN for an exact time.

    Incidents with the same window (a day-precision date, the same range) share a row,
    and exact times are floored to ``quantum`` seconds first: with a quantum that the time
    zone's offsets and changes are whole multiples of, every time in a group falls in the
    same local hour, so the table is the same, and exact times make at most one row per
    quarter hour of the period. The rows come through a server-side cursor, ``chunk`` at
    a time, so memory stays bounded whatever the number of distinct windows.
    """
    start = Case(
        When(
            occurred_until__isnull=True,
            then=Floor(_Epoch("occurred_at") / Value(quantum)) * Value(quantum),
        ),
        default=_Epoch("occurred_at"),
        output_field=FloatField(),
    )
    grouped = (
        queryset.order_by()
        .annotate(window_start=start, window_end=_Epoch("occurred_until"))
        .values("window_start", "window_end")
        .annotate(n=Count("pk"))
        .values_list("window_start", "window_end", "n")
    )
    # The ORM's SQL on a server-side cursor of our own: the queryset's iterator passes
    # every row through Django's converters, a third of the time at 300,000 rows.
    sql, params = grouped.query.sql_with_params()
    with connections[grouped.db].chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(chunk):
            table = np.array(batch, dtype=np.float64)  # None (no end) becomes NaN
            yield table[:, 0], table[:, 1], table[:, 2]


def metric_points(cursor, inner_sql: str, params) -> tuple[np.ndarray, np.ndarray]:
    """Metric coordinates of :func:`incidents_sql` rows (for the automatic cell size)."""
    rows = _fetch_tuned(cursor, f"SELECT x, y FROM ({_metric_xy_sql(inner_sql, ())}) p", params)
    if not rows:
        return np.empty(0), np.empty(0)
    table = np.array(rows, dtype=np.float64)
    return table[:, 0], table[:, 1]


def count_selected(cursor, inner_sql: str, params) -> int:
    """How many rows :func:`incidents_sql` selects."""
    cursor.execute(f"SELECT count(*) FROM ({inner_sql}) s", params)
    return int(cursor.fetchone()[0])


# --- the analysis area ------------------------------------------------------------------


def analysis_area(cursor, run: HotspotRun, srid: int) -> tuple[bytes, float]:
    """The run's analysis area (WGS84 MultiPolygon EWKB) and its area in m²: the chosen
    districts and neighborhoods, else the region, cut by the drawn polygon."""
    base = neighborhood_selectors.outline_ewkb(
        region_id=run.region_id,
        district_ids=list(run.districts.values_list("pk", flat=True)),
        neighborhood_ids=list(run.neighborhoods.values_list("pk", flat=True)),
    )
    polygon = bytes(run.polygon.ewkb) if run.polygon is not None else None
    cursor.execute(
        """
        WITH base AS (SELECT ST_GeomFromEWKB(%s::bytea) AS g),
        clipped AS (
            SELECT CASE WHEN %s::bytea IS NULL THEN g
                        ELSE ST_Intersection(g, ST_GeomFromEWKB(%s::bytea)) END AS g
            FROM base
        ),
        area AS (SELECT ST_Multi(ST_CollectionExtract(ST_MakeValid(g), 3)) AS g FROM clipped)
        SELECT ST_AsEWKB(g), ST_Area(ST_Transform(g, %s)) FROM area
        """,
        [base, polygon, polygon, srid],
    )
    ewkb, area_m2 = cursor.fetchone() or (None, None)
    if ewkb is None or not area_m2:
        if polygon is not None:
            raise HotspotRefused("the drawn area does not overlap the chosen area")
        raise HotspotRefused("the analysis area is empty: no boundaries for it")
    return bytes(ewkb), float(area_m2)


def points_hull(
    cursor, inner_sql: str, inner_params, srid: int, *, buffer_m: float = 0.0
) -> tuple[bytes, float]:
    """The convex hull of :func:`incidents_sql`'s points in the metric CRS ``srid``,
    buffered by ``buffer_m`` (WGS84 MultiPolygon EWKB, area in m²): sfhotspot's grid area
    (``st_buffer(st_convex_hull(st_union(points)), cell_size / 2)``). The buffer has 30
    segments per quarter circle, sf's ``st_buffer`` default, so that the buffered hull's
    bounding box (where sf::st_make_grid anchors the grid) is the same as sfhotspot's."""
    cursor.execute(
        f"""
        WITH hull AS (
            SELECT ST_ConvexHull(ST_Collect(s.g)) AS g FROM ({inner_sql}) s
        ),
        area AS (
            SELECT CASE WHEN %s > 0 THEN ST_Buffer(g, %s, 'quad_segs=30') ELSE g END AS g
            FROM hull
        )
        SELECT ST_AsEWKB(ST_Multi(ST_CollectionExtract(ST_Transform(g, {STORAGE_SRID}), 3))),
               ST_Area(g), ST_AsEWKB(ST_Transform(g, {STORAGE_SRID}))
        FROM area WHERE g IS NOT NULL
        """,
        [*inner_params, float(buffer_m), float(buffer_m)],
    )
    row = cursor.fetchone()
    if row is None:
        raise HotspotRefused("no incidents match: the convex hull of the points is empty")
    polygons, area_m2, any_shape = row
    if not area_m2:
        # All the points on one line or spot: no polygon, but its extent still sizes cells.
        return bytes(any_shape), 0.0
    return bytes(polygons), float(area_m2)


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
    if estimate > grids.MAX_CELLS:
        raise HotspotRefused(
            f"a {grid.size:g} m grid over this area would have about {estimate:,} cells "
            f"(at most {grids.MAX_CELLS:,}): choose larger cells or a smaller area"
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
    # PostGIS' grid functions number cells from the CRS origin: a grid anchored elsewhere
    # lists the cells of the area moved by minus its origin (same indices, same shares).
    ox, oy = grid.origin
    cursor.execute(
        f"""
        WITH area AS MATERIALIZED (
            SELECT ST_Translate(ST_Transform(ST_GeomFromEWKB(%s), %s), %s, %s) AS g
        ){pieces}
        SELECT c.i, c.j, {share}
        FROM area, {grid_function(grid)}(%s, area.g) AS c
        WHERE ST_Intersects(c.geom, area.g)
        ORDER BY c.i, c.j
        """,
        [area_ewkb, grid.srid, -ox, -oy, float(grid.size)],
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


# --- density clustering -----------------------------------------------------------------


def cluster_dbscan(cursor, inner_sql: str, inner_params, *, eps: float, min_points: int) -> None:
    """PostGIS ``ST_ClusterDBSCAN`` over the incidents of ``inner_sql`` (metric points),
    into the temporary table ``hotspot_dbscan`` that :func:`dbscan_hulls` reads; inside
    the caller's transaction, which drops the table."""
    cursor.execute("SET LOCAL jit = off")
    cursor.execute("DROP TABLE IF EXISTS hotspot_dbscan")
    # ORDER BY id: border points reachable from two clusters go to the same one on
    # every run.
    cursor.execute(
        f"""
        CREATE TEMPORARY TABLE hotspot_dbscan ON COMMIT DROP AS
        SELECT s.id, s.category_id, s.g,
               ST_ClusterDBSCAN(s.g, eps => %s, minpoints => %s) OVER (ORDER BY s.id) AS cid
        FROM ({inner_sql}) s
        """,
        [eps, min_points, *inner_params],
    )


def dbscan_hulls(cursor, *, eps: float, concave_ratio: float) -> tuple[list[tuple], list[tuple]]:
    """The clusters of :func:`cluster_dbscan`: one row per cluster (id, incidents, area m²,
    centroid x, y, hull as WGS84 EWKB) and one per (cluster, category, incidents)."""
    # A cluster whose points are all on one spot or along one line (a street) has a
    # hull without area, or narrower than 2 m on average (area < perimeter × 1 m):
    # it gets the band of eps / 2 around the hull, the reach over which DBSCAN
    # joined its points.
    cursor.execute(
        f"""
        WITH hulls AS (
            SELECT cid, count(*) AS n,
                   ST_ConcaveHull(ST_Collect(g ORDER BY id), %s, false) AS h
            FROM hotspot_dbscan WHERE cid IS NOT NULL GROUP BY cid
        ),
        areas AS (
            SELECT cid, n,
                   CASE WHEN ST_Dimension(h) = 2 AND ST_Area(h) >= ST_Perimeter(h) THEN h
                        ELSE ST_Buffer(h, %s) END AS h
            FROM hulls
        )
        SELECT cid, n, ST_Area(h), ST_X(ST_Centroid(h)), ST_Y(ST_Centroid(h)),
               ST_AsEWKB(ST_Multi(ST_Transform(h, {STORAGE_SRID})))
        FROM areas
        """,
        [float(concave_ratio), eps / 2],
    )
    clusters = cursor.fetchall()
    cursor.execute(
        "SELECT cid, category_id, count(*) FROM hotspot_dbscan WHERE cid IS NOT NULL GROUP BY 1, 2"
    )
    category_rows = cursor.fetchall()
    cursor.execute("DROP TABLE hotspot_dbscan")
    return clusters, category_rows


def zone_hits(cursor, run: HotspotRun, srid: int, eval_sql: str, eval_params):
    """(incidents of ``eval_sql`` inside the run's zones, area of their union in m²)."""
    cursor.execute(
        f"""
        WITH z AS (
            SELECT ST_Union(ST_Transform(geom, %s)) AS g
            FROM {HotspotZone._meta.db_table} WHERE run_id = %s
        )
        SELECT (SELECT count(*) FROM ({eval_sql}) s, z WHERE ST_Intersects(z.g, s.g)),
               (SELECT coalesce(ST_Area(g), 0) FROM z)
        """,
        [srid, run.pk, *eval_params],
    )
    hits, area = cursor.fetchone()
    return int(hits), float(area or 0.0)
