"""Reading incident files into chunks of validated rows.

Every value is read as text and parsed here, vectorised (pandas' C parsers and numpy's
string functions, never a Python loop per row), so that each refused row can be named
with its number and the reason. Memory stays flat: files are read in chunks and only
refused rows are kept; and bounded: before pandas or GDAL open a file, its rows are
measured in fixed blocks and a file too wide or with too long rows is refused (see
"bounds" below), and chunks shrink for wide or long rows.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings
from django.utils import formats
from django.utils.translation import gettext
from numpy.dtypes import StringDType
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

CHUNK_ROWS = 100_000
# Fewer rows per chunk when the file is wide or its rows long, so that a chunk's text stays
# bounded whatever the file (about 60 bytes of Python string per cell, plus the text).
CHUNK_CELLS = 2_000_000
CHUNK_BYTES = 64 << 20
_SAMPLE_BYTES = 1 << 20


class IncidentFileError(Exception):
    """The file (or the options for it) cannot be used at all; nothing was read."""


@dataclass
class ColumnMapping:
    """Which column plays which role. Either lat/lon, or x/y with a CRS."""

    id: str | None = None
    date: str | None = None
    time: str | None = None
    category: str | None = None
    lat: str | None = None
    lon: str | None = None
    x: str | None = None
    y: str | None = None
    crs: str | None = None
    constant_label: str | None = None


@dataclass
class ReadOptions:
    columns: ColumnMapping
    timezone: str = "UTC"
    month_only: bool = False
    placeholders: tuple = ()
    now: pd.Timestamp | None = None


@dataclass
class RefusedRow:
    file_name: str
    row_number: int
    reason: str
    raw: dict = field(default_factory=dict)


@dataclass
class Chunk:
    """Rows that passed the checks, ready for COPY, and the ones refused."""

    good: pd.DataFrame  # columns of STAGING_COLUMNS; times are datetime64[us, UTC]
    refused: list[RefusedRow]
    rows: int


STAGING_COLUMNS = [
    "file_no",
    "row_no",
    "external_id",
    "lon",
    "lat",
    "occurred_at",
    "occurred_until",
    "time_precision",
    "label",
]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_utf8(path: Path) -> bool:
    """Whether the whole file decodes as UTF-8: a Windows-1252 accent may sit anywhere, and
    finding it half-way through the read would be too late. Decoding runs at well over a
    gigabyte a second, a small cost next to the import itself."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def sniff_csv(path: Path) -> tuple[str, str]:
    """(encoding, delimiter) of a CSV file: UTF-8 (with or without BOM), else Windows-1252."""
    with path.open("rb") as handle:
        sample = handle.read(_SAMPLE_BYTES)
    if not sample.strip():
        raise IncidentFileError(f"{path.name} is empty")
    encoding = "utf-8-sig" if _is_utf8(path) else "cp1252"
    return encoding, _sniff_delimiter(sample, encoding)


def _sniff_delimiter(sample: bytes, encoding: str) -> str:
    text = sample.decode(encoding, errors="replace")
    lines = text.splitlines()
    first_line = lines[0] if lines else ""
    if len(sample) == _SAMPLE_BYTES and len(lines) > 1:
        text = "\n".join(lines[:-1])  # the last line may be cut
    try:
        delimiter = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = max(",;\t|", key=first_line.count)
    return delimiter


def csv_header(path: Path, layout: CsvLayout | None = None) -> list[str]:
    layout = layout or inspect_csv(path)
    frame = pd.read_csv(path, sep=layout.delimiter, encoding=layout.encoding, dtype=str, nrows=0)
    return [str(c).strip() for c in frame.columns]


# --- bounds: measured by streaming, before pandas or GDAL build anything -----------------
#
# What pandas allocates follows a file's width, not its size: a 16 MB CSV whose header has
# 2M columns took 6 GB and minutes before failing. So each file is first read in fixed
# blocks (never a line of unknown length at once) and refused, with the row that breaks
# it, when a row has more columns than INCIDENT_IMPORT_MAX_COLUMNS or more bytes than
# INCIDENT_IMPORT_MAX_ROW_BYTES, or when a GeoJSON names more different properties than the
# column bound.

_SCAN_BLOCK_BYTES = 1 << 18
_QUOTE, _BACKSLASH, _COLON, _LF, _CR = b'"'[0], b"\\"[0], b":"[0], b"\n"[0], b"\r"[0]
_BOM = codecs.BOM_UTF8
_SQLITE_MAGIC = b"SQLite format 3\x00"
# Member names a GeoJSON has besides its properties' (type, features, geometry, ...).
_GEOJSON_OTHER_NAMES = 32


def max_columns() -> int:
    return int(settings.INCIDENT_IMPORT_MAX_COLUMNS)


def max_row_bytes() -> int:
    return int(settings.INCIDENT_IMPORT_MAX_ROW_BYTES)


