"""Imports started from the web: the uploads are saved under INCIDENT_UPLOAD_ROOT/imports/<batch id>/,
a QUEUED ImportBatch records the options, and a background job (incidents.tasks) runs the
import service on them, then deletes the files.

The page and the API offer the options of ``manage.py import_incidents`` under the same
names; ``option_errors`` and ``upload_errors`` check them for both (and
``start_web_import`` checks again, so nothing is saved from a bad request whoever calls it).

Progress: ``import_incidents`` reads, validates and writes everything inside one
transaction and calls its progress callback from inside it. An UPDATE of the batch made on
the job's own connection would stay invisible to the page that polls until the import
commits (and be rolled back with a refused import). So while the job is inside that
transaction, each (throttled) progress write is made from a short-lived thread, which
Django gives a connection of its own in autocommit: the page sees it at once. It does not
wait on the import: the incidents' reference check takes only a KEY SHARE lock on the
batch row, which an UPDATE of its progress column does not conflict with.

A job that dies (worker killed, machine restarted) loses its import's transaction, so
nothing is written, but its batch would stay RUNNING for ever. The job therefore holds a
session-level advisory lock on its batch while it runs; PostgreSQL drops it with the dead
job's connection (common.jobs), and ``fail_abandoned_batches`` (called by the batch pages and API) marks
a RUNNING batch whose lock is free as failed. A command-line import holds the same lock
(the import service takes it with the batch it creates).

Nothing of a dead job stays behind either: the same call sweeps (``sweep_orphans``) the
upload folders of ended or missing batches, and the task rows (django-tasks-db) that a dead
worker left RUNNING. No cron is needed: whoever looks at the batches cleans up.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import threading
import time
import zoneinfo
from collections.abc import Iterable, Mapping
from contextlib import ExitStack, suppress
from datetime import timedelta
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation, ValidationError
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    connection,
    connections,
    transaction,
)
from django.utils import timezone
from django.utils.text import get_valid_filename, slugify
from django.utils.translation import gettext as _
from pyproj import CRS
from pyproj.exceptions import CRSError

from common.jobs import IMPORT_BATCH_JOBS, fail_abandoned, job_lock
from incidents.models import Family, ImportBatch, LocationQuality
from incidents.profiles import PROFILES
from incidents.services.bounds import IncidentFileError
from incidents.services.imports import (
    ImportInterrupted,
    ImportRefused,
    get_or_create_source,
    import_incidents,
)
from incidents.services.reading import ColumnMapping
from incidents.services.request import ImportRequest, profile_named

logger = logging.getLogger(__name__)

ALLOWED_SUFFIXES = (".csv", ".geojson", ".json", ".gpkg")
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
UPLOAD_FOLDER = "imports"
# Column options, named as in the command (--id, --date, ... --crs).
COLUMN_OPTIONS = (
    "id", "date", "time", "date_end", "time_end", "category", "lat", "lon", "x", "y", "crs",
)  # fmt: skip
# --label: every row's source label, for a file without a category column.
TEXT_OPTIONS = (
    "source", "profile", *COLUMN_OPTIONS, "label", "timezone", "family", "location_quality",
)  # fmt: skip
LABEL_MAX_LENGTH = 300
FLAG_OPTIONS = ("skip_bad", "dry_run")
# The service records a dry run as "dry-run", which is not one of ImportBatch.Status.
DRY_RUN_STATUS = "dry-run"
FINISHED_STATUSES = frozenset(
    {ImportBatch.Status.SUCCEEDED, ImportBatch.Status.FAILED, DRY_RUN_STATUS}
)
# Throttle for progress writes (when a write can be seen at all, see the module doc).
PROGRESS_MIN_INTERVAL_S = 1.0
PROGRESS_MIN_STEP = 0.01
# A task row still RUNNING this long after its batch ended (or, for a batch still QUEUED,
# after the task started) belongs to a worker that died: a living job takes its batch's
# lock within moments of starting, and its worker records the task's end within moments
# of the batch's.
ORPHAN_TASK_AFTER = timedelta(minutes=10)


def max_upload_bytes() -> int:
    return int(getattr(settings, "INCIDENT_UPLOAD_MAX_BYTES", DEFAULT_MAX_BYTES))


def upload_dir(batch_id: int) -> Path:
    # Not under MEDIA_ROOT: raw police files must never be downloadable, even in DEBUG.
    return Path(settings.INCIDENT_UPLOAD_ROOT) / UPLOAD_FOLDER / str(int(batch_id))


def is_finished(batch: ImportBatch) -> bool:
    return batch.status in FINISHED_STATUSES


def status_label(status: str) -> str:
    if status == DRY_RUN_STATUS:
        return _("Dry run: nothing written")
    try:
        return str(ImportBatch.Status(status).label)
    except ValueError:
        return status


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}"


# --- checks --------------------------------------------------------------------------------


def upload_errors(files: Iterable) -> list[str]:
    """Messages about the uploaded files (suffix, emptiness, total size); [] when fine."""
    files = list(files)
    if not files:
        return [_("Choose at least one file.")]
    errors = []
    for upload in files:
        name = Path(str(upload.name)).name
        if Path(name).suffix.lower() not in ALLOWED_SUFFIXES:
            errors.append(
                _("%(name)s: only %(suffixes)s files can be imported.")
                % {"name": name, "suffixes": ", ".join(ALLOWED_SUFFIXES)}
            )
        elif not upload.size:
            errors.append(_("%(name)s is empty.") % {"name": name})
    total = sum(upload.size or 0 for upload in files)
    limit = max_upload_bytes()
    if total > limit:
        errors.append(
            _("The files add up to %(size)s MB; at most %(limit)s MB can be uploaded at once.")
            % {"size": _megabytes(total), "limit": _megabytes(limit)}
        )
    return errors


def normalize_options(data: Mapping) -> dict:
    """Every option, blanks as None, flags as booleans."""
    options: dict = {}
    for name in TEXT_OPTIONS:
        value = data.get(name)
        value = str(value).strip() if value is not None else ""
        options[name] = value or None
    for name in FLAG_OPTIONS:
        value = data.get(name)
        if isinstance(value, str):
            value = value.strip().lower() not in ("", "0", "false", "off", "no")
        options[name] = bool(value)
    return options


def option_errors(data: Mapping) -> dict[str, list[str]]:
    """Field → messages for options that cannot work together; {} when fine."""
    options = normalize_options(data)
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    profile = options["profile"]
    if profile and profile not in PROFILES:
        add("profile", _("Unknown profile; known profiles: %s.") % ", ".join(PROFILES))
    source = options["source"]
    if not source and not profile:
        add("source", _("Give the source's name, or choose a profile (it names its source)."))
    elif source and (slugify(source) != source or len(source) > 80):
        add(
            "source",
            _("Use lowercase letters, digits and hyphens only (at most 80), e.g. cdmx-fgj."),
        )
    for name in COLUMN_OPTIONS:
        if options[name] and len(options[name]) > 200:
            add(name, _("At most 200 characters."))
    if options["label"] and options["category"]:
        add(
            "label",
            _(
                "A label for every row and a category column do not go together: "
                "give one or the other."
            ),
        )
    if options["label"] and len(options["label"]) > LABEL_MAX_LENGTH:
        add("label", _("At most %(count)s characters.") % {"count": LABEL_MAX_LENGTH})
    if bool(options["x"]) != bool(options["y"]):
        add("y" if options["x"] else "x", _("X and Y columns go together."))
    if bool(options["lat"]) != bool(options["lon"]):
        add("lon" if options["lat"] else "lat", _("Latitude and longitude columns go together."))
    if (options["x"] or options["y"]) and (options["lat"] or options["lon"]):
        add("x", _("Give either latitude/longitude columns or X/Y columns, not both."))
    if (options["x"] or options["y"]) and not options["crs"]:
        add(
            "crs",
            _(
                "X/Y are projected coordinates and their CRS cannot be guessed: "
                "give it, e.g. EPSG:32718."
            ),
        )
    if options["crs"]:
        try:
            CRS.from_user_input(options["crs"])
        except (CRSError, ValueError, TypeError):
            add("crs", _("Unknown CRS; write it as EPSG:XXXX."))
    if options["timezone"]:
        try:
            zoneinfo.ZoneInfo(options["timezone"])
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            add("timezone", _("Unknown time zone; write it like America/Lima."))
    if options["family"] and options["family"] not in Family.values:
        add("family", _("Choose one of: %s.") % ", ".join(Family.values))
    if options["location_quality"] and options["location_quality"] not in LocationQuality.values:
        add("location_quality", _("Choose one of: %s.") % ", ".join(LocationQuality.values))
    return errors


# --- starting a job ------------------------------------------------------------------------


def safe_file_names(names: Iterable[str]) -> list[str]:
    """Plain, unique file names (no folders, no dots in front) keeping the suffix."""
    out: list[str] = []
    seen: set[str] = set()
    for number, name in enumerate(names, start=1):
        base = Path(str(name).replace("\\", "/")).name
        try:
            cleaned = get_valid_filename(base)
        except SuspiciousFileOperation:
            cleaned = ""
        suffix = Path(cleaned).suffix.lower()
        stem = Path(cleaned).stem.lstrip(".")[:100] or f"file-{number}"
        candidate = f"{stem}{suffix}"
        if candidate.lower() in seen:
            candidate = f"{stem}-{number}{suffix}"
        seen.add(candidate.lower())
        out.append(candidate)
    return out


def options_record(options: dict) -> dict:
    """What the batch keeps: the service's own layout (profile, columns, timezone, family,
    skip_bad) plus the source, location quality and dry run the job needs."""
    return {
        "source": options["source"],
        "profile": options["profile"],
        # As the command records them: --label is the columns' constant label.
        "columns": {
            **{name: options[name] for name in COLUMN_OPTIONS if options[name]},
            **({"constant_label": options["label"]} if options["label"] else {}),
        },
        "timezone": options["timezone"],
        "family": options["family"],
        "location_quality": options["location_quality"],
        "skip_bad": options["skip_bad"],
        "dry_run": options["dry_run"],
        "via": "web",
        # Chosen in the upload preview: the columns given and no others.
        **({"exact_columns": True} if options.get("exact_columns") else {}),
    }


def request_from_record(record: Mapping, paths: list[Path]) -> ImportRequest:
    return ImportRequest(
        paths=paths,
        source=record["source"],
        profile=profile_named(record.get("profile")),
        columns=ColumnMapping(**record.get("columns", {})),
        timezone=record.get("timezone"),
        family=record.get("family"),
        location_quality=record.get("location_quality"),
        skip_bad=bool(record.get("skip_bad")),
        dry_run=bool(record.get("dry_run")),
        exact_columns=bool(record.get("exact_columns")),
    )


def _save_upload(upload, path: Path) -> dict:
    digest = hashlib.sha256()
    size = 0
    with path.open("xb") as handle:
        for chunk in upload.chunks():
            handle.write(chunk)
            digest.update(chunk)
            size += len(chunk)
    return {"name": path.name, "sha256": digest.hexdigest(), "bytes": size}


def start_web_import(*, user, uploaded_files, options: Mapping) -> ImportBatch:
    """Checks the upload and options, saves the files and queues the import job.

    Raises ValidationError (field → messages; "files" for the uploads) and saves nothing
    when anything is wrong. Returns the batch as it is after enqueueing (with an immediate
    task backend, already finished).
    """
    uploaded_files = list(uploaded_files)
    errors = option_errors(options)
    if problems := upload_errors(uploaded_files):
        errors["files"] = problems
    if errors:
        raise ValidationError(errors)
    exact_columns = bool(options.get("exact_columns"))
    options = {**normalize_options(options), "exact_columns": exact_columns}
    if not options["source"]:
        options["source"] = PROFILES[options["profile"]].source
    record = options_record(options)

    names = safe_file_names(upload.name for upload in uploaded_files)
    # The batch's lock is held until it commits: the sweep never takes the folder of a
    # batch it cannot see yet for an orphan (see sweep_orphans).
    with ExitStack() as creating, transaction.atomic():
        source = get_or_create_source(request_from_record(record, []))
        batch = ImportBatch.objects.create(
            source=source,
            created_by=user if getattr(user, "is_authenticated", False) else None,
            status=ImportBatch.Status.QUEUED,
            options=record,
            skip_bad=options["skip_bad"],
        )
        creating.enter_context(job_lock(IMPORT_BATCH_JOBS, batch.pk, wait=True))
        directory = upload_dir(batch.pk)
        try:
            directory.mkdir(parents=True, exist_ok=False)
            batch.files = [
                _save_upload(upload, directory / name)
                for upload, name in zip(uploaded_files, names, strict=True)
            ]
            batch.save(update_fields=["files"])
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise

    from incidents.tasks import run_import_batch

    try:
        run_import_batch.enqueue(batch.pk)
    except BaseException as exc:
        _fail_unfinished(batch.pk, _("The import job could not be queued: %s") % exc)
        shutil.rmtree(directory, ignore_errors=True)
        raise
    batch.refresh_from_db()
    return batch


# --- the job -------------------------------------------------------------------------------


class ProgressWriter:
    """The service's progress callback: throttled ``update(progress=...)`` of the batch,
    written on a connection of its own while the job is inside the import's transaction
    (see the module doc)."""

    def __init__(self, batch_id: int):
        self.batch_id = batch_id
        self.latest = 0.0
        self.written = 0.0
        self.written_at = 0.0
        self.writes = 0

    def __call__(self, fraction: float) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        self.latest = fraction
        now = time.monotonic()
        if fraction < 1.0 and (
            now - self.written_at < PROGRESS_MIN_INTERVAL_S
            or fraction - self.written < PROGRESS_MIN_STEP
        ):
            return
        if connection.in_atomic_block:
            writer = threading.Thread(target=self._write_elsewhere, args=(fraction,))
            writer.start()
            writer.join(timeout=5)
        else:
            self._write(fraction)
        self.written, self.written_at = fraction, now
        self.writes += 1

    def _write(self, fraction: float) -> None:
        ImportBatch.objects.filter(pk=self.batch_id).update(progress=round(fraction, 4))

    def _write_elsewhere(self, fraction: float) -> None:
        try:
            self._write(fraction)
        except Exception:  # progress is best effort: the import itself must go on
            logger.warning("progress of import batch %s not written", self.batch_id, exc_info=True)
        finally:
            connections.close_all()  # this thread's connections only


def _fail_unfinished(batch_id: int, error: str) -> None:
    """Marks a batch failed unless the service finished it already."""
    ImportBatch.objects.filter(
        pk=batch_id, status__in=[ImportBatch.Status.QUEUED, ImportBatch.Status.RUNNING]
    ).update(
        status=ImportBatch.Status.FAILED,
        finished_at=timezone.now(),
        progress=1.0,
        report={"error": error},
    )


def _fail_unfinished_anyway(batch_id: int, error: str) -> None:
    """_fail_unfinished, once more on a fresh connection when the job's is lost. If the
    database cannot be reached, fail_abandoned_batches fails the batch once it is next seen
    (the job's lock went with its connection)."""
    try:
        _fail_unfinished(batch_id, error)
        return
    except (OperationalError, InterfaceError):
        if connection.in_atomic_block:
            raise
    with suppress(DatabaseError):
        connection.close()
    try:
        _fail_unfinished(batch_id, error)
    except (OperationalError, InterfaceError):
        logger.warning("import batch %s not marked failed: no database", batch_id)


def _abandoned_message() -> str:
    return _(
        "The import job stopped before it finished (the worker was stopped or "
        "crashed). Nothing was written: upload the files again."
    )


def _fail_abandoned_batch(batch_id: int, statuses=(ImportBatch.Status.RUNNING,)) -> int:
    """Fails a batch whose job is gone (its lock held by the caller), removes its upload
    folder and ends its task rows."""
    failed = ImportBatch.objects.filter(pk=batch_id, status__in=statuses).update(
        status=ImportBatch.Status.FAILED,
        finished_at=timezone.now(),
        progress=1.0,
        report={"error": _abandoned_message()},
    )
    if failed:
        shutil.rmtree(upload_dir(batch_id), ignore_errors=True)
        _end_task_rows(batch_id)
    return failed


def fail_abandoned_batches() -> int:
    """Marks failed every RUNNING batch whose job is gone, and sweeps what dead jobs left
    behind (sweep_orphans); returns how many batches were failed. Cheap: only RUNNING
    batches, upload folders that exist and RUNNING task rows are looked at."""
    running = ImportBatch.objects.filter(status=ImportBatch.Status.RUNNING)
    failed = fail_abandoned(running, IMPORT_BATCH_JOBS, _fail_abandoned_batch)
    return failed + sweep_orphans()["batches"]


# --- what dead jobs leave behind -------------------------------------------------------------


class ImportJobAbandoned(Exception):
    """Recorded as the error of the task row of an import job found dead."""


def _import_task_rows():
    """The task rows (django-tasks-db) of import jobs; None without that backend."""
    if not apps.is_installed("django_tasks_db"):
        return None
    from django_tasks_db.models import DBTaskResult

    from incidents.tasks import run_import_batch

    return DBTaskResult.objects.filter(task_path=run_import_batch.module_path)


def _end_task_rows(batch_id: int) -> int:
    """Marks failed the RUNNING task rows of a batch whose job is gone (the worker that
    ran it died, so nobody else will); returns how many."""
    rows = _import_task_rows()
    if rows is None:
        return 0
    ended = 0
    with transaction.atomic():
        for row in rows.running().filter(args_kwargs__args=[batch_id]).select_for_update():
            row.set_failed(ImportJobAbandoned(_abandoned_message()))
            ended += 1
    return ended


def sweep_orphans() -> dict[str, int]:
    """Removes the upload folders of batches that ended or do not exist, and ends what
    dead workers left: task rows still RUNNING long after their batch ended (or whose
    batch is gone), and QUEUED batches whose task started long ago but never took the
    batch. Each under the batch's job lock, so nothing a living job holds is touched.
    Returns how many folders, task rows and batches it ended."""
    swept = {"folders": _remove_orphan_folders(), "tasks": 0, "batches": 0}
    rows = _import_task_rows()
    if rows is None:
        return swept
    running = {}
    for args_kwargs, started_at in rows.running().values_list("args_kwargs", "started_at"):
        args = (args_kwargs or {}).get("args") or [None]
        if isinstance(args[0], int):
            running.setdefault(args[0], []).append(started_at)
    if not running:
        return swept
    long_ago = timezone.now() - ORPHAN_TASK_AFTER
    states = {
        pk: (status, finished_at)
        for pk, status, finished_at in ImportBatch.objects.filter(pk__in=running).values_list(
            "pk", "status", "finished_at"
        )
    }
    for batch_id, starts in running.items():
        status, finished_at = states.get(batch_id, (None, None))
        ended = status is None or (
            status in FINISHED_STATUSES and (finished_at or long_ago) <= long_ago
        )
        never_taken = status == ImportBatch.Status.QUEUED and all(
            started is not None and started <= long_ago for started in starts
        )
        if not (ended or never_taken):
            continue
        with job_lock(IMPORT_BATCH_JOBS, batch_id) as acquired:
            if not acquired:
                continue
            if never_taken:
                swept["batches"] += _fail_abandoned_batch(batch_id, (ImportBatch.Status.QUEUED,))
            else:
                swept["tasks"] += _end_task_rows(batch_id)
    return swept


def _remove_orphan_folders() -> int:
    root = Path(settings.INCIDENT_UPLOAD_ROOT) / UPLOAD_FOLDER
    try:
        entries = list(root.iterdir())
    except OSError:  # no folder yet
        return 0
    # Batch ids only (an advisory-lock key holds 32 bits); a link is never followed.
    folders = {
        int(path.name): path
        for path in entries
        if re.fullmatch(r"[0-9]{1,10}", path.name) and int(path.name) < 2**31
        if path.is_dir() and not path.is_symlink()
    }
    unfinished = ImportBatch.objects.exclude(status__in=FINISHED_STATUSES)
    keep = set(unfinished.filter(pk__in=folders).values_list("pk", flat=True))
    removed = 0
    for batch_id, folder in folders.items():
        if batch_id in keep:
            continue
        # A batch being created holds its lock until it commits (start_web_import).
        with job_lock(IMPORT_BATCH_JOBS, batch_id) as acquired:
            if not acquired or unfinished.filter(pk=batch_id).exists():
                continue
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def run_web_import(batch_id: int) -> dict:
    """The job's body: runs the import of a queued batch once, then deletes its files."""
    directory = upload_dir(batch_id)
    batch = ImportBatch.objects.select_related("created_by").filter(pk=batch_id).first()
    if batch is None:
        shutil.rmtree(directory, ignore_errors=True)
        return {"batch": batch_id, "status": "missing"}
    with job_lock(IMPORT_BATCH_JOBS, batch_id) as acquired:
        if not acquired:
            return {"batch": batch_id, "status": batch.status}  # another job has it
        return _run_claimed(batch, directory)


def _run_claimed(batch: ImportBatch, directory: Path) -> dict:
    batch_id = batch.pk
    # Claim it: a job run twice (a retry, a second worker) never imports the files twice.
    claimed = ImportBatch.objects.filter(pk=batch_id, status=ImportBatch.Status.QUEUED).update(
        status=ImportBatch.Status.RUNNING, progress=0.0
    )
    if not claimed:
        batch.refresh_from_db(fields=["status"])
        if is_finished(batch):
            shutil.rmtree(directory, ignore_errors=True)
        return {"batch": batch_id, "status": batch.status}
    try:
        request = request_from_record(
            batch.options, [directory / entry["name"] for entry in batch.files]
        )
        result = import_incidents(
            request=request,
            user=batch.created_by,
            batch=batch,
            progress=ProgressWriter(batch_id),
        )
        status = result.status
    except ImportRefused:
        status = ImportBatch.Status.FAILED
    except IncidentFileError as exc:
        _fail_unfinished(batch_id, str(exc))
        status = ImportBatch.Status.FAILED
    except ImportInterrupted:
        # The service failed the batch already, or could not reach the database to: then
        # fail_abandoned_batches does (the lock went with the lost connection).
        logger.warning("import batch %s interrupted", batch_id, exc_info=True)
        raise
    except Exception as exc:
        logger.exception("import batch %s failed", batch_id)
        _fail_unfinished_anyway(batch_id, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return {"batch": batch_id, "status": str(status)}
