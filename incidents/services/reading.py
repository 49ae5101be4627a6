"""Reading incident files into chunks of validated rows.

Every value is read as text and parsed here, vectorised (pandas' C parsers and numpy's
string functions, never a Python loop per row), so that each refused row can be named
with its number and the reason. Memory stays flat: files are read in chunks and only
refused rows are kept; and bounded: before pandas or GDAL open a file, its rows are
measured in fixed blocks and a file too wide or with too long rows is refused
(incidents.services.bounds), and chunks shrink for wide or long rows.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from incidents.reasons import coded, reason
from incidents.services.bounds import CsvLayout, IncidentFileError, check_vector_file, inspect_csv
from incidents.services.times import (
    TEXT,
    Zones,
    date_part,
    localize,
    read_instants,
    with_window,
)


@dataclass
class ColumnMapping:
    """Which column plays which role. Either lat/lon, or x/y with a CRS."""

    id: str | None = None
    date: str | None = None
    time: str | None = None
    # The end of a time window (the offence happened between the start and this).
    date_end: str | None = None
    time_end: str | None = None
    category: str | None = None
    lat: str | None = None
    lon: str | None = None
    x: str | None = None
    y: str | None = None
    crs: str | None = None
    constant_label: str | None = None


# (region, district, neighborhood) ids of points given as (lon, lat) arrays, 0 for none
# (neighborhoods.locate.AreaIndex.assign).
Locate = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]
NO_AREA = 0


@dataclass
class ReadOptions:
    columns: ColumnMapping
    # The time zone of naive times: the option's or the profile's, or the fallback for
    # rows in no region when ``region_zones`` is set.
    timezone: str = "UTC"
    month_only: bool = False
    placeholders: tuple = ()
    now: pd.Timestamp | None = None
    # Gives each row its areas, so that the rows outside every region are refused here
    # and the staging needs no second look.
    locate: Locate | None = None
    # Region id -> time zone: a row's naive times are wall-clock times of its region's
    # zone (needs ``locate``). None: every row's are of ``timezone``.
    region_zones: Mapping[int, str] | None = None


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
    # Good rows whose naive times were read in each region's zone (region_zones only).
    rows_by_region: dict[int, int] = field(default_factory=dict)


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
# With ReadOptions.locate, ``good`` also has these.
AREA_COLUMNS = ["region_id", "district_id", "neighborhood_id"]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# A file that is not UTF-8 is read as Windows-1252 (bounds.sniff_csv), which leaves five
# bytes undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D): in a Latin-1 file they are control
# characters nobody writes on purpose, so they are read as U+FFFD, not refused.
ENCODING_ERRORS = "replace"


@contextlib.contextmanager
def _csv_errors(path: Path):
    """What pandas raises on a malformed file, as the message a report shows."""
    try:
        yield
    except pd.errors.ParserError as exc:
        raise IncidentFileError(f"{path.name}: malformed CSV ({exc})") from None
    except UnicodeDecodeError as exc:
        raise IncidentFileError(f"{path.name}: text encoding could not be read ({exc})") from None


def csv_header(path: Path, layout: CsvLayout | None = None) -> list[str]:
    layout = layout or inspect_csv(path)
    with _csv_errors(path):
        frame = pd.read_csv(
            path,
            sep=layout.delimiter,
            encoding=layout.encoding,
            encoding_errors=ENCODING_ERRORS,
            dtype=str,
            nrows=0,
        )
    return [str(c).strip() for c in frame.columns]


# Text columns are handled as numpy StringDType arrays: numpy's string ufuncs run in C,
# where pandas' own string methods loop in Python when pyarrow is not installed
# (TEXT, from incidents.services.times).


def text_values(values: pd.Series) -> np.ndarray:
    """A column as a StringDType array without surrounding spaces ("" for missing)."""
    array = values.to_numpy(dtype=object, na_value="")
    return np.strings.strip(np.asarray(array, dtype=TEXT))


def _number_text(numbers: np.ndarray) -> np.ndarray:
    """Coordinates rounded to 6 decimals as text ("nan" where missing)."""
    return np.round(np.asarray(numbers, dtype=np.float64), 6).astype(TEXT)


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
            refuse((raw_first == "") | (raw_second == ""), reason("missing_coordinates"))
            refuse(
                np.isnan(first) | np.isnan(second),
                lambda i: reason(
                    "coordinates_not_numbers", first=repr(raw_first[i]), second=repr(raw_second[i])
                ),
            )
            refuse((first == 0) & (second == 0), reason("coordinates_zero"))

        # --- location -----------------------------------------------------------------
        with np.errstate(invalid="ignore"):
            if self.transformer is not None:
                raw_x, raw_y = text_values(frame[columns.x]), text_values(frame[columns.y])
                x, y = _parse_numbers(raw_x), _parse_numbers(raw_y)
                numbers_refused(x, y, raw_x, raw_y)
                lon, lat = (np.asarray(v) for v in self.transformer.transform(x, y))
                refuse(
                    ~np.isfinite(lon) | ~np.isfinite(lat),
                    reason("coordinates_not_transformable"),
                )
            else:
                raw_lat, raw_lon = text_values(frame[columns.lat]), text_values(frame[columns.lon])
                lat, lon = _parse_numbers(raw_lat), _parse_numbers(raw_lon)
                numbers_refused(lat, lon, raw_lat, raw_lon)
            refuse(np.abs(lat) > 90, lambda i: reason("latitude_out_of_range", value=float(lat[i])))
            refuse(
                np.abs(lon) > 180, lambda i: reason("longitude_out_of_range", value=float(lon[i]))
            )
            for place in self.options.placeholders:
                near = (np.abs(lon - place.lon) <= place.tolerance_deg) & (
                    np.abs(lat - place.lat) <= place.tolerance_deg
                )
                refuse(near, reason("placeholder_location", place=place.description))

        # --- areas: a row's region says in which zone its times are written --------------
        areas = None
        zones: Zones = self.options.timezone
        if self.options.locate is not None:
            areas = [np.full(count, NO_AREA, dtype=np.int64) for _ in AREA_COLUMNS]
            located = np.equal(reasons, None)
            if located.any():
                found = self.options.locate(lon[located], lat[located])
                for column, ids in zip(areas, found, strict=True):
                    column[located] = ids
            if self.options.region_zones is not None:
                known = pd.Series(self.options.region_zones, dtype=object)
                zones = known.reindex(areas[0]).fillna(self.options.timezone)
                zones = np.asarray(zones.to_numpy(dtype=object), dtype=TEXT)

        # --- time ---------------------------------------------------------------------
        raw_date = text_values(frame[columns.date]) if columns.date else blank
        refuse(raw_date == "", reason("missing_date"))
        occurred_at, until, precision, text = self._times(frame, raw_date, blank, zones)
        refuse(
            np.isnat(occurred_at) & (raw_date != ""),
            lambda i: reason("unparsable_date", value=repr(text[i])),
        )
        refuse(occurred_at > self.now, lambda i: reason("future_date", value=repr(text[i])))
        if columns.date_end or columns.time_end:
            end, end_text, given = self._ends(frame, raw_date, blank, zones)
            refuse(
                given & np.isnat(end),
                lambda i: reason("unparsable_end_date", value=repr(end_text[i])),
            )
            refuse(
                given & (end < occurred_at),
                lambda i: reason(
                    "window_ends_before_start", end=repr(end_text[i]), start=repr(text[i])
                ),
            )
            until, precision = with_window(occurred_at, until, precision, end, given)

        # --- label and id ------------------------------------------------------------
        if columns.category:
            label = text_values(frame[columns.category])
            refuse(np.strings.str_len(label) > 300, reason("label_too_long", limit=300))
        else:
            label = np.full(count, columns.constant_label or "", dtype=TEXT)
        if columns.id:
            external_id = text_values(frame[columns.id])
            refuse(external_id == "", reason("missing_id", column=repr(columns.id)))
            refuse(np.strings.str_len(external_id) > 120, reason("id_too_long", limit=120))
            external_id = external_id.astype(object)
        else:
            external_id = self._derived_ids(frame, raw_date, lon, lat, label)
        if areas is not None:
            refuse(areas[0] == NO_AREA, reason("outside_regions"))

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
        rows_by_region = {}
        if areas is not None:
            for column, ids in zip(AREA_COLUMNS, areas, strict=True):
                good[column] = ids[ok]
            if self.options.region_zones is not None:
                regions, counts = np.unique(areas[0][ok], return_counts=True)
                rows_by_region = dict(zip(regions.tolist(), counts.tolist(), strict=True))
        refused = [
            RefusedRow(self.file_name, int(row_numbers[i]), reasons[i], frame.iloc[i].to_dict())
            for i in np.flatnonzero(~ok)
        ]
        return Chunk(good=good, refused=refused, rows=count, rows_by_region=rows_by_region)

    def _derived_ids(self, frame, raw_date, lon, lat, label) -> np.ndarray:
        """No id column: a stable id from the row's content, so re-imports match. Identical
        rows are told apart by their occurrence number in the file, counted across chunks
        (only a 64-bit hash of each content key is remembered between chunks)."""
        columns = self.options.columns
        # Built as numpy text, never pandas' astype(str): since pandas 3 that keeps a
        # missing coordinate (a refused row's) as NaN, which no key can hold. numpy writes
        # each float as Python's repr does, as pandas did, so earlier imports' ids stand.
        parts = [raw_date, _number_text(lon), _number_text(lat), label]
        parts += [text_values(frame[name]) for name in (columns.time,) if name]
        # Window ends are part of the content only for files that have them.
        parts += [text_values(frame[name]) for name in (columns.date_end, columns.time_end) if name]
        key_text = parts[0]
        for part in parts[1:]:
            key_text = np.strings.add(np.strings.add(key_text, "|"), part)
        key = pd.Series(key_text.astype(object))
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

    def _times(self, frame: pd.DataFrame, raw_date: np.ndarray, blank: np.ndarray, tz: Zones):
        """(occurred_at, occurred_until, precision, the text read) for each row: UTC
        datetime64[us] arrays, NaT where unknown.

        A date without a time is the window of that local day; a month-only date the window
        of that local month. Naive times are wall-clock times of ``tz`` (one zone, or one a
        row)."""
        columns = self.options.columns
        count = len(raw_date)
        if self.options.month_only:
            month = pd.Series(raw_date.astype(object)).str.slice(0, 7)
            start = pd.to_datetime(month, format="%Y-%m", errors="coerce")
            start = start.astype("datetime64[us]")
            until = (start + pd.offsets.MonthBegin(1)).astype("datetime64[us]")
            return (
                localize(start.to_numpy(), tz),
                localize(until.to_numpy(), tz),
                np.full(count, "month", dtype=TEXT),
                raw_date,
            )

        raw_time = text_values(frame[columns.time]) if columns.time else blank
        occurred_at, until, text = read_instants(raw_date, raw_time, tz)
        precision = np.where(np.isnat(until), "exact", "day").astype(TEXT)
        return occurred_at, until, precision, text

    def _ends(self, frame: pd.DataFrame, raw_date: np.ndarray, blank: np.ndarray, tz: Zones):
        """(end, the text read, whether the row gives an end) of each row's time window:
        the exclusive end, so a date without a time ends at the next local midnight. An end
        time without an end date ends on the day the window starts."""
        columns = self.options.columns
        end_time = text_values(frame[columns.time_end]) if columns.time_end else blank
        end_date = text_values(frame[columns.date_end]) if columns.date_end else blank
        on_start_day = (end_date == "") & (end_time != "")
        if on_start_day.any():
            end_date = end_date.copy()
            end_date[on_start_day] = date_part(raw_date[on_start_day])
        given = (end_date != "") | (end_time != "")
        instants, day_end, text = read_instants(end_date, end_time, tz)
        end = np.where(np.isnat(day_end), instants, day_end)
        # An end time with no date at all (the start's is missing too) cannot be read.
        end[(end_date == "") & given] = np.datetime64("NaT")
        text = np.where(end_date == "", end_time, text).astype(TEXT)
        return end, text, given


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
        encoding_errors=ENCODING_ERRORS,
        dtype=str,
        keep_default_na=False,
        chunksize=layout.chunk_rows,
        engine="c",
        on_bad_lines="error",
    )
    next_row = 2
    size = path.stat().st_size
    with _csv_errors(path):
        for chunk in reader:
            chunk.columns = [str(c).strip() for c in chunk.columns]
            yield chunk, next_row, min(_position(reader, size), size)
            next_row += len(chunk)


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
    refused = [RefusedRow(path.name, p.feature, coded(p.reason)) for p in read.refused]
    refused_numbers = {r.row_number for r in refused}
    geometries = frame.geometry.values
    kinds = shapely.get_type_id(geometries)
    for number, geometry in zip(frame.index, geometries, strict=True):
        if number not in refused_numbers and geometry is not None and geometry.geom_type != "Point":
            refused.append(
                RefusedRow(
                    path.name, int(number), reason("geometry_not_point", kind=geometry.geom_type)
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
    if pd.api.types.is_float_dtype(values):
        present = values[~missing]
        # Only where every value is a whole number an int64 holds exactly (1e300 is a
        # whole float, but no integer id).
        if ((present % 1 == 0) & (present.abs() < 2**53)).all():
            values = values.astype("Int64")
    text = values.astype(str)
    return text.where(~missing, "")
