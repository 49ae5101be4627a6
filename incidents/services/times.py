"""Dates and times of incident files, vectorised: text to UTC instants (values with an
offset keep it, naive ones are wall-clock times of a time zone, one for the file or one a
row: the time zone of the region each row falls in), day windows of date-only values, the
ends of time windows, and timestamps as PostgreSQL's COPY BINARY sends them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.dtypes import StringDType

# Text columns are numpy StringDType arrays (see incidents.services.reading.text_values).
TEXT = StringDType()

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


# A time zone for every row: one name, or an array of names, one a row.
Zones = str | np.ndarray


def _zones_of(zones: Zones, mask: np.ndarray) -> Zones:
    return zones if isinstance(zones, str) else zones[mask]


def localize(naive: np.ndarray, tz: Zones) -> np.ndarray:
    """Wall-clock times of ``tz`` to UTC (naive datetime64[us] holding UTC). A time that
    happens twice (the hour repeated when summer time ends) is taken as the first one; a
    time skipped when it starts is moved forward. Neither is a reason to refuse a record."""
    if not isinstance(tz, str):
        result = np.full(len(naive), np.datetime64("NaT"), dtype="datetime64[us]")
        for zone in np.unique(tz):  # a few zones at most: one per region
            mask = tz == zone
            result[mask] = _localize_one(np.asarray(naive)[mask], str(zone))
        return result
    return _localize_one(naive, tz)


def _localize_one(naive: np.ndarray, tz: str) -> np.ndarray:
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


def parse_instants(text: np.ndarray, tz: Zones) -> np.ndarray:
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
        result[naive] = localize(_parse_naive(text[naive]), _zones_of(tz, naive))
    return result


def postgres_microseconds(instants: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int64 microseconds since 2000-01-01 UTC, NaT mask): timestamptz as COPY BINARY
    sends it."""
    values = np.asarray(instants, dtype="datetime64[us]")
    missing = np.isnat(values)
    return values.view(np.int64) - _EPOCH_2000_US, missing


def date_part(raw_date: np.ndarray) -> np.ndarray:
    """The date of a date or date-time ("2023-01-05T10:00" -> "2023-01-05")."""
    parts = pd.Series(raw_date.astype(object)).str.split(r"[T ]", n=1, regex=True).str[0]
    return np.asarray(parts.fillna("").to_numpy(dtype=object), dtype=TEXT)


def read_instants(raw_date: np.ndarray, raw_time: np.ndarray, tz: Zones):
    """(instants, the exclusive end of the local day where only a date is given (NaT
    elsewhere), the text read) of a date column and an optional time column."""
    # Some exports repeat the time inside the date field and garble the time field
    # (CDMX: "2022-01-10 12:00:00" with hora "12:00:00:00"): the date's own time wins.
    date_has_time = np.strings.find(raw_date, ":") >= 0
    has_time = (raw_time != "") & ~date_has_time
    text = raw_date.copy()
    if has_time.any():
        text[has_time] = np.strings.add(np.strings.add(raw_date[has_time], " "), raw_time[has_time])
    instants = parse_instants(text, tz)
    date_only = ~has_time & ~date_has_time & (np.strings.str_len(raw_date) <= 10)
    date_only &= ~np.isnat(instants)
    day_end = np.full(len(raw_date), np.datetime64("NaT"), dtype="datetime64[us]")
    if date_only.any():
        day = _parse_naive(raw_date[date_only]) + np.timedelta64(1, "D")
        day_end[date_only] = localize(day, _zones_of(tz, date_only))
    return instants, day_end, text


def with_window(occurred_at, until, precision, end, given):
    """The window's end as occurred_until (precision "range"); an end equal to the start is
    an exact time, and a window that is exactly the date-only start's day stays "day"."""
    until, precision = until.copy(), precision.copy()
    known = given & ~np.isnat(end) & ~np.isnat(occurred_at)
    window = known & (end > occurred_at)
    window &= ~((precision == "day") & (end == until))
    until[window] = end[window]
    precision[window] = "range"
    instant = known & (end == occurred_at)
    until[instant] = np.datetime64("NaT")
    precision[instant] = "exact"
    return until, precision
