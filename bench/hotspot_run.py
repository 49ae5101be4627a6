"""A complete hotspot run over N incidents: grid counts, Gi*, FDR and hot zones.

* ``barrio run_hotspots``: ``hotspots.services.runs.create_run`` + ``execute_run``, exactly what
  the command, the API and the background job run: cell indices computed arithmetically in
  PostgreSQL (``GROUP BY i, j``), every cell of the area from ``ST_HexagonGrid``, vectorised
  Gi* with scipy.sparse, Benjamini–Hochberg, zones from connected components, and the cells
  and zones written to their tables in one transaction. The output read back for the checks
  is the stored cells. Measured twice: with the analytic p-value (the run default) and with
  999 conditional permutations (``--permutations 999``), like the baseline.
* ``geopandas + esda`` (baseline): what an analyst writes instead: the points read from
  PostGIS with psycopg2 (WKB → shapely → GeoDataFrame, ``to_crs``), the same hexagon grid
  built with shapely (PostGIS' numbering), ``gpd.sjoin`` of the points to it, libpysal
  ``Queen`` weights, esda ``G_Local(star=True, transform="B", permutations=999)``,
  ``esda.fdr`` on the pseudo p-values, and the hot cells dissolved into zones. Nothing is
  written back. Its 999 permutations are the usual analyst default (PySAL's); ours is the
  analytic test (the run default).

Data (seeded): the demo city's boundaries (``neighborhoods.demo``, about 258 km² in
UTM 17S) and N incidents in 2024, 70 % around 60 hotspots of very unequal size (σ 200 m),
the rest uniform over the city, COPYed into the incident table (all its indexes current)
and analysed. Cells: hexagons of 50 m edge (≈ 40,000 cells over the city).
"""

from __future__ import annotations

import datetime as dt
import io
import time

import numpy as np

from bench.common import BenchContext, BenchmarkError, BenchResult, Method, measure_methods
from bench.points import clustered_points

NAME = "hotspot_run"
DESCRIPTION = "hotspot run: grid counts + Gi* + FDR + zones over N incidents"
DEFAULT_SCALE = 1_000_000
UNIT = "incidents"

OURS = "barrio run_hotspots"
OURS_PERMUTATIONS = "barrio run_hotspots, 999 perms"
ANALYST = "geopandas + esda (999 perms)"
CELL_EDGE_M = 50.0
PERMUTATIONS = 999
HOTSPOTS = 60
HOTSPOT_SHARE = 0.7
HOTSPOT_SIGMA_M = 200.0
SOURCE = "bench-hotspots"
CATEGORIES = ["robbery-person", "theft-person", "burglary", "assault", "public-drinking"]
PERIOD = (dt.date(2024, 1, 1), dt.date(2024, 12, 31))
COPY_CHUNK = 200_000
# The baseline's 999 permutations take about a minute at any N (the grid does not grow
# with N); above this many incidents it is measured once, not --repeat times.
ANALYST_SINGLE_RUN_ABOVE = 200_000
Z_TOLERANCE = 1e-8

_analyst_steps: dict[str, float] = {}


# --- data -------------------------------------------------------------------------------


def load_city():
    """The demo city's boundaries in the bench database; (region, outline in metres)."""
    import shapely
    from django.db import connection
    from pyproj import Transformer

    from neighborhoods.demo import DEMO_METRIC_SRID, DEMO_REGION_CODE, load_demo_boundaries
    from neighborhoods.models import Region

    reports = load_demo_boundaries()
    if not all(r.ok for r in reports):
        raise BenchmarkError("the demo city boundaries were refused")
    region = Region.objects.get(code=DEMO_REGION_CODE)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ST_AsBinary(geom) FROM neighborhoods_region WHERE id = %s", [region.pk]
        )
        outline = shapely.from_wkb(bytes(cursor.fetchone()[0]))
    to_metric = Transformer.from_crs(4326, DEMO_METRIC_SRID, always_xy=True)
    outline = shapely.transform(
        outline, lambda xy: np.column_stack(to_metric.transform(xy[:, 0], xy[:, 1]))
    )
    return region, outline


