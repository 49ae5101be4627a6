"""Getis-Ord Gi* on a vector of cell counts and a sparse binary weights matrix.

    Gi* = (Σⱼ wᵢⱼxⱼ − X̄ Σⱼ wᵢⱼ) / (S · √([n Σⱼ wᵢⱼ² − (Σⱼ wᵢⱼ)²] / (n − 1)))

with X̄ the mean of all n counts and S = √(Σx²/n − X̄²); the statistic is itself a z-score
and the focal cell is included in its own neighbourhood (wᵢᵢ = 1). The p-value is
two-sided, from the normal distribution, or from conditional permutations (the cell's own
count held fixed, its neighbours drawn at random from the other cells, ``seed`` fixing the
draws). Bins +3/+2/+1 (−3/−2/−1) mark hot (cold) cells significant at 99/95/90 %; with
FDR they mark significance after Benjamini–Hochberg at each of those levels. z and p are
never adjusted: only the bins reflect FDR (as in ArcGIS).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse, stats

from hotspots.engine import HotspotRefused

# (bin, alpha) from the weakest to the strongest confidence level.
CONFIDENCE_LEVELS = ((1, 0.10), (2, 0.05), (3, 0.01))
ALPHAS = tuple(alpha for _bin, alpha in CONFIDENCE_LEVELS)
MAX_PERMUTATIONS = 99_999
# Elements of the (cells × permutations × neighbours) block drawn at once.
_PERMUTATION_BLOCK = 4_000_000


def bin_for_alpha(alpha: float) -> int:
    """The smallest bin (in absolute value) that is significant at ``alpha``."""
    for level, level_alpha in CONFIDENCE_LEVELS:
        if np.isclose(alpha, level_alpha):
            return level
    raise HotspotRefused(
        f"alpha must be one of {', '.join(f'{a:g}' for a in ALPHAS)} (the confidence bins)"
    )


@dataclass
class GiStarResult:
    z: np.ndarray  # Gi* z-scores (analytic), never adjusted
    p: np.ndarray  # the two-sided p-value the bins come from (analytic or permutation)
    p_norm: np.ndarray  # analytic two-sided p
    p_sim: np.ndarray | None  # conditional-permutation two-sided pseudo-p, when asked for
    bins: np.ndarray  # int8, −3..3, after FDR when fdr is on
    fdr: bool
    permutations: int

    def significant(self, alpha: float, *, hot: bool | None = None) -> np.ndarray:
        """Cells whose bin is significant at ``alpha`` (hot only, cold only, or both)."""
        level = bin_for_alpha(alpha)
        if hot is None:
            return np.abs(self.bins) >= level
        return self.bins >= level if hot else self.bins <= -level


def check_variation(counts: np.ndarray) -> None:
    if len(counts) == 0 or np.all(counts == counts[0]):
        raise HotspotRefused(
            "no variation: every cell has the same count, so there is nothing to compare "
            "(Gi* is undefined); try smaller cells, a longer period or a larger area"
        )


def gi_star_z(counts: np.ndarray, weights: sparse.csr_matrix) -> np.ndarray:
    """Analytic Gi* z-scores; ``weights`` binary (or general) with the diagonal set."""
    y = np.asarray(counts, dtype=np.float64)
    n = len(y)
    if weights.shape != (n, n):
        raise ValueError(f"weights are {weights.shape}, counts {n}")
    if n < 2:
        raise HotspotRefused("Gi* needs at least two cells")
    check_variation(y)
    mean = y.mean()
    s = y.std()  # √(Σx²/n − X̄²), computed stably
    w_sum = np.asarray(weights.sum(axis=1)).ravel()
    w2_sum = np.asarray(weights.multiply(weights).sum(axis=1)).ravel()
    numerator = weights @ y - mean * w_sum
    spread = (n * w2_sum - w_sum * w_sum) / (n - 1)
    z = np.zeros(n)
    # A cell whose neighbourhood is the whole area (only with a huge band) compares
    # nothing: its z stays 0.
    defined = spread > 0
    z[defined] = numerator[defined] / (s * np.sqrt(spread[defined]))
    return z


def p_two_sided(z: np.ndarray) -> np.ndarray:
    return 2.0 * stats.norm.sf(np.abs(z))


def permutation_p(
    counts: np.ndarray, weights: sparse.csr_matrix, *, permutations: int, seed: int
) -> np.ndarray:
    """Two-sided conditional-permutation pseudo p-values for binary weights.

    For each cell the count is held fixed and its k neighbours are replaced by k counts
    drawn without replacement from the other n − 1 cells; ``permutations`` such local sums
    form the reference distribution. As in PySAL's ``crand``, one set of draws (positions
    among "the other cells") is shared by every cell, which makes the whole computation a
    few vectorised gathers. p = min(1, 2·(min(#≥, #≤) + 1) / (R + 1)).
    """
    y = np.asarray(counts, dtype=np.float64)
    n = len(y)
    if not 1 <= permutations <= MAX_PERMUTATIONS:
        raise HotspotRefused(f"permutations must be between 1 and {MAX_PERMUTATIONS:,}")
    binary = weights.copy()
    binary.data = np.ones_like(binary.data)
    if not np.array_equal(binary.data, weights.data):
        raise ValueError("conditional permutations are implemented for binary weights")
    observed = weights @ y
    neighbours = np.diff(weights.indptr) - 1  # the diagonal is the focal cell itself
    k_max = int(neighbours.max())
    rng = np.random.default_rng(seed)
    if k_max > n - 1:
        raise ValueError("a cell has more neighbours than there are other cells")
    draws = np.empty((permutations, k_max), dtype=np.int64)
    for r in range(permutations):
        draws[r] = rng.choice(n - 1, size=k_max, replace=False)
    p = np.ones(n)
    for k in np.unique(neighbours):
        members = np.flatnonzero(neighbours == k)
        if k == 0:
            continue  # an isolated cell: p stays 1
        picks = draws[:, :k]
        chunk = max(1, _PERMUTATION_BLOCK // (permutations * k))
        for start in range(0, len(members), chunk):
            cells = members[start : start + chunk]
            # Position r among the other cells is index r, or r + 1 past the cell itself.
            positions = picks[None, :, :] + (picks[None, :, :] >= cells[:, None, None])
            simulated = y[positions].sum(axis=2) + y[cells, None]
            target = observed[cells, None]
            greater = (simulated >= target).sum(axis=1)
            lesser = (simulated <= target).sum(axis=1)
            tail = np.minimum(greater, lesser)
            p[cells] = np.minimum(1.0, 2.0 * (tail + 1) / (permutations + 1))
    return p


def benjamini_hochberg(p: np.ndarray, alpha: float) -> np.ndarray:
    """Which hypotheses Benjamini–Hochberg rejects at false discovery rate ``alpha``:
    sort p ascending, find the largest k with p₍ₖ₎ ≤ (k/n)·α, reject the k smallest."""
    p = np.asarray(p, dtype=np.float64)
    n = len(p)
    rejected = np.zeros(n, dtype=bool)
    if n == 0:
        return rejected
    order = np.argsort(p, kind="stable")
    below = p[order] <= alpha * np.arange(1, n + 1) / n
    if below.any():
        k = int(np.flatnonzero(below)[-1]) + 1
        rejected[order[:k]] = True
    return rejected


def confidence_bins(z: np.ndarray, p: np.ndarray, *, fdr: bool) -> np.ndarray:
    """+3/+2/+1 (hot) and −3/−2/−1 (cold) at 99/95/90 %, 0 otherwise; the sign is z's."""
    level = np.zeros(len(z), dtype=np.int8)
    for value, alpha in CONFIDENCE_LEVELS:  # weakest first: stronger levels overwrite
        significant = benjamini_hochberg(p, alpha) if fdr else p <= alpha
        level[significant] = value
    return (np.sign(z).astype(np.int8) * level).astype(np.int8)


def run_gistar(
    counts: np.ndarray,
    weights: sparse.csr_matrix,
    *,
    fdr: bool = True,
    permutations: int = 0,
    seed: int = 0,
) -> GiStarResult:
    z = gi_star_z(counts, weights)
    p_norm = p_two_sided(z)
    p_sim = None
    if permutations:
        p_sim = permutation_p(counts, weights, permutations=permutations, seed=seed)
    p = p_sim if p_sim is not None else p_norm
    return GiStarResult(
        z=z,
        p=p,
        p_norm=p_norm,
        p_sim=p_sim,
        bins=confidence_bins(z, p, fdr=fdr),
        fdr=fdr,
        permutations=permutations,
    )
