"""Geometries of public spaces as clients send them: checked before they reach GEOS.

A GeoJSON geometry object (a dict, or its JSON text) is checked here with plain Python and
shapely: its type, 2D coordinates that are finite longitudes/latitudes, a vertex cap and
validity. It never goes through Django's GDAL bindings (see SILENCED_SYSTEM_CHECKS), and a
``crs`` member is refused: RFC 7946 geometries are WGS84, a declared CRS would be guessed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import shapely
import shapely.geometry
from django.contrib.gis.geos import GEOSGeometry
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from geo.conf import STORAGE_SRID

# GeoJSON type -> allowed for a space (multi-lines would be several stretches: not one space)
GEOJSON_TYPES = ("Point", "LineString", "Polygon", "MultiPolygon")
MAX_VERTICES = 20000
MAX_JSON_CHARS = 2_000_000
# Where each kind of geometry is accepted.
LINE_KINDS = ("lighting_stretch",)
POINT_ONLY_KINDS = ("lighting_point",)


def _invalid(message: str) -> ValidationError:
    return ValidationError(message, code="invalid_geometry")


def _check_positions(value, depth: int, counter: list[int]) -> None:
    """Walks the nested coordinate arrays: [lon, lat] pairs, nothing else."""
    if depth == 0:
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise _invalid(
                _("Each position must be [longitude, latitude] (2D, no height or measure).")
            )
        lon, lat = value
        if isinstance(lon, bool) or isinstance(lat, bool):
            raise _invalid(_("Coordinates must be numbers."))
        if not isinstance(lon, int | float) or not isinstance(lat, int | float):
            raise _invalid(_("Coordinates must be numbers."))
        # Only floats go to math.isfinite: JSON integers are unbounded, and one too large
        # for a float makes it raise OverflowError; the range test below refuses those.
        if any(isinstance(v, float) and not math.isfinite(v) for v in (lon, lat)):
            raise _invalid(_("Coordinates must be finite numbers."))
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise _invalid(
                _("(%(lon)s, %(lat)s) is not a longitude/latitude pair (WGS84).")
                % {"lon": lon, "lat": lat}
            )
        counter[0] += 1
        if counter[0] > MAX_VERTICES:
            raise _invalid(_("Too many vertices (at most %(max)s).") % {"max": MAX_VERTICES})
        return
    if not isinstance(value, list | tuple) or not value:
        raise _invalid(_("The coordinates are empty or malformed."))
    for item in value:
        _check_positions(item, depth - 1, counter)


_DEPTH = {"Point": 0, "LineString": 1, "Polygon": 2, "MultiPolygon": 3}


def _check_rings(kind: str, coordinates) -> None:
    """RFC 7946 rings are closed, with at least four positions; shapely would close an
    open one silently, storing a shape the client did not send."""
    polygons = [coordinates] if kind == "Polygon" else coordinates if kind == "MultiPolygon" else []
    for rings in polygons:
        for ring in rings:
            if len(ring) < 4 or list(ring[0]) != list(ring[-1]):
                raise _invalid(
                    _(
                        "Each ring of a polygon must be closed (last position = first) and have "
                        "at least four positions."
                    )
                )


def parse_geojson_geometry(value: Mapping | str) -> GEOSGeometry:
    """A GeoJSON geometry -> a valid 2D GEOS geometry in EPSG:4326, or ValidationError."""
    if isinstance(value, str):
        if len(value) > MAX_JSON_CHARS:
            raise _invalid(_("The geometry is too large."))
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            # RecursionError: arrays nested thousands deep.
            raise _invalid(_("The geometry is not valid GeoJSON.")) from None
    if not isinstance(value, Mapping):
        raise _invalid(_("The geometry must be a GeoJSON geometry object."))
    if "crs" in value:
        raise _invalid(
            _("GeoJSON geometries are WGS84 longitude/latitude; a 'crs' member is not accepted.")
        )
    kind = value.get("type")
    if kind not in GEOJSON_TYPES:
        raise _invalid(
            _("Geometry type %(type)s is not accepted: use %(allowed)s.")
            % {"type": repr(kind), "allowed": ", ".join(GEOJSON_TYPES)}
        )
    coordinates = value.get("coordinates")
    _check_positions(coordinates, _DEPTH[kind], [0])
    _check_rings(kind, coordinates)
    try:
        shape = shapely.geometry.shape({"type": kind, "coordinates": coordinates})
    except (ValueError, TypeError, shapely.errors.ShapelyError) as exc:
        raise _invalid(_("The geometry is malformed (%(reason)s).") % {"reason": exc}) from None
    return from_shapely(shape)


def from_shapely(shape) -> GEOSGeometry:
    """A shapely geometry -> a checked GEOS geometry (shared by the API and the importer)."""
    if shape.is_empty:
        raise _invalid(_("The geometry is empty."))
    if shape.has_z:
        shape = shapely.force_2d(shape)
    # The admin's map widget and the importer reach this without parse_geojson_geometry:
    # the same longitude/latitude range and vertex cap apply to them.
    min_lon, min_lat, max_lon, max_lat = shape.bounds
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise _invalid(_("The coordinates are not WGS84 longitudes/latitudes."))
    if shapely.get_num_coordinates(shape) > MAX_VERTICES:
        raise _invalid(_("Too many vertices (at most %(max)s).") % {"max": MAX_VERTICES})
    if shape.geom_type not in GEOJSON_TYPES:
        raise _invalid(
            _("Geometry type %(type)s is not accepted: use %(allowed)s.")
            % {"type": shape.geom_type, "allowed": ", ".join(GEOJSON_TYPES)}
        )
    if not shape.is_valid:
        raise _invalid(
            _("The geometry is not valid (%(reason)s): a shape must not cross itself.")
            % {"reason": shapely.is_valid_reason(shape)}
        )
    if shape.geom_type == "LineString" and shape.length == 0:
        raise _invalid(_("A line needs two different points."))
    return GEOSGeometry(memoryview(shapely.to_wkb(shape)), srid=STORAGE_SRID)


def check_kind_geometry(kind: str, geom: GEOSGeometry) -> None:
    """Lines only for lighting stretches; a lighting point is a point."""
    if geom.geom_type == "LineString" and kind not in LINE_KINDS:
        raise ValidationError(
            {"geom": [_("Only a street-lighting stretch can be drawn as a line.")]}
        )
    if kind in POINT_ONLY_KINDS and geom.geom_type != "Point":
        raise ValidationError({"geom": [_("A street-lighting point must be a point.")]})
    if kind in LINE_KINDS and geom.geom_type not in ("LineString", "Polygon", "MultiPolygon"):
        raise ValidationError(
            {"geom": [_("A street-lighting stretch must be a line (or an area).")]}
        )


def geometry_as_geojson(geom: GEOSGeometry | None) -> dict | None:
    if geom is None:
        return None
    # shapely, not GEOSGeometry.json: that one goes through GDAL.
    return json.loads(shapely.to_geojson(shapely.from_wkb(bytes(geom.wkb))))
