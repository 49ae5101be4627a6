"""Patrol-sized zones (engine.zones.split_zones) on constructed grids: where a merged zone
is cut, that every part fits the maximum area, and that small zones stay as they are."""

from __future__ import annotations

import numpy as np
import pytest

from hotspots.engine import grid as grids
from hotspots.engine.zones import build_zones, split_zones, zone_labels

SRID = 32614
CELL = 100.0  # square cells of 100 m: 0.01 km² each


def square_block(width: int, height: int):
    i, j = np.meshgrid(np.arange(width), np.arange(height), indexing="ij")
    i, j = i.ravel(), j.ravel()
    order = np.argsort(grids.cell_keys(i, j))
    return i[order], j[order]


def split(i, j, score, member, max_km2, kind="square"):
    grid = grids.Grid(kind, CELL, SRID)
    adjacency = grids.adjacency_matrix(grid, i, j)
    labels = zone_labels(adjacency, member)
    x, y = grid.centres(i, j)
    return labels, split_zones(
        labels,
        score,
        adjacency,
        x,
        y,
        cell_area_m2=grid.cell_area_m2,
        max_area_m2=max_km2 * 1e6,
    )


def parts(labels: np.ndarray) -> list[set[int]]:
    return [set(np.flatnonzero(labels == p).tolist()) for p in np.unique(labels[labels >= 0])]


def two_peaks(width=21, height=5):
    """A strip of hot cells, z highest at x = 4 and x = 16 and lower on the ridge between."""
    i, j = square_block(width, height)
    score = 6.0 - np.minimum(np.abs(i - 4), np.abs(i - 16)) * 0.3 - np.abs(j - 2) * 0.1
    return i, j, score


def test_two_peaks_joined_by_a_ridge_become_two_zones_cut_at_the_saddle():
    i, j, score = two_peaks()
    # 105 cells, 1.05 km²; at most 0.6 km² each: the whole strip does not fit.
    labels, result = split(i, j, score, np.ones(len(i), bool), 0.6)
    assert result.components == 1 and result.split == 1 and result.peaks == 2
    found = parts(result.labels)
    assert len(found) == 2
    # The cut is at the lowest z, the column halfway between the peaks (x = 10): each
    # peak's side of it in one zone, the saddle column on one side only.
    west = next(p for p in found if int(np.flatnonzero((i == 4) & (j == 2))[0]) in p)
    east = next(p for p in found if int(np.flatnonzero((i == 16) & (j == 2))[0]) in p)
    assert west != east
    assert {int(c) for c in np.flatnonzero(i < 10)} <= west
    assert {int(c) for c in np.flatnonzero(i > 10)} <= east
    assert all(len(p) * 0.01 <= 0.6 for p in found)


def test_small_zones_are_untouched():
    i, j, score = two_peaks()
    member = np.ones(len(i), bool)
    labels, result = split(i, j, score, member, 1.5)  # 1.05 km² fits: one zone still
    assert result.split == 0
    assert parts(result.labels) == parts(labels)
    # Two separate small zones with several peaks each stay two zones.
    member = (i <= 6) | (i >= 14)
    rng = np.random.default_rng(3)
    bumpy = rng.normal(3.0, 1.0, len(i))
    labels, result = split(i, j, bumpy, member, 0.5)
    assert len(parts(labels)) == 2 and parts(result.labels) == parts(labels)


def test_a_big_plateau_is_bisected_into_parts_within_the_maximum_area():
    i, j = square_block(30, 20)  # 600 cells, 6 km² of equal z: one basin
    score = np.full(len(i), 4.2)
    labels, result = split(i, j, score, np.ones(len(i), bool), 1.0)
    found = parts(result.labels)
    assert result.peaks == 1
    assert all(len(p) <= 100 for p in found)
    assert sum(len(p) for p in found) == 600
    # Halves of halves: 600 -> 300 -> 150 -> 75 cells, eight equal parts.
    assert sorted(len(p) for p in found) == [75] * 8
    # Each part is one touching piece.
    grid = grids.Grid("square", CELL, SRID)
    adjacency = grids.adjacency_matrix(grid, i, j)
    for p in found:
        member = np.zeros(len(i), bool)
        member[list(p)] = True
        assert len(parts(zone_labels(adjacency, member))) == 1


def test_minor_bumps_rejoin_their_peak_and_parts_fit():
    """A noisy dome: many local maxima, but parts are rejoined up to the maximum area, so
    no one-cell fragments beside the peak, and every part fits."""
    i, j = square_block(40, 40)
    rng = np.random.default_rng(7)
    score = 8.0 - 0.15 * np.hypot(i - 20, j - 20) + rng.normal(0, 0.2, len(i))
    member = np.hypot(i - 20, j - 20) <= 15  # ~700 cells, ~7 km²
    labels, result = split(i, j, score, member, 1.0)
    found = parts(result.labels)
    assert result.peaks > 10  # noise makes many maxima...
    assert len(found) < result.peaks  # ...fewer parts than maxima
    assert all(len(p) <= 100 for p in found)
    assert set().union(*found) == set(np.flatnonzero(member).tolist())
    # Ignoring one-cell enclaves of noise, parts are not crumbs.
    assert np.median([len(p) for p in found]) >= 20


@pytest.mark.parametrize("kind", ["square", "hex"])
def test_split_is_deterministic_and_independent_of_other_components(kind):
    i, j = square_block(30, 30)
    rng = np.random.default_rng(11)
    score = rng.normal(3, 1, len(i))
    member = rng.random(len(i)) < 0.8
    first = split(i, j, score, member, 0.5, kind)[1].labels
    second = split(i, j, score.copy(), member.copy(), 0.5, kind)[1].labels
    assert np.array_equal(first, second)
    assert set(np.flatnonzero(first >= 0)) == set(np.flatnonzero(member))


def test_ranked_parts_keep_their_incidents():
    i, j, score = two_peaks()
    counts = np.where(i < 10, 3, 1)
    _labels, result = split(i, j, score, np.ones(len(i), bool), 0.6)
    zones = build_zones(
        result.labels, counts, cell_area_m2=CELL * CELL, total_incidents=int(counts.sum())
    )
    assert [z.rank for z in zones] == [1, 2]
    assert zones[0].incident_count > zones[1].incident_count  # the west side, by counts
    assert sum(z.incident_count for z in zones) == counts.sum()
    assert all(z.area_m2 <= 0.6e6 for z in zones)
