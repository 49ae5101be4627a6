"""GeoJSON FeatureCollections built by PostGIS and streamed to the client.

Every map endpoint goes through :func:`feature_collection_response`. Each feature is
assembled as JSON text inside PostgreSQL (``json_build_object`` + ``ST_AsGeoJSON``), so
Python never builds a geometry object or a per-feature dict: it only joins strings that
arrive through a server-side cursor, which keeps memory flat for large results.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from django.contrib.gis.db.models.functions import AsGeoJSON, Transform
from django.contrib.gis.geos import Polygon
from django.db.models import Expression, F, Func, QuerySet, TextField, Value
from django.db.models.functions import Cast, JSONObject
from django.http import StreamingHttpResponse

from geo.conf import STORAGE_SRID, WEB_MERCATOR_SRID
from geo.db.functions import SimplifyPreserveTopology, XMax, XMin, YMax, YMin

GEOJSON_MEDIA_TYPE = "application/geo+json"  # RFC 7946
MAX_ZOOM = 24
# Half a screen pixel at the equator, in Web Mercator metres, at zoom 0.
_HALF_PIXEL_AT_ZOOM0_M = 156543.03392804097 / 2
_STREAM_CHUNK = 2000


class GeoJSONParameterError(ValueError):
    """A bbox/zoom parameter a client got wrong; views turn it into HTTP 400."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class BBox:
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    def as_polygon(self) -> Polygon:
        return Polygon.from_bbox((self.min_lon, self.min_lat, self.max_lon, self.max_lat))

    def as_geometry(self) -> Polygon:
        polygon = self.as_polygon()
        polygon.srid = STORAGE_SRID
        return polygon


def parse_bbox(raw: str | None) -> BBox | None:
    """``minlon,minlat,maxlon,maxlat`` as Leaflet's ``getBounds().toBBoxString()`` gives it.

    Values beyond the world are clamped (a zoomed-out Leaflet map sends longitudes past
    ±180); an inverted or malformed box is refused.
    """
    if raw is None or raw == "":
        return None
    parts = raw.split(",")
    if len(parts) != 4:
        raise GeoJSONParameterError("bbox", "bbox must be minlon,minlat,maxlon,maxlat")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise GeoJSONParameterError("bbox", "bbox values must be numbers") from None
    if not all(math.isfinite(v) for v in values):
        raise GeoJSONParameterError("bbox", "bbox values must be finite numbers")
    min_lon, min_lat, max_lon, max_lat = values
    min_lon, max_lon = max(min_lon, -180.0), min(max_lon, 180.0)
    min_lat, max_lat = max(min_lat, -90.0), min(max_lat, 90.0)
    if min_lon >= max_lon or min_lat >= max_lat:
        raise GeoJSONParameterError(
            "bbox", "bbox minimum must be below its maximum (minlon,minlat,maxlon,maxlat)"
        )
    return BBox(min_lon, min_lat, max_lon, max_lat)


def check_zoom(zoom: int, field: str = "zoom") -> None:
    """Refuses a zoom outside 0…MAX_ZOOM (GeoJSONParameterError → HTTP 400). Every
    function that computes ``2**zoom`` calls it first: a zoom of 2**40 would otherwise
    build a number of a trillion bits."""
    if not 0 <= zoom <= MAX_ZOOM:
        raise GeoJSONParameterError(field, f"{field} must be between 0 and {MAX_ZOOM}")


