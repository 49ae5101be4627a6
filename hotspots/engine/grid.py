"""Square and hexagon grids in a metric CRS, numbered exactly as PostGIS numbers them.

By default cells are anchored at the origin of the region's metric CRS, like ``ST_SquareGrid`` and ``ST_HexagonGrid``, so that runs over different areas or
periods share cells and can be compared cell by cell. A grid may instead be anchored at
another ``origin`` (``(ox, oy)``, e.g. the lower-left corner of the analysis area's
bounding box, as R's ``sf::st_make_grid`` and sfhotspot do): every formula below then
applies to ``(x − ox, y − oy)``.

* square of side ``s``: cell (i, j) is ``[i·s, (i+1)·s] × [j·s, (j+1)·s]``;
* hexagon of edge ``s`` (PostGIS' ``size``: edge = circumradius, flat top): the centre of
  cell (i, j) is ``(1.5·s·i, √3·s·(j + ½·[i odd]))``.

The SQL half (indices computed in PostgreSQL with the same arithmetic as
:meth:`Grid.index`, the cells covering an area from ``ST_SquareGrid``/``ST_HexagonGrid``,
the counting) is :mod:`hotspots.queries`; this module is numpy, scipy and shapely only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from scipy import sparse
from scipy.spatial import cKDTree

from hotspots.engine import HotspotRefused

SQRT3 = math.sqrt(3.0)
KINDS = ("hex", "square")
# Neighbour rules: the touching cells plus the cell itself (square: 8 + 1, "queen";
# hexagon: 6 + 1), or every cell whose centre is within a distance band (itself included).
CONTIGUITY = "contiguity"
DISTANCE_BAND = "distance_band"
NEIGHBOUR_RULES = (CONTIGUITY, DISTANCE_BAND)
# Where a run's cells are anchored: the metric CRS origin (cells shared across runs), or
# the lower-left corner of the analysis area's bounding box (sf::st_make_grid, sfhotspot).
ORIGIN_CRS = "crs"
ORIGIN_AREA = "area"
ORIGINS = (ORIGIN_CRS, ORIGIN_AREA)
# A run refuses grids larger than this (the planner is told to choose larger cells).
MAX_CELLS = 1_500_000
MIN_CELL_SIZE_M = 5.0

# Offsets (di, dj) of the touching cells.
_SQUARE_OFFSETS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
# Hexagon columns alternate: odd columns sit half a row higher.
_HEX_OFFSETS_EVEN = [(0, -1), (0, 1), (-1, -1), (-1, 0), (1, -1), (1, 0)]
_HEX_OFFSETS_ODD = [(0, -1), (0, 1), (-1, 0), (-1, 1), (1, 0), (1, 1)]


@dataclass(frozen=True)
class Grid:
    kind: str  # "hex" | "square"
    size: float  # square side, or hexagon edge (PostGIS' size), in metres
    srid: int  # the metric CRS the grid lives in
    origin: tuple[float, float] = (0.0, 0.0)  # metric point cell (0, 0) is anchored at

    def __post_init__(self):
        if self.kind not in KINDS:
            raise HotspotRefused(f"unknown grid kind {self.kind!r}: use hex or square")
        if not (math.isfinite(self.size) and self.size >= MIN_CELL_SIZE_M):
            raise HotspotRefused(f"the cell size must be at least {MIN_CELL_SIZE_M:g} m")
        origin = tuple(float(v) for v in self.origin)
        if len(origin) != 2 or not all(math.isfinite(v) for v in origin):
            raise HotspotRefused("a grid's origin must be two finite coordinates")
        object.__setattr__(self, "origin", origin)

    @property
    def shifted(self) -> bool:
        return self.origin != (0.0, 0.0)

    @property
    def cell_area_m2(self) -> float:
        if self.kind == "square":
            return self.size * self.size
        return 1.5 * SQRT3 * self.size * self.size

    @property
    def spacing_m(self) -> float:
        """Distance between the centres of two cells sharing an edge."""
        return self.size if self.kind == "square" else SQRT3 * self.size

    def centres(self, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        i = np.asarray(i, dtype=np.float64)
        j = np.asarray(j, dtype=np.float64)
        s = self.size
        ox, oy = self.origin
        if self.kind == "square":
            return (i + 0.5) * s + ox, (j + 0.5) * s + oy
        odd = np.abs(np.fmod(i, 2.0))
        return 1.5 * s * i + ox, SQRT3 * s * (j + 0.5 * odd) + oy

    def index(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cell indices of metric points: the same arithmetic as
        :func:`hotspots.queries.indexed_sql` in PostgreSQL."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if self.shifted:
            x, y = x - self.origin[0], y - self.origin[1]
        s = self.size
        if self.kind == "square":
            return np.floor(x / s).astype(np.int64), np.floor(y / s).astype(np.int64)
        a, h = 1.5 * s, SQRT3 * s
        c0 = np.floor(x / a)
        off0 = 0.5 * np.abs(np.fmod(c0, 2.0))
        off1 = 0.5 - off0
        j0 = np.floor(y / h - off0 + 0.5)
        j1 = np.floor(y / h - off1 + 0.5)
        dx0, dy0 = x - a * c0, y - h * (j0 + off0)
        dx1, dy1 = x - a * (c0 + 1), y - h * (j1 + off1)
        d0 = dx0 * dx0 + dy0 * dy0
        d1 = dx1 * dx1 + dy1 * dy1
        first = d0 <= d1
        i = np.where(first, c0, c0 + 1)
        j = np.where(first, j0, j1)
        return i.astype(np.int64), j.astype(np.int64)


# --- cell keys and neighbours ---------------------------------------------------------


def cell_keys(i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """One sortable int64 per cell; sorting by key sorts by (i, j)."""
    return (np.asarray(i, dtype=np.int64) << 32) + (np.asarray(j, dtype=np.int64) + (1 << 31))


def split_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keys = np.asarray(keys, dtype=np.int64)
    i = keys >> 32
    j = (keys - (i << 32)) - (1 << 31)
    return i, j


def touching_pairs(grid: Grid, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) index pairs of cells that touch (both directions, no self pairs).

    ``i``, ``j`` must be sorted by :func:`cell_keys` (as every cell array here is).
    """
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    keys = cell_keys(i, j)
    if len(keys) > 1 and not np.all(keys[1:] > keys[:-1]):
        raise ValueError("cells must be sorted by (i, j) without duplicates")
    rows, cols = [], []
    if grid.kind == "square":
        groups = [(np.arange(len(i)), _SQUARE_OFFSETS)]
    else:
        odd = (i % 2) != 0
        groups = [
            (np.flatnonzero(~odd), _HEX_OFFSETS_EVEN),
            (np.flatnonzero(odd), _HEX_OFFSETS_ODD),
        ]
    for members, offsets in groups:
        for di, dj in offsets:
            wanted = cell_keys(i[members] + di, j[members] + dj)
            at = np.searchsorted(keys, wanted)
            at_clipped = np.minimum(at, len(keys) - 1)
            found = (at < len(keys)) & (keys[at_clipped] == wanted)
            rows.append(members[found])
            cols.append(at_clipped[found])
    if not rows:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(rows), np.concatenate(cols)


