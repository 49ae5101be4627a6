"""Creating, executing, validating and checking hotspot runs.

``create_run`` validates the request and stores a QUEUED run with every parameter filled in
(defaults included), so that the run can be repeated exactly. ``execute_run`` resolves the
analysis area and computes the run's method:

* ``gistar``: incidents counted per grid cell in the database, Getis-Ord Gi* with FDR
  bins, contiguous hot cells merged into zones and, by default, the stability of the hot
  area at neighbouring cell sizes;
* ``dbscan``: PostGIS ``ST_ClusterDBSCAN`` (eps and minpoints in metres, in the metric
  CRS) with one concave hull per cluster as a zone;
* ``kde``: a quartic kernel density surface stored as square cells;
* ``emerging``: Gi* per monthly or weekly step on a space-time cube, a Mann-Kendall trend
  per cell and the emerging hot spot categories.

Cells, zones and the final status are written in ONE transaction: a failed or refused run
is marked FAILED with its message and leaves nothing half-written. Progress is written
between steps, outside that transaction, so that other connections (the run page, the
API) see it. ``validate_run`` scores a run against a later period (hit rate, PAI, PEI
beside a naive baseline); ``compute_stability`` reruns a Gi* run at other cell sizes.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon, Polygon
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_noop
from scipy import stats

from config.jobs import HOTSPOT_RUN_JOBS, fail_abandoned, job_lock
from geo.conf import STORAGE_SRID, is_utm_srid
from hotspots import queries
from hotspots.engine import MIN_CELLS, MIN_INCIDENTS, HotspotRefused
from hotspots.engine import emerging as emerging_engine
from hotspots.engine import grid as grids
from hotspots.engine import stability as stability_engine
from hotspots.engine import validation as scores
from hotspots.engine.gistar import (
    ALPHAS,
    MAX_PERMUTATIONS,
    GiStarResult,
    bin_for_alpha,
    confidence_bins,
    run_gistar,
)
from hotspots.engine.kde import default_bandwidth, kde_grid
from hotspots.engine.zones import TOP_CATEGORIES, Zone, build_zones, zone_labels
from hotspots.models import HotspotCell, HotspotRun, HotspotValidation, HotspotZone
from incidents.models import Category, Family
from incidents.selectors import IncidentFilters, incident_list
from neighborhoods.models import District, Neighborhood, Region

Method = HotspotRun.Method
SUPPORTED_METHODS = (Method.GISTAR, Method.DBSCAN, Method.KDE, Method.EMERGING)
DEFAULT_SEED = 0

_GRID_DEFAULTS = {
    "grid": "hex",
    "cell_size_m": None,  # None: chosen like Optimized Hot Spot Analysis
    "neighbour_rule": grids.CONTIGUITY,
    "distance_band_m": None,
}
METHOD_DEFAULTS: dict[str, dict] = {
    Method.GISTAR: {
        **_GRID_DEFAULTS,
        "alpha": 0.05,
        "fdr": True,
        "permutations": 0,
        "seed": DEFAULT_SEED,
        # Rerun Gi* at neighbouring cell sizes (STABILITY_FACTORS). Measured: +0.5 s on
        # the demo (a 0.9 s run), +2.6 s on CDMX 2022 (168,000 incidents, 150 m cells, a
        # 3.8 s run): worth it by default for a number that says whether to trust a zone.
        "stability": True,
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
    "bandwidth_rule": "bandwidth_m",
    "min_points_reason": "min_points",
}
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
    "zones",
    "stability",
    "write",
    "total",
)
STEP_KINDS = ("month", "week")
# ESRI's Emerging Hot Spot Analysis asks for at least ten time steps; with fewer the
# trend test has almost no power and "historical" cannot occur.
MIN_STEPS = 10
GLOBAL_WINDOWS = ("cube", "window", "step")
MAX_TIME_LAG = 12
# DBSCAN: over a whole region neighbouring hotspots chain into one cluster and the
# clustering takes minutes (planning: 1M incidents of a metro area at eps 150 m, 80 s,
# one cluster). A whole-region run above this many incidents is refused with a pointer
# to a district; below it the run goes ahead with a warning.
DBSCAN_REGION_MAX_INCIDENTS = 20_000
DBSCAN_MAX_INCIDENTS = 150_000
DBSCAN_MAX_EPS_M = 2_000.0
# min_points by default: a core point needs more neighbours within eps than complete
# spatial randomness over the area gives with this probability.
DBSCAN_CSR_PROBABILITY = 0.001
DBSCAN_MIN_POINTS_FLOOR = 5
KDE_CELLS_ON_SHORT_SIDE = 250
STABILITY_FACTORS = (0.5, 0.75, 1.5, 2.0)
# Gi* and emerging runs: a cell with less than this share of its area inside the analysis
# area (cut by the outline, or holding incidents from outside it) is never reported cold.
# Few incidents there may only mean that most of the cell lies outside the area. It still
# counts and is still a neighbour; a hot bin stays (hot despite the missing part).
EDGE_COVERAGE = 0.5

Progress = Callable[[float, str], None]


# --- parameters -------------------------------------------------------------------------


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
    if not srid or not is_utm_srid(int(srid)):
        raise HotspotRefused(
            f"region {region.code} has no metric CRS (a UTM zone): distances and cells "
            "cannot be measured in metres, so the run is refused"
        )
    return int(srid)


# --- creating a run -------------------------------------------------------------------


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
    method: str = Method.GISTAR,
    params: Mapping | None = None,
) -> HotspotRun:
    """A QUEUED run with every parameter recorded; raises HotspotRefused when the request
    cannot give a meaningful run (nothing is saved then)."""
    check_metric_crs(region)
    if method not in SUPPORTED_METHODS:
        raise HotspotRefused(
            f"method {method!r} is not available; available: {', '.join(SUPPORTED_METHODS)}"
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
    normalized = normalize_params(params, method)
    if method == Method.EMERGING:
        time_steps(date_from, date_to, normalized["step"])  # refuses too short periods now
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


def find_identical_run(
    *,
    region: Region,
    date_from: dt.date,
    date_to: dt.date,
    method: str = Method.GISTAR,
    params: Mapping | None = None,
    districts: Iterable[District] = (),
    neighborhoods: Iterable[Neighborhood] = (),
    polygon=None,
    family: str = "",
    categories: Iterable[Category] = (),
) -> HotspotRun | None:
    """The newest succeeded run asked exactly this (same area, period, selection, method
    and parameters, automatic ones left automatic) whose incidents are still the same
    ones (same count), or None. A drawn polygon is never matched: two drawings are
    hardly ever the same area. Raises HotspotRefused for parameters ``create_run`` would
    refuse."""
    if polygon is not None or method not in SUPPORTED_METHODS:
        return None
    wanted = normalize_params(params, method)
    district_ids = sorted(d.pk for d in districts)
    neighborhood_ids = sorted(n.pk for n in neighborhoods)
    category_ids = sorted(c.pk for c in categories)
    candidates = HotspotRun.objects.filter(
        region=region,
        date_from=date_from,
        date_to=date_to,
        method=method,
        family=family or "",
        status=HotspotRun.Status.SUCCEEDED,
        polygon__isnull=True,
    ).order_by("-id")
    candidates = candidates.prefetch_related("districts", "neighborhoods", "categories")
    for run in candidates:
        # The cheap checks first: counting the incidents again is the only costly one.
        if (
            requested_params(run.params, method) == wanted
            and sorted(d.pk for d in run.districts.all()) == district_ids
            and sorted(n.pk for n in run.neighborhoods.all()) == neighborhood_ids
            and sorted(c.pk for c in run.categories.all()) == category_ids
            and run.summary.get("input_incidents") == incident_queryset(run).count()
        ):
            return run
    return None


def ensure_run(
    *,
    region: Region,
    date_from: dt.date,
    date_to: dt.date,
    method: str = Method.GISTAR,
    params: Mapping | None = None,
    districts: Iterable[District] = (),
    family: str = "",
    categories: Iterable[Category] = (),
    user=None,
    progress: Progress | None = None,
) -> tuple[HotspotRun, bool]:
    """A succeeded run with exactly these inputs: an existing one when its incidents are
    still the same ones (same count), else a new run executed now. Returns (run, reused).

    Loading the demo or a data pack twice must not pile up identical runs."""
    wanted = normalize_params(params, method)
    districts, categories = list(districts), list(categories)
    identical = find_identical_run(
        region=region,
        date_from=date_from,
        date_to=date_to,
        method=method,
        params=wanted,
        districts=districts,
        family=family,
        categories=categories,
    )
    if identical is not None:
        return identical, True
    run = create_run(
        user=user,
        region=region,
        date_from=date_from,
        date_to=date_to,
        districts=districts,
        family=family,
        categories=categories,
        method=method,
        params=wanted,
    )
    return execute_run(run=run, progress=progress), False


@dataclass(frozen=True)
class RunSpec:
    """A run a data loader computes (the demo, an open-data pack), optionally validated
    against a later period."""

    date_from: dt.date
    date_to: dt.date
    method: str = Method.GISTAR
    params: Mapping = field(default_factory=dict)
    validate: tuple[dt.date, dt.date] | None = None


def ensure_spec_run(
    *, region: Region, spec: RunSpec
) -> tuple[HotspotRun, bool, HotspotValidation | None]:
    """:func:`ensure_run` for ``spec``, then its validation (kept when the run was reused
    and already validated on that period). Returns (run, reused, validation or None)."""
    run, reused = ensure_run(
        region=region,
        date_from=spec.date_from,
        date_to=spec.date_to,
        method=spec.method,
        params=spec.params,
    )
    validation = None
    if spec.validate is not None:
        eval_from, eval_to = spec.validate
        validation = HotspotValidation.objects.filter(
            run=run, eval_from=eval_from, eval_to=eval_to
        ).first()
        if validation is None or not reused:
            validation = validate_run(run=run, eval_from=eval_from, eval_to=eval_to)
    return run, reused, validation


def spec_run_lines(
    run: HotspotRun, reused: bool, validation: HotspotValidation | None
) -> list[str]:
    """Report lines for a loader's output."""
    lines = [
        f"hotspot run #{run.pk} ({run.method}, {run.date_from} to {run.date_to}): "
        + ("already computed with the same inputs; " if reused else "")
        + f"{run.message} ({run.timings.get('total', 0):.1f} s)"
    ]
    if validation is not None:
        report = validation.report
        for key in ("zones", "naive_period"):
            found = [r for r in report["rows"] if r["method"] == key]
            if not found or found[0]["pai"] is None:
                continue
            row = found[0]
            what = "zones" if key == "zones" else "naive baseline"
            share = row["area_share"]
            if key == "naive_period":  # the coverage nearest to the zones' share
                zones = [r for r in report["rows"] if r["method"] == "zones"]
                target = zones[0]["area_share"] if zones else 0.05
                row = min(found, key=lambda r: abs(r["area_share"] - target))
                share = row["area_share"]
            lines.append(
                f"validated on {validation.eval_from} to {validation.eval_to}: {what} "
                f"({share:.1%} of the area) PAI {row['pai']:.2f}, hit rate {row['hit_rate']:.1%}"
            )
    return lines


