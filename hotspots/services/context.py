"""What every method of a run starts from and shares: the run's :class:`Context` (checked
parameters, analysis area, the SQL of its incidents, the clock of its timed steps), the
:class:`Computed` result a method hands to the writing, and the cell helpers of the grid
methods (cells covering the area, counts, edge cells, summaries)."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import Q

from hotspots import queries
from hotspots.engine import MIN_CELLS, MIN_INCIDENTS, HotspotRefused, step_size
from hotspots.engine import grid as grids
from hotspots.engine.zones import Zone
from hotspots.models import HotspotRun
from hotspots.services.params import (
    AREA_POINTS_HULL,
    Method,
    check_metric_crs,
    normalize_params,
)
from incidents.models import Category
from incidents.selectors import IncidentFilters, incident_list

# Timed steps, in order (``timings`` is stored as JSON, whose keys PostgreSQL reorders).
STEPS = (
    "area",
    "cell_size",
    "bandwidth",
    "grid",
    "count",
    "gistar",
    "emerging",
    "kde",
    "dbscan",
    "backtest",
    "zones",
    "stability",
    "write",
    "total",
)
# Gi* and emerging runs: a cell with less than this share of its area inside the analysis
# area (cut by the outline, or holding incidents from outside it) is never reported cold.
# Few incidents there may only mean that most of the cell lies outside the area. It still
# counts and is still a neighbour; a hot bin stays (hot despite the missing part).
EDGE_COVERAGE = 0.5
# Emerging runs: the most cells × steps (HOTSPOT_EMERGING_MAX_BINS overrides it). Measured
# (bench emerging_run): 4.5 million bins peaked at 560 MB RSS, 240 of them Django's, so
# about 70 bytes per bin from counting to writing; the 2 GB of the issue were 16 million.
DEFAULT_MAX_BINS = 5_000_000

Progress = Callable[[float, str], None]


@dataclass
class Computed:
    """Everything a run writes, computed before the write transaction."""

    params: dict
    srid: int
    area_ewkb: bytes
    area_m2: float
    summary: dict
    grid: grids.Grid | None = None  # the cells' grid; None for runs without cells
    i: np.ndarray | None = None
    j: np.ndarray | None = None
    # HotspotCell column -> one value per cell (arrays of arrays for the step columns)
    values: dict = field(default_factory=dict)
    zones: list[Zone] = field(default_factory=list)
    zone_of_cell: np.ndarray | None = None  # zone rank per cell, 0 = none
    zone_geoms: dict[int, bytes] | None = None  # rank -> WGS84 EWKB when not cell unions
    stability: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)


class Clock:
    """Times a run's steps (into ``timings``, see STEPS) and writes its progress."""

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


