"""How much a Gi* run's hot area depends on its cell size: Gi* rerun at other sizes, each
hot area compared with the run's (area Jaccard). Computed with every Gi* run by default,
or again for a stored run with :func:`compute_stability`."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence

import numpy as np
from django.db import connection

from hotspots import queries
from hotspots.engine import HotspotRefused
from hotspots.engine import grid as grids
from hotspots.engine import stability as stability_engine
from hotspots.engine.gistar import bin_for_alpha, run_gistar
from hotspots.models import HotspotCell, HotspotRun
from hotspots.services.context import (
    check_cells,
    incident_queryset,
    stored_origin,
    union_cells,
)
from hotspots.services.params import Method, normalize_params

STABILITY_FACTORS = (0.5, 0.75, 1.5, 2.0)


def measure_stability(
    cursor,
    *,
    grid: grids.Grid,
    params: dict,
    area_ewkb: bytes,
    inner_sql: str,
    inner_params,
    hot_i: np.ndarray,
    hot_j: np.ndarray,
    factors: Sequence[float] = STABILITY_FACTORS,
) -> dict:
    """Gi* rerun at ``factors`` × the cell size (same kind, rule, alpha, FDR and
    permutations; a distance band scales with the cells so that each cell keeps about
    as many neighbours); each row's ``jaccard`` is area(A ∩ B) / area(A ∪ B) of its hot
    area against the run's hot area (cells significant hot at the run's alpha)."""
    started = time.perf_counter()
    level = bin_for_alpha(params["alpha"])
    reference = stability_engine.hot_area(grids.cell_polygons(grid, hot_i, hot_j))
    # The points are read once and indexed in numpy with the same arithmetic as the
    # database (Grid.index): four counting queries cost more than the rest together.
    x, y = queries.metric_points(cursor, inner_sql, inner_params)
    rows = []
    for factor in factors:
        size = round(grid.size * factor, 3)
        row = {"factor": factor, "cell_size_m": size}
        try:
            other = dataclasses.replace(grid, size=size)  # same origin
            # Only hot cells are compared: the shares inside the area are not needed.
            area_i, area_j, _coverage = queries.area_cells(cursor, other, area_ewkb, coverage=False)
            point_i, point_j = other.index(x, y)
            cells = union_cells(area_i, area_j, point_i, point_j)
            counts = np.bincount(cells.row_cell, minlength=len(cells)).astype(np.int64)
            check_cells(cells)
            band = params["distance_band_m"]
            result = run_gistar(
                counts,
                grids.weights_matrix(
                    other,
                    cells.i,
                    cells.j,
                    rule=params["neighbour_rule"],
                    band_m=None if band is None else band * factor,
                ),
                fdr=params["fdr"],
                permutations=params["permutations"],
                seed=params["seed"],
            )
        except HotspotRefused as exc:
            rows.append(
                {**row, "cells": None, "hot_cells": None, "jaccard": None, "error": str(exc)}
            )
            continue
        hot = result.bins >= level
        area = stability_engine.hot_area(grids.cell_polygons(other, cells.i[hot], cells.j[hot]))
        rows.append(
            {
                **row,
                "cells": len(cells),
                "hot_cells": int(hot.sum()),
                "hot_area_km2": round(area.area / 1e6, 6),
                "jaccard": round(stability_engine.jaccard(reference, area), 6),
            }
        )
    values = [r["jaccard"] for r in rows if r["jaccard"] is not None]
    return {
        "measure": "area Jaccard of the hot cells (significant hot at the run's alpha, bins "
        "as the run computed them) against the run's hot area; 1 = the same area",
        "reference": {
            "cell_size_m": grid.size,
            "hot_cells": int(len(hot_i)),
            "hot_area_km2": round(reference.area / 1e6, 6),
        },
        "factors": list(factors),
        "rows": rows,
        "min_jaccard": min(values) if values else None,
        "mean_jaccard": round(float(np.mean(values)), 6) if values else None,
        "seconds": round(time.perf_counter() - started, 3),
    }


def compute_stability(
    *, run: HotspotRun, factors: Sequence[float] = STABILITY_FACTORS
) -> HotspotRun:
    """Computes (again) the stability of a succeeded Gi* run and stores it on the run."""
    if run.method != Method.GISTAR:
        raise HotspotRefused("stability is computed for grid + Gi* runs only")
    if run.status != HotspotRun.Status.SUCCEEDED:
        raise HotspotRefused("the run has not succeeded: nothing to compare")
    if not factors or any(not math.isfinite(f) or f <= 0 or f == 1 for f in factors):
        raise HotspotRefused("stability factors must be positive numbers other than 1")
    params = normalize_params(run.params, run.method)
    grid = grids.Grid(
        params["grid"], float(params["cell_size_m"]), int(run.metric_srid), stored_origin(run)
    )
    level = bin_for_alpha(params["alpha"])
    hot = np.array(
        HotspotCell.objects.filter(run=run, gi_bin__gte=level)
        .order_by("i", "j")
        .values_list("i", "j"),
        dtype=np.int64,
    ).reshape(-1, 2)
    hot_i, hot_j = hot[:, 0], hot[:, 1]
    inner_sql, inner_params = queries.incidents_sql(incident_queryset(run), grid.srid)
    with connection.cursor() as cursor:
        table = measure_stability(
            cursor,
            grid=grid,
            params=params,
            area_ewkb=bytes(run.area_geom.ewkb),
            inner_sql=inner_sql,
            inner_params=inner_params,
            hot_i=hot_i,
            hot_j=hot_j,
            factors=tuple(float(f) for f in factors),
        )
    HotspotRun.objects.filter(pk=run.pk).update(stability=table)
    run.refresh_from_db()
    return run
