"""The database half of the incident import. ``stage_chunk`` gives a validated chunk's
points their areas (neighborhoods.locate) and its labels their categories (labels), and
hands the rows, in PostgreSQL's COPY BINARY format, to ChunkWriter: on a thread of its own,
on the import's connection and transaction, it copies them into a temporary staging table,
refuses the duplicate ids found there and upserts the rest by (source, external id), while
the import reads and validates the next chunk. An import bigger than the table it goes into
builds the secondary indexes once at the end instead of row by row (see
_set_indexes_aside).
"""

from __future__ import annotations

import io
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db import connection
from psycopg2.errors import DeadlockDetected, LockNotAvailable

from incidents.reasons import reason
from incidents.services.labels import LabelMapper
from incidents.services.reading import AREA_COLUMNS, RefusedRow
from incidents.services.times import postgres_microseconds
from neighborhoods.locate import AreaIndex

# Staged rows are complete incidents: areas and labels are resolved before COPY, so the
# INSERT only builds the point and upserts. The staging table holds one chunk at a time;
# incident_seen holds every id staged so far, with where it was first seen, so a later
# chunk's duplicates are found without keeping the ids in this process.
STAGING_DDL = """
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

    # (name, definition) of each index dropped, built again by rebuild_indexes before
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


def rebuild_indexes(cursor, indexes: list[tuple[str, str]]) -> None:
    for _, definition in indexes:
        cursor.execute(definition)


class ChunkWriter:
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

    def __enter__(self) -> ChunkWriter:
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
class Staging:
    """What went into the staging table, and what was refused on the way."""

    areas: AreaIndex
    labels: LabelMapper
    writer: ChunkWriter | None = None
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

    def attach(self, writer: ChunkWriter) -> None:
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
                reason(
                    "duplicate_id",
                    id=repr(external_id),
                    file=file_names[first_file],
                    row=first_row,
                ),
            )
            for file_no, row_no, external_id, first_file, first_row, _, _ in removed
        )


def stage_chunk(cursor, staging: Staging, chunk, frame, row_numbers, file_name) -> None:
    staging.refused.extend(chunk.refused)
    good = chunk.good
    if good.empty:
        return
    if "region_id" in good:  # located by the validator (ReadOptions.locate), outside refused
        region, district, neighborhood = (good[c].to_numpy() for c in AREA_COLUMNS)
    else:
        region, district, neighborhood = staging.areas.assign(
            cursor, good["lon"].to_numpy(), good["lat"].to_numpy()
        )
    outside = region == AreaIndex.NONE
    if outside.any():
        positions = np.searchsorted(row_numbers, good["row_no"].to_numpy()[outside])
        staging.refused.extend(
            RefusedRow(file_name, int(row_numbers[p]), reason("outside_regions"),
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


def drop_temp_tables(cursor) -> None:
    cursor.execute("DROP TABLE IF EXISTS incident_staging, incident_seen")