def band_pairs(
    grid: Grid, i: np.ndarray, j: np.ndarray, band_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) pairs of distinct cells whose centres are at most ``band_m`` apart."""
    x, y = grid.centres(i, j)
    tree = cKDTree(np.column_stack([x, y]))
    # A relative epsilon so that a band equal to the cell spacing includes those cells.
    pairs = tree.query_pairs(r=band_m * (1 + 1e-9), output_type="ndarray")
    if len(pairs) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    a, b = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
    return np.concatenate([a, b]), np.concatenate([b, a])


def weights_matrix(
    grid: Grid,
    i: np.ndarray,
    j: np.ndarray,
    *,
    rule: str = CONTIGUITY,
    band_m: float | None = None,
) -> sparse.csr_matrix:
    """Binary spatial weights with the focal cell included (the * of Gi*), as CSR."""
    n = len(i)
    if rule == CONTIGUITY:
        a, b = touching_pairs(grid, i, j)
    elif rule == DISTANCE_BAND:
        if band_m is None or not math.isfinite(band_m) or band_m <= 0:
            raise HotspotRefused("a distance band neighbour rule needs a positive band in metres")
        if band_m < grid.spacing_m:
            raise HotspotRefused(
                f"the distance band ({band_m:g} m) is shorter than the distance between "
                f"neighbouring cell centres ({grid.spacing_m:.1f} m): no cell would have a neighbour"
            )
        a, b = band_pairs(grid, i, j, band_m)
    else:
        raise HotspotRefused(f"unknown neighbour rule {rule!r}: use {' or '.join(NEIGHBOUR_RULES)}")
    diagonal = np.arange(n, dtype=np.int64)
    rows = np.concatenate([a, diagonal])
    cols = np.concatenate([b, diagonal])
    data = np.ones(len(rows), dtype=np.float64)
    matrix = sparse.csr_matrix((data, (rows, cols)), shape=(n, n))
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix


def adjacency_matrix(grid: Grid, i: np.ndarray, j: np.ndarray) -> sparse.csr_matrix:
    """Touching cells, without the diagonal (for merging hot cells into zones)."""
    a, b = touching_pairs(grid, i, j)
    n = len(i)
    return sparse.csr_matrix((np.ones(len(a)), (a, b)), shape=(n, n))


# --- automatic cell size (Optimized Hot Spot Analysis) ---------------------------------


def choose_cell_size(x: np.ndarray, y: np.ndarray, kind: str) -> tuple[float, str]:
    """Cell size the way ArcGIS' Optimized Hot Spot Analysis sizes its fishnet.

    The larger of the mean and the median nearest-neighbour distance between incident
    locations, times max(2, their ratio), is the square's side. Coincident incidents
    (several records at one address) are one location here: their zero distances
    would say nothing about spacing. A hexagon gets the same area as that square.
    Returns the size (whole metres) and the reason, for the run's parameters.
    """
    points = np.unique(np.round(np.column_stack([x, y]), 2), axis=0)
    if len(points) < 3:
        raise HotspotRefused(
            "the cell size cannot be chosen automatically: fewer than 3 distinct incident "
            "locations; give a cell size"
        )
    distances, _ = cKDTree(points).query(points, k=2)
    nearest = distances[:, 1]
    mean, median = float(nearest.mean()), float(np.median(nearest))
    larger, smaller = max(mean, median), min(mean, median)
    ratio = larger / smaller if smaller > 0 else math.inf
    factor = max(2.0, ratio) if math.isfinite(ratio) else 2.0
    side = larger * factor
    reason = (
        f"Optimized Hot Spot Analysis fishnet rule over {len(points):,} distinct incident "
        f"locations: mean nearest-neighbour distance {mean:.1f} m, median {median:.1f} m; "
        f"the larger ({larger:.1f} m) × max(2, ratio {ratio:.2f}) = {side:.1f} m square side"
    )
    if kind == "hex":
        edge = side * math.sqrt(2.0 / (3.0 * SQRT3))
        size = max(MIN_CELL_SIZE_M, float(round(edge)))
        reason += f"; hexagon of the same area: edge {edge:.1f} m, rounded to {size:g} m"
    else:
        size = max(MIN_CELL_SIZE_M, float(round(side)))
        reason += f", rounded to {size:g} m"
    return size, reason


# --- cell shapes ------------------------------------------------------------------------


def cell_polygons(grid: Grid, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Shapely polygons (metric CRS) of cells: the same shapes as ``ST_Square`` /
    ``ST_Hexagon`` (hexagons flat-topped, vertices at 0°, 60°, … from the centre)."""
    x, y = grid.centres(i, j)
    s = grid.size
    if grid.kind == "square":
        h = s / 2.0
        return shapely.box(x - h, y - h, x + h, y + h)
    angles = np.deg2rad(np.arange(0, 360, 60))
    ring = np.stack(
        [x[:, None] + s * np.cos(angles)[None, :], y[:, None] + s * np.sin(angles)[None, :]],
        axis=-1,
    )
    return shapely.polygons(np.concatenate([ring, ring[:, :1]], axis=1))
