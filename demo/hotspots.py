"""The hotspot runs the demo city is loaded with, so that the planner map has cells and
zones to show from the first start: emerging hot spots and Gi* over the two demo years,
and a Gi* run over the first 21 months validated against the last quarter."""

from __future__ import annotations

import datetime as dt

from hotspots.services.runs import RunSpec, ensure_spec_run, spec_run_lines
from neighborhoods.demo import DEMO_REGION_CODE
from neighborhoods.models import Region

# In this order: the last one is the newest run, the one a map opens on.
DEMO_RUNS = (
    RunSpec(
        dt.date(2024, 1, 1),
        dt.date(2025, 9, 30),
        validate=(dt.date(2025, 10, 1), dt.date(2025, 12, 31)),
    ),
    RunSpec(dt.date(2024, 1, 1), dt.date(2025, 12, 31), method="emerging"),
    RunSpec(dt.date(2024, 1, 1), dt.date(2025, 12, 31)),
)


def ensure_demo_runs() -> list[str]:
    """Computes the demo runs that are missing (none the second time); report lines."""
    region = Region.objects.get(code=DEMO_REGION_CODE)
    lines = []
    for spec in DEMO_RUNS:
        lines += spec_run_lines(*ensure_spec_run(region=region, spec=spec))
    return lines