# --- executing a run ------------------------------------------------------------------


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
    with job_lock(HOTSPOT_RUN_JOBS, run.pk) as acquired:
        if not acquired:
            raise HotspotRefused(f"run #{run.pk} is already being executed by another job")
        return _execute_locked(run, progress)


def _execute_locked(run: HotspotRun, progress: Progress | None) -> HotspotRun:
    if run.method not in SUPPORTED_METHODS:
        _fail(run, f"method {run.method!r} is not available")
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
        computed = _COMPUTE[run.method](_Context.for_run(run, progress))
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


def _fail_abandoned_run(run_id: int) -> int:
    return HotspotRun.objects.filter(pk=run_id, status=HotspotRun.Status.RUNNING).update(
        status=HotspotRun.Status.FAILED,
        message=(
            "the job running this analysis stopped before it finished (the worker was "
            "stopped or crashed); nothing was written: run it again"
        ),
        finished_at=timezone.now(),
    )


def fail_abandoned_runs() -> int:
    """Marks failed every RUNNING run whose job is gone (see config.jobs); returns how
    many. Cheap: only RUNNING runs are looked at. Called by the run pages and API."""
    running = HotspotRun.objects.filter(status=HotspotRun.Status.RUNNING)
    return fail_abandoned(running, HOTSPOT_RUN_JOBS, _fail_abandoned_run)


