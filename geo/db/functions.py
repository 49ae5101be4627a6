"""PostGIS functions Django's ORM does not provide, as small ``Func`` subclasses."""

from django.contrib.gis.db.models import GeometryField
from django.contrib.gis.db.models.functions import GeomOutputGeoFunc
from django.db.models import FloatField, Func


class SimplifyPreserveTopology(GeomOutputGeoFunc):
    function = "ST_SimplifyPreserveTopology"


class PointOnSurface(GeomOutputGeoFunc):
    function = "ST_PointOnSurface"


class Multi(GeomOutputGeoFunc):
    function = "ST_Multi"


class XMin(Func):
    function = "ST_XMin"
    output_field = FloatField()


class YMin(Func):
    function = "ST_YMin"
    output_field = FloatField()


class XMax(Func):
    function = "ST_XMax"
    output_field = FloatField()


class YMax(Func):
    function = "ST_YMax"
    output_field = FloatField()


class UnionAgg(Func):
    """``ST_Union`` as an aggregate over a queryset column (Django's ``Union`` aggregate
    returns a GEOS object in Python; this keeps the result inside SQL expressions)."""

    function = "ST_Union"
    output_field = GeometryField()
    contains_aggregate = True
