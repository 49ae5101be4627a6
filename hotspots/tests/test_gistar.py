"""Gi*, permutations, Benjamini–Hochberg and bins, against independent references:
PySAL esda's ``G_Local`` (analytic) on the same counts and weights, and a textbook BH."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from libpysal.weights import W

from hotspots.engine import HotspotRefused
from hotspots.engine import grid as grids
from hotspots.engine.gistar import (
    benjamini_hochberg,
    bin_for_alpha,
    confidence_bins,
    gi_star_z,
    p_two_sided,
    permutation_p,
    run_gistar,
)

SRID = 32718


def block(grid: grids.Grid, width: int, height: int):
    """A width × height block of cells, sorted by (i, j)."""
    i, j = np.meshgrid(np.arange(width) - width // 3, np.arange(height) - 2, indexing="ij")
    i, j = i.ravel(), j.ravel()
    order = np.argsort(grids.cell_keys(i, j))
    return i[order], j[order]


def planted_counts(grid: grids.Grid, i, j, seed: int) -> np.ndarray:
    """Poisson background plus one cluster: realistic counts with zeros and a hot spot."""
    rng = np.random.default_rng(seed)
    x, y = grid.centres(i, j)
    cx, cy = np.median(x), np.median(y)
    distance = np.hypot(x - cx, y - cy)
    rate = 0.7 + 12.0 * np.exp(-((distance / (3 * grid.spacing_m)) ** 2))
    return rng.poisson(rate)


def esda_weights(grid: grids.Grid, i, j, **kwargs) -> W:
    """A libpysal W built from OUR neighbour lists (the focal cell left out: esda adds it
    with star=True and binary weights)."""
    matrix = grids.weights_matrix(grid, i, j, **kwargs).tocsr()
    neighbours = {}
    for row in range(matrix.shape[0]):
        columns = matrix.indices[matrix.indptr[row] : matrix.indptr[row + 1]]
        neighbours[row] = [int(c) for c in columns if c != row]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # islands are impossible here; W warns about none
        return W(neighbours, id_order=list(range(matrix.shape[0])))


def esda_gi_star(counts, w):
    from esda.getisord import G_Local

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return G_Local(counts.astype(float), w, star=True, transform="B", permutations=0)


@pytest.mark.parametrize(
    ("kind", "rule", "band"),
    [
        ("square", grids.CONTIGUITY, None),
        ("hex", grids.CONTIGUITY, None),
        ("hex", grids.DISTANCE_BAND, 250.0),
        ("square", grids.DISTANCE_BAND, 330.0),
    ],
)
@pytest.mark.parametrize("seed", [1, 2])
def test_z_scores_equal_esda_g_local_star(kind, rule, band, seed):
    grid = grids.Grid(kind, 100.0, SRID)
    i, j = block(grid, 31, 23)
    counts = planted_counts(grid, i, j, seed)
    assert (counts == 0).any() and counts.max() > 5

    z = gi_star_z(counts, grids.weights_matrix(grid, i, j, rule=rule, band_m=band))
    reference = esda_gi_star(counts, esda_weights(grid, i, j, rule=rule, band_m=band))

    np.testing.assert_allclose(z, reference.Zs, rtol=0, atol=1e-8)
    # esda's p_norm is one-sided (the tail beyond |z|); ours is two-sided.
    np.testing.assert_allclose(p_two_sided(z), 2 * reference.p_norm, rtol=0, atol=1e-12)
    assert (z > 3).any()  # the planted cluster is there


def test_z_score_formula_by_hand_for_one_cell():
    """The reference formula written out for one cell, independently of the vector code."""
    grid = grids.Grid("square", 100.0, SRID)
    i, j = block(grid, 9, 7)
    counts = planted_counts(grid, i, j, 5)
    weights = grids.weights_matrix(grid, i, j)
    cell = 20
    neighbours = weights[cell].indices
    n = len(counts)
    mean = counts.sum() / n
    s = np.sqrt((counts.astype(float) ** 2).sum() / n - mean**2)
    w_sum = len(neighbours)
    expected = (counts[neighbours].sum() - mean * w_sum) / (
        s * np.sqrt((n * w_sum - w_sum**2) / (n - 1))
    )
    assert gi_star_z(counts, weights)[cell] == pytest.approx(expected, abs=1e-12)


def textbook_bh(p: np.ndarray, alpha: float) -> np.ndarray:
    """Benjamini–Hochberg step-up, written the long way: the largest k with
    p_(k) ≤ k·α/n, then every p ≤ p_(k) is rejected."""
    n = len(p)
    ranked = sorted(p)
    cutoff = None
    for k in range(n, 0, -1):
        if ranked[k - 1] <= k * alpha / n:
            cutoff = ranked[k - 1]
            break
    if cutoff is None:
        return np.zeros(n, dtype=bool)
    return np.array([value <= cutoff for value in p])


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.10])
@pytest.mark.parametrize("seed", range(5))
def test_fdr_equals_textbook_benjamini_hochberg(alpha, seed):
    rng = np.random.default_rng(seed)
    # A mixture of nulls and signals, with ties (rounded) like permutation p-values have.
    p = np.concatenate([rng.uniform(size=400), rng.beta(0.3, 12, size=80)])
    p = np.round(p, 3)
    rng.shuffle(p)
    ours = benjamini_hochberg(p, alpha)
    assert np.array_equal(ours, textbook_bh(p, alpha))
    assert 0 < ours.sum() < len(p)


def test_fdr_edge_cases():
    assert not benjamini_hochberg(np.array([]), 0.05).any()
    assert benjamini_hochberg(np.array([0.001, 0.002, 0.003]), 0.05).all()
    assert not benjamini_hochberg(np.array([0.2, 0.5, 0.9]), 0.05).any()


def test_bins_reflect_fdr_but_z_and_p_are_never_adjusted():
    grid = grids.Grid("hex", 100.0, SRID)
    i, j = block(grid, 40, 30)
    counts = planted_counts(grid, i, j, 3)
    weights = grids.weights_matrix(grid, i, j)
    raw = run_gistar(counts, weights, fdr=False)
    adjusted = run_gistar(counts, weights, fdr=True)
    assert np.array_equal(raw.z, adjusted.z) and np.array_equal(raw.p, adjusted.p)
    for level, alpha in ((1, 0.10), (2, 0.05), (3, 0.01)):
        assert np.array_equal(np.abs(raw.bins) >= level, raw.p <= alpha)
        assert np.array_equal(np.abs(adjusted.bins) >= level, textbook_bh(adjusted.p, alpha))
    assert np.array_equal(
        np.sign(adjusted.bins[adjusted.bins != 0]), np.sign(adjusted.z[adjusted.bins != 0])
    )
    assert (np.abs(adjusted.bins) > 0).sum() <= (np.abs(raw.bins) > 0).sum()
    assert bin_for_alpha(0.05) == 2
    with pytest.raises(HotspotRefused):
        bin_for_alpha(0.2)


def test_constant_counts_are_refused_with_no_variation():
    grid = grids.Grid("square", 100.0, SRID)
    i, j = block(grid, 8, 8)
    with pytest.raises(HotspotRefused, match="no variation"):
        run_gistar(np.full(len(i), 4), grids.weights_matrix(grid, i, j))


@pytest.mark.parametrize("kind", ["square", "hex"])
def test_random_points_about_alpha_significant_before_fdr_almost_none_after(kind):
    """Complete spatial randomness: ~α of the cells look significant without correction,
    almost none with FDR. Only whole cells inside the square are kept (cut cells at the
    edge would have fewer points by construction)."""
    grid = grids.Grid(kind, 50.0, SRID)
    before, after, cells = 0, 0, 0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        x, y = rng.uniform(0, 3000, 20_000), rng.uniform(0, 3000, 20_000)
        keys, counts = np.unique(grids.cell_keys(*grid.index(x, y)), return_counts=True)
        i, j = grids.split_keys(keys)
        cx, cy = grid.centres(i, j)
        half_w = grid.size if kind == "hex" else grid.size / 2
        half_h = grid.spacing_m / 2 if kind == "hex" else grid.size / 2
        whole = (
            (cx - half_w >= 0) & (cx + half_w <= 3000) & (cy - half_h >= 0) & (cy + half_h <= 3000)
        )
        i, j, counts = i[whole], j[whole], counts[whole]
        weights = grids.weights_matrix(grid, i, j)
        before += int((run_gistar(counts, weights, fdr=False).p <= 0.05).sum())
        after += int((np.abs(run_gistar(counts, weights, fdr=True).bins) >= 2).sum())
        cells += len(counts)
    assert 0.03 <= before / cells <= 0.07
    assert after / cells <= 0.003


def test_conditional_permutations_are_seeded_and_agree_with_the_analytic_test():
    grid = grids.Grid("hex", 100.0, SRID)
    i, j = block(grid, 30, 25)
    counts = planted_counts(grid, i, j, 4)
    weights = grids.weights_matrix(grid, i, j)
    first = permutation_p(counts, weights, permutations=999, seed=42)
    again = permutation_p(counts, weights, permutations=999, seed=42)
    other = permutation_p(counts, weights, permutations=999, seed=43)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.min() >= 2 / 1000 and first.max() <= 1.0
    analytic = p_two_sided(gi_star_z(counts, weights))
    # The centre of the planted cluster is as extreme as 999 draws can say.
    assert first[np.argmax(counts)] == pytest.approx(2 / 1000)
    # The two tests largely agree on which cells are significant at 5 %.
    both = ((first <= 0.05) & (analytic <= 0.05)).sum()
    either = ((first <= 0.05) | (analytic <= 0.05)).sum()
    assert both / either > 0.6

    result = run_gistar(counts, weights, permutations=199, seed=7)
    assert result.p_sim is not None and np.array_equal(result.p, result.p_sim)
    assert np.array_equal(result.bins, confidence_bins(result.z, result.p_sim, fdr=True))
