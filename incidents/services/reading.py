"""Reading incident files into chunks of validated rows.

Every value is read as text and parsed here, vectorised (pandas' C parsers and numpy's
string functions, never a Python loop per row), so that each refused row can be named
with its number and the reason. Memory stays flat: files are read in chunks and only
refused rows are kept; and bounded: before pandas or GDAL open a file, its rows are
measured in fixed blocks and a file too wide or with too long rows is refused
(incidents.services.bounds), and chunks shrink for wide or long rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.dtypes import StringDType
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from incidents.services.bounds import CsvLayout, IncidentFileError, check_vector_file, inspect_csv


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


def csv_header(path: Path, layout: CsvLayout | None = None) -> list[str]:
    layout = layout or inspect_csv(path)
    frame = pd.read_csv(path, sep=layout.delimiter, encoding=layout.encoding, dtype=str, nrows=0)
    return [str(c).strip() for c in frame.columns]


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
