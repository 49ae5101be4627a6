"""Raw incidents for police planners: GeoJSON, CSV, counts, clusters, heat map, vector
tiles and the category list.

Planners (and superusers) only: everyone else gets 403 (401/403 when anonymous) before
any parameter is even read, so no URL, error or export ever hands them a coordinate.
Every response is ``Cache-Control: private, no-store``.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import F
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from common.api import PlannerAPIView, csv_lines
from geo.geojson import GEOJSON_MEDIA_TYPE, GeoJSONParameterError, feature_collection_response
from geo.mvt import MVT_CONTENT_TYPE, capped_tile_bytes, tile_response
from incidents import selectors
from incidents.api.filters import (
    FILTER_PARAMETERS,
    ZOOM_PARAMETER,
    parse_filters,
    parse_filters_and_zoom,
    parse_int,
)
from incidents.api.serializers import CategorySerializer, HeatSerializer, IncidentStatsSerializer

TILE_LAYER = "incidents"
TRUNCATED_HEADER = "X-Incidents-Truncated"
_MAX_ID = 2**63 - 1


def max_features() -> int:
    """Features per GeoJSON page: ``INCIDENTS_MAX_FEATURES`` (default 5000), never above
    the global ``GEOJSON_MAX_FEATURES``."""
    return min(getattr(settings, "INCIDENTS_MAX_FEATURES", 5000), settings.GEOJSON_MAX_FEATURES)


def max_cells() -> int:
    """Clusters or heat cells per response: ``INCIDENTS_MAX_CELLS`` (default 20000), never
    above the global ``GEOJSON_MAX_FEATURES``."""
    return min(getattr(settings, "INCIDENTS_MAX_CELLS", 20000), settings.GEOJSON_MAX_FEATURES)


class IncidentAPIView(PlannerAPIView):
    forbidden_message = "Only police planners may read incidents."


FORBIDDEN = OpenApiResponse(description="not logged in, or not a police planner")
BAD_REQUEST = OpenApiResponse(description="invalid parameters: {field: [messages]}")
GEOJSON_RESPONSE = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="GeoJSON FeatureCollection (application/geo+json); after the features: "
    "numberReturned, truncated, bbox (when not empty)",
)
PAGE_PARAMETERS = [
    OpenApiParameter(
        "limit", OpenApiTypes.INT, description="features per page (1 to the server's cap)"
    ),
    OpenApiParameter("offset", OpenApiTypes.INT, description="features to skip (ordered by id)"),
    OpenApiParameter(
        "after_id",
        OpenApiTypes.INT,
        description="keyset pagination: only ids above this (the last id of the previous page)",
    ),
]


def incident_properties() -> dict:
    return {
        "id": "id",
        "category": F("category__code"),
        "category_name": F(selectors.name_field("category__")),
        "family": F("category__family"),
        "sensitive": F("category__sensitive"),
        "occurred_at": "occurred_at",
        "occurred_until": "occurred_until",
        "time_precision": "time_precision",
        "source": F("source__name"),
        "district": F("district__code"),
        "district_name": F("district__name"),
        "neighborhood": F("neighborhood__code"),
        "neighborhood_name": F("neighborhood__name"),
        "location_quality": "location_quality",
    }


class IncidentGeoJSONView(IncidentAPIView):
    @extend_schema(
        parameters=[*FILTER_PARAMETERS, *PAGE_PARAMETERS],
        responses={(200, GEOJSON_MEDIA_TYPE): GEOJSON_RESPONSE, 400: BAD_REQUEST, 403: FORBIDDEN},
        summary="Incidents as a GeoJSON FeatureCollection (planners only)",
        tags=["incidents"],
    )
    def get(self, request):
        params = request.query_params
        filters = parse_filters(params)
        cap = max_features()
        limit = parse_int(params, "limit", default=cap, minimum=1, maximum=cap)
        offset = parse_int(params, "offset", default=0, minimum=0, maximum=_MAX_ID)
        after_id = parse_int(params, "after_id", default=None, minimum=0, maximum=_MAX_ID)
        queryset = selectors.page(
            selectors.incident_list(filters), offset=offset, after_id=after_id
        )
        return feature_collection_response(
            queryset,
            geom_field="point",
            properties=incident_properties(),
            max_features=limit,
            extra_members={"limit": limit},
        )


class IncidentExportView(IncidentAPIView):
    @extend_schema(
        parameters=FILTER_PARAMETERS,
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="CSV with a header row: " + ", ".join(selectors.EXPORT_COLUMNS),
            ),
            400: BAD_REQUEST,
            403: FORBIDDEN,
        },
        summary="Incidents as CSV (planners only)",
        operation_id="v1_incidents_export_csv",
        tags=["incidents"],
    )
    def get(self, request):
        filters = parse_filters(request.query_params)
        rows = selectors.export_rows(selectors.incident_list(filters))
        response = StreamingHttpResponse(
            (line.encode("utf-8") for line in csv_lines(selectors.EXPORT_COLUMNS, rows)),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = 'attachment; filename="incidents.csv"'
        return response


class IncidentStatsView(IncidentAPIView):
    @extend_schema(
        parameters=FILTER_PARAMETERS,
        responses={200: IncidentStatsSerializer, 400: BAD_REQUEST, 403: FORBIDDEN},
        summary="Incident counts per category for a filter (planners only)",
        tags=["incidents"],
    )
    def get(self, request):
        filters = parse_filters(request.query_params)
        return Response(selectors.category_counts(selectors.incident_list(filters)))


class IncidentClusterView(IncidentAPIView):
    @extend_schema(
        parameters=[ZOOM_PARAMETER, *FILTER_PARAMETERS],
        responses={
            (200, GEOJSON_MEDIA_TYPE): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="GeoJSON FeatureCollection of cluster points (mean position of "
                "their incidents) with properties count and bbox [minlon,minlat,maxlon,maxlat]",
            ),
            400: BAD_REQUEST,
            403: FORBIDDEN,
        },
        summary="Incidents clustered on a ~60-pixel grid at a zoom (planners only)",
        tags=["incidents"],
    )
    def get(self, request):
        filters, zoom = parse_filters_and_zoom(request.query_params)
        cells = selectors.cluster_cells(selectors.incident_list(filters), zoom=zoom)
        return feature_collection_response(
            cells,
            geom_field="center",
            id_field="cluster_id",
            properties={"count": "count", "bbox": "bbox"},
            max_features=max_cells(),
            extra_members={"zoom": zoom, "cell_px": selectors.CLUSTER_CELL_PX},
        )


class IncidentHeatView(IncidentAPIView):
    @extend_schema(
        parameters=[ZOOM_PARAMETER, *FILTER_PARAMETERS],
        responses={200: HeatSerializer, 400: BAD_REQUEST, 403: FORBIDDEN},
        summary="Heat-map points on a ~8-pixel grid at a zoom (planners only)",
        tags=["incidents"],
    )
    def get(self, request):
        filters, zoom = parse_filters_and_zoom(request.query_params)
        points, truncated = selectors.heat_cells(
            selectors.incident_list(filters), zoom=zoom, limit=max_cells()
        )
        return Response(
            {
                "points": points,
                "max": max((p[2] for p in points), default=0),
                "truncated": truncated,
            }
        )


class IncidentTileView(IncidentAPIView):
    @extend_schema(
        parameters=FILTER_PARAMETERS,
        responses={
            (200, MVT_CONTENT_TYPE): OpenApiResponse(
                OpenApiTypes.BINARY,
                description='Mapbox Vector Tile, layer "incidents", properties id, category, '
                "family; at most INCIDENT_TILE_MAX_FEATURES incidents, the most recent first "
                f"({TRUNCATED_HEADER}: true when some were left out)",
            ),
            204: OpenApiResponse(description="no incident in this tile"),
            400: BAD_REQUEST,
            403: FORBIDDEN,
        },
        summary="Incidents as a vector tile (planners only)",
        operation_id="v1_tiles_incidents_mvt",
        tags=["incidents"],
    )
    def get(self, request, z: int, x: int, y: int):
        filters = parse_filters(request.query_params)
        try:
            # The most recent incidents first when a tile holds more than the cap.
            data, truncated = capped_tile_bytes(
                selectors.incident_list(filters).order_by("-occurred_at", "-pk"),
                max_features=settings.INCIDENT_TILE_MAX_FEATURES,
                geom_field="point",
                properties={
                    "id": "id",
                    "category": F("category__code"),
                    "family": F("category__family"),
                },
                z=z,
                x=x,
                y=y,
                layer=TILE_LAYER,
            )
        except GeoJSONParameterError as exc:
            raise ValidationError({exc.field: [exc.message]}) from None
        response = tile_response(data)
        if truncated:
            response[TRUNCATED_HEADER] = "true"
        return response


class CategoryListView(IncidentAPIView):
    @extend_schema(
        responses={200: CategorySerializer(many=True), 403: FORBIDDEN},
        summary="Incident categories (planners only)",
        tags=["incidents"],
    )
    def get(self, request):
        return Response(CategorySerializer(selectors.category_list(), many=True).data)
