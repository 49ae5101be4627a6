"""The automatic cell size of an emerging hot spot run: large enough for a trend per cell.

The Optimized Hot Spot Analysis rule (:func:`hotspots.engine.grid.choose_cell_size`)
sizes cells from the spacing of incident locations, whatever the period. Over many time
steps that splits each cell's incidents into so many steps that most bins hold 0 or 1
incident: the Gi* z series say little, the trend test has no power, and almost every
pattern comes out "sporadic" (10 years of months over 150,000 incidents chose 42 m cells,
134,734 cells, 2 GB of memory). This rule starts from that size and grows it until each
occupied cell holds, on average, at least ``min_per_step`` incidents per step, and until
the space-time cube (cells × steps) fits ``max_bins``.

Pure numpy: the caller gives the incidents' metric coordinates, the number of steps and the
analysis area's extent, and stores :attr:`StepSize.rule` (codes and numbers, so that the
reason can be written in the reader's language) with the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hotspots.engine import MIN_CELLS, HotspotRefused
from hotspots.engine import grid as grids

# At 1 incident per occupied cell per step a Poisson bin is 0 a third of the time and
# rarely above 3; below that the z series of most cells are mostly ties.
MIN_PER_STEP = 1.0
# Candidate sizes grow by this factor (rounded to whole metres), like the stability
# reruns' 1.5 and 2: coarse enough to stay few, fine enough not to overshoot much.
GROWTH = 1.25
# The rule never grows cells past the size that leaves fewer cells than this over the
# area's extent: a few huge cells are no map, whatever their counts.
MIN_TREND_CELLS = 4 * MIN_CELLS

# Why the size is what it is (stored in ``rule["limit"]``):
BASE = "base"  # the Optimized Hot Spot Analysis size already had enough per step
TREND = "trend"  # grown until the mean per step reached the target
MEMORY = "memory"  # grown further so that cells × steps fit the cap
FEWEST_CELLS = "fewest_cells"  # stopped before the area had too few cells; target missed


@dataclass(frozen=True)
class StepSize:
    size: float
    rule: dict

    @property
    def reason(self) -> str:
        """The rule in English (the command line's text; pages translate :attr:`rule`)."""
        return reason_text(self.rule)


def estimated_cells(kind: str, size: float, extent_m: tuple[float, float]) -> int:
    """Cells of the area's bounding box (width, height in metres) with a cell of margin:
    the same upper bound :func:`hotspots.queries.estimated_cells` checks before a grid is
    built."""
    width, height = extent_m
    area = grids.Grid(kind, size, 0).cell_area_m2
    return int((width + 2 * size) * (height + 2 * size) / area)


def smallest_size_for_bins(
    kind: str, steps: int, extent_m: tuple[float, float], max_bins: int
) -> float:
    """The smallest whole-metre size whose estimated cells × ``steps`` fit ``max_bins``."""
    width, height = extent_m
    # (w + 2s)(h + 2s) / (k s²) · steps ≤ max_bins, k the cell area per s²: a quadratic in
    # 1/s, solved exactly, then rounded to the metre against the estimate itself.
    k = grids.Grid(kind, 10.0, 0).cell_area_m2 / 100.0
    a, b, c = width * height, 2 * (width + height), 4.0 - k * max_bins / steps
    if c >= 0:  # even an infinitely large cell leaves more than the cap
        return math.inf
    inverse = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a) if a > 0 else -c / b
    size = max(grids.MIN_CELL_SIZE_M, float(math.ceil(1.0 / inverse)))

    def fits(s: float) -> bool:
        return estimated_cells(kind, s, extent_m) * steps <= max_bins

    # The estimate is truncated to whole cells: a metre either way may still fit.
    while not fits(size):
        size += 1.0
    while size - 1.0 >= grids.MIN_CELL_SIZE_M and fits(size - 1.0):
        size -= 1.0
    return size


def occupied_cells(kind: str, size: float, x: np.ndarray, y: np.ndarray) -> int:
    i, j = grids.Grid(kind, size, 0).index(x, y)
    return int(len(np.unique(grids.cell_keys(i, j))))


