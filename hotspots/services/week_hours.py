"""The time-of-day × day-of-week view of a run: when in the week the incidents of the
run's area, period and categories happened, in the region's local time.

Aoristic (:mod:`hotspots.engine.aoristic`): an incident known only to a window (between
18:00 Friday and 08:00 Monday, or just a day) has its weight of 1 split evenly over the
hours the window covers; an exact time puts all of it in one hour. Windows are cut to the
run's period, so only the share inside it counts; a window longer than a week is spread
evenly over the 168 hours of the week.

The incidents are the run's own selection (:func:`hotspots.services.context.incident_queryset`),
read as windows grouped in the database (:func:`hotspots.queries.incident_windows`), chunk
by chunk: memory stays bounded at a million incidents.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from hotspots import queries
from hotspots.engine.aoristic import (
    AORISTIC,
    DEFAULT_CAP_SECONDS,
    WEEK_HOURS,
    Offsets,
    week_hours,
    zone_offsets,
)
from hotspots.models import HotspotRun
from hotspots.services.context import incident_queryset
from incidents.selectors import day_start

WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOURS = tuple(range(24))
# Exact times are grouped by quarter hour in the database when the zone allows it.
QUARTER_HOUR = 900.0


@dataclass(frozen=True)
class WeekHourTable:
    """``weights[d][h]``: aoristic weight of weekday ``d`` (0 Monday … 6 Sunday) and local
    hour ``h`` over the run's period. ``incidents`` have a share inside the period
    (``windowed`` of them a window, ``exact`` an exact time; ``spread_evenly`` had more
    than ``cap_hours`` of their window inside it); ``weight`` is the table's total."""

    run_id: int
    method: str
    time_zone: str
    period_start: dt.datetime
    period_end: dt.datetime
    weights: np.ndarray  # 7 × 24
    incidents: int
    windowed: int
    exact: int
    spread_evenly: int
    weight: float
    cap_hours: float

    @property
    def maximum(self) -> float:
        return float(self.weights.max()) if self.weights.size else 0.0

    def as_dict(self) -> dict:
        """Plain JSON: weights to 4 decimals."""
        return {
            "run": self.run_id,
            "method": self.method,
            "time_zone": self.time_zone,
            "period": {"start": self.period_start.isoformat(), "end": self.period_end.isoformat()},
            "weekdays": list(WEEKDAY_KEYS),
            "hours": list(HOURS),
            "weights": [[round(float(v), 4) for v in row] for row in self.weights],
            "max_weight": round(self.maximum, 4),
            "total_weight": round(self.weight, 4),
            "incidents": self.incidents,
            "windowed": self.windowed,
            "exact": self.exact,
            "spread_evenly": self.spread_evenly,
            "cap_hours": self.cap_hours,
        }


def _quantum(offsets: Offsets) -> float:
    """QUARTER_HOUR when every offset of the zone over the period, and every instant it
    changes, is a whole number of quarter hours (all zones in use today): an exact time
    then shares its local hour with the quarter hour it falls in. Else whole seconds."""
    changes = offsets.starts[1:]
    if np.all(offsets.offsets % QUARTER_HOUR == 0) and np.all(changes % QUARTER_HOUR == 0):
        return QUARTER_HOUR
    return 1.0


def run_week_hours(*, run: HotspotRun) -> WeekHourTable:
    """The aoristic week-hour table of ``run``'s incidents in its region's time zone."""
    time_zone = run.region.time_zone
    start = day_start(run.date_from, time_zone)
    end = day_start(run.date_to + dt.timedelta(days=1), time_zone)
    period = (start.timestamp(), end.timestamp())
    offsets = zone_offsets(time_zone, *period)
    table = np.zeros(WEEK_HOURS)
    incidents = windowed = capped = 0
    weight = 0.0
    for s, e, n in queries.incident_windows(incident_queryset(run), quantum=_quantum(offsets)):
        part = week_hours(s, e, n, offsets=offsets, period=period, cap_seconds=DEFAULT_CAP_SECONDS)
        table += part.weights.reshape(-1)
        incidents += part.incidents
        windowed += part.windowed
        capped += part.capped
        weight += part.weight
    return WeekHourTable(
        run_id=run.pk,
        method=AORISTIC,
        time_zone=time_zone,
        period_start=start,
        period_end=end,
        weights=table.reshape(7, 24),
        incidents=incidents,
        windowed=windowed,
        exact=incidents - windowed,
        spread_evenly=capped,
        weight=weight,
        cap_hours=DEFAULT_CAP_SECONDS / 3600.0,
    )
