"""The methods of a hotspot run, each from a :class:`~hotspots.services.context.Context`
to a :class:`~hotspots.services.context.Computed` (nothing is written here):

* ``gistar``: incidents counted per grid cell in the database, Getis-Ord Gi* with FDR
  bins, contiguous hot cells merged into zones and, by default, the stability of the hot
  area at neighbouring cell sizes;
* ``dbscan``: PostGIS ``ST_ClusterDBSCAN`` (eps and minpoints in metres, in the metric
  CRS) with one concave hull per cluster as a zone;
* ``kde``: a quartic kernel density surface stored as square cells;
* ``emerging``: Gi* per monthly or weekly step on a space-time cube, a Mann-Kendall trend
  per cell and the emerging hot spot categories;
* ``forecast``: candidate rankings back-tested on the end of the period, the best one's
  top cells as zones (:mod:`hotspots.services.forecast`).
"""

from __future__ import annotations

import math

import numpy as np
from django.db import connection, transaction
from scipy import stats

from hotspots import queries
from hotspots.engine import HotspotRefused
from hotspots.engine import emerging as emerging_engine
from hotspots.engine import grid as grids
from hotspots.engine.aoristic import AORISTIC
from hotspots.engine.gistar import GiStarResult, bin_for_alpha, confidence_bins, run_gistar
from hotspots.engine.kde import default_bandwidth, kde_grid
from hotspots.engine.zones import TOP_CATEGORIES, Zone
from hotspots.services.context import (
    EDGE_COVERAGE,
    Computed,
    Context,
    auto_cell_size,
    bin_counts,
    category_codes,
    cell_weights,
    check_bins,
    check_cells,
    check_incidents,
    edge_summary,
    grid_counts,
    grid_summary,
    suppress_edge_cold,
    union_cells,
)
from hotspots.services.forecast import compute_forecast
from hotspots.services.params import Method, time_steps
from hotspots.services.stability import measure_stability
from hotspots.services.zoning import patrol_zones
from incidents.selectors import day_start

# DBSCAN: over a whole region neighbouring hotspots chain into one cluster and the
# clustering takes minutes (planning: 1M incidents of a metro area at eps 150 m, 80 s,
# one cluster). A whole-region run above this many incidents is refused with a pointer
# to a district; below it the run goes ahead with a warning.
DBSCAN_REGION_MAX_INCIDENTS = 20_000
DBSCAN_MAX_INCIDENTS = 150_000
# min_points by default: a core point needs more neighbours within eps than complete
# spatial randomness over the area gives with this probability.
DBSCAN_CSR_PROBABILITY = 0.001
DBSCAN_MIN_POINTS_FLOOR = 5
KDE_CELLS_ON_SHORT_SIDE = 250


# --- Gi* --------------------------------------------------------------------------------


def _compute_gistar(context: Context) -> Computed:
    params, clock = context.params, context.clock
    with connection.cursor() as cursor:
        grid = auto_cell_size(cursor, context, 0.2)
        area_i, area_j, coverage = queries.area_cells(cursor, grid, context.area_ewkb)
        clock.step("grid", 0.3)
        ci, cj, category_ids, category_counts = queries.count_incidents(
            cursor, grid, context.inner_sql, context.inner_params
        )
        clock.step("count", 0.5)
        total = int(category_counts.sum())
        check_incidents(total)
        cells = union_cells(area_i, area_j, ci, cj, coverage)
        counts = np.zeros(len(cells), dtype=np.int64)
        np.add.at(counts, cells.row_cell, category_counts)
        check_cells(cells)

        result = run_gistar(
            counts,
            cell_weights(grid, cells, params),
            fdr=params["fdr"],
            permutations=params["permutations"],
            seed=params["seed"],
        )
        result.bins, suppressed = suppress_edge_cold(result.bins, cells.coverage)
        clock.step("gistar", 0.6)

        hot = result.bins >= bin_for_alpha(params["alpha"])
        zones, zone_of_cell, zoning = patrol_zones(
            grid,
            cells.i,
            cells.j,
            hot,
            result.z,
            max_zone_km2=float(params["max_zone_km2"]),
            score_name="gi_z",
            counts=counts,
            total_incidents=total,
            category_cells=cells.row_cell,
            category_ids=category_ids,
            category_counts=category_counts,
            category_codes=category_codes(category_ids),
        )
        clock.step("zones", 0.7)

        stability = {}
        if params["stability"]:
            stability = measure_stability(
                cursor,
                grid=grid,
                params=params,
                area_ewkb=context.area_ewkb,
                inner_sql=context.inner_sql,
                inner_params=context.inner_params,
                hot_i=cells.i[hot],
                hot_j=cells.j[hot],
            )
            clock.step("stability", 0.85)

    summary = {
        **grid_summary(grid, context.area_m2, total, counts, cells.outside),
        **_gistar_summary(params, result, cells.coverage),
        **edge_summary(cells, suppressed),
        "zones": len(zones),
        **zoning,
    }
    values = {"count": counts, "gi_z": result.z, "gi_p": result.p, "gi_bin": result.bins}
    return context.cells_computed(
        summary, grid, cells, values, zones=zones, zone_of_cell=zone_of_cell, stability=stability
    )


