"""The hotspot engine: grids, Getis-Ord Gi*, false discovery rate and hot zones.

Pure numpy/scipy: no Django, no SQL. ``grid`` numbers cells exactly as PostGIS'
``ST_SquareGrid``/``ST_HexagonGrid`` do (the counting in the database is
:mod:`hotspots.queries`); ``gistar``, ``zones`` and the others work on the cell arrays.
"""


class HotspotRefused(ValueError):
    """A run that cannot give a meaningful answer (too few incidents, no variation, no
    metric CRS...). The message is shown to the planner as is."""


MIN_INCIDENTS = 30
MIN_CELLS = 30
