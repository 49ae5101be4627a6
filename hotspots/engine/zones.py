"""Hot zones: contiguous significant hot cells merged into one area each.

Cells are joined when they touch (square: the 8 around, corners included; hexagon: the 6
around) and both are significant hot cells at the run's confidence; each connected
component is a zone. A zone's figures come from its cells: incidents, area (cells are
whole, never clipped to the analysis area), density, share of all the area's incidents,
and its most frequent categories. Zones are ranked by incidents, then density, then the
position of their first cell, so ranks never depend on chance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

TOP_CATEGORIES = 5


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
