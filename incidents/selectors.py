"""Reads of the raw incident table, for planners only (views check the role).

Every incident endpoint filters through :func:`incident_list`, so the GeoJSON, the CSV,
the counts, the clusters, the heat map and the vector tiles always agree on what a
filter means.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass

from django.contrib.gis.db.models import Extent
from django.db.models import (
    Avg,
    Count,
    DateField,
    F,
    Func,
    IntegerField,
    JSONField,
    Max,
    Min,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import TruncMonth
from django.utils import timezone
from django.utils.translation import get_language

from common.db import LocalMonthsFrom
from geo.db.functions import BBoxOverlaps, BoxAround, DWithinIn
from geo.db.mvt_functions import MakePoint, PointX, PointY
from geo.geojson import BBox
from geo.mvt import pixel_grid
from incidents.models import Category, ImportBatch, Incident

# Grid cells in screen pixels at the requested zoom.
CLUSTER_CELL_PX = 60
HEAT_CELL_PX = 8


@dataclass(frozen=True)
class IncidentFilters:
    """A validated filter; ids are resolved from the codes the client sent."""

    bbox: BBox | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    category_ids: tuple[int, ...] = ()
    family: str | None = None
    region_id: int | None = None
    district_id: int | None = None
    neighborhood_id: int | None = None
    source_id: int | None = None
    # The import batch that last wrote the incidents (created or changed them).
    batch_id: int | None = None
    # Days are counted in the region's time zone when the filter names a region (or an
    # area of one), else in settings.TIME_ZONE.
    time_zone: str | None = None


def day_start(day: dt.date, time_zone: str | None = None) -> dt.datetime:
    """Midnight at the start of ``day`` in ``time_zone`` (default settings.TIME_ZONE)."""
    zone = zoneinfo.ZoneInfo(time_zone) if time_zone else timezone.get_default_timezone()
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min), zone)


def incident_list(filters: IncidentFilters | None = None) -> QuerySet:
    """Incidents matching ``filters``, in a stable order (id).

    Dates are whole days, both ends included. An incident known only to a window (a day,
    a month, a range: ``occurred_at`` to the exclusive ``occurred_until``) matches when
    that window overlaps the requested days.
    """
    f = filters or IncidentFilters()
    queryset = Incident.objects.all()
    if f.bbox is not None:
        # For points the bounding-box operator is exact (edges included) and uses the
        # GiST index.
        queryset = queryset.filter(point__bboverlaps=f.bbox.as_geometry())
    if f.date_from is not None:
        start = day_start(f.date_from, f.time_zone)
        queryset = queryset.filter(Q(occurred_at__gte=start) | Q(occurred_until__gt=start))
    if f.date_to is not None and f.date_to < dt.date.max:
        queryset = queryset.filter(
            occurred_at__lt=day_start(f.date_to + dt.timedelta(days=1), f.time_zone)
        )
    if f.category_ids:
        queryset = queryset.filter(category_id__in=f.category_ids)
    if f.family:
        queryset = queryset.filter(category__family=f.family)
    if f.region_id is not None:
        queryset = queryset.filter(region_id=f.region_id)
    if f.district_id is not None:
        queryset = queryset.filter(district_id=f.district_id)
    if f.neighborhood_id is not None:
        queryset = queryset.filter(neighborhood_id=f.neighborhood_id)
    if f.source_id is not None:
        queryset = queryset.filter(source_id=f.source_id)
    if f.batch_id is not None:
        queryset = queryset.filter(batch_id=f.batch_id)
    return queryset.order_by("id")


def batch_extent(batch_id: int) -> dict | None:
    """The import batch ``batch_id`` as the planner map shows it: its number, how many
    incidents it last wrote and their extent ([minlon, minlat, maxlon, maxlat], None
    without incidents); None when there is no such batch."""
    if not ImportBatch.objects.filter(pk=batch_id).exists():
        return None
    found = Incident.objects.filter(batch_id=batch_id).aggregate(
        count=Count("id"), extent=Extent("point")
    )
    extent = found["extent"]
    return {
        "id": batch_id,
        "count": found["count"],
        "bbox": [round(value, 7) for value in extent] if extent else None,
    }


def page(queryset: QuerySet, *, offset: int = 0, after_id: int | None = None) -> QuerySet:
    """Offset or keyset (``after_id``: the last id of the previous page) pagination."""
    if after_id is not None:
        queryset = queryset.filter(id__gt=after_id)
    return queryset[offset:] if offset else queryset


def name_field(prefix: str = "") -> str:
    """``name_es`` or ``name_en`` for the active language (Spanish unless English)."""
    language = (get_language() or "es").lower()
    return f"{prefix}name_{'en' if language.startswith('en') else 'es'}"


def category_name(category: Category) -> str:
    return getattr(category, name_field())


def category_list() -> QuerySet:
    return Category.objects.order_by("family", "code")


def category_counts(queryset: QuerySet) -> dict:
    """``{"total": n, "by_category": [{"code", "name", "family", "sensitive", "count"}]}``,
    most frequent first, in one query."""
    rows = (
        queryset.order_by()
        .values(
            "category__code",
            "category__family",
            "category__sensitive",
            name=F(name_field("category__")),
        )
        .annotate(count=Count("id"))
        .order_by("-count", "category__code")
    )
    by_category = [
        {
            "code": row["category__code"],
            "name": row["name"],
            "family": row["category__family"],
            "sensitive": row["category__sensitive"],
            "count": row["count"],
        }
        for row in rows
    ]
    return {"total": sum(c["count"] for c in by_category), "by_category": by_category}


class _JSONArray(Func):
    function = "JSONB_BUILD_ARRAY"
    output_field = JSONField()


def cluster_cells(queryset: QuerySet, *, zoom: int) -> QuerySet:
    """Incidents grouped on a grid of about 60 screen pixels at ``zoom`` (in Web
    Mercator). Each row has ``cluster_id`` (the smallest incident id in the cell, stable),
    ``count``, ``center`` (the mean position of its incidents, WGS84) and ``bbox``
    (``[minlon, minlat, maxlon, maxlat]`` of its incidents); largest clusters first."""
    return (
        queryset.order_by()
        .values(cell=pixel_grid("point", zoom, CLUSTER_CELL_PX))
        .annotate(
            cluster_id=Min("id"),
            count=Count("id"),
            center=MakePoint(Avg(PointX("point")), Avg(PointY("point"))),
            bbox=_JSONArray(
                Min(PointX("point")),
                Min(PointY("point")),
                Max(PointX("point")),
                Max(PointY("point")),
            ),
        )
        .order_by("-count", "cluster_id")
    )


def heat_cells(queryset: QuerySet, *, zoom: int, limit: int) -> tuple[list[list], bool]:
    """``([[lat, lon, count], ...], truncated)`` on a grid of about 8 screen pixels at
    ``zoom``: each cell at the mean position of its incidents, heaviest cells first.
    Latitude comes first, as Leaflet.heat wants it."""
    rows = list(
        queryset.order_by()
        .values(cell=pixel_grid("point", zoom, HEAT_CELL_PX))
        .annotate(
            weight=Count("id"),
            lat=Avg(PointY("point")),
            lon=Avg(PointX("point")),
            first_id=Min("id"),
        )
        .order_by("-weight", "first_id")
        .values_list("lat", "lon", "weight")[: limit + 1]
    )
    truncated = len(rows) > limit
    return [[round(lat, 6), round(lon, 6), weight] for lat, lon, weight in rows[:limit]], truncated


EXPORT_COLUMNS = [
    "id",
    "source",
    "external_id",
    "label",
    "category",
    "category_name",
    "family",
    "sensitive",
    "occurred_at",
    "occurred_until",
    "time_precision",
    "region",
    "district",
    "district_name",
    "neighborhood",
    "neighborhood_name",
    "location_quality",
    "lon",
    "lat",
]


def export_rows(queryset: QuerySet, *, chunk_size: int = 2000) -> Iterator[tuple]:
    """Rows in the order of :data:`EXPORT_COLUMNS`, read through a server-side cursor.
    Times are given in the incident's region's time zone, with its offset (the same
    instant as stored, but the local clock time a planner reads on the map)."""
    rows = (
        queryset.annotate(lon=PointX("point"), lat=PointY("point"))
        .values_list(
            "id",
            "source__name",
            "external_id",
            "label__label",
            "category__code",
            name_field("category__"),
            "category__family",
            "category__sensitive",
            "occurred_at",
            "occurred_until",
            "time_precision",
            "region__code",
            "district__code",
            "district__name",
            "neighborhood__code",
            "neighborhood__name",
            "location_quality",
            "lon",
            "lat",
            "region__time_zone",
        )
        .iterator(chunk_size=chunk_size)
    )
    zones: dict[str, dt.tzinfo] = {}
    at, until = EXPORT_COLUMNS.index("occurred_at"), EXPORT_COLUMNS.index("occurred_until")
    for *row, zone_name in rows:
        zone = zones.get(zone_name)
        if zone is None:
            zone = zones[zone_name] = (
                zoneinfo.ZoneInfo(zone_name) if zone_name else timezone.get_default_timezone()
            )
        row[at] = row[at].astimezone(zone)
        if row[until] is not None:
            row[until] = row[until].astimezone(zone)
        yield tuple(row)


def count_near(
    *,
    geom,
    metric_srid,
    time_zone,
    day,
    months_from: int,
    months_to: int,
    distance_m: float,
    family: str = "",
) -> Subquery:
    """For other apps: the number of incidents within ``distance_m`` metres of ``geom``
    (measured in ``metric_srid``) that started from the local day ``day + months_from`` up
    to ``day + months_to`` in ``time_zone``. The arguments are expressions of the caller's
    rows (``OuterRef("geom")``, ``OuterRef("region__metric_srid")``...), so the count is a
    correlated subquery, one per row.

    Sensitive categories are counted: the readers must be allowed the raw incidents."""
    near = Incident.objects.alias(
        in_box=BBoxOverlaps(F("point"), BoxAround(geom, Value(distance_m))),
        within=DWithinIn(F("point"), geom, metric_srid, Value(distance_m)),
    ).filter(
        in_box=True,
        within=True,
        occurred_at__gte=LocalMonthsFrom(day, Value(months_from), time_zone),
        occurred_at__lt=LocalMonthsFrom(day, Value(months_to), time_zone),
    )
    if family:
        near = near.filter(category__family=family)
    # COUNT as a plain function, not an aggregate: no GROUP BY, one row per outer row.
    counted = near.order_by().annotate(n=Func(Value(1), function="count")).values("n")
    return Subquery(counted, output_field=IntegerField())


def batch_region_codes(batch_id: int) -> list[str]:
    """The codes of the regions the incidents last written by batch ``batch_id`` are in."""
    return sorted(
        Incident.objects.filter(batch_id=batch_id)
        .order_by()
        .values_list("region__code", flat=True)
        .distinct()
    )


def monthly_points(
    *,
    region_id: int,
    time_zone: str | None,
    until: dt.date,
    category_ids: tuple[int, ...] | list[int],
    chunk_size: int = 20000,
) -> Iterator[list[tuple[float, float, dt.date, int]]]:
    """The incidents of a region as ``(lon, lat, month, category_id)`` rows, in lists of
    at most ``chunk_size`` read through a server-side cursor (bounded memory), for the
    public tables' refresh (public.services.refresh). ``month`` is the first day of the
    month the incident began in, in ``time_zone`` (UTC without one); only incidents of
    ``category_ids`` that began before the local day ``until`` are read."""
    zone = zoneinfo.ZoneInfo(time_zone or "UTC")
    if not category_ids:
        return
    rows = (
        Incident.objects.filter(
            region_id=region_id,
            category_id__in=list(category_ids),
            occurred_at__lt=day_start(until, time_zone or "UTC"),
        )
        .order_by()
        .annotate(
            lon=PointX("point"),
            lat=PointY("point"),
            month=TruncMonth("occurred_at", tzinfo=zone, output_field=DateField()),
        )
        .values_list("lon", "lat", "month", "category_id")
        .iterator(chunk_size=chunk_size)
    )
    chunk: list[tuple[float, float, dt.date, int]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
