"""Reading incident files into chunks of validated rows.

Every value is read as text and parsed here, vectorised with pandas, so that each refused
row can be named with its number and the reason. Memory stays flat: files are read in
chunks and only refused rows are kept.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

CHUNK_ROWS = 100_000
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

    good: pd.DataFrame  # columns of STAGING_COLUMNS
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


def sniff_csv(path: Path) -> tuple[str, str]:
    """(encoding, delimiter) of a CSV file: UTF-8 (with or without BOM), else Windows-1252."""
    with path.open("rb") as handle:
        sample = handle.read(_SAMPLE_BYTES)
    if not sample.strip():
        raise IncidentFileError(f"{path.name} is empty")
    try:
        sample.decode("utf-8")
        encoding = "utf-8-sig"
    except UnicodeDecodeError as exc:
        # A sample cut in the middle of a multi-byte character is still UTF-8.
        encoding = "utf-8-sig" if exc.start >= len(sample) - 3 else "cp1252"
    text = sample.decode(encoding, errors="replace")
    first_line = text.splitlines()[0] if text.splitlines() else ""
    try:
        delimiter = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = max(",;\t|", key=first_line.count)
    return encoding, delimiter


def csv_header(path: Path) -> list[str]:
    encoding, delimiter = sniff_csv(path)
    frame = pd.read_csv(path, sep=delimiter, encoding=encoding, dtype=str, nrows=0)
    return [str(c) for c in frame.columns]


def _parse_numbers(values: pd.Series) -> pd.Series:
    text = values.str.strip()
    # A decimal comma ("40,4168") only ever reaches here in files not delimited by commas.
    text = text.where(
        ~text.str.contains(",", regex=False) | text.str.contains(".", regex=False),
        text.str.replace(",", ".", regex=False),
    )
    return pd.to_numeric(text, errors="coerce")


_DATE_FORMATS = ("%d/%m/%Y", "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%d-%m-%Y", "%Y/%m/%d")


def _parse_dates(values: pd.Series) -> pd.Series:
    parsed = pd.to_datetime(values, format="ISO8601", errors="coerce", utc=False)
    if parsed.dtype == object:  # mixed offsets: normalise everything to UTC
        parsed = pd.to_datetime(values, format="ISO8601", errors="coerce", utc=True)
    missing = parsed.isna() & values.ne("")
    for fmt in _DATE_FORMATS:
        if not missing.any():
            break
        retry = pd.to_datetime(values[missing], format=fmt, errors="coerce")
        if getattr(parsed.dt, "tz", None) is not None:
            retry = retry.dt.tz_localize("UTC")
        parsed[missing] = retry
        missing = parsed.isna() & values.ne("")
    return parsed


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
        self.now = options.now if options.now is not None else pd.Timestamp.now(tz="UTC")

    def validate(self, frame: pd.DataFrame, row_numbers: np.ndarray) -> Chunk:
        columns = self.options.columns
        count = len(frame)
        reasons = np.full(count, None, dtype=object)

        def refuse(mask, reason_for) -> None:
            mask = np.asarray(mask, dtype=bool) & pd.isna(reasons)
            if not mask.any():
                return
            if callable(reason_for):
                reasons[mask] = [reason_for(i) for i in np.flatnonzero(mask)]
            else:
                reasons[mask] = reason_for

        # --- location -----------------------------------------------------------------
        if self.transformer is not None:
            raw_x, raw_y = frame[columns.x].str.strip(), frame[columns.y].str.strip()
            x, y = _parse_numbers(raw_x), _parse_numbers(raw_y)
            refuse(raw_x.eq("") | raw_y.eq(""), "missing coordinates")
            refuse(
                x.isna() | y.isna(),
                lambda i: f"coordinates are not numbers: {raw_x.iat[i]!r}, {raw_y.iat[i]!r}",
            )
            refuse((x == 0) & (y == 0), "coordinates are 0,0 (location missing)")
            lon, lat = self.transformer.transform(x.to_numpy(), y.to_numpy())
            lon, lat = pd.Series(lon, index=frame.index), pd.Series(lat, index=frame.index)
            refuse(
                ~np.isfinite(lon) | ~np.isfinite(lat),
                "coordinates cannot be transformed from the given CRS",
            )
        else:
            raw_lat, raw_lon = frame[columns.lat].str.strip(), frame[columns.lon].str.strip()
            lat, lon = _parse_numbers(raw_lat), _parse_numbers(raw_lon)
            refuse(raw_lat.eq("") | raw_lon.eq(""), "missing coordinates")
            refuse(
                lat.isna() | lon.isna(),
                lambda i: f"coordinates are not numbers: {raw_lat.iat[i]!r}, {raw_lon.iat[i]!r}",
            )
            refuse((lat == 0) & (lon == 0), "coordinates are 0,0 (location missing)")
        refuse(lat.abs() > 90, lambda i: f"latitude {lat.iat[i]} is out of range")
        refuse(lon.abs() > 180, lambda i: f"longitude {lon.iat[i]} is out of range")
        for place in self.options.placeholders:
            near = ((lon - place.lon).abs() <= place.tolerance_deg) & (
                (lat - place.lat).abs() <= place.tolerance_deg
            )
            refuse(near, f"known placeholder location ({place.description})")

        # --- time ---------------------------------------------------------------------
        raw_date = (
            frame[columns.date].str.strip() if columns.date else pd.Series("", index=frame.index)
        )
        refuse(raw_date.eq(""), "missing date")
        occurred_at, until, precision = self._times(frame, raw_date)
        refuse(
            occurred_at.isna() & raw_date.ne(""), lambda i: f"unparsable date {raw_date.iat[i]!r}"
        )
        refuse(occurred_at > self.now, lambda i: f"date {raw_date.iat[i]!r} is in the future")

        # --- label and id ------------------------------------------------------------
        if columns.category:
            label = frame[columns.category].str.strip()
        else:
            label = pd.Series(columns.constant_label or "", index=frame.index)
        if columns.id:
            external_id = frame[columns.id].str.strip()
            refuse(external_id.eq(""), f"missing id in column {columns.id!r}")
            refuse(external_id.str.len() > 120, "id longer than 120 characters")
        else:
            # No id column: a stable id from the row's content, so re-imports match.
            key = (
                raw_date
                + "|"
                + lon.round(6).astype(str)
                + "|"
                + lat.round(6).astype(str)
                + "|"
                + label
            )
            if columns.time:
                key = key + "|" + frame[columns.time].str.strip()
            occurrence = key.groupby(key).cumcount().astype(str)
            external_id = (key + "#" + occurrence).map(
                lambda s: hashlib.sha1(s.encode(), usedforsecurity=False).hexdigest()
            )

        ok = pd.isna(reasons)
        good = pd.DataFrame(
            {
                "file_no": self.file_no,
                "row_no": row_numbers[ok],
                "external_id": external_id[ok].to_numpy(),
                "lon": lon[ok].round(7).to_numpy(),
                "lat": lat[ok].round(7).to_numpy(),
                "occurred_at": occurred_at[ok].to_numpy(),
                "occurred_until": until[ok].to_numpy(),
                "time_precision": precision[ok].to_numpy(),
                "label": label[ok].to_numpy(),
            }
        )
        refused = [
            RefusedRow(self.file_name, int(row_numbers[i]), reasons[i], frame.iloc[i].to_dict())
            for i in np.flatnonzero(~ok)
        ]
        return Chunk(good=good, refused=refused, rows=count)

    def _times(self, frame: pd.DataFrame, raw_date: pd.Series):
        columns = self.options.columns
        tz = self.options.timezone
        index = frame.index
        if self.options.month_only:
            start = pd.to_datetime(raw_date.str.slice(0, 7), format="%Y-%m", errors="coerce")
            start = start.dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
            until = start + pd.offsets.MonthBegin(1)
            return (
                start.dt.tz_convert("UTC"),
                until.dt.tz_convert("UTC"),
                pd.Series("month", index=index),
            )

        raw_time = frame[columns.time].str.strip() if columns.time else pd.Series("", index=index)
        # Some exports repeat the time inside the date field and garble the time field
        # (CDMX: "2022-01-10 12:00:00" with hora "12:00:00:00"): the date's own time wins.
        date_has_time = raw_date.str.contains(r"\d[T ]\d{1,2}:\d{2}", regex=True)
        has_time = raw_time.ne("") & ~date_has_time
        text = raw_date.where(~has_time, raw_date + " " + raw_time)
        parsed = _parse_dates(text)
        date_only = (
            ~has_time
            & ~date_has_time
            & raw_date.str.fullmatch(r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{4}")
        )
        if getattr(parsed.dt, "tz", None) is None:
            parsed = parsed.dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
        occurred_at = parsed.dt.tz_convert("UTC")
        until = pd.Series(pd.NaT, index=index, dtype=occurred_at.dtype)
        day_end = (parsed + pd.Timedelta(days=1)).dt.tz_convert("UTC")
        until[date_only] = day_end[date_only]
        precision = pd.Series(np.where(date_only, "day", "exact"), index=index)
        return occurred_at, until, precision


def read_csv_chunks(path: Path) -> Iterator[tuple[pd.DataFrame, int, int]]:
    """(chunk, first row number, bytes read so far) with the header as row 1."""
    encoding, delimiter = sniff_csv(path)
    reader = pd.read_csv(
        path,
        sep=delimiter,
        encoding=encoding,
        dtype=str,
        keep_default_na=False,
        chunksize=CHUNK_ROWS,
        engine="c",
        on_bad_lines="error",
    )
    next_row = 2
    size = path.stat().st_size
    try:
        for chunk in reader:
            chunk.columns = [str(c).strip() for c in chunk.columns]
            # Byte position is approximate (the C reader buffers ahead); for progress only.
            position = reader.handles.handle.buffer.tell() if hasattr(reader, "handles") else size
            yield chunk, next_row, min(position, size)
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

    try:
        read = read_vector(path, crs=crs)
    except VectorFileError as exc:
        raise IncidentFileError(str(exc)) from None
    frame = read.frame
    refused = [RefusedRow(path.name, p.feature, p.reason) for p in read.refused]
    geometries = frame.geometry.values
    kinds = shapely.get_type_id(geometries)
    not_point = (kinds != 0) & ~shapely.is_missing(geometries)
    for number in frame.index[not_point]:
        refused.append(RefusedRow(path.name, int(number), "geometry is not a point"))
    bad_numbers = {r.row_number for r in refused}
    frame = frame[~frame.index.isin(bad_numbers)]
    table = pd.DataFrame(frame.drop(columns=frame.geometry.name)).astype(str)
    table = table.replace({"None": "", "nan": "", "NaT": ""})
    table["__lon"] = shapely.get_x(frame.geometry.values).astype(str)
    table["__lat"] = shapely.get_y(frame.geometry.values).astype(str)
    # Rows of vector files are numbered by feature, from 1.
    table.index = frame.index
    return table, refused
