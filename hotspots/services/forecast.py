"""The ``forecast`` method of a hotspot run: candidate rankings of the grid's cells
back-tested on the last part of the run's own period (:mod:`hotspots.engine.forecast`), the
best one at the planner's coverage refitted on the whole period, its top cells merged into
zones. The summary keeps every candidate's back-test so that the choice is explained."""

from __future__ import annotations

import datetime as dt

import numpy as np
from django.db import connection

from hotspots import queries
from hotspots.engine import HotspotRefused
from hotspots.engine import forecast as engine
from hotspots.engine import grid as grids
from hotspots.engine.validation import select_by_coverage
from hotspots.services.context import (
    Computed,
    Context,
    auto_cell_size,
    category_codes,
    cell_weights,
    check_cells,
    check_incidents,
    grid_summary,
    incident_queryset,
    union_cells,
)
from hotspots.services.zoning import patrol_zones

# What each candidate is, for the summary (untranslated; the tables translate them).
CANDIDATE_LABELS = {
    "count": "period count",
    "decay": "time-decayed count, half-life {h:g} days",
    "gistar": "Getis-Ord Gi* z",
    "kde": "kernel density",
}


def candidate_label(kind: str, half_life_days: float | None) -> str:
    return CANDIDATE_LABELS[kind].format(h=half_life_days or 0)


def _history(cursor, context: Context, grid: grids.Grid, keys: np.ndarray, n_days: int):
    """Incidents per (cell, day of the period), days in the region's time zone."""
    run = context.run
    day_sql, day_params = queries.incidents_sql(
        incident_queryset(run), context.srid, time_zone=run.region.time_zone
    )
    boundaries = [run.date_from + dt.timedelta(days=d) for d in range(n_days + 1)]
    ci, cj, day, n = queries.count_incidents_by_step(cursor, grid, day_sql, day_params, boundaries)
    cell = np.searchsorted(keys, grids.cell_keys(ci, cj))
    return engine.History(cell, day, n.astype(np.float64), len(keys), n_days)


def _kde(cursor, context: Context, grid, cells, date_to: dt.date | None = None):
    """Kernel density at the cells of the run's incidents (up to ``date_to``), or (None,
    None) when it cannot be computed (too few distinct places)."""
    if date_to is None:
        sql, params = context.inner_sql, context.inner_params
    else:
        sql, params = queries.incidents_sql(
            incident_queryset(context.run, date_to=date_to), context.srid
        )
    x, y = queries.metric_points(cursor, sql, params)
    if len(x) < 2:
        return None, None
    try:
        return engine.kde_at_cells(x, y, grid, cells.i, cells.j)
    except HotspotRefused:
        return None, None


def compute_forecast(context: Context) -> Computed:
    params, clock, run = context.params, context.clock, context.run
    n_days = (run.date_to - run.date_from).days + 1
    holdout_days = engine.holdout_days_for(n_days, float(params["holdout"]))
    if n_days < 2:
        raise HotspotRefused("a forecast needs a period of at least two days to back-test")
    fit_last = run.date_from + dt.timedelta(days=n_days - holdout_days - 1)
    with connection.cursor() as cursor:
        grid = auto_cell_size(cursor, context, 0.1)
        area_i, area_j, coverage = queries.area_cells(cursor, grid, context.area_ewkb)
        clock.step("grid", 0.2)
        ci, cj, category_ids, category_counts = queries.count_incidents(
            cursor, grid, context.inner_sql, context.inner_params
        )
        total = int(category_counts.sum())
        check_incidents(total)
        cells = union_cells(area_i, area_j, ci, cj, coverage)
        check_cells(cells)
        counts = np.zeros(len(cells), dtype=np.int64)
        np.add.at(counts, cells.row_cell, category_counts)
        history = _history(cursor, context, grid, grids.cell_keys(cells.i, cells.j), n_days)
        clock.step("count", 0.4)
        fit_total = int(history.counts(0, n_days - holdout_days).sum())
        if fit_total < 30:
            raise HotspotRefused(
                f"only {fit_total} incidents before the {holdout_days} held-out day(s) (at "
                "least 30 are needed to fit the candidates): lengthen the period or hold "
                "out a smaller share"
            )
        kde_fit, bandwidth_fit = _kde(cursor, context, grid, cells, fit_last)
        kde_full, bandwidth_full = _kde(cursor, context, grid, cells)
        clock.step("kde", 0.6)
    weights = cell_weights(grid, cells, params)
    areas = np.full(len(cells), grid.cell_area_m2)
    test = engine.backtest(
        engine.Inputs(history, weights, kde_fit),
        holdout_days=holdout_days,
        coverage=float(params["coverage"]),
        areas=areas,
        half_lives=params["half_lives_days"],
    )
    chosen = test.chosen
    score = engine.candidate_scores(
        chosen, engine.Inputs(history, weights, kde_full if chosen.kind == "kde" else None)
    )
    if score is None:  # the winner of the fit days cannot be refitted: the period count
        chosen = engine.candidates(())[0]
        score = engine.candidate_scores(chosen, engine.Inputs(history, weights, None))
    flagged = select_by_coverage(
        score,
        float(params["coverage"]),
        areas,
        tiebreak=engine.tiebreak_for(chosen, counts.astype(np.float64)),
    )
    clock.step("backtest", 0.7)

    zones, zone_of_cell, zoning = patrol_zones(
        grid,
        cells.i,
        cells.j,
        flagged,
        np.asarray(score, dtype=np.float64),
        max_zone_km2=float(params["max_zone_km2"]),
        score_name="forecast",
        counts=counts,
        total_incidents=total,
        category_cells=cells.row_cell,
        category_ids=category_ids,
        category_counts=category_counts,
        category_codes=category_codes(category_ids),
    )
    clock.step("zones", 0.8)

    rows = []
    for row in test.rows:
        entry = row.as_dict()
        entry["label"] = candidate_label(row.candidate.kind, row.candidate.half_life_days)
        entry["chosen"] = row.candidate.key == test.chosen.key
        rows.append(entry)
    flagged_incidents = int(counts[flagged].sum())
    summary = {
        **grid_summary(grid, context.area_m2, total, counts, cells.outside),
        "chosen": chosen.key,
        "chosen_label": candidate_label(chosen.kind, chosen.half_life_days),
        "coverage": float(params["coverage"]),
        "flagged_cells": int(flagged.sum()),
        "flagged_share": round(float(areas[flagged].sum() / areas.sum()), 6),
        "flagged_incidents": flagged_incidents,
        "zones": len(zones),
        **zoning,
        "backtest": {
            "fit_from": run.date_from.isoformat(),
            "fit_to": fit_last.isoformat(),
            "test_from": (fit_last + dt.timedelta(days=1)).isoformat(),
            "test_to": run.date_to.isoformat(),
            "fit_incidents": fit_total,
            "test_incidents": int(history.counts(n_days - holdout_days).sum()),
            "coverage": float(params["coverage"]),
            "bandwidth_m": None if bandwidth_fit is None else round(bandwidth_fit, 1),
            "rows": rows,
            "chosen": test.chosen.key,
            "rule": "highest back-test PAI at the coverage; equal hits: the simpler "
            "candidate (period count, then the longest half-life first, Gi*, KDE)",
        },
    }
    if chosen.kind == "kde" and bandwidth_full is not None:
        summary["bandwidth_m"] = round(bandwidth_full, 1)
    values = {"count": counts, "score": np.asarray(score, dtype=np.float64)}
    return context.cells_computed(
        summary, grid, cells, values, zones=zones, zone_of_cell=zone_of_cell
    )
