"""Incident import: validated chunks, each point given its region, district and
neighborhood → COPY BINARY into a staging table → duplicate ids refused → one INSERT that
upserts the chunk by (source, external id).

Two cores serve the import: while PostgreSQL writes chunk n (on a thread of ours that owns
the cursor meanwhile), Python reads and validates chunk n + 1. All or nothing by default:
any refused row rolls the whole import back and the report names every one. An import
bigger than the table it goes into builds the secondary indexes once at the end instead of
row by row (see _set_indexes_aside).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext
from psycopg2.errors import DeadlockDetected, LockNotAvailable

from config.jobs import IMPORT_BATCH_JOBS, job_lock
from incidents.models import Category, ImportBatch, IncidentSource
from incidents.models import RefusedRow as RefusedRowModel
from incidents.profiles import PROFILES, Profile
from incidents.services.reading import (
    ChunkValidator,
    ColumnMapping,
    IncidentFileError,
    ReadOptions,
    RefusedRow,
    csv_header,
    inspect_csv,
    postgres_microseconds,
    read_csv_chunks,
    read_vector_points,
    sha256_of,
)
from neighborhoods.locate import AreaIndex

VECTOR_SUFFIXES = {".geojson", ".json", ".gpkg"}
UNCLASSIFIED_PREFIX = "unclassified-"

_LAT_NAMES = ("lat", "latitude", "latitud", "y_lat")
_LON_NAMES = ("lon", "lng", "long", "longitude", "longitud", "x_lon")
# Without a profile, columns with these exact names (any case) play these roles. The id is
# never guessed: a column named "id" may be a row number that is not unique per source.
_GUESSED_NAMES = {
    "date": ("date", "datetime", "occurred_at", "fecha"),
    "time": ("time", "hora"),
    "category": ("category", "type", "offense", "crime_type", "delito"),
}


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


@dataclass
class ImportRequest:
    paths: Sequence[Path]
    source: str
    profile: Profile | None = None
    columns: ColumnMapping = field(default_factory=ColumnMapping)
    timezone: str | None = None
    family: str | None = None
    location_quality: str | None = None
    skip_bad: bool = False
    dry_run: bool = False
    # Never set the table's indexes aside, however large the import (see _set_indexes_aside).
    keep_indexes: bool = False


@dataclass
class ImportResult:
    batch_id: int | None
    dry_run: bool
    status: str
    files: list[dict]
    rows_read: int = 0
    rows_created: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    rows_unassigned: int = 0
    refused: list[RefusedRow] = field(default_factory=list)
    unmapped_labels: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    duration_s: float = 0.0
    # The secondary indexes set aside during a bulk load and built again before the commit.
    indexes_rebuilt: list[str] = field(default_factory=list)

    @property
    def rows_refused(self) -> int:
        return len(self.refused)

    def lines(self, *, limit: int = 200) -> list[str]:
        written = "would be written" if self.dry_run else "written"
        if self.status == ImportBatch.Status.FAILED:
            written = "NOT written"
        out = [
            f"{self.rows_read} rows read from {len(self.files)} file(s) in {self.duration_s:.1f} s: "
            f"{self.rows_created} created, {self.rows_updated} updated, {self.rows_unchanged} "
            f"unchanged ({written}), {self.rows_refused} refused, "
            f"{self.rows_unassigned} inside a region but outside all its districts"
        ]
        if self.indexes_rebuilt:
            out.append(
                "more rows than the incident table held: its indexes were built once after "
                f"loading instead of row by row ({', '.join(self.indexes_rebuilt)})"
            )
        for label, count in sorted(self.unmapped_labels.items(), key=lambda kv: (-kv[1], kv[0])):
            out.append(f"unclassified label (map it to a category): {label!r} × {count}")
        for row in self.refused[:limit]:
            # Vector files are numbered by feature, CSV files by spreadsheet row.
            unit = "feature" if Path(row.file_name).suffix.lower() in VECTOR_SUFFIXES else "row"
            out.append(f"refused: {row.file_name} {unit} {row.row_number}: {row.reason}")
        if self.rows_refused > limit:
            out.append(
                f"… and {self.rows_refused - limit} more refused rows (see the batch report)"
            )
        if self.status == ImportBatch.Status.FAILED:
            out.append(
                "nothing was written: fix the refused rows, or run again with --skip-bad to "
                "write the good rows and keep the refused ones in the batch report"
            )
        elif self.dry_run:
            out.append("dry run: nothing was written")
        return out


# --- column resolution -------------------------------------------------------------------


def _first_present(candidates: Sequence[str], header: list[str]) -> str | None:
    lowered = {h.lower(): h for h in header}
    for name in candidates:
        if name in header:
            return name
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None


def resolve_columns(request: ImportRequest, header: list[str], file_name: str) -> ColumnMapping:
    """Explicit options win over the profile; the profile over name guessing."""
    given = request.columns
    profile = request.profile
    mapping = ColumnMapping(crs=given.crs, constant_label=given.constant_label)
    for role in ("id", "date", "time", "category", "lat", "lon", "x", "y"):
        explicit = getattr(given, role)
        if explicit:
            if explicit not in header:
                raise IncidentFileError(
                    f"{file_name}: column {explicit!r} (--{role}) not found; columns are: "
                    + ", ".join(header)
                )
            setattr(mapping, role, explicit)
        elif profile is not None and role in ("id", "date", "time", "category", "lat", "lon"):
            setattr(mapping, role, _first_present(getattr(profile, role), header))
        elif profile is None and role in _GUESSED_NAMES:
            setattr(mapping, role, _first_present(_GUESSED_NAMES[role], header))
    if profile is not None and mapping.constant_label is None and mapping.category is None:
        mapping.constant_label = profile.constant_label
    if mapping.x or mapping.y:
        if not (mapping.x and mapping.y):
            raise IncidentFileError("--x and --y go together")
    elif not (mapping.lat and mapping.lon):
        mapping.lat = mapping.lat or _first_present(_LAT_NAMES, header)
        mapping.lon = mapping.lon or _first_present(_LON_NAMES, header)
        if not (mapping.lat and mapping.lon):
            projected = _first_present(("x", "easting", "x_coord"), header)
            hint = (
                f" It has projected columns ({projected!r}…): use --x/--y with --crs EPSG:XXXX."
                if projected
                else ""
            )
            raise IncidentFileError(
                f"{file_name}: no latitude/longitude columns found; name them with --lat/--lon "
                f"or --x/--y --crs.{hint} Columns are: " + ", ".join(header)
            )
    if not mapping.date:
        raise IncidentFileError(
            f"{file_name}: no date column; name it with --date. Columns are: " + ", ".join(header)
        )
    if not mapping.category and not mapping.constant_label:
        raise IncidentFileError(
            f"{file_name}: no category column; name it with --category. Columns are: "
            + ", ".join(header)
        )
    return mapping


# --- labels ----------------------------------------------------------------------------------


class LabelMapper:
    """Source labels to (SourceLabel id, category id), creating a SourceLabel for every new
    label on the way (by the profile's rules, else an unclassified category of its own).
    Created inside the import's transaction: a refused import leaves none behind."""

    def __init__(self, request: ImportRequest, source: IncidentSource):
        from incidents.models import SourceLabel

        self.request = request
        self.source = source
        # Held until the import commits: map_label (which locks a label FOR UPDATE before
        # moving it and its incidents to another category) waits for this import, or this
        # import waits for it and reads the new mapping. Either way no incident is written
        # with a category its label has left.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM incidents_sourcelabel WHERE source_id = %s FOR SHARE", [source.pk]
            )
        self.known = {
            sl.label: (sl.pk, sl.category_id, sl.category.unclassified)
            for sl in SourceLabel.objects.filter(source=source).select_related("category")
        }
        self.counts: dict[str, int] = {}
        self._categories = None
        # Held around this object's statements once a _ChunkWriter shares the connection.
        self.db_lock = contextlib.nullcontext()

    def ids(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        codes, uniques = pd.factorize(pd.Series(labels, dtype=object), sort=False)
        label_ids = np.empty(len(uniques), dtype=np.int64)
        category_ids = np.empty(len(uniques), dtype=np.int64)
        per_code = np.bincount(codes, minlength=len(uniques))
        for code, label in enumerate(uniques):
            label_ids[code], category_ids[code], _ = self._get(label)
            self.counts[label] = self.counts.get(label, 0) + int(per_code[code])
        return label_ids[codes], category_ids[codes]

    def forget(self, label_ids: list[int]) -> None:
        """Rows removed from staging (duplicates) no longer count for their label."""
        by_id = {pk: label for label, (pk, _, _) in self.known.items()}
        for pk in label_ids:
            self.counts[by_id[pk]] -= 1

    def unmapped(self) -> dict[str, int]:
        return {
            label: count for label, count in self.counts.items() if count and self.known[label][2]
        }

    def _get(self, label: str) -> tuple[int, int, bool]:
        if label in self.known:
            return self.known[label]
        # get_or_create opens a savepoint: a chunk written inside it could be rolled back
        # with it, so the writer waits.
        with self.db_lock:
            return self._create(label)

    def _create(self, label: str) -> tuple[int, int, bool]:
        from incidents.models import SourceLabel

        request, source = self.request, self.source
        if self._categories is None:
            self._categories = {c.code: c for c in Category.objects.filter(unclassified=False)}
        code = request.profile.category_for(label) if request.profile else None
        category = self._categories.get(code) if code else None
        if category is None:
            family = request.family or (
                request.profile.family if request.profile else source.default_family
            )
            # Labels that slugify alike ("Daño", "DANO") still get categories of their own.
            slug = slugify(f"{source.name} {label}")[:96]
            digest = hashlib.sha1(f"{source.name}\n{label}".encode(), usedforsecurity=False)
            category, _ = Category.objects.get_or_create(
                code=f"{UNCLASSIFIED_PREFIX}{slug}-{digest.hexdigest()[:8]}",
                defaults={
                    "name_es": f"Sin clasificar: {label or '(vacío)'}"[:200],
                    "name_en": f"Unclassified: {label or '(blank)'}"[:200],
                    "family": family,
                    "unclassified": True,
                },
            )
        made = SourceLabel.objects.create(source=source, label=label, category=category)
        self.known[label] = (made.pk, category.pk, category.unclassified)
        return self.known[label]


# --- staging ---------------------------------------------------------------------------------

# Staged rows are complete incidents: areas and labels are resolved before COPY, so the
# INSERT only builds the point and upserts. The staging table holds one chunk at a time;
# incident_seen holds every id staged so far, with where it was first seen, so a later
# chunk's duplicates are found without keeping the ids in this process.
_STAGING_DDL = """
CREATE TEMP TABLE incident_seen (
    external_id text COLLATE "C" PRIMARY KEY,
    file_no integer NOT NULL,
    row_no integer NOT NULL
);
CREATE TEMP TABLE incident_staging (
    file_no integer NOT NULL,
    row_no integer NOT NULL,
    external_id text COLLATE "C" NOT NULL,
    lon double precision NOT NULL,
    lat double precision NOT NULL,
    occurred_at timestamptz NOT NULL,
    occurred_until timestamptz,
    time_precision text NOT NULL,
    label_id bigint NOT NULL,
    category_id bigint NOT NULL,
    region_id bigint NOT NULL,
    district_id bigint,
    neighborhood_id bigint
)
"""
_STAGED = (
    "file_no", "row_no", "external_id", "lon", "lat", "occurred_at", "occurred_until",
    "time_precision", "label_id", "category_id", "region_id", "district_id", "neighborhood_id",
)  # fmt: skip
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, no flags, no extension
_COPY_TRAILER = b"\xff\xff"


def _text_field(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 bytes of every value, concatenated, and the byte length of each."""
    strings = values.tolist()
    blob = "".join(strings).encode()
    lengths = np.fromiter(map(len, strings), dtype=np.int64, count=len(strings))
    if len(blob) != int(lengths.sum()):  # not all ASCII: lengths in bytes, one by one
        encoded = [s.encode() for s in strings]
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        blob = b"".join(encoded)
    return np.frombuffer(blob, dtype=np.uint8), lengths


def binary_copy(fields: list[tuple[str, np.ndarray, np.ndarray | None]]) -> bytes:
    """Rows in PostgreSQL's COPY BINARY format, built column by column with numpy.

    ``fields`` are (kind, values, null mask) with kind one of int4, int8, float8, text,
    timestamptz (int64 microseconds since 2000-01-01 UTC). Each row is a 16-bit field
    count, then per field a 32-bit byte length (-1 for NULL) and the big-endian value."""
    count = len(fields[0][1])
    widths = {"int4": 4, "int8": 8, "float8": 8, "timestamptz": 8}
    numbers = {"int4": ">i4", "int8": ">i8", "float8": ">f8", "timestamptz": ">i8"}
    prepared = []
    row_size = np.full(count, 2, dtype=np.int64)
    for kind, values, nulls in fields:
        if kind == "text":
            data, size = _text_field(values)
        else:
            data = np.ascontiguousarray(values.astype(numbers[kind])).view(np.uint8)
            size = np.full(count, widths[kind], dtype=np.int64)
        if nulls is not None:
            size = np.where(nulls, 0, size)
        prepared.append((kind, data, size, nulls))
        row_size += 4 + size
    starts = np.zeros(count, dtype=np.int64)
    np.cumsum(row_size[:-1], out=starts[1:])
    out = np.empty(int(row_size.sum()), dtype=np.uint8)
    out[starts[:, None] + np.arange(2)] = np.frombuffer(
        len(fields).to_bytes(2, "big"), dtype=np.uint8
    )
    position = starts + 2
    for kind, data, size, nulls in prepared:
        length = size.astype(np.int32) if nulls is None else np.where(nulls, -1, size)
        header = length.astype(">i4").view(np.uint8).reshape(count, 4)
        out[position[:, None] + np.arange(4)] = header
        position += 4
        if kind == "text":
            offsets = np.zeros(count, dtype=np.int64)
            np.cumsum(size[:-1], out=offsets[1:])
            out[np.repeat(position - offsets, size) + np.arange(len(data))] = data
        else:
            width = widths[kind]
            rows = data.reshape(count, width)
            present = slice(None) if nulls is None else ~nulls
            out[position[present, None] + np.arange(width)] = rows[present]
        position += size
    return _COPY_HEADER + out.tobytes() + _COPY_TRAILER


_COPY_SQL = f"COPY incident_staging ({', '.join(_STAGED)}) FROM STDIN WITH (FORMAT binary)"
# The count of rows that went in says whether there is any duplicate to look for (most
# imports: none). Unsorted (a sort costs more than the check): of a chunk's own duplicates
# any may go in, so _FIRST_SEEN_SQL then makes it the first.
_SEEN_SQL = """
INSERT INTO incident_seen (external_id, file_no, row_no)
SELECT external_id, file_no, row_no FROM incident_staging
ON CONFLICT (external_id) DO NOTHING
"""
_FIRST_SEEN_SQL = """
UPDATE incident_seen f SET file_no = c.file_no, row_no = c.row_no
FROM (SELECT DISTINCT ON (external_id) external_id, file_no, row_no
      FROM incident_staging ORDER BY external_id, file_no, row_no) c
WHERE c.external_id = f.external_id AND (c.file_no, c.row_no) < (f.file_no, f.row_no)
"""
_DUPLICATES_SQL = """
DELETE FROM incident_staging s USING incident_seen f
WHERE f.external_id = s.external_id AND (f.file_no, f.row_no) <> (s.file_no, s.row_no)
RETURNING s.file_no, s.row_no, s.external_id, f.file_no, f.row_no,
          s.label_id, s.district_id IS NULL
"""
# Chunks ready for the database, waiting while it writes the one before: memory stays flat
# in the number of rows. One is enough: the database is the slower half.
WRITE_QUEUE_CHUNKS = 1

# An import that brings more rows than the incident table holds (a city's first load, a
# backfill of years) sets its secondary indexes aside and builds them again before it
# commits: one sorted build of the point GiST costs ~1.6 s per million rows, keeping it
# current row by row ~6.5 s. The unique (source, external id) index stays: it decides the
# upsert. The price is an ACCESS EXCLUSIVE lock on the incident table from the first chunk
# written until the import commits (readers of incidents wait), so smaller imports keep
# the indexes, and so does an import that cannot get the lock quickly (a long reader,
# another import), a dry run, ``--keep-indexes`` and INCIDENT_BULK_LOAD = False. The
# thresholds are settings (INCIDENT_BULK_LOAD_MIN_ROWS, INCIDENT_BULK_LOAD_LOCK_TIMEOUT_MS).
# Each non-unique index with its definition, and whether building it again from that
# definition gives it back as it was: valid, not the table's CLUSTER index, in the
# default tablespace, without a comment (pg_get_indexdef carries none of these).
_SECONDARY_INDEXES_SQL = """
SELECT i.indexrelid::regclass::text, c.relname, pg_get_indexdef(i.indexrelid),
       i.indisvalid AND NOT i.indisclustered AND c.reltablespace = 0
       AND obj_description(i.indexrelid, 'pg_class') IS NULL
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = 'incidents_incident'::regclass AND NOT i.indisunique
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
ORDER BY c.relname
"""


@dataclass
class _BulkLoad:
    """What an import that set the incident table's indexes aside may do."""

    # (name, definition) of each index dropped, built again by _rebuild_indexes before
    # the transaction commits (a rollback brings them back by itself: DDL is transactional).
    indexes: list[tuple[str, str]]
    # Nothing of the source was stored and nobody else can write meanwhile (the lock):
    # its rows, already unique within the import, cannot conflict, so a plain INSERT
    # does, without ON CONFLICT's second index probe and speculative insertion per row.
    source_is_new: bool


class _NoBulkLoad(Exception):
    pass


def _table_holds(cursor, rows: int) -> bool:
    # Counting stops at ``rows``: cheap next to the import itself, and exact where
    # reltuples would be stale right after a TRUNCATE or a large delete.
    cursor.execute("SELECT count(*) FROM (SELECT FROM incidents_incident LIMIT %s) t", [rows])
    return cursor.fetchone()[0] >= rows


def _set_indexes_aside(cursor, expected_rows: int, source_id: int) -> _BulkLoad | None:
    """Drops the incident table's secondary indexes when the import is expected to bring
    more rows than the table holds, and it can have the table to itself at once."""
    if not settings.INCIDENT_BULK_LOAD or expected_rows < settings.INCIDENT_BULK_LOAD_MIN_ROWS:
        return None
    cursor.execute(
        "SELECT current_setting('lock_timeout'), current_setting('transaction_isolation')"
    )
    lock_timeout, isolation = cursor.fetchone()
    bulk = None
    cursor.execute("SAVEPOINT incident_bulk_load")
    try:
        # Most imports stop at this count, taken without the lock. Rolling back to the
        # savepoint lets go of the ACCESS SHARE lock it took: two imports each keeping one
        # would deadlock when both asked for ACCESS EXCLUSIVE.
        if _table_holds(cursor, expected_rows):
            raise _NoBulkLoad
        cursor.execute("ROLLBACK TO SAVEPOINT incident_bulk_load")
        cursor.execute(
            "SELECT set_config('lock_timeout', %s, true)",
            [str(settings.INCIDENT_BULK_LOAD_LOCK_TIMEOUT_MS)],
        )
        cursor.execute("LOCK TABLE incidents_incident IN ACCESS EXCLUSIVE MODE")
        if _table_holds(cursor, expected_rows):  # again, now that nobody else can write
            raise _NoBulkLoad
        cursor.execute(_SECONDARY_INDEXES_SQL)
        indexes = cursor.fetchall()
        if not all(rebuilt_as_it_was for *_, rebuilt_as_it_was in indexes):
            raise _NoBulkLoad
        for qualified_name, *_ in indexes:
            cursor.execute(f"DROP INDEX {qualified_name}")  # noqa: S608 - from regclass::text
        # Under READ COMMITTED this statement sees every commit made before the lock was
        # granted; an older snapshot (REPEATABLE READ) might not, so no shortcut there.
        cursor.execute(
            "SELECT NOT EXISTS (SELECT FROM incidents_incident WHERE source_id = %s)",
            [source_id],
        )
        source_is_new = cursor.fetchone()[0] and isolation == "read committed"
        bulk = _BulkLoad(
            indexes=[(name, definition) for _, name, definition, _ in indexes],
            source_is_new=source_is_new,
        )
    except (LockNotAvailable, DeadlockDetected, _NoBulkLoad):
        cursor.execute("ROLLBACK TO SAVEPOINT incident_bulk_load")
    cursor.execute("RELEASE SAVEPOINT incident_bulk_load")
    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [lock_timeout])
    return bulk


def _rebuild_indexes(cursor, indexes: list[tuple[str, str]]) -> None:
    for _, definition in indexes:
        cursor.execute(definition)


class _ChunkWriter:
    """The database half of the import: a thread that stages, checks and upserts the chunks
    in their order on the import's own connection and transaction, while the calling thread
    reads and validates the next ones (psycopg2 lets the GIL go while a statement runs).

    Only this thread uses the connection while it writes a chunk; the calling thread's
    statements (new labels, points near a region) take ``lock`` too. Errors are kept and
    raised in the calling thread, inside the import's transaction."""

    def __init__(
        self,
        raw_connection,
        params: dict,
        upsert: Callable[[], bool],
        *,
        bulk_load: bool = True,
    ):
        self.params = params
        self.upsert = upsert  # false once the import is bound to be refused: it writes nothing
        self.bulk_load_undecided = bulk_load  # decided before the first upsert
        self.bulk: _BulkLoad | None = None  # see _set_indexes_aside
        self.lock = threading.Lock()
        self.cursor = raw_connection.cursor()
        self.queue: queue.Queue = queue.Queue(maxsize=WRITE_QUEUE_CHUNKS)
        # (file_no, row_no, external_id, first file_no, first row_no, label_id, unassigned)
        self.duplicates: list[tuple] = []
        self.created = self.updated = 0
        self.busy_s = 0.0
        self.error: BaseException | None = None
        self.abandoned = False
        self.thread = threading.Thread(target=self._run, name="incident-writer", daemon=True)
        self.thread.start()

    def put(self, payload: bytes, rows: int, expected_rows: int) -> None:
        """Queues a chunk; ``expected_rows`` is the import's size as estimated so far."""
        self._raise_error()
        self.queue.put((payload, rows, expected_rows))

    def finish(self) -> None:
        """Waits until every chunk is written."""
        self._stop()
        self._raise_error()

    def __enter__(self) -> _ChunkWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abandoned = True  # the transaction rolls back: the queued chunks are moot
        self._stop()
        if exc_type is not None:
            # A statement of this thread failing aborts the transaction, and with it the
            # calling thread's next one: the first error is the one to tell.
            self._raise_error()

    def _stop(self) -> None:
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
            self.cursor.close()

    def _raise_error(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            with connection.wrap_database_errors:  # the ORM's exception classes
                raise error

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is not None or self.abandoned:
                continue  # drained, so the calling thread never blocks on a full queue
            try:
                started = time.perf_counter()
                with self.lock:
                    self._write(*item)
                self.busy_s += time.perf_counter() - started
            except BaseException as exc:  # raised in the calling thread
                self.error = exc

    def _write(self, payload: bytes, rows: int, expected_rows: int) -> None:
        cursor = self.cursor
        cursor.execute("TRUNCATE incident_staging")
        # COPY is the fastest way into PostgreSQL, and its binary form the cheapest to
        # parse; the ORM has no COPY. In one piece: psycopg2 takes the GIL back from the
        # reading thread for every piece it reads.
        cursor.copy_expert(_COPY_SQL, io.BytesIO(payload), size=len(payload))
        cursor.execute(_SEEN_SQL)
        if cursor.rowcount < rows:
            cursor.execute(_FIRST_SEEN_SQL)
            cursor.execute(_DUPLICATES_SQL)
            removed = cursor.fetchall()
            self.duplicates.extend(removed)
            rows -= len(removed)
        if rows and self.upsert():
            if self.bulk_load_undecided:
                self.bulk_load_undecided = False
                self.bulk = _set_indexes_aside(cursor, expected_rows, self.params["source_id"])
            created, updated = _insert_staged(
                cursor, rows, self.params, upsert=not (self.bulk and self.bulk.source_is_new)
            )
            self.created += created
            self.updated += updated


@dataclass
class _Staging:
    """What went into the staging table, and what was refused on the way."""

    areas: AreaIndex
    labels: LabelMapper
    writer: _ChunkWriter | None = None
    refused: list[RefusedRow] = field(default_factory=list)
    staged: int = 0
    unassigned: int = 0
    # Rows the whole import is expected to read: the rows of the files read, and the
    # current file's rows per byte so far applied to the rest of it and to the later files
    # of its kind (a GeoJSON file spends far more bytes on a row than a CSV file).
    expected_rows: int = 0
    rows_before_file: int = 0
    later_bytes_of_same_kind: list[int] = field(default_factory=list)

    def expect(self, file_no: int, rows: int, bytes_read: int, file_bytes: int) -> None:
        self.expected_rows = self.rows_before_file + _expected_rows(
            rows, bytes_read, file_bytes + self.later_bytes_of_same_kind[file_no]
        )

    def attach(self, writer: _ChunkWriter) -> None:
        self.writer = writer
        self.areas.db_lock = self.labels.db_lock = writer.lock

    def refuse_duplicates(self, file_names: list[str]) -> None:
        """The later rows of an id seen twice, each naming the first."""
        removed = self.writer.duplicates
        self.staged -= len(removed)
        self.unassigned -= sum(1 for row in removed if row[6])
        self.labels.forget([row[5] for row in removed])
        self.refused.extend(
            RefusedRow(
                file_names[file_no],
                row_no,
                f"duplicate id {external_id!r} (first at {file_names[first_file]} row {first_row})",
            )
            for file_no, row_no, external_id, first_file, first_row, _, _ in removed
        )


def _stage_chunk(cursor, staging: _Staging, chunk, frame, row_numbers, file_name) -> None:
    staging.refused.extend(chunk.refused)
    good = chunk.good
    if good.empty:
        return
    region, district, neighborhood = staging.areas.assign(
        cursor, good["lon"].to_numpy(), good["lat"].to_numpy()
    )
    outside = region == AreaIndex.NONE
    if outside.any():
        positions = np.searchsorted(row_numbers, good["row_no"].to_numpy()[outside])
        staging.refused.extend(
            RefusedRow(file_name, int(row_numbers[p]), "outside every loaded region",
                       frame.iloc[p].to_dict())
            for p in positions
        )  # fmt: skip
        keep = ~outside
        good, region = good[keep], region[keep]
        district, neighborhood = district[keep], neighborhood[keep]
        if good.empty:
            return
    label_ids, category_ids = staging.labels.ids(good["label"].to_numpy())
    occurred_at, _ = postgres_microseconds(good["occurred_at"].dt.tz_localize(None).to_numpy())
    until, no_until = postgres_microseconds(good["occurred_until"].dt.tz_localize(None).to_numpy())
    payload = binary_copy(
        [
            ("int4", good["file_no"].to_numpy(), None),
            ("int4", good["row_no"].to_numpy(), None),
            ("text", good["external_id"].to_numpy(), None),
            ("float8", good["lon"].to_numpy(), None),
            ("float8", good["lat"].to_numpy(), None),
            ("timestamptz", occurred_at, None),
            ("timestamptz", until, no_until),
            ("text", good["time_precision"].to_numpy(), None),
            ("int8", label_ids, None),
            ("int8", category_ids, None),
            ("int8", region, None),
            ("int8", district, district == AreaIndex.NONE),
            ("int8", neighborhood, neighborhood == AreaIndex.NONE),
        ]
    )
    staging.writer.put(payload, len(good), staging.expected_rows)
    staging.staged += len(good)
    staging.unassigned += int((district == AreaIndex.NONE).sum())


def _expected_rows(rows_so_far: int, bytes_so_far: int, bytes_in_all: int) -> int:
    return round(rows_so_far * bytes_in_all / max(bytes_so_far, 1))


def _file_kind(path: Path) -> str:
    return "vector" if path.suffix.lower() in VECTOR_SUFFIXES else "table"


def _later_bytes_of_same_kind(paths: list[Path]) -> list[int]:
    return [
        sum(p.stat().st_size for p in paths[n + 1 :] if _file_kind(p) == _file_kind(path))
        for n, path in enumerate(paths)
    ]


def _stage_file(cursor, request, path, file_no, staging, progress, done_bytes, total_bytes) -> int:
    """Reads, validates and stages one file; returns the number of rows read."""
    options_base = dict(
        timezone=request.timezone
        or (request.profile.timezone if request.profile else settings.TIME_ZONE),
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
        staging.expect(file_no, len(table), path.stat().st_size, path.stat().st_size)
        _stage_chunk(cursor, staging, chunk, table, numbers, path.name)
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
        staging.expect(file_no, rows + chunk.rows, position, path.stat().st_size)
        _stage_chunk(cursor, staging, chunk, frame, numbers, path.name)
        rows += chunk.rows
        progress((done_bytes + position) / total_bytes)
    return rows


# Staged rows as incident rows; {before_stop} is where a slice of the staging table ends.
_INSERT_HEAD = """
INSERT INTO incidents_incident AS i (
  source_id, external_id, point, occurred_at, occurred_until, time_precision,
  label_id, category_id, region_id, district_id, neighborhood_id, location_quality, batch_id)
SELECT %(source_id)s, s.external_id, ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326),
       s.occurred_at, s.occurred_until, s.time_precision, s.label_id, s.category_id,
       s.region_id, s.district_id, s.neighborhood_id, %(location_quality)s, %(batch_id)s
FROM incident_staging s
WHERE s.ctid >= %(first)s::tid {before_stop}
"""
# Upsert by (source, external id): a row whose values all equal the stored ones is left
# alone (it keeps the batch that wrote it), so importing the same file twice changes nothing.
_UPSERT_SQL = f"""
WITH upserted AS ({_INSERT_HEAD}
  ON CONFLICT (source_id, external_id) DO UPDATE SET
    point = EXCLUDED.point, occurred_at = EXCLUDED.occurred_at,
    occurred_until = EXCLUDED.occurred_until, time_precision = EXCLUDED.time_precision,
    label_id = EXCLUDED.label_id, category_id = EXCLUDED.category_id,
    region_id = EXCLUDED.region_id, district_id = EXCLUDED.district_id,
    neighborhood_id = EXCLUDED.neighborhood_id, location_quality = EXCLUDED.location_quality,
    batch_id = EXCLUDED.batch_id
  WHERE (i.point, i.occurred_at, i.occurred_until, i.time_precision, i.label_id,
         i.category_id, i.region_id, i.district_id, i.neighborhood_id, i.location_quality)
        IS DISTINCT FROM
        (EXCLUDED.point, EXCLUDED.occurred_at, EXCLUDED.occurred_until,
         EXCLUDED.time_precision, EXCLUDED.label_id, EXCLUDED.category_id,
         EXCLUDED.region_id, EXCLUDED.district_id, EXCLUDED.neighborhood_id,
         EXCLUDED.location_quality)
  RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM upserted
"""
# Rows per INSERT statement. The incident table's reference triggers (migration 0003)
# receive every row of a statement in a transition table, so slices keep that table, and
# the server's memory, flat however large the import.
INSERT_SLICE_ROWS = 250_000


def _insert_staged(cursor, staged: int, params: dict, *, upsert: bool = True) -> tuple[int, int]:
    """Upserts the staged rows in slices of about INSERT_SLICE_ROWS, by physical position
    in the staging table (a TID range scan: each slice reads only its own pages). Without
    ``upsert``, plainly inserts them: only when no row can conflict."""
    cursor.execute(
        "SELECT pg_relation_size('incident_staging') / current_setting('block_size')::int"
    )
    pages = max(1, cursor.fetchone()[0])
    step = max(1, -(-pages * INSERT_SLICE_ROWS // max(staged, 1)))
    created = updated = 0
    for first in range(0, pages, step):
        stop = first + step if first + step < pages else None
        before_stop = "" if stop is None else "AND s.ctid < %(stop)s::tid"
        cursor.execute(
            (_UPSERT_SQL if upsert else _INSERT_HEAD).replace("{before_stop}", before_stop),
            {**params, "first": f"({first},0)", "stop": f"({stop},0)"},
        )
        slice_created, slice_updated = cursor.fetchone() if upsert else (cursor.rowcount, 0)
        created += slice_created
        updated += slice_updated
    return created, updated


def _drop_temp_tables(cursor) -> None:
    cursor.execute("DROP TABLE IF EXISTS incident_staging, incident_seen")


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

    The batch it creates (without ``batch``) holds its job lock (config.jobs) from before
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
    result = ImportResult(batch_id=None, dry_run=request.dry_run, status="running", files=files)
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
            _drop_temp_tables(cursor)
            cursor.execute(_STAGING_DDL)
            staging = _Staging(
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
            with _ChunkWriter(
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
                _rebuild_indexes(cursor, writer.bulk.indexes)
                result.indexes_rebuilt = [name for name, _ in writer.bulk.indexes]
                mark = step("index_rebuild", mark)
            order = {name: number for number, name in reversed(list(enumerate(file_names)))}
            result.refused.sort(key=lambda r: (order.get(r.file_name, 0), r.row_number))
            _drop_temp_tables(cursor)
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
        key = row.reason.split(":")[0].split(" '")[0]
        counts[key] = counts.get(key, 0) + 1
    return counts


def profile_named(name: str | None) -> Profile | None:
    if name is None:
        return None
    try:
        return PROFILES[name]
    except KeyError:
        raise IncidentFileError(
            f"unknown profile {name!r}; known profiles: {', '.join(PROFILES)}"
        ) from None
