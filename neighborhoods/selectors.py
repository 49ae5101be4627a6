"""Reads for boundaries."""

from __future__ import annotations

from django.db import connection
from django.db.models import Count, Max, Min, QuerySet
from django.utils.translation import gettext

from geo.db.functions import XMax, XMin, YMax, YMin
from geo.geojson import BBox
from neighborhoods.models import BoundarySource, District, Neighborhood, Region


def _in_bbox(queryset: QuerySet, bbox: BBox | None) -> QuerySet:
    return queryset if bbox is None else queryset.filter(geom__bboverlaps=bbox.as_geometry())


def district_list(*, region: str | None = None, bbox: BBox | None = None) -> QuerySet:
    queryset = District.objects.select_related("region")
    if region:
        queryset = queryset.filter(region__code=region)
    return _in_bbox(queryset, bbox).order_by("region__code", "code")


def neighborhood_list(
    *, region: str | None = None, district: str | None = None, bbox: BBox | None = None
) -> QuerySet:
    queryset = Neighborhood.objects.select_related("region", "district")
    if region:
        queryset = queryset.filter(region__code=region)
    if district:
        queryset = queryset.filter(district__code=district)
    return _in_bbox(queryset, bbox).order_by("region__code", "code")


def region_list() -> QuerySet:
    return Region.objects.order_by("name")


def attributions() -> list[str]:
    """Attribution lines for every boundary source that currently has boundaries loaded."""
    sources = BoundarySource.objects.filter(
        id__in=District.objects.values("source").union(Neighborhood.objects.values("source"))
    ).exclude(attribution="")
    # A stored attribution may be a msgid (the demo city's): shown in the reader's language.
    return sorted({gettext(s.attribution) for s in sources})


def attribution_extents() -> list[dict]:
    """Each boundary source's attribution with the extent of what it drew
    ([west, south, east, north]), so a map credits only the sources on screen."""

    def extents_of(model):
        return (
            model.objects.filter(source__isnull=False)
            .exclude(source__attribution="")
            .values("source__attribution")
            .annotate(
                xmin=Min(XMin("geom")),
                ymin=Min(YMin("geom")),
                xmax=Max(XMax("geom")),
                ymax=Max(YMax("geom")),
            )
            .order_by()
        )

    extents: dict[str, list[float]] = {}
    # One query for both levels (a union of the two grouped extents).
    for row in extents_of(District).union(extents_of(Neighborhood), all=True):
        box = [row["xmin"], row["ymin"], row["xmax"], row["ymax"]]
        if None in box:
            continue
        known = extents.setdefault(row["source__attribution"], box)
        extents[row["source__attribution"]] = [
            min(known[0], box[0]),
            min(known[1], box[1]),
            max(known[2], box[2]),
            max(known[3], box[3]),
        ]
    return [
        {"text": gettext(text), "bbox": [round(v, 6) for v in box]}
        for text, box in sorted(extents.items())
    ]


def region_summaries() -> list[dict]:
    """Regions with their extent and boundary counts, for the map's region picker."""
    queryset = (
        Region.objects.annotate(
            district_count=Count("district", distinct=True),
            neighborhood_count=Count("neighborhood", distinct=True),
            xmin=XMin("geom"),
            ymin=YMin("geom"),
            xmax=XMax("geom"),
            ymax=YMax("geom"),
        )
        .defer("geom")
        .order_by("name")
    )
    return [
        {
            "code": r.code,
            "name": r.name,
            "metric_srid": r.metric_srid,
            "synthetic": r.synthetic,
            "bbox": None
            if r.xmin is None
            else [round(v, 6) for v in (r.xmin, r.ymin, r.xmax, r.ymax)],
            "districts": r.district_count,
            "neighborhoods": r.neighborhood_count,
        }
        for r in queryset
    ]


def outline_ewkb(
    *, region_id: int, district_ids: list[int], neighborhood_ids: list[int]
) -> bytes | None:
    """The union of the chosen districts and neighborhoods, else the region's outline, as
    WGS84 EWKB (None when there is no such boundary): the area other apps analyse."""
    if not district_ids and not neighborhood_ids:
        geom = Region.objects.filter(pk=region_id).values_list("geom", flat=True).first()
        return bytes(geom.ewkb) if geom is not None else None
    # ST_Union over two tables at once: the ORM's Union aggregate works on one queryset.
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT ST_AsEWKB(ST_Union(geom)) FROM (
                SELECT geom FROM neighborhoods_district WHERE id = ANY(%s)
                UNION ALL
                SELECT geom FROM neighborhoods_neighborhood WHERE id = ANY(%s)
            ) a
            """,
            [district_ids, neighborhood_ids],
        )
        row = cursor.fetchone()
    return bytes(row[0]) if row and row[0] is not None else None
