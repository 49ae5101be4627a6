"""Emerging Hot Spot Analysis on a space-time cube (pure numpy/scipy, no database).

The method follows ESRI's *Emerging Hot Spot Analysis* as reimplemented by sfdep
(domain reference §6.4):

1. For every time step ``t`` a Getis-Ord Gi* z-score is computed for every cell with a
   **space-time neighbourhood**: the cell's spatial neighbours (focal cell included) at
   step ``t`` plus the same cells in the previous ``time_lag`` steps (steps before the
   first one simply do not exist, so early steps have smaller neighbourhoods, as in
   sfdep). The p-value is the two-sided analytic one, ``2·(1 − Φ(|z|))``.
2. Optionally the Benjamini–Hochberg FDR procedure is applied **per step**; a bin is then
   significant when BH rejects it at ``alpha = threshold``. z and p are never adjusted,
   only the significance flags.
3. A Mann-Kendall trend test (tie-corrected) runs on each cell's z-score series.
4. Each cell gets exactly one of 17 categories (see :func:`classify`).

Layout conventions: a cube is an array of shape ``(n_cells, n_steps)``, step 0 the oldest.
The neighbour matrix is a scipy.sparse ``(n_cells, n_cells)`` matrix (CSR preferred) with
non-negative weights (normally binary) **and a non-zero diagonal** (the focal cell is
part of its own neighbourhood, as Gi* requires).

Entry points:

* :func:`emerging_hotspots` — the whole pipeline, returns :class:`EmergingResult`.
* :func:`spacetime_gistar` — step 1 alone, returns ``(z, p)``.
* :func:`mann_kendall` — vectorised Mann-Kendall over rows, returns :class:`MannKendall`.
* :func:`classify` — category codes from significance masks and the trend.
* :data:`LEGEND` — category code → ``{"key", "es", "en"}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import sparse
from scipy.stats import norm

GlobalWindow = Literal["cube", "window", "step"]
_MK_BLOCK = 4096
# Cells per block of the Gi* formula and of the Mann-Kendall ties (see spacetime_gistar).
_BLOCK = 16384

# --- categories --------------------------------------------------------------------------
# Signed codes: > 0 hot, < 0 the cold mirror, 0 no pattern. Stable: stored in the database.
NO_PATTERN = 0
NEW = 1
CONSECUTIVE = 2
INTENSIFYING = 3
PERSISTENT = 4
DIMINISHING = 5
SPORADIC = 6
OSCILLATING = 7
HISTORICAL = 8

_NAMES = {
    NEW: ("new", "Nuevo punto {es}", "New {en} spot"),
    CONSECUTIVE: ("consecutive", "Punto {es} consecutivo", "Consecutive {en} spot"),
    INTENSIFYING: ("intensifying", "Punto {es} en aumento", "Intensifying {en} spot"),
    PERSISTENT: ("persistent", "Punto {es} persistente", "Persistent {en} spot"),
    DIMINISHING: ("diminishing", "Punto {es} en disminución", "Diminishing {en} spot"),
    SPORADIC: ("sporadic", "Punto {es} esporádico", "Sporadic {en} spot"),
    OSCILLATING: ("oscillating", "Punto {es} oscilante", "Oscillating {en} spot"),
    HISTORICAL: ("historical", "Punto {es} histórico", "Historical {en} spot"),
}


def _build_legend() -> dict[int, dict[str, str]]:
    legend = {
        NO_PATTERN: {"key": "no_pattern", "es": "Sin patrón detectado", "en": "No pattern detected"}
    }
    for code, (key, es, en) in _NAMES.items():
        legend[code] = {
            "key": f"{key}_hot_spot",
            "es": es.format(es="caliente"),
            "en": en.format(en="hot"),
        }
        legend[-code] = {
            "key": f"{key}_cold_spot",
            "es": es.format(es="frío"),
            "en": en.format(en="cold"),
        }
    return dict(sorted(legend.items()))


LEGEND: dict[int, dict[str, str]] = _build_legend()
"""Category code → ``{"key": machine name, "es": Spanish label, "en": English label}``.