def _gistar_summary(params: dict, result: GiStarResult, coverage: np.ndarray) -> dict:
    level = bin_for_alpha(params["alpha"])
    unadjusted, _ = suppress_edge_cold(confidence_bins(result.z, result.p, fdr=False), coverage)
    return {
        "bins": bin_counts(result.bins),
        "hot_cells": int((result.bins >= level).sum()),
        "cold_cells": int((result.bins <= -level).sum()),
        "hot_cells_without_fdr": int((unadjusted >= level).sum()),
        "cold_cells_without_fdr": int((unadjusted <= -level).sum()),
        "p_value": (
            f"conditional permutations ({result.permutations}), two-sided"
            if result.permutations
            else "normal approximation, two-sided"
        ),
    }


# --- emerging hot spots ---------------------------------------------------------------------


def _compute_emerging(context: Context) -> Computed:
    params, clock, run = context.params, context.clock, context.run
    boundaries = time_steps(run.date_from, run.date_to, params["step"])
    n_steps = len(boundaries) - 1
    params["steps"] = [d.isoformat() for d in boundaries[:-1]]
    with connection.cursor() as cursor:
        grid = auto_cell_size(cursor, context, 0.15, steps=n_steps, step=params["step"])
        area_i, area_j, coverage = queries.area_cells(cursor, grid, context.area_ewkb)
        check_bins(grid, len(area_i), n_steps)
        clock.step("grid", 0.25)
        zone = run.region.time_zone
        ci, cj, step, weight, first = queries.weigh_incidents_by_step(
            cursor,
            grid,
            context.inner_sql,
            context.inner_params,
            [day_start(day, zone) for day in boundaries],
        )
        clock.step("count", 0.5)
    total = int(first.sum())
    check_incidents(total)
    context.count_incidents()  # those on days outside the whole steps too
    cells = union_cells(area_i, area_j, ci, cj, coverage)
    check_cells(cells)
    check_bins(grid, len(cells), n_steps)
    # Aoristic: an incident's weight of 1 is split over the steps its window overlaps.
    cube = np.zeros((len(cells), n_steps), dtype=np.float64)
    np.add.at(cube, (cells.row_cell, step), weight)
    counts = np.zeros(len(cells), dtype=np.int64)
    np.add.at(counts, cells.row_cell, first)
    weights = cell_weights(grid, cells, params)
    try:
        result = emerging_engine.emerging_hotspots(
            cube,
            weights,
            time_lag=params["time_lag"],
            threshold=params["alpha"],
            fdr=params["fdr"],
            global_window=params["global_window"],
            never_cold=cells.coverage < EDGE_COVERAGE,
        )
    except ValueError as exc:
        if "no variation" in str(exc):
            raise HotspotRefused(
                "no variation: every cell has the same count in every step, so there is "
                "nothing to compare; try smaller cells, a longer period or a larger area"
            ) from None
        raise HotspotRefused(str(exc)) from None
    step_bins = np.column_stack(
        [confidence_bins(result.z[:, t], result.p[:, t], fdr=params["fdr"]) for t in range(n_steps)]
    ).astype(np.int64)
    step_bins, suppressed = suppress_edge_cold(step_bins, cells.coverage)
    clock.step("emerging", 0.8)

    level = bin_for_alpha(params["alpha"])
    categories = result.counts_by_category()
    summary = {
        **grid_summary(grid, context.area_m2, total, counts, cells.outside),
        "steps": n_steps,
        "step": params["step"],
        "time_weighting": AORISTIC,
        "incidents_per_step": [_weight(v) for v in cube.sum(axis=0)],
        "weight_outside_steps": _weight(total - cube.sum()),
        "categories": {
            emerging_engine.LEGEND[code]["key"]: categories.get(code, 0)
            for code in emerging_engine.LEGEND
        },
        "hot_pattern_cells": int((result.category > 0).sum()),
        "cold_pattern_cells": int((result.category < 0).sum()),
        "hot_cells": int((step_bins[:, -1] >= level).sum()),
        "cold_cells": int((step_bins[:, -1] <= -level).sum()),
        "bins": bin_counts(step_bins[:, -1]),
        **edge_summary(cells, suppressed),
        "engine": result.params,
        "zones": 0,
    }
    values = {
        "count": counts,
        "gi_z": result.z[:, -1],
        "gi_p": result.p[:, -1],
        "gi_bin": step_bins[:, -1],
        "emerging": result.category.astype(np.int64),
        "trend_tau": result.trend.tau,
        "trend_p": result.trend.p,
        "step_counts": cube,
        "step_bins": step_bins,
    }
    return context.cells_computed(summary, grid, cells, values)