def generate_points(n: int, rng: np.random.Generator, outline) -> tuple[np.ndarray, np.ndarray]:
    import shapely

    shapely.prepare(outline)
    min_x, min_y, max_x, max_y = outline.bounds
    centres = []
    while len(centres) < HOTSPOTS:
        x, y = rng.uniform(min_x, max_x), rng.uniform(min_y, max_y)
        if shapely.contains_xy(outline, x, y):
            centres.append((x, y))
    centres = np.array(centres)
    return clustered_points(
        n, rng, outline, centres[:, 0], centres[:, 1], share=HOTSPOT_SHARE, sigma_m=HOTSPOT_SIGMA_M
    )


def insert_incidents(
    region, x: np.ndarray, y: np.ndarray, rng: np.random.Generator, seconds=None
) -> None:
    """COPY of N incidents (region set, areas left empty: the run is region-wide), at
    ``seconds`` (Unix times, one per point) or uniformly over 2024."""
    import pandas as pd
    from django.db import connection
    from pyproj import Transformer

    from incidents.models import Category, ImportBatch, IncidentSource, SourceLabel

    source, _ = IncidentSource.objects.get_or_create(name=SOURCE)
    batch = ImportBatch.objects.create(source=source, status=ImportBatch.Status.SUCCEEDED)
    labels = []
    for code in CATEGORIES:
        category = Category.objects.get(code=code)
        label, _ = SourceLabel.objects.get_or_create(
            source=source, label=code.upper(), defaults={"category": category}
        )
        labels.append((label.pk, category.pk))
    labels = np.array(labels)
    lon, lat = Transformer.from_crs(region.metric_srid, 4326, always_xy=True).transform(x, y)
    n = len(x)
    if seconds is None:
        # The year 2024 in the region's time zone, as the run counts days.
        start = pd.Timestamp("2024-01-01", tz=region.time_zone).value // 10**9
        end = pd.Timestamp("2025-01-01", tz=region.time_zone).value // 10**9 - 1
        seconds = np.sort(rng.integers(start, end, n))
    pick = rng.choice(len(labels), size=n, p=[0.3, 0.3, 0.15, 0.15, 0.1])
    columns = (
        "source_id, external_id, point, occurred_at, time_precision, label_id, category_id, "
        "region_id, location_quality, batch_id"
    )
    with connection.cursor() as cursor:
        for lo in range(0, n, COPY_CHUNK):
            hi = min(n, lo + COPY_CHUNK)
            frame = pd.DataFrame(
                {
                    "source": source.pk,
                    "id": [f"H{k:08d}" for k in range(lo, hi)],
                    "point": [
                        f"SRID=4326;POINT({a:.7f} {b:.7f})"
                        for a, b in zip(lon[lo:hi], lat[lo:hi], strict=True)
                    ],
                    "when": pd.to_datetime(seconds[lo:hi], unit="s", utc=True).strftime(
                        "%Y-%m-%d %H:%M:%S+00"
                    ),
                    "precision": "exact",
                    "label": labels[pick[lo:hi], 0],
                    "category": labels[pick[lo:hi], 1],
                    "region": region.pk,
                    "quality": "exact",
                    "batch": batch.pk,
                }
            )
            buffer = io.StringIO()
            frame.to_csv(buffer, sep="\t", header=False, index=False)
            buffer.seek(0)
            cursor.cursor.copy_expert(f"COPY incidents_incident ({columns}) FROM STDIN", buffer)
        cursor.execute("ANALYZE incidents_incident")


# --- the methods ----------------------------------------------------------------------------


def _pack(i, j, counts, z, hot) -> bytes:
    """The comparable output: cells in (i, j) order with count, z and hot flag."""
    order = np.lexsort((np.asarray(j), np.asarray(i)))
    return b"".join(
        np.ascontiguousarray(np.asarray(a)[order], dtype=dtype).tobytes()
        for a, dtype in (
            (i, np.int64),
            (j, np.int64),
            (counts, np.int64),
            (z, np.float64),
            (hot, np.int8),
        )
    )