def parse_zoom(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        zoom = int(raw)
    except ValueError:
        raise GeoJSONParameterError("zoom", "zoom must be a whole number") from None
    check_zoom(zoom)
    return zoom


def precision_for_zoom(zoom: int | None) -> int:
    """Decimal places that still resolve a screen pixel at this zoom (6 ≈ 0.1 m)."""
    if zoom is None or zoom >= 14:
        return 6
    if zoom >= 10:
        return 5
    if zoom >= 6:
        return 4
    return 3


def simplify_tolerance_m(zoom: int | None) -> float | None:
    """Half a pixel in Web Mercator metres; None (no simplification) when zoomed far in."""
    if zoom is None:
        return None
    check_zoom(zoom)
    if zoom >= 16:
        return None
    return _HALF_PIXEL_AT_ZOOM0_M / (2**zoom)


class _GeometryAsJSON(Func):
    template = "(%(expressions)s)::json"
    output_field = TextField()


def display_geometry(geom_field: str, zoom: int | None) -> Expression:
    """The geometry as GeoJSON text, simplified by screen pixels for the zoom.

    Simplification runs in Web Mercator so its tolerance is a pixel size in metres.
    """
    geometry: Expression = F(geom_field)
    tolerance = simplify_tolerance_m(zoom)
    if tolerance is not None:
        geometry = Transform(
            SimplifyPreserveTopology(Transform(geom_field, WEB_MERCATOR_SRID), tolerance),
            STORAGE_SRID,
        )
    return AsGeoJSON(geometry, precision=precision_for_zoom(zoom))


def feature_queryset(
    queryset: QuerySet,
    *,
    geom_field: str,
    properties: Mapping[str, str | Expression],
    id_field: str = "id",
    zoom: int | None = None,
) -> QuerySet:
    """Rows of (feature JSON text, xmin, ymin, xmax, ymax) for ``queryset``."""
    property_exprs = {
        name: F(source) if isinstance(source, str) else source
        for name, source in properties.items()
    }
    feature = JSONObject(
        type=Value("Feature"),
        id=F(id_field),
        geometry=_GeometryAsJSON(display_geometry(geom_field, zoom)),
        properties=JSONObject(**property_exprs) if property_exprs else Value("{}"),
    )
    return queryset.annotate(
        _feature=Cast(feature, TextField()),
        _xmin=XMin(geom_field),
        _ymin=YMin(geom_field),
        _xmax=XMax(geom_field),
        _ymax=YMax(geom_field),
    ).values_list("_feature", "_xmin", "_ymin", "_xmax", "_ymax")


def stream_feature_collection(
    rows: QuerySet, *, max_features: int, extra_members: Mapping[str, object] | None = None
) -> Iterator[bytes]:
    """Streams a FeatureCollection; ``bbox`` and ``truncated`` come after the features,
    when they are known (member order is free in JSON)."""
    yield b'{"type":"FeatureCollection","features":['
    min_x = min_y = math.inf
    max_x = max_y = -math.inf
    count = 0
    truncated = False
    # One row past the cap tells whether the result was cut.
    for feature, xmin, ymin, xmax, ymax in rows[: max_features + 1].iterator(
        chunk_size=_STREAM_CHUNK
    ):
        if count == max_features:
            truncated = True
            break
        yield (b"," if count else b"") + feature.encode()
        count += 1
        if xmin is not None:
            min_x, min_y = min(min_x, xmin), min(min_y, ymin)
            max_x, max_y = max(max_x, xmax), max(max_y, ymax)
    tail: dict[str, object] = {"numberReturned": count, "truncated": truncated}
    if count and math.isfinite(min_x):
        tail["bbox"] = [round(v, 6) for v in (min_x, min_y, max_x, max_y)]
    if extra_members:
        tail.update(extra_members)
    yield b"]," + json.dumps(tail, separators=(",", ":"))[1:].encode()


def feature_collection_response(
    queryset: QuerySet,
    *,
    geom_field: str,
    properties: Mapping[str, str | Expression],
    id_field: str = "id",
    zoom: int | None = None,
    max_features: int,
    extra_members: Mapping[str, object] | None = None,
) -> StreamingHttpResponse:
    rows = feature_queryset(
        queryset, geom_field=geom_field, properties=properties, id_field=id_field, zoom=zoom
    )
    return StreamingHttpResponse(
        stream_feature_collection(rows, max_features=max_features, extra_members=extra_members),
        content_type=GEOJSON_MEDIA_TYPE,
    )