def _fail(run: HotspotRun, message: str) -> None:
    HotspotRun.objects.filter(pk=run.pk).update(
        status=HotspotRun.Status.FAILED, message=message, finished_at=timezone.now()
    )
    run.refresh_from_db()


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


@dataclass
class _Context:
    """What every method starts from: the run, its checked parameters, the area and the
    SQL of its incidents (metric points)."""

    run: HotspotRun
    params: dict
    srid: int
    clock: _Clock
    timings: dict
    inner_sql: str
    inner_params: tuple
    area_ewkb: bytes = b""
    area_m2: float = 0.0
    input_incidents: int | None = None

    @classmethod
    def for_run(cls, run: HotspotRun, progress: Progress | None) -> _Context:
        timings: dict = {}
        clock = _Clock(timings, progress, run)
        srid = check_metric_crs(run.region)
        params = normalize_params(run.params, run.method)
        time_zone = run.region.time_zone if run.method == Method.EMERGING else None
        inner_sql, inner_params = queries.incidents_sql(
            incident_queryset(run), srid, time_zone=time_zone
        )
        context = cls(run, params, srid, clock, timings, inner_sql, inner_params)
        with connection.cursor() as cursor:
            context.area_ewkb, context.area_m2 = _resolve_area(cursor, run, srid)
        clock.step("area", 0.05)
        return context

    def count_incidents(self) -> int:
        """How many incidents the run selects (for the methods that do not count them all
        anyway): recorded to tell later whether the data changed."""
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM ({self.inner_sql}) s", self.inner_params)
            self.input_incidents = int(cursor.fetchone()[0])
        return self.input_incidents

    def computed(self, summary: dict, **kwargs) -> Computed:
        summary = {"method": str(self.run.method), **summary}
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


