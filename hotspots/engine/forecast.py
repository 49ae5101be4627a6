"""The "where next" forecast: the ranking of grid cells that best predicted the recent past, chosen by a
back-test on the run's own period (pure numpy, no database).

The period's last days (``holdout``) are held out; each candidate ranks the cells from the
earlier days only, and is scored on the held-out incidents by PAI at the planner's coverage
(:mod:`hotspots.engine.validation`):

* ``count``: incidents per cell over the fit days (the naive baseline);
* ``decay_<h>``: the same counts, each incident weighted 2^(−age/h), age in days from the
  last fit day, for each half-life h;
* ``gistar``: the Getis-Ord Gi* z of the fit counts (:mod:`hotspots.engine.gistar`);
* ``kde``: quartic kernel density of the fit incidents at the cell centres
  (:mod:`hotspots.engine.kde`, ArcGIS' default bandwidth).

Every candidate flags the same number of cells at a coverage (cells have one area), so its
PAI is proportional to its hits: the best PAI wins, and equal hits go to the simpler
candidate (the order of :data:`SIMPLICITY`: period count first). The winner is then
refitted on the whole period; its top cells at the coverage are the forecast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from hotspots.engine import HotspotRefused
from hotspots.engine import grid as grids
from hotspots.engine import validation as scores
from hotspots.engine.gistar import gi_star_z
from hotspots.engine.kde import default_bandwidth, kde_grid

DEFAULT_HALF_LIVES = (14, 30, 90)
# Simplest first: ties go to the earlier. Longer half-lives are closer to the plain count.
KINDS = ("count", "decay", "gistar", "kde")
# The raster a hexagon grid's KDE is interpolated from: at least this many raster cells
# per bandwidth, and at most so many cells in all (the bandwidth is then small beside the
# area, and the rank of cells hardly depends on it).
_RASTER_CELLS_PER_BANDWIDTH = 5
_MAX_RASTER_CELLS = 4_000_000


@dataclass(frozen=True)
class History:
    """Incidents per (cell, day) of a period: ``cell`` indexes the run's cell arrays,
    ``day`` counts days from the period's first day, ``n`` the incidents of that pair."""

    cell: np.ndarray
    day: np.ndarray
    n: np.ndarray
    n_cells: int
    n_days: int

    def counts(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Incidents per cell on days [start, stop)."""
        stop = self.n_days if stop is None else stop
        keep = (self.day >= start) & (self.day < stop)
        return np.bincount(self.cell[keep], weights=self.n[keep], minlength=self.n_cells)

    def decayed(self, half_life: float, stop: int | None = None) -> np.ndarray:
        """Σ n · 2^(−age/half_life) per cell over days before ``stop``; the last day has
        age 0."""
        stop = self.n_days if stop is None else stop
        keep = self.day < stop
        age = (stop - 1 - self.day[keep]).astype(np.float64)
        weight = self.n[keep] * np.exp2(-age / float(half_life))
        return np.bincount(self.cell[keep], weights=weight, minlength=self.n_cells)


@dataclass(frozen=True)
class Candidate:
    key: str
    kind: str
    half_life_days: float | None = None


def candidates(half_lives=DEFAULT_HALF_LIVES) -> list[Candidate]:
    """The candidates, simplest first (longest half-life first among the decayed)."""
    out = [Candidate("count", "count")]
    for h in sorted({float(h) for h in half_lives}, reverse=True):
        out.append(Candidate(f"decay_{h:g}", "decay", h))
    out += [Candidate("gistar", "gistar"), Candidate("kde", "kde")]
    return out


def kde_at_cells(
    x: np.ndarray, y: np.ndarray, grid: grids.Grid, i: np.ndarray, j: np.ndarray
) -> tuple[np.ndarray, float]:
    """Quartic kernel density (incidents per km²) at the cell centres, with ArcGIS'
    default bandwidth; returns (density per cell, bandwidth in metres).

    Squares: the raster is the grid itself, so each value is the exact kernel sum at the
    centre (as a KDE run computes it). Hexagons, whose centres are on no square raster:
    interpolated bilinearly from a raster of min(edge / 2, bandwidth / 5) cells (coarser
    past _MAX_RASTER_CELLS), within a few per cent of the exact sum."""
    bandwidth, _rule = default_bandwidth(x, y)
    if not bandwidth > 0:
        raise HotspotRefused("every incident is at the same place: no kernel density")
    # In the grid's own frame (a kernel density moves with its points), so that a square
    # grid's cells are the raster's cells wherever the grid is anchored.
    ox, oy = grid.origin
    x, y = np.asarray(x) - ox, np.asarray(y) - oy
    cx, cy = grid.centres(i, j)
    cx, cy = cx - ox, cy - oy
    pad = grid.size
    if grid.kind == "square":
        size = grid.size
    else:
        size = min(grid.size / 2.0, bandwidth / _RASTER_CELLS_PER_BANDWIDTH)
        extent = (cx.max() - cx.min() + 2 * pad) * (cy.max() - cy.min() + 2 * pad)
        size = max(size, math.sqrt(extent / _MAX_RASTER_CELLS))
    # Raster lines on multiples of ``size``: a square grid's cells are the raster cells.
    c0 = math.floor((cx.min() - pad) / size)
    r0 = math.floor((cy.min() - pad) / size)
    c1 = math.floor((cx.max() + pad) / size) + 1
    r1 = math.floor((cy.max() + pad) / size) + 1
    surface = kde_grid(
        x,
        y,
        bandwidth=bandwidth,
        cell_size=size,
        bounds=(c0 * size, r0 * size, c1 * size, r1 * size),
    ).density
    if grid.kind == "square":
        col = np.floor(cx / size).astype(np.int64) - c0
        row = np.floor(cy / size).astype(np.int64) - r0
        return surface[row, col], float(bandwidth)
    # Bilinear between the four raster centres around each cell centre.
    fc = cx / size - 0.5 - c0
    fr = cy / size - 0.5 - r0
    col = np.clip(np.floor(fc).astype(np.int64), 0, surface.shape[1] - 2)
    row = np.clip(np.floor(fr).astype(np.int64), 0, surface.shape[0] - 2)
    tc, tr = fc - col, fr - row
    value = (
        surface[row, col] * (1 - tc) * (1 - tr)
        + surface[row, col + 1] * tc * (1 - tr)
        + surface[row + 1, col] * (1 - tc) * tr
        + surface[row + 1, col + 1] * tc * tr
    )
    return value, float(bandwidth)


@dataclass
class Inputs:
    """What the candidates are computed from, for one stretch of days."""

    history: History
    weights: sparse.csr_matrix  # Gi* weights of the cells (focal cell included)
    kde: np.ndarray | None  # density per cell of the incidents of those days (None: skip)


def candidate_scores(
    candidate: Candidate, inputs: Inputs, stop: int | None = None
) -> np.ndarray | None:
    """One candidate's score per cell (higher = more likely hot) from the days before
    ``stop``; None when it cannot be computed (no variation for Gi*, no KDE)."""
    history = inputs.history
    if candidate.kind == "count":
        return history.counts(0, stop)
    if candidate.kind == "decay":
        return history.decayed(candidate.half_life_days, stop)
    if candidate.kind == "gistar":
        try:
            return gi_star_z(history.counts(0, stop), inputs.weights)
        except HotspotRefused:
            return None
    if candidate.kind == "kde":
        return None if inputs.kde is None else np.asarray(inputs.kde, dtype=np.float64)
    raise ValueError(f"unknown candidate kind {candidate.kind!r}")


def tiebreak_for(candidate: Candidate, counts: np.ndarray) -> np.ndarray | None:
    """Equal scores are ranked by the plain count (the count itself: by cell index)."""
    return None if candidate.kind == "count" else counts


@dataclass
class BacktestRow:
    candidate: Candidate
    score: scores.ForecastScore | None  # None: not computable
    reason: str = ""

    def as_dict(self) -> dict:
        row = {
            "key": self.candidate.key,
            "kind": self.candidate.kind,
            "half_life_days": self.candidate.half_life_days,
        }
        if self.score is None:
            return {**row, "reason": self.reason}
        s = self.score.as_dict()
        return {
            **row,
            **{k: s[k] for k in ("n_cells", "area_share", "hits", "total", "hit_rate", "pai")},
            "pei": s["pei"],
        }


@dataclass
class Backtest:
    rows: list[BacktestRow]
    chosen: Candidate
    fit_days: int
    holdout_days: int


def backtest(
    inputs: Inputs,
    *,
    holdout_days: int,
    coverage: float,
    areas: np.ndarray | None = None,
    half_lives=DEFAULT_HALF_LIVES,
) -> Backtest:
    """Scores every candidate fitted on the days before the last ``holdout_days`` against
    the incidents of those last days; ``inputs.kde`` must be the density of the fit days'
    incidents. The best PAI at ``coverage`` is chosen; equal hits: the simpler candidate."""
    history = inputs.history
    fit_days = history.n_days - holdout_days
    if holdout_days < 1 or fit_days < 1:
        raise HotspotRefused("the back-test needs at least one day to fit and one to test")
    observed = history.counts(fit_days)
    if observed.sum() <= 0:
        raise HotspotRefused(
            f"no incidents in the last {holdout_days} day(s) of the period held out for the "
            "back-test: lengthen the period or the held-out share"
        )
    fit_counts = history.counts(0, fit_days)
    rows: list[BacktestRow] = []
    for candidate in candidates(half_lives):
        values = candidate_scores(candidate, inputs, fit_days)
        if values is None:
            reason = (
                "no variation in the fit counts" if candidate.kind == "gistar" else "not computed"
            )
            rows.append(BacktestRow(candidate, None, reason))
            continue
        (score,) = scores.evaluate_scores(
            values,
            observed,
            areas,
            coverages=(coverage,),
            tiebreak=tiebreak_for(candidate, fit_counts),
            label=candidate.key,
        )
        rows.append(BacktestRow(candidate, score))
    scored = [r for r in rows if r.score is not None and not math.isnan(r.score.pai)]
    # Rows are simplest first and max() keeps the first of equals; hits, not PAI, are
    # compared so that float noise in PAI cannot break a tie.
    best = max(scored, key=lambda r: round(r.score.hits, 9))
    return Backtest(rows, best.candidate, fit_days, holdout_days)


def holdout_days_for(n_days: int, share: float) -> int:
    """Whole days held out: ``share`` of the period, at least one, leaving one to fit."""
    return int(min(max(1, round(n_days * share)), n_days - 1))
