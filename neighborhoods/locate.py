"""Where is this? The one place that assigns areas to points and geometries, for every
caller: the incident import (many points at once, in this process), public spaces (a
geometry under the municipal rule), the lookup API and the boundary importer (a
neighborhood's district). Nobody else writes point-in-area SQL."""

from __future__ import annotations

import shapely
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon, Point
from django.db import connection

from geo.conf import STORAGE_SRID
from neighborhoods.models import District, Neighborhood, Region


def areas_containing(*, lon: float, lat: float) -> list[dict]:
    """Region, district and neighborhood(s) that contain the point, MapIt style."""
    point = Point(lon, lat, srid=STORAGE_SRID)
    districts = list(
        District.objects.filter(geom__covers=point).select_related("region").defer("geom")
    )
    neighborhoods = list(
        Neighborhood.objects.filter(geom__covers=point)
        .select_related("region", "district")
        .defer("geom", "district__geom")
    )
    regions = {d.region for d in districts} | {n.region for n in neighborhoods}
    result: list[dict] = []
    for region in sorted(regions, key=lambda r: r.code):
        result.append(
            {
                "type": "region",
                "code": region.code,
                "name": region.name,
                "region": region.code,
                "synthetic": region.synthetic,
            }
        )
        for district in sorted(
            (d for d in districts if d.region_id == region.pk), key=lambda d: d.code
        ):
            result.append(
                {
                    "type": "district",
                    "code": district.code,
                    "name": district.name,
                    "region": region.code,
                    "population": district.population,
                }
            )
        for hood in sorted(
            (n for n in neighborhoods if n.region_id == region.pk), key=lambda n: n.code
        ):
            result.append(
                {
                    "type": "neighborhood",
                    "code": hood.code,
                    "name": hood.name,
                    "region": region.code,
                    "district": hood.district.code if hood.district else None,
                    "population": hood.population,
                }
            )
    return result


def districts_covering(region: Region | None, geometries: dict[int, MultiPolygon]):
    """The district of ``region`` that covers each geometry's point on its surface (the
    first by code where several do), in one query; keys without one are left out."""
    if region is None or not geometries:
        return {}
    points = [
        (n, shapely.from_wkb(bytes(g.wkb)).point_on_surface().wkt) for n, g in geometries.items()
    ]
    # A VALUES list joined in SQL: the ORM cannot join against an in-memory list of points.
    sql = (
        "SELECT p.n, d.id FROM (VALUES "
        + ",".join(["(%s, ST_GeomFromText(%s, 4326))"] * len(points))
        + ") AS p(n, pt) JOIN neighborhoods_district d ON d.region_id = %s "
        "AND ST_Covers(d.geom, p.pt) ORDER BY p.n, d.code"
    )
    params: list = [v for pair in points for v in pair] + [region.pk]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found: dict[int, int] = {}
        for number, district_id in cursor.fetchall():
            found.setdefault(number, district_id)
    districts = District.objects.in_bulk(set(found.values()))
    return {n: districts[d] for n, d in found.items()}


def district_for_geometry(*, region: Region, geom) -> District | None:
    """The region's district holding most of ``geom`` (by the point on its surface)."""
    return (
        District.objects.filter(region=region, geom__covers=geom.point_on_surface)
        .order_by("code")
        .first()
    )


def region_covering(point: Point) -> Region | None:
    """The loaded region whose outline covers ``point`` (the first by id where several do)."""
    return Region.objects.filter(geom__covers=point).order_by("id").first()


def neighborhood_covering(*, region: Region, point: Point) -> Neighborhood | None:
    """The region's neighborhood that covers ``point`` (the first by code)."""
    return Neighborhood.objects.filter(region=region, geom__covers=point).order_by("code").first()


def covered_by_district(*, geom: GEOSGeometry, district: District, tolerance_m: float) -> bool:
    """Whether ``geom`` lies inside ``district``, up to ``tolerance_m`` metres past its
    border, measured in the region's UTM zone."""
    # A buffer in the region's metric CRS has no ORM spelling. It is needed only when the
    # exact test fails (near the border), so the OR computes it lazily.
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT ST_CoveredBy(g.geom, d.geom)
                OR ST_CoveredBy(ST_Transform(g.geom, r.metric_srid),
                                ST_Buffer(ST_Transform(d.geom, r.metric_srid), %s))
            FROM neighborhoods_district d
            JOIN neighborhoods_region r ON r.id = d.region_id
            CROSS JOIN (SELECT ST_GeomFromEWKB(%s) AS geom) g
            WHERE d.id = %s
            """,
            [tolerance_m, bytes(geom.ewkb), district.pk],
        )
        row = cursor.fetchone()
    return bool(row and row[0])