def _check_incidents(count: int) -> None:
    if count < MIN_INCIDENTS:
        raise HotspotRefused(
            f"only {count} incidents match (at least {MIN_INCIDENTS} are needed for a hotspot "
            "analysis): widen the period, the area or the categories"
        )


def _auto_cell_size(cursor, context: _Context, fraction: float) -> grids.Grid:
    """The run's grid; without a cell size, chosen like Optimized Hot Spot Analysis."""
    params = context.params
    if params["cell_size_m"] is None:
        x, y = queries.metric_points(cursor, context.inner_sql, context.inner_params)
        _check_incidents(len(x))
        size, reason = grids.choose_cell_size(x, y, params["grid"])
        params["cell_size_m"] = size
        params["cell_size_reason"] = reason
        context.clock.step("cell_size", fraction)
    return grids.Grid(params["grid"], float(params["cell_size_m"]), context.srid)


@dataclass
class _Cells:
    """A grid's cells covering the area (zero cells included) plus any cell holding an
    incident outside it, sorted by (i, j)."""

    i: np.ndarray
    j: np.ndarray
    outside: int  # cells with incidents that do not intersect the area
    row_cell: np.ndarray  # cell index of each counted row
    coverage: np.ndarray | None = None  # share of each cell inside the area (0 outside)

    def __len__(self) -> int:
        return len(self.i)


def _union_cells(area_i, area_j, ci, cj, area_coverage=None) -> _Cells:
    area_keys = grids.cell_keys(area_i, area_j)
    row_keys = grids.cell_keys(ci, cj)
    keys = np.union1d(area_keys, row_keys)
    i, j = grids.split_keys(keys)
    coverage = None
    if area_coverage is not None:
        coverage = np.zeros(len(keys))
        coverage[np.searchsorted(keys, area_keys)] = area_coverage
    return _Cells(i, j, int(len(keys) - len(area_keys)), np.searchsorted(keys, row_keys), coverage)


def _suppress_edge_cold(bins: np.ndarray, coverage: np.ndarray) -> tuple[np.ndarray, int]:
    """``bins`` (one column per cell row, or per cell and step) with the cold bins of the
    cells under EDGE_COVERAGE set to 0, and how many cells lost a cold bin."""
    edge = coverage < EDGE_COVERAGE
    cold = (bins < 0) & (edge if bins.ndim == 1 else edge[:, None])
    out = np.where(cold, 0, bins).astype(bins.dtype)
    suppressed = cold if bins.ndim == 1 else cold.any(axis=1)
    return out, int(suppressed.sum())


def _edge_summary(cells: _Cells, suppressed: int) -> dict:
    return {
        "edge_coverage": EDGE_COVERAGE,
        "edge_cells": int((cells.coverage < EDGE_COVERAGE).sum()),
        "cold_suppressed_at_edge": suppressed,
    }


def _check_cells(cells: _Cells) -> None:
    if len(cells) < MIN_CELLS:
        raise HotspotRefused(
            f"only {len(cells)} cells cover the area (at least {MIN_CELLS} are needed): "
            "choose smaller cells or a larger area"
        )


def _grid_counts(cursor, grid: grids.Grid, area_ewkb: bytes, inner_sql: str, inner_params):
    """(cells, counts per cell, category ids and counts per counted row)."""
    area_i, area_j, _coverage = queries.area_cells(cursor, grid, area_ewkb, coverage=False)
    ci, cj, category_ids, category_counts = queries.count_incidents(
        cursor, grid, inner_sql, inner_params
    )
    cells = _union_cells(area_i, area_j, ci, cj)
    counts = np.zeros(len(cells), dtype=np.int64)
    np.add.at(counts, cells.row_cell, category_counts)
    return cells, counts, category_ids, category_counts


