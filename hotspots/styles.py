"""How hotspot results look and read: the colours shared by the HTML report and the
planner map (static/js/maps/planner_map.js), and the translated labels of bins, emerging
categories, summaries, parameters, timings and scores."""

from __future__ import annotations

from django.utils.translation import get_language
from django.utils.translation import gettext as _

from hotspots.engine.emerging import LEGEND

LANGUAGES = ("es", "en")

# Gi* confidence bins: colours shared with the planner map (static/js/maps/planner_map.js).
BIN_COLOURS = {
    3: "#b2182b",
    2: "#ef8a62",
    1: "#fddbc7",
    0: "#f7f7f7",
    -1: "#d1e5f0",
    -2: "#67a9cf",
    -3: "#2166ac",
}
# Emerging categories: hot reds, cold blues, darker = stronger pattern.
EMERGING_COLOURS = {
    1: "#fee5d9",
    2: "#fcbba1",
    3: "#fb6a4a",
    4: "#de2d26",
    5: "#fc9272",
    6: "#fdd0a2",
    7: "#e6550d",
    8: "#a63603",
    0: "#f0f0f0",
    -1: "#deebf7",
    -2: "#c6dbef",
    -3: "#6baed6",
    -4: "#2171b5",
    -5: "#9ecae1",
    -6: "#d0d1e6",
    -7: "#3182bd",
    -8: "#08519c",
}
DENSITY_RAMP = ["#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c"]
# A forecast's flagged cells by score: a short green ramp, apart from the density reds and
# the zones' purple outline.
SCORE_RAMP = ["#c7e9c0", "#74c476", "#31a354", "#006d2c"]
ZONE_COLOUR = "#5a1846"


def bin_labels() -> dict[int, str]:
    # "99 % c…" is not a format: tell xgettext, or msgfmt --check-format rejects "99 % de".
    return {
        # xgettext:no-python-format
        3: _("Hot spot, 99 % confidence"),
        # xgettext:no-python-format
        2: _("Hot spot, 95 % confidence"),
        # xgettext:no-python-format
        1: _("Hot spot, 90 % confidence"),
        0: _("Not significant"),
        # xgettext:no-python-format
        -1: _("Cold spot, 90 % confidence"),
        # xgettext:no-python-format
        -2: _("Cold spot, 95 % confidence"),
        # xgettext:no-python-format
        -3: _("Cold spot, 99 % confidence"),
    }


def language() -> str:
    """The active language as a LEGEND key (es or en)."""
    code = (get_language() or "es").split("-")[0]
    return code if code in LANGUAGES else "es"


def emerging_legend(lang: str | None = None) -> list[dict]:
    """LEGEND as a list for clients: code, key and the label in ``lang``; hot codes first
    (8…1), then no pattern, then cold (−1…−8), as a legend reads."""
    lang = lang or language()
    order = sorted(LEGEND, key=lambda code: (0 if code > 0 else 1 if code == 0 else 2, abs(code)))
    return [
        {"code": code, "key": LEGEND[code]["key"], "label": LEGEND[code][lang]} for code in order
    ]


def summary_labels() -> dict[str, str]:
    return {
        "method": _("Method"),
        "incidents": _("Incidents"),
        "input_incidents": _("Incidents selected"),
        "cells": _("Cells"),
        "cells_with_incidents": _("Cells with incidents"),
        "cells_outside_area": _("Cells outside the area (incidents on its edge)"),
        "cell_size_m": _("Cell size (m)"),
        "cell_area_m2": _("Cell area (m²)"),
        "area_km2": _("Area (km²)"),
        "grid_origin_m": _("Grid origin (x, y in the metric CRS)"),
        "bins": _("Cells per confidence bin"),
        "hot_cells": _("Hot cells"),
        "cold_cells": _("Cold cells"),
        "hot_cells_without_fdr": _("Hot cells without FDR"),
        "cold_cells_without_fdr": _("Cold cells without FDR"),
        "edge_coverage": _("Share of a cell inside the area below which it is never cold"),
        "edge_cells": _("Cells mostly outside the area"),
        "cold_suppressed_at_edge": _("Cold cells not reported (mostly outside the area)"),
        "zones": _("Zones"),
        "zone_rule": _("How large zones are split"),
        "zones_merged": _("Zones before the split (contiguous cells)"),
        "zones_split": _("Zones larger than the maximum area, split"),
        "p_value": _("p-value"),
        "steps": _("Time steps"),
        "step": _("Step length"),
        "incidents_per_step": _("Incidents per time step"),
        "time_weighting": _("Time weighting"),
        "weight_outside_steps": _("Weight of time windows outside the steps"),
        "categories": _("Cells per category"),
        "hot_pattern_cells": _("Cells with a hot spot pattern"),
        "cold_pattern_cells": _("Cells with a cold spot pattern"),
        "engine": _("Method settings"),
        "bandwidth_m": _("Bandwidth (m)"),
        "cells_zero_density_not_stored": _("Cells of zero density (not stored)"),
        "density_max_per_km2": _("Highest density (incidents per km²)"),
        "density_mean_per_km2": _("Mean density (incidents per km²)"),
        "eps_m": _("DBSCAN distance (m)"),
        "min_points": _("DBSCAN minimum points"),
        "clustered_incidents": _("Incidents in a cluster"),
        "noise_incidents": _("Incidents outside every cluster"),
        "zones_area_km2": _("Area of the zones (km²)"),
        "warnings": _("Warnings"),
        "chosen": _("Forecast chosen by the back-test"),
        "chosen_label": _("Chosen ranking"),
        "coverage": _("Share of the area flagged"),
        "flagged_cells": _("Cells flagged"),
        "flagged_share": _("Share of the area in the flagged cells"),
        "flagged_incidents": _("Incidents in the flagged cells"),
        "stability": _("Stability across cell sizes"),
        "clusters": _("Clusters"),
        "noise": _("Points outside every cluster"),
    }


