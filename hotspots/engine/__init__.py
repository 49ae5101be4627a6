"""The hotspot engine: grids, Getis-Ord Gi*, false discovery rate and hot zones.

``grid`` numbers cells exactly as PostGIS' ``ST_SquareGrid``/``ST_HexagonGrid`` do and counts
incidents in the database; ``gistar`` and ``zones`` are numpy/scipy on the cell arrays.
"""


class HotspotRefused(ValueError):
    """A run that cannot give a meaningful answer (too few incidents, no variation, no
    metric CRS...). The message is shown to the planner as is."""


MIN_INCIDENTS = 30
MIN_CELLS = 30
