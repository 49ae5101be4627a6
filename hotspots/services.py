"""Creating and executing hotspot runs.

``create_run`` validates the request and stores a QUEUED run with every parameter filled in
(defaults included), so that the run can be repeated exactly. ``execute_run`` resolves the
analysis area, counts incidents per cell in the database, computes Gi*, FDR-adjusted bins
and hot zones, and writes the cells, the zones and the final status in ONE transaction: a
failed or refused run is marked FAILED with its message and leaves nothing half-written.
Progress is written between steps, outside that transaction, so that other connections (the
run page, the API) see it.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import scipy
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon, Polygon
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from geo.conf import STORAGE_SRID, is_utm_srid
from hotspots.engine import MIN_CELLS, MIN_INCIDENTS, HotspotRefused
from hotspots.engine import grid as grids
from hotspots.engine.gistar import (
    ALPHAS,
    MAX_PERMUTATIONS,
    GiStarResult,
    bin_for_alpha,
    confidence_bins,
    run_gistar,
)
from hotspots.engine.zones import Zone, build_zones, zone_labels
from hotspots.models import HotspotCell, HotspotRun, HotspotZone
from incidents.models import Category, Family
from incidents.selectors import IncidentFilters, incident_list
from neighborhoods.models import District, Neighborhood, Region

SUPPORTED_METHODS = (HotspotRun.Method.GISTAR,)
DEFAULT_SEED = 0
DEFAULT_PARAMS = {
    "grid": "hex",
    "cell_size_m": None,  # None: chosen like Optimized Hot Spot Analysis
    "neighbour_rule": grids.CONTIGUITY,
    "distance_band_m": None,
    "alpha": 0.05,
    "fdr": True,
    "permutations": 0,
    "seed": DEFAULT_SEED,
}
PARAM_NAMES = tuple(DEFAULT_PARAMS)
# Timed steps, in order (``timings`` is stored as JSON, whose keys PostgreSQL reorders).
STEPS = ("area", "cell_size", "grid", "count", "gistar", "zones", "write", "total")

Progress = Callable[[float, str], None]


# --- creating a run -------------------------------------------------------------------


def normalize_params(params: Mapping | None) -> dict:
    """Every parameter, defaults filled in and checked; raises HotspotRefused."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(PARAM_NAMES) - {"cell_size_reason"})
    if unknown:
        raise HotspotRefused(f"unknown parameter(s): {', '.join(unknown)}")
    out = {**DEFAULT_PARAMS, **{k: v for k, v in params.items() if v is not None}}
    if out["grid"] not in grids.KINDS:
        raise HotspotRefused(f"grid must be one of {', '.join(grids.KINDS)}")
    if out["cell_size_m"] is not None:
        size = _number(out["cell_size_m"], "cell_size_m")
        if size < grids.MIN_CELL_SIZE_M:
            raise HotspotRefused(f"the cell size must be at least {grids.MIN_CELL_SIZE_M:g} m")
        out["cell_size_m"] = size
    if out["neighbour_rule"] not in grids.NEIGHBOUR_RULES:
        raise HotspotRefused(f"neighbour_rule must be one of {', '.join(grids.NEIGHBOUR_RULES)}")
    if out["neighbour_rule"] == grids.DISTANCE_BAND:
        if out["distance_band_m"] is None:
            raise HotspotRefused("the distance_band neighbour rule needs distance_band_m")
        band = _number(out["distance_band_m"], "distance_band_m")
        if band <= 0:
            raise HotspotRefused("distance_band_m must be positive")
        out["distance_band_m"] = band
    else:
        out["distance_band_m"] = None
    out["alpha"] = _number(out["alpha"], "alpha")
    if not any(math.isclose(out["alpha"], a) for a in ALPHAS):
        raise HotspotRefused(f"alpha must be one of {', '.join(f'{a:g}' for a in ALPHAS)}")
    out["fdr"] = bool(out["fdr"])
    permutations = out["permutations"]
    if isinstance(permutations, bool) or not isinstance(permutations, int):
        raise HotspotRefused("permutations must be a whole number")
    if not 0 <= permutations <= MAX_PERMUTATIONS:
        raise HotspotRefused(f"permutations must be between 0 and {MAX_PERMUTATIONS:,}")
    seed = out["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise HotspotRefused("seed must be a whole number ≥ 0")
    if "cell_size_reason" in params and out["cell_size_m"] is None:
        out.pop("cell_size_reason")
    return out


def _number(value, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise HotspotRefused(f"{name} must be a number") from None
    if not math.isfinite(number):
        raise HotspotRefused(f"{name} must be a finite number")
    return number


def check_metric_crs(region: Region) -> int:
    srid = region.metric_srid
    if not srid or not is_utm_srid(int(srid)):
        raise HotspotRefused(
            f"region {region.code} has no metric CRS (a UTM zone): distances and cells "
            "cannot be measured in metres, so the run is refused"
        )
    return int(srid)


def create_run(
    *,
    user=None,
    region: Region,
    date_from: dt.date,
    date_to: dt.date,
    districts: Iterable[District] = (),
    neighborhoods: Iterable[Neighborhood] = (),
    polygon: Polygon | MultiPolygon | None = None,
    family: str = "",
    categories: Iterable[Category] = (),
    method: str = HotspotRun.Method.GISTAR,
    params: Mapping | None = None,
) -> HotspotRun:
    """A QUEUED run with every parameter recorded; raises HotspotRefused when the request
    cannot give a meaningful run (nothing is saved then)."""
    check_metric_crs(region)
    if method not in SUPPORTED_METHODS:
        raise HotspotRefused(
            f"method {method!r} is not available yet; available: {', '.join(SUPPORTED_METHODS)}"
        )
    if date_to < date_from:
        raise HotspotRefused("the period ends before it starts")
    if family and family not in Family.values:
        raise HotspotRefused(f"family must be one of {', '.join(Family.values)}")
    districts, neighborhoods, categories = list(districts), list(neighborhoods), list(categories)
    strays = [a.code for a in [*districts, *neighborhoods] if a.region_id != region.pk]
    if strays:
        raise HotspotRefused(f"not in region {region.code}: {', '.join(strays)}")
    if region.geom is None and not (districts or neighborhoods):
        raise HotspotRefused(f"region {region.code} has no boundaries loaded yet")
    if polygon is not None:
        polygon = _as_multipolygon(polygon)
    normalized = normalize_params(params)
    with transaction.atomic():
        run = HotspotRun.objects.create(
            region=region,
            polygon=polygon,
            date_from=date_from,
            date_to=date_to,
            family=family or "",
            method=method,
            params=normalized,
            metric_srid=region.metric_srid,
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        run.districts.set(districts)
        run.neighborhoods.set(neighborhoods)
        run.categories.set(categories)
    return run


def _as_multipolygon(geometry) -> MultiPolygon:
    if geometry.srid is None:
        geometry = GEOSGeometry(geometry.wkb, srid=STORAGE_SRID)
    elif geometry.srid != STORAGE_SRID:
        geometry = geometry.transform(STORAGE_SRID, clone=True)
    if geometry.geom_type == "Polygon":
        geometry = MultiPolygon(geometry, srid=STORAGE_SRID)
    if geometry.geom_type != "MultiPolygon" or geometry.empty:
        raise HotspotRefused("the drawn area must be a polygon")
    if not geometry.valid:
        geometry = geometry.make_valid()
        if geometry.geom_type == "Polygon":
            geometry = MultiPolygon(geometry, srid=STORAGE_SRID)
        if geometry.geom_type != "MultiPolygon":
            raise HotspotRefused("the drawn area is not a valid polygon")
    return geometry


def enqueue_run(run: HotspotRun) -> HotspotRun:
    """Queues the background job (with the immediate backend it has run on return)."""
    from hotspots.tasks import execute_hotspot_run

    execute_hotspot_run.enqueue(run.pk)
    run.refresh_from_db()
    return run


# --- executing a run ------------------------------------------------------------------


@dataclass
class Computed:
    """Everything a run writes, computed before the write transaction."""

    grid: grids.Grid
    params: dict
    area_ewkb: bytes
    area_m2: float
    i: np.ndarray
    j: np.ndarray
    counts: np.ndarray
    gistar: GiStarResult
    zones: list[Zone]
    zone_of_cell: np.ndarray  # zone rank per cell, 0 = none
    summary: dict
    timings: dict = field(default_factory=dict)


class _Clock:
    def __init__(self, timings: dict, progress: Progress | None, run: HotspotRun):
        self.timings = timings
        self.progress = progress
        self.run = run
        self.start = time.perf_counter()

    def step(self, name: str, fraction: float) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self.start, 4)
        self.start = now
        HotspotRun.objects.filter(pk=self.run.pk).update(progress=fraction)
        if self.progress:
            self.progress(fraction, name)


def software_version() -> str:
    try:
        barrio = importlib.metadata.version("barrio")
    except importlib.metadata.PackageNotFoundError:
        barrio = "unknown"
    with connection.cursor() as cursor:
        cursor.execute("SELECT postgis_lib_version()")
        postgis = cursor.fetchone()[0]
    return f"barrio {barrio}; numpy {np.__version__}; scipy {scipy.__version__}; PostGIS {postgis}"


def execute_run(*, run: HotspotRun, progress: Progress | None = None) -> HotspotRun:
    """Runs a queued (or failed) run to the end; see the module docstring.

    Raises HotspotRefused (after marking the run FAILED with the message) when the data
    cannot give a meaningful answer; any other error also marks it FAILED and propagates.
    """
    if run.method not in SUPPORTED_METHODS:
        _fail(run, f"method {run.method!r} is not available yet")
        raise HotspotRefused(run.message)
    HotspotRun.objects.filter(pk=run.pk).update(
        status=HotspotRun.Status.RUNNING,
        message="",
        progress=0.0,
        started_at=timezone.now(),
        finished_at=None,
    )
    run.refresh_from_db()
    started = time.perf_counter()
    try:
        computed = _compute(run, progress)
        clock = _Clock(computed.timings, progress, run)
        with transaction.atomic():
            _write(run, computed)
            clock.step("write", 1.0)
            computed.timings["total"] = round(time.perf_counter() - started, 4)
            HotspotRun.objects.filter(pk=run.pk).update(timings=computed.timings)
    except HotspotRefused as exc:
        _fail(run, str(exc))
        raise
    except Exception as exc:
        _fail(run, f"the run failed: {type(exc).__name__}: {exc}")
        raise
    run.refresh_from_db()
    return run


def _fail(run: HotspotRun, message: str) -> None:
    HotspotRun.objects.filter(pk=run.pk).update(
        status=HotspotRun.Status.FAILED, message=message, finished_at=timezone.now()
    )
    run.refresh_from_db()


def incident_queryset(run: HotspotRun):
    """The run's incidents: period (days in the region's time zone, both ends included),
    family or categories, region, the chosen districts/neighborhoods and drawn polygon."""
    region = run.region
    category_ids = tuple(run.categories.order_by("pk").values_list("pk", flat=True))
    queryset = incident_list(
        IncidentFilters(
            date_from=run.date_from,
            date_to=run.date_to,
            family=run.family or None,
            category_ids=category_ids,
            region_id=region.pk,
            time_zone=region.time_zone,
        )
    )
    district_ids = list(run.districts.values_list("pk", flat=True))
    neighborhood_ids = list(run.neighborhoods.values_list("pk", flat=True))
    if district_ids or neighborhood_ids:
        queryset = queryset.filter(
            Q(district_id__in=district_ids) | Q(neighborhood_id__in=neighborhood_ids)
        )
    if run.polygon is not None:
        queryset = queryset.filter(point__intersects=run.polygon)
    return queryset.order_by()


def _resolve_area(cursor, run: HotspotRun, srid: int) -> tuple[bytes, float]:
    """The analysis area (WGS84 MultiPolygon EWKB) and its area in m²."""
    district_ids = list(run.districts.values_list("pk", flat=True))
    neighborhood_ids = list(run.neighborhoods.values_list("pk", flat=True))
    if district_ids or neighborhood_ids:
        base_sql = """
            SELECT ST_Union(geom) AS g FROM (
                SELECT geom FROM neighborhoods_district WHERE id = ANY(%s)
                UNION ALL
                SELECT geom FROM neighborhoods_neighborhood WHERE id = ANY(%s)
            ) a
        """
        base_params = [district_ids, neighborhood_ids]
    else:
        base_sql = "SELECT geom AS g FROM neighborhoods_region WHERE id = %s"
        base_params = [run.region_id]
    polygon = bytes(run.polygon.ewkb) if run.polygon is not None else None
    cursor.execute(
        f"""
        WITH base AS ({base_sql}),
        clipped AS (
            SELECT CASE WHEN %s::bytea IS NULL THEN g
                        ELSE ST_Intersection(g, ST_GeomFromEWKB(%s::bytea)) END AS g
            FROM base
        ),
        area AS (SELECT ST_Multi(ST_CollectionExtract(ST_MakeValid(g), 3)) AS g FROM clipped)
        SELECT ST_AsEWKB(g), ST_Area(ST_Transform(g, %s)) FROM area
        """,
        [*base_params, polygon, polygon, srid],
    )
    ewkb, area_m2 = cursor.fetchone() or (None, None)
    if ewkb is None or not area_m2:
        if polygon is not None:
            raise HotspotRefused("the drawn area does not overlap the chosen area")
        raise HotspotRefused("the analysis area is empty: no boundaries for it")
    return bytes(ewkb), float(area_m2)


def _compute(run: HotspotRun, progress: Progress | None) -> Computed:
    timings: dict = {}
    clock = _Clock(timings, progress, run)
    srid = check_metric_crs(run.region)
    params = normalize_params({k: v for k, v in run.params.items() if k != "cell_size_reason"})
    inner_sql, inner_params = grids.incidents_sql(incident_queryset(run), srid)
    with connection.cursor() as cursor:
        area_ewkb, area_m2 = _resolve_area(cursor, run, srid)
        clock.step("area", 0.05)

        if params["cell_size_m"] is None:
            x, y = grids.metric_points(cursor, inner_sql, inner_params)
            _check_incidents(len(x))
            size, reason = grids.choose_cell_size(x, y, params["grid"])
            params["cell_size_m"] = size
            params["cell_size_reason"] = reason
            clock.step("cell_size", 0.2)
        grid = grids.Grid(params["grid"], float(params["cell_size_m"]), srid)

        area_i, area_j = grids.area_cells(cursor, grid, area_ewkb)
        clock.step("grid", 0.3)
        ci, cj, category_ids, category_counts = grids.count_incidents(
            cursor, grid, inner_sql, inner_params
        )
        clock.step("count", 0.6)

    total = int(category_counts.sum())
    _check_incidents(total)
    area_keys = grids.cell_keys(area_i, area_j)
    row_keys = grids.cell_keys(ci, cj)
    counted_keys, row_cell = np.unique(row_keys, return_inverse=True)
    keys = np.union1d(area_keys, counted_keys)
    i, j = grids.split_keys(keys)
    counts = np.zeros(len(keys), dtype=np.int64)
    cell_of_row = np.searchsorted(keys, counted_keys)[row_cell]
    np.add.at(counts, cell_of_row, category_counts)
    if len(keys) < MIN_CELLS:
        raise HotspotRefused(
            f"only {len(keys)} cells cover the area (at least {MIN_CELLS} are needed): "
            "choose smaller cells or a larger area"
        )

    weights = grids.weights_matrix(
        grid, i, j, rule=params["neighbour_rule"], band_m=params["distance_band_m"]
    )
    result = run_gistar(
        counts,
        weights,
        fdr=params["fdr"],
        permutations=params["permutations"],
        seed=params["seed"],
    )
    clock.step("gistar", 0.75)

    zone_bin = bin_for_alpha(params["alpha"])
    labels = zone_labels(grids.adjacency_matrix(grid, i, j), result.bins >= zone_bin)
    codes = dict(
        Category.objects.filter(pk__in=set(category_ids.tolist())).values_list("pk", "code")
    )
    zones = build_zones(
        labels,
        counts,
        cell_area_m2=grid.cell_area_m2,
        total_incidents=total,
        category_cells=cell_of_row,
        category_ids=category_ids,
        category_counts=category_counts,
        category_codes=codes,
    )
    zone_of_cell = np.zeros(len(keys), dtype=np.int64)
    for zone in zones:
        zone_of_cell[zone.cells] = zone.rank
    clock.step("zones", 0.85)

    summary = _summary(
        params=params,
        grid=grid,
        area_m2=area_m2,
        total=total,
        counts=counts,
        outside=int(len(keys) - len(area_keys)),
        result=result,
        zones=zones,
    )
    return Computed(
        grid=grid,
        params=params,
        area_ewkb=area_ewkb,
        area_m2=area_m2,
        i=i,
        j=j,
        counts=counts,
        gistar=result,
        zones=zones,
        zone_of_cell=zone_of_cell,
        summary=summary,
        timings=timings,
    )


def _check_incidents(count: int) -> None:
    if count < MIN_INCIDENTS:
        raise HotspotRefused(
            f"only {count} incidents match (at least {MIN_INCIDENTS} are needed for a hotspot "
            "analysis): widen the period, the area or the categories"
        )


def _bin_counts(bins: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(bins, return_counts=True)
    found = dict(zip(values.tolist(), counts.tolist(), strict=True))
    return {str(b): int(found.get(b, 0)) for b in range(-3, 4)}


def _summary(*, params, grid, area_m2, total, counts, outside, result, zones) -> dict:
    level = bin_for_alpha(params["alpha"])
    unadjusted = confidence_bins(result.z, result.p, fdr=False)
    return {
        "incidents": total,
        "cells": len(counts),
        "cells_with_incidents": int((counts > 0).sum()),
        "cells_outside_area": outside,
        "cell_size_m": grid.size,
        "cell_area_m2": round(grid.cell_area_m2, 3),
        "area_km2": round(area_m2 / 1e6, 6),
        "bins": _bin_counts(result.bins),
        "hot_cells": int((result.bins >= level).sum()),
        "cold_cells": int((result.bins <= -level).sum()),
        "hot_cells_without_fdr": int((unadjusted >= level).sum()),
        "cold_cells_without_fdr": int((unadjusted <= -level).sum()),
        "zones": len(zones),
        "p_value": (
            f"conditional permutations ({result.permutations}), two-sided"
            if result.permutations
            else "normal approximation, two-sided"
        ),
    }


def _pg_ints(values: np.ndarray) -> str:
    return "{" + ",".join(map(str, np.asarray(values, dtype=np.int64).tolist())) + "}"


def _pg_floats(values: np.ndarray) -> str:
    return "{" + ",".join(map(repr, np.asarray(values, dtype=np.float64).tolist())) + "}"


def _write(run: HotspotRun, c: Computed) -> None:
    grid = c.grid
    HotspotCell.objects.filter(run=run).delete()
    HotspotZone.objects.filter(run=run).delete()
    zone_ids: dict[int, int] = {}
    with connection.cursor() as cursor:
        if c.zones:
            ranks = np.concatenate([np.full(z.cell_count, z.rank) for z in c.zones])
            cells = np.concatenate([z.cells for z in c.zones])
            # The union snaps to a millimetre grid: shared hexagon vertices computed from
            # two cells can differ in the last bits, which would leave slivers.
            cursor.execute(
                f"""
                SELECT u.rank, ST_AsEWKB(ST_Multi(ST_CollectionExtract(ST_Transform(
                    ST_Union({grid.sql_cell("u.i", "u.j")}, 0.001), {STORAGE_SRID}), 3)))
                FROM unnest(%s::int[], %s::int[], %s::int[]) AS u(rank, i, j)
                GROUP BY u.rank
                ORDER BY u.rank
                """,
                [_pg_ints(ranks), _pg_ints(c.i[cells]), _pg_ints(c.j[cells])],
            )
            geometries = dict(cursor.fetchall())
            created = HotspotZone.objects.bulk_create(
                [
                    HotspotZone(
                        run=run,
                        rank=z.rank,
                        geom=GEOSGeometry(memoryview(geometries[z.rank])),
                        cell_count=z.cell_count,
                        incident_count=z.incident_count,
                        area_m2=z.area_m2,
                        density_per_km2=z.density_per_km2,
                        share=z.share,
                        top_categories=z.top_categories,
                    )
                    for z in c.zones
                ]
            )
            zone_ids = {z.rank: z.pk for z in created}
        zone_pk = np.array([zone_ids.get(int(r), 0) for r in c.zone_of_cell], dtype=np.int64)
        cursor.execute(
            f"""
            INSERT INTO {HotspotCell._meta.db_table}
                (run_id, i, j, geom, count, gi_z, gi_p, gi_bin, zone_id)
            SELECT %s, u.i, u.j, ST_Transform({grid.sql_cell("u.i", "u.j")}, {STORAGE_SRID}),
                   u.count, u.z, u.p, u.bin, NULLIF(u.zone, 0)
            FROM unnest(%s::int[], %s::int[], %s::int[], %s::float8[], %s::float8[],
                        %s::int[], %s::bigint[]) AS u(i, j, count, z, p, bin, zone)
            """,
            [
                run.pk,
                _pg_ints(c.i),
                _pg_ints(c.j),
                _pg_ints(c.counts),
                _pg_floats(c.gistar.z),
                _pg_floats(c.gistar.p),
                _pg_ints(c.gistar.bins),
                _pg_ints(zone_pk),
            ],
        )
    HotspotRun.objects.filter(pk=run.pk).update(
        status=HotspotRun.Status.SUCCEEDED,
        message=summary_line(c.summary),
        progress=1.0,
        finished_at=timezone.now(),
        params=c.params,
        summary=c.summary,
        metric_srid=grid.srid,
        area_geom=GEOSGeometry(memoryview(c.area_ewkb)),
        area_m2=c.area_m2,
        software_version=software_version(),
    )


def summary_line(summary: Mapping) -> str:
    return (
        f"{summary['incidents']:,} incidents in {summary['cells']:,} cells "
        f"({summary['cell_size_m']:g} m); {summary['hot_cells']:,} hot and "
        f"{summary['cold_cells']:,} cold significant cells; {summary['zones']} zone(s)"
    )
