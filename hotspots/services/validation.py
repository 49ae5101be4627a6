"""Forecast validation of a hotspot run: its zones and top cells scored against the
incidents of a later period (hit rate, PAI, PEI) beside naive baselines, on one grid."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import numpy as np
from django.db import connection
from django.utils.translation import gettext_noop

from hotspots import queries
from hotspots.engine import HotspotRefused
from hotspots.engine import grid as grids
from hotspots.engine import validation as scores
from hotspots.models import HotspotCell, HotspotRun, HotspotValidation
from hotspots.services.context import incident_queryset, stored_origin
from hotspots.services.params import Method, add_months, check_metric_crs, normalize_params

VALIDATION_COVERAGES = scores.DEFAULT_COVERAGES
# Report rows: key -> (label, description), in the order a table shows them.
VALIDATION_METHODS = {
    "zones": (
        gettext_noop("Hot zones"),
        gettext_noop("The run's zones as they are (their own share of the area)."),
    ),
    "top_cells": (
        gettext_noop("Run's top cells"),
        gettext_noop(
            "The run's cells ranked by its score (Gi* z, kernel density, or a forecast's "
            "chosen ranking), down to each coverage."
        ),
    ),
    "naive_period": (
        gettext_noop("Naive: count over the run's period"),
        gettext_noop(
            "Baseline: the cells with most incidents in the run's period, down to each coverage."
        ),
    ),
    "naive_last_month": (
        gettext_noop("Naive: last month's count"),
        gettext_noop(
            "Baseline: the cells with most incidents in the last month of the run's "
            "period (ties: the whole period's count)."
        ),
    ),
}
VALIDATION_METRICS = {
    "hit_rate": gettext_noop("Hit rate: share of the later incidents inside the flagged area"),
    "pai": gettext_noop("PAI: hit rate ÷ share of the area flagged (1 = no better than chance)"),
    "pei": gettext_noop("PEI: PAI ÷ the best PAI possible with the same area (1 = perfect)"),
}


def validate_run(
    *, run: HotspotRun, eval_from: dt.date, eval_to: dt.date, user=None
) -> HotspotValidation:
    """Scores the run's zones and top cells against the incidents of a later period (same
    area, categories and family), beside the naive baselines; one record per (run,
    period), updated when asked again.

    Everything is scored on one grid: the run's own grid (Gi*, emerging, KDE), or for a
    DBSCAN run the grid a default Gi* run would use (hexagons sized like Optimized Hot Spot
    Analysis on the run's incidents). The area A is the grid's cells covering the area."""
    if run.status != HotspotRun.Status.SUCCEEDED:
        raise HotspotRefused("only a succeeded run can be validated")
    if eval_to < eval_from:
        raise HotspotRefused("the evaluation period ends before it starts")
    if eval_from <= run.date_to:
        raise HotspotRefused(
            f"the evaluation period must start after the run's period ends ({run.date_to}): "
            "a forecast is scored on incidents it has not seen"
        )
    params = normalize_params(run.params, run.method)
    # Scored in the run's own CRS, even if an admin has changed the region's since.
    srid = int(run.metric_srid) if run.metric_srid else check_metric_crs(run.region)
    area_ewkb = bytes(run.area_geom.ewkb)
    train_sql, train_params = queries.incidents_sql(incident_queryset(run), srid)
    eval_sql, eval_params = queries.incidents_sql(
        incident_queryset(run, date_from=eval_from, date_to=eval_to), srid
    )
    last_from = max(run.date_from, _same_day_months_before(run.date_to, 1))
    last_sql, last_params = queries.incidents_sql(
        incident_queryset(run, date_from=last_from, date_to=run.date_to), srid
    )
    with connection.cursor() as cursor:
        if run.method == Method.DBSCAN:
            x, y = queries.metric_points(cursor, train_sql, train_params)
            size, reason = grids.choose_cell_size(x, y, "hex")
            grid = grids.Grid("hex", size, srid)
            grid_source = f"automatic, as a default Gi* run: {reason}"
        elif run.method == Method.KDE:
            grid = grids.Grid("square", float(params["cell_size_m"]), srid, stored_origin(run))
            grid_source = "the run's kernel density grid"
        else:
            grid = grids.Grid(
                params["grid"], float(params["cell_size_m"]), srid, stored_origin(run)
            )
            grid_source = "the run's grid"
        area_i, area_j, _coverage = queries.area_cells(cursor, grid, area_ewkb, coverage=False)
        counted = {}
        for name, sql, sql_params in (
            ("train", train_sql, train_params),
            ("eval", eval_sql, eval_params),
            ("last", last_sql, last_params),
        ):
            ci, cj, _ids, n = queries.count_incidents(cursor, grid, sql, sql_params)
            counted[name] = (grids.cell_keys(ci, cj), n)
        keys = np.union1d(
            grids.cell_keys(area_i, area_j), np.concatenate([k for k, _n in counted.values()])
        )
        per_cell = {}
        for name, (row_keys, n) in counted.items():
            values = np.zeros(len(keys), dtype=np.int64)
            np.add.at(values, np.searchsorted(keys, row_keys), n)
            per_cell[name] = values
        observed, train = per_cell["eval"], per_cell["train"]
        if observed.sum() == 0:
            raise HotspotRefused(
                f"no incidents of the run's selection between {eval_from} and {eval_to}: "
                "nothing to score"
            )
        areas = np.full(len(keys), grid.cell_area_m2)
        rows = []

        def add(method: str, found: Iterable[scores.ForecastScore]) -> None:
            for score in found:
                row = score.as_dict()
                row.pop("label")
                rows.append({"method": method, **row})

        if run.method == Method.DBSCAN:
            hits, zone_area = queries.zone_hits(cursor, run, srid, eval_sql, eval_params)
            if zone_area > 0:
                add("zones", [scores.score_zone_counts(hits, zone_area, observed, areas)])
        elif run.zones.exists():
            in_zone = np.array(
                HotspotCell.objects.filter(run=run, zone__isnull=False).values_list("i", "j"),
                dtype=np.int64,
            ).reshape(-1, 2)
            zone_keys = grids.cell_keys(in_zone[:, 0], in_zone[:, 1])
            add("zones", [scores.score_flagged(np.isin(keys, zone_keys), observed, areas)])
        if run.method != Method.DBSCAN:
            column = {Method.KDE: "density", Method.FORECAST: "score"}.get(run.method, "gi_z")
            stored = list(HotspotCell.objects.filter(run=run).values_list("i", "j", column))
            score = np.full(len(keys), 0.0 if column == "density" else np.nan)
            if stored:
                ci, cj, value = (np.array(v) for v in zip(*stored, strict=True))
                at = np.searchsorted(
                    keys, grids.cell_keys(ci.astype(np.int64), cj.astype(np.int64))
                )
                score[at] = value.astype(float)
            add(
                "top_cells",
                scores.evaluate_scores(
                    score, observed, areas, coverages=VALIDATION_COVERAGES, tiebreak=train
                ),
            )
        add(
            "naive_period",
            scores.naive_baseline(train, observed, areas, coverages=VALIDATION_COVERAGES),
        )
        add(
            "naive_last_month",
            scores.naive_baseline(
                per_cell["last"], observed, areas, coverages=VALIDATION_COVERAGES, tiebreak=train
            ),
        )
    present = [m for m in VALIDATION_METHODS if any(r["method"] == m for r in rows)]
    report = {
        "version": 1,
        "run": {
            "method": str(run.method),
            "date_from": run.date_from.isoformat(),
            "date_to": run.date_to.isoformat(),
            "incidents": int(train.sum()),
        },
        "evaluation": {
            "date_from": eval_from.isoformat(),
            "date_to": eval_to.isoformat(),
            "incidents": int(observed.sum()),
        },
        "naive_last_month": {
            "date_from": last_from.isoformat(),
            "date_to": run.date_to.isoformat(),
        },
        "grid": {
            "kind": grid.kind,
            "cell_size_m": grid.size,
            "cell_area_m2": round(grid.cell_area_m2, 3),
            "cells": int(len(keys)),
            "area_km2": round(float(areas.sum()) / 1e6, 6),
            "source": grid_source,
        },
        "coverages": list(VALIDATION_COVERAGES),
        "metrics": dict(VALIDATION_METRICS),
        "methods": [
            {"key": m, "label": VALIDATION_METHODS[m][0], "description": VALIDATION_METHODS[m][1]}
            for m in present
        ],
        "columns": [
            "method",
            "coverage",
            "area_share",
            "n_cells",
            "hits",
            "total",
            "hit_rate",
            "pai",
            "pei",
        ],
        "rows": rows,
    }
    validation, _created = HotspotValidation.objects.update_or_create(
        run=run,
        eval_from=eval_from,
        eval_to=eval_to,
        defaults={
            "report": report,
            "created_by": user if getattr(user, "is_authenticated", False) else None,
        },
    )
    return validation


def _same_day_months_before(day: dt.date, months: int) -> dt.date:
    """The day after the same date ``months`` earlier: the start of the last ``months``."""
    start = add_months(day.replace(day=1), -months)
    last_day = (add_months(start, 1) - dt.timedelta(days=1)).day
    return start.replace(day=min(day.day, last_day)) + dt.timedelta(days=1)
