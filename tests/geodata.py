"""Small geometry builders for tests (plain functions; the fixtures live in conftest.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import geopandas as gpd
import shapely
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

# A 0.01° grid cell is about 1.1 km: small enough to stay inside one UTM zone.
LIMA_ORIGIN = (-77.10, -12.10)
CELL = 0.01


def grid_cell(col: int, row: int = 0, *, origin=LIMA_ORIGIN, size: float = CELL) -> BaseGeometry:
    """The square (col, row) of a regular lon/lat grid starting at ``origin``."""
    lon0, lat0 = origin
    return box(
        lon0 + col * size, lat0 + row * size, lon0 + (col + 1) * size, lat0 + (row + 1) * size
    )


def feature_collection(
    records: Iterable[Mapping], *, crs: str | None = None, geometry_key: str = "geometry"
) -> dict:
    """A GeoJSON FeatureCollection dict; record geometries may be shapely objects or None."""
    features = []
    for record in records:
        geometry = record.get(geometry_key)
        if isinstance(geometry, BaseGeometry):
            geometry = shapely.geometry.mapping(geometry)
        properties = {k: v for k, v in record.items() if k != geometry_key}
        features.append({"type": "Feature", "properties": properties, "geometry": geometry})
    collection: dict = {"type": "FeatureCollection"}
    if crs:
        collection["crs"] = {"type": "name", "properties": {"name": crs}}
    collection["features"] = features
    return collection


def vector_read(records: Iterable[Mapping], *, geometry_key: str = "geometry"):
    """A ``geo.io.VectorRead`` built in memory, as ``read_vector`` would return it."""
    from geo.io import VectorRead

    records = list(records)
    frame = gpd.GeoDataFrame(
        [{k: v for k, v in r.items() if k != geometry_key} for r in records],
        geometry=[r[geometry_key] for r in records],
        crs="EPSG:4326",
    )
    frame.index = range(1, len(frame) + 1)
    return VectorRead(frame=frame, source_crs="EPSG:4326", driver="GeoJSON")
