"""Emerging hot spot analysis: Mann-Kendall, space-time Gi*, category rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import sparse
from scipy.stats import kendalltau, norm

from hotspots.engine.emerging import (
    CONSECUTIVE,
    DIMINISHING,
    HISTORICAL,
    INTENSIFYING,
    LEGEND,
    NEW,
    NO_PATTERN,
    OSCILLATING,
    PERSISTENT,
    SPORADIC,
    bh_reject,
    classify,
    emerging_hotspots,
    mann_kendall,
    spacetime_gistar,
)

# --- helpers ------------------------------------------------------------------------------


def queen_grid(rows: int, cols: int) -> sparse.csr_matrix:
    """Binary queen contiguity of a rows×cols square grid, focal cell included."""
    idx = np.arange(rows * cols).reshape(rows, cols)
    i_list, j_list = [], []
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            r0, r1 = max(0, -dr), rows - max(0, dr)
            c0, c1 = max(0, -dc), cols - max(0, dc)
            i_list.append(idx[r0:r1, c0:c1].ravel())
            j_list.append(idx[r0 + dr : r1 + dr, c0 + dc : c1 + dc].ravel())
    i = np.concatenate(i_list)
    j = np.concatenate(j_list)
    return sparse.csr_matrix((np.ones(i.size), (i, j)), shape=(rows * cols, rows * cols))


SIDE = 12
CENTRE = 5 * SIDE + 5  # the centre of the 3×3 block whose pattern we control
BLOCK = [r * SIDE + c for r in (4, 5, 6) for c in (4, 5, 6)]


def cube(pattern: str, values=None, *, background: float = 20.0, seed: int = 7) -> np.ndarray:
    """A 12×12 grid × len(pattern) steps of counts.

    Background: Poisson(background) counts (seeded). In each step the 3×3 block around
    CENTRE is set by the pattern letter: 'H' high (60), 'C' zero, '.' background.
    ``values`` overrides the block value per step (for trends).
    """
    rng = np.random.default_rng(seed)
    x = rng.poisson(background, size=(SIDE * SIDE, len(pattern))).astype(float)
    for t, ch in enumerate(pattern):
        if values is not None and values[t] is not None:
            x[BLOCK, t] = values[t]
        elif ch == "H":
            x[BLOCK, t] = 3 * background
        elif ch == "C":
            x[BLOCK, t] = 0.0
    return x


def masks(pattern: str) -> tuple[np.ndarray, np.ndarray]:
    hot = np.array([[c == "H" for c in pattern]])
    cold = np.array([[c == "C" for c in pattern]])
    return hot, cold


# --- Mann-Kendall -----------------------------------------------------------------------------


def test_mann_kendall_hand_computed_no_ties():
    mk = mann_kendall([3.0, 1.0, 2.0])
    # pairs: (3,1) −, (3,2) −, (1,2) + → S = −1
    assert mk.s == -1
    assert mk.var_s == pytest.approx(3 * 2 * 11 / 18)
    assert mk.z == 0.0  # continuity correction: (S + 1)/√Var
    assert mk.p == 1.0
    assert mk.tau == pytest.approx(-1 / 3)


def test_mann_kendall_hand_computed_with_ties():
    mk = mann_kendall([1.0, 2.0, 2.0, 3.0])
    # S = 5 (five concordant pairs, one tie); one tie group of size 2
    assert mk.s == 5
    var = (4 * 3 * 13 - 2 * 1 * 9) / 18  # = 138/18
    assert mk.var_s == pytest.approx(var)
    assert mk.z == pytest.approx(4 / math.sqrt(var))
    assert mk.p == pytest.approx(2 * norm.sf(4 / math.sqrt(var)))
    assert mk.tau == pytest.approx(5 / math.sqrt(6 * 5))  # tau-b


def test_mann_kendall_constant_series():
    mk = mann_kendall([2.0, 2.0, 2.0, 2.0])
    assert (mk.s, mk.var_s, mk.z, mk.p, mk.tau) == (0, 0, 0, 1, 0)


def test_mann_kendall_matches_scipy_kendalltau():
    rng = np.random.default_rng(42)
    series = [
        rng.normal(size=15),
        np.arange(12.0) + rng.normal(scale=3, size=12),
        rng.integers(0, 4, size=20).astype(float),  # heavy ties
        np.array([5, 5, 5, 4, 4, 6, 7, 7, 1, 2, 9, 9, 9, 9], dtype=float),
        -np.arange(30.0),
    ]
    for x in series:
        n = x.size
        ref = kendalltau(np.arange(n), x, variant="b", method="asymptotic")
        mk = mann_kendall(x)
        n0 = n * (n - 1) / 2
        _, tie_counts = np.unique(x, return_counts=True)
        n1 = (tie_counts * (tie_counts - 1) / 2).sum()
        # tau-b and S (= tau_b · √(n0 (n0 − n1)) because time has no ties)
        assert mk.tau == pytest.approx(ref.statistic, abs=1e-12)
        assert mk.s == pytest.approx(ref.statistic * math.sqrt(n0 * (n0 - n1)), abs=1e-9)
        # scipy's asymptotic test uses the same tie-corrected Var(S) without the
        # continuity correction: p = 2·sf(|S|/√Var)
        p_uncorrected = 2 * norm.sf(abs(mk.s) / math.sqrt(mk.var_s))
        assert p_uncorrected == pytest.approx(ref.pvalue, rel=1e-9)
        if mk.s != 0:
            assert mk.z == pytest.approx((mk.s - np.sign(mk.s)) / math.sqrt(mk.var_s))


def test_mann_kendall_vectorised_rows_equal_single_calls():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 5, size=(8, 11)).astype(float)
    mk = mann_kendall(x)
    for i in range(8):
        one = mann_kendall(x[i])
        assert (mk.s[i], mk.var_s[i], mk.tau[i], mk.p[i]) == pytest.approx(
            (one.s, one.var_s, one.tau, one.p)
        )


def test_mann_kendall_refuses_bad_input():
    with pytest.raises(ValueError):
        mann_kendall([1.0])
    with pytest.raises(ValueError):
        mann_kendall([1.0, np.nan, 2.0])


# --- space-time Gi* -----------------------------------------------------------------------------


def brute_force_gistar(x, w, time_lag, window):
    """Gi* straight from the formula, one bin at a time, explicit space-time neighbours."""
    w = w.toarray()
    n_cells, n_steps = x.shape
    z = np.zeros_like(x)
    for t in range(n_steps):
        if window == "cube":
            pop = x.ravel()
        elif window == "step":
            pop = x[:, t]
        else:
            pop = x[:, max(0, t - time_lag) : t + 1].ravel()
        n, mean, sd = pop.size, pop.mean(), pop.std()
        for i in range(n_cells):
            lag = wsum = s1 = 0.0
            for ell in range(time_lag + 1):
                if t - ell < 0:
                    continue
                for j in range(n_cells):
                    if w[i, j]:
                        lag += w[i, j] * x[j, t - ell]
                        wsum += w[i, j]
                        s1 += w[i, j] ** 2
            z[i, t] = (lag - mean * wsum) / (sd * math.sqrt((n * s1 - wsum**2) / (n - 1)))
    return z


@pytest.mark.parametrize("window", ["cube", "window", "step"])
@pytest.mark.parametrize("time_lag", [0, 1, 2])
def test_spacetime_gistar_matches_brute_force(window, time_lag):
    rng = np.random.default_rng(11)
    w = queen_grid(6, 6)  # "step" needs W < n: 9 cells × 3 steps < 36
    x = rng.poisson(3, size=(36, 6)).astype(float)
    z, p = spacetime_gistar(x, w, time_lag=time_lag, global_window=window)
    assert z == pytest.approx(brute_force_gistar(x, w, time_lag, window), abs=1e-12)
    assert p == pytest.approx(2 * norm.sf(np.abs(z)), abs=1e-15)


def test_spacetime_gistar_cube_window_matches_esda_on_space_time_graph():
    """With the whole cube as global window, space-time Gi* is plain Gi* on a graph whose
    nodes are bins: (j, t−l) is a neighbour of (i, t) when j ∈ N(i) and 0 ≤ l ≤ time_lag."""
    from esda.getisord import G_Local
    from libpysal.weights import W

    rng = np.random.default_rng(5)
    rows, cols, n_steps, time_lag = 4, 4, 5, 1
    w = queen_grid(rows, cols)
    n_cells = rows * cols
    x = rng.poisson(4, size=(n_cells, n_steps)).astype(float)
    neighbors, weights = {}, {}
    for t in range(n_steps):
        for i in range(n_cells):
            node = t * n_cells + i
            nb = [
                (t - ell) * n_cells + j
                for ell in range(time_lag + 1)
                if t - ell >= 0
                for j in w[i].indices
            ]
            neighbors[node] = nb
            weights[node] = [1.0] * len(nb)
    st_w = W(neighbors, weights, silence_warnings=True)
    y = x.T.ravel()  # node = t·n_cells + i
    ref = G_Local(y, st_w, transform="B", star=True, permutations=0)
    z, _ = spacetime_gistar(x, w, time_lag=time_lag, global_window="cube")
    assert z.T.ravel() == pytest.approx(ref.Zs, abs=1e-10)


def test_lag_zero_step_window_is_plain_gistar_per_step():
    from esda.getisord import G_Local
    from libpysal.weights import WSP

    rng = np.random.default_rng(6)
    w = queen_grid(5, 6)
    x = rng.poisson(3, size=(30, 4)).astype(float)
    z, _ = spacetime_gistar(x, w, time_lag=0, global_window="step")
    lw = WSP(w).to_W(silence_warnings=True)
    for t in range(4):
        ref = G_Local(x[:, t], lw, transform="B", star=True, permutations=0)
        assert z[:, t] == pytest.approx(ref.Zs, abs=1e-10)


def test_time_lag_brings_previous_step_into_neighbourhood():
    # a burst in step 3 only: with lag 1 it also lifts step 4 (which looks back at step 3)
    # but never step 2 (the lag looks backwards only)
    x = cube("...H...")
    z0, _ = spacetime_gistar(x, queen_grid(SIDE, SIDE), time_lag=0)
    z1, _ = spacetime_gistar(x, queen_grid(SIDE, SIDE), time_lag=1)
    assert z0[CENTRE, 3] > 3 and z1[CENTRE, 3] > 3
    assert abs(z0[CENTRE, 4]) < 2 < z1[CENTRE, 4]
    assert abs(z1[CENTRE, 2]) < 2
    # step 0 has no previous step: the lag changes nothing there
    assert z1[:, 0] == pytest.approx(z0[:, 0], abs=1e-12)


def test_gistar_refusals():
    w = queen_grid(3, 3)
    for window in ("cube", "window", "step"):
        with pytest.raises(ValueError, match="no variation"):
            spacetime_gistar(np.full((9, 4), 2.0), w, global_window=window)
    with pytest.raises(ValueError, match="focal"):
        spacetime_gistar(np.ones((9, 4)), w - sparse.eye(9))
    with pytest.raises(ValueError):
        spacetime_gistar(np.ones((9, 4)), w, time_lag=-1)
    with pytest.raises(TypeError):
        spacetime_gistar(np.ones((9, 4)), w.toarray())


def test_bh_reject_against_step_up_definition():
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.2, 0.049])
    # sorted: .005 .01 .03 .04 .049 .2 vs k·0.05/6: .0083 .0167 .025 .033 .0417 .05
    # largest k with p(k) ≤ bound: k = 2 → reject .005 and .01
    assert bh_reject(p, 0.05).tolist() == [True, False, False, True, False, False]
    assert bh_reject(np.array([0.001, 0.002]), 0.05).all()  # all rejected, no fallback
    assert not bh_reject(np.array([0.5, 0.9]), 0.05).any()


# --- category rules on significance patterns ---------------------------------------------------------

UP = (0.5, 0.001)  # (tau, p) of a significant increasing trend
DOWN = (-0.5, 0.001)
FLAT = (0.1, 0.6)

RULE_CASES = [
    # pattern (10 steps), trend, expected
    (".........H", FLAT, NEW),
    (".......HHH", UP, CONSECUTIVE),
    ("HHHHHHHHHH", UP, INTENSIFYING),
    (".HHHHHHHHH", UP, INTENSIFYING),  # exactly 90 %
    ("HHHHHHHHHH", FLAT, PERSISTENT),
    ("HHHHHHHHHH", DOWN, DIMINISHING),
    ("..H..H...H", FLAT, SPORADIC),
    ("HH.HH...HH", FLAT, SPORADIC),  # hot before the final run → not consecutive
    ("..C......H", FLAT, OSCILLATING),
    ("C......HHH", FLAT, OSCILLATING),  # earlier cold beats consecutive
    ("HHHHHHHHH.", FLAT, HISTORICAL),
    ("HHHHHHHHH.", DOWN, HISTORICAL),
    (".........C", FLAT, -NEW),
    (".......CCC", DOWN, -CONSECUTIVE),
    ("CCCCCCCCCC", DOWN, -INTENSIFYING),
    ("CCCCCCCCCC", FLAT, -PERSISTENT),
    ("CCCCCCCCCC", UP, -DIMINISHING),
    ("C...C.C..C", FLAT, -SPORADIC),
    ("...H.....C", FLAT, -OSCILLATING),
    ("CCCCCCCCC.", FLAT, -HISTORICAL),
    ("..........", FLAT, NO_PATTERN),
    ("....H.....", FLAT, NO_PATTERN),  # ESRI: sporadic needs a hot final step
    ("..H...C...", FLAT, NO_PATTERN),
    # ≥ 90 % hot but final cold: the current state wins → oscillating cold, not historical
    ("HHHHHHHHHC", FLAT, -OSCILLATING),
    # ≥ 90 % cold but final hot → oscillating hot
    ("CCCCCCCCCH", FLAT, OSCILLATING),
    # 80 % hot in a final run of 8 after quiet steps: consecutive (< 90 %)
    ("..HHHHHHHH", UP, CONSECUTIVE),
    # 90 % hot as one final run: the ≥ 90 % rules apply
    (".HHHHHHHHH", FLAT, PERSISTENT),
    # a significant trend alone makes nothing
    (".........H", UP, NEW),
]


@pytest.mark.parametrize(("pattern", "trend", "expected"), RULE_CASES)
def test_classify_rules(pattern, trend, expected):
    hot, cold = masks(pattern)
    code = classify(hot, cold, [trend[0]], [trend[1]], trend_threshold=0.05)
    assert code.tolist() == [expected], LEGEND[int(code[0])]["en"]


def test_classify_sporadic_sfdep_variant():
    hot, cold = masks("....H.....")
    assert classify(hot, cold, [0.0], [1.0], sporadic_requires_final=False).tolist() == [SPORADIC]
    hot, cold = masks("..C...C...")
    assert classify(hot, cold, [0.0], [1.0], sporadic_requires_final=False).tolist() == [-SPORADIC]
    hot, cold = masks("..C...H...")  # both sides: still no pattern
    assert classify(hot, cold, [0.0], [1.0], sporadic_requires_final=False).tolist() == [0]


def test_classify_vectorised_and_min_share_parameter():
    patterns = [p for p, _, _ in RULE_CASES]
    hot = np.array([[c == "H" for c in p] for p in patterns])
    cold = np.array([[c == "C" for c in p] for p in patterns])
    tau = [t[0] for _, t, _ in RULE_CASES]
    tp = [t[1] for _, t, _ in RULE_CASES]
    assert classify(hot, cold, tau, tp).tolist() == [e for _, _, e in RULE_CASES]
    # with an 80 % rule, 8 hot of 10 ending hot is persistent, not consecutive
    h, c = masks("..HHHHHHHH")
    assert classify(h, c, [0.1], [0.6], min_share=0.8).tolist() == [PERSISTENT]


def test_classify_refuses_hot_and_cold_in_one_bin():
    with pytest.raises(ValueError):
        classify([[True, True]], [[True, False]], [0.0], [1.0])


def test_legend_covers_every_code_in_both_languages():
    assert sorted(LEGEND) == list(range(-8, 9))
    assert LEGEND[NEW]["es"] == "Nuevo punto caliente"
    assert LEGEND[-HISTORICAL]["en"] == "Historical cold spot"
    assert len({v["key"] for v in LEGEND.values()}) == 17
    assert all(v["es"] and v["en"] for v in LEGEND.values())


# --- synthetic cubes: one per category, through the whole pipeline -----------------------------------

CUBE_CASES = [
    ("new_hot", ".........H", None, NEW),
    ("consecutive_hot", ".......HHH", None, CONSECUTIVE),
    ("intensifying_hot", "HHHHHHHHHH", [40 + 5 * t for t in range(10)], INTENSIFYING),
    ("persistent_hot", "HHHHHHHHHH", None, PERSISTENT),
    ("diminishing_hot", "HHHHHHHHHH", [90 - 5 * t for t in range(10)], DIMINISHING),
    ("sporadic_hot", "..H..H...H", None, SPORADIC),
    ("oscillating_hot", "..C......H", None, OSCILLATING),
    ("historical_hot", "HHHHHHHHH.", None, HISTORICAL),
    ("new_cold", ".........C", None, -NEW),
    ("consecutive_cold", ".......CCC", None, -CONSECUTIVE),
    ("intensifying_cold", "CCCCCCCCCC", [9 - t for t in range(10)], -INTENSIFYING),
    ("persistent_cold", "CCCCCCCCCC", None, -PERSISTENT),
    ("diminishing_cold", "CCCCCCCCCC", list(range(10)), -DIMINISHING),
    ("sporadic_cold", "C...C.C..C", None, -SPORADIC),
    ("oscillating_cold", "...H.....C", None, -OSCILLATING),
    ("historical_cold", "CCCCCCCCC.", None, -HISTORICAL),
    ("no_pattern", "..........", None, NO_PATTERN),
]


@pytest.mark.parametrize(
    ("name", "pattern", "values", "expected"), CUBE_CASES, ids=[c[0] for c in CUBE_CASES]
)
def test_synthetic_cube_category(name, pattern, values, expected):
    x = cube(pattern, values)
    res = emerging_hotspots(x, queen_grid(SIDE, SIDE), time_lag=0, threshold=0.05, fdr=True)
    # the counts produce exactly the designed significance pattern at the centre cell …
    hot, cold = masks(pattern)
    assert np.array_equal(res.hot[CENTRE], hot[0])
    assert np.array_equal(res.cold[CENTRE], cold[0])
    # … and the rule gives the category
    got = int(res.category[CENTRE])
    assert got == expected, f"{name}: got {LEGEND[got]['en']}"
    assert res.z.shape == res.p.shape == res.hot.shape == x.shape
    assert res.category.shape == res.trend.tau.shape == (SIDE * SIDE,)
    if expected in (INTENSIFYING, -DIMINISHING):
        assert res.trend.tau[CENTRE] > 0 and res.trend.p[CENTRE] <= 0.05
    if expected in (DIMINISHING, -INTENSIFYING):
        assert res.trend.tau[CENTRE] < 0 and res.trend.p[CENTRE] <= 0.05


def test_new_hot_spot_with_default_time_lag():
    res = emerging_hotspots(cube(".........H"), queen_grid(SIDE, SIDE))
    assert res.params["time_lag"] == 1
    assert res.category[CENTRE] == NEW
    assert res.labels("es")[CENTRE] == "Nuevo punto caliente"


def test_pipeline_records_parameters_and_is_deterministic():
    x = cube("..H..H...H")
    w = queen_grid(SIDE, SIDE)
    a = emerging_hotspots(x, w, threshold=0.01, fdr=False, global_window="step")
    b = emerging_hotspots(x, w, threshold=0.01, fdr=False, global_window="step")
    assert np.array_equal(a.z, b.z) and np.array_equal(a.category, b.category)
    assert a.params["threshold"] == 0.01
    assert a.params["trend_threshold"] == 0.01
    assert a.params["fdr"] is None
    assert a.params["global_window"] == "step"
    assert sum(a.counts_by_category().values()) == SIDE * SIDE
    # without FDR, significance is p ≤ threshold
    assert np.array_equal(a.significant, a.p <= 0.01)


def test_fdr_is_per_step():
    x = cube("HHHHH")
    w = queen_grid(SIDE, SIDE)
    res = emerging_hotspots(x, w, fdr=True)
    for t in range(x.shape[1]):
        assert np.array_equal(res.significant[:, t], bh_reject(res.p[:, t], 0.05))


def test_pipeline_refuses_single_step():
    with pytest.raises(ValueError, match="2 time steps"):
        emerging_hotspots(cube("H"), queen_grid(SIDE, SIDE))