def param_labels() -> dict[str, str]:
    return {
        "grid": _("Grid"),
        "cell_size_m": _("Cell size (m)"),
        "cell_size_reason": _("Why this cell size"),
        "neighbour_rule": _("Neighbour rule"),
        "stability": _("Stability across cell sizes"),
        "distance_band_m": _("Distance band (m)"),
        "grid_origin": _("Grid anchored at (crs: the CRS origin; area: the area's corner)"),
        "analysis_area": _("Cells over (boundary, or points-hull: the incidents' hull)"),
        "alpha": _("Significance level (α)"),
        "fdr": _("False discovery rate correction"),
        "permutations": _("Permutations"),
        "seed": _("Random seed"),
        "eps_m": _("DBSCAN distance (m)"),
        "min_points": _("DBSCAN minimum points"),
        "bandwidth_m": _("Bandwidth (m)"),
        "bandwidth_reason": _("Why this bandwidth"),
        "step": _("Time step"),
        "steps": _("Time steps"),
        "coverage": _("Share of the area to flag"),
        "holdout": _("Share of the period held out for the back-test"),
        "half_lives_days": _("Half-lives of the decayed counts (days)"),
        "max_zone_km2": _("Largest zone (km²)"),
    }


def timing_labels() -> dict[str, str]:
    return {
        "area": _("Analysis area"),
        "cell_size": _("Cell size"),
        "grid": _("Grid"),
        "count": _("Counting incidents"),
        "gistar": _("Gi* and FDR"),
        "zones": _("Zones"),
        "kde": _("Kernel density"),
        "dbscan": _("Density clustering"),
        "emerging": _("Emerging hot spots"),
        "backtest": _("Back-test"),
        "stability": _("Stability"),
        "write": _("Writing the results"),
        "total": _("Total"),
    }


def score_labels() -> dict[str, str]:
    return {
        "label": _("Forecast"),
        "coverage": _("Coverage"),
        "n_cells": _("Cells"),
        "area": _("Area"),
        "area_share": _("Share of the area"),
        "hits": _("Incidents in it"),
        "total": _("Incidents in the period"),
        "hit_rate": _("Hit rate"),
        "pai": "PAI",
        "pai_star": "PAI*",
        "pei": "PEI",
    }


def candidate_label(summary: dict) -> str:
    """The candidate ranking a forecast run's summary says was chosen, in the active
    language (the same words as the back-test table); "" for a run that chose none."""
    key = summary.get("chosen")
    if not key:
        return ""
    rows = (summary.get("backtest") or {}).get("rows") or []
    row = next((r for r in rows if isinstance(r, dict) and r.get("key") == key), {})
    kind = row.get("kind") or str(key).split("_")[0]
    if kind == "decay":
        days = row.get("half_life_days")
        if days is None:
            return str(summary.get("chosen_label") or key)
        return _("Time-decayed count, half-life %(days)s days") % {"days": f"{float(days):g}"}
    labels = {
        "count": _("Period count"),
        "gistar": _("Getis-Ord Gi* z"),
        "kde": _("Kernel density"),
    }
    return labels.get(kind) or str(summary.get("chosen_label") or key)