def _unpack(data: bytes):
    n = len(data) // (8 * 4 + 1)
    parts, offset = [], 0
    for dtype, size in ((np.int64, 8), (np.int64, 8), (np.int64, 8), (np.float64, 8), (np.int8, 1)):
        parts.append(np.frombuffer(data, dtype=dtype, count=n, offset=offset))
        offset += n * size
    return parts


def method_ours(region_id: int, permutations: int = 0, seed: int = 0) -> bytes:
    from hotspots.models import HotspotCell
    from hotspots.services.runs import create_run, execute_run
    from neighborhoods.models import Region

    run = create_run(
        region=Region.objects.get(pk=region_id),
        date_from=PERIOD[0],
        date_to=PERIOD[1],
        params={
            "grid": "hex",
            "cell_size_m": CELL_EDGE_M,
            "permutations": permutations,
            "seed": seed,
            # What is measured is grid + Gi* + FDR + zones; the stability reruns (on by
            # default in runs) would add four more grids.
            "stability": False,
        },
    )
    execute_run(run=run)
    rows = np.array(
        HotspotCell.objects.filter(run=run).values_list("i", "j", "count", "gi_z", "gi_bin"),
        dtype=np.float64,
    )
    method_ours.last_runs[permutations] = run
    return _pack(
        rows[:, 0].astype(np.int64),
        rows[:, 1].astype(np.int64),
        rows[:, 2],
        rows[:, 3],
        rows[:, 4] >= 2,
    )


method_ours.last_runs = {}


def _hexagons(area, size: float):
    """The hexagons of PostGIS' ST_HexagonGrid numbering that intersect ``area`` (metric),
    built with shapely as an analyst would: ``geometry`` exact, for the spatial join, and
    ``rounded`` (vertices to the millimetre) so that touching cells share exact vertices
    for libpysal's Queen contiguity."""
    import geopandas as gpd
    import shapely

    min_x, min_y, max_x, max_y = area.bounds
    h = np.sqrt(3.0) * size
    i_range = np.arange(
        int(np.floor(min_x / (1.5 * size))) - 1, int(np.ceil(max_x / (1.5 * size))) + 2
    )
    j_range = np.arange(int(np.floor(min_y / h)) - 1, int(np.ceil(max_y / h)) + 2)
    i, j = (a.ravel() for a in np.meshgrid(i_range, j_range, indexing="ij"))
    cx = 1.5 * size * i
    cy = h * (j + 0.5 * (np.abs(i) % 2))
    angles = np.array([180, 240, 300, 0, 60, 120, 180]) * np.pi / 180
    ring = np.stack(
        [
            cx[:, None] + size * np.cos(angles)[None, :],
            cy[:, None] + size * np.sin(angles)[None, :],
        ],
        axis=-1,
    )
    polygons = shapely.polygons(ring)
    keep = shapely.intersects(polygons, area)
    rounded = shapely.polygons(np.round(ring[keep], 3))
    return gpd.GeoDataFrame(
        {"i": i[keep], "j": j[keep], "rounded": rounded}, geometry=polygons[keep]
    )


