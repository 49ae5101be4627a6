"""The public API (issue 14), under /api/v1/public/: a region's published months and
categories, its H3 cell counts as GeoJSON or CSV, and its public hotspot zones.

Anyone may call it, and everyone gets the same bytes: no authentication is read (no
session, so no ``Vary: Cookie``), and every answer reads only the public tables
(public.selectors) or the generalized public zones (hotspots.selectors.public_zones),
never the incident table. Successful answers (and the 400/404 that follow from the
request alone) are ``Cache-Control: public, max-age=PUBLIC_MAX_AGE`` with an ``ETag`` of
the body, and a matching ``If-None-Match`` gets 304. Each client (by address) may make
``PUBLIC_API_RATE`` requests (default 60 a minute); past that, 429 with ``Retry-After``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re

import h3
from django.conf import settings
from django.http import Http404, HttpResponse
from django.utils.cache import get_conditional_response
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from common.api import FirstRendererNegotiation, csv_lines
from geo.geojson import GEOJSON_MEDIA_TYPE, GeoJSONParameterError, parse_bbox
from hotspots.selectors import public_zones
from incidents.models import Family
from incidents.selectors import category_list
from public import privacy, selectors

TAGS = ["public"]
DEFAULT_MAX_AGE = 300
DEFAULT_RATE = "60/minute"
COORDINATE_DIGITS = 6
CSV_COLUMNS = ["h3", "resolution", "month", "category", "family", "count"]
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")

REGION_PATH = OpenApiParameter(
    "code", OpenApiTypes.STR, OpenApiParameter.PATH, description="region code"
)
NOT_FOUND = OpenApiResponse(description="no region has this code")
BAD_REQUEST = OpenApiResponse(description="invalid parameters: {field: [messages]}")
TOO_MANY = OpenApiResponse(
    description="too many requests from this client: wait the Retry-After header's seconds"
)
NOT_MODIFIED = OpenApiResponse(description="the If-None-Match ETag is still the current one")
COMMON_RESPONSES = {304: NOT_MODIFIED, 404: NOT_FOUND, 429: TOO_MANY}


def max_age() -> int:
    try:
        return max(int(getattr(settings, "PUBLIC_MAX_AGE", DEFAULT_MAX_AGE)), 0)
    except (TypeError, ValueError):
        return DEFAULT_MAX_AGE


class PublicRateThrottle(AnonRateThrottle):
    """Per client address; the rate is read at each request (settings.PUBLIC_API_RATE)."""

    scope = "public"

    def get_rate(self):
        return getattr(settings, "PUBLIC_API_RATE", DEFAULT_RATE) or DEFAULT_RATE


class PublicAPIView(APIView):
    """Anonymous, identical for everyone, cacheable by anyone, rate limited."""

    authentication_classes = []
    permission_classes = []
    throttle_classes = [PublicRateThrottle]
    content_negotiation_class = FirstRendererNegotiation

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code not in (200, 400, 404):
            # A 429 (or anything unexpected) depends on who asked and when: never cached.
            response["Cache-Control"] = "no-store"
            return response
        if isinstance(response, Response):
            response.render()
        response["Cache-Control"] = f"public, max-age={max_age()}"
        if response.status_code != 200 or response.streaming:
            return response
        etag = '"' + hashlib.sha256(response.content).hexdigest()[:32] + '"'
        response["ETag"] = etag
        return get_conditional_response(request, etag=etag, response=response)


def _region(code: str) -> str:
    if not selectors.region_exists(code):
        raise Http404
    return code


def _month_text(month: dt.date) -> str:
    return f"{month:%Y-%m}"


def _parse_month(raw: str | None, published: list[dt.date]) -> dt.date:
    if raw is None or raw == "":
        if not published:
            raise ValidationError({"month": ["no month is published for this region yet"]})
        return published[-1]
    match = _MONTH.match(raw)
    try:
        month = dt.date(int(match[1]), int(match[2]), 1) if match else None
    except ValueError:
        month = None
    if month is None:
        raise ValidationError({"month": ["month must be YYYY-MM"]})
    if month not in published:
        raise ValidationError({"month": [f"{raw} is not a published month of this region"]})
    return month


def _parse_choice(params, name: str, choices: list[str]) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if value not in choices:
        raise ValidationError({name: [f"{name} must be one of {', '.join(choices)}"]})
    return value


def _cell_params(params, region_code: str) -> dict:
    """The cells endpoint's query string, checked: every error at once, per field."""
    errors: dict[str, list[str]] = {}
    values: dict = {}
    resolutions = privacy.resolutions()
    checks = {
        "month": lambda: _parse_month(params.get("month"), selectors.months(region_code)),
        "resolution": lambda: int(
            _parse_choice(params, "resolution", [str(r) for r in resolutions])
            or _default_resolution(resolutions)
        ),
        "category": lambda: _parse_choice(params, "category", _public_category_codes()),
        "family": lambda: _parse_choice(params, "family", list(Family.values)),
        "format": lambda: _parse_choice(params, "format", ["geojson", "csv"]) or "geojson",
    }
    for name, check in checks.items():
        try:
            values[name] = check()
        except ValidationError as exc:
            errors.update(exc.detail)
    try:
        values["bbox"] = parse_bbox(params.get("bbox"))
    except GeoJSONParameterError as exc:
        errors[exc.field] = [exc.message]
    if errors:
        raise ValidationError(errors)
    return values


