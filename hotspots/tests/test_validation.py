"""Forecast validation: hit rate, PAI, PEI, coverage selection, naive baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hotspots.engine.validation import (
    ForecastScore,
    evaluate_scores,
    naive_baseline,
    oracle_pai,
    pai,
    rank_cells,
    score_flagged,
    score_zone_counts,
    select_by_coverage,
)

# ten equal cells, N = 10 events in the test period
OBSERVED = np.array([5, 0, 2, 1, 0, 0, 2, 0, 0, 0], dtype=float)


def test_hand_computed_pai_and_pei():
    flagged = np.zeros(10, dtype=bool)
    flagged[[2, 3]] = True  # n = 2 + 1 = 3 events on a = 2 of A = 10 cells
    s = score_flagged(flagged, OBSERVED)
    assert s.hits == 3 and s.total == 10 and s.n_cells == 2
    assert s.hit_rate == pytest.approx(0.3)
    assert s.area_share == pytest.approx(0.2)
    assert s.pai == pytest.approx(0.3 / 0.2)  # 1.5
    # oracle with 2 cells: cell 0 (5) and cell 2 (2; ties with cell 6, lower index) → 7
    assert s.pai_star == pytest.approx(0.7 / 0.2)  # 3.5
    assert s.pei == pytest.approx(1.5 / 3.5)


def test_hand_computed_unequal_areas():
    areas = np.ones(10)
    areas[0] = 2.0  # A = 11; cell 0 density 2.5, cells 2 and 6 density 2
    flagged = np.zeros(10, dtype=bool)
    flagged[6] = True  # n = 2 on a = 1
    s = score_flagged(flagged, OBSERVED, areas)
    assert s.pai == pytest.approx((2 / 10) / (1 / 11))  # 2.2
    # the oracle must reach area 1: cell 0 (area 2) is the densest → n* = 5 on a* = 2
    assert s.pai_star == pytest.approx((5 / 10) / (2 / 11))  # 2.75
    assert s.pei == pytest.approx(2.2 / 2.75)


def test_pai_primitive():
    assert pai(3, 10, 2, 10) == pytest.approx(1.5)
    assert math.isnan(pai(0, 0, 2, 10))
    assert math.isnan(pai(1, 10, 0, 10))


def test_coverage_selection_breaks_ties_by_cell_index():
    scores = np.array([1.0, 3.0, 3.0, 5.0, 3.0, np.nan, 0.0, 0.0, 0.0, 0.0])
    assert rank_cells(scores).tolist() == [3, 1, 2, 4, 0, 6, 7, 8, 9, 5]
    # 30 % of 10 equal cells = 3 cells: 3, then the tied 1 and 2 (lower indices first)
    assert np.flatnonzero(select_by_coverage(scores, 0.3)).tolist() == [1, 2, 3]
    # a second key decides among ties before the index does
    tiebreak = np.array([0, 0, 1, 0, 9, 0, 0, 0, 0, 0], dtype=float)
    assert np.flatnonzero(select_by_coverage(scores, 0.3, tiebreak=tiebreak)).tolist() == [2, 3, 4]
    # all scores equal: the lowest indices
    assert select_by_coverage(np.zeros(10), 0.2).tolist() == [True, True] + [False] * 8


def test_coverage_takes_the_shortest_prefix_reaching_the_target():
    scores = np.arange(10.0)[::-1]  # cell 0 best
    # 1 % of 10 cells is 0.1 cell: one whole cell is flagged
    assert select_by_coverage(scores, 0.01).sum() == 1
    # 25 % → 2.5 cells → 3 cells
    assert select_by_coverage(scores, 0.25).sum() == 3
    # exact multiples do not spill over because of floating point
    assert select_by_coverage(scores, 0.3).sum() == 3
    areas = np.array([5.0, 1, 1, 1, 1, 1, 1, 1, 1, 1])  # A = 14
    assert select_by_coverage(scores, 0.05, areas).tolist() == [True] + [False] * 9


def test_perfect_forecast_has_pei_one():
    rng = np.random.default_rng(8)
    observed = rng.poisson(rng.gamma(0.5, 2, size=400)).astype(float)
    for s in evaluate_scores(observed, observed, coverages=(0.01, 0.05, 0.10, 0.5)):
        assert s.pei == pytest.approx(1.0)
        assert s.pai == pytest.approx(s.pai_star)
    # and with unequal areas, scoring by observed density
    areas = rng.uniform(0.5, 1.5, 400)
    for s in evaluate_scores(observed / areas, observed, areas):
        assert s.pei == pytest.approx(1.0)


def test_evaluate_scores_report():
    scores = np.array([0.9, 0.1, 0.8, 0.2, 0.0, 0.0, 0.7, 0.0, 0.0, 0.0])
    report = evaluate_scores(scores, OBSERVED, coverages=(0.1, 0.3))
    assert [r.label for r in report] == ["forecast top 10%", "forecast top 30%"]
    top10, top30 = report
    assert (top10.n_cells, top10.hits, top10.pai) == (1, 5, pytest.approx(5.0))
    assert top10.pei == pytest.approx(1.0)
    assert (top30.n_cells, top30.hits) == (3, 9)  # cells 0, 2, 6
    assert top30.pai == pytest.approx(0.9 / 0.3)
    assert isinstance(top30, ForecastScore)
    d = top30.as_dict()
    assert d["coverage"] == 0.3 and d["hits"] == 9


def test_naive_baseline_uses_last_period_counts():
    last = np.array([0, 4, 0, 3, 0, 0, 0, 0, 0, 1], dtype=float)
    (top20,) = naive_baseline(last, OBSERVED, coverages=(0.2,))
    assert top20.label == "naive (last period count) top 20%"
    assert top20.hits == 1  # cells 1 and 3 → 0 + 1
    assert top20.pai == pytest.approx(0.1 / 0.2)
    # many zero counts: the fourth cell is the first zero-count cell by index (cell 0) …
    (plain,) = naive_baseline(last, OBSERVED, coverages=(0.4,))
    assert plain.hits == 0 + 1 + 0 + 5  # cells 1, 3, 9, 0
    # … unless a second key (e.g. counts over all of P) ranks the zero-count cells
    whole_period = np.array([0, 9, 0, 5, 0, 0, 7, 0, 0, 2], dtype=float)
    (top40,) = naive_baseline(last, OBSERVED, coverages=(0.4,), tiebreak=whole_period)
    assert top40.hits == 0 + 1 + 0 + 2  # cells 1, 3, 9, 6


def test_zones_scored_from_counts():
    s = score_zone_counts(6, 2.0, OBSERVED)
    assert s.pai == pytest.approx(0.6 / 0.2)
    assert s.pai_star == pytest.approx(0.7 / 0.2)
    assert s.pei == pytest.approx(3 / 3.5)
    assert s.n_cells == 0


def test_no_events_gives_undefined_scores():
    s = score_flagged(np.array([True, False]), np.zeros(2))
    assert math.isnan(s.hit_rate) and math.isnan(s.pai) and math.isnan(s.pei)
    assert s.as_dict()["pai"] is None


def test_oracle_mask():
    p_star, mask = oracle_pai(OBSERVED, area=3)
    assert np.flatnonzero(mask).tolist() == [0, 2, 6]
    assert p_star == pytest.approx(0.9 / 0.3)


def test_refusals():
    with pytest.raises(ValueError):
        select_by_coverage(np.ones(3), 0)
    with pytest.raises(ValueError):
        score_flagged([True], [1.0, 2.0])
    with pytest.raises(ValueError):
        evaluate_scores([1.0, 2.0], [1.0, -1.0])
    with pytest.raises(ValueError):
        evaluate_scores([1.0, 2.0], [1.0, 1.0], areas=[1.0, 0.0])