def _weights(grid: grids.Grid, cells: _Cells, params: dict):
    return grids.weights_matrix(
        grid, cells.i, cells.j, rule=params["neighbour_rule"], band_m=params["distance_band_m"]
    )


def _category_codes(category_ids: np.ndarray) -> dict[int, str]:
    return dict(
        Category.objects.filter(pk__in=set(np.asarray(category_ids).tolist())).values_list(
            "pk", "code"
        )
    )


# --- Gi* --------------------------------------------------------------------------------


def _compute_gistar(context: _Context) -> Computed:
    params, clock = context.params, context.clock
    with connection.cursor() as cursor:
        grid = _auto_cell_size(cursor, context, 0.2)
        area_i, area_j, coverage = queries.area_cells(cursor, grid, context.area_ewkb)
        clock.step("grid", 0.3)
        ci, cj, category_ids, category_counts = queries.count_incidents(
            cursor, grid, context.inner_sql, context.inner_params
        )
        clock.step("count", 0.5)
        total = int(category_counts.sum())
        _check_incidents(total)
        cells = _union_cells(area_i, area_j, ci, cj, coverage)
        counts = np.zeros(len(cells), dtype=np.int64)
        np.add.at(counts, cells.row_cell, category_counts)
        _check_cells(cells)

        result = run_gistar(
            counts,
            _weights(grid, cells, params),
            fdr=params["fdr"],
            permutations=params["permutations"],
            seed=params["seed"],
        )
        result.bins, suppressed = _suppress_edge_cold(result.bins, cells.coverage)
        clock.step("gistar", 0.6)

        hot = result.bins >= bin_for_alpha(params["alpha"])
        labels = zone_labels(grids.adjacency_matrix(grid, cells.i, cells.j), hot)
        zones = build_zones(
            labels,
            counts,
            cell_area_m2=grid.cell_area_m2,
            total_incidents=total,
            category_cells=cells.row_cell,
            category_ids=category_ids,
            category_counts=category_counts,
            category_codes=_category_codes(category_ids),
        )
        zone_of_cell = np.zeros(len(cells), dtype=np.int64)
        for zone in zones:
            zone_of_cell[zone.cells] = zone.rank
        clock.step("zones", 0.7)

        stability = {}
        if params["stability"]:
            stability = _stability(
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
        **_grid_summary(grid, context.area_m2, total, counts, cells.outside),
        **_gistar_summary(params, result, cells.coverage),
        **_edge_summary(cells, suppressed),
        "zones": len(zones),
    }
    return context.computed(
        summary,
        grid=grid,
        i=cells.i,
        j=cells.j,
        values={
            "count": counts,
            "gi_z": result.z,
            "gi_p": result.p,
            "gi_bin": result.bins,
        },
        zones=zones,
        zone_of_cell=zone_of_cell,
        stability=stability,
    )


