"""Quartic kernel density: mass conservation, kernel shape, bandwidth rule, grid layout."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hotspots.engine.kde import _quartic_sum, default_bandwidth, kde_grid


def quartic_per_km2(d: np.ndarray, h: float) -> np.ndarray:
    """The textbook quartic kernel 3/(π h²)·(1 − d²/h²)², per km² (d, h in metres)."""
    return np.where(d < h, 3 / (math.pi * h * h) * (1 - (d / h) ** 2) ** 2, 0.0) * 1e6


def test_density_integrates_to_number_of_points():
    rng = np.random.default_rng(1)
    xs = np.concatenate([rng.normal(1000, 300, 700), rng.uniform(0, 5000, 300)])
    ys = np.concatenate([rng.normal(2000, 200, 700), rng.uniform(0, 3000, 300)])
    res = kde_grid(xs, ys)  # default bounds: extent grown by the bandwidth
    assert res.total() == pytest.approx(1000, rel=0.01)
    # an explicit, larger grid as well
    res2 = kde_grid(xs, ys, bounds=(-2000, -2000, 7000, 5000), cell_size=25)
    assert res2.total() == pytest.approx(1000, rel=0.01)


def test_weighted_density_integrates_to_total_weight():
    rng = np.random.default_rng(2)
    xs, ys = rng.uniform(0, 2000, 200), rng.uniform(0, 1000, 200)
    weights = rng.integers(1, 4, 200).astype(float)
    res = kde_grid(xs, ys, bandwidth=150, weights=weights)
    assert res.total() == pytest.approx(weights.sum(), rel=0.01)
    assert res.total_weight == weights.sum()
    # weights of 2 double the unweighted density
    double = kde_grid(xs, ys, bandwidth=150, weights=np.full(200, 2.0))
    plain = kde_grid(xs, ys, bandwidth=150)
    np.testing.assert_allclose(double.density, 2 * plain.density, rtol=1e-12, atol=1e-12)


def test_single_point_matches_quartic_formula():
    px, py, h = 3.3, -7.1, 100.0
    res = kde_grid([px], [py], bandwidth=h, cell_size=10, bounds=(-200, -200, 200, 200))
    assert res.origin == (-200, -200)
    assert res.shape == (40, 40)
    xs, ys = res.cell_centers()
    # a few cells at known distances
    for row, col in [(20, 20), (21, 25), (25, 14), (30, 20), (20, 29), (10, 10), (0, 0)]:
        d = math.hypot(xs[col] - px, ys[row] - py)
        expected = float(quartic_per_km2(np.array(d), h))
        assert res.density[row, col] == pytest.approx(expected, rel=1e-12, abs=1e-12)
    # the whole grid
    gx, gy = np.meshgrid(xs, ys)
    np.testing.assert_allclose(
        res.density, quartic_per_km2(np.hypot(gx - px, gy - py), h), rtol=1e-10, atol=1e-12
    )
    # the peak value of the kernel is 3/(π h²)
    near = kde_grid([5.0], [5.0], bandwidth=h, cell_size=10, bounds=(-200, -200, 200, 200))
    assert near.density.max() == pytest.approx(3 / (math.pi * h * h) * 1e6)


@pytest.mark.parametrize("method", ["moments", "points", "auto"])
@pytest.mark.parametrize("radius", [0.4, 1.0, 3.3, 7.5])
def test_exact_sum_matches_brute_force(method, radius):
    rng = np.random.default_rng(int(radius * 10))
    fx, fy = rng.uniform(-4, 16, 250), rng.uniform(-4, 12, 250)
    w = rng.uniform(0, 3, 250)
    rows, cols = 9, 13
    cy, cx = np.mgrid[0:rows, 0:cols] + 0.5
    d2 = (cx[..., None] - fx) ** 2 + (cy[..., None] - fy) ** 2
    ref = (w * np.where(d2 < radius**2, (1 - d2 / radius**2) ** 2, 0)).sum(axis=-1)
    got = _quartic_sum(fx, fy, w, radius, rows, cols, method)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


def test_points_outside_bounds_still_contribute():
    res = kde_grid([-50.0], [50.0], bandwidth=100, cell_size=10, bounds=(0, 0, 100, 100))
    xs, ys = res.cell_centers()
    d = math.hypot(xs[0] + 50, ys[5] - 50)
    assert res.density[5, 0] == pytest.approx(float(quartic_per_km2(np.array(d), 100)))
    assert res.density[:, -1].max() == 0  # 145 m away: beyond the radius


def test_bandwidth_rule_standard_distance_term():
    # four points 1 km from their mean centre: SD = Dm = 1000; SD < √(1/ln2)·Dm
    xs, ys = [1000.0, -1000.0, 0.0, 0.0], [0.0, 0.0, 1000.0, -1000.0]
    h, record = default_bandwidth(xs, ys)
    assert record["standard_distance"] == pytest.approx(1000)
    assert record["median_distance"] == pytest.approx(1000)
    assert record["term_used"] == "standard_distance"
    assert h == pytest.approx(0.9 * 1000 * 4**-0.2)
    assert kde_grid(xs, ys).bandwidth == pytest.approx(h)


def test_bandwidth_rule_median_term_resists_outliers():
    # four points at 100 m and two outliers at 10 km, symmetric around the origin
    xs = [100.0, -100.0, 0.0, 0.0, 10_000.0, -10_000.0]
    ys = [0.0, 0.0, 100.0, -100.0, 0.0, 0.0]
    h, record = default_bandwidth(xs, ys)
    sd = math.sqrt((4 * 100**2 + 2 * 10_000**2) / 6)
    assert record["standard_distance"] == pytest.approx(sd)
    assert record["median_distance"] == pytest.approx(100)
    assert record["term_used"] == "median_distance"
    assert h == pytest.approx(0.9 * math.sqrt(1 / math.log(2)) * 100 * 6**-0.2)


def test_weighted_bandwidth_counts_weights_as_points():
    xs, ys = [1000.0, -1000.0, 0.0, 0.0], [0.0, 0.0, 1000.0, -1000.0]
    h, record = default_bandwidth(xs, ys, weights=[2, 2, 2, 2])
    assert record["n"] == 8
    assert h == pytest.approx(0.9 * 1000 * 8**-0.2)


def test_default_cell_size_and_layout():
    rng = np.random.default_rng(4)
    xs, ys = rng.uniform(0, 5000, 500), rng.uniform(0, 2000, 500)
    res = kde_grid(xs, ys)
    short = min(np.ptp(xs), np.ptp(ys))
    assert res.cell_size == pytest.approx(short / 250)
    assert res.cell_size_rule["rule"] == "shorter_extent_side / 250"
    assert res.bandwidth_rule["rule"] == "arcgis_default"
    x0, y0, x1, y1 = res.bounds
    assert x0 == pytest.approx(xs.min() - res.bandwidth)
    assert y0 == pytest.approx(ys.min() - res.bandwidth)
    assert x1 >= xs.max() + res.bandwidth - 1e-6 and y1 >= ys.max() + res.bandwidth - 1e-6
    # with bounds, the cell comes from the bounds' shorter side
    res2 = kde_grid(xs, ys, bounds=(0, 0, 5000, 1000))
    assert res2.cell_size == pytest.approx(4.0)
    assert res2.shape == (250, 1250)


def test_rows_run_south_to_north():
    res = kde_grid([500.0], [900.0], bandwidth=100, cell_size=50, bounds=(0, 0, 1000, 1000))
    row, col = np.unravel_index(np.argmax(res.density), res.shape)
    xs, ys = res.cell_centers()
    assert abs(xs[col] - 500) <= 25 and abs(ys[row] - 900) <= 25
    assert row > res.shape[0] // 2


def test_deterministic():
    rng = np.random.default_rng(9)
    xs, ys = rng.uniform(0, 1000, 3000), rng.uniform(0, 1000, 3000)
    a, b = kde_grid(xs, ys), kde_grid(xs, ys)
    assert np.array_equal(a.density, b.density)


def test_refusals():
    with pytest.raises(ValueError, match="no points"):
        kde_grid([], [])
    with pytest.raises(ValueError, match="same length"):
        kde_grid([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="no spread"):
        kde_grid([5.0, 5.0], [7.0, 7.0])
    with pytest.raises(ValueError, match="bandwidth"):
        kde_grid([1.0, 2.0], [1.0, 2.0], bandwidth=0)
    with pytest.raises(ValueError, match="cells"):
        kde_grid([0.0, 1e6], [0.0, 1e6], bandwidth=10, cell_size=1)
    with pytest.raises(ValueError, match="non-negative"):
        kde_grid([0.0, 1.0], [0.0, 1.0], bandwidth=10, weights=[1, -1])
