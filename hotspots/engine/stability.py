"""Stability of hot areas across cell sizes (shapely only, no database).

Rerunning the grid method at neighbouring cell sizes and comparing the hot areas shows
whether a zone is a property of the data or of a parameter choice. The comparison is the
area-based Jaccard index

    J(A, B) = area(A ∩ B) / area(A ∪ B)

(1 = the same hot area, 0 = no overlap). By convention two runs without any hot area
have J = 1 (they agree) and the row says ``both_empty``.

Entry points: :func:`hot_area` (cells → one geometry), :func:`jaccard` and
:func:`stability_table`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import shapely
from shapely.geometry.base import BaseGeometry

HotCells = BaseGeometry | Iterable[BaseGeometry] | None


def hot_area(cells: HotCells) -> BaseGeometry:
    """One geometry for the hot cells of a run.

    Accepts a single (multi)polygon, any iterable of polygons (the hot cells, in any
    order) or ``None`` (no hot cell). Overlaps and shared edges are dissolved.
    """
    if cells is None:
        return shapely.Polygon()
    if isinstance(cells, BaseGeometry):
        return cells
    geoms = [g for g in cells if g is not None and not g.is_empty]
    if not geoms:
        return shapely.Polygon()
    return shapely.union_all(geoms)


def jaccard(a: HotCells, b: HotCells) -> float:
    """Area-based Jaccard index of two hot areas (see :func:`hot_area` for the inputs)."""
    ga, gb = hot_area(a), hot_area(b)
    union = shapely.union(ga, gb).area
    if union <= 0:
        return 1.0
    return float(shapely.intersection(ga, gb).area / union)


def stability_table(
    runs: Sequence[tuple[float, HotCells]], *, adjacent_only: bool = False
) -> list[dict]:
    """Pairwise Jaccard of the hot areas of runs at different cell sizes.

    ``runs`` is a sequence of ``(cell_size, hot cells or geometry)``; the runs are sorted
    by cell size (stable for equal sizes) and every pair ``i < j`` is compared — or only
    consecutive sizes with ``adjacent_only``. Each row::

        {"cell_size_a", "cell_size_b", "area_a", "area_b", "intersection_area",
         "union_area", "jaccard", "both_empty"}

    Areas are in the squared unit of the coordinates (m² in a metric CRS).
    """
    ordered = sorted(((float(size), hot_area(cells)) for size, cells in runs), key=lambda r: r[0])
    rows = []
    for i in range(len(ordered)):
        for j in range(i + 1, len(ordered)):
            if adjacent_only and j != i + 1:
                continue
            (size_a, ga), (size_b, gb) = ordered[i], ordered[j]
            inter = float(shapely.intersection(ga, gb).area)
            union = float(shapely.union(ga, gb).area)
            rows.append(
                {
                    "cell_size_a": size_a,
                    "cell_size_b": size_b,
                    "area_a": float(ga.area),
                    "area_b": float(gb.area),
                    "intersection_area": inter,
                    "union_area": union,
                    "jaccard": inter / union if union > 0 else 1.0,
                    "both_empty": union <= 0,
                }
            )
    return rows
