"""Creating and executing hotspot runs.

``create_run`` validates the request and stores a QUEUED run with every parameter filled in
(defaults included), so that the run can be repeated exactly; callers that want it in the
background enqueue it through :mod:`hotspots.tasks`. ``execute_run`` resolves the analysis
area and computes the run's method (:mod:`hotspots.services.methods`).

Cells, zones and the final status are written in ONE transaction: a failed or refused run
is marked FAILED with its message and leaves nothing half-written. Progress is written
between steps, outside that transaction, so that other connections (the run page, the
API) see it. ``ensure_spec_run`` is what data loaders call: a run for a :class:`RunSpec`,
reused when an identical one exists.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace

import numpy as np
import scipy
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon, Polygon
from django.db import connection, transaction
from django.utils import timezone, translation

from common.jobs import HOTSPOT_RUN_JOBS, fail_abandoned, job_lock
from geo.conf import STORAGE_SRID
from hotspots import queries
from hotspots.engine import HotspotRefused
from hotspots.engine import grid as grids
from hotspots.models import HotspotCell, HotspotRun, HotspotValidation, HotspotZone
from hotspots.services.context import (
    Clock,
    Computed,
    Context,
    Progress,
    check_bins,
    incident_queryset,
)
from hotspots.services.methods import COMPUTE
from hotspots.services.params import (
    SUPPORTED_METHODS,
    Method,
    check_metric_crs,
    normalize_params,
    requested_params,
    time_steps,
)
from hotspots.services.validation import validate_run
from hotspots.signals import run_succeeded
from incidents.models import Category, Family
from neighborhoods.models import District, Neighborhood, Region

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
    steps = 0
    if method == Method.EMERGING:
        steps = len(time_steps(date_from, date_to, normalized["step"]))  # refuses short ones
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
        if steps and normalized["cell_size_m"] is not None:
            _check_cube_fits(run, steps)  # raising rolls the run back
    return run


def _check_cube_fits(run: HotspotRun, steps: int) -> None:
    """Refuses now, rather than as a failed run later, an emerging run whose chosen cell
    size certainly gives more cell-steps than the server allows: the area's cells are at
    least its area over a cell's (a drawn points-hull area is only known when it runs)."""
    if run.params["analysis_area"] != "boundary":
        return
    grid = grids.Grid(run.params["grid"], float(run.params["cell_size_m"]), run.metric_srid)
    with connection.cursor() as cursor:
        _ewkb, area_m2 = queries.analysis_area(cursor, run, run.metric_srid)
    check_bins(grid, int(area_m2 // grid.cell_area_m2), steps)


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


@dataclass(frozen=True)
class RunSpec:
    """What a run is asked, its region apart: the period, the method and its parameters,
    and the selection (districts, neighborhoods, a drawn polygon, family, categories). A
    data loader (the demo, an open-data pack) may add a later period to validate it on."""

    date_from: dt.date
    date_to: dt.date
    method: str = Method.GISTAR
    params: Mapping = field(default_factory=dict)
    validate: tuple[dt.date, dt.date] | None = None
    districts: Sequence[District] = ()
    neighborhoods: Sequence[Neighborhood] = ()
    polygon: Polygon | MultiPolygon | None = None
    family: str = ""
    categories: Sequence[Category] = ()

    def request(self) -> dict:
        """The keyword arguments of :func:`create_run` (all but ``validate``)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "validate"}


def find_identical_run(*, region: Region, spec: RunSpec) -> HotspotRun | None:
    """The newest succeeded run asked exactly ``spec`` (same area, period, selection, method
    and parameters, automatic ones left automatic) whose incidents are still the same
    ones (same count), or None. A drawn polygon is never matched: two drawings are
    hardly ever the same area. Raises HotspotRefused for parameters ``create_run`` would
    refuse."""
    if spec.polygon is not None or spec.method not in SUPPORTED_METHODS:
        return None
    wanted = normalize_params(spec.params, spec.method)
    district_ids = sorted(d.pk for d in spec.districts)
    neighborhood_ids = sorted(n.pk for n in spec.neighborhoods)
    category_ids = sorted(c.pk for c in spec.categories)
    candidates = HotspotRun.objects.filter(
        region=region,
        date_from=spec.date_from,
        date_to=spec.date_to,
        method=spec.method,
        family=spec.family or "",
        status=HotspotRun.Status.SUCCEEDED,
        polygon__isnull=True,
    ).order_by("-id")
    candidates = candidates.prefetch_related("districts", "neighborhoods", "categories")
    for run in candidates:
        # The cheap checks first: counting the incidents again is the only costly one.
        if (
            requested_params(run.params, spec.method) == wanted
            and sorted(d.pk for d in run.districts.all()) == district_ids
            and sorted(n.pk for n in run.neighborhoods.all()) == neighborhood_ids
            and sorted(c.pk for c in run.categories.all()) == category_ids
            and run.summary.get("input_incidents") == incident_queryset(run).count()
        ):
            return run
    return None


def ensure_spec_run(
    *, region: Region, spec: RunSpec
) -> tuple[HotspotRun, bool, HotspotValidation | None]:
    """A succeeded run for ``spec``: an identical one whose incidents are still the same
    ones (same count), else a new run executed now; then its validation when ``spec``
    asks for one (kept when the run was reused and already validated on that period).
    Loading the demo or a data pack twice must not pile up identical runs. Returns (run,
    reused, validation or None)."""
    spec = replace(spec, params=normalize_params(spec.params, spec.method))
    run = find_identical_run(region=region, spec=spec)
    reused = run is not None
    if run is None:
        run = execute_run(run=create_run(region=region, **spec.request()))
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
        computed = COMPUTE[run.method](Context.for_run(run, progress))
        clock = Clock(computed.timings, progress, run)
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
    if run.status == HotspotRun.Status.SUCCEEDED:
        # The public app (a higher floor) rebuilds the region's public tables on it.
        run_succeeded.send(sender=HotspotRun, run_id=run.pk, region_code=run.region.code)
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
    """Marks failed every RUNNING run whose job is gone (see common.jobs); returns how
    many. Cheap: only RUNNING runs are looked at. Called by the run pages and API."""
    running = HotspotRun.objects.filter(status=HotspotRun.Status.RUNNING)
    return fail_abandoned(running, HOTSPOT_RUN_JOBS, _fail_abandoned_run)


def _fail(run: HotspotRun, message: str) -> None:
    HotspotRun.objects.filter(pk=run.pk).update(
        status=HotspotRun.Status.FAILED, message=message, finished_at=timezone.now()
    )
    run.refresh_from_db()


# --- writing ----------------------------------------------------------------------------------


def _pg_ints(values: np.ndarray) -> str:
    return "{" + ",".join(map(str, np.asarray(values, dtype=np.int64).tolist())) + "}"


def _pg_floats(values: np.ndarray) -> str:
    return "{" + ",".join(map(repr, np.asarray(values, dtype=np.float64).tolist())) + "}"


def _pg_int_rows(values: np.ndarray) -> str:
    """A text[] literal of int[] literals, one per row of a 2-D array."""
    rows = np.asarray(values, dtype=np.int64).tolist()
    return "{" + ",".join('"{' + ",".join(map(str, row)) + '}"' for row in rows) + "}"


def _pg_float_rows(values: np.ndarray) -> str:
    """A text[] literal of float8[] literals, one per row of a 2-D array."""
    rows = np.asarray(values, dtype=np.float64).tolist()
    return "{" + ",".join('"{' + ",".join(map(repr, row)) + '}"' for row in rows) + "}"


# HotspotCell column -> (unnest type, literal builder, cast applied per row)
_CELL_COLUMNS = {
    "count": ("int[]", _pg_ints, ""),
    "gi_z": ("float8[]", _pg_floats, ""),
    "gi_p": ("float8[]", _pg_floats, ""),
    "gi_bin": ("int[]", _pg_ints, ""),
    "density": ("float8[]", _pg_floats, ""),
    "score": ("float8[]", _pg_floats, ""),
    "emerging": ("int[]", _pg_ints, ""),
    "trend_tau": ("float8[]", _pg_floats, ""),
    "trend_p": ("float8[]", _pg_floats, ""),
    "step_counts": ("text[]", _pg_float_rows, "::float8[]"),
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
            cell = queries.cell_sql(c.grid, "u.i", "u.j")
            cursor.execute(
                f"""
                INSERT INTO {HotspotCell._meta.db_table} (run_id, i, j, geom, {", ".join(names)})
                SELECT %s, u.i, u.j, ST_Transform({cell}, {STORAGE_SRID}),
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
    cell = queries.cell_sql(c.grid, "u.i", "u.j")
    # The union snaps to a millimetre grid: shared hexagon vertices computed from two
    # cells can differ in the last bits, which would leave slivers.
    cursor.execute(
        f"""
        SELECT u.rank, ST_AsEWKB(ST_Multi(ST_CollectionExtract(ST_Transform(
            ST_Union({cell}, 0.001), {STORAGE_SRID}), 3)))
        FROM unnest(%s::int[], %s::int[], %s::int[]) AS u(rank, i, j)
        GROUP BY u.rank
        ORDER BY u.rank
        """,
        [_pg_ints(ranks), _pg_ints(c.i[cells]), _pg_ints(c.j[cells])],
    )
    return {rank: bytes(geom) for rank, geom in cursor.fetchall()}


def summary_line(summary: Mapping) -> str:
    """The outcome sentence the run stores (in English, for the command's output and the
    API's message): the same sentence hotspots.outcome writes in the reader's language for
    the pages, from the same summary, so the two never drift apart."""
    from hotspots.outcome import summary_sentence

    with translation.override("en"):
        return summary_sentence(summary)