def size_for_steps(
    x: np.ndarray,
    y: np.ndarray,
    *,
    kind: str,
    base_size: float,
    steps: int,
    step: str,
    extent_m: tuple[float, float],
    max_bins: int,
    min_per_step: float = MIN_PER_STEP,
) -> StepSize:
    """The cell size of an emerging run over ``steps`` steps of ``step`` ("month"...).

    ``x``, ``y``: the incidents' metric coordinates (every incident, repeated places
    included: the mean counts incidents, not places); ``base_size``: the Optimized Hot
    Spot Analysis size. Candidates are ``base_size × GROWTH^k`` in whole metres; the
    smallest whose occupied cells hold on average ``min_per_step`` incidents per step is
    taken (the mean only falls as cells shrink, so the candidates are bisected), but never
    one leaving fewer than :data:`MIN_TREND_CELLS` cells over the extent; then grown to
    the smallest size whose cube fits ``max_bins``. Raises HotspotRefused when that leaves
    fewer than ``MIN_CELLS`` cells.
    """
    total = len(x)
    if total == 0 or steps < 1:
        raise HotspotRefused("no incidents to size the cells by")
    # Repeated places do not change which cells are occupied: index each place once.
    places = np.unique(np.round(np.column_stack([x, y]), 2), axis=0)
    px, py = places[:, 0], places[:, 1]

    ladder = [float(base_size)]
    while True:  # ends: the estimate falls towards 4 / (cell area / size²) cells
        larger = max(ladder[-1] + 1.0, float(round(ladder[-1] * GROWTH)))
        if estimated_cells(kind, larger, extent_m) < MIN_TREND_CELLS:
            break
        ladder.append(larger)
    memory_size = smallest_size_for_bins(kind, steps, extent_m, max_bins)
    if not math.isfinite(memory_size) or estimated_cells(kind, memory_size, extent_m) < MIN_CELLS:
        raise HotspotRefused(
            f"{steps:,} {step} steps are too many for this area: cells large enough for "
            f"cells × steps to stay within {max_bins:,} would leave fewer than {MIN_CELLS} "
            "cells; shorten the period, use monthly steps or a larger area"
        )

    occupied: dict[float, int] = {}

    def mean_at(size: float) -> float:
        if size not in occupied:
            occupied[size] = occupied_cells(kind, size, px, py)
        return total / (steps * occupied[size])

    base_mean = mean_at(ladder[0])
    if base_mean >= min_per_step:
        chosen, limit = ladder[0], BASE
    elif mean_at(ladder[-1]) < min_per_step:
        chosen, limit = ladder[-1], FEWEST_CELLS
    else:
        low, high = 0, len(ladder) - 1  # mean below the target at low, reached at high
        while high - low > 1:
            middle = (low + high) // 2
            if mean_at(ladder[middle]) >= min_per_step:
                high = middle
            else:
                low = middle
        chosen, limit = ladder[high], TREND
    if memory_size > chosen:
        chosen, limit = memory_size, MEMORY
    mean = mean_at(chosen)
    rule = {
        "rule": "emerging_steps",
        "limit": limit,
        "steps": int(steps),
        "step": step,
        "incidents": int(total),
        "base_size_m": float(base_size),
        "base_mean_per_step": float(f"{base_mean:.3g}"),
        "size_m": float(chosen),
        "occupied_cells": occupied[chosen],
        "mean_per_step": float(f"{mean:.3g}"),
        "min_per_step": float(min_per_step),
        "max_bins": int(max_bins),
    }
    return StepSize(chosen, rule)


def reason_text(rule: dict) -> str:
    """English text of a ``size_for_steps`` rule (the run pages translate it:
    :func:`hotspots.tables.step_size_reason`)."""
    unit = "weekly" if rule["step"] == "week" else "monthly"
    text = (
        f"{rule['steps']:,} {unit} steps; at {rule['size_m']:g} m each occupied cell "
        f"({rule['occupied_cells']:,}) has on average {rule['mean_per_step']:.3g} incidents "
        f"per step (target at least {rule['min_per_step']:g}; "
        f"{rule['base_mean_per_step']:.3g} at the Optimized Hot Spot Analysis size, "
        f"{rule['base_size_m']:g} m)"
    )
    limit = rule["limit"]
    if limit == MEMORY:
        text += f"; enlarged so that cells × steps stay within {rule['max_bins']:,}"
    elif limit == FEWEST_CELLS:
        text += f"; not reached: larger cells would leave fewer than {MIN_TREND_CELLS} cells"
    return text
