"""The aoristic week-hour engine against a brute-force count minute by minute in the
zone's own clock (zoneinfo), DST nights included."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotspots.engine.aoristic import DAY, Offsets, week_hours, zone_offsets

ZONES = ["America/New_York", "America/Mexico_City", "Europe/London", "Australia/Lord_Howe"]
BASE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()


def brute_force(windows, time_zone, period=None, cap=7 * DAY):
    """Each window walked minute by minute (windows are whole minutes), each minute's
    local weekday and hour read by zoneinfo."""
    zone = ZoneInfo(time_zone)
    table = np.zeros((7, 24))
    for s, e in windows:
        if e is None:
            if period is None or period[0] <= s < period[1]:
                local = dt.datetime.fromtimestamp(s, dt.UTC).astimezone(zone)
                table[local.weekday(), local.hour] += 1
            continue
        cs, ce = (s, e) if period is None else (max(s, period[0]), min(e, period[1]))
        if ce <= cs:
            continue
        minutes = int((e - s) // 60)
        if ce - cs > cap:
            table += ((ce - cs) / (e - s)) / 168
            continue
        for m in range(int((cs - s) // 60), int((ce - s) // 60)):
            local = dt.datetime.fromtimestamp(s + 60 * m, dt.UTC).astimezone(zone)
            table[local.weekday(), local.hour] += 1 / minutes
    return table


def run(windows, time_zone, period=None):
    start = np.array([s for s, _ in windows], dtype=float)
    end = np.array([np.nan if e is None else e for _, e in windows], dtype=float)
    offsets = zone_offsets(time_zone, start.min(), np.nanmax(np.r_[start, end]))
    return week_hours(start, end, offsets=offsets, period=period)


window = st.tuples(
    st.integers(0, 366 * 24 * 60),  # start, minutes into 2024
    st.one_of(st.none(), st.integers(1, 3 * 24 * 60)),  # length in minutes, None = exact
)


@settings(max_examples=40, deadline=None)
@given(st.lists(window, min_size=1, max_size=6), st.sampled_from(ZONES), st.booleans())
def test_week_hours_match_a_minute_by_minute_count(raw, time_zone, clip):
    windows = [(BASE + 60 * s, None if n is None else BASE + 60 * (s + n)) for s, n in raw]
    period = (BASE + 100 * DAY, BASE + 250 * DAY) if clip else None
    result = run(windows, time_zone, period)
    expected = brute_force(windows, time_zone, period)
    np.testing.assert_allclose(result.weights, expected, atol=1e-9)
    assert result.weight == pytest.approx(expected.sum())


def test_a_spring_forward_night_gives_nothing_to_the_missing_hour():
    # New York, Sunday 10 March 2024: 01:00 EST to 04:00 EDT is two real hours.
    start = dt.datetime(2024, 3, 10, 6, 0, tzinfo=dt.UTC).timestamp()
    end = dt.datetime(2024, 3, 10, 8, 0, tzinfo=dt.UTC).timestamp()
    result = run([(start, end)], "America/New_York")
    sunday = result.weights[6]
    assert sunday[1] == pytest.approx(0.5) and sunday[3] == pytest.approx(0.5)
    assert sunday[2] == 0 and result.weights.sum() == pytest.approx(1.0)


def test_a_fall_back_night_gives_the_repeated_hour_twice_the_share():
    # Sunday 3 November 2024: 00:00 EDT to 03:00 EST is four real hours, 01:xx twice.
    start = dt.datetime(2024, 11, 3, 4, 0, tzinfo=dt.UTC).timestamp()
    end = dt.datetime(2024, 11, 3, 8, 0, tzinfo=dt.UTC).timestamp()
    result = run([(start, end)], "America/New_York")
    assert result.weights[6, :3].tolist() == pytest.approx([0.25, 0.5, 0.25])
    assert result.weights.sum() == pytest.approx(1.0)


def test_a_weekend_window_and_the_long_window_cap():
    # Friday 18:00 to Monday 08:00 UTC: 62 hours, each 1/62.
    start = dt.datetime(2024, 5, 3, 18, tzinfo=dt.UTC).timestamp()
    end = dt.datetime(2024, 5, 6, 8, tzinfo=dt.UTC).timestamp()
    month = [dt.datetime(2024, m, 1, tzinfo=dt.UTC).timestamp() for m in (5, 6)]
    result = week_hours([start, month[0]], [end, month[1]], offsets=Offsets.fixed())
    weekend = np.zeros((7, 24))
    weekend[4, 18:] = weekend[5] = weekend[6] = 1
    weekend[0, :8] = 1
    assert weekend.sum() == 62
    np.testing.assert_allclose(result.weights, weekend / 62 + 1 / 168)
    assert (result.incidents, result.windowed, result.capped) == (2, 2, 1)


def test_bad_windows_are_refused():
    with pytest.raises(ValueError, match="ends before"):
        week_hours([10.0], [5.0], offsets=Offsets.fixed())
    with pytest.raises(ValueError, match="one value per window"):
        week_hours([1.0, 2.0], [3.0], offsets=Offsets.fixed())
