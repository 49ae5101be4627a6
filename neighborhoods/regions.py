"""What a region derives from its boundaries, refreshed after every load: its outline,
the pieces point-in-polygon tests use, and (for a new region) its time zone and metric
CRS."""

from __future__ import annotations

from django.contrib.gis.db.models.functions import PointOnSurface
from django.db import connection

from geo.conf import utm_srid_for
from geo.crs import crs_covers
from geo.timezones import time_zone_at
from neighborhoods.models import Region

# A region whose location gives no land time zone (at sea) counts its days in UTC.
FALLBACK_TIME_ZONE = "UTC"


def refresh_area_parts(region: Region) -> None:
    # ST_Subdivide is a set-returning function: the ORM cannot express INSERT ... SELECT of it.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM neighborhoods_areapart WHERE region_id = %s", [region.pk])
        for kind, table in (
            ("district", "neighborhoods_district"),
            ("neighborhood", "neighborhoods_neighborhood"),
        ):
            cursor.execute(
                f"""
                INSERT INTO neighborhoods_areapart (region_id, kind, area_id, geom)
                SELECT region_id, %s, id, ST_Subdivide(geom, 256)
                FROM {table} WHERE region_id = %s
                """,  # noqa: S608 - table names are constants above
                [kind, region.pk],
            )


def refresh_region_geometry(region: Region) -> None:
    # ST_Union over the region's districts (or neighborhoods when it has none) in one
    # statement; ST_MakeValid guards against slivers the union may leave.
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE neighborhoods_region r SET geom = (
              SELECT ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_Union(a.geom)), 3))
              FROM (
                SELECT geom FROM neighborhoods_district WHERE region_id = %s
                UNION ALL
                SELECT geom FROM neighborhoods_neighborhood WHERE region_id = %s
                  AND NOT EXISTS (SELECT 1 FROM neighborhoods_district WHERE region_id = %s)
              ) a)
            WHERE r.id = %s
            """,
            [region.pk, region.pk, region.pk, region.pk],
        )


def location_time_zone(region: Region) -> str | None:
    """The time zone at a point surely inside the region's outline (None without one)."""
    point = (
        Region.objects.filter(pk=region.pk, geom__isnull=False)
        .annotate(inside=PointOnSurface("geom"))
        .values_list("inside", flat=True)
        .first()
    )
    return time_zone_at(point.x, point.y) if point is not None else None


def settle_time_zone(region: Region, report, given: str | None) -> None:
    """A new region takes the time zone of its location unless one was given; a region
    kept in UTC whose location says otherwise gets a note on how to change it."""
    found = location_time_zone(region)
    if report.region_created:
        if given:
            report.time_zone, report.time_zone_source = given, "option"
            if found and found != given:
                report.notes.append(
                    f"time zone {given} was given, but the region's location is in {found}"
                )
            return
        report.time_zone = found or FALLBACK_TIME_ZONE
        report.time_zone_source = "location" if found else "fallback"
        if found:
            Region.objects.filter(pk=region.pk).update(time_zone=found)
        return
    report.time_zone = given or region.time_zone
    if (
        not given
        and found
        and region.time_zone == FALLBACK_TIME_ZONE
        and found != FALLBACK_TIME_ZONE
    ):
        report.notes.append(
            f"region {region.code} counts its days in {FALLBACK_TIME_ZONE} but lies in {found}: "
            f"give --time-zone {found} to change it"
        )


def currency_for_time_zone(time_zone: str) -> str:
    """The ISO 4217 currency of the country a time zone lies in (CLDR); "" for UTC and
    other zones of no country."""
    from babel.core import get_global
    from babel.numbers import get_territory_currencies

    territory = get_global("zone_territories").get(time_zone)
    if not territory:
        return ""
    currencies = get_territory_currencies(territory, tender=True)
    return currencies[0] if currencies else ""


def settle_currency(region: Region, report) -> None:
    """A region with no currency takes that of its time zone's country, and says so."""
    region.refresh_from_db(fields=["currency", "time_zone"])
    if region.currency:
        return
    found = currency_for_time_zone(region.time_zone)
    if found:
        Region.objects.filter(pk=region.pk).update(currency=found)
        region.currency = found
        report.notes.append(f"currency {found}, from the region's time zone {region.time_zone}")


def _centre(frame) -> tuple[float, float] | None:
    """The centre of the data's bounding box, in lon/lat."""
    if not frame.geometry.notna().any():
        return None
    min_x, min_y, max_x, max_y = frame.geometry.dropna().total_bounds
    return (float(min_x + max_x) / 2, float(min_y + max_y) / 2)


def utm_example(frame) -> dict:
    """The UTM zone of the data's centre, to suggest when a metric CRS is refused."""
    centre = _centre(frame)
    try:
        return {"example": f"EPSG:{utm_srid_for(*centre)}"} if centre else {}
    except ValueError:
        return {}


def settle_metric_crs(region: Region | None, report, frame, given: int | None) -> None:
    """A new region's metric CRS is ``given`` (already checked) or the UTM zone of the
    data's centre; an existing region changes to ``given`` when it differs (its hotspot
    runs keep the SRID they stored)."""
    centre = _centre(frame)
    if region is None:
        if given is not None:
            report.metric_srid, report.metric_srid_given = given, True
        elif centre is not None:
            report.metric_srid = utm_srid_for(*centre)
        report.region_created = True
    else:
        report.metric_srid = region.metric_srid
        if given is not None and given != region.metric_srid:
            report.region_changes.append(
                f"metric CRS EPSG:{region.metric_srid} -> EPSG:{given} (hotspot runs "
                "already computed keep the CRS they were computed in)"
            )
            report.metric_srid, report.metric_srid_given = given, True
    if given is not None and centre is not None and crs_covers(given, *centre) is False:
        report.notes.append(
            f"the data's centre ({centre[0]:.4f}, {centre[1]:.4f}) is outside the area of use "
            f"of EPSG:{given}: its distances and areas may be distorted there"
        )
