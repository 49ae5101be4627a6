"""geo.generalize on random grids of cells with random "incident points" inside them
(hypothesis): no output vertex within 1 m of a point, every cell covered by its group's
outline, and fewer vertices than the plain union of a large blob's cells."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Point, box

from geo.generalize import MIN_VERTEX_SHARE, generalize_polygons

SRID = 32718  # UTM 18S (Lima)
X0, Y0 = 280_000.0, 8_666_000.0
_to_lonlat = Transformer.from_crs(SRID, 4326, always_xy=True)
_to_metric = Transformer.from_crs(4326, SRID, always_xy=True)


def lonlat(geometry):
    return shapely.transform(
        geometry, lambda c: np.column_stack(_to_lonlat.transform(c[:, 0], c[:, 1]))
    )


def metric(geometry):
    return shapely.transform(
        geometry, lambda c: np.column_stack(_to_metric.transform(c[:, 0], c[:, 1]))
    )


def cell(i: int, j: int, size: float):
    return box(X0 + i * size, Y0 + j * size, X0 + (i + 1) * size, Y0 + (j + 1) * size)


@st.composite
def cell_groups(draw):
    """1-3 groups of cells on one square grid (each a set of (i, j) on its own 12 × 12
    patch, the patches two cells apart), the cell size, and for each group 1-4 points
    inside each of its cells (on their corners and edges too: fractions 0.0 and 1.0)."""
    size = draw(st.sampled_from([50.0, 100.0, 150.0, 200.0, 250.0]))
    n_groups = draw(st.integers(1, 3))
    groups, points = [], []
    for g in range(n_groups):
        ij = draw(
            st.sets(st.tuples(st.integers(0, 11), st.integers(0, 11)), min_size=1, max_size=40)
        )
        cells, inside = [], []
        for i, j in sorted((i + 14 * g, j) for i, j in ij):
            cells.append(cell(i, j, size))
            k = draw(st.integers(1, 4))
            fx = draw(st.lists(st.floats(0.0, 1.0), min_size=k, max_size=k))
            fy = draw(st.lists(st.floats(0.0, 1.0), min_size=k, max_size=k))
            inside += [
                (X0 + (i + a) * size, Y0 + (j + b) * size) for a, b in zip(fx, fy, strict=True)
            ]
        groups.append(cells)
        points.append(np.array(inside))
    return size, groups, points


def nearest_vertex_m(outlines_4326, points_metric: np.ndarray) -> float:
    vertices = np.vstack([shapely.get_coordinates(metric(o)) for o in outlines_4326])
    d = np.hypot(
        vertices[:, None, 0] - points_metric[None, :, 0],
        vertices[:, None, 1] - points_metric[None, :, 1],
    )
    return float(d.min())


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(cell_groups(), st.sampled_from([(20.0, 10.0), (50.0, 25.0), (80.0, 0.0)]))
def test_no_vertex_near_a_point_and_every_cell_covered(case, buffer_tolerance):
    size, groups, points = case
    buffer_m, tolerance_m = buffer_tolerance
    groups_4326 = [[lonlat(c) for c in g] for g in groups]
    outlines = generalize_polygons(
        groups_4326, metric_srid=SRID, buffer_m=buffer_m, tolerance_m=tolerance_m
    )
    assert len(outlines) == len(groups)
    for outline, cells in zip(outlines, groups_4326, strict=True):
        assert isinstance(outline, MultiPolygon) and outline.is_valid and not outline.is_empty
        assert all(outline.covers(c) for c in cells)
    assert nearest_vertex_m(outlines, np.vstack(points)) > 1.0
    # The buffer keeps every vertex about buffer_m off its own group's cells: less where
    # two rounded corners' chords cross (chords lie inside the circle) and the rounding.
    for outline, inside in zip(outlines, points, strict=True):
        assert nearest_vertex_m([outline], inside) > buffer_m * MIN_VERTEX_SHARE - 0.5
    # Coordinates are rounded to 1e-6 degrees.
    coords = np.vstack([shapely.get_coordinates(o) for o in outlines])
    assert np.allclose(coords, np.round(coords, 6), atol=1e-9)


@pytest.mark.parametrize("size", [50.0, 100.0, 200.0])
@pytest.mark.parametrize("radius", [6, 12, 20])
def test_a_large_blob_has_fewer_vertices_than_its_cells_union(size, radius):
    cells = [
        lonlat(cell(i, j, size))
        for i in range(-radius, radius + 1)
        for j in range(-radius, radius + 1)
        if i * i + j * j <= radius * radius
    ]
    union = shapely.union_all(cells)
    (outline,) = generalize_polygons([cells], metric_srid=SRID, buffer_m=50, tolerance_m=25)
    assert shapely.get_num_coordinates(outline) < shapely.get_num_coordinates(union)
    assert outline.covers(union)


def test_small_parts_are_dropped_and_groups_keep_their_order():
    lone = [lonlat(cell(0, 0, 20.0))]  # 400 m², buffered ~ 4,000 m²
    block = [lonlat(cell(i, j, 100.0)) for i in range(10, 14) for j in range(4)]
    outlines = generalize_polygons(
        [lone, block, []], metric_srid=SRID, buffer_m=20, tolerance_m=10, min_area_m2=10_000
    )
    assert outlines[0].is_empty and outlines[2].is_empty
    assert all(outlines[1].covers(c) for c in block)


def test_the_outline_is_not_a_hull_of_the_cells():
    # An L of cells: its outline keeps the notch a convex hull would fill.
    cells = [lonlat(cell(i, 0, 100.0)) for i in range(6)]
    cells += [lonlat(cell(0, j, 100.0)) for j in range(1, 6)]
    (outline,) = generalize_polygons([cells], metric_srid=SRID, buffer_m=30, tolerance_m=10)
    notch = lonlat(Point(X0 + 250, Y0 + 250))
    assert not outline.contains(notch)
    assert shapely.union_all(cells).convex_hull.contains(notch)


@pytest.mark.parametrize(
    ("buffer_m", "tolerance_m"), [(0, 0), (-5, 0), (20, 20), (20, 30), (20, -1)]
)
def test_a_tolerance_that_could_cut_into_the_cells_is_refused(buffer_m, tolerance_m):
    with pytest.raises(ValueError):
        generalize_polygons(
            [[lonlat(cell(0, 0, 100.0))]],
            metric_srid=SRID,
            buffer_m=buffer_m,
            tolerance_m=tolerance_m,
        )
