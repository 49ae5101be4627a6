"""Hot zones: contiguous significant hot cells merged into one area each.

Cells are joined when they touch (square: the 8 around, corners included; hexagon: the 6
around) and both are significant hot cells at the run's confidence; each connected
component is a zone. A zone's figures come from its cells: incidents, area (cells are
whole, never clipped to the analysis area), density, share of all the area's incidents,
and its most frequent categories. Zones are ranked by incidents, then density, then the
position of their first cell, so ranks never depend on chance.

A component larger than the planner's maximum area is not one patrol's beat: the dense
centre of a city merges into one zone of many km². :func:`split_zones` cuts it where the
score (Gi* z, or a forecast's ranking) dips between its peaks, then by area (see there).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

TOP_CATEGORIES = 5
DEFAULT_MAX_ZONE_KM2 = 1.0


@dataclass
class Zone:
    rank: int
    cells: np.ndarray  # indices into the run's cell arrays, ascending
    incident_count: int
    area_m2: float
    density_per_km2: float
    share: float
    top_categories: list[dict] = field(default_factory=list)

    @property
    def cell_count(self) -> int:
        return len(self.cells)


def zone_labels(adjacency: sparse.csr_matrix, member: np.ndarray) -> np.ndarray:
    """Connected components of the ``member`` cells on ``adjacency``; −1 elsewhere."""
    member = np.asarray(member, dtype=bool)
    labels = np.full(len(member), -1, dtype=np.int64)
    chosen = np.flatnonzero(member)
    if len(chosen) == 0:
        return labels
    sub = adjacency[chosen][:, chosen]
    _count, component = connected_components(sub, directed=False)
    labels[chosen] = component
    return labels


def build_zones(
    labels: np.ndarray,
    counts: np.ndarray,
    *,
    cell_area_m2: float,
    total_incidents: int,
    category_cells: np.ndarray | None = None,
    category_ids: np.ndarray | None = None,
    category_counts: np.ndarray | None = None,
    category_codes: dict[int, str] | None = None,
) -> list[Zone]:
    """Zones from component labels, ranked 1..n.

    ``category_cells``/``category_ids``/``category_counts`` are incidents per (cell,
    category) rows; ``category_codes`` maps category ids to codes for the top list.
    """
    labels = np.asarray(labels)
    counts = np.asarray(counts, dtype=np.int64)
    zone_ids = np.unique(labels[labels >= 0])
    zones: list[Zone] = []
    for label in zone_ids:
        cells = np.flatnonzero(labels == label)
        incidents = int(counts[cells].sum())
        area = float(len(cells) * cell_area_m2)
        zones.append(
            Zone(
                rank=0,
                cells=cells,
                incident_count=incidents,
                area_m2=area,
                density_per_km2=incidents / (area / 1e6) if area > 0 else 0.0,
                share=incidents / total_incidents if total_incidents else 0.0,
            )
        )
    # Most incidents first, then the densest, then the zone whose first cell comes first.
    zones.sort(key=lambda z: (-z.incident_count, -z.density_per_km2, int(z.cells[0])))
    for rank, zone in enumerate(zones, start=1):
        zone.rank = rank
    if category_cells is not None and len(zones):
        _attach_categories(
            zones,
            labels,
            np.asarray(category_cells),
            np.asarray(category_ids),
            np.asarray(category_counts),
            category_codes or {},
        )
    return zones


def _attach_categories(zones, labels, cells, ids, counts, codes) -> None:
    row_labels = labels[cells]
    inside = row_labels >= 0
    by_label: dict[int, dict[int, int]] = {}
    for label, category, count in zip(
        row_labels[inside].tolist(), ids[inside].tolist(), counts[inside].tolist(), strict=True
    ):
        per_zone = by_label.setdefault(label, {})
        per_zone[category] = per_zone.get(category, 0) + count
    for zone in zones:
        label = int(labels[zone.cells[0]])
        tally = by_label.get(label, {})
        ranked = sorted(
            ((codes.get(cid, str(cid)), n) for cid, n in tally.items()),
            key=lambda item: (-item[1], item[0]),
        )
        zone.top_categories = [
            {"code": code, "count": n, "share": round(n / zone.incident_count, 4)}
            for code, n in ranked[:TOP_CATEGORIES]
        ]


# --- patrol-sized zones -------------------------------------------------------------------


@dataclass
class SplitResult:
    labels: np.ndarray  # like zone_labels' output, the large components cut into parts
    components: int  # connected components before the split
    split: int  # components larger than the maximum area, cut
    peaks: int  # local maxima of the score found in those components


def split_zones(
    labels: np.ndarray,
    score: np.ndarray,
    adjacency: sparse.csr_matrix,
    x: np.ndarray,
    y: np.ndarray,
    *,
    cell_area_m2: float,
    max_area_m2: float,
) -> SplitResult:
    """The components of ``labels`` (from :func:`zone_labels`) at most ``max_area_m2``
    each; smaller components are kept exactly as they are.

    A larger component is cut in three deterministic steps, on its own cells only:

    1. **watershed**: each cell climbs by steepest ascent of ``score`` over the cells it
       touches (equal-score touching cells form one flat step; ties go to the lowest cell
       index) to a local maximum, and the cells reaching one maximum form its basin;
    2. **rejoin**: touching basins are joined back across their highest saddle first (the
       saddle of two basins: the best min(score a, score b) over their touching cells),
       while the joined part still fits in the maximum area, so that a minor bump beside
       a peak does not become a one-cell zone;
    3. **bisection**: a part still above the maximum (one broad plateau) is cut in two
       equal halves of cells across the longer side of its cells' bounding box (centres
       ``x``, ``y``; ties by the other coordinate, then the cell index), each half's
       touching pieces kept apart, again until every part fits.

    A single cell larger than the maximum stays whole. Parts are numbered in the order of
    their first cell; ranking is :func:`build_zones`' job.
    """
    labels = np.asarray(labels, dtype=np.int64)
    score = np.where(np.isfinite(score), np.asarray(score, dtype=np.float64), -np.inf)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    max_cells = max(1, int(np.floor(max_area_m2 / cell_area_m2 + 1e-9)))
    out = np.full(len(labels), -1, dtype=np.int64)
    components = np.unique(labels[labels >= 0])
    next_label, split, peaks = 0, 0, 0
    for component in components:
        cells = np.flatnonzero(labels == component)
        if len(cells) <= max_cells:
            parts = [cells]
        else:
            sub = adjacency[cells][:, cells].tocoo()
            a, b = sub.row[sub.row < sub.col], sub.col[sub.row < sub.col]
            basin, n_peaks = _watershed(score[cells], a, b)
            part = _rejoin(basin, score[cells], a, b, max_cells)
            local = [np.flatnonzero(part == p) for p in np.unique(part)]
            pieces = []
            for members in local:
                pieces.extend(_bisect(members, x[cells], y[cells], a, b, max_cells))
            parts = [cells[p] for p in pieces]
            split += 1
            peaks += n_peaks
        for members in sorted(parts, key=lambda m: int(m.min())):
            out[members] = next_label
            next_label += 1
    return SplitResult(labels=out, components=len(components), split=split, peaks=peaks)


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    graph = sparse.csr_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _watershed(score: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int]:
    """Basin (an id per cell) of the local maximum each cell climbs to, and the number of
    maxima. Edges ``a``–``b`` are the touching pairs, each once."""
    n = len(score)
    flat = score[a] == score[b]
    step = _components(n, a[flat], b[flat])  # plateaus: one node each
    value = np.empty(step.max() + 1)
    value[step] = score
    # Directed edges from the lower step to the higher one.
    up = ~flat
    lo = np.where(score[a] < score[b], step[a], step[b])[up]
    hi = np.where(score[a] < score[b], step[b], step[a])[up]
    parent = np.arange(len(value))
    if len(lo):
        order = np.lexsort((hi, -value[hi], lo))  # per lower step: highest, then lowest id
        lo, hi = lo[order], hi[order]
        first = np.unique(lo, return_index=True)[1]
        parent[lo[first]] = hi[first]
    while True:  # pointer jumping: every step to the top of its climb
        jumped = parent[parent]
        if np.array_equal(jumped, parent):
            break
        parent = jumped
    roots, basin = np.unique(parent[step], return_inverse=True)
    return basin, len(roots)


def _rejoin(
    basin: np.ndarray, score: np.ndarray, a: np.ndarray, b: np.ndarray, max_cells: int
) -> np.ndarray:
    """Basins joined across their highest saddles while the join fits ``max_cells``."""
    cross = basin[a] != basin[b]
    ba, bb = basin[a][cross], basin[b][cross]
    lo, hi = np.minimum(ba, bb), np.maximum(ba, bb)
    saddle = np.minimum(score[a], score[b])[cross]
    size = np.bincount(basin).astype(np.int64)
    root = np.arange(len(size))

    def find(node: int) -> int:
        while root[node] != node:
            root[node] = root[root[node]]
            node = root[node]
        return node

    # Highest saddle first; equal saddles: the pair of lowest basin ids first.
    for k in np.lexsort((hi, lo, -saddle)):
        ra, rb = find(int(lo[k])), find(int(hi[k]))
        if ra != rb and size[ra] + size[rb] <= max_cells:
            ra, rb = min(ra, rb), max(ra, rb)
            root[rb] = ra
            size[ra] += size[rb]
    return np.array([find(int(node)) for node in basin], dtype=np.int64)


def _bisect(
    members: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    max_cells: int,
) -> list[np.ndarray]:
    """``members`` (local cell indices) in touching pieces of at most ``max_cells``."""
    inside = np.zeros(len(x), dtype=bool)
    inside[members] = True
    keep = inside[a] & inside[b]
    position = np.full(len(x), -1, dtype=np.int64)
    position[members] = np.arange(len(members))
    piece = _components(len(members), position[a[keep]], position[b[keep]])
    out = []
    for p in np.unique(piece):
        cells = members[piece == p]
        if len(cells) <= max_cells:
            out.append(cells)
            continue
        cx, cy = x[cells], y[cells]
        along, across = (cx, cy) if np.ptp(cx) >= np.ptp(cy) else (cy, cx)
        order = np.lexsort((cells, across, along))
        half = len(cells) // 2
        for chunk in (cells[order[:half]], cells[order[half:]]):
            out.extend(_bisect(np.sort(chunk), x, y, a, b, max_cells))
    return out
