"""Forecast scores for hot spot maps (pure numpy, no database).

A forecast made from period P flags part of the study area; the events of a later period
are then counted where it pointed (domain reference §6.8):

* hit rate = n / N — share of the later events that fall in the flagged area;
* PAI = (n / N) / (a / A) — hit rate per share of area flagged (Chainey et al. 2008);
* PEI = PAI / PAI* — PAI* is the PAI of an oracle that flags the **same area** with the
  cells of highest *observed* density; 1 is a perfect forecast. With unequal cell areas
  the oracle cannot always match the area exactly (it takes the smallest prefix reaching
  it) and PEI may leave [0, 1] slightly.

Everything works on per-cell arrays of one grid: ``observed`` (later-period counts per
cell), optional ``areas`` (cell areas in any unit, default all equal) and either
``scores`` (higher = more likely hot; cells are chosen by descending score until a
coverage of the total area is reached) or a boolean ``flagged`` mask (e.g. the cells of
the zones). Ties in a ranking are broken by an optional second key, then by the lower
cell index, so results never depend on sort stability or input noise.

Entry points: :func:`evaluate_scores`, :func:`naive_baseline`, :func:`score_flagged`,
:func:`score_zone_counts`, the primitives :func:`rank_cells`, :func:`select_by_coverage`,
:func:`oracle_pai`, :func:`pai`, and :class:`ForecastScore`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

DEFAULT_COVERAGES: tuple[float, ...] = (0.01, 0.05, 0.10)
_AREA_TOLERANCE = 1e-9


@dataclass(frozen=True)
class ForecastScore:
    """Scores of one flagged area. Undefined values (no events, no area) are NaN."""

    label: str
    coverage: float | None  # requested share of the total area (None for a fixed set)
    n_cells: int  # flagged cells (0 for zones scored from counts)
    area: float  # a
    area_share: float  # a / A actually flagged
    hits: float  # n
    total: float  # N
    hit_rate: float  # n / N
    pai: float
    pai_star: float  # PAI of the oracle flagging the same area
    pei: float

    def as_dict(self) -> dict:
        """Plain dict for JSON: NaN becomes None."""
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in asdict(self).items()
        }


# --- primitives ---------------------------------------------------------------------------
def _observed_areas(observed, areas) -> tuple[np.ndarray, np.ndarray]:
    obs = np.asarray(observed, dtype=float).ravel()
    if obs.size == 0:
        raise ValueError("no cells")
    if not np.all(np.isfinite(obs)) or np.any(obs < 0):
        raise ValueError("observed counts must be finite and non-negative")
    if areas is None:
        ar = np.ones_like(obs)
    else:
        ar = np.asarray(areas, dtype=float).ravel()
        if ar.shape != obs.shape:
            raise ValueError("areas must have one value per cell")
        if not np.all(np.isfinite(ar)) or np.any(ar <= 0):
            raise ValueError("cell areas must be finite and positive")
    return obs, ar


def pai(hits: float, total: float, area: float, total_area: float) -> float:
    """PAI = (n/N) / (a/A); NaN when N, a or A is zero."""
    if total <= 0 or area <= 0 or total_area <= 0:
        return math.nan
    return (hits / total) / (area / total_area)


def rank_cells(scores, tiebreak=None) -> np.ndarray:
    """Cell indices from most to least likely hot.

    Order: descending ``scores``, then descending ``tiebreak`` (if given), then ascending
    cell index. NaN scores (and NaN tiebreaks) rank last.
    """
    s = np.asarray(scores, dtype=float).ravel()
    keys = [np.arange(s.size)]  # np.lexsort: last key is the primary one
    if tiebreak is not None:
        t = np.asarray(tiebreak, dtype=float).ravel()
        if t.shape != s.shape:
            raise ValueError("tiebreak must have one value per cell")
        keys.append(np.where(np.isnan(t), np.inf, -t))
    keys.append(np.where(np.isnan(s), np.inf, -s))
    return np.lexsort(keys)


def _prefix_reaching(order: np.ndarray, areas: np.ndarray, target: float) -> np.ndarray:
    """Boolean mask of the shortest prefix of ``order`` whose area reaches ``target``."""
    cum = np.cumsum(areas[order])
    k = int(np.searchsorted(cum, target * (1 - _AREA_TOLERANCE), side="left")) + 1
    mask = np.zeros(areas.size, dtype=bool)
    mask[order[: min(k, order.size)]] = True
    return mask


def select_by_coverage(scores, coverage: float, areas=None, tiebreak=None) -> np.ndarray:
    """Flag the top cells (see :func:`rank_cells`) until they cover ``coverage`` of the area.

    Takes the shortest prefix of the ranking whose cumulative area is ≥ coverage · A, so at
    least one cell is flagged and the flagged share can exceed the request by less than
    one cell. Returns a boolean mask.
    """
    if not 0 < coverage <= 1:
        raise ValueError("coverage must be in (0, 1]")
    s = np.asarray(scores, dtype=float).ravel()
    _, ar = _observed_areas(np.zeros(s.size), areas)
    return _prefix_reaching(rank_cells(s, tiebreak), ar, coverage * ar.sum())


def oracle_pai(observed, areas=None, *, area: float) -> tuple[float, np.ndarray]:
    """PAI* of the oracle flagging ``area`` by descending observed density.

    The oracle ranks cells by observed count / cell area (ties: lower index first) and
    takes the shortest prefix whose area reaches ``area``. Returns ``(pai_star, mask)``.
    """
    obs, ar = _observed_areas(observed, areas)
    order = rank_cells(obs / ar)
    mask = _prefix_reaching(order, ar, area)
    return pai(obs[mask].sum(), obs.sum(), ar[mask].sum(), ar.sum()), mask


def _score(
    label: str,
    coverage: float | None,
    n_cells: int,
    hits: float,
    area: float,
    obs: np.ndarray,
    ar: np.ndarray,
) -> ForecastScore:
    total, total_area = float(obs.sum()), float(ar.sum())
    p = pai(hits, total, area, total_area)
    p_star = oracle_pai(obs, ar, area=area)[0] if area > 0 else math.nan
    pei = p / p_star if (not math.isnan(p) and p_star > 0) else math.nan
    return ForecastScore(
        label=label,
        coverage=coverage,
        n_cells=int(n_cells),
        area=float(area),
        area_share=float(area / total_area),
        hits=float(hits),
        total=total,
        hit_rate=float(hits / total) if total > 0 else math.nan,
        pai=p,
        pai_star=p_star,
        pei=pei,
    )


# --- evaluations ---------------------------------------------------------------------------
def score_flagged(flagged, observed, areas=None, *, label: str = "flagged") -> ForecastScore:
    """Scores of an arbitrary set of cells (boolean mask, e.g. the cells of the zones)."""
    obs, ar = _observed_areas(observed, areas)
    mask = np.asarray(flagged, dtype=bool).ravel()
    if mask.shape != obs.shape:
        raise ValueError("flagged must have one value per cell")
    return _score(label, None, int(mask.sum()), obs[mask].sum(), ar[mask].sum(), obs, ar)


def score_zone_counts(
    hits: float, zone_area: float, observed, areas=None, *, label: str = "zones"
) -> ForecastScore:
    """Scores of polygons that are not made of grid cells (e.g. DBSCAN hulls).

    ``hits`` = later-period events inside the polygons, ``zone_area`` their total area
    (same unit as ``areas``); N, A and the oracle come from the grid arrays, which must
    cover the same study area and the same events.
    """
    obs, ar = _observed_areas(observed, areas)
    if hits < 0 or zone_area < 0:
        raise ValueError("hits and zone_area must be non-negative")
    return _score(label, None, 0, float(hits), float(zone_area), obs, ar)


def evaluate_scores(
    scores,
    observed,
    areas=None,
    *,
    coverages: Sequence[float] = DEFAULT_COVERAGES,
    tiebreak=None,
    label: str = "forecast",
) -> list[ForecastScore]:
    """Scores at fixed area coverages of a per-cell forecast (e.g. the Gi* z of period P).

    For each coverage the top cells by ``scores`` are flagged (see
    :func:`select_by_coverage`). Returns one :class:`ForecastScore` per coverage, labelled
    ``"{label} top {coverage:.0%}"``.
    """
    obs, ar = _observed_areas(observed, areas)
    s = np.asarray(scores, dtype=float).ravel()
    if s.shape != obs.shape:
        raise ValueError("scores must have one value per cell")
    order = rank_cells(s, tiebreak)
    out = []
    for cov in coverages:
        if not 0 < cov <= 1:
            raise ValueError("coverages must be in (0, 1]")
        mask = _prefix_reaching(order, ar, cov * ar.sum())
        out.append(
            _score(
                f"{label} top {cov:.0%}",
                float(cov),
                int(mask.sum()),
                obs[mask].sum(),
                ar[mask].sum(),
                obs,
                ar,
            )
        )
    return out


def naive_baseline(
    last_counts,
    observed,
    areas=None,
    *,
    coverages: Sequence[float] = DEFAULT_COVERAGES,
    tiebreak=None,
) -> list[ForecastScore]:
    """The naive forecast: the cells with most events in a period before the test (the
    run's whole period, or its last month).

    ``last_counts`` are per-cell counts of that last period (e.g. the last month of P);
    ``tiebreak`` can rank cells with equal counts (e.g. the counts of all of P), otherwise
    the lower cell index wins. Same output as :func:`evaluate_scores`.
    """
    return evaluate_scores(
        last_counts,
        observed,
        areas,
        coverages=coverages,
        tiebreak=tiebreak,
        label="naive (last period count)",
    )
