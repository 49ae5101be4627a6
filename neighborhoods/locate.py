"""Where is this? The one place that assigns areas to points and geometries, for every
caller: the incident import (many points at once, in this process), public spaces (a
geometry under the municipal rule), the lookup API and the boundary importer (a
neighborhood's district). Nobody else writes point-in-area SQL."""

from __future__ import annotations

import contextlib

import numpy as np
import shapely
from django.conf import settings
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon, Point
from django.db import connection

from geo.conf import STORAGE_SRID
from neighborhoods.models import District, Neighborhood, Region

# Points this close to a region's outline but outside all its districts are kept (and
# counted as unassigned): published boundaries are generalised, and a point on a border
# street can fall a few metres outside every district.
REGION_TOLERANCE_M = getattr(settings, "INCIDENT_REGION_TOLERANCE_M", 500)


class AreaIndex:
    """Point-in-polygon against the subdivided district and neighborhood pieces
    (neighborhoods_areapart, at most 256 vertices each), in this process, chunk by chunk.

    Polygon-first: the chunk's points are sorted by longitude once; each prepared piece
    takes the points of its bounding box (a binary search, then a latitude mask) and tests
    them in one vectorised call, so a piece is prepared once and used for many points. No
    index is built on the staged rows and PostgreSQL only inserts. A point on a shared
    border (``intersects`` includes the boundary) belongs to the lowest area id, so the
    assignment is deterministic. Points inside no piece get the region whose outline is
    within ``REGION_TOLERANCE_M`` (a geography distance, in PostGIS), or are refused.
    """

    NONE = 0

    def __init__(self, cursor, tolerance_m: float = REGION_TOLERANCE_M):
        self.tolerance_m = tolerance_m
        # Held around this object's statements once another thread shares the connection
        # (the incident import's writer).
        self.db_lock = contextlib.nullcontext()
        # Pieces of areas that no longer exist (parts not refreshed after a delete) are
        # skipped: they would point the incident at a missing row.
        cursor.execute(
            """
            SELECT p.kind, p.area_id, p.region_id, ST_AsBinary(p.geom)
            FROM neighborhoods_areapart p
            WHERE (p.kind = 'district' AND EXISTS (
                     SELECT FROM neighborhoods_district d WHERE d.id = p.area_id))
               OR (p.kind = 'neighborhood' AND EXISTS (
                     SELECT FROM neighborhoods_neighborhood n WHERE n.id = p.area_id))
            ORDER BY p.kind, p.area_id, p.id
            """
        )
        rows = cursor.fetchall()
        self.levels = {}
        for kind in ("district", "neighborhood"):
            mine = [r for r in rows if r[0] == kind]
            geometries = shapely.from_wkb([bytes(r[3]) for r in mine])
            shapely.prepare(geometries)
            self.levels[kind] = (
                geometries,
                np.array([r[1] for r in mine], dtype=np.int64),
                np.array([r[2] for r in mine], dtype=np.int64),
                shapely.bounds(geometries).reshape(-1, 4),
            )

    def _level(self, kind, lon, lat, order, sorted_lon) -> tuple[np.ndarray, np.ndarray]:
        geometries, area, region, bounds = self.levels[kind]
        best = np.zeros(len(lon), dtype=np.int64)
        best_region = np.zeros(len(lon), dtype=np.int64)
        if not len(lon):
            return best, best_region
        # Only the pieces that overlap the chunk's extent (other regions' never do).
        near = (bounds[:, 0] <= sorted_lon[-1]) & (bounds[:, 2] >= sorted_lon[0])
        near &= (bounds[:, 1] <= lat.max()) & (bounds[:, 3] >= lat.min())
        for piece in np.flatnonzero(near):
            min_x, min_y, max_x, max_y = bounds[piece]
            start = np.searchsorted(sorted_lon, min_x, "left")
            stop = np.searchsorted(sorted_lon, max_x, "right")
            if start == stop:
                continue
            candidates = order[start:stop]
            band = lat[candidates]
            candidates = candidates[(band >= min_y) & (band <= max_y)]
            if not len(candidates):
                continue
            inside = candidates[
                shapely.intersects_xy(geometries[piece], lon[candidates], lat[candidates])
            ]
            # Lowest area id wins; pieces come in area order, so only unset points change.
            inside = inside[(best[inside] == self.NONE) | (best[inside] > area[piece])]
            best[inside] = area[piece]
            best_region[inside] = region[piece]
        return best, best_region

    def assign(self, cursor, lon: np.ndarray, lat: np.ndarray):
        """(region, district, neighborhood) ids per point, 0 for none."""
        order = np.argsort(lon, kind="stable")
        sorted_lon = lon[order]
        district, district_region = self._level("district", lon, lat, order, sorted_lon)
        neighborhood, hood_region = self._level("neighborhood", lon, lat, order, sorted_lon)
        region = np.where(district_region != self.NONE, district_region, hood_region)
        loose = np.flatnonzero(region == self.NONE)
        if len(loose):
            region[loose] = self._regions_near(cursor, lon[loose], lat[loose])
        return region, district, neighborhood

    def _regions_near(self, cursor, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        # ST_DWithin on geography: the tolerance is metres wherever the region is. The
        # bounding-box prefilter errs on the generous side: a degree of latitude is at
        # least 110.57 km, one of longitude that times cos(latitude).
        with self.db_lock:
            return self._regions_near_query(cursor, lon, lat)

    def _regions_near_query(self, cursor, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        cursor.execute(
            """
            SELECT (SELECT r.id FROM neighborhoods_region r
                    WHERE r.geom IS NOT NULL
                      AND p.pt && ST_Expand(r.geom,
                          %(deg)s / greatest(cos(radians(u.lat)), 0.05), %(deg)s)
                      AND ST_DWithin(p.pt::geography, r.geom::geography, %(metres)s)
                    ORDER BY r.id LIMIT 1)
            FROM unnest(%(lon)s::float8[], %(lat)s::float8[]) WITH ORDINALITY AS u(lon, lat, n)
            CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326) AS pt) p
            ORDER BY u.n
            """,
            {
                "lon": lon.tolist(),
                "lat": lat.tolist(),
                "metres": self.tolerance_m,
                "deg": self.tolerance_m / 110_574.0,
            },
        )
        return np.array([r[0] or self.NONE for r in cursor.fetchall()], dtype=np.int64)


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
