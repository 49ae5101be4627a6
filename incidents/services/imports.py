"""Incident import: validated chunks (reading), each point given its region, district and
neighborhood (neighborhoods.locate) → COPY BINARY into a staging table → duplicate ids
refused → one INSERT that upserts the chunk by (source, external id) (staging). This module
orchestrates: the batch, the transaction, the files in turn, the report.

Two cores serve the import: while PostgreSQL writes chunk n (on a thread of ours that owns
the cursor meanwhile), Python reads and validates chunk n + 1. All or nothing by default:
any refused row rolls the whole import back and the report names every one. An import
bigger than the table it goes into builds the secondary indexes once at the end instead of
row by row (see staging._set_indexes_aside).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext

from common.jobs import IMPORT_BATCH_JOBS, job_lock
from incidents.models import ImportBatch, IncidentSource
from incidents.models import RefusedRow as RefusedRowModel
from incidents.reasons import code_of, summary_key
from incidents.selectors import batch_region_codes
from incidents.services.bounds import IncidentFileError, inspect_csv
from incidents.services.labels import LabelMapper
from incidents.services.reading import (
    ChunkValidator,
    ColumnMapping,
    ReadOptions,
    RefusedRow,
    csv_header,
    read_csv_chunks,
    read_vector_points,
    sha256_of,
)
from incidents.services.request import (
    VECTOR_SUFFIXES,
    ImportRequest,
    ImportResult,
    resolve_columns,
)
from incidents.services.staging import (
    STAGING_DDL,
    ChunkWriter,
    Staging,
    drop_temp_tables,
    rebuild_indexes,
    stage_chunk,
)
from incidents.services.zones import ImportZones, zone_record
from incidents.signals import batch_imported
from neighborhoods.locate import AreaIndex


class ImportRefused(Exception):
    """Rows were refused and nothing was written; ``result`` lists them."""

    def __init__(self, result: ImportResult):
        super().__init__(f"{result.rows_refused} row(s) refused; nothing was written")
        self.result = result


class ImportInterrupted(Exception):
    """The import stopped before it finished and wrote nothing: its connection to the
    database was lost, or its batch was ended meanwhile. The message says which, and what
    became of the batch: ``batch_failed`` is False when the database could not be reached
    again to mark it failed (``fail_abandoned_batches`` does once it is next seen: the
    batch's job lock went with the lost connection)."""

    def __init__(self, message: str, *, batch_id: int | None, batch_failed: bool):
        super().__init__(message)
        self.batch_id = batch_id
        self.batch_failed = batch_failed


class _BatchEnded(Exception):
    """The import's batch is no longer RUNNING: someone else ended it."""


# Pauses before each attempt to reach the database again after an import lost its
# connection (a restarting server answers within seconds); the first attempt that gets
# through marks the batch failed.
RECONNECT_DELAYS_S = (0.0, 1.0, 2.0, 4.0)


def _file_kind(path: Path) -> str:
    return "vector" if path.suffix.lower() in VECTOR_SUFFIXES else "table"


def _later_bytes_of_same_kind(paths: list[Path]) -> list[int]:
    return [
        sum(p.stat().st_size for p in paths[n + 1 :] if _file_kind(p) == _file_kind(path))
        for n, path in enumerate(paths)
    ]


def _stage_file(
    cursor, request, path, file_no, staging, progress, done_bytes, total_bytes, zones: ImportZones
) -> int:
    """Reads, validates and stages one file; returns the number of rows read."""
    options_base = dict(
        # Rows in no region are refused: the zone their times were read in is moot.
        timezone=zones.zone or settings.TIME_ZONE,
        region_zones=zones.region_zones,
        locate=lambda lon, lat: staging.areas.assign(cursor, lon, lat),
        month_only=bool(request.profile and request.profile.month_only),
        placeholders=request.profile.placeholders if request.profile else (),
    )
    if path.suffix.lower() in VECTOR_SUFFIXES:
        table, refused = read_vector_points(path, request.columns.crs)
        columns = resolve_columns(
            ImportRequest(
                paths=[],
                source=request.source,
                profile=request.profile,
                exact_columns=request.exact_columns,
                columns=ColumnMapping(
                    **{
                        **request.columns.__dict__,
                        "lat": "__lat",
                        "lon": "__lon",
                        "x": None,
                        "y": None,
                        "crs": None,
                    }
                ),
            ),
            list(table.columns),
            path.name,
        )
        validator = ChunkValidator(ReadOptions(columns=columns, **options_base), file_no, path.name)
        staging.refused.extend(refused)
        numbers = table.index.to_numpy()
        chunk = validator.validate(table, numbers)
        zones.count(chunk)
        staging.expect(file_no, len(table), path.stat().st_size, path.stat().st_size)
        stage_chunk(cursor, staging, chunk, table, numbers, path.name)
        progress((done_bytes + path.stat().st_size) / total_bytes)
        return len(table) + len(refused)

    layout = inspect_csv(path)  # refuses a file too wide or with too long rows, before pandas
    header = csv_header(path, layout)
    columns = resolve_columns(request, header, path.name)
    validator = ChunkValidator(ReadOptions(columns=columns, **options_base), file_no, path.name)
    rows = 0
    for frame, first_row, position in read_csv_chunks(path, layout):
        numbers = np.arange(first_row, first_row + len(frame))
        chunk = validator.validate(frame, numbers)
        zones.count(chunk)
        staging.expect(file_no, rows + chunk.rows, position, path.stat().st_size)
        stage_chunk(cursor, staging, chunk, frame, numbers, path.name)
        rows += chunk.rows
        progress((done_bytes + position) / total_bytes)
    return rows


def get_or_create_source(request: ImportRequest) -> IncidentSource:
    profile = request.profile
    defaults = {}
    if profile is not None and profile.source == request.source:
        defaults = {
            "description": profile.description,
            "attribution": profile.attribution,
            "licence": profile.licence,
            "default_family": profile.family,
        }
    elif request.family:
        defaults = {"default_family": request.family}
    source, _ = IncidentSource.objects.get_or_create(name=request.source, defaults=defaults)
    return source


def import_incidents(
    *,
    request: ImportRequest,
    user=None,
    batch: ImportBatch | None = None,
    progress: Callable[[float], None] | None = None,
) -> ImportResult:
    """Imports the files of ``request``. Raises ImportRefused (nothing written) when rows
    are refused and ``skip_bad`` is off, IncidentFileError when a file cannot be used,
    ImportInterrupted (nothing written) when the database connection is lost.

    The batch it creates (without ``batch``) holds its job lock (common.jobs) from before
    anyone can see it until it is finished, as a web import's job holds it for the batch
    it passes: ``fail_abandoned_batches`` never takes a living import for a dead one. A
    batch that is no longer RUNNING is never finished again (a failed batch stays failed).
    """
    with contextlib.ExitStack() as job:
        return _import(request=request, user=user, batch=batch, progress=progress, job=job)


def _import(*, request, user, batch, progress, job: contextlib.ExitStack) -> ImportResult:
    started = time.perf_counter()
    paths = [Path(p) for p in request.paths]
    for path in paths:
        if not path.is_file():
            raise IncidentFileError(f"{path}: no such file")
    files = [{"name": p.name, "sha256": sha256_of(p), "bytes": p.stat().st_size} for p in paths]
    total_bytes = sum(f["bytes"] for f in files) or 1
    # A dry run creates its source (if new) inside the transaction it rolls back.
    source = None if request.dry_run and batch is None else get_or_create_source(request)
    location_quality = request.location_quality or (
        request.profile.location_quality if request.profile else "exact"
    )
    result = ImportResult(
        batch_id=None,
        dry_run=request.dry_run,
        status="running",
        files=files,
        constant_label=request.columns.constant_label,
    )
    zones = ImportZones.for_request(request)
    timings = result.timings
    report_progress = progress or (lambda fraction: None)

    if batch is None and not request.dry_run:
        with transaction.atomic():
            batch = ImportBatch.objects.create(
                source=source,
                created_by=user if getattr(user, "is_authenticated", False) else None,
                status=ImportBatch.Status.RUNNING,
                files=files,
                skip_bad=request.skip_bad,
                options=_options_record(request),
            )
            # Nobody else knows the id yet: a sweep trying it can only hold it a moment.
            job.enter_context(job_lock(IMPORT_BATCH_JOBS, batch.pk, wait=True))
    elif batch is not None:
        resumed = ImportBatch.objects.filter(
            pk=batch.pk, status__in=[ImportBatch.Status.QUEUED, ImportBatch.Status.RUNNING]
        ).update(status=ImportBatch.Status.RUNNING, files=files, source=source)
        if not resumed:
            raise ImportInterrupted(_ended_message(batch.pk), batch_id=batch.pk, batch_failed=True)
    result.batch_id = batch.pk if batch else None
    connection.ensure_connection()
    # The session the import works in; once it is gone, so are its transaction and locks.
    session = connection.connection

    def step(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 3)
        return now

    failed = False
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            mark = time.perf_counter()
            if source is None:
                source = get_or_create_source(request)
            # JIT compilation costs more than it saves on these statements.
            cursor.execute("SET LOCAL jit = off")
            drop_temp_tables(cursor)
            cursor.execute(STAGING_DDL)
            staging = Staging(
                areas=AreaIndex(cursor),
                labels=LabelMapper(request, source),
                later_bytes_of_same_kind=_later_bytes_of_same_kind(paths),
            )
            params = {
                "source_id": source.pk,
                "location_quality": location_quality,
                "batch_id": batch.pk if batch else _dry_run_batch(source).pk,
            }
            done_bytes = 0
            file_names = [p.name for p in paths]
            # A refused import writes nothing: once a row is refused, no need to upsert.
            with ChunkWriter(
                connection.connection,
                params,
                upsert=lambda: request.skip_bad or not (staging.refused or writer.duplicates),
                # A dry run is rolled back: no reason to keep readers waiting for it.
                bulk_load=not (request.dry_run or request.keep_indexes),
            ) as writer:
                staging.attach(writer)
                for file_no, path in enumerate(paths):
                    rows = _stage_file(
                        cursor,
                        request,
                        path,
                        file_no,
                        staging,
                        lambda f: report_progress(0.8 * f),
                        done_bytes,
                        total_bytes,
                        zones,
                    )
                    result.rows_read += rows
                    staging.rows_before_file = result.rows_read
                    files[file_no]["rows"] = rows
                    done_bytes += path.stat().st_size
                mark = step("read_validate_copy", mark)
                writer.finish()  # the chunks still queued or being written
            timings["database_busy"] = round(writer.busy_s, 3)
            write_tail = time.perf_counter() - mark

            staging.refuse_duplicates(file_names)
            result.refused = staging.refused
            result.time_zones = zone_record(request, zones.by_code())
            result.unmapped_labels = staging.labels.unmapped()
            result.rows_unassigned = staging.unassigned
            failed = bool(result.refused) and not request.skip_bad
            if failed:
                mark = step("duplicates", mark)
            else:
                timings["insert"] = round(write_tail, 3)
                mark = step("duplicates", mark + write_tail)
                result.rows_created, result.rows_updated = writer.created, writer.updated
                result.rows_unchanged = staging.staged - result.rows_created - result.rows_updated
            if writer.bulk and not failed:
                rebuild_indexes(cursor, writer.bulk.indexes)
                result.indexes_rebuilt = [name for name, _ in writer.bulk.indexes]
                mark = step("index_rebuild", mark)
            order = {name: number for number, name in reversed(list(enumerate(file_names)))}
            result.refused.sort(key=lambda r: (order.get(r.file_name, 0), r.row_number))
            drop_temp_tables(cursor)
            if failed or request.dry_run:
                transaction.set_rollback(True)
            elif batch is not None and not _still_running(cursor, batch.pk):
                raise _BatchEnded
        if not (failed or request.dry_run):
            step("commit", mark)
    except _BatchEnded:
        raise ImportInterrupted(
            _ended_message(batch.pk), batch_id=batch.pk, batch_failed=True
        ) from None
    except Exception as exc:
        lost = isinstance(exc, (OperationalError, InterfaceError)) and _session_lost(session)
        if not lost:
            if batch is not None:
                _finish_batch(batch, result, started, error=str(exc))
            raise
        if batch is None:
            raise ImportInterrupted(
                gettext(
                    "The connection to the database was lost during the dry run: nothing was "
                    "written."
                ),
                batch_id=None,
                batch_failed=False,
            ) from exc
        error = gettext(
            "The connection to the database was lost during the import (%(error)s). Nothing "
            "was written: run the import again."
        ) % {"error": _first_line(exc)}
        marked = _finish_on_a_fresh_connection(batch, result, started, error)
        if marked:
            message = gettext(
                "The connection to the database was lost during the import: nothing was "
                "written. Import batch #%(batch)s is marked failed."
            )
        else:
            message = gettext(
                "The connection to the database was lost during the import and the database "
                "cannot be reached: nothing was written. Import batch #%(batch)s will be "
                "marked failed when it is next seen (the import pages and API)."
            )
        raise ImportInterrupted(
            message % {"batch": batch.pk}, batch_id=batch.pk, batch_failed=marked
        ) from exc
    report_progress(1.0)

    if failed:
        result.rows_created = result.rows_updated = result.rows_unchanged = 0
        result.status = ImportBatch.Status.FAILED
    else:
        result.status = "dry-run" if request.dry_run else ImportBatch.Status.SUCCEEDED
    result.duration_s = round(time.perf_counter() - started, 3)
    if batch is not None:
        try:
            _finish_batch(batch, result, started)
        except (OperationalError, InterfaceError):
            # Committed already: the batch must say so, not be failed as abandoned.
            if not (
                _session_lost(session) and _finish_on_a_fresh_connection(batch, result, started)
            ):
                raise
    if failed:
        raise ImportRefused(result)
    if batch is not None and result.status == ImportBatch.Status.SUCCEEDED:
        # The public app (a higher floor) rebuilds the regions' public tables on it.
        batch_imported.send(
            sender=ImportBatch, batch_id=batch.pk, region_codes=batch_region_codes(batch.pk)
        )
    return result


def _still_running(cursor, batch_id: int) -> bool:
    """Whether the batch is still RUNNING, locked so until the import's transaction ends:
    an import whose batch was ended meanwhile (failed as abandoned) never commits."""
    cursor.execute(
        "SELECT status FROM incidents_importbatch WHERE id = %s FOR NO KEY UPDATE", [batch_id]
    )
    row = cursor.fetchone()
    return row is not None and row[0] == ImportBatch.Status.RUNNING


def _ended_message(batch_id: int) -> str:
    return gettext(
        "Import batch #%(batch)s was ended before its import finished: nothing was written."
    ) % {"batch": batch_id}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _session_lost(session) -> bool:
    """Whether the connection the import worked in is gone: closed (Django drops it when a
    rollback fails), replaced by a fresh one, or broken."""
    return session is None or connection.connection is not session or not connection.is_usable()


def _finish_on_a_fresh_connection(
    batch: ImportBatch, result: ImportResult, started: float, error: str = ""
) -> bool:
    """Finishes the batch on a fresh connection once the database answers again (after the
    pauses of RECONNECT_DELAYS_S); False when it never does."""
    if connection.in_atomic_block:
        return False  # the caller's transaction went with the connection: nothing to write in
    for pause in RECONNECT_DELAYS_S:
        time.sleep(pause)
        with contextlib.suppress(DatabaseError):
            connection.close()
        try:
            _finish_batch(batch, result, started, error=error)
        except (OperationalError, InterfaceError):
            continue
        return True
    with contextlib.suppress(DatabaseError):
        connection.close()
    return False


def _dry_run_batch(source: IncidentSource) -> ImportBatch:
    # Rolled back with the rest of a dry run; the FK needs a row to point at.
    return ImportBatch.objects.create(source=source, status=ImportBatch.Status.RUNNING)


def _options_record(request: ImportRequest) -> dict:
    return {
        "profile": request.profile.name if request.profile else None,
        "columns": {k: v for k, v in request.columns.__dict__.items() if v},
        "timezone": request.timezone,
        "family": request.family,
        "skip_bad": request.skip_bad,
        "keep_indexes": request.keep_indexes,
        **({"exact_columns": True} if request.exact_columns else {}),
    }


def _finish_batch(
    batch: ImportBatch, result: ImportResult, started: float, error: str = ""
) -> bool:
    """Records how the batch ended, unless it has ended already (then False): a batch goes
    from RUNNING to an end once, and a failed one never becomes succeeded."""
    status = ImportBatch.Status.FAILED if error else result.status
    report = {
        "unmapped_labels": result.unmapped_labels,
        "timings_s": result.timings,
        "refused_reasons": _reason_counts(result.refused),
        "indexes_rebuilt": result.indexes_rebuilt,
    }
    if result.time_zones is not None:
        report["time_zones"] = result.time_zones
    if error:
        report["error"] = error
    with transaction.atomic():
        ended = ImportBatch.objects.filter(pk=batch.pk, status=ImportBatch.Status.RUNNING).update(
            status=status,
            finished_at=timezone.now(),
            rows_read=result.rows_read,
            rows_created=result.rows_created,
            rows_updated=result.rows_updated,
            rows_unchanged=result.rows_unchanged,
            rows_refused=result.rows_refused,
            rows_unassigned=result.rows_unassigned,
            duration_s=round(time.perf_counter() - started, 3),
            progress=1.0,
            report=report,
            files=result.files,  # now with the rows read from each file
        )
        if not ended:
            return False
        RefusedRowModel.objects.filter(batch=batch).delete()
        RefusedRowModel.objects.bulk_create(
            [
                RefusedRowModel(
                    batch=batch,
                    file_name=r.file_name,
                    row_number=r.row_number,
                    reason=r.reason[:500],
                    reason_code=code_of(r.reason)[0],
                    reason_params=code_of(r.reason)[1],
                    raw={k: (None if pd.isna(v) else str(v)) for k, v in r.raw.items()},
                )
                for r in result.refused
            ],
            batch_size=2000,
        )
    return True


def _reason_counts(refused: list[RefusedRow]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in refused:
        key = summary_key(row.reason)
        counts[key] = counts.get(key, 0) + 1
    return counts
