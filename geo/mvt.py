"""Mapbox Vector Tiles built by PostGIS, and the Web Mercator pixel grids map endpoints
aggregate on.

:func:`tile_bytes` turns any queryset into one MVT layer: PostGIS clips and quantises the
geometries (``ST_AsMVTGeom``) and encodes the protobuf (``ST_AsMVT``); Python only passes
the bytes on. Tiles use the usual XYZ scheme (Leaflet, OpenLayers, MapLibre): 256-pixel
tiles, y counted from the north.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from django.contrib.gis.db.models.functions import SnapToGrid, Transform
from django.contrib.gis.geos import Polygon
from django.db import connections
from django.db.models import Expression, ExpressionWrapper, F, Field, QuerySet
from django.http import HttpResponse

from geo.conf import WEB_MERCATOR_SRID
from geo.db.mvt_functions import AsMVTGeom, TileEnvelope
from geo.geojson import GeoJSONParameterError, check_zoom

MVT_CONTENT_TYPE = "application/vnd.mapbox-vector-tile"
# Half the width of the Web Mercator world, in metres.
HALF_WORLD_M = 20037508.342789244
# One 256-pixel-tile pixel at zoom 0, in Web Mercator metres (at the equator).
PIXEL_AT_ZOOM0_M = 2 * HALF_WORLD_M / 256
DEFAULT_EXTENT = 4096
DEFAULT_BUFFER = 256

_GEOM_COLUMN = "_mvt_geom"
_PROPERTY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def pixel_size_m(zoom: int) -> float:
    """The side of a screen pixel at ``zoom``, in Web Mercator metres. A zoom outside
    0…MAX_ZOOM is refused (GeoJSONParameterError) before ``2**zoom`` is computed."""
    check_zoom(zoom)
    return PIXEL_AT_ZOOM0_M / (2**zoom)


def pixel_grid(geom_field: str, zoom: int, pixels: float) -> Expression:
    """Each geometry snapped to a grid of ``pixels`` screen pixels at ``zoom``, computed in
    Web Mercator so that cells are squares on the map: ``values(cell=...)`` then an
    aggregate groups a queryset by cell."""
    return SnapToGrid(Transform(geom_field, WEB_MERCATOR_SRID), pixels * pixel_size_m(zoom))


def check_tile(z: int, x: int, y: int) -> None:
    """Refuses a tile address outside the XYZ pyramid (GeoJSONParameterError → HTTP 400).
    z is checked before anything is computed from it: every function here that takes a
    tile address calls this first."""
    check_zoom(z, "z")
    side = 2**z
    for name, value in (("x", x), ("y", y)):
        if not 0 <= value < side:
            raise GeoJSONParameterError(name, f"{name} must be between 0 and {side - 1} at z={z}")


def tile_bounds(z: int, x: int, y: int, *, margin: float = 0.0) -> Polygon:
    """The tile's square in Web Mercator (SRID 3857), grown by ``margin`` tile widths on
    every side — the same square as ``ST_TileEnvelope(z, x, y, margin => margin)``."""
    check_tile(z, x, y)
    size = 2 * HALF_WORLD_M / (2**z)
    min_x = -HALF_WORLD_M + x * size - margin * size
    max_x = -HALF_WORLD_M + (x + 1) * size + margin * size
    max_y = HALF_WORLD_M - y * size + margin * size
    min_y = HALF_WORLD_M - (y + 1) * size - margin * size
    polygon = Polygon.from_bbox((min_x, min_y, max_x, max_y))
    polygon.srid = WEB_MERCATOR_SRID
    return polygon


def _touching_tile(
    queryset: QuerySet, geom_field: str, z: int, x: int, y: int, *, margin: float
) -> QuerySet:
    """The rows whose geometry's bounding box touches the tile grown by ``margin`` tile
    widths: the spatial index's cut."""
    return queryset.filter(**{f"{geom_field}__bboverlaps": tile_bounds(z, x, y, margin=margin)})