def method_analyst(region_id: int, seed: int) -> bytes:
    import esda
    import geopandas as gpd
    import psycopg2
    import shapely
    from django.conf import settings
    from esda.getisord import G_Local
    from libpysal.weights import Queen

    from incidents.selectors import day_start
    from neighborhoods.models import Region

    time_zone = Region.objects.get(pk=region_id).time_zone
    steps = _analyst_steps
    steps.clear()
    mark = time.perf_counter()

    def step(name):
        nonlocal mark
        now = time.perf_counter()
        steps[name] = now - mark
        mark = now

    db = settings.DATABASES["default"]
    connection = psycopg2.connect(
        dbname=db["NAME"],
        user=db["USER"],
        password=db["PASSWORD"],
        host=db["HOST"],
        port=db["PORT"],
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT metric_srid, ST_AsBinary(geom) FROM neighborhoods_region WHERE id = %s",
                [region_id],
            )
            srid, area_wkb = cursor.fetchone()
            cursor.execute(
                "SELECT ST_AsBinary(point) FROM incidents_incident "
                "WHERE region_id = %s AND occurred_at >= %s AND occurred_at < %s",
                [
                    region_id,
                    day_start(PERIOD[0], time_zone),
                    day_start(PERIOD[1] + dt.timedelta(days=1), time_zone),
                ],
            )
            wkb = [bytes(row[0]) for row in cursor.fetchall()]
    finally:
        connection.close()
    points = gpd.GeoDataFrame(geometry=shapely.from_wkb(wkb), crs=4326).to_crs(srid)
    area = gpd.GeoSeries([shapely.from_wkb(bytes(area_wkb))], crs=4326).to_crs(srid).iloc[0]
    step("read points (psycopg2 + shapely WKB)")
    grid = _hexagons(area, CELL_EDGE_M).set_crs(srid)
    step("hexagon grid (shapely)")
    joined = gpd.sjoin(points, grid, predicate="within", how="inner")
    counts = joined.groupby("index_right").size().reindex(grid.index, fill_value=0).to_numpy()
    step("sjoin + counts")
    w = Queen.from_dataframe(grid.set_geometry("rounded"), use_index=False, silence_warnings=True)
    step("Queen weights (libpysal)")
    g = G_Local(
        counts.astype(float), w, star=True, transform="B", permutations=PERMUTATIONS, seed=seed
    )
    step(f"G_Local, {PERMUTATIONS} permutations (esda)")
    cutoff = esda.fdr(g.p_sim, 0.05)
    hot = (g.p_sim <= cutoff) & (g.Zs > 0)
    zones = grid.loc[hot, ["geometry"]].dissolve().explode(index_parts=False).reset_index(drop=True)
    if len(zones):
        centres = grid.loc[hot, ["geometry"]].assign(count=counts[hot])
        centres["geometry"] = centres.geometry.representative_point()
        zone_counts = (
            gpd.sjoin(centres, zones, predicate="within").groupby("index_right")["count"].sum()
        )
        zones["count"] = zone_counts.reindex(zones.index, fill_value=0)
        zones = zones.sort_values("count", ascending=False)
    step("FDR + dissolve zones")
    method_analyst.zones = len(zones)
    method_analyst.at_min_p = int((g.p_sim <= 1.0 / (PERMUTATIONS + 1)).sum())
    return _pack(grid["i"].to_numpy(), grid["j"].to_numpy(), counts, g.Zs, hot)


# --- the benchmark ----------------------------------------------------------------------------


def check_agreement(ours: bytes, analyst: bytes, label: str = "analytic p") -> list[str]:
    oi, oj, oc, oz, ohot = _unpack(ours)
    ai, aj, ac, az, ahot = _unpack(analyst)
    if not (np.array_equal(oi, ai) and np.array_equal(oj, aj)):
        raise BenchmarkError(f"different cells: ours {len(oi):,}, baseline {len(ai):,}")
    if not np.array_equal(oc, ac):
        raise BenchmarkError(f"counts differ in {(oc != ac).sum():,} cells")
    worst = float(np.max(np.abs(oz - az)))
    if worst > Z_TOLERANCE:
        raise BenchmarkError(f"Gi* z-scores differ by up to {worst:g}")
    both = int((ohot.astype(bool) & ahot.astype(bool)).sum())
    either = int((ohot.astype(bool) | ahot.astype(bool)).sum())
    return [
        f"the same {len(oi):,} cells (PostGIS numbering), with the same counts "
        f"({int(oc.sum()):,} incidents, {int((oc == 0).sum()):,} empty cells)",
        f"Gi* z-scores equal to esda's G_Local Zs within {worst:.1e} (tolerance {Z_TOLERANCE:g})",
        f"hot cells after FDR at 5 %: ours {int(ohot.sum()):,} ({label}), baseline "
        f"{int(ahot.sum()):,} ({PERMUTATIONS} permutations); Jaccard "
        f"{both / either if either else 1:.3f}",
    ]


