"""PostGIS functions Django's ORM does not provide, as small ``Func`` subclasses."""

from django.contrib.gis.db.models import GeometryField
from django.contrib.gis.db.models.functions import GeomOutputGeoFunc
from django.db.models import BooleanField, FloatField, Func


class SimplifyPreserveTopology(GeomOutputGeoFunc):
    function = "ST_SimplifyPreserveTopology"


class PointOnSurface(GeomOutputGeoFunc):
    function = "ST_PointOnSurface"


class Multi(GeomOutputGeoFunc):
    function = "ST_Multi"


class FloatFunc(Func):
    """A PostGIS function that answers a number (a coordinate, a bound)."""

    output_field = FloatField()


class XMin(FloatFunc):
    function = "ST_XMin"


class YMin(FloatFunc):
    function = "ST_YMin"


class XMax(FloatFunc):
    function = "ST_XMax"


class YMax(FloatFunc):
    function = "ST_YMax"


class UnionAgg(Func):
    """``ST_Union`` as an aggregate over a queryset column (Django's ``Union`` aggregate
    returns a GEOS object in Python; this keeps the result inside SQL expressions)."""

    function = "ST_Union"
    output_field = GeometryField()
    contains_aggregate = True


class BoxAround(Func):
    """``geom``'s bounding box grown by ``metres`` in degrees, generously (a degree of
    latitude is at least 110.57 km, one of longitude that times cos(latitude)): with
    ``&&`` it lets a point index make the first cut before a metric test decides."""

    output_field = GeometryField()

    def __init__(self, geom, metres, **extra):
        super().__init__(geom, metres, **extra)

    def as_sql(self, compiler, connection, **extra_context):
        geom_sql, geom_params = compiler.compile(self.source_expressions[0])
        metres_sql, metres_params = compiler.compile(self.source_expressions[1])
        template = (
            f"ST_Expand({geom_sql}, {metres_sql} / 110574.0 / "
            f"greatest(cos(radians(ST_Y(ST_Centroid({geom_sql})))), 0.05), "
            f"{metres_sql} / 110574.0)"
        )
        params = (*geom_params, *metres_params, *geom_params, *metres_params)
        return template, params


class BBoxOverlaps(Func):
    """``a && b``: the bounding boxes overlap (the index-backed first cut)."""

    arg_joiner = " && "
    template = "(%(expressions)s)"
    output_field = BooleanField()


class DWithinIn(Func):
    """``ST_DWithin`` of two geometries transformed to ``srid`` (a column or expression,
    e.g. the region's UTM zone): a distance in metres where Django's ``dwithin`` lookup
    takes a fixed SRID or degrees."""

    output_field = BooleanField()

    def __init__(self, a, b, srid, metres, **extra):
        super().__init__(a, b, srid, metres, **extra)

    def as_sql(self, compiler, connection, **extra_context):
        (a, ap), (b, bp), (srid, sp), (metres, mp) = (
            compiler.compile(e) for e in self.source_expressions
        )
        sql = f"ST_DWithin(ST_Transform({a}, {srid}), ST_Transform({b}, {srid}), {metres})"
        return sql, (*ap, *sp, *bp, *sp, *mp)
