"""The CSV export of the municipal list: one row a space, in the list's filters and order,
streamed as UTF-8 text with a byte-order mark so that spreadsheets read its accents."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import F, FloatField, Func, QuerySet

from common import api as common_api
from publicspaces.models import PublicSpace

EXPORT_COLUMNS = (
    "id",
    "name",
    "kind",
    "condition",
    "condition_score",
    "project_status",
    "region",
    "district",
    "neighborhood",
    "address",
    "responsible_municipality",
    "recovered_on",
    "activity_count",
    "participant_total",
    "longitude",
    "latitude",
    "is_demo",
    "updated_at",
)
# The columns that show a related object by its code or name, and the value each reads.
_RELATED_COLUMNS = {
    "region": "region_code",
    "district": "district_name",
    "neighborhood": "neighborhood_name",
}


class _Coordinate(Func):
    output_field = FloatField()


def csv_lines(queryset: QuerySet[PublicSpace]) -> Iterator[str]:
    """The header and a line a space of ``queryset`` (annotated by
    ``selectors.with_counts``), read in chunks."""
    # A point on the surface: inside a polygon, on a line.
    surface = Func(F("geom"), function="ST_PointOnSurface")
    rows = queryset.annotate(
        longitude=_Coordinate(surface, function="ST_X"),
        latitude=_Coordinate(surface, function="ST_Y"),
        region_code=F("region__code"),
        district_name=F("district__name"),
        neighborhood_name=F("neighborhood__name"),
    ).values_list(*(_RELATED_COLUMNS.get(column, column) for column in EXPORT_COLUMNS))
    return common_api.csv_lines(EXPORT_COLUMNS, rows.iterator(chunk_size=2000))
