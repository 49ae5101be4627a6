"""Hotspot runs over the API: create (queued in the background), list, detail, the map
layers (cells, zones, emerging categories, kernel density, a forecast's flagged cells) as
GeoJSON and vector tiles,
and forecast validations.

Planners (and superusers) only, like the incident API: everyone else gets 403 (401/403
when anonymous) before any parameter or run id is read. Every response is
``Cache-Control: private, no-store``.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils.dates import WEEKDAYS
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.settings import api_settings

from common.api import FirstRendererNegotiation, IsPlanner, PrivateAPIView
from geo.api.params import map_params
from geo.geojson import GEOJSON_MEDIA_TYPE, GeoJSONParameterError, feature_collection_response
from geo.mvt import MVT_CONTENT_TYPE, tile_response
from hotspots import selectors
from hotspots.api.filters import CellFilterError, parse_cell_filter
from hotspots.api.serializers import (
    HotspotRunCreateSerializer,
    HotspotRunDetailSerializer,
    HotspotRunSerializer,
    HotspotValidationCreateSerializer,
    HotspotValidationSerializer,
    WeekHoursSerializer,
    is_finished,
)
from hotspots.engine import HotspotRefused
from hotspots.models import HotspotRun, HotspotValidation
from hotspots.services.runs import RunSpec, create_run, fail_abandoned_runs, find_identical_run
from hotspots.services.validation import validate_run
from hotspots.services.week_hours import run_week_hours
from hotspots.tasks import enqueue_run

TAGS = ["hotspots"]
FORBIDDEN = OpenApiResponse(description="not logged in, or not a police planner")
BAD_REQUEST = OpenApiResponse(description="invalid parameters: {field: [messages]}")
NOT_FOUND = OpenApiResponse(description="no such run")
GEOJSON_RESPONSE = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="GeoJSON FeatureCollection (application/geo+json); after the features: "
    "numberReturned, truncated, bbox (when not empty), run, method, layer",
)
LAYER_RESPONSES = {
    (200, GEOJSON_MEDIA_TYPE): GEOJSON_RESPONSE,
    400: BAD_REQUEST,
    403: FORBIDDEN,
    404: NOT_FOUND,
}
BBOX_PARAMETER = OpenApiParameter(
    "bbox", OpenApiTypes.STR, description="minlon,minlat,maxlon,maxlat (WGS84)"
)
ZOOM_PARAMETER = OpenApiParameter(
    "zoom", OpenApiTypes.INT, description="map zoom (0-24): simplifies zone outlines"
)
BIN_PARAMETERS = [
    OpenApiParameter("min_bin", OpenApiTypes.INT, description="lowest Gi* bin (-3…3)"),
    OpenApiParameter("max_bin", OpenApiTypes.INT, description="highest Gi* bin (-3…3)"),
    OpenApiParameter("bins", OpenApiTypes.STR, description="Gi* bins, comma-separated"),
    OpenApiParameter(
        "significant", OpenApiTypes.BOOL, description="only cells with a bin other than 0"
    ),
]
TILE_RESPONSES = {
    (200, MVT_CONTENT_TYPE): OpenApiResponse(OpenApiTypes.BINARY, description="Mapbox Vector Tile"),
    204: OpenApiResponse(
        description="nothing in this tile, or (cells) a zoom below the minimum: the "
        "X-Hotspot-Min-Zoom header says which"
    ),
    400: BAD_REQUEST,
    403: FORBIDDEN,
    404: NOT_FOUND,
}


class HotspotAPIView(PrivateAPIView):
    permission_classes = [IsPlanner]
    forbidden_message = "Only police planners may read or start hotspot runs."


class HotspotLayerView(HotspotAPIView):
    """GeoJSON and tiles pick their own content type whatever the client accepts."""

    content_negotiation_class = FirstRendererNegotiation


def _runs():
    fail_abandoned_runs()
    return HotspotRun.objects.select_related("region", "created_by").prefetch_related(
        "districts", "neighborhoods", "categories"
    )


def _run(pk: int) -> HotspotRun:
    return get_object_or_404(HotspotRun.objects.select_related("region"), pk=pk)


def refusal_errors(exc: HotspotRefused) -> dict:
    """A refusal as a 400 body: the service's message is about the request as a whole."""
    return {api_settings.NON_FIELD_ERRORS_KEY: [str(exc)]}


# --- runs -----------------------------------------------------------------------------


class RunPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


class HotspotRunListView(HotspotAPIView):
    pagination_class = RunPagination

    @extend_schema(
        parameters=[
            OpenApiParameter("region", OpenApiTypes.STR, description="region code"),
            OpenApiParameter("status", OpenApiTypes.STR, enum=HotspotRun.Status.values),
            OpenApiParameter("method", OpenApiTypes.STR, enum=HotspotRun.Method.values),
            OpenApiParameter("limit", OpenApiTypes.INT),
            OpenApiParameter("offset", OpenApiTypes.INT),
        ],
        responses={200: HotspotRunSerializer(many=True), 400: BAD_REQUEST, 403: FORBIDDEN},
        summary="Hotspot runs, newest first (planners only)",
        tags=TAGS,
    )
    def get(self, request):
        params = request.query_params
        errors = {}
        queryset = _runs().order_by("-created_at", "-id")
        if region := (params.get("region") or "").strip():
            queryset = queryset.filter(region__code=region)
        for name, choices in (
            ("status", HotspotRun.Status.values),
            ("method", HotspotRun.Method.values),
        ):
            value = (params.get(name) or "").strip()
            if not value:
                continue
            if value not in choices:
                errors[name] = [f"{name} must be one of {', '.join(choices)}"]
            else:
                queryset = queryset.filter(**{name: value})
        if errors:
            raise ValidationError(errors)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        data = HotspotRunSerializer(page, many=True, context={"request": request}).data
        return paginator.get_paginated_response(data)

    @extend_schema(
        request=HotspotRunCreateSerializer,
        responses={
            200: HotspotRunDetailSerializer,
            202: HotspotRunDetailSerializer,
            400: BAD_REQUEST,
            403: FORBIDDEN,
        },
        summary="Start a hotspot run in the background (planners only)",
        description="Answers 202 with the queued run (`reused`: false); poll its url until "
        "`finished`. When a succeeded run was asked exactly the same (area, period, "
        "selection, method, parameters) and its incidents are still the same ones, "
        "answers 200 with that run and `reused`: true instead of computing it again. A "
        "request that cannot give a meaningful run (too few incidents is only known "
        "when it runs) answers 400 with the reason.",
        tags=TAGS,
    )
    def post(self, request):

        serializer = HotspotRunCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        spec = RunSpec(
            date_from=data["date_from"],
            date_to=data["date_to"],
            method=data["method"],
            params=data.get("params") or {},
            districts=data["districts"],
            neighborhoods=data["neighborhoods"],
            polygon=data.get("polygon"),
            family=data.get("family") or "",
            categories=data["categories"],
        )
        try:
            # The same request as a finished run gives the same result: that run is
            # answered (200, "reused": true) rather than computed again.
            identical = find_identical_run(region=data["region"], spec=spec)
            if identical is not None:
                run = _runs().get(pk=identical.pk)
                body = HotspotRunDetailSerializer(run, context={"request": request}).data
                return Response(
                    {**body, "reused": True},
                    status=status.HTTP_200_OK,
                    headers={"Location": body["url"]},
                )
            run = create_run(user=request.user, region=data["region"], **spec.request())
        except HotspotRefused as exc:
            raise ValidationError(refusal_errors(exc)) from None
        enqueue_run(run)
        run = _runs().get(pk=run.pk)
        body = HotspotRunDetailSerializer(run, context={"request": request}).data
        return Response(
            {**body, "reused": False},
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": body["url"]},
        )