def _number(value: int) -> str:
    return formats.number_format(value, use_l10n=True, force_grouping=True)


@dataclass(frozen=True)
class CsvLayout:
    """What reading a CSV needs to know before pandas opens it; its rows are within the
    bounds."""

    encoding: str
    delimiter: str
    columns: int  # of the widest row (the header, unless a row is malformed)
    longest_row: int  # bytes

    @property
    def chunk_rows(self) -> int:
        return max(
            1,
            min(
                CHUNK_ROWS,
                CHUNK_CELLS // max(self.columns, 1),
                CHUNK_BYTES // max(self.longest_row, 1),
            ),
        )


class _CsvRows:
    """Measures the rows of a CSV, block by block, as pandas' C parser splits them: a quote
    opens a quoted field only where a field starts (elsewhere it is a plain character),
    ``""`` inside one is a quote, and line breaks inside one belong to the row. Lines that
    are empty or only spaces are no rows; the first row is row 1, as in a spreadsheet and
    the import's report.

    Memory is a few times the block, whatever the file: only counts are kept between
    blocks (the state inside quotes, a run of quotes cut by the block's end, the current
    row's bytes and delimiters)."""

    def __init__(self, file_name: str, delimiter: str):
        self.file_name = file_name
        self.delimiter = ord(delimiter)
        self.max_columns = max_columns()
        self.max_row_bytes = max_row_bytes()
        self.quoted = 0  # 1 inside a quoted field
        self.run = 0  # quotes at the end of the last block, not applied yet
        self.run_opens = False  # whether that run starts a field
        self.after_separator = True  # the last byte ended a field (or nothing was read)
        self.rows = 0  # rows ended so far
        self.row_bytes = 0  # of the row being read
        self.row_delimiters = 0
        self.row_blank = True  # only spaces so far
        self.blanks = (b" ", b"\t") if delimiter != "\t" else (b" ",)
        self.widest = 0
        self.longest = 0

    def feed(self, block: bytes) -> None:
        a = np.frombuffer(block, dtype=np.uint8)
        if not a.size:
            return
        separator = (a == self.delimiter) | (a == _LF) | (a == _CR)
        quotes = np.flatnonzero(a == _QUOTE)
        positions = np.flatnonzero(separator)
        if quotes.size or self.run:
            positions = positions[self._unquoted(a.size, quotes, separator, positions)]
        elif self.quoted:  # the whole block is inside a quoted field
            positions = positions[:0]
        self.after_separator = bool(separator[-1])
        is_end = a[positions] != self.delimiter
        ends, delimiters = positions[is_end], positions[~is_end]
        per_row = np.bincount(np.searchsorted(ends, delimiters), minlength=ends.size + 1)
        per_row[0] += self.row_delimiters
        solid = (a != _LF) & (a != _CR)  # neither a space nor a line break
        for byte in self.blanks:
            solid &= a != byte[0]
        if ends.size:
            sizes = np.diff(ends, prepend=-1) - 1
            sizes[0] += self.row_bytes
            # Whether each row (with its line break) and the row after the last break hold
            # anything but spaces.
            starts = np.concatenate(([0], ends + 1))
            filled = np.logical_or.reduceat(solid, starts[starts < a.size])
            filled[0] |= not self.row_blank
            self._ended(sizes, per_row[:-1], filled[: ends.size])
            self.row_bytes = a.size - 1 - int(ends[-1])
            self.row_blank = not (filled.size > ends.size and filled[-1])
        else:
            self.row_bytes += a.size
            self.row_blank = self.row_blank and not solid.any()
        self.row_delimiters = int(per_row[-1])
        if (
            self.row_bytes > self.max_row_bytes
            and self.row_delimiters < self.max_columns
            and not self.row_blank
        ):
            # Too long already; a row with too many columns is read to its end, to say how
            # many it has.
            raise self._too_long(self.rows + 1, unclosed=bool(self.quoted))

    def finish(self) -> None:
        if self.row_bytes:
            self._ended(
                np.array([self.row_bytes]),
                np.array([self.row_delimiters]),
                np.array([not self.row_blank]),
            )
            self.row_bytes = self.row_delimiters = 0
            self.row_blank = True

    def _unquoted(self, size, quotes, separator, positions) -> np.ndarray:
        """Which separator positions lie outside quoted fields. Each run of quotes acts on
        the state alone: where a field starts, an odd run toggles it (opens a field, or
        closes one); elsewhere an odd run leaves a quoted field (or is plain text outside
        one); an even run changes nothing."""
        first = np.flatnonzero(np.diff(quotes, prepend=-2) != 1)  # each run's first quote
        last = np.append(first[1:], quotes.size)[: first.size] - 1
        starts, run_ends = quotes[first], quotes[last]
        lengths = last - first + 1
        opens = separator[np.maximum(starts - 1, 0)]  # the byte before the run ends a field
        if starts.size and starts[0] == 0:
            opens[0] = self.after_separator
        if self.run:  # a run cut by the last block's end goes on here, or ended there
            if starts.size and starts[0] == 0:
                lengths[0] += self.run
                opens[0] = self.run_opens
            else:
                run_ends = np.concatenate(([-1], run_ends))
                lengths = np.concatenate(([self.run], lengths))
                opens = np.concatenate(([self.run_opens], opens))
        self.run = 0
        if run_ends.size and run_ends[-1] == size - 1:
            self.run, self.run_opens = int(lengths[-1]), bool(opens[-1])
            run_ends, lengths, opens = run_ends[:-1], lengths[:-1], opens[:-1]
        before = self.quoted
        if not run_ends.size:
            return np.full(positions.size, not before)
        odd = (lengths & 1).astype(bool)
        toggles = np.cumsum(odd & opens)
        resets = np.maximum.accumulate(np.where(odd & ~opens, np.arange(odd.size), -1))
        base = np.where(resets >= 0, toggles[np.maximum(resets, 0)], -before)
        after = (toggles - base) & 1  # 1: inside a quoted field after each run
        self.quoted = int(after[-1])
        runs_before = np.searchsorted(run_ends, positions)
        inside = np.where(runs_before > 0, after[np.maximum(runs_before - 1, 0)], before)
        return inside == 0

    def _ended(self, sizes: np.ndarray, delimiters: np.ndarray, filled: np.ndarray) -> None:
        sizes, columns = sizes[filled], delimiters[filled] + 1  # blank lines are no rows
        if not sizes.size:
            return
        wrong = np.flatnonzero((columns > self.max_columns) | (sizes > self.max_row_bytes))
        if wrong.size:
            at = int(wrong[0])
            if columns[at] > self.max_columns:
                raise self._too_wide(self.rows + at + 1, int(columns[at]))
            raise self._too_long(self.rows + at + 1)
        self.rows += sizes.size
        self.widest = max(self.widest, int(columns.max()))
        self.longest = max(self.longest, int(sizes.max()))

    def _too_wide(self, row: int, columns: int) -> IncidentFileError:
        return IncidentFileError(
            gettext("%(file)s: row %(row)s has %(count)s columns; at most %(limit)s are accepted.")
            % {
                "file": self.file_name,
                "row": _number(row),
                "count": _number(columns),
                "limit": _number(self.max_columns),
            }
        )

    def _too_long(self, row: int, *, unclosed: bool = False) -> IncidentFileError:
        if unclosed:
            message = gettext(
                "%(file)s: row %(row)s is longer than %(limit)s bytes; a quoted value in it "
                "goes on past that (is a closing quote missing?)."
            )
        else:
            message = gettext("%(file)s: row %(row)s is longer than %(limit)s bytes.")
        return IncidentFileError(
            message
            % {"file": self.file_name, "row": _number(row), "limit": _number(self.max_row_bytes)}
        )


