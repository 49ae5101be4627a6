"""Incident import, end to end: N rows of CSV into the incident table, each row with its
region, district and neighborhood assigned and every index of the table current.

* ``barrio import_incidents``: the production service (``incidents.services.imports``), as
  the command and the web upload run it: chunks with their areas assigned, COPY into a
  staging table, one INSERT per chunk that upserts. Into the emptied table this is a first
  load, which sets the secondary indexes aside and builds them again before committing; a
  further run adds N/4 later rows to the N stored, the incremental import that keeps every
  index current row by row, and its rows/s is printed too;
* ``django bulk_create`` (baseline): ``csv.DictReader`` and ``Incident`` objects saved with
  ``bulk_create`` in batches of 5,000, then ONE set-based ORM ``UPDATE`` that assigns
  district and neighborhood with ``Subquery(...geom__intersects=OuterRef("point"))``.
  Per-row point-in-polygon through the ORM would take hours for a million rows, so a
  developer would do this. It runs on at most 100,000 rows; its rows/s is applied to N
  (its work per row does not shrink with N) and the table says so;
* ``geopandas sjoin + execute_values`` (baseline): what an analyst writes: ``read_csv`` of
  the whole file, ``gpd.sjoin`` against districts and neighborhoods read with
  ``read_postgis``, then ``GeoSeries.to_wkb`` + psycopg2 ``execute_values``. With SQLAlchemy
  and GeoAlchemy2 installed, ``GeoDataFrame.to_postgis`` writes instead.

Each run is a fresh Python process (``python -m bench.incident_import --child ...``) into an
emptied incident table, so its peak RSS (``VmHWM``) is the import's own, and it is
measured at N/4 and at N to show whether memory grows with N.

Data (seeded): the demo city's boundaries (``neighborhoods.demo``: 7 districts, 44
neighborhoods, loaded with ``import_boundary_frame``) and N rows ``id,date,time,category,
lat,lon`` sorted by time, 2023-2024, America/Lima, with points clustered around hotspots
inside the city. No real data is read.

The data are made here, in the parent (:mod:`bench.incident_import_data`); the methods and
the child's entry, :func:`~bench.incident_import_methods.child_main`, are in
:mod:`bench.incident_import_methods`; this module runs the children, checks their results
and builds the table.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import BenchContext, BenchmarkError, BenchResult, Measurement
from bench.incident_import_data import (
    TIMEZONE,
    create_source_and_labels,
    generate_rows,
    load_boundaries,
    write_csv,
)
from bench.incident_import_methods import (
    ANALYST,
    ANALYST_TO_POSTGIS,
    BULK_CREATE,
    BULK_CREATE_BATCH,
    OURS,
    child_main,
    to_postgis_available,
)

NAME = "incident_import"
DESCRIPTION = "CSV incidents into the indexed table with district and neighborhood assigned"
DEFAULT_SCALE = 1_000_000
UNIT = "rows"

BULK_CREATE_MAX_ROWS = 100_000
REPO = Path(__file__).resolve().parent.parent


def _reset_tables() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE incidents_incident, incidents_refusedrow")
        cursor.execute("DELETE FROM incidents_importbatch")
    try:
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")  # no dirty pages of the last run left to flush
    except Exception:  # noqa: BLE001 - needs superuser or pg_checkpoint: optional
        pass


def _run_child(method: str, path: Path, *, reset: bool = True) -> dict:
    """One run of ``method`` over ``path`` in a fresh process, into an emptied table."""
    from django.db import connection

    if reset:
        _reset_tables()
    command = [sys.executable, "-m", "bench.incident_import", "--child", method]
    command += ["--csv", str(path), "--database", connection.settings_dict["NAME"]]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchmarkError(f"{method} failed:\n{done.stderr[-3000:]}")
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BenchmarkError(f"{method} printed no result:\n{done.stdout[-2000:]}") from None


def _measure(method: str, files: dict[int, Path], small: int, large: int, repeat: int, log):
    """One run at ``small`` (memory, and a warm-up), then ``repeat`` runs at ``large``."""
    first = _run_child(method, files[small])
    log(
        f"  {method} @ {small:,}: {first['seconds']:.2f} s "
        f"({small / first['seconds']:,.0f} rows/s), peak RSS {first['peak_rss_mb']:.0f} MB"
    )
    runs = []
    for _ in range(repeat):
        runs.append(_run_child(method, files[large]))
        log(
            f"  {method} @ {large:,}: {runs[-1]['seconds']:.2f} s "
            f"({large / runs[-1]['seconds']:,.0f} rows/s), "
            f"peak RSS {runs[-1]['peak_rss_mb']:.0f} MB"
        )
    best = min(runs, key=lambda r: r["seconds"])
    return first, best, runs


def _check(method: str, result: dict, rows: int, with_truth: bool) -> None:
    agreement = result["agreement"]
    if agreement["rows"] != rows or agreement["distinct_ids"] != rows:
        raise BenchmarkError(f"{method} wrote {agreement['rows']} rows, expected {rows}")
    if agreement["with_district"] != rows:
        raise BenchmarkError(
            f"{method}: {rows - agreement['with_district']} rows without a district"
        )
    if with_truth and (agreement.get("matched") != rows or agreement.get("differing")):
        raise BenchmarkError(
            f"{method}: {agreement.get('differing')} of {agreement.get('matched')} rows differ "
            f"from {OURS} (areas, label, category, time or point)"
        )


def run(ctx: BenchContext) -> BenchResult:
    from django.db import connection

    n = ctx.scale
    quarter = max(1, n // 4)
    bulk_n = min(n, BULK_CREATE_MAX_ROWS)
    bulk_quarter = max(1, bulk_n // 4)
    analyst = ANALYST_TO_POSTGIS if to_postgis_available() else ANALYST

    start = time.perf_counter()
    _, outline = load_boundaries()
    create_source_and_labels()
    rng = np.random.default_rng(ctx.seed)
    # N rows, then N/4 later ones with ids of their own: the next months of the same city.
    frame = generate_rows(n + quarter, rng, outline)
    with tempfile.TemporaryDirectory(prefix="barrio-bench-") as folder:
        files = {}
        for size in sorted({n, quarter, bulk_n, bulk_quarter}):
            # Smaller files are the first rows of the big one: the same ids, comparable.
            files[size] = write_csv(frame.iloc[:size], Path(folder) / f"incidents_{size}.csv")
        later = write_csv(frame.iloc[n:], Path(folder) / "incidents_later.csv")
        csv_mb = files[n].stat().st_size / 2**20
        del frame
        setup_seconds = time.perf_counter() - start
        ctx.log(f"  generated {n:,} rows ({csv_mb:.0f} MB of CSV) in {setup_seconds:.1f} s")

        ours_small, ours, ours_runs = _measure(OURS, files, quarter, n, ctx.repeat, ctx.log)
        _check(OURS, ours, n, with_truth=False)
        if ours["created"] != n or ours["refused"]:
            raise BenchmarkError(f"{OURS} created {ours['created']} and refused {ours['refused']}")
        with connection.cursor() as cursor:  # ours at N is the reference for the baselines
            cursor.execute("DROP TABLE IF EXISTS bench_truth")
            cursor.execute("CREATE TABLE bench_truth AS SELECT * FROM incidents_incident")
            cursor.execute("CREATE UNIQUE INDEX ON bench_truth (external_id)")
        reimport = _run_child(OURS, files[n], reset=False)
        if (reimport["created"], reimport["unchanged"]) != (0, n):
            raise BenchmarkError(f"{OURS} re-import changed rows: {reimport}")
        # The everyday import: new rows into a table that already holds more, so every
        # index is kept current row by row and every row goes through the upsert.
        increment = _run_child(OURS, later, reset=False)
        if increment["created"] != quarter or increment["indexes_rebuilt"]:
            raise BenchmarkError(f"{OURS} incremental import: {increment}")
        ctx.log(
            f"  {OURS}, {quarter:,} new rows into the {n:,} stored: "
            f"{increment['seconds']:.2f} s ({quarter / increment['seconds']:,.0f} rows/s)"
        )

        analyst_small, analyst_best, analyst_runs = _measure(
            analyst, files, quarter, n, ctx.repeat, ctx.log
        )
        _check(analyst, analyst_best, n, with_truth=True)
        bulk_small, bulk_best, bulk_runs = _measure(
            BULK_CREATE, files, bulk_quarter, bulk_n, ctx.repeat, ctx.log
        )
        _check(BULK_CREATE, bulk_best, bulk_n, with_truth=True)
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS bench_truth")
        _reset_tables()

    scale_bulk = n / bulk_n

    def measurement(method, best, runs, baseline, note, factor=1.0):
        return Measurement(
            method=method,
            baseline=baseline,
            items=n,
            seconds=best["seconds"] * factor,
            runs=[r["seconds"] * factor for r in runs],
            peak_python_mb=best["peak_rss_mb"],
            output_bytes=0,
            note=note,
        )

    bulk_note = (
        f"measured on {bulk_n:,} rows, seconds scaled to {n:,}" if bulk_n < n else "measured"
    )
    measurements = [
        measurement(OURS, ours, ours_runs, False, "COPY staging + one INSERT ... SELECT"),
        measurement(analyst, analyst_best, analyst_runs, True, "whole file in memory"),
        measurement(BULK_CREATE, bulk_best, bulk_runs, True, bulk_note, factor=scale_bulk),
    ]
    timings = ", ".join(f"{k} {v:.2f}" for k, v in ours["timings"].items())
    notes = [
        "peak MB is the peak RSS (VmHWM) of the importing process, a fresh Python "
        f"process per run ({ours['rss_before_mb']:.0f} MB after Django, pandas and GEOS are "
        "imported); PostgreSQL's own memory is not counted",
        f"peak RSS at {quarter:,} -> {n:,} rows: {OURS} {ours_small['peak_rss_mb']:.0f} -> "
        f"{ours['peak_rss_mb']:.0f} MB; {analyst} {analyst_small['peak_rss_mb']:.0f} -> "
        f"{analyst_best['peak_rss_mb']:.0f} MB; {BULK_CREATE} at {bulk_quarter:,} -> "
        f"{bulk_n:,} rows {bulk_small['peak_rss_mb']:.0f} -> {bulk_best['peak_rss_mb']:.0f} MB",
        f"rows/s at {quarter:,} rows: {OURS} {quarter / ours_small['seconds']:,.0f}, "
        f"{analyst} {quarter / analyst_small['seconds']:,.0f}; {BULK_CREATE} at "
        f"{bulk_quarter:,}: {bulk_quarter / bulk_small['seconds']:,.0f}, at {bulk_n:,}: "
        f"{bulk_n / bulk_best['seconds']:,.0f}",
        f"{BULK_CREATE}: {bulk_note}; batches of {BULK_CREATE_BATCH:,} objects, then one "
        "ORM UPDATE with a Subquery per area level",
        f"{OURS} step timings at {n:,} rows (s): {timings}",
        f"{OURS} at {n:,} rows is a first load into the empty table: it set aside the "
        f"indexes {', '.join(ours['indexes_rebuilt']) or '(none)'} and built them again "
        "before committing (an import bringing more rows than the table holds does that)",
        f"{OURS} adding {quarter:,} new rows to the {n:,} stored (every index kept current "
        f"row by row, every row upserted): {increment['seconds']:.2f} s, "
        f"{quarter / increment['seconds']:,.0f} rows/s",
        f"{OURS} re-import of the same {n:,} rows: {reimport['seconds']:.2f} s, 0 changed",
        f"all methods write into the same indexed incident table, emptied before each run, "
        f"in one transaction; time zone {TIMEZONE}; {csv_mb:.0f} MB of CSV at {n:,} rows",
    ]
    if analyst == ANALYST:
        notes.append(
            "SQLAlchemy and GeoAlchemy2 are not installed, so the analyst baseline writes "
            "with GeoSeries.to_wkb + psycopg2 execute_values instead of to_postgis"
        )
    checks = [
        f"{OURS}: {n:,} rows created, none refused, all with a district "
        f"({ours['agreement']['with_neighborhood']:,} with a neighborhood); a re-import "
        "changes none",
        f"{analyst}: the same {n:,} rows with the same district, neighborhood, label, "
        "category, time and point (within 1e-9 degrees) as ours",
        f"{BULK_CREATE}: its {bulk_n:,} rows agree with ours in the same way",
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
