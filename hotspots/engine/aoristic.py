"""Aoristic weights: an incident known only to a time window (between 18:00 Friday and
08:00 Monday) has a weight of 1 split over the time units its window covers, in
proportion to the overlap; an exact time puts all of it in one unit.

* :func:`week_hours` — the 7 × 24 table (day of the week × hour of the day, local time)
  of a set of windows, clipped to a period. Windows are cut at the zone's UTC-offset
  changes and binned by local wall-clock hour, so that a window over a spring-forward
  night gives nothing to the hour that does not exist and twice the share to the hour
  that happens twice in autumn.
* :func:`zone_offsets` — a zone's UTC offsets over a span, as :class:`Offsets` (stdlib
  zoneinfo; the engine knows no Django).

Times are epoch seconds (float). A window part longer than ``cap_seconds`` (7 days by
default) covers every hour of the week at least once; it is spread evenly over the 168
hours instead of hour by hour (and counted in ``capped``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np

AORISTIC = "aoristic"  # the name runs record for this weighting
HOUR = 3600.0
DAY = 86400.0
WEEK_HOURS = 168
DEFAULT_CAP_SECONDS = 7 * DAY
# 1970-01-01, day 0 of epoch time, was a Thursday: Monday = 0 … Sunday = 6.
_EPOCH_WEEKDAY = 3


@dataclass(frozen=True)
class Offsets:
    """Piecewise-constant UTC offsets: ``offsets[k]`` (seconds east of UTC) applies from
    ``starts[k]`` (epoch seconds; ``starts[0]`` is -inf) to ``starts[k + 1]``."""

    starts: np.ndarray
    offsets: np.ndarray

    @classmethod
    def fixed(cls, offset_seconds: float = 0.0) -> Offsets:
        return cls(np.array([-np.inf]), np.array([float(offset_seconds)]))

    def at(self, t: np.ndarray) -> np.ndarray:
        k = np.searchsorted(self.starts, np.asarray(t, dtype=float), side="right") - 1
        return self.offsets[k]


def _offset(zone: ZoneInfo, t: float) -> float:
    return dt.datetime.fromtimestamp(t, dt.UTC).astimezone(zone).utcoffset().total_seconds()


def zone_offsets(time_zone: str, t0: float, t1: float) -> Offsets:
    """The UTC offsets of ``time_zone`` between epoch seconds ``t0`` and ``t1``.

    Sampled every 6 hours and bisected to the second where the offset changes: zones
    change their offset at most a few times a year, never twice within 6 hours.
    """
    zone = ZoneInfo(time_zone)
    step = 6 * HOUR
    t0 = float(np.floor(t0)) - step
    t1 = float(np.ceil(t1)) + step
    starts, offsets = [-np.inf], [_offset(zone, t0)]
    t = t0
    while t < t1:
        nxt = min(t + step, t1)
        after = _offset(zone, nxt)
        if after != offsets[-1]:
            lo, hi = t, nxt  # offset(lo) is the old one, offset(hi) the new one
            while hi - lo > 1:
                mid = np.floor((lo + hi) / 2)
                if _offset(zone, mid) == offsets[-1]:
                    lo = mid
                else:
                    hi = mid
            starts.append(hi)
            offsets.append(after)
        t = nxt
    return Offsets(np.array(starts, dtype=float), np.array(offsets, dtype=float))


@dataclass(frozen=True)
class WeekHours:
    """``weights[d, h]``: aoristic weight of day ``d`` (0 Monday … 6 Sunday) and local
    hour ``h``. ``incidents`` counts the incidents with a share inside the period,
    ``weight`` the sum of those shares (the table's total), ``windowed`` those with a
    window, ``capped`` those spread evenly because their window (inside the period) is
    longer than ``cap_seconds``."""

    weights: np.ndarray
    incidents: int
    weight: float
    windowed: int
    capped: int
    cap_seconds: float


def _hour_of_week(local_hour: np.ndarray) -> np.ndarray:
    day = np.floor_divide(local_hour, 24)
    return ((day + _EPOCH_WEEKDAY) % 7) * 24 + (local_hour % 24)


def week_hours(
    start,
    end,
    count=None,
    *,
    offsets: Offsets,
    period: tuple[float, float] | None = None,
    cap_seconds: float = DEFAULT_CAP_SECONDS,
) -> WeekHours:
    """The aoristic day-of-week × hour table of windows ``[start, end)``.

    ``start``/``end`` are epoch seconds, ``end`` NaN (or equal to ``start``) for an
    exact time; ``count`` how many incidents share each window (default 1). With
    ``period = (p0, p1)`` windows are cut to it and only the share inside counts (an
    exact time outside it counts nothing).
    """
    start = np.asarray(start, dtype=float).reshape(-1)
    end = np.asarray(end, dtype=float).reshape(-1)
    if start.shape != end.shape:
        raise ValueError("start and end need one value per window")
    count = np.ones_like(start) if count is None else np.asarray(count, dtype=float).reshape(-1)
    if count.shape != start.shape:
        raise ValueError("count needs one value per window")
    if not np.all(np.isfinite(start)):
        raise ValueError("every window needs a finite start")
    exact = ~np.isfinite(end) | (end == start)
    end = np.where(exact, start, end)
    if np.any(end < start):
        raise ValueError("a window ends before it starts")
    if not cap_seconds > 0:
        raise ValueError("cap_seconds must be positive")

    table = np.zeros(WEEK_HOURS)
    length = end - start
    s, e = start, end
    inside = np.ones_like(start, dtype=bool)
    if period is not None:
        p0, p1 = float(period[0]), float(period[1])
        s, e = np.maximum(start, p0), np.minimum(end, p1)
        inside = np.where(exact, (start >= p0) & (start < p1), e > s)
    share = np.where(exact, 1.0, np.divide(e - s, length, out=np.zeros_like(s), where=~exact))
    share = np.where(inside, share, 0.0)

    # exact times: the local hour of the instant
    ex = exact & inside
    if ex.any():
        local = s[ex] + offsets.at(s[ex])
        bins = _hour_of_week(np.floor(local / HOUR).astype(np.int64))
        table += np.bincount(bins, weights=count[ex], minlength=WEEK_HOURS)

    win = ~exact & inside
    capped = win & (e - s > cap_seconds)
    if capped.any():
        table += (count[capped] * share[capped]).sum() / WEEK_HOURS
    spread = win & ~capped
    if spread.any():
        table += _spread(s[spread], e[spread], count[spread] * share[spread], offsets)

    counted = inside & (share > 0)
    return WeekHours(
        weights=table.reshape(7, 24),
        incidents=int(round(count[counted].sum())),
        weight=float((count * share).sum()),
        windowed=int(round(count[win].sum())),
        capped=int(round(count[capped].sum())),
        cap_seconds=float(cap_seconds),
    )


def _spread(s: np.ndarray, e: np.ndarray, w: np.ndarray, offsets: Offsets) -> np.ndarray:
    """Weight ``w`` of each window ``[s, e)`` split over the local hours it covers."""
    table = np.zeros(WEEK_HOURS)
    per_second = w / (e - s)
    first = np.searchsorted(offsets.starts, s, side="right") - 1
    last = np.searchsorted(offsets.starts, e, side="left") - 1
    for k in range(int(first.min()), int(last.max()) + 1):
        # the piece of each window under the k-th offset
        lo = np.maximum(s, offsets.starts[k])
        hi = np.minimum(e, offsets.starts[k + 1]) if k + 1 < len(offsets.starts) else e
        on = hi > lo
        if not on.any():
            continue
        ls, le, rate = lo[on] + offsets.offsets[k], hi[on] + offsets.offsets[k], per_second[on]
        h0 = np.floor(ls / HOUR).astype(np.int64)
        hours = (np.ceil(le / HOUR).astype(np.int64) - h0).clip(min=1)
        order = np.argsort(-hours, kind="stable")  # the active rows stay a prefix
        ls, le, rate, h0, hours = ls[order], le[order], rate[order], h0[order], hours[order]
        for m in range(int(hours[0])):
            n = int(np.searchsorted(-hours, -m, side="left"))  # rows with hours > m
            b = h0[:n] + m
            overlap = np.minimum(le[:n], (b + 1) * HOUR) - np.maximum(ls[:n], b * HOUR)
            table += np.bincount(
                _hour_of_week(b), weights=rate[:n] * overlap.clip(min=0.0), minlength=WEEK_HOURS
            )
    return table