def _split(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """Blocks of at most _SCAN_BLOCK_BYTES, a byte-order mark left out."""
    first = True
    for block in blocks:
        if first and block:
            block = block.removeprefix(_BOM)  # (a BOM cut by the first block is not one)
            first = False
        for start in range(0, len(block), _SCAN_BLOCK_BYTES):
            yield block[start : start + _SCAN_BLOCK_BYTES]


def _file_blocks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from iter(lambda: handle.read(_SCAN_BLOCK_BYTES), b"")


def measure_csv(file_name: str, blocks: Iterable[bytes], delimiter: str) -> tuple[int, int]:
    """(columns of the widest row, bytes of the longest row) of a CSV given as blocks of
    bytes; IncidentFileError, naming the row, when one is too wide or too long."""
    rows = _CsvRows(file_name, delimiter)
    for block in _split(blocks):
        rows.feed(block)
    rows.finish()
    return rows.widest, rows.longest


def inspect_csv(path: Path) -> CsvLayout:
    """Encoding, delimiter and the measures of a CSV file, checked against the bounds."""
    encoding, delimiter = sniff_csv(path)
    columns, longest = measure_csv(path.name, _file_blocks(path), delimiter)
    return CsvLayout(encoding, delimiter, columns, longest)


class _JsonNames:
    """Counts the different member names of a JSON text, block by block, without parsing
    it: strings are found by their quotes (a quote after an odd run of backslashes is part
    of one), a string followed by ``:`` is a name, and each name is kept as a 64-bit
    polynomial hash of its bytes, summed for a whole block at once (a string cut by a
    block's end carries on as two numbers). Memory stays a few times the block."""

    _B = 0x9E3779B97F4A7C15  # odd, so that it has an inverse modulo 2**64
    _MASK = (1 << 64) - 1

    def __init__(self, file_name: str, limit: int):
        self.file_name = file_name
        self.limit = limit
        self.names: set[int] = set()
        self.in_string = False
        self.backslashes = 0  # ending the last block
        self.open_hash = 0  # of the string still open at the last block's end, so far
        self.open_length = 0
        self.undecided: int | None = None  # a string with only spaces after it so far
        inverse = pow(self._B, -1, 1 << 64)
        # Byte k of a string of n bytes weighs B ** -k; B ** k brings a sum taken from a
        # block's start back to the string's start.
        self.powers = np.ones(_SCAN_BLOCK_BYTES + 1, dtype=np.uint64)
        np.cumprod(np.full(_SCAN_BLOCK_BYTES, self._B, dtype=np.uint64), out=self.powers[1:])
        self.weights = np.ones(_SCAN_BLOCK_BYTES + 1, dtype=np.uint64)
        np.cumprod(np.full(_SCAN_BLOCK_BYTES, inverse, dtype=np.uint64), out=self.weights[1:])

    def feed(self, block: bytes) -> None:
        a = np.frombuffer(block, dtype=np.uint8)
        n = a.size
        if not n:
            return
        quotes = self._unescaped(a, np.flatnonzero(a == _QUOTE))
        carried = self.in_string
        closing = (np.arange(quotes.size) + carried) & 1 == 1
        opens, closes = quotes[~closing], quotes[closing]
        starts = opens + 1  # where each string's text starts
        if carried:
            starts = np.concatenate(([0], starts))
        self.in_string = starts.size > closes.size
        # Sum of byte * B ** -position over each string's text (the open one to the end).
        bounds = np.empty(starts.size + closes.size, dtype=np.int64)
        bounds[0::2], bounds[1::2] = starts, closes
        inside = bounds < n
        sums = np.zeros(bounds.size, dtype=np.uint64)
        if inside.any():
            weighted = a.astype(np.uint64) * self.weights[:n]
            sums[inside] = np.add.reduceat(weighted, bounds[inside])
        ends = np.append(closes, n) if self.in_string else closes
        sums = np.where(starts < ends, sums[0::2], np.uint64(0))  # (empty strings)
        hashes = sums * self.powers[np.minimum(starts, n)]
        if carried:  # the string from the last block: its text so far, then this block's
            more = int(sums[0]) * pow(self._B, -self.open_length, 1 << 64)
            hashes[0] = (self.open_hash + more) & self._MASK
        if self.in_string:
            if carried and starts.size == 1:  # still the string from the last block
                self.open_hash, self.open_length = int(hashes[0]), self.open_length + n
            else:
                self.open_hash, self.open_length = int(hashes[-1]), n - int(starts[-1])
        names = self._names(a, closes, hashes[: closes.size])
        self.names.update(names)
        if len(self.names) > self.limit + _GEOJSON_OTHER_NAMES:
            raise IncidentFileError(
                gettext(
                    "%(file)s has more than %(limit)s different property names; at most "
                    "%(limit)s are accepted."
                )
                % {"file": self.file_name, "limit": _number(self.limit)}
            )

    def _unescaped(self, a: np.ndarray, quotes: np.ndarray) -> np.ndarray:
        """The quotes that are not escaped (after an odd run of backslashes), and the run
        of backslashes ending the block kept for the next one."""
        n = a.size
        carry, self.backslashes = self.backslashes, 0
        after_slash = np.zeros(quotes.size, dtype=bool)
        after_slash[quotes > 0] = a[quotes[quotes > 0] - 1] == _BACKSLASH
        if not (after_slash.any() or a[-1] == _BACKSLASH or (carry and quotes[:1].size)):
            return quotes
        slashes = np.flatnonzero(a == _BACKSLASH)
        first = np.diff(slashes, prepend=-2) != 1
        run_start = slashes[np.maximum.accumulate(np.where(first, np.arange(slashes.size), 0))]
        if slashes.size and slashes[-1] == n - 1:
            self.backslashes = n - int(run_start[-1]) + (carry if run_start[-1] == 0 else 0)
        lengths = np.zeros(quotes.size, dtype=np.int64)
        if after_slash.any():
            before = np.searchsorted(slashes, quotes[after_slash]) - 1
            start = run_start[before]
            lengths[after_slash] = quotes[after_slash] - start + np.where(start == 0, carry, 0)
        if carry and quotes.size and quotes[0] == 0:
            lengths[0] = carry
        return quotes[(lengths & 1) == 0]

    def _names(self, a: np.ndarray, closes: np.ndarray, hashes: np.ndarray) -> list[int]:
        """The hashes of the strings followed by ``:`` (after spaces, maybe in the next
        block); decides the last block's undecided one."""
        n = a.size
        names = []
        if self.undecided is not None:
            solid = ~_json_space(a)
            first = int(solid.argmax())
            if solid[first]:
                if a[first] == _COLON:
                    names.append(self.undecided)
                self.undecided = None
        if not closes.size:
            return names
        following = np.minimum(closes + 1, n - 1)
        colon = (a[following] == _COLON) & (closes + 1 < n)
        spaced = _json_space(a[following]) | (closes + 1 >= n)
        if spaced.any():  # rare: spaces before the colon, or the block's end
            solid = np.flatnonzero(~_json_space(a))
            later = np.searchsorted(solid, closes[spaced], side="right")
            known = later < solid.size
            found = np.zeros(later.size, dtype=bool)
            found[known] = a[solid[later[known]]] == _COLON
            colon[spaced] = found
            if not known[-1]:  # only spaces after the last string, up to the block's end
                self.undecided = int(hashes[-1])
        return np.unique(hashes[colon]).tolist() + names


def _json_space(values: np.ndarray) -> np.ndarray:
    return (values == 0x20) | (values == 0x09) | (values == _LF) | (values == _CR)


def check_json_names(file_name: str, blocks: Iterable[bytes]) -> None:
    """IncidentFileError when a GeoJSON (given as blocks of bytes) names more different
    properties than the column bound: GDAL would make a field of each, for every feature."""
    names = _JsonNames(file_name, max_columns())
    for block in _split(blocks):
        names.feed(block)


def check_vector_file(path: Path) -> None:
    """The column bound for a vector file, before GDAL reads it: a GeoPackage's tables
    declare their columns; anything else (GDAL would take it as GeoJSON) is scanned."""
    with path.open("rb") as handle:
        head = handle.read(len(_SQLITE_MAGIC))
    if head != _SQLITE_MAGIC:
        check_json_names(path.name, _file_blocks(path))
        return
    import pyogrio

    try:
        columns = len(pyogrio.read_info(path)["fields"])
    except Exception:  # not readable: read_vector says why
        return
    if columns > max_columns():
        raise IncidentFileError(
            gettext("%(file)s has %(count)s columns; at most %(limit)s are accepted.")
            % {"file": path.name, "count": _number(columns), "limit": _number(max_columns())}
        )


def check_upload(upload) -> None:
    """The bounds of a file uploaded for an import (a Django UploadedFile), read in blocks
    before it is saved; IncidentFileError when it breaks one. A GeoPackage is checked when
    it is read."""
    name = Path(str(upload.name)).name
    suffix = Path(name).suffix.lower()
    try:
        if suffix == ".csv":
            upload.seek(0)
            sample = upload.read(_SAMPLE_BYTES)
            if not sample.strip():
                return
            try:
                encoding = "utf-8-sig"
                codecs.getincrementaldecoder("utf-8")().decode(sample)
            except UnicodeDecodeError:
                encoding = "cp1252"
            measure_csv(name, upload.chunks(), _sniff_delimiter(sample, encoding))
        elif suffix in (".geojson", ".json"):
            check_json_names(name, upload.chunks())
    finally:
        upload.seek(0)


# Text columns are handled as numpy StringDType arrays: numpy's string ufuncs run in C,
# where pandas' own string methods loop in Python when pyarrow is not installed.
TEXT = StringDType()


def text_values(values: pd.Series) -> np.ndarray:
    """A column as a StringDType array without surrounding spaces ("" for missing)."""
    array = values.to_numpy(dtype=object, na_value="")
    return np.strings.strip(np.asarray(array, dtype=TEXT))


def _parse_numbers(text: np.ndarray) -> np.ndarray:
    """Floats from text; NaN where a value is no number. A decimal comma ("40,4168") only
    ever reaches here in files not delimited by commas."""
    try:
        return text.astype(np.float64)  # the common case: every value is a number
    except ValueError:
        pass
    numbers = pd.to_numeric(pd.Series(text.astype(object)), errors="coerce").to_numpy().copy()
    comma = np.isnan(numbers) & (np.strings.find(text, ",") >= 0)
    comma &= np.strings.find(text, ".") < 0
    if comma.any():
        swapped = np.strings.replace(text[comma], ",", ".").astype(object)
        numbers[comma] = pd.to_numeric(pd.Series(swapped), errors="coerce").to_numpy()
    return numbers


_DATE_FORMATS = ("%d/%m/%Y", "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%d-%m-%Y", "%Y/%m/%d")
UTC_DTYPE = "datetime64[us, UTC]"
_EPOCH_2000_US = 946_684_800_000_000  # PostgreSQL counts timestamps from 2000-01-01


def _parse_naive(text: np.ndarray) -> np.ndarray:
    """Dates and times without an offset, as naive wall-clock datetime64[us] (NaT when
    unreadable): ISO 8601 first, then the day-first formats of Latin American exports."""
    values = pd.Series(text.astype(object))
    parsed = pd.to_datetime(values, format="ISO8601", errors="coerce")
    if getattr(parsed.dt, "tz", None) is not None:  # an offset slipped through: not naive
        parsed = pd.Series(pd.NaT, index=values.index)
    parsed = parsed.astype("datetime64[us]")
    missing = parsed.isna().to_numpy() & (text != "")
    for fmt in _DATE_FORMATS:
        if not missing.any():
            break
        retry = pd.to_datetime(values[missing], format=fmt, errors="coerce")
        parsed[missing] = retry.astype("datetime64[us]")
        missing = parsed.isna().to_numpy() & (text != "")
    return parsed.to_numpy()


def _localize(naive: np.ndarray, tz: str) -> np.ndarray:
    """Wall-clock times of ``tz`` to UTC (naive datetime64[us] holding UTC). A time that
    happens twice (the hour repeated when summer time ends) is taken as the first one; a
    time skipped when it starts is moved forward. Neither is a reason to refuse a record."""
    first = np.ones(len(naive), dtype=bool)
    local = pd.Series(np.asarray(naive, dtype="datetime64[us]")).dt.tz_localize(
        tz, ambiguous=first, nonexistent="shift_forward"
    )
    return local.dt.tz_convert(None).astype("datetime64[us]").to_numpy()


def _has_offset(text: np.ndarray) -> np.ndarray:
    """Values that carry their own offset: a time followed by "Z", "UTC" or "+hh[:mm]" /
    "-hh[:mm]" (a "-" after the date part, which never has one past position 10)."""
    has_time = np.strings.find(text, ":") >= 0
    zulu = np.strings.endswith(text, "Z") | np.strings.endswith(text, "z")
    zulu |= np.strings.endswith(text, "UTC")
    signed = (np.strings.find(text, "+") >= 0) | (np.strings.rfind(text, "-") > 10)
    return has_time & (zulu | signed)


def parse_instants(text: np.ndarray, tz: str) -> np.ndarray:
    """Text dates or date-times to UTC instants (naive datetime64[us] holding UTC, NaT when
    unreadable):
    values with an offset keep it, the others are wall-clock times of ``tz``."""
    text = np.asarray(text, dtype=TEXT)
    result = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[us]")
    offset = _has_offset(text)
    if offset.any():
        aware = pd.to_datetime(
            pd.Series(text[offset].astype(object)), format="ISO8601", errors="coerce", utc=True
        )
        result[offset] = aware.dt.tz_convert(None).astype("datetime64[us]").to_numpy()
    naive = ~offset
    if naive.any():
        result[naive] = _localize(_parse_naive(text[naive]), tz)
    return result


def postgres_microseconds(instants: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int64 microseconds since 2000-01-01 UTC, NaT mask): timestamptz as COPY BINARY
    sends it."""
    values = np.asarray(instants, dtype="datetime64[us]")
    missing = np.isnat(values)
    return values.view(np.int64) - _EPOCH_2000_US, missing


class ChunkValidator:
    """Turns one chunk of raw text rows into staging rows and refused rows."""

    def __init__(self, options: ReadOptions, file_no: int, file_name: str):
        self.options = options
        self.file_no = file_no
        self.file_name = file_name
        columns = options.columns
        self.transformer = None
        if columns.x or columns.y:
            if not columns.crs:
                raise IncidentFileError(
                    "--x/--y are projected coordinates and their CRS cannot be guessed: "
                    "give it with --crs EPSG:XXXX (for example EPSG:32610, UTM zone 10N)"
                )
            try:
                source = CRS.from_user_input(columns.crs)
            except CRSError:
                raise IncidentFileError(f"unknown CRS {columns.crs!r}") from None
            self.transformer = Transformer.from_crs(source, 4326, always_xy=True)
        now = options.now if options.now is not None else pd.Timestamp.now(tz="UTC")
        self.now = np.datetime64(pd.Timestamp(now).tz_convert("UTC").tz_localize(None), "us")
        self._seen: pd.Series | None = None  # content-key hash -> rows seen (derived ids)

    def validate(self, frame: pd.DataFrame, row_numbers: np.ndarray) -> Chunk:
        columns = self.options.columns
        count = len(frame)
        reasons = np.full(count, None, dtype=object)
        blank = np.full(count, "", dtype=TEXT)

        def refuse(mask, reason_for) -> None:
            mask = np.asarray(mask, dtype=bool) & np.equal(reasons, None)
            if not mask.any():
                return
            if callable(reason_for):
                reasons[mask] = [reason_for(i) for i in np.flatnonzero(mask)]
            else:
                reasons[mask] = reason_for

        def numbers_refused(first, second, raw_first, raw_second):
            refuse((raw_first == "") | (raw_second == ""), "missing coordinates")
            refuse(
                np.isnan(first) | np.isnan(second),
                lambda i: f"coordinates are not numbers: {raw_first[i]!r}, {raw_second[i]!r}",
            )
            refuse((first == 0) & (second == 0), "coordinates are 0,0 (location missing)")

        # --- location -----------------------------------------------------------------
        with np.errstate(invalid="ignore"):
            if self.transformer is not None:
                raw_x, raw_y = text_values(frame[columns.x]), text_values(frame[columns.y])
                x, y = _parse_numbers(raw_x), _parse_numbers(raw_y)
                numbers_refused(x, y, raw_x, raw_y)
                lon, lat = (np.asarray(v) for v in self.transformer.transform(x, y))
                refuse(
                    ~np.isfinite(lon) | ~np.isfinite(lat),
                    "coordinates cannot be transformed from the given CRS",
                )
            else:
                raw_lat, raw_lon = text_values(frame[columns.lat]), text_values(frame[columns.lon])
                lat, lon = _parse_numbers(raw_lat), _parse_numbers(raw_lon)
                numbers_refused(lat, lon, raw_lat, raw_lon)
            refuse(np.abs(lat) > 90, lambda i: f"latitude {lat[i]} is out of range")
            refuse(np.abs(lon) > 180, lambda i: f"longitude {lon[i]} is out of range")
            for place in self.options.placeholders:
                near = (np.abs(lon - place.lon) <= place.tolerance_deg) & (
                    np.abs(lat - place.lat) <= place.tolerance_deg
                )
                refuse(near, f"known placeholder location ({place.description})")

        # --- time ---------------------------------------------------------------------
        raw_date = text_values(frame[columns.date]) if columns.date else blank
        refuse(raw_date == "", "missing date")
        occurred_at, until, precision, text = self._times(frame, raw_date, blank)
        refuse(np.isnat(occurred_at) & (raw_date != ""), lambda i: f"unparsable date {text[i]!r}")
        refuse(occurred_at > self.now, lambda i: f"date {text[i]!r} is in the future")

        # --- label and id ------------------------------------------------------------
        if columns.category:
            label = text_values(frame[columns.category])
            refuse(np.strings.str_len(label) > 300, "label longer than 300 characters")
        else:
            label = np.full(count, columns.constant_label or "", dtype=TEXT)
        if columns.id:
            external_id = text_values(frame[columns.id])
            refuse(external_id == "", f"missing id in column {columns.id!r}")
            refuse(np.strings.str_len(external_id) > 120, "id longer than 120 characters")
            external_id = external_id.astype(object)
        else:
            external_id = self._derived_ids(frame, raw_date, lon, lat, label)

        ok = np.equal(reasons, None)
        good = pd.DataFrame(
            {
                "file_no": np.full(int(ok.sum()), self.file_no, dtype=np.int32),
                "row_no": np.asarray(row_numbers)[ok].astype(np.int32),
                "external_id": external_id[ok],
                "lon": np.round(lon[ok], 7),
                "lat": np.round(lat[ok], 7),
                "occurred_at": pd.Series(occurred_at[ok]).dt.tz_localize("UTC"),
                "occurred_until": pd.Series(until[ok]).dt.tz_localize("UTC"),
                "time_precision": precision[ok].astype(object),
                "label": label[ok].astype(object),
            }
        )
        refused = [
            RefusedRow(self.file_name, int(row_numbers[i]), reasons[i], frame.iloc[i].to_dict())
            for i in np.flatnonzero(~ok)
        ]
        return Chunk(good=good, refused=refused, rows=count)

    def _derived_ids(self, frame, raw_date, lon, lat, label) -> np.ndarray:
        """No id column: a stable id from the row's content, so re-imports match. Identical
        rows are told apart by their occurrence number in the file, counted across chunks
        (only a 64-bit hash of each content key is remembered between chunks)."""
        columns = self.options.columns
        key = (
            pd.Series(raw_date.astype(object))
            + "|"
            + pd.Series(np.round(lon, 6)).astype(str)
            + "|"
            + pd.Series(np.round(lat, 6)).astype(str)
            + "|"
            + pd.Series(label.astype(object))
        )
        if columns.time:
            key = key + "|" + pd.Series(text_values(frame[columns.time]).astype(object))
        hashes = pd.Series(pd.util.hash_pandas_object(key, index=False).to_numpy())
        occurrence = hashes.groupby(hashes.to_numpy()).cumcount().to_numpy()
        if self._seen is not None:
            occurrence = occurrence + self._seen.reindex(hashes.to_numpy(), fill_value=0).to_numpy()
            self._seen = self._seen.add(hashes.value_counts(), fill_value=0).astype("int64")
        else:
            self._seen = hashes.value_counts()
        text = (key + "#" + pd.Series(occurrence).astype(str)).tolist()
        return np.array(
            [hashlib.sha1(s.encode(), usedforsecurity=False).hexdigest() for s in text],
            dtype=object,
        )

    def _times(self, frame: pd.DataFrame, raw_date: np.ndarray, blank: np.ndarray):
        """(occurred_at, occurred_until, precision, the text read) for each row: UTC
        datetime64[us] arrays, NaT where unknown.

        A date without a time is the window of that local day; a month-only date the window
        of that local month. Naive times are wall-clock times of the time zone option."""
        columns = self.options.columns
        tz = self.options.timezone
        count = len(raw_date)
        if self.options.month_only:
            month = pd.Series(raw_date.astype(object)).str.slice(0, 7)
            start = pd.to_datetime(month, format="%Y-%m", errors="coerce")
            start = start.astype("datetime64[us]")
            until = (start + pd.offsets.MonthBegin(1)).astype("datetime64[us]")
            return (
                _localize(start.to_numpy(), tz),
                _localize(until.to_numpy(), tz),
                np.full(count, "month", dtype=TEXT),
                raw_date,
            )

        raw_time = text_values(frame[columns.time]) if columns.time else blank
        # Some exports repeat the time inside the date field and garble the time field
        # (CDMX: "2022-01-10 12:00:00" with hora "12:00:00:00"): the date's own time wins.
        date_has_time = np.strings.find(raw_date, ":") >= 0
        has_time = (raw_time != "") & ~date_has_time
        text = raw_date.copy()
        if has_time.any():
            text[has_time] = np.strings.add(
                np.strings.add(raw_date[has_time], " "), raw_time[has_time]
            )
        occurred_at = parse_instants(text, tz)
        date_only = ~has_time & ~date_has_time & (np.strings.str_len(raw_date) <= 10)
        date_only &= ~np.isnat(occurred_at)
        until = np.full(count, np.datetime64("NaT"), dtype="datetime64[us]")
        if date_only.any():
            day = _parse_naive(raw_date[date_only]) + np.timedelta64(1, "D")
            until[date_only] = _localize(day, tz)
        precision = np.where(date_only, "day", "exact").astype(TEXT)
        return occurred_at, until, precision, text


def _position(reader, size: int) -> int:
    """Bytes read so far, approximate (the C reader buffers ahead): for progress only."""
    try:
        handle = reader.handles.handle
        return getattr(handle, "buffer", handle).tell()
    except (AttributeError, OSError, ValueError):
        return size


def read_csv_chunks(
    path: Path, layout: CsvLayout | None = None
) -> Iterator[tuple[pd.DataFrame, int, int]]:
    """(chunk, first row number, bytes read so far) with the header as row 1."""
    layout = layout or inspect_csv(path)
    reader = pd.read_csv(
        path,
        sep=layout.delimiter,
        encoding=layout.encoding,
        dtype=str,
        keep_default_na=False,
        chunksize=layout.chunk_rows,
        engine="c",
        on_bad_lines="error",
    )
    next_row = 2
    size = path.stat().st_size
    try:
        for chunk in reader:
            chunk.columns = [str(c).strip() for c in chunk.columns]
            yield chunk, next_row, min(_position(reader, size), size)
            next_row += len(chunk)
    except pd.errors.ParserError as exc:
        raise IncidentFileError(f"{path.name}: malformed CSV ({exc})") from None
    except UnicodeDecodeError as exc:
        raise IncidentFileError(f"{path.name}: text encoding could not be read ({exc})") from None


def read_vector_points(path: Path, crs: str | None) -> tuple[pd.DataFrame, list[RefusedRow]]:
    """A GeoJSON/GeoPackage of points as text columns plus ``__lon``/``__lat``, indexed by
    feature number."""
    import shapely

    from geo.io import VectorFileError, read_vector

    check_vector_file(path)
    try:
        read = read_vector(path, crs=crs)
    except VectorFileError as exc:
        raise IncidentFileError(str(exc)) from None
    frame = read.frame
    refused = [RefusedRow(path.name, p.feature, p.reason) for p in read.refused]
    refused_numbers = {r.row_number for r in refused}
    geometries = frame.geometry.values
    kinds = shapely.get_type_id(geometries)
    for number, geometry in zip(frame.index, geometries, strict=True):
        if number not in refused_numbers and geometry is not None and geometry.geom_type != "Point":
            refused.append(
                RefusedRow(
                    path.name, int(number), f"geometry is a {geometry.geom_type}, not a point"
                )
            )
    refused.sort(key=lambda r: r.row_number)
    frame = frame[(kinds == 0) & ~frame.index.isin([r.row_number for r in refused])]
    table = pd.DataFrame(
        {str(name): _as_text(frame[name]) for name in frame.columns if name != frame.geometry.name},
        index=frame.index,
    )
    table["__lon"] = shapely.get_x(frame.geometry.values).astype(str)
    table["__lat"] = shapely.get_y(frame.geometry.values).astype(str)
    # Rows of vector files are numbered by feature, from 1.
    return table, refused


def _as_text(values: pd.Series) -> pd.Series:
    """A property column as the text a CSV would hold: blanks for nulls, whole numbers
    without a decimal point (an integer id with a null elsewhere is read as floats)."""
    missing = values.isna()
    if pd.api.types.is_float_dtype(values) and (values[~missing] % 1 == 0).all():
        values = values.astype("Int64")
    text = values.astype(str)
    return text.where(~missing, "")
