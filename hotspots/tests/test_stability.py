"""Stability of hot areas: area-based Jaccard between runs at different cell sizes."""

from __future__ import annotations

import pytest
from shapely.geometry import MultiPolygon, Polygon, box

from hotspots.engine.stability import hot_area, jaccard, stability_table


def square_cells(x0: float, y0: float, nx: int, ny: int, size: float) -> list[Polygon]:
    return [
        box(x0 + i * size, y0 + j * size, x0 + (i + 1) * size, y0 + (j + 1) * size)
        for i in range(nx)
        for j in range(ny)
    ]


def test_identical_is_one():
    cells = square_cells(0, 0, 3, 2, 100)
    assert jaccard(cells, cells) == pytest.approx(1.0)
    # the same area cut into different cells is still identical
    assert jaccard(square_cells(0, 0, 2, 2, 100), square_cells(0, 0, 4, 4, 50)) == pytest.approx(1)


def test_disjoint_is_zero():
    assert jaccard(square_cells(0, 0, 2, 2, 100), square_cells(500, 0, 2, 2, 100)) == 0.0
    # touching along an edge shares no area either
    assert jaccard(box(0, 0, 1, 1), box(1, 0, 2, 1)) == 0.0


def test_half_overlap():
    # two 2×1 rectangles shifted by half: intersection 1, union 3
    assert jaccard(box(0, 0, 2, 1), box(1, 0, 3, 1)) == pytest.approx(1 / 3)
    # B is half of A: intersection = area B, union = area A → 1/2
    a = square_cells(0, 0, 4, 2, 100)
    b = square_cells(0, 0, 2, 2, 100)
    assert jaccard(a, b) == pytest.approx(0.5)


def test_inputs_geometry_list_or_none():
    cells = square_cells(0, 0, 2, 1, 10)
    assert hot_area(cells).area == pytest.approx(200)
    assert hot_area(MultiPolygon(cells)).area == pytest.approx(200)
    assert hot_area(None).is_empty and hot_area([]).is_empty
    assert jaccard(None, []) == 1.0  # neither run has hot cells: they agree
    assert jaccard(None, cells) == 0.0


def test_stability_table_pairs_sorted_by_cell_size():
    runs = [
        (200, square_cells(0, 0, 2, 2, 200)),  # 400 × 400
        (100, square_cells(0, 0, 4, 4, 100)),  # the same 400 × 400
        (300, square_cells(0, 0, 1, 1, 300)),  # 300 × 300 inside it
    ]
    table = stability_table(runs)
    assert [(r["cell_size_a"], r["cell_size_b"]) for r in table] == [
        (100, 200),
        (100, 300),
        (200, 300),
    ]
    assert table[0]["jaccard"] == pytest.approx(1.0)
    assert table[1]["jaccard"] == pytest.approx(90_000 / 160_000)
    assert table[1]["intersection_area"] == pytest.approx(90_000)
    assert table[1]["union_area"] == pytest.approx(160_000)
    assert table[1]["area_a"] == pytest.approx(160_000) and not table[1]["both_empty"]
    adjacent = stability_table(runs, adjacent_only=True)
    assert [(r["cell_size_a"], r["cell_size_b"]) for r in adjacent] == [(100, 200), (200, 300)]


def test_stability_table_empty_runs():
    table = stability_table([(100, []), (150, None)])
    assert table == [
        {
            "cell_size_a": 100.0,
            "cell_size_b": 150.0,
            "area_a": 0.0,
            "area_b": 0.0,
            "intersection_area": 0.0,
            "union_area": 0.0,
            "jaccard": 1.0,
            "both_empty": True,
        }
    ]
    assert stability_table([(100, [])]) == []
