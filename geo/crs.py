"""Which CRSs a region's metric work may run in: a projected CRS measured in metres that
PostGIS can transform to (it has the CRS in ``spatial_ref_sys``).

The default is still the UTM zone of the region's centre (geo.conf.utm_srid_for); an
analyst reproducing another tool's grid chooses the CRS that tool used instead.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext_noop
from pyproj import CRS
from pyproj.exceptions import CRSError

# English templates, translated where they are shown to a person (Region.clean); the
# commands print them as they are, like every other command message.
NOT_AN_EPSG_CODE = gettext_noop(
    "%(value)s is not an EPSG code: give a number such as 32718 or EPSG:32718"
)
UNKNOWN_CRS = gettext_noop("EPSG:%(srid)s is not a known coordinate reference system")
NOT_PROJECTED = gettext_noop(
    "EPSG:%(srid)s (%(name)s) is a geographic CRS, in degrees: distances, areas and grid "
    "cells need a projected CRS in metres, such as the UTM zone of the region (%(example)s)"
)
NOT_METRES = gettext_noop(
    "EPSG:%(srid)s (%(name)s) measures in %(unit)s, not metres: choose a projected CRS in "
    "metres, such as the UTM zone of the region (%(example)s)"
)
NOT_TRUE_METRES = gettext_noop(
    "EPSG:%(srid)s (%(name)s) is a web map projection whose metres stretch with latitude: "
    "distances and areas would be wrong, choose a projected CRS such as the UTM zone of the "
    "region (%(example)s)"
)
NOT_IN_POSTGIS = gettext_noop(
    "EPSG:%(srid)s is not in PostGIS's spatial_ref_sys table, so the database cannot "
    "transform to it"
)

_EPSG = re.compile(r"^\s*(?:epsg\s*:\s*)?(\d{1,9})\s*$", re.IGNORECASE)


class MetricCRSError(ValueError):
    """``template % params`` says why; ``str()`` is the English message."""

    def __init__(self, template: str, params: dict):
        super().__init__(template % params)
        self.template = template
        self.params = params


def parse_epsg(value: str | int) -> int:
    """``"EPSG:32718"``, ``"epsg:32718"``, ``"32718"`` or ``32718`` -> 32718."""
    match = _EPSG.match(str(value))
    if not match or int(match.group(1)) <= 0:
        raise MetricCRSError(NOT_AN_EPSG_CODE, {"value": repr(str(value))})
    return int(match.group(1))


def check_metric_srid(srid: int, *, example: str = "EPSG:326zz/327zz") -> int:
    """``srid`` when it is a projected CRS in metres that PostGIS knows; else MetricCRSError.
    ``example`` names the CRS to suggest instead (the UTM zone, when the place is known)."""
    try:
        crs = CRS.from_epsg(srid)
    except CRSError:
        raise MetricCRSError(UNKNOWN_CRS, {"srid": srid}) from None
    if not crs.is_projected:
        raise MetricCRSError(NOT_PROJECTED, {"srid": srid, "name": crs.name, "example": example})
    units = {(axis.unit_name or "").lower() for axis in crs.axis_info}
    if not units <= {"metre", "meter"}:
        unit = ", ".join(sorted(u for u in units if u not in ("metre", "meter"))) or "?"
        raise MetricCRSError(
            NOT_METRES, {"srid": srid, "name": crs.name, "unit": unit, "example": example}
        )
    method = crs.coordinate_operation.method_name if crs.coordinate_operation else ""
    if "pseudo mercator" in method.lower().replace("-", " "):
        raise MetricCRSError(NOT_TRUE_METRES, {"srid": srid, "name": crs.name, "example": example})
    from django.contrib.gis.db.backends.postgis.models import PostGISSpatialRefSys

    if not PostGISSpatialRefSys.objects.filter(srid=srid).exists():
        raise MetricCRSError(NOT_IN_POSTGIS, {"srid": srid})
    return srid


def crs_covers(srid: int, lon: float, lat: float) -> bool | None:
    """Whether (lon, lat) lies in the CRS's published area of use (None when it has none)."""
    area = CRS.from_epsg(srid).area_of_use
    if area is None:
        return None
    west, south, east, north = area.bounds
    inside_lon = west <= lon <= east if west <= east else (lon >= west or lon <= east)
    return bool(inside_lon and south <= lat <= north)
