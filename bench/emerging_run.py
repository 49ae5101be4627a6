"""Emerging hot spots over a long period: ten years of monthly steps over N incidents.

* ``barrio emerging, automatic size``: ``hotspots.services.runs.create_run`` +
  ``execute_run`` with method ``emerging`` and every default (monthly steps, the cell size
  chosen for the steps: :mod:`hotspots.engine.step_size`), what the command, the API and
  the background job run, from the counting in PostgreSQL to the cells written.
* ``barrio emerging, at the cube cap``: the same run with an explicit cell size whose cube
  (cells × steps) is just under ``HOTSPOT_EMERGING_MAX_BINS``: the largest run a planner
  can ask for, so its memory is the most an emerging run takes.

Each run is a fresh Python process (``python -m bench.emerging_run --child ...``), so its
peak RSS (``VmHWM``, Django and numpy included) is the run's own. The target (issue 12):
at 1,000,000 incidents, at most 60 s and 1.5 GB. There is no baseline: the old size rule
(Optimized Hot Spot Analysis alone, blind to the steps) chooses cells that are refused
(a note gives its size and cube); the table's ratio columns are absent.

Data (seeded): the demo city's boundaries and N incidents over 2015–2024, placed like
``hotspot_run``'s (70 % around 60 hotspots), uniform in time except in the eastern half
of the city, where a third of the incidents grow more frequent year after year (density
∝ t): an emerging trend the run should report as new, consecutive or intensifying hot
spots there rather than in the west. Checks: the cube fits the cap, the chosen size
meets its per-step target, the trend is found in the east.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import BenchContext, BenchmarkError, BenchResult, Measurement
from bench.hotspot_run import generate_points, insert_incidents, load_city

NAME = "emerging_run"
DESCRIPTION = "emerging hot spots: 10 years of monthly steps over N incidents"
DEFAULT_SCALE = 1_000_000
UNIT = "incidents"

OURS = "barrio emerging, automatic size"
AT_CAP = "barrio emerging, at the cube cap"
PERIOD = (dt.date(2015, 1, 1), dt.date(2024, 12, 31))
TREND_SHARE = 1 / 3  # of the eastern incidents, drawn with a density growing in time
TARGET_SECONDS = 60.0
TARGET_RSS_MB = 1.5 * 1024
TARGET_AT = 1_000_000
CAP_FILL = 0.9  # the at-the-cap run's estimated cube, as a share of the cap
REPO = Path(__file__).resolve().parent.parent
GROWING = {"new_hot_spot", "consecutive_hot_spot", "intensifying_hot_spot"}


# --- data ---------------------------------------------------------------------------------


def incident_seconds(region, x: np.ndarray, rng: np.random.Generator, east_of: float):
    """Unix times over PERIOD in the region's time zone: uniform, except TREND_SHARE of the
    incidents east of ``east_of``, whose density grows linearly over the period."""
    import pandas as pd

    start = pd.Timestamp(PERIOD[0].isoformat(), tz=region.time_zone).value // 10**9
    end = pd.Timestamp((PERIOD[1] + dt.timedelta(days=1)).isoformat(), tz=region.time_zone)
    span = end.value // 10**9 - 1 - start
    u = rng.random(len(x))
    growing = (x > east_of) & (rng.random(len(x)) < TREND_SHARE)
    u[growing] = np.sqrt(u[growing])  # density ∝ t on [0, 1]
    return start + (u * span).astype(np.int64)


# --- the child: one run in a fresh process ---------------------------------------------------


def _memory_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process (not ``ru_maxrss``: see
    ``bench.incident_import_methods``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def child_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", required=True, choices=[OURS, AT_CAP])
    parser.add_argument("--database", required=True)
    parser.add_argument("--region", required=True, type=int)
    parser.add_argument("--cell-size", type=float)
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    settings.DEBUG = False
    settings.DATABASES["default"]["NAME"] = args.database
    connection.settings_dict["NAME"] = args.database
    connection.ensure_connection()

    from hotspots import exports
    from hotspots.models import HotspotRun
    from hotspots.services.runs import create_run, execute_run
    from neighborhoods.models import Region

    params = {"grid": "hex"}
    if args.cell_size:
        params["cell_size_m"] = args.cell_size
    rss_before = _memory_mb("VmRSS")
    start = time.perf_counter()
    run = create_run(
        region=Region.objects.get(pk=args.region),
        date_from=PERIOD[0],
        date_to=PERIOD[1],
        method="emerging",
        params=params,
    )
    run = execute_run(run=run)
    seconds = time.perf_counter() - start
    peak = _memory_mb("VmHWM")
    if run.status != HotspotRun.Status.SUCCEEDED:
        print(json.dumps({"error": run.message}))
        return 1
    geojson_bytes = sum(len(chunk) for chunk in exports.cells_geojson(run))
    print(
        json.dumps(
            {
                "run_id": run.pk,
                "seconds": seconds,
                "peak_rss_mb": peak,
                "rss_before_mb": rss_before,
                "params": run.params,
                "summary": run.summary,
                "timings": run.timings,
                "geojson_bytes": geojson_bytes,
            }
        )
    )
    connection.close()
    return 0


def _run_child(method: str, region_id: int, cell_size: float | None = None) -> dict:
    from django.db import connection

    command = [sys.executable, "-m", "bench.emerging_run", "--child", method]
    command += ["--database", connection.settings_dict["NAME"], "--region", str(region_id)]
    if cell_size:
        command += ["--cell-size", f"{cell_size:g}"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BenchmarkError(f"{method} failed:\n{done.stderr[-3000:]}") from None
    if done.returncode != 0 or "error" in result:
        raise BenchmarkError(f"{method} failed: {result.get('error', done.stderr[-3000:])}")
    return result


def _measure(method: str, region_id: int, repeat: int, log, cell_size=None):
    runs = []
    for _ in range(repeat):
        runs.append(_run_child(method, region_id, cell_size))
        r = runs[-1]
        log(
            f"  {method}: {r['seconds']:.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB, "
            f"{r['summary']['cells']:,} cells of {r['params']['cell_size_m']:g} m"
        )
    return min(runs, key=lambda r: r["seconds"]), runs


# --- the benchmark ----------------------------------------------------------------------------


def _growing_share(run_id: int, east_of: float, srid: int) -> tuple[int, int]:
    """Cells of a run with a growing hot spot category (new, consecutive, intensifying)
    east and west of ``east_of`` (metres in ``srid``)."""
    from django.contrib.gis.db.models.functions import Centroid, Transform

    from hotspots.engine.emerging import LEGEND
    from hotspots.models import HotspotCell

    codes = [code for code, entry in LEGEND.items() if entry["key"] in GROWING]
    xs = [
        c.x
        for c in HotspotCell.objects.filter(run_id=run_id, emerging__in=codes)
        .annotate(c=Transform(Centroid("geom"), srid))
        .values_list("c", flat=True)
    ]
    east = sum(1 for x in xs if x > east_of)
    return east, len(xs) - east


def run(ctx: BenchContext) -> BenchResult:
    from hotspots.engine.grid import Grid
    from hotspots.engine.step_size import estimated_cells
    from hotspots.services.context import STEPS, max_bins

    n = ctx.scale
    rng = np.random.default_rng(ctx.seed)
    start = time.perf_counter()
    region, outline = load_city()
    x, y = generate_points(n, rng, outline)
    min_x, min_y, max_x, max_y = outline.bounds
    east_of = (min_x + max_x) / 2
    insert_incidents(region, x, y, rng, seconds=incident_seconds(region, x, rng, east_of))
    del x, y
    setup_seconds = time.perf_counter() - start
    ctx.log(f"  generated and COPYed {n:,} incidents over 10 years in {setup_seconds:.1f} s")

    ours, ours_runs = _measure(OURS, region.pk, ctx.repeat, ctx.log)
    steps = ours["summary"]["steps"]
    cap = max_bins()
    # The hexagon edge whose cube over the city's area is CAP_FILL of the cap.
    area_m2 = outline.area
    unit = Grid("hex", 10.0, region.metric_srid).cell_area_m2 / 100.0
    cap_size = math.ceil(math.sqrt(area_m2 * steps / (CAP_FILL * cap * unit)))
    capped, capped_runs = _measure(AT_CAP, region.pk, ctx.repeat, ctx.log, cell_size=cap_size)

    rule = ours["params"]["cell_size_rule"]
    checks = []
    for label, result in ((OURS, ours), (AT_CAP, capped)):
        bins = result["summary"]["cells"] * steps
        if bins > cap:
            raise BenchmarkError(f"{label}: {bins:,} cells × steps, more than the cap {cap:,}")
        checks.append(
            f"{label}: {result['summary']['cells']:,} cells × {steps} steps = {bins:,} "
            f"(cap {cap:,})"
        )
    if rule["mean_per_step"] < rule["min_per_step"] and rule["limit"] != "fewest_cells":
        raise BenchmarkError(f"{OURS}: the chosen size misses its target: {rule}")
    checks.append(f"{OURS}: {ours['params']['cell_size_reason'].split('. Starting size')[0]}")
    east, west = _growing_share(ours["run_id"], east_of, region.metric_srid)
    if east <= west:
        raise BenchmarkError(
            f"{OURS}: the planted trend is not found: {east} growing hot spot cells in the "
            f"east, {west} in the west"
        )
    checks.append(
        f"{OURS}: the planted trend is found: {east:,} cells new, consecutive or "
        f"intensifying hot in the east half, {west:,} in the west"
    )

    def measurement(method, best, runs, note):
        return Measurement(
            method=method,
            baseline=False,
            items=n,
            seconds=best["seconds"],
            runs=[r["seconds"] for r in runs],
            peak_python_mb=best["peak_rss_mb"],
            output_bytes=best["geojson_bytes"],
            note=note,
        )

    measurements = [
        measurement(OURS, ours, ours_runs, f"{ours['params']['cell_size_m']:g} m hexagons"),
        measurement(AT_CAP, capped, capped_runs, f"{cap_size:g} m hexagons"),
    ]
    worst_rss = max(r["peak_rss_mb"] for r in ours_runs)
    met = ours["seconds"] <= TARGET_SECONDS and worst_rss <= TARGET_RSS_MB
    scale_note = "" if n == TARGET_AT else f" (the target is set at {TARGET_AT:,} incidents)"
    base = rule["base_size_m"]
    base_cells = estimated_cells("hex", base, (max_x - min_x, max_y - min_y))
    timings = ", ".join(f"{k} {ours['timings'][k]:.2f}" for k in STEPS if k in ours["timings"])
    categories = ", ".join(
        f"{k.replace('_', ' ')} {v:,}"
        for k, v in sorted(ours["summary"]["categories"].items(), key=lambda kv: -kv[1])
        if v
    )
    notes = [
        f"target at {TARGET_AT:,} incidents: at most {TARGET_SECONDS:g} s and "
        f"{TARGET_RSS_MB:,.0f} MB peak RSS; {OURS} at {n:,}: best {ours['seconds']:.1f} s, "
        f"peak RSS up to {worst_rss:,.0f} MB: " + ("met" if met else "NOT met") + scale_note,
        "peak MB is the peak RSS (VmHWM) of the process of the run, a fresh Python process "
        f"per run ({ours['rss_before_mb']:.0f} MB after Django is set up); PostgreSQL's own "
        "memory is not counted; output MB is the run's cells GeoJSON",
        f"{OURS} steps (s): {timings}",
        f"{OURS} cells per category: {categories}",
        f"the size rule blind to the steps (Optimized Hot Spot Analysis alone) chose {base:g} "
        f"m here: about {base_cells:,} cells × {steps} steps = {base_cells * steps:,} bins, "
        f"refused now (on average {rule['base_mean_per_step']:.3g} incidents per occupied "
        "cell per step)",
        f"{AT_CAP}: {cap_size:g} m cells, chosen so that the city's area holds about "
        f"{CAP_FILL:.0%} of the cap of {cap:,} cell-steps (HOTSPOT_EMERGING_MAX_BINS): the "
        "largest emerging run the server accepts at this period",
    ]
    return BenchResult(
        name=NAME,
        description=DESCRIPTION,
        scale=n,
        unit=UNIT,
        measurements=measurements,
        setup_seconds=setup_seconds,
        checks=checks,
        notes=notes,
    )


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
