"""The parameters of a hotspot run: each method's defaults, their checks, the metric CRS a
run needs and the time steps of an emerging run. ``normalize_params`` fills in and checks
a request; ``requested_params`` undoes what a run filled in while it ran."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping

from geo.crs import MetricCRSError, check_metric_srid
from hotspots.engine import HotspotRefused
from hotspots.engine import grid as grids
from hotspots.engine.forecast import DEFAULT_HALF_LIVES
from hotspots.engine.gistar import ALPHAS, MAX_PERMUTATIONS
from hotspots.engine.zones import DEFAULT_MAX_ZONE_KM2
from hotspots.models import HotspotRun
from neighborhoods.models import Region

Method = HotspotRun.Method
SUPPORTED_METHODS = (Method.GISTAR, Method.DBSCAN, Method.KDE, Method.EMERGING, Method.FORECAST)
DEFAULT_SEED = 0

_GRID_DEFAULTS = {
    "grid": "hex",
    "cell_size_m": None,  # None: chosen like Optimized Hot Spot Analysis
    "neighbour_rule": grids.CONTIGUITY,
    "distance_band_m": None,
    # Cells anchored at the metric CRS origin, or at the analysis area's lower-left corner.
    "grid_origin": grids.ORIGIN_CRS,
    # The area whose cells are analysed: the boundaries, or the incidents' buffered hull.
    "analysis_area": "boundary",
}
METHOD_DEFAULTS: dict[str, dict] = {
    Method.GISTAR: {
        **_GRID_DEFAULTS,
        "alpha": 0.05,
        "fdr": True,
        "permutations": 0,
        "seed": DEFAULT_SEED,
        # Rerun Gi* at neighbouring cell sizes (services.stability). Measured: +0.5 s on
        # the demo (a 0.9 s run), +2.6 s on CDMX 2022 (168,000 incidents, 150 m cells, a
        # 3.8 s run): worth it by default for a number that says whether to trust a zone.
        "stability": True,
        "max_zone_km2": DEFAULT_MAX_ZONE_KM2,  # larger merged zones are split (engine.zones)
    },
    Method.EMERGING: {
        **_GRID_DEFAULTS,
        "step": "month",
        "time_lag": 1,  # previous steps in the space-time neighbourhood (ESRI, sfdep)
        "alpha": 0.05,
        "fdr": True,  # Benjamini–Hochberg within each step
        "global_window": "cube",
    },
    Method.KDE: {
        "cell_size_m": None,  # None: the shorter side of the area's extent / 250
        "bandwidth_m": None,  # None: ArcGIS' default search radius (recorded)
        "grid_origin": grids.ORIGIN_CRS,
        "analysis_area": "boundary",
    },
    Method.FORECAST: {
        **_GRID_DEFAULTS,
        # Share of the area the planner can patrol: candidates are compared by PAI there
        # and the forecast flags that much.
        "coverage": 0.05,
        "holdout": 0.25,  # share of the period's days held out for the back-test
        "half_lives_days": list(DEFAULT_HALF_LIVES),  # of the time-decayed candidates
        "max_zone_km2": DEFAULT_MAX_ZONE_KM2,
    },
    Method.DBSCAN: {
        "eps_m": 100.0,
        "min_points": None,  # None: more than complete spatial randomness gives (recorded)
        "concave_ratio": 0.5,  # ST_ConcaveHull's param_pctconvex: 1 = convex hull
    },
}
DEFAULT_PARAMS = METHOD_DEFAULTS[Method.GISTAR]
PARAM_NAMES = tuple(DEFAULT_PARAMS)
# Filled in when the run executes, each explaining an automatic value; kept in a request
# only beside the value it explains (so that a run's stored params repeat it exactly).
_DERIVED = {
    "cell_size_reason": "cell_size_m",
    "cell_size_rule": "cell_size_m",  # an emerging run's rule, codes and numbers
    "bandwidth_rule": "bandwidth_m",
    "min_points_reason": "min_points",
}
# Analysis areas: the chosen districts/neighbourhoods (else the region) cut by the drawn
# polygon; or sfhotspot's default, the convex hull of the run's incidents buffered by half
# a cell (queries.points_hull).
AREA_BOUNDARY = "boundary"
AREA_POINTS_HULL = "points-hull"
ANALYSIS_AREAS = (AREA_BOUNDARY, AREA_POINTS_HULL)
STEP_KINDS = ("month", "week")
# ESRI's Emerging Hot Spot Analysis asks for at least ten time steps; with fewer the
# trend test has almost no power and "historical" cannot occur.
MIN_STEPS = 10
GLOBAL_WINDOWS = ("cube", "window", "step")
MAX_TIME_LAG = 12
DBSCAN_MAX_EPS_M = 2_000.0
FORECAST_COVERAGE_RANGE = (0.001, 0.5)
FORECAST_HOLDOUT_RANGE = (0.05, 0.5)
FORECAST_MAX_HALF_LIVES = 6
FORECAST_MAX_HALF_LIFE_DAYS = 3650
# A patrol zone between a hectare and a small town's centre.
MAX_ZONE_KM2_RANGE = (0.01, 100.0)


def normalize_params(params: Mapping | None, method: str = Method.GISTAR) -> dict:
    """Every parameter of ``method``, defaults filled in and checked; raises HotspotRefused."""
    if method not in METHOD_DEFAULTS:
        raise HotspotRefused(
            f"unknown method {method!r}; available: {', '.join(SUPPORTED_METHODS)}"
        )
    defaults = METHOD_DEFAULTS[method]
    params = dict(params or {})
    params.pop("steps", None)  # recomputed from the period
    allowed = set(defaults) | {k for k, v in _DERIVED.items() if v in defaults}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise HotspotRefused(f"unknown parameter(s) for {method}: {', '.join(unknown)}")
    out = {**defaults, **{k: v for k, v in params.items() if v is not None}}
    if "grid" in defaults:
        _check_grid_params(out)
    if "grid_origin" in defaults:
        _check_area_params(out)
    if "cell_size_m" in defaults and out["cell_size_m"] is not None:
        size = _number(out["cell_size_m"], "cell_size_m")
        if size < grids.MIN_CELL_SIZE_M:
            raise HotspotRefused(f"the cell size must be at least {grids.MIN_CELL_SIZE_M:g} m")
        out["cell_size_m"] = size
    if "alpha" in defaults:
        out["alpha"] = _number(out["alpha"], "alpha")
        if not any(math.isclose(out["alpha"], a) for a in ALPHAS):
            raise HotspotRefused(f"alpha must be one of {', '.join(f'{a:g}' for a in ALPHAS)}")
    if "fdr" in defaults:
        out["fdr"] = _boolean(out["fdr"], "fdr")
    if "max_zone_km2" in defaults:
        out["max_zone_km2"] = _number(out["max_zone_km2"], "max_zone_km2")
        low, high = MAX_ZONE_KM2_RANGE
        if not low <= out["max_zone_km2"] <= high:
            raise HotspotRefused(f"max_zone_km2 must be between {low:g} and {high:g} km²")
    if method == Method.GISTAR:
        out["permutations"] = _whole(out["permutations"], "permutations")
        if not 0 <= out["permutations"] <= MAX_PERMUTATIONS:
            raise HotspotRefused(f"permutations must be between 0 and {MAX_PERMUTATIONS:,}")
        seed = out["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise HotspotRefused("seed must be a whole number ≥ 0")
        out["stability"] = _boolean(out["stability"], "stability")
    elif method == Method.EMERGING:
        if out["step"] not in STEP_KINDS:
            raise HotspotRefused(f"step must be one of {', '.join(STEP_KINDS)}")
        out["time_lag"] = _whole(out["time_lag"], "time_lag")
        if not 0 <= out["time_lag"] <= MAX_TIME_LAG:
            raise HotspotRefused(f"time_lag must be between 0 and {MAX_TIME_LAG}")
        if out["global_window"] not in GLOBAL_WINDOWS:
            raise HotspotRefused(f"global_window must be one of {', '.join(GLOBAL_WINDOWS)}")
    elif method == Method.KDE:
        if out["bandwidth_m"] is not None:
            out["bandwidth_m"] = _number(out["bandwidth_m"], "bandwidth_m")
            if out["bandwidth_m"] <= 0:
                raise HotspotRefused("bandwidth_m must be positive")
    elif method == Method.FORECAST:
        _check_forecast_params(out)
    elif method == Method.DBSCAN:
        out["eps_m"] = _number(out["eps_m"], "eps_m")
        if not 1 <= out["eps_m"] <= DBSCAN_MAX_EPS_M:
            raise HotspotRefused(f"eps_m must be between 1 and {DBSCAN_MAX_EPS_M:g} metres")
        if out["min_points"] is not None:
            out["min_points"] = _whole(out["min_points"], "min_points")
            if out["min_points"] < 2:
                raise HotspotRefused("min_points must be at least 2")
        out["concave_ratio"] = _number(out["concave_ratio"], "concave_ratio")
        if not 0 <= out["concave_ratio"] <= 1:
            raise HotspotRefused("concave_ratio must be between 0 and 1")
    for derived, source in _DERIVED.items():
        if derived in out and out.get(source) is None:
            out.pop(derived)
    return out


def _check_forecast_params(out: dict) -> None:
    for name, (low, high) in (
        ("coverage", FORECAST_COVERAGE_RANGE),
        ("holdout", FORECAST_HOLDOUT_RANGE),
    ):
        out[name] = _number(out[name], name)
        if not low <= out[name] <= high:
            raise HotspotRefused(
                f"{name} must be a share of the area between {low:g} and {high:g} "
                f"(e.g. 0.05 for 5 %)"
                if name == "coverage"
                else f"{name} must be a share of the period between {low:g} and {high:g}"
            )
    lives = out["half_lives_days"]
    if isinstance(lives, int | float) and not isinstance(lives, bool):
        lives = [lives]
    if not isinstance(lives, list | tuple) or not 1 <= len(lives) <= FORECAST_MAX_HALF_LIVES:
        raise HotspotRefused(
            f"half_lives_days must be a list of 1 to {FORECAST_MAX_HALF_LIVES} numbers of days"
        )
    checked = []
    for value in lives:
        days = _number(value, "half_lives_days")
        if not 1 <= days <= FORECAST_MAX_HALF_LIFE_DAYS:
            raise HotspotRefused(
                f"each of half_lives_days must be between 1 and {FORECAST_MAX_HALF_LIFE_DAYS}"
            )
        checked.append(int(days) if days == int(days) else days)
    out["half_lives_days"] = sorted(set(checked))


def _check_area_params(out: dict) -> None:
    if out["grid_origin"] not in grids.ORIGINS:
        raise HotspotRefused(f"grid_origin must be one of {', '.join(grids.ORIGINS)}")
    if out["analysis_area"] not in ANALYSIS_AREAS:
        raise HotspotRefused(f"analysis_area must be one of {', '.join(ANALYSIS_AREAS)}")


def _check_grid_params(out: dict) -> None:
    if out["grid"] not in grids.KINDS:
        raise HotspotRefused(f"grid must be one of {', '.join(grids.KINDS)}")
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


def requested_params(params: Mapping, method: str) -> dict:
    """What was asked for a run whose stored ``params`` were completed while it ran: the
    automatic values (those with a recorded reason) back to None."""
    asked = dict(params)
    for derived, source in _DERIVED.items():
        if derived in asked:
            asked.pop(derived)
            asked[source] = None
    return normalize_params(asked, method)


def _number(value, name: str) -> float:
    if isinstance(value, bool):
        raise HotspotRefused(f"{name} must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise HotspotRefused(f"{name} must be a number") from None
    if not math.isfinite(number):
        raise HotspotRefused(f"{name} must be a finite number")
    return number


def _whole(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise HotspotRefused(f"{name} must be a whole number")
    return value


def _boolean(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise HotspotRefused(f"{name} must be true or false")
    return value


def check_metric_crs(region: Region) -> int:
    srid = region.metric_srid
    problem = "it has none"
    if srid:
        try:
            return check_metric_srid(int(srid))
        except MetricCRSError as exc:
            problem = str(exc)
    raise HotspotRefused(
        f"region {region.code} has no metric CRS (a projected CRS in metres): distances "
        f"and cells cannot be measured in metres, so the run is refused ({problem})"
    )


def add_months(day: dt.date, months: int) -> dt.date:
    """The first day of the month ``months`` after (or before) ``day``'s month."""
    total = day.year * 12 + day.month - 1 + months
    return dt.date(total // 12, total % 12 + 1, 1)


def time_steps(date_from: dt.date, date_to: dt.date, step: str) -> list[dt.date]:
    """The first days of the whole steps inside the period, then the day after the last.

    Steps are calendar months, or ISO weeks (Monday to Sunday); a partial month or week
    at either end of the period is left out, since a shorter step would look like a drop
    in incidents. Raises HotspotRefused with fewer than MIN_STEPS steps."""
    if step == "month":
        first = date_from if date_from.day == 1 else add_months(date_from, 1)
        boundaries = [first]
        while add_months(boundaries[-1], 1) - dt.timedelta(days=1) <= date_to:
            boundaries.append(add_months(boundaries[-1], 1))
    elif step == "week":
        first = date_from + dt.timedelta(days=(7 - date_from.weekday()) % 7)
        boundaries = [first]
        while boundaries[-1] + dt.timedelta(days=6) <= date_to:
            boundaries.append(boundaries[-1] + dt.timedelta(days=7))
    else:
        raise HotspotRefused(f"step must be one of {', '.join(STEP_KINDS)}")
    steps = len(boundaries) - 1
    if steps < MIN_STEPS:
        unit = "monthly" if step == "month" else "weekly"
        raise HotspotRefused(
            f"the period {date_from}–{date_to} holds only {steps} whole {unit} step(s); "
            f"emerging hot spot analysis needs at least {MIN_STEPS}: lengthen the period"
            + (" or use weekly steps" if step == "month" else "")
        )
    return boundaries