Codes: 0 no pattern; 1 new, 2 consecutive, 3 intensifying, 4 persistent, 5 diminishing,
6 sporadic, 7 oscillating, 8 historical hot spot; the negative code is the cold mirror
(−1 new cold spot, …, −8 historical cold spot)."""


# --- results -----------------------------------------------------------------------------
@dataclass(frozen=True)
class MannKendall:
    """Mann-Kendall trend test results, one value per series (arrays of shape ``(n,)``).

    * ``s`` — S = Σ_{j>k} sign(x_j − x_k)
    * ``var_s`` — Var(S) with tie correction:
      [n(n−1)(2n+5) − Σ t(t−1)(2t+5)] / 18 over groups of t tied values
    * ``z`` — (S − 1)/√Var if S > 0, (S + 1)/√Var if S < 0, else 0 (continuity-corrected)
    * ``p`` — two-sided normal p-value of ``z``
    * ``tau`` — Kendall's tau-b between time and the series, S / √(n₀(n₀ − n₁)) with
      n₀ = n(n−1)/2 and n₁ the tied pairs; without ties it is S / [n(n−1)/2]. 0 when the
      whole series is constant.
    """

    s: np.ndarray
    var_s: np.ndarray
    z: np.ndarray
    p: np.ndarray
    tau: np.ndarray


@dataclass(frozen=True)
class EmergingResult:
    """Output of :func:`emerging_hotspots`.

    Per bin, shape ``(n_cells, n_steps)``:
        ``z`` Gi* z-score, ``p`` two-sided analytic p (never FDR-adjusted),
        ``significant`` (after FDR when requested), ``hot`` = significant & z > 0,
        ``cold`` = significant & z < 0.
    Per cell, shape ``(n_cells,)``:
        ``trend`` (:class:`MannKendall` on the z series), ``category`` (int8 codes, see
        :data:`LEGEND`).
    ``params`` records every parameter used (for the run metadata).
    """

    z: np.ndarray
    p: np.ndarray
    significant: np.ndarray
    hot: np.ndarray
    cold: np.ndarray
    trend: MannKendall
    category: np.ndarray
    params: dict = field(default_factory=dict)
    legend: dict[int, dict[str, str]] = field(default_factory=lambda: LEGEND)

    def labels(self, lang: str = "en") -> list[str]:
        """The category label of each cell in ``lang`` (``"es"`` or ``"en"``)."""
        return [LEGEND[int(c)][lang] for c in self.category]

    def counts_by_category(self) -> dict[int, int]:
        """Number of cells per category code (codes with zero cells omitted)."""
        codes, counts = np.unique(self.category, return_counts=True)
        return {int(c): int(n) for c, n in zip(codes, counts, strict=True)}


# --- Gi* on the space-time cube -----------------------------------------------------------
def _check_cube(counts) -> np.ndarray:
    x = np.asarray(counts, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"counts must have shape (n_cells, n_steps), got {x.shape}")
    if x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"counts needs at least 2 cells and 1 step, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("counts contains NaN or infinite values")
    return x


def _check_neighbors(neighbors, n_cells: int) -> sparse.csr_matrix:
    if not sparse.issparse(neighbors):
        raise TypeError("neighbors must be a scipy.sparse matrix")
    w = sparse.csr_matrix(neighbors, dtype=float)
    if w.shape != (n_cells, n_cells):
        raise ValueError(f"neighbors must have shape ({n_cells}, {n_cells}), got {w.shape}")
    if w.nnz and w.data.min() < 0:
        raise ValueError("neighbors must have non-negative weights")
    if np.any(w.diagonal() <= 0):
        raise ValueError(
            "neighbors must include the focal cell (non-zero diagonal) for Gi*; "
            "add the identity matrix to the contiguity matrix"
        )
    return w


def _lagged_sum(a: np.ndarray, time_lag: int) -> np.ndarray:
    """out[:, t] = Σ_{l=0..time_lag, t−l ≥ 0} a[:, t−l] (a rolling sum over time).

    Computed in ``a`` itself (a float array the caller gives up): on a long cube a
    cumulative sum and its shifted copy would be two more arrays of the cube's size. The
    columns are summed, then the sum ``time_lag + 1`` steps earlier is taken away, the
    latest step first, so that what is taken away is still a plain cumulative sum.
    """
    out = a
    for t in range(1, out.shape[1]):
        out[:, t] += out[:, t - 1]
    for t in range(out.shape[1] - 1, time_lag, -1):
        out[:, t] -= out[:, t - time_lag - 1]
    return out


def spacetime_gistar(
    counts,
    neighbors,
    *,
    time_lag: int = 1,
    global_window: GlobalWindow = "cube",
) -> tuple[np.ndarray, np.ndarray]:
    """Gi* z-scores and two-sided analytic p-values for every bin of a space-time cube.

    Parameters
    ----------
    counts:
        ``(n_cells, n_steps)`` values (usually incident counts), step 0 the oldest.
    neighbors:
        scipy.sparse ``(n_cells, n_cells)`` spatial weights, non-negative, focal cell
        included (non-zero diagonal).
    time_lag:
        Number of previous steps whose same-place bins join the neighbourhood (ESRI's
        "neighbourhood time step", sfdep's ``k``). 0 = purely spatial Gi* per step.
    global_window:
        Which bins give the global mean X̄, standard deviation S and n of the Gi* formula
        (ESRI's "Define Global Window"):

        * ``"cube"`` (default, ESRI "entire cube") — all bins of the cube, n = cells × steps;
        * ``"window"`` — the bins of steps t−time_lag … t (ESRI "neighbourhood time step");
        * ``"step"`` — the bins of step t only, n = cells (what sfdep does).

    Returns
    -------
    ``(z, p)``, both float arrays of shape ``(n_cells, n_steps)``.

    The statistic for bin (i, t), with lagged neighbourhood sum L = Σ_l Σ_j w_ij x_{j,t−l},
    W = Σ_l Σ_j w_ij and S1 = Σ_l Σ_j w_ij² over the available lags l, is
    ``(L − X̄·W) / (S·√((n·S1 − W²)/(n − 1)))`` (domain reference §6.1).
    Bins whose global window has no variation get z = 0, p = 1 (``"window"``/``"step"``);
    a cube without any variation is refused (``ValueError``, "no variation"), whatever
    the window. With ``time_lag=0`` and ``global_window="step"`` this is the ordinary
    per-step Gi* (esda ``G_Local(star=True)`` on each step's counts).
    """
    x = _check_cube(counts)
    n_cells, n_steps = x.shape
    w = _check_neighbors(neighbors, n_cells)
    if int(time_lag) != time_lag or time_lag < 0:
        raise ValueError(f"time_lag must be a non-negative integer, got {time_lag!r}")
    time_lag = int(time_lag)
    if global_window not in ("cube", "window", "step"):
        raise ValueError(f"global_window must be 'cube', 'window' or 'step', got {global_window!r}")

    # A new array (w @ x never aliases x), so the rolling sum may overwrite it.
    lag_sum = _lagged_sum(np.asarray(w @ x, dtype=float), time_lag)  # (n_cells, n_steps)
    # number of steps present in each step's window: min(t, time_lag) + 1
    m = np.minimum(np.arange(n_steps), time_lag) + 1.0
    row_w = np.asarray(w.sum(axis=1)).ravel()
    row_w2 = np.asarray(w.multiply(w).sum(axis=1)).ravel()

    if not x.std() > 0:
        raise ValueError("no variation: every bin of the cube has the same value")
    if global_window == "cube":
        n = float(x.size)
        mean = x.mean()
        sd = x.std()
        mean = np.full(n_steps, mean)
        sd = np.full(n_steps, sd)
        n = np.full(n_steps, n)
    elif global_window == "step":
        n = np.full(n_steps, float(n_cells))
        mean = x.mean(axis=0)
        sd = x.std(axis=0)
    else:  # window
        n = n_cells * m
        sums = _lagged_sum(x.sum(axis=0, keepdims=True), time_lag)[0]
        sq = _lagged_sum(np.einsum("ct,ct->t", x, x)[None, :], time_lag)[0]
        mean = sums / n
        sd = np.sqrt(np.maximum(sq / n - mean * mean, 0.0))

    # z overwrites the lagged sums and both are computed in blocks of cells: the
    # temporaries of the formula, each the size of the cube, would otherwise be most of
    # the memory of a long run (ten years of months).
    z = lag_sum
    p = np.empty_like(z)
    varies = (sd > 0)[None, :]
    for r0 in range(0, n_cells, _BLOCK):
        rows = slice(r0, r0 + _BLOCK)
        wi = row_w[rows, None] * m[None, :]
        s1 = row_w2[rows, None] * m[None, :]
        denom_sq = (n[None, :] * s1 - wi * wi) / (n[None, :] - 1.0)
        if np.any(denom_sq <= 0):
            raise ValueError(
                "a neighbourhood covers the whole global window (n·S1 − W² ≤ 0); use a "
                "smaller neighbourhood or time_lag, or global_window='cube'"
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            block = (z[rows] - mean[None, :] * wi) / (sd[None, :] * np.sqrt(denom_sq))
        block = np.where(varies, block, 0.0)
        z[rows] = block
        p[rows] = np.minimum(2.0 * norm.sf(np.abs(block)), 1.0)
    return z, p


def bh_reject(p, alpha: float) -> np.ndarray:
    """Benjamini–Hochberg: boolean mask of the p-values rejected at FDR level ``alpha``.

    Sort p ascending, find the largest k with p₍ₖ₎ ≤ k·alpha/m and reject the k smallest
    (all of them when every test passes — no Bonferroni fallback). 1-D input.
    """
    p = np.asarray(p, dtype=float)
    m = p.size
    if m == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(p, kind="stable")
    ok = p[order] <= alpha * np.arange(1, m + 1) / m
    reject = np.zeros(m, dtype=bool)
    if ok.any():
        k = int(np.nonzero(ok)[0][-1]) + 1
        reject[order[:k]] = True
    return reject


# --- Mann-Kendall -----------------------------------------------------------------------------
def mann_kendall(series) -> MannKendall:
    """Two-sided Mann-Kendall trend test along the last axis, vectorised over rows.

    ``series`` is 1-D ``(n_steps,)`` (results are then 0-d arrays) or 2-D
    ``(n_series, n_steps)``; values must be finite and n_steps ≥ 2. Exact equality defines
    ties. See :class:`MannKendall` for the formulas.
    """
    x = np.asarray(series, dtype=float)
    one_d = x.ndim == 1
    x = np.atleast_2d(x)
    if x.ndim != 2:
        raise ValueError("series must be 1-D or 2-D")
    if not np.all(np.isfinite(x)):
        raise ValueError("series contains NaN or infinite values")
    rows, n = x.shape
    if n < 2:
        raise ValueError("Mann-Kendall needs at least 2 time steps")

    # S by pairwise comparisons, time-major blocks of series (contiguous per time step)
    s = np.zeros(rows)
    for r0 in range(0, rows, _MK_BLOCK):
        xt = np.ascontiguousarray(x[r0 : r0 + _MK_BLOCK].T)
        acc = np.zeros(xt.shape[1], dtype=np.int64)
        for k in range(n - 1):
            later, now = xt[k + 1 :], xt[k]
            acc += (later > now).sum(axis=0, dtype=np.int64)
            acc -= (later < now).sum(axis=0, dtype=np.int64)
        s[r0 : r0 + _MK_BLOCK] = acc

    # tie groups: sizes of runs of equal values in each sorted row, in blocks of rows (a
    # sorted copy, group ids and sizes of the whole cube would be three more of its size)
    tie_term = np.zeros(rows)
    tied_pairs = np.zeros(rows)
    for r0 in range(0, rows, _BLOCK):
        srt = np.sort(x[r0 : r0 + _BLOCK], axis=1)
        block = srt.shape[0]
        starts = np.ones_like(srt, dtype=bool)
        starts[:, 1:] = srt[:, 1:] != srt[:, :-1]
        gid = np.cumsum(starts, axis=1) - 1 + (np.arange(block) * n)[:, None]
        sizes = np.bincount(gid.ravel(), minlength=block * n).reshape(block, n).astype(float)
        tie_term[r0 : r0 + block] = (sizes * (sizes - 1) * (2 * sizes + 5)).sum(axis=1)
        tied_pairs[r0 : r0 + block] = (sizes * (sizes - 1) / 2).sum(axis=1)

    var_s = (n * (n - 1) * (2 * n + 5) - tie_term) / 18.0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var_s > 0, (s - np.sign(s)) / np.sqrt(var_s), 0.0)
        n0 = n * (n - 1) / 2.0
        tau = np.where(n0 > tied_pairs, s / np.sqrt(n0 * (n0 - tied_pairs)), 0.0)
    p = np.minimum(2.0 * norm.sf(np.abs(z)), 1.0)
    if one_d:
        return MannKendall(s=s[0], var_s=var_s[0], z=z[0], p=p[0], tau=tau[0])
    return MannKendall(s=s, var_s=var_s, z=z, p=p, tau=tau)


# --- classification ----------------------------------------------------------------------------
def _trailing_run(mask: np.ndarray) -> np.ndarray:
    """Length of the run of True values at the end of each row."""
    rev = mask[:, ::-1]
    first_false = np.argmin(rev, axis=1)
    return np.where(rev.all(axis=1), mask.shape[1], first_false)


def _classify_side(
    same: np.ndarray,
    other: np.ndarray,
    trend_same: np.ndarray,
    trend_other: np.ndarray,
    min_share: float,
) -> np.ndarray:
    """Codes (positive) for cells whose final step is significant on the ``same`` side.

    For hot spots ``same`` = hot, ``trend_same`` = significant increasing trend; for cold
    spots ``same`` = cold, ``trend_same`` = significant decreasing trend (colder).
    """
    n = same.shape[1]
    final = same[:, -1]
    n_same = same.sum(axis=1)
    n_sig = n_same + other.sum(axis=1)
    mostly = n_same >= min_share * n - 1e-9
    prior_other = other[:, :-1].any(axis=1)
    run = _trailing_run(same)
    conditions = [
        final & (n_sig == 1),
        final & mostly & trend_same,
        final & mostly & trend_other,
        final & mostly,
        final & prior_other,
        final & (n_sig == run),
        final,
    ]
    choices = [NEW, INTENSIFYING, DIMINISHING, PERSISTENT, OSCILLATING, CONSECUTIVE, SPORADIC]
    return np.select(conditions, choices, default=NO_PATTERN)


def classify(
    hot,
    cold,
    trend_tau,
    trend_p,
    *,
    trend_threshold: float = 0.05,
    min_share: float = 0.9,
    sporadic_requires_final: bool = True,
) -> np.ndarray:
    """Emerging hot spot category code of each cell (int8, see :data:`LEGEND`).

    ``hot``/``cold`` are boolean ``(n_cells, n_steps)`` masks of significant hot/cold bins
    (never both in one bin); ``trend_tau``/``trend_p`` the Mann-Kendall tau (only its sign
    is used) and p of each cell's z series. A trend is significant when p ≤
    ``trend_threshold``. "≥ 90 %" is ``count ≥ min_share · n_steps``.

    The categories form a partition, decided in this order (cold: swap hot/cold and the
    direction of the trend):

    1. Final step significant hot:
       * **new** — it is the only significant bin of the series (hot or cold);
       * **intensifying** — ≥ 90 % of bins hot and significant upward trend;
       * **diminishing** — ≥ 90 % hot and significant downward trend;
       * **persistent** — ≥ 90 % hot, no significant trend;
       * **oscillating** — < 90 % hot and some earlier bin significant cold;
       * **consecutive** — the significant bins are exactly one uninterrupted run of hot
         bins ending at the final step (≥ 2 long, since 1 is "new");
       * **sporadic** — otherwise (earlier on-and-off hot, never cold).
    2. Final step significant cold: the mirror list (intensifying cold = significant
       downward trend, i.e. getting colder).
    3. Final step not significant:
       * **historical** hot/cold — ≥ 90 % of bins hot/cold;
       * with ``sporadic_requires_final=False`` (sfdep's reading): **sporadic** hot when
         some bin is hot and none cold (mirror for cold);
       * otherwise **no pattern**.

    A series can only reach "≥ 90 %" and have a non-significant final step when
    n_steps ≥ 10 (with the default share), so "historical" needs at least 10 steps.
    """
    hot = np.asarray(hot, dtype=bool)
    cold = np.asarray(cold, dtype=bool)
    if hot.ndim != 2 or hot.shape != cold.shape:
        raise ValueError("hot and cold must be boolean arrays of the same (n_cells, n_steps)")
    if np.any(hot & cold):
        raise ValueError("a bin cannot be both hot and cold")
    if not 0.5 < min_share <= 1:
        raise ValueError("min_share must be in (0.5, 1]")
    tau = np.asarray(trend_tau, dtype=float).reshape(-1)
    tp = np.asarray(trend_p, dtype=float).reshape(-1)
    if tau.shape[0] != hot.shape[0] or tp.shape[0] != hot.shape[0]:
        raise ValueError("trend_tau and trend_p need one value per cell")
    sig_trend = tp <= trend_threshold
    up = sig_trend & (tau > 0)
    down = sig_trend & (tau < 0)

    n = hot.shape[1]
    hot_codes = _classify_side(hot, cold, up, down, min_share)
    cold_codes = _classify_side(cold, hot, down, up, min_share)
    mostly_hot = hot.sum(axis=1) >= min_share * n - 1e-9
    mostly_cold = cold.sum(axis=1) >= min_share * n - 1e-9
    any_hot = hot.any(axis=1)
    any_cold = cold.any(axis=1)

    conditions = [hot[:, -1], cold[:, -1], mostly_hot, mostly_cold]
    choices = [hot_codes, -cold_codes, HISTORICAL, -HISTORICAL]
    if not sporadic_requires_final:
        conditions += [any_hot & ~any_cold, any_cold & ~any_hot]
        choices += [SPORADIC, -SPORADIC]
    return np.select(conditions, choices, default=NO_PATTERN).astype(np.int8)


# --- pipeline ---------------------------------------------------------------------------------
def emerging_hotspots(
    counts,
    neighbors,
    *,
    time_lag: int = 1,
    threshold: float = 0.05,
    fdr: bool = True,
    global_window: GlobalWindow = "cube",
    trend_threshold: float | None = None,
    min_share: float = 0.9,
    sporadic_requires_final: bool = True,
    never_cold=None,
) -> EmergingResult:
    """Emerging Hot Spot Analysis of a space-time cube.

    Parameters
    ----------
    counts:
        ``(n_cells, n_steps)`` counts per cell and time step (step 0 the oldest). Include
        zero-count cells and empty steps: Gi* is biased without them.
    neighbors:
        scipy.sparse ``(n_cells, n_cells)`` binary spatial neighbour matrix with the focal
        cell included (the same matrix the grid Gi* uses).
    time_lag:
        Previous steps in the space-time neighbourhood (default 1, like ESRI and sfdep).
    threshold:
        Significance level for a bin (p ≤ threshold, or BH at this level when ``fdr``).
    fdr:
        Apply Benjamini–Hochberg within each time step (default, as ESRI does).
    global_window:
        See :func:`spacetime_gistar` (default ``"cube"``).
    trend_threshold:
        Significance level of the Mann-Kendall trend; ``None`` → ``threshold``.
    min_share:
        The "90 %" of the category rules.
    sporadic_requires_final:
        ESRI's current definition (sporadic hot spots are hot in the final step) when
        True; sfdep's when False. See :func:`classify`.
    never_cold:
        Optional boolean ``(n_cells,)``: cells whose bins are never cold (their cold bins
        become not significant before the categories are decided, so they get no cold
        category and count as never cold for the hot ones). Their counts still enter every
        z-score. Used for cells mostly outside the analysis area.

    Returns
    -------
    :class:`EmergingResult`. Deterministic: no randomness is involved.
    """
    x = _check_cube(counts)
    if x.shape[1] < 2:
        raise ValueError("emerging hot spot analysis needs at least 2 time steps (10+ advised)")
    if not 0 < threshold < 1:
        raise ValueError("threshold must be in (0, 1)")
    trend_threshold = threshold if trend_threshold is None else trend_threshold

    z, p = spacetime_gistar(x, neighbors, time_lag=time_lag, global_window=global_window)
    if fdr:
        significant = np.column_stack([bh_reject(p[:, t], threshold) for t in range(p.shape[1])])
    else:
        significant = p <= threshold
    hot = significant & (z > 0)
    cold = significant & (z < 0)
    if never_cold is not None:
        never_cold = np.asarray(never_cold, dtype=bool).reshape(-1)
        if never_cold.shape[0] != x.shape[0]:
            raise ValueError("never_cold needs one value per cell")
        cold &= ~never_cold[:, None]
        significant = hot | cold
    trend = mann_kendall(z)
    category = classify(
        hot,
        cold,
        trend.tau,
        trend.p,
        trend_threshold=trend_threshold,
        min_share=min_share,
        sporadic_requires_final=sporadic_requires_final,
    )
    params = {
        "method": "emerging_hot_spot_analysis",
        "statistic": "getis_ord_gi_star_spacetime",
        "p_value": "analytic_two_sided",
        "time_lag": int(time_lag),
        "threshold": float(threshold),
        "fdr": "benjamini_hochberg_per_step" if fdr else None,
        "global_window": global_window,
        "trend_test": "mann_kendall_tie_corrected_on_gi_z",
        "trend_threshold": float(trend_threshold),
        "min_share": float(min_share),
        "sporadic_requires_final": bool(sporadic_requires_final),
        "n_cells": int(x.shape[0]),
        "n_steps": int(x.shape[1]),
    }
    return EmergingResult(
        z=z,
        p=p,
        significant=significant,
        hot=hot,
        cold=cold,
        trend=trend,
        category=category,
        params=params,
    )