class HotspotRunDetailView(HotspotAPIView):
    @extend_schema(
        responses={200: HotspotRunDetailSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
        summary="One hotspot run: parameters, status, progress, summary, timings, "
        "stability and validations (planners only)",
        tags=TAGS,
    )
    def get(self, request, pk: int):
        run = get_object_or_404(_runs().prefetch_related("validations__created_by"), pk=pk)
        return Response(HotspotRunDetailSerializer(run, context={"request": request}).data)


# --- validations ------------------------------------------------------------------------


class HotspotValidationListView(HotspotAPIView):
    @extend_schema(
        responses={200: HotspotValidationSerializer(many=True), 403: FORBIDDEN, 404: NOT_FOUND},
        summary="Forecast validations of a run, newest first (planners only)",
        tags=TAGS,
    )
    def get(self, request, pk: int):
        run = _run(pk)
        validations = HotspotValidation.objects.filter(run=run).select_related("created_by")
        return Response(HotspotValidationSerializer(validations, many=True).data)

    @extend_schema(
        request=HotspotValidationCreateSerializer,
        responses={
            201: HotspotValidationSerializer,
            400: BAD_REQUEST,
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
        summary="Score a run's zones and top cells against a later period (planners only)",
        description="Hit rate, PAI and PEI at 1 %, 5 % and 10 % of the area for the zones, "
        "the run's top cells and the naive 'top cells by the count over the run's period' "
        "baseline.",
        tags=TAGS,
    )
    def post(self, request, pk: int):

        run = _run(pk)
        serializer = HotspotValidationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            validation = validate_run(
                run=run,
                eval_from=serializer.validated_data["eval_from"],
                eval_to=serializer.validated_data["eval_to"],
                user=request.user,
            )
        except HotspotRefused as exc:
            raise ValidationError(refusal_errors(exc)) from None
        return Response(
            HotspotValidationSerializer(validation).data, status=status.HTTP_201_CREATED
        )


# --- week hours -------------------------------------------------------------------------


class RunNotFinished(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The run has not finished yet."
    default_code = "not_finished"


class HotspotWeekHoursView(HotspotAPIView):
    @extend_schema(
        responses={
            200: WeekHoursSerializer,
            403: FORBIDDEN,
            404: NOT_FOUND,
            409: OpenApiResponse(description="the run has not finished yet"),
        },
        summary="When in the week the run's incidents happened (planners only)",
        description="The incidents of the run's area, period and categories over the 7 "
        "days × 24 hours of the week, in the region's local time. Aoristic: an incident "
        "known only to a window (between 18:00 Friday and 08:00 Monday, or a day) has its "
        "weight of 1 split evenly over the hours the window covers; only the share inside "
        "the run's period counts, and a window longer than cap_hours is spread evenly over "
        "the whole week.",
        tags=TAGS,
    )
    def get(self, request, pk: int):
        run = _run(pk)
        if not is_finished(run):
            raise RunNotFinished()
        data = run_week_hours(run=run).as_dict()
        data["weekday_labels"] = [str(WEEKDAYS[d]) for d in range(7)]
        return Response(WeekHoursSerializer(data).data)


# --- layers -----------------------------------------------------------------------------


def _cells_response(request, pk: int, layer: str):
    run = _run(pk)
    bbox, zoom = map_params(request.query_params)
    try:
        spec = parse_cell_filter(request.query_params, layer=layer, bbox=bbox)
    except CellFilterError as exc:
        raise ValidationError(exc.errors) from None
    # A whole region's density surface is tens of thousands of cells: like every other
    # layer, the view's bbox and zoom (coordinate precision, simplification) shrink it.
    return feature_collection_response(
        selectors.cell_queryset(run, spec),
        geom_field="geom",
        properties=selectors.cell_properties(layer),
        zoom=zoom,
        max_features=selectors.max_features(),
        extra_members=selectors.layer_members(run, layer),
    )


class HotspotCellsView(HotspotLayerView):
    @extend_schema(
        parameters=[BBOX_PARAMETER, ZOOM_PARAMETER, *BIN_PARAMETERS],
        responses=LAYER_RESPONSES,
        summary="A run's cells with Gi* z, p and confidence bin (planners only)",
        description="Properties: i, j, count, gi_z, gi_p, gi_bin (+3/+2/+1 hot at "
        "99/95/90 %, negative cold, 0 not significant), zone (rank or null). Most "
        "significant cells first. Runs without Gi* (kernel density, forecast) answer an "
        "empty collection: their cells are at kde/ and forecast/.",
        tags=TAGS,
    )
    def get(self, request, pk: int):
        return _cells_response(request, pk, "gistar")


class HotspotEmergingView(HotspotLayerView):
    @extend_schema(
        parameters=[
            BBOX_PARAMETER,
            ZOOM_PARAMETER,
            OpenApiParameter(
                "category", OpenApiTypes.STR, description="emerging category codes (-8…8)"
            ),
            OpenApiParameter(
                "include_no_pattern",
                OpenApiTypes.BOOL,
                description="also cells without a pattern nor any significant step",
            ),
        ],
        responses=LAYER_RESPONSES,
        summary="A run's emerging hot spot categories (planners only)",
        description="Properties: emerging (code), emerging_key, emerging_label (active "
        "language), trend_tau, trend_p, gi_bin, step_counts and step_bins (one per time "
        "step; the collection's `steps` holds their start dates). The collection's "
        "`legend` lists every category.",
        tags=TAGS,
    )
    def get(self, request, pk: int):
        return _cells_response(request, pk, "emerging")


class HotspotKDEView(HotspotLayerView):
    @extend_schema(
        parameters=[
            BBOX_PARAMETER,
            ZOOM_PARAMETER,
            OpenApiParameter(
                "min_density", OpenApiTypes.NUMBER, description="incidents per km², at least"
            ),
        ],
        responses=LAYER_RESPONSES,
        summary="A run's kernel density surface (planners only)",
        description="Properties: i, j, count, density (incidents per km²). Densest first.",
        tags=TAGS,
    )
    def get(self, request, pk: int):
        return _cells_response(request, pk, "kde")


class HotspotForecastView(HotspotLayerView):
    @extend_schema(
        parameters=[BBOX_PARAMETER, ZOOM_PARAMETER],
        responses=LAYER_RESPONSES,
        summary="A forecast run's flagged cells, by score (planners only)",
        description="The cells the forecast flagged (the top of the chosen ranking up to "
        "the run's coverage; every one is in a zone), highest score first; the other "
        "cells are not returned. Properties: i, j, count, score (of the chosen ranking; "
        "higher = flagged first), zone (rank). The collection's min_score and max_score "
        "span the whole run's flagged cells; chosen (candidate key, e.g. decay_30) and "
        "chosen_label (active language) say which ranking the scores are of. Empty for "
        "a run of another method.",
        tags=TAGS,
    )
    def get(self, request, pk: int):
        return _cells_response(request, pk, "forecast")


class HotspotZonesView(HotspotLayerView):
    @extend_schema(
        parameters=[BBOX_PARAMETER, ZOOM_PARAMETER],
        responses=LAYER_RESPONSES,
        summary="A run's zones (planners only)",
        description="Properties: rank (1 = most incidents), cell_count, incident_count, "
        "area_m2, density_per_km2, share (of the area's incidents, 0–1), top_categories "
        "[{code, count}].",
        tags=TAGS,
    )
    def get(self, request, pk: int):
        run = _run(pk)
        bbox, zoom = map_params(request.query_params)
        return feature_collection_response(
            selectors.zone_list(run, bbox=bbox),
            geom_field="geom",
            properties=selectors.ZONE_PROPERTIES,
            zoom=zoom,
            max_features=selectors.max_features(),
            extra_members=selectors.layer_members(run, "zones"),
        )


def _tile_response(tile: selectors.Tile):
    response = tile_response(tile.data)
    if tile.below_min_zoom:
        response["X-Hotspot-Min-Zoom"] = str(selectors.tile_min_zoom())
    if tile.truncated:
        response["X-Hotspot-Truncated"] = "true"
    return response


class HotspotCellTileView(HotspotLayerView):
    @extend_schema(
        responses=TILE_RESPONSES,
        summary="A run's cells as a vector tile (planners only)",
        description='Layer "cells": i, j, count, gi_z, gi_bin, zone, density, emerging, '
        "score (what the run's method filled; a forecast run's tiles hold only its "
        "flagged cells, highest score first). Empty (204) below the minimum zoom; at most "
        "HOTSPOT_TILE_MAX_FEATURES cells per tile, the most significant first "
        "(X-Hotspot-Truncated: true when cut).",
        operation_id="v1_tiles_hotspot_cells_mvt",
        tags=TAGS,
    )
    def get(self, request, run: int, z: int, x: int, y: int):
        hotspot_run = _run(run)
        try:
            return _tile_response(selectors.cell_tile(hotspot_run, z, x, y))
        except GeoJSONParameterError as exc:
            raise ValidationError({exc.field: [exc.message]}) from None


class HotspotZoneTileView(HotspotLayerView):
    @extend_schema(
        responses=TILE_RESPONSES,
        summary="A run's zones as a vector tile (planners only)",
        description='Layer "zones": rank, cell_count, incident_count, area_m2, '
        "density_per_km2, share.",
        operation_id="v1_tiles_hotspot_zones_mvt",
        tags=TAGS,
    )
    def get(self, request, run: int, z: int, x: int, y: int):
        hotspot_run = _run(run)
        try:
            return _tile_response(selectors.zone_tile(hotspot_run, z, x, y))
        except GeoJSONParameterError as exc:
            raise ValidationError({exc.field: [exc.message]}) from None
