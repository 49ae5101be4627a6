"""SRID policy.

Geometries are stored in WGS84 (EPSG:4326): GeoJSON, Leaflet and drf-gis filters all speak
lon/lat. Anything measured in metres (areas, distances, grids, clustering) is computed in the
UTM zone of the area being analysed, which each Region records as its ``metric_srid``.
"""

from __future__ import annotations

import math

STORAGE_SRID = 4326
WEB_MERCATOR_SRID = 3857


def utm_srid_for(lon: float, lat: float) -> int:
    """EPSG code of the WGS84 UTM zone containing (lon, lat): 326zz north, 327zz south."""
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0) or math.isnan(lon + lat):
        raise ValueError(f"({lon}, {lat}) is not a longitude/latitude pair")
    if not -80.0 <= lat <= 84.0:
        raise ValueError(f"latitude {lat} is outside the UTM system (80°S to 84°N)")
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


def is_utm_srid(srid: int) -> bool:
    return 32601 <= srid <= 32660 or 32701 <= srid <= 32760
