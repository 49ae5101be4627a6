"""Query parameters shared by every incident endpoint, parsed and validated in one place.

:func:`parse_filters` turns ``bbox``, ``from``, ``to``, ``category``, ``family``,
``region``, ``district``, ``neighborhood``, ``source`` and ``batch`` into an
:class:`incidents.selectors.IncidentFilters` (codes resolved to ids), or raises a DRF
``ValidationError`` naming every bad field (HTTP 400). Nothing in a message echoes a
coordinate.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

from django.http import QueryDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ValidationError

from geo.geojson import GeoJSONParameterError, parse_bbox, parse_zoom
from incidents.models import Category, Family, ImportBatch, IncidentSource
from incidents.selectors import IncidentFilters
from neighborhoods.models import District, Neighborhood, Region

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MAX_LIST_ITEMS = 100

FILTER_PARAMETERS = [
    OpenApiParameter(
        "bbox",
        OpenApiTypes.STR,
        description="minlon,minlat,maxlon,maxlat (WGS84); incidents inside, edges included",
    ),
    OpenApiParameter(
        "from",
        OpenApiTypes.DATE,
        description="first day (YYYY-MM-DD, included); an incident whose time window "
        "overlaps the days counts",
    ),
    OpenApiParameter("to", OpenApiTypes.DATE, description="last day (YYYY-MM-DD, included)"),
    OpenApiParameter(
        "category",
        OpenApiTypes.STR,
        description="category codes, comma-separated (see /api/v1/categories/)",
    ),
    OpenApiParameter("family", OpenApiTypes.STR, enum=[f.value for f in Family]),
    OpenApiParameter("region", OpenApiTypes.STR, description="region code"),
    OpenApiParameter(
        "district",
        OpenApiTypes.STR,
        description="district code (add region when the code exists in several regions)",
    ),
    OpenApiParameter(
        "neighborhood",
        OpenApiTypes.STR,
        description="neighborhood code (add region when the code exists in several regions)",
    ),
    OpenApiParameter("source", OpenApiTypes.STR, description="incident source name"),
    OpenApiParameter(
        "batch",
        OpenApiTypes.INT,
        description="import batch id: the incidents that batch created or last changed",
    ),
]
ZOOM_PARAMETER = OpenApiParameter(
    "zoom", OpenApiTypes.INT, required=True, description="map zoom (0-24): sets the grid size"
)


def _values(params: Mapping, name: str) -> list[str]:
    """Comma-separated and/or repeated values, blanks dropped, order kept, no duplicates."""
    raw = params.getlist(name) if isinstance(params, QueryDict) else [params.get(name) or ""]
    values: list[str] = []
    for chunk in raw:
        for item in chunk.split(","):
            item = item.strip()
            if item and item not in values:
                values.append(item)
    return values


def _single(params: Mapping, name: str) -> str | None:
    value = (params.get(name) or "").strip()
    return value or None


def _parse_date(raw: str | None) -> dt.date:
    if not _DATE.match(raw or ""):
        raise ValueError
    return dt.date.fromisoformat(raw)


def _resolve_area(model, kind: str, code: str, *, region_id: int | None, errors: dict):
    """(id, region id) of the area with ``code``, or None with an error recorded."""
    queryset = model.objects.filter(code=code)
    if region_id is not None:
        queryset = queryset.filter(region_id=region_id)
    found = list(queryset.values_list("id", "region_id")[:2])
    if not found:
        where = " in this region" if region_id is not None else ""
        errors[kind] = [f"Unknown {kind} code{where}: {code}"]
        return None
    if len(found) > 1:
        errors[kind] = [f"{kind.capitalize()} code {code} exists in several regions: add region"]
        return None
    return found[0]


def parse_filters(params: Mapping) -> IncidentFilters:
    errors: dict[str, list[str]] = {}
    values: dict = {}

    try:
        values["bbox"] = parse_bbox(params.get("bbox"))
    except GeoJSONParameterError as exc:
        errors[exc.field] = [exc.message]

    for key, field in (("from", "date_from"), ("to", "date_to")):
        raw = _single(params, key)
        if raw is None:
            continue
        try:
            values[field] = _parse_date(raw)
        except ValueError:
            errors[key] = ["Enter a valid date as YYYY-MM-DD."]
    if (
        values.get("date_from")
        and values.get("date_to")
        and values["date_from"] > values["date_to"]
    ):
        errors["to"] = ["to must be on or after from."]

    codes = _values(params, "category")
    if len(codes) > _MAX_LIST_ITEMS:
        errors["category"] = [f"At most {_MAX_LIST_ITEMS} categories."]
    elif codes:
        found = dict(Category.objects.filter(code__in=codes).values_list("code", "id"))
        unknown = [c for c in codes if c not in found]
        if unknown:
            errors["category"] = [f"Unknown category code: {c}" for c in unknown]
        else:
            values["category_ids"] = tuple(sorted(found.values()))

    family = _single(params, "family")
    if family is not None:
        if family in Family.values:
            values["family"] = family
        else:
            errors["family"] = [f"family must be one of: {', '.join(Family.values)}"]

    region_code = _single(params, "region")
    region_ok = True
    if region_code is not None:
        region_id = Region.objects.filter(code=region_code).values_list("id", flat=True).first()
        if region_id is None:
            errors["region"] = [f"Unknown region code: {region_code}"]
            region_ok = False
        values["region_id"] = region_id

    if region_ok:
        # A district pins its region, so a neighborhood code is then looked up there.
        scope = values.get("region_id")
        district_code = _single(params, "district")
        if district_code is not None:
            district = _resolve_area(
                District, "district", district_code, region_id=scope, errors=errors
            )
            if district is not None:
                values["district_id"], scope = district
        neighborhood_code = _single(params, "neighborhood")
        if neighborhood_code is not None:
            hood = _resolve_area(
                Neighborhood, "neighborhood", neighborhood_code, region_id=scope, errors=errors
            )
            if hood is not None:
                values["neighborhood_id"] = hood[0]

    source = _single(params, "source")
    if source is not None:
        source_id = IncidentSource.objects.filter(name=source).values_list("id", flat=True).first()
        if source_id is None:
            errors["source"] = [f"Unknown source: {source}"]
        values["source_id"] = source_id

    batch = _single(params, "batch")
    if batch is not None:
        if not re.fullmatch(r"[0-9]{1,10}", batch) or int(batch) >= 2**31:
            errors["batch"] = ["batch must be an import batch id (a whole number)."]
        elif not ImportBatch.objects.filter(pk=int(batch)).exists():
            errors["batch"] = [f"Unknown import batch: {int(batch)}"]
        else:
            values["batch_id"] = int(batch)

    if errors:
        raise ValidationError(errors)
    region_of_filter = values.get("region_id")
    if region_of_filter is None and values.get("district_id") is not None:
        region_of_filter = (
            District.objects.filter(pk=values["district_id"])
            .values_list("region_id", flat=True)
            .first()
        )
    if region_of_filter is None and values.get("neighborhood_id") is not None:
        region_of_filter = (
            Neighborhood.objects.filter(pk=values["neighborhood_id"])
            .values_list("region_id", flat=True)
            .first()
        )
    if region_of_filter is not None:
        values["time_zone"] = (
            Region.objects.filter(pk=region_of_filter).values_list("time_zone", flat=True).first()
        )
    return IncidentFilters(**values)


def parse_required_zoom(params: Mapping) -> int:
    try:
        zoom = parse_zoom(params.get("zoom"))
    except GeoJSONParameterError as exc:
        raise ValidationError({exc.field: [exc.message]}) from None
    if zoom is None:
        raise ValidationError({"zoom": ["zoom is required."]})
    return zoom


def parse_filters_and_zoom(params: Mapping) -> tuple[IncidentFilters, int]:
    """Both at once, so that a 400 names every bad field."""
    errors: dict = {}
    filters = zoom = None
    try:
        zoom = parse_required_zoom(params)
    except ValidationError as exc:
        errors.update(exc.detail)
    try:
        filters = parse_filters(params)
    except ValidationError as exc:
        errors.update(exc.detail)
    if errors:
        raise ValidationError(errors)
    return filters, zoom


def parse_int(params: Mapping, name: str, *, default: int | None, minimum: int, maximum: int):
    raw = _single(params, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: [f"{name} must be a whole number."]}) from None
    if not minimum <= value <= maximum:
        raise ValidationError({name: [f"{name} must be between {minimum} and {maximum}."]})
    return value