def run(ctx: BenchContext) -> BenchResult:
    n = ctx.scale
    rng = np.random.default_rng(ctx.seed)
    start = time.perf_counter()
    region, outline = load_city()
    x, y = generate_points(n, rng, outline)
    insert_incidents(region, x, y, rng)
    setup_seconds = time.perf_counter() - start
    ctx.log(f"  generated and COPYed {n:,} incidents in {setup_seconds:.1f} s")

    ours_methods = [
        Method(OURS, lambda: method_ours(region.pk)),
        Method(
            OURS_PERMUTATIONS,
            lambda: method_ours(region.pk, permutations=PERMUTATIONS, seed=ctx.seed),
            note="conditional permutations, vectorised and seeded",
        ),
    ]
    analyst_method = Method(ANALYST, lambda: method_analyst(region.pk, ctx.seed), baseline=True)
    ours_measured, ours_out = measure_methods(ours_methods, items=n, repeat=ctx.repeat, log=ctx.log)
    analyst_repeat = 1 if n > ANALYST_SINGLE_RUN_ABOVE else ctx.repeat
    analyst_measured, analyst_out = measure_methods(
        [analyst_method], items=n, repeat=analyst_repeat, log=ctx.log
    )
    checks = check_agreement(ours_out[OURS], analyst_out[ANALYST])
    permuted = check_agreement(
        ours_out[OURS_PERMUTATIONS], analyst_out[ANALYST], label=f"{PERMUTATIONS} permutations"
    )
    checks.append(f"{OURS_PERMUTATIONS}: {permuted[2]}")
    last = method_ours.last_runs[0]
    last_permuted = method_ours.last_runs[PERMUTATIONS]
    ours_steps = ", ".join(
        f"{k} {last.timings[k]:.2f}"
        for k in ("area", "grid", "count", "gistar", "zones", "write", "total")
        if k in last.timings
    )
    analyst_steps = ", ".join(f"{k} {v:.2f}" for k, v in _analyst_steps.items())
    checks.append(
        f"zones: ours {last.summary['zones']} (analytic), {last_permuted.summary['zones']} "
        f"(999 permutations); baseline {method_analyst.zones}"
    )
    cells = last.summary["cells"]
    needed = int(np.ceil(cells * (1.0 / (PERMUTATIONS + 1)) / 0.05))
    notes = [
        f"{OURS} steps (s): {ours_steps}; {last.summary['cells']:,} hexagons of "
        f"{CELL_EDGE_M:g} m edge over {last.summary['area_km2']:.0f} km²",
        f"{ANALYST} steps (s): {analyst_steps}",
        f"{ANALYST}: measured {analyst_repeat} time(s) (its permutation test does not "
        f"shrink with N; above {ANALYST_SINGLE_RUN_ABOVE:,} incidents it runs once)",
        f"{OURS} uses the analytic p-value (the run default); {OURS_PERMUTATIONS} draws "
        f"{PERMUTATIONS} conditional permutations like the baseline (gistar step "
        f"{last_permuted.timings['gistar']:.2f} s)",
        f"{OURS} also writes {last.summary['cells']:,} cells and {last.summary['zones']} "
        "zones to the database in one transaction; the baseline writes nothing back",
        "peak MB is the Python heap (tracemalloc); memory held by libpq, GEOS and "
        "PostgreSQL is not counted",
        f"{ANALYST}: the smallest pseudo p-value {PERMUTATIONS} permutations can give is "
        f"{1 / (PERMUTATIONS + 1):g}; Benjamini–Hochberg at 5 % over {cells:,} cells rejects "
        f"nothing unless more than {needed:,} cells reach it (here "
        f"{method_analyst.at_min_p:,} did), which is why esda's pipeline can lose every hot "
        "spot after FDR on a fine grid while the analytic test keeps them",
    ]
    return BenchResult(
        name=NAME,
        description=DESCRIPTION,
        scale=n,
        unit=UNIT,
        measurements=ours_measured + analyst_measured,
        setup_seconds=setup_seconds,
        checks=checks,
        notes=notes,
    )
