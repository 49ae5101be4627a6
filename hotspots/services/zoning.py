"""Zones of the cell methods (Gi*, forecast): chosen cells merged where they touch, and a
merged zone larger than the run's ``max_zone_km2`` split into patrol-sized parts
(:func:`hotspots.engine.zones.split_zones`), the rule recorded in the run's summary."""

from __future__ import annotations

import numpy as np

from hotspots.engine import grid as grids
from hotspots.engine.zones import Zone, build_zones, split_zones, zone_labels

# The rule's code in the summary; the pages write it in the reader's language from the
# code and numbers (hotspots.tables.zone_rule_text), like an emerging run's cell size rule.
SPLIT_AT_PEAKS = "split_at_peaks"


def zone_rule(max_zone_km2: float, score: str) -> dict:
    """The rule as the summary records it: codes and numbers, no sentence. ``score`` names
    the value whose peaks a large zone is cut at (``gi_z`` or ``forecast``)."""
    return {"rule": SPLIT_AT_PEAKS, "score": score, "max_zone_km2": float(max_zone_km2)}


def patrol_zones(
    grid: grids.Grid,
    i: np.ndarray,
    j: np.ndarray,
    member: np.ndarray,
    score: np.ndarray,
    *,
    max_zone_km2: float,
    score_name: str,
    **build,
) -> tuple[list[Zone], np.ndarray, dict]:
    """(zones ranked after the split, the zone rank of each cell (0 outside any zone),
    summary entries) for the ``member`` cells; ``score`` is the value whose peaks a large
    zone is cut at; ``build`` goes to :func:`~hotspots.engine.zones.build_zones`."""
    adjacency = grids.adjacency_matrix(grid, i, j)
    merged = zone_labels(adjacency, member)
    x, y = grid.centres(i, j)
    result = split_zones(
        merged,
        score,
        adjacency,
        x,
        y,
        cell_area_m2=grid.cell_area_m2,
        max_area_m2=max_zone_km2 * 1e6,
    )
    zones = build_zones(result.labels, cell_area_m2=grid.cell_area_m2, **build)
    zone_of_cell = np.zeros(len(member), dtype=np.int64)
    for zone in zones:
        zone_of_cell[zone.cells] = zone.rank
    summary = {
        "zone_rule": {**zone_rule(max_zone_km2, score_name), "peaks": result.peaks},
        "zones_merged": result.components,
        "zones_split": result.split,
    }
    return zones, zone_of_cell, summary