def _default_resolution(resolutions: tuple[int, ...]) -> int:
    return resolutions[len(resolutions) // 2]


def _public_category_codes() -> list[str]:
    return [c.code for c in category_list() if privacy.is_publishable_category(c)]


def _ring(cell: str) -> list[list[float]]:
    points = [
        [round(lon, COORDINATE_DIGITS), round(lat, COORDINATE_DIGITS)]
        for lat, lon in h3.cell_to_boundary(cell)
    ]
    return [*points, points[0]]


def _json_response(body: dict, content_type: str = GEOJSON_MEDIA_TYPE) -> HttpResponse:
    return HttpResponse(
        json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
        content_type=content_type,
    )


class PublicRegionsView(PublicAPIView):
    @extend_schema(
        responses={200: OpenApiTypes.OBJECT, 304: NOT_MODIFIED, 429: TOO_MANY},
        summary="Every region, with its extent and newest published month",
        description='`{"regions": [{"code", "name", "synthetic", "bbox": [w, s, e, n] or null, '
        '"last_month": "YYYY-MM" or null}]}`, by name',
        tags=TAGS,
    )
    def get(self, request):
        return Response(
            {
                "regions": [
                    {
                        **region,
                        "last_month": _month_text(region["last_month"])
                        if region["last_month"]
                        else None,
                    }
                    for region in selectors.regions()
                ]
            }
        )


class PublicMonthsView(PublicAPIView):
    @extend_schema(
        parameters=[REGION_PATH],
        responses={200: OpenApiTypes.OBJECT, **COMMON_RESPONSES},
        summary="A region's published months (YYYY-MM, oldest first)",
        description='`{"region": code, "months": ["2025-12", "2026-01"], "last_refresh": '
        "ISO time or null}`",
        tags=TAGS,
    )
    def get(self, request, code):
        region = _region(code)
        refresh = selectors.last_refresh(region)
        return Response(
            {
                "region": region,
                "months": [_month_text(m) for m in selectors.months(region)],
                "last_refresh": refresh.finished_at.isoformat() if refresh else None,
            }
        )


class PublicCategoriesView(PublicAPIView):
    @extend_schema(
        parameters=[REGION_PATH],
        responses={200: OpenApiTypes.OBJECT, **COMMON_RESPONSES},
        summary="The public categories a region has published counts for",
        description='`{"region": code, "categories": [{"code", "name", "family"}]}`; the '
        "names in the request's language (Accept-Language).",
        tags=TAGS,
    )
    def get(self, request, code):
        region = _region(code)
        return Response({"region": region, "categories": selectors.categories(region)})


CELL_PARAMETERS = [
    REGION_PATH,
    OpenApiParameter(
        "month", OpenApiTypes.STR, description="a published month, YYYY-MM (default: the newest)"
    ),
    OpenApiParameter(
        "resolution",
        OpenApiTypes.INT,
        enum=list(privacy.DEFAULT_RESOLUTIONS),
        description="H3 resolution (default: 8)",
    ),
    OpenApiParameter("category", OpenApiTypes.STR, description="a public category code"),
    OpenApiParameter("family", OpenApiTypes.STR, enum=list(Family.values)),
    OpenApiParameter(
        "bbox",
        OpenApiTypes.STR,
        description="minlon,minlat,maxlon,maxlat (WGS84): the whole cells whose centre is inside",
    ),
]


class PublicCellsView(PublicAPIView):
    csv_only = False

    @extend_schema(
        parameters=[
            *CELL_PARAMETERS,
            OpenApiParameter(
                "format", OpenApiTypes.STR, enum=["geojson", "csv"], description="default geojson"
            ),
        ],
        responses={
            (200, GEOJSON_MEDIA_TYPE): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="GeoJSON FeatureCollection of H3 cells (properties: h3, "
                "resolution, month, count), or with format=csv the CSV of /cells.csv",
            ),
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="CSV: " + ", ".join(CSV_COLUMNS)
            ),
            400: BAD_REQUEST,
            **COMMON_RESPONSES,
        },
        summary="A region's published counts per H3 cell for a month",
        description="Each count is the sum, over the chosen categories (category and/or "
        "family; all public ones without either), of the published cell-month counts "
        "only: a cell-month below the minimum count is absent, never zero-filled, and a "
        "sensitive or unclassified category is never counted.",
        tags=TAGS,
    )
    def get(self, request, code):
        region = _region(code)
        params = _cell_params(request.query_params, region)
        counts = selectors.cells(
            region,
            month=params["month"],
            resolution=params["resolution"],
            category=params["category"],
            family=params["family"],
            bbox=params["bbox"],
        )
        if self.csv_only or params["format"] == "csv":
            return self._csv(region, params, counts)
        return _json_response(
            {
                "type": "FeatureCollection",
                "region": region,
                "month": _month_text(params["month"]),
                "resolution": params["resolution"],
                "category": params["category"],
                "family": params["family"],
                "features": [
                    {
                        "type": "Feature",
                        "geometry": {"type": "Polygon", "coordinates": [_ring(c.cell)]},
                        "properties": {
                            "h3": c.cell,
                            "resolution": c.resolution,
                            "month": _month_text(c.month),
                            "count": c.count,
                        },
                    }
                    for c in counts
                ],
            }
        )

    def _csv(self, region, params, counts) -> HttpResponse:
        rows = (
            (
                c.cell,
                c.resolution,
                _month_text(c.month),
                params["category"] or "",
                params["family"] or "",
                c.count,
            )
            for c in counts
        )
        response = HttpResponse(
            "".join(csv_lines(CSV_COLUMNS, rows)).encode("utf-8"),
            content_type="text/csv; charset=utf-8",
        )
        name = f"{region}-{_month_text(params['month'])}-r{params['resolution']}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class PublicCellsCSVView(PublicCellsView):
    csv_only = True

    @extend_schema(
        parameters=CELL_PARAMETERS,
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="CSV: " + ", ".join(CSV_COLUMNS)
            ),
            400: BAD_REQUEST,
            **COMMON_RESPONSES,
        },
        summary="A region's published counts per H3 cell for a month, as CSV",
        description="The cells endpoint's counts with format=csv: no geometry; category "
        "and family are the request's filters (empty: every public one).",
        operation_id="v1_public_regions_cells_csv",
        tags=TAGS,
    )
    def get(self, request, code):
        return super().get(request, code)


class PublicZonesView(PublicAPIView):
    @extend_schema(
        parameters=[REGION_PATH],
        responses={
            (200, GEOJSON_MEDIA_TYPE): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="GeoJSON FeatureCollection of the latest public run's zones, "
                "generalized (properties: rank, cell_count or null, run_id, method, "
                "date_from, date_to, buffer_m, tolerance_m); no features without a run",
            ),
            **COMMON_RESPONSES,
        },
        summary="A region's public hotspot zones",
        tags=TAGS,
    )
    def get(self, request, code):
        region = _region(code)
        features = []
        for zone in public_zones(region):
            properties = {k: v for k, v in zone.items() if k != "geometry"}
            features.append(
                {"type": "Feature", "geometry": zone["geometry"], "properties": properties}
            )
        return _json_response({"type": "FeatureCollection", "region": region, "features": features})