def tile_bytes(
    queryset: QuerySet,
    *,
    geom_field: str,
    properties: Mapping[str, str | Expression],
    z: int,
    x: int,
    y: int,
    layer: str,
    extent: int = DEFAULT_EXTENT,
    buffer: int = DEFAULT_BUFFER,
) -> bytes:
    """One MVT layer named ``layer`` with the rows of ``queryset`` in tile z/x/y.

    ``properties`` maps each feature attribute to a field name or an expression of the
    queryset. Only rows whose geometry's bounding box touches the tile (grown by the
    buffer) are read, through the geometry's spatial index. Returns ``b""`` when the tile
    is empty.
    """
    check_tile(z, x, y)
    for name in properties:
        if not _PROPERTY_NAME.match(name) or name == _GEOM_COLUMN:
            raise ValueError(f"{name!r} cannot be a vector tile property name")
    aliases = {f"_mvt_p{i}": name for i, name in enumerate(properties)}
    annotations: dict[str, Expression] = {
        # A plain Field, not a GeometryField: Django selects geometry columns as bytea,
        # and ST_AsMVT needs the geometry itself.
        _GEOM_COLUMN: ExpressionWrapper(
            AsMVTGeom(
                Transform(geom_field, WEB_MERCATOR_SRID),
                TileEnvelope(z, x, y),
                extent=extent,
                buffer=buffer,
            ),
            output_field=Field(),
        )
    }
    for alias, source in zip(aliases, properties.values(), strict=True):
        annotations[alias] = F(source) if isinstance(source, str) else source
    rows = (
        _touching_tile(queryset, geom_field, z, x, y, margin=buffer / extent)
        .annotate(**annotations)
        .values(_GEOM_COLUMN, *aliases)
    )

    # Raw SQL, and only here: ST_AsMVT is an aggregate over whole rows (``ST_AsMVT(t.*)``)
    # whose every column but the geometry becomes a feature property, named after the
    # column. The ORM can neither aggregate a row value nor choose free-form column names
    # (an annotation may not be called ``id`` on a model with an ``id`` field), so the
    # queryset's own SQL — every filter, join and parameter the caller built — is wrapped
    # in a subquery that renames its columns, as django-vectortiles does. Column names
    # are checked above and quoted; every value travels as a bound parameter.
    connection = connections[rows.db]
    inner_sql, inner_params = rows.query.get_compiler(using=rows.db).as_sql()
    quote = connection.ops.quote_name
    columns = ", ".join(
        [f"q.{quote(_GEOM_COLUMN)}"]
        + [f"q.{quote(alias)} AS {quote(name)}" for alias, name in aliases.items()]
    )
    sql = (
        f"SELECT ST_AsMVT(t.*, %s, %s, %s) FROM ("
        f"SELECT {columns} FROM ({inner_sql}) AS q WHERE q.{quote(_GEOM_COLUMN)} IS NOT NULL"
        f") AS t"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [layer, extent, _GEOM_COLUMN, *inner_params])
        (data,) = cursor.fetchone()
    return bytes(data) if data else b""


def capped_tile_bytes(
    queryset: QuerySet,
    *,
    max_features: int,
    geom_field: str,
    properties: Mapping[str, str | Expression],
    z: int,
    x: int,
    y: int,
    layer: str,
) -> tuple[bytes, bool]:
    """:func:`tile_bytes` with at most ``max_features`` rows of ``queryset`` — the first
    ones in its order, so order it by what matters most — and whether rows were left out.
    A tile of a whole metro area at low zoom would otherwise carry every row (8.8 MB of
    CDMX incidents at zoom 0)."""
    check_tile(z, x, y)
    candidates = _touching_tile(
        queryset, geom_field, z, x, y, margin=DEFAULT_BUFFER / DEFAULT_EXTENT
    ).values("pk")
    truncated = candidates[max_features : max_features + 1].exists()
    chosen = queryset.model.objects.filter(pk__in=candidates[:max_features])
    data = tile_bytes(
        chosen, geom_field=geom_field, properties=properties, z=z, x=x, y=y, layer=layer
    )
    return data, truncated


def tile_response(data: bytes) -> HttpResponse:
    """The tile as ``application/vnd.mapbox-vector-tile``; an empty tile is 204 No Content
    (MapLibre, OpenLayers and Leaflet.VectorGrid all draw nothing for it)."""
    if not data:
        response = HttpResponse(status=204)
        response["Content-Type"] = MVT_CONTENT_TYPE
        return response
    return HttpResponse(data, content_type=MVT_CONTENT_TYPE)
