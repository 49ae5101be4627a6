"""Generalized outlines of groups of cells, for maps shown to the public (issue 14).

Each group (one hotspot zone's cells, in EPSG:4326) becomes one MultiPolygon drawn in the
metric CRS: the touching cells are merged, the union is buffered out by ``buffer_m`` and
simplified with ``tolerance_m`` (topology preserving), parts smaller than ``min_area_m2``
are dropped, and the outline goes back to EPSG:4326 rounded to ``precision_deg``.

Why no vertex can be an incident's location: the buffer's outline lies ``buffer_m`` away
from every cell, and simplifying keeps a subset of its vertices, so every vertex is at least
``MIN_VERTEX_SHARE * buffer_m`` (0.98: the rounded corners are chords of circles; less the
rounding, ~0.1 m) from any point inside the cells. No hull is ever
taken and no input coordinate is copied to the output. With ``tolerance_m < buffer_m`` the
simplified outline still covers every cell of the parts it keeps.

Pure shapely + pyproj: no Django, no database.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

LONLAT_SRID = 4326
# 1e-6 degrees: about 0.11 m at the equator, far below the buffer.
DEFAULT_PRECISION_DEG = 1e-6
# Segments per quarter circle of the buffer's rounded corners; simplifying removes most.
BUFFER_QUAD_SEGS = 4
# The buffer's arcs are chords of its circles, so where two arcs cross their vertex lies
# slightly inside: every vertex is at least this share of buffer_m from the cells.
MIN_VERTEX_SHARE = math.cos(math.pi / (4 * BUFFER_QUAD_SEGS))


@lru_cache(maxsize=32)
def _transformer(source: int, target: int) -> Transformer:
    return Transformer.from_crs(source, target, always_xy=True)


def _project(geometry: BaseGeometry, source: int, target: int) -> BaseGeometry:
    transformer = _transformer(source, target)

    def move(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geometry, move)


def _polygons(geometry: BaseGeometry) -> list[Polygon]:
    """The non-empty polygons of any geometry (collections from a union included)."""
    if geometry.is_empty:
        return []
    if isinstance(geometry, Polygon):
        return [geometry]
    return [p for part in shapely.get_parts(geometry) for p in _polygons(part)]


def generalize_group(
    cells_4326: Iterable[BaseGeometry],
    *,
    metric_srid: int,
    buffer_m: float,
    tolerance_m: float,
    min_area_m2: float = 0.0,
    precision_deg: float = DEFAULT_PRECISION_DEG,
) -> MultiPolygon:
    """One group of cells (polygons in EPSG:4326) -> its generalized MultiPolygon in
    EPSG:4326; empty when the group is empty or every part is under ``min_area_m2``."""
    _check(buffer_m, tolerance_m, min_area_m2, precision_deg)
    cells = [c for c in cells_4326 if c is not None and not c.is_empty]
    if not cells:
        return MultiPolygon()
    metric = [_project(c, LONLAT_SRID, metric_srid) for c in cells]
    merged = shapely.union_all(shapely.make_valid(np.array(metric, dtype=object)))
    grown = merged.buffer(buffer_m, quad_segs=BUFFER_QUAD_SEGS)
    simple = shapely.simplify(grown, tolerance_m, preserve_topology=True)
    parts = [p for p in _polygons(simple) if p.area >= min_area_m2]
    if not parts:
        return MultiPolygon()
    back = _project(MultiPolygon(parts), metric_srid, LONLAT_SRID)
    rounded = shapely.set_precision(back, precision_deg)
    out = _polygons(rounded)
    return MultiPolygon(out) if out else MultiPolygon()


def generalize_polygons(
    groups_4326: Sequence[Iterable[BaseGeometry]],
    *,
    metric_srid: int,
    buffer_m: float,
    tolerance_m: float,
    min_area_m2: float = 0.0,
    precision_deg: float = DEFAULT_PRECISION_DEG,
) -> list[MultiPolygon]:
    """A list of groups (each a zone's cells, polygons in EPSG:4326) -> one generalized
    MultiPolygon in EPSG:4326 per group, in the same order (see :func:`generalize_group`).

    Groups are generalized separately: two zones that touch stay two outlines (which may
    overlap by up to twice the buffer)."""
    _check(buffer_m, tolerance_m, min_area_m2, precision_deg)
    return [
        generalize_group(
            group,
            metric_srid=metric_srid,
            buffer_m=buffer_m,
            tolerance_m=tolerance_m,
            min_area_m2=min_area_m2,
            precision_deg=precision_deg,
        )
        for group in groups_4326
    ]


def _check(buffer_m: float, tolerance_m: float, min_area_m2: float, precision_deg: float) -> None:
    if not buffer_m > 0:
        raise ValueError("buffer_m must be positive: the buffer keeps outlines off the cells")
    if not 0 <= tolerance_m < buffer_m:
        raise ValueError(
            "tolerance_m must be at least 0 and below buffer_m, or the simplified outline "
            "could cut into the cells"
        )
    if min_area_m2 < 0:
        raise ValueError("min_area_m2 must not be negative")
    if not 0 < precision_deg <= 1e-4:
        raise ValueError("precision_deg must be positive and at most 1e-4 degrees (~11 m)")
