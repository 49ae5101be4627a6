"""PostGIS functions for vector tiles and screen-pixel grids (see ``geo.mvt``).

Kept apart from ``geo.db.functions`` so that tile and grid work has one home. Django's own
``SnapToGrid`` and ``Transform`` cover the rest.
"""

from django.contrib.gis.db.models import GeometryField
from django.db.models import Func, IntegerField, Value

from geo.conf import STORAGE_SRID, WEB_MERCATOR_SRID
from geo.db.functions import FloatFunc


class TileEnvelope(Func):
    """``ST_TileEnvelope(z, x, y)``: a web map tile's square in Web Mercator (PostGIS 3.0+)."""

    function = "ST_TileEnvelope"
    output_field = GeometryField(srid=WEB_MERCATOR_SRID)

    def __init__(self, z: int, x: int, y: int, **extra):
        super().__init__(*(Value(int(v), output_field=IntegerField()) for v in (z, x, y)), **extra)


class AsMVTGeom(Func):
    """``ST_AsMVTGeom(geom, bounds, extent, buffer, clip)``: a Web Mercator geometry in the
    tile's integer coordinate space, or NULL when it falls outside the tile and its buffer."""

    function = "ST_AsMVTGeom"
    output_field = GeometryField(srid=WEB_MERCATOR_SRID)

    def __init__(self, geometry, bounds, *, extent: int = 4096, buffer: int = 256, **extra):
        super().__init__(
            geometry,
            bounds,
            Value(int(extent), output_field=IntegerField()),
            Value(int(buffer), output_field=IntegerField()),
            Value(True),
            **extra,
        )


class PointX(FloatFunc):
    """``ST_X``: a point's longitude (or easting)."""

    function = "ST_X"


class PointY(FloatFunc):
    """``ST_Y``: a point's latitude (or northing)."""

    function = "ST_Y"


class MakePoint(Func):
    """A point from two numeric expressions (e.g. the mean longitude and latitude of a
    grid cell), in WGS84 unless told otherwise."""

    template = "ST_SetSRID(ST_MakePoint(%(expressions)s), %(srid)s)"

    def __init__(self, x, y, *, srid: int = STORAGE_SRID, **extra):
        super().__init__(x, y, srid=int(srid), output_field=GeometryField(srid=srid), **extra)