def _weight(value: float) -> float | int:
    """A sum of aoristic weights, whole when it is (exact times), else to 4 decimals."""
    value = round(float(value), 4)
    return int(value) if value.is_integer() else value


# --- kernel density -----------------------------------------------------------------------------


def _compute_kde(context: Context) -> Computed:
    params, clock = context.params, context.clock
    with connection.cursor() as cursor:
        x, y = queries.metric_points(cursor, context.inner_sql, context.inner_params)
        check_incidents(len(x))
        if params["cell_size_m"] is None:
            x0, y0, x1, y1 = queries.area_extent(cursor, context.area_ewkb, context.srid)
            shorter = min(x1 - x0, y1 - y0)
            size = max(grids.MIN_CELL_SIZE_M, float(round(shorter / KDE_CELLS_ON_SHORT_SIDE)))
            params["cell_size_m"] = size
            params["cell_size_reason"] = (
                f"the shorter side of the area's extent ({shorter:.0f} m) / "
                f"{KDE_CELLS_ON_SHORT_SIDE} (ArcGIS Kernel Density's default), rounded to {size:g} m"
            )
            clock.step("cell_size", 0.1)
        if params["bandwidth_m"] is None:
            bandwidth, rule = default_bandwidth(x, y)
            if not bandwidth > 0:
                raise HotspotRefused(
                    "the bandwidth cannot be chosen automatically: every incident is at the "
                    "same place; give a bandwidth"
                )
            # Rounded, and the rounded value is the one used: the stored params repeat it.
            params["bandwidth_m"] = round(bandwidth, 1)
            params["bandwidth_rule"] = {
                k: (round(v, 3) if isinstance(v, float) else v)
                for k, v in rule.items()
                if k != "mean_center"
            }
            clock.step("bandwidth", 0.2)
        grid = context.make_grid(cursor, "square", float(params["cell_size_m"]))
        cells, counts, _ids, _counts = grid_counts(
            cursor, grid, context.area_ewkb, context.inner_sql, context.inner_params
        )
        clock.step("count", 0.4)
    i0, j0 = int(cells.i.min()), int(cells.j.min())
    i1, j1 = int(cells.i.max()) + 1, int(cells.j.max()) + 1
    size = grid.size
    ox, oy = grid.origin
    surface = kde_grid(
        x,
        y,
        bandwidth=float(params["bandwidth_m"]),
        cell_size=size,
        bounds=(ox + i0 * size, oy + j0 * size, ox + i1 * size, oy + j1 * size),
    )
    density = surface.density[cells.j - j0, cells.i - i0]
    # Cells where the surface is 0 and nothing happened are not stored: an absent cell of
    # a KDE run has density 0 (and they are most of a large area with a small bandwidth).
    keep = (density > 0) | (counts > 0)
    clock.step("kde", 0.8)
    kept_density = density[keep]
    summary = {
        **grid_summary(grid, context.area_m2, int(len(x)), counts[keep], cells.outside),
        "cells_zero_density_not_stored": int((~keep).sum()),
        "bandwidth_m": float(params["bandwidth_m"]),
        "density_max_per_km2": round(float(kept_density.max()), 3) if keep.any() else 0.0,
        "density_mean_per_km2": round(float(density.mean()), 3),
        "zones": 0,
    }
    return context.computed(
        summary,
        grid=grid,
        i=cells.i[keep],
        j=cells.j[keep],
        values={"count": counts[keep], "density": kept_density},
    )


# --- density clustering (DBSCAN) -------------------------------------------------------------