def incident_queryset(
    run: HotspotRun, *, date_from: dt.date | None = None, date_to: dt.date | None = None
):
    """The run's incidents: period (days in the region's time zone, both ends included),
    family or categories, region, the chosen districts/neighborhoods and drawn polygon.
    ``date_from``/``date_to`` ask for another period of the same selection (validation)."""
    region = run.region
    category_ids = tuple(run.categories.order_by("pk").values_list("pk", flat=True))
    queryset = incident_list(
        IncidentFilters(
            date_from=date_from or run.date_from,
            date_to=date_to or run.date_to,
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


@dataclass
class Context:
    """What every method starts from: the run, its checked parameters, the area and the
    SQL of its incidents (metric points)."""

    run: HotspotRun
    params: dict
    srid: int
    clock: Clock
    timings: dict
    inner_sql: str
    inner_params: tuple
    area_ewkb: bytes = b""
    area_m2: float = 0.0
    input_incidents: int | None = None
    # The area is the incidents' hull, to be buffered by half a cell once the size is known.
    hull_pending: bool = False
    grid_origin: tuple[float, float] | None = None  # of the run's grid, once made

    @classmethod
    def for_run(cls, run: HotspotRun, progress: Progress | None) -> Context:
        timings: dict = {}
        clock = Clock(timings, progress, run)
        # The CRS the run was created in, even if an admin has changed the region's since.
        srid = int(run.metric_srid) if run.metric_srid else check_metric_crs(run.region)
        params = normalize_params(run.params, run.method)
        # Emerging runs weigh each incident's time window over the steps (aoristic).
        inner_sql, inner_params = queries.incidents_sql(
            incident_queryset(run), srid, window=run.method == Method.EMERGING
        )
        context = cls(run, params, srid, clock, timings, inner_sql, inner_params)
        with connection.cursor() as cursor:
            if params.get("analysis_area") == AREA_POINTS_HULL:
                # Unbuffered until the cell size is known (an automatic size may need the
                # area's extent): see make_grid.
                context.area_ewkb, context.area_m2 = queries.points_hull(
                    cursor, inner_sql, inner_params, srid
                )
                context.hull_pending = True
            else:
                context.area_ewkb, context.area_m2 = queries.analysis_area(cursor, run, srid)
        clock.step("area", 0.05)
        return context

    def make_grid(self, cursor, kind: str, size: float) -> grids.Grid:
        """The run's grid of ``kind`` and ``size``: the points' hull buffered by half a
        cell first (the points-hull area), then anchored where ``grid_origin`` says."""
        if self.hull_pending:
            self.area_ewkb, self.area_m2 = queries.points_hull(
                cursor, self.inner_sql, self.inner_params, self.srid, buffer_m=size / 2.0
            )
            self.hull_pending = False
        origin = (0.0, 0.0)
        if self.params.get("grid_origin") == grids.ORIGIN_AREA:
            x0, y0, _x1, _y1 = queries.area_extent(cursor, self.area_ewkb, self.srid)
            origin = (x0, y0)
        self.grid_origin = origin
        return grids.Grid(kind, size, self.srid, origin)

    def count_incidents(self) -> int:
        """How many incidents the run selects (for the methods that do not count them all
        anyway): recorded to tell later whether the data changed."""
        with connection.cursor() as cursor:
            self.input_incidents = queries.count_selected(cursor, self.inner_sql, self.inner_params)
        return self.input_incidents

    def computed(self, summary: dict, **kwargs) -> Computed:
        summary = {"method": str(self.run.method), **summary}
        if self.grid_origin is not None:
            # Exact metres in the run's metric CRS: a stored run's grid is rebuilt from it.
            summary["grid_origin_m"] = list(self.grid_origin)
        # Gi* and KDE count every selected incident; emerging and DBSCAN counted them.
        summary["input_incidents"] = (
            summary["incidents"] if self.input_incidents is None else self.input_incidents
        )
        return Computed(
            params=self.params,
            srid=self.srid,
            area_ewkb=self.area_ewkb,
            area_m2=self.area_m2,
            summary=summary,
            timings=self.timings,
            **kwargs,
        )

    def cells_computed(
        self, summary: dict, grid: grids.Grid, cells: Cells, values: dict, **kwargs
    ) -> Computed:
        """:meth:`computed` for a grid method that stores every one of ``cells``
        (``values``: HotspotCell column -> one value per cell)."""
        return self.computed(summary, grid=grid, i=cells.i, j=cells.j, values=values, **kwargs)


def check_incidents(count: int) -> None:
    if count < MIN_INCIDENTS:
        raise HotspotRefused(
            f"only {count} incidents match (at least {MIN_INCIDENTS} are needed for a hotspot "
            "analysis): widen the period, the area or the categories"
        )


def auto_cell_size(
    cursor, context: Context, fraction: float, *, steps: int = 0, step: str = ""
) -> grids.Grid:
    """The run's grid; without a cell size, chosen like Optimized Hot Spot Analysis, and
    for an emerging run over ``steps`` steps of ``step`` grown until the cells have
    enough incidents per step for a trend and the cube fits :func:`max_bins`
    (:mod:`hotspots.engine.step_size`; its rule is stored as ``cell_size_rule``)."""
    params = context.params
    if params["cell_size_m"] is None:
        x, y = queries.metric_points(cursor, context.inner_sql, context.inner_params)
        check_incidents(len(x))
        size, reason = grids.choose_cell_size(x, y, params["grid"])
        if steps:
            x0, y0, x1, y1 = queries.area_extent(cursor, context.area_ewkb, context.srid)
            chosen = step_size.size_for_steps(
                x,
                y,
                kind=params["grid"],
                base_size=size,
                steps=steps,
                step=step,
                extent_m=(x1 - x0, y1 - y0),
                max_bins=max_bins(),
            )
            size, reason = chosen.size, f"{chosen.reason}. Starting size: {reason}"
            params["cell_size_rule"] = chosen.rule
        params["cell_size_m"] = size
        params["cell_size_reason"] = reason
        context.clock.step("cell_size", fraction)
    return context.make_grid(cursor, params["grid"], float(params["cell_size_m"]))


def stored_origin(run: HotspotRun) -> tuple[float, float]:
    """Where a stored run's grid is anchored (runs before grid_origin: the CRS origin)."""
    origin = (run.summary or {}).get("grid_origin_m") or (0.0, 0.0)
    return float(origin[0]), float(origin[1])


def max_bins() -> int:
    """Most cells × steps an emerging run may hold (``HOTSPOT_EMERGING_MAX_BINS``): its
    memory grows with the cube (see DEFAULT_MAX_BINS)."""
    return int(getattr(settings, "HOTSPOT_EMERGING_MAX_BINS", DEFAULT_MAX_BINS))


def check_bins(grid: grids.Grid, cells: int, steps: int) -> None:
    """Refuses a cube of more than :func:`max_bins` bins before it is built."""
    limit = max_bins()
    if cells * steps > limit:
        # Cells scale with 1/size²: the size that would bring this grid within the limit.
        needed = math.ceil(grid.size * math.sqrt(cells * steps / limit))
        raise HotspotRefused(
            f"{cells:,} cells of {grid.size:g} m over {steps:,} steps would be "
            f"{cells * steps:,} cell-steps, more than this server allows "
            f"({limit:,}, HOTSPOT_EMERGING_MAX_BINS): choose cells of about {needed:g} m or "
            "more, leave the cell size automatic, or shorten the period or the area"
        )


@dataclass
class Cells:
    """A grid's cells covering the area (zero cells included) plus any cell holding an
    incident outside it, sorted by (i, j)."""

    i: np.ndarray
    j: np.ndarray
    outside: int  # cells with incidents that do not intersect the area
    row_cell: np.ndarray  # cell index of each counted row
    coverage: np.ndarray | None = None  # share of each cell inside the area (0 outside)

    def __len__(self) -> int:
        return len(self.i)


def union_cells(area_i, area_j, ci, cj, area_coverage=None) -> Cells:
    area_keys = grids.cell_keys(area_i, area_j)
    row_keys = grids.cell_keys(ci, cj)
    keys = np.union1d(area_keys, row_keys)
    i, j = grids.split_keys(keys)
    coverage = None
    if area_coverage is not None:
        coverage = np.zeros(len(keys))
        coverage[np.searchsorted(keys, area_keys)] = area_coverage
    return Cells(i, j, int(len(keys) - len(area_keys)), np.searchsorted(keys, row_keys), coverage)


def suppress_edge_cold(bins: np.ndarray, coverage: np.ndarray) -> tuple[np.ndarray, int]:
    """``bins`` (one column per cell row, or per cell and step) with the cold bins of the
    cells under EDGE_COVERAGE set to 0, and how many cells lost a cold bin."""
    edge = coverage < EDGE_COVERAGE
    cold = (bins < 0) & (edge if bins.ndim == 1 else edge[:, None])
    out = np.where(cold, 0, bins).astype(bins.dtype)
    suppressed = cold if bins.ndim == 1 else cold.any(axis=1)
    return out, int(suppressed.sum())


def edge_summary(cells: Cells, suppressed: int) -> dict:
    return {
        "edge_coverage": EDGE_COVERAGE,
        "edge_cells": int((cells.coverage < EDGE_COVERAGE).sum()),
        "cold_suppressed_at_edge": suppressed,
    }


def check_cells(cells: Cells) -> None:
    if len(cells) < MIN_CELLS:
        raise HotspotRefused(
            f"only {len(cells)} cells cover the area (at least {MIN_CELLS} are needed): "
            "choose smaller cells or a larger area"
        )


def grid_counts(cursor, grid: grids.Grid, area_ewkb: bytes, inner_sql: str, inner_params):
    """(cells, counts per cell, category ids and counts per counted row)."""
    area_i, area_j, _coverage = queries.area_cells(cursor, grid, area_ewkb, coverage=False)
    ci, cj, category_ids, category_counts = queries.count_incidents(
        cursor, grid, inner_sql, inner_params
    )
    cells = union_cells(area_i, area_j, ci, cj)
    counts = np.zeros(len(cells), dtype=np.int64)
    np.add.at(counts, cells.row_cell, category_counts)
    return cells, counts, category_ids, category_counts


def cell_weights(grid: grids.Grid, cells: Cells, params: dict):
    return grids.weights_matrix(
        grid, cells.i, cells.j, rule=params["neighbour_rule"], band_m=params["distance_band_m"]
    )


def category_codes(category_ids: np.ndarray) -> dict[int, str]:
    return dict(
        Category.objects.filter(pk__in=set(np.asarray(category_ids).tolist())).values_list(
            "pk", "code"
        )
    )


def bin_counts(bins: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(bins, return_counts=True)
    found = dict(zip(values.tolist(), counts.tolist(), strict=True))
    return {str(b): int(found.get(b, 0)) for b in range(-3, 4)}


def grid_summary(grid: grids.Grid, area_m2: float, total: int, counts, outside: int) -> dict:
    return {
        "incidents": total,
        "cells": len(counts),
        "cells_with_incidents": int((counts > 0).sum()),
        "cells_outside_area": outside,
        "cell_size_m": grid.size,
        "cell_area_m2": round(grid.cell_area_m2, 3),
        "area_km2": round(area_m2 / 1e6, 6),
    }
