"""An incident file before pandas or GDAL read it: its encoding and delimiter
(sniff_csv), and the bounds on what it may make the import allocate, measured by
streaming (see "bounds" below). The measures also size the chunks the reading takes
(CsvLayout.chunk_rows).

IncidentFileError, a file (or the options for it) that cannot be used at all, is raised
here first, then by the reading (incidents.services.reading) and the column resolution
(incidents.services.request).
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.utils import formats
from django.utils.translation import gettext

CHUNK_ROWS = 100_000
# Fewer rows per chunk when the file is wide or its rows long, so that a chunk's text stays
# bounded whatever the file (about 60 bytes of Python string per cell, plus the text).
CHUNK_CELLS = 2_000_000
CHUNK_BYTES = 64 << 20
_SAMPLE_BYTES = 1 << 20


class IncidentFileError(Exception):
    """The file (or the options for it) cannot be used at all; nothing was read."""


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