def _dbscan_min_points(total: int, area_m2: float, eps: float) -> tuple[int, str]:
    expected = total * math.pi * eps * eps / area_m2
    quantile = int(stats.poisson.ppf(1 - DBSCAN_CSR_PROBABILITY, expected))
    # Core: at least min_points within eps, the point itself included; neighbours of a
    # random point are Poisson(expected), so min_points − 1 must exceed the quantile.
    min_points = max(DBSCAN_MIN_POINTS_FLOOR, quantile + 2)
    reason = (
        f"{total:,} incidents over {area_m2 / 1e6:.2f} km² give {expected:.2f} neighbours "
        f"within {eps:g} m of a point under complete spatial randomness; a core point needs "
        f"more than that distribution gives with probability {DBSCAN_CSR_PROBABILITY:g} "
        f"({quantile} neighbours): min_points = max({DBSCAN_MIN_POINTS_FLOOR}, {quantile} + 2) "
        f"= {min_points}"
    )
    return min_points, reason


def _compute_dbscan(context: Context) -> Computed:
    params, clock, run = context.params, context.clock, context.run
    total = context.count_incidents()
    check_incidents(total)
    whole_region = not (
        run.districts.exists() or run.neighborhoods.exists() or run.polygon is not None
    )
    warnings = []
    advice = "choose a district, some neighbourhoods or draw an area (or use the grid + Gi* method)"
    if total > DBSCAN_MAX_INCIDENTS:
        raise HotspotRefused(
            f"density clustering over {total:,} incidents (at most {DBSCAN_MAX_INCIDENTS:,}) "
            f"would take minutes and chain neighbouring hotspots into one cluster: {advice}"
        )
    if whole_region:
        if total > DBSCAN_REGION_MAX_INCIDENTS:
            raise HotspotRefused(
                f"density clustering over a whole region of {total:,} incidents (at most "
                f"{DBSCAN_REGION_MAX_INCIDENTS:,} without a smaller area) merges neighbouring "
                f"hotspots into one cluster and is slow: use density clustering inside a "
                f"district: {advice}"
            )
        warnings.append(
            "density clustering over a whole region can merge neighbouring hotspots into one "
            "cluster: prefer a district"
        )
    eps = float(params["eps_m"])
    if params["min_points"] is None:
        params["min_points"], params["min_points_reason"] = _dbscan_min_points(
            total, context.area_m2, eps
        )
    min_points = int(params["min_points"])
    with transaction.atomic(), connection.cursor() as cursor:
        queries.cluster_dbscan(
            cursor, context.inner_sql, context.inner_params, eps=eps, min_points=min_points
        )
        clock.step("dbscan", 0.6)
        clusters, category_rows = queries.dbscan_hulls(
            cursor, eps=eps, concave_ratio=float(params["concave_ratio"])
        )
    codes = category_codes(np.array([r[1] for r in category_rows], dtype=np.int64))
    by_cluster: dict[int, list[tuple[str, int]]] = {}
    for cid, category_id, n in category_rows:
        by_cluster.setdefault(cid, []).append((codes.get(category_id, str(category_id)), int(n)))
    # Most incidents first, then the densest, then west to east and south to north.
    clusters.sort(key=lambda r: (-r[1], -(r[1] / r[2]), round(r[3], 3), round(r[4], 3)))
    zones, geoms = [], {}
    for rank, (cid, n, area, _x, _y, ewkb) in enumerate(clusters, start=1):
        ranked = sorted(by_cluster.get(cid, []), key=lambda item: (-item[1], item[0]))
        zones.append(
            Zone(
                rank=rank,
                cells=np.empty(0, dtype=np.int64),
                incident_count=int(n),
                area_m2=float(area),
                density_per_km2=float(n) / (float(area) / 1e6),
                share=int(n) / total,
                top_categories=[
                    {"code": code, "count": count, "share": round(count / n, 4)}
                    for code, count in ranked[:TOP_CATEGORIES]
                ],
            )
        )
        geoms[rank] = bytes(ewkb)
    clock.step("zones", 0.8)
    clustered = sum(z.incident_count for z in zones)
    summary = {
        "incidents": total,
        "area_km2": round(context.area_m2 / 1e6, 6),
        "eps_m": eps,
        "min_points": min_points,
        "zones": len(zones),
        "clustered_incidents": clustered,
        "noise_incidents": total - clustered,
        "zones_area_km2": round(sum(z.area_m2 for z in zones) / 1e6, 6),
        "warnings": warnings,
    }
    return context.computed(summary, zones=zones, zone_geoms=geoms)


# Each method: a run's context -> what its run writes.
COMPUTE = {
    Method.GISTAR: _compute_gistar,
    Method.EMERGING: _compute_emerging,
    Method.KDE: _compute_kde,
    Method.DBSCAN: _compute_dbscan,
    Method.FORECAST: compute_forecast,
}