def _bin_counts(bins: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(bins, return_counts=True)
    found = dict(zip(values.tolist(), counts.tolist(), strict=True))
    return {str(b): int(found.get(b, 0)) for b in range(-3, 4)}


def _grid_summary(grid: grids.Grid, area_m2: float, total: int, counts, outside: int) -> dict:
    return {
        "incidents": total,
        "cells": len(counts),
        "cells_with_incidents": int((counts > 0).sum()),
        "cells_outside_area": outside,
        "cell_size_m": grid.size,
        "cell_area_m2": round(grid.cell_area_m2, 3),
        "area_km2": round(area_m2 / 1e6, 6),
    }


def _gistar_summary(params: dict, result: GiStarResult, coverage: np.ndarray) -> dict:
    level = bin_for_alpha(params["alpha"])
    unadjusted, _ = _suppress_edge_cold(confidence_bins(result.z, result.p, fdr=False), coverage)
    return {
        "bins": _bin_counts(result.bins),
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


# --- stability ----------------------------------------------------------------------------


def _stability(
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
            other = grids.Grid(grid.kind, size, grid.srid)
            # Only hot cells are compared: the shares inside the area are not needed.
            area_i, area_j, _coverage = queries.area_cells(cursor, other, area_ewkb, coverage=False)
            point_i, point_j = other.index(x, y)
            cells = _union_cells(area_i, area_j, point_i, point_j)
            counts = np.bincount(cells.row_cell, minlength=len(cells)).astype(np.int64)
            _check_cells(cells)
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
    grid = grids.Grid(params["grid"], float(params["cell_size_m"]), int(run.metric_srid))
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
        table = _stability(
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


# --- emerging hot spots ---------------------------------------------------------------------


def _add_months(day: dt.date, months: int) -> dt.date:
    total = day.year * 12 + day.month - 1 + months
    return dt.date(total // 12, total % 12 + 1, 1)


def time_steps(date_from: dt.date, date_to: dt.date, step: str) -> list[dt.date]:
    """The first days of the whole steps inside the period, then the day after the last.

    Steps are calendar months, or ISO weeks (Monday to Sunday); a partial month or week
    at either end of the period is left out, since a shorter step would look like a drop
    in incidents. Raises HotspotRefused with fewer than MIN_STEPS steps."""
    if step == "month":
        first = date_from if date_from.day == 1 else _add_months(date_from, 1)
        boundaries = [first]
        while _add_months(boundaries[-1], 1) - dt.timedelta(days=1) <= date_to:
            boundaries.append(_add_months(boundaries[-1], 1))
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


def _compute_emerging(context: _Context) -> Computed:
    params, clock, run = context.params, context.clock, context.run
    boundaries = time_steps(run.date_from, run.date_to, params["step"])
    n_steps = len(boundaries) - 1
    params["steps"] = [d.isoformat() for d in boundaries[:-1]]
    with connection.cursor() as cursor:
        grid = _auto_cell_size(cursor, context, 0.15)
        area_i, area_j, coverage = queries.area_cells(cursor, grid, context.area_ewkb)
        clock.step("grid", 0.25)
        ci, cj, step, n = queries.count_incidents_by_step(
            cursor, grid, context.inner_sql, context.inner_params, boundaries
        )
        clock.step("count", 0.5)
    total = int(n.sum())
    _check_incidents(total)
    context.count_incidents()  # those on days outside the whole steps too
    cells = _union_cells(area_i, area_j, ci, cj, coverage)
    _check_cells(cells)
    cube = np.zeros((len(cells), n_steps), dtype=np.int64)
    np.add.at(cube, (cells.row_cell, step), n)
    weights = _weights(grid, cells, params)
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
    step_bins, suppressed = _suppress_edge_cold(step_bins, cells.coverage)
    clock.step("emerging", 0.8)

    counts = cube.sum(axis=1)
    level = bin_for_alpha(params["alpha"])
    categories = result.counts_by_category()
    summary = {
        **_grid_summary(grid, context.area_m2, total, counts, cells.outside),
        "steps": n_steps,
        "step": params["step"],
        "incidents_per_step": cube.sum(axis=0).tolist(),
        "categories": {
            emerging_engine.LEGEND[code]["key"]: categories.get(code, 0)
            for code in emerging_engine.LEGEND
        },
        "hot_pattern_cells": int((result.category > 0).sum()),
        "cold_pattern_cells": int((result.category < 0).sum()),
        "hot_cells": int((step_bins[:, -1] >= level).sum()),
        "cold_cells": int((step_bins[:, -1] <= -level).sum()),
        "bins": _bin_counts(step_bins[:, -1]),
        **_edge_summary(cells, suppressed),
        "engine": result.params,
        "zones": 0,
    }
    return context.computed(
        summary,
        grid=grid,
        i=cells.i,
        j=cells.j,
        values={
            "count": counts,
            "gi_z": result.z[:, -1],
            "gi_p": result.p[:, -1],
            "gi_bin": step_bins[:, -1],
            "emerging": result.category.astype(np.int64),
            "trend_tau": result.trend.tau,
            "trend_p": result.trend.p,
            "step_counts": cube,
            "step_bins": step_bins,
        },
    )


# --- kernel density -----------------------------------------------------------------------------


def _compute_kde(context: _Context) -> Computed:
    params, clock = context.params, context.clock
    with connection.cursor() as cursor:
        x, y = queries.metric_points(cursor, context.inner_sql, context.inner_params)
        _check_incidents(len(x))
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
        grid = grids.Grid("square", float(params["cell_size_m"]), context.srid)
        cells, counts, _ids, _counts = _grid_counts(
            cursor, grid, context.area_ewkb, context.inner_sql, context.inner_params
        )
        clock.step("count", 0.4)
    i0, j0 = int(cells.i.min()), int(cells.j.min())
    i1, j1 = int(cells.i.max()) + 1, int(cells.j.max()) + 1
    size = grid.size
    surface = kde_grid(
        x,
        y,
        bandwidth=float(params["bandwidth_m"]),
        cell_size=size,
        bounds=(i0 * size, j0 * size, i1 * size, j1 * size),
    )
    density = surface.density[cells.j - j0, cells.i - i0]
    # Cells where the surface is 0 and nothing happened are not stored: an absent cell of
    # a KDE run has density 0 (and they are most of a large area with a small bandwidth).
    keep = (density > 0) | (counts > 0)
    clock.step("kde", 0.8)
    kept_density = density[keep]
    summary = {
        **_grid_summary(grid, context.area_m2, int(len(x)), counts[keep], cells.outside),
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


def _compute_dbscan(context: _Context) -> Computed:
    params, clock, run = context.params, context.clock, context.run
    total = context.count_incidents()
    _check_incidents(total)
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
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("DROP TABLE IF EXISTS hotspot_dbscan")
        # ORDER BY id: border points reachable from two clusters go to the same one on
        # every run.
        cursor.execute(
            f"""
            CREATE TEMPORARY TABLE hotspot_dbscan ON COMMIT DROP AS
            SELECT s.id, s.category_id, s.g,
                   ST_ClusterDBSCAN(s.g, eps => %s, minpoints => %s) OVER (ORDER BY s.id) AS cid
            FROM ({context.inner_sql}) s
            """,
            [eps, min_points, *context.inner_params],
        )
        clock.step("dbscan", 0.6)
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
            [float(params["concave_ratio"]), eps / 2],
        )
        clusters = cursor.fetchall()
        cursor.execute(
            "SELECT cid, category_id, count(*) FROM hotspot_dbscan WHERE cid IS NOT NULL "
            "GROUP BY 1, 2"
        )
        category_rows = cursor.fetchall()
        cursor.execute("DROP TABLE hotspot_dbscan")
    codes = _category_codes(np.array([r[1] for r in category_rows], dtype=np.int64))
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


_COMPUTE = {
    Method.GISTAR: _compute_gistar,
    Method.EMERGING: _compute_emerging,
    Method.KDE: _compute_kde,
    Method.DBSCAN: _compute_dbscan,
}


# --- writing ----------------------------------------------------------------------------------


def _pg_ints(values: np.ndarray) -> str:
    return "{" + ",".join(map(str, np.asarray(values, dtype=np.int64).tolist())) + "}"


def _pg_floats(values: np.ndarray) -> str:
    return "{" + ",".join(map(repr, np.asarray(values, dtype=np.float64).tolist())) + "}"


def _pg_int_rows(values: np.ndarray) -> str:
    """A text[] literal of int[] literals, one per row of a 2-D array."""
    rows = np.asarray(values, dtype=np.int64).tolist()
    return "{" + ",".join('"{' + ",".join(map(str, row)) + '}"' for row in rows) + "}"


# HotspotCell column -> (unnest type, literal builder, cast applied per row)
_CELL_COLUMNS = {
    "count": ("int[]", _pg_ints, ""),
    "gi_z": ("float8[]", _pg_floats, ""),
    "gi_p": ("float8[]", _pg_floats, ""),
    "gi_bin": ("int[]", _pg_ints, ""),
    "density": ("float8[]", _pg_floats, ""),
    "emerging": ("int[]", _pg_ints, ""),
    "trend_tau": ("float8[]", _pg_floats, ""),
    "trend_p": ("float8[]", _pg_floats, ""),
    "step_counts": ("text[]", _pg_int_rows, "::int[]"),
    "step_bins": ("text[]", _pg_int_rows, "::smallint[]"),
    "zone_id": ("bigint[]", _pg_ints, ""),
}


def _write(run: HotspotRun, c: Computed) -> None:
    HotspotCell.objects.filter(run=run).delete()
    HotspotZone.objects.filter(run=run).delete()
    zone_ids: dict[int, int] = {}
    with connection.cursor() as cursor:
        if c.zones:
            geometries = c.zone_geoms if c.zone_geoms is not None else _cell_zone_geoms(cursor, c)
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
        if c.grid is not None and c.i is not None and len(c.i):
            values = dict(c.values)
            if c.zone_of_cell is not None:
                values["zone_id"] = np.array(
                    [zone_ids.get(int(r), 0) for r in c.zone_of_cell], dtype=np.int64
                )
            names = list(values)
            selected = ", ".join(
                f"NULLIF(u.{n}, 0)" if n == "zone_id" else f"u.{n}{_CELL_COLUMNS[n][2]}"
                for n in names
            )
            unnest = ", ".join(
                ["%s::int[]", "%s::int[]"] + [f"%s::{_CELL_COLUMNS[n][0]}" for n in names]
            )
            cursor.execute(
                f"""
                INSERT INTO {HotspotCell._meta.db_table} (run_id, i, j, geom, {", ".join(names)})
                SELECT %s, u.i, u.j, ST_Transform({queries.cell_sql(c.grid, "u.i", "u.j")}, {STORAGE_SRID}),
                       {selected}
                FROM unnest({unnest}) AS u(i, j, {", ".join(names)})
                """,
                [
                    run.pk,
                    _pg_ints(c.i),
                    _pg_ints(c.j),
                    *(_CELL_COLUMNS[n][1](values[n]) for n in names),
                ],
            )
    HotspotRun.objects.filter(pk=run.pk).update(
        status=HotspotRun.Status.SUCCEEDED,
        message=summary_line(c.summary),
        progress=1.0,
        finished_at=timezone.now(),
        params=c.params,
        summary=c.summary,
        stability=c.stability,
        metric_srid=c.srid,
        area_geom=GEOSGeometry(memoryview(c.area_ewkb)),
        area_m2=c.area_m2,
        software_version=software_version(),
    )


def _cell_zone_geoms(cursor, c: Computed) -> dict[int, bytes]:
    ranks = np.concatenate([np.full(z.cell_count, z.rank) for z in c.zones])
    cells = np.concatenate([z.cells for z in c.zones])
    # The union snaps to a millimetre grid: shared hexagon vertices computed from two
    # cells can differ in the last bits, which would leave slivers.
    cursor.execute(
        f"""
        SELECT u.rank, ST_AsEWKB(ST_Multi(ST_CollectionExtract(ST_Transform(
            ST_Union({queries.cell_sql(c.grid, "u.i", "u.j")}, 0.001), {STORAGE_SRID}), 3)))
        FROM unnest(%s::int[], %s::int[], %s::int[]) AS u(rank, i, j)
        GROUP BY u.rank
        ORDER BY u.rank
        """,
        [_pg_ints(ranks), _pg_ints(c.i[cells]), _pg_ints(c.j[cells])],
    )
    return {rank: bytes(geom) for rank, geom in cursor.fetchall()}


def summary_line(summary: Mapping) -> str:
    method = summary.get("method", Method.GISTAR)
    if method == Method.DBSCAN:
        return (
            f"{summary['incidents']:,} incidents; {summary['zones']} cluster zone(s) at eps "
            f"{summary['eps_m']:g} m and {summary['min_points']} points; "
            f"{summary['noise_incidents']:,} incidents in no cluster"
        )
    cells = (
        f"{summary['incidents']:,} incidents in {summary['cells']:,} cells "
        f"({summary['cell_size_m']:g} m)"
    )
    if method == Method.KDE:
        return (
            f"{cells}; kernel density with a {summary['bandwidth_m']:g} m bandwidth, "
            f"peak {summary['density_max_per_km2']:,.0f} incidents/km²"
        )
    if method == Method.EMERGING:
        return (
            f"{cells} over {summary['steps']} {summary['step']} steps; "
            f"{summary['hot_pattern_cells']:,} cells with a hot spot pattern, "
            f"{summary['cold_pattern_cells']:,} with a cold one"
        )
    return (
        f"{cells}; {summary['hot_cells']:,} hot and {summary['cold_cells']:,} cold significant "
        f"cells; {summary['zones']} zone(s)"
    )


# --- forecast validation -----------------------------------------------------------------------

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
            "The run's cells ranked by its score (Gi* z, or kernel density), down to each coverage."
        ),
    ),
    "naive_period": (
        gettext_noop("Naive: last period's count"),
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
    srid = check_metric_crs(run.region)
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
            grid = grids.Grid("square", float(params["cell_size_m"]), srid)
            grid_source = "the run's kernel density grid"
        else:
            grid = grids.Grid(params["grid"], float(params["cell_size_m"]), srid)
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
            hits, zone_area = _dbscan_zone_hits(cursor, run, srid, eval_sql, eval_params)
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
            column = "density" if run.method == Method.KDE else "gi_z"
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
    start = _add_months(day.replace(day=1), -months)
    last_day = (_add_months(start, 1) - dt.timedelta(days=1)).day
    return start.replace(day=min(day.day, last_day)) + dt.timedelta(days=1)


def _dbscan_zone_hits(cursor, run: HotspotRun, srid: int, eval_sql: str, eval_params):
    """(later incidents inside the run's cluster hulls, area of their union in m²)."""
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
