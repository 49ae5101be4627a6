"""Boundary endpoints: area lookup, districts and neighborhoods as GeoJSON, regions."""

import math

from django.conf import settings
from django.db.models import F
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from geo.api.params import map_params
from geo.geojson import (
    GEOJSON_MEDIA_TYPE,
    feature_collection_response,
)
from neighborhoods import locate, selectors

BBOX_PARAM = OpenApiParameter(
    "bbox", OpenApiTypes.STR, description="minlon,minlat,maxlon,maxlat (WGS84)"
)
ZOOM_PARAM = OpenApiParameter(
    "zoom", OpenApiTypes.INT, description="map zoom (0-24): simplifies geometry to screen pixels"
)
REGION_PARAM = OpenApiParameter("region", OpenApiTypes.STR, description="region code")
GEOJSON_RESPONSE = OpenApiResponse(
    OpenApiTypes.OBJECT, description="GeoJSON FeatureCollection (application/geo+json)"
)


class AreaLookupSerializer(serializers.Serializer):
    lat = serializers.FloatField(min_value=-90, max_value=90)
    lon = serializers.FloatField(min_value=-180, max_value=180)

    def validate(self, attrs):
        if not (math.isfinite(attrs["lat"]) and math.isfinite(attrs["lon"])):
            raise ValidationError("lat and lon must be finite numbers")
        return attrs


class AreaSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["region", "district", "neighborhood"])
    code = serializers.CharField()
    name = serializers.CharField()
    region = serializers.CharField()
    district = serializers.CharField(required=False, allow_null=True)
    population = serializers.IntegerField(required=False, allow_null=True)
    synthetic = serializers.BooleanField(required=False)


class AreaLookupView(APIView):
    @extend_schema(
        parameters=[AreaLookupSerializer],
        responses={200: AreaSerializer(many=True)},
        summary="Areas containing a point (region, district, neighborhood)",
    )
    def get(self, request):
        params = AreaLookupSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        return Response(
            locate.areas_containing(
                lon=params.validated_data["lon"], lat=params.validated_data["lat"]
            )
        )


def _areas_response(queryset, zoom, **more_properties):
    """Districts or neighborhoods as a FeatureCollection: code, name, region, then
    ``more_properties``, then population."""
    return feature_collection_response(
        queryset,
        geom_field="geom",
        properties={
            "code": "code",
            "name": "name",
            "region": F("region__code"),
            **more_properties,
            "population": "population",
        },
        zoom=zoom,
        max_features=settings.GEOJSON_MAX_FEATURES,
    )


class DistrictGeoJSONView(APIView):
    @extend_schema(
        parameters=[REGION_PARAM, BBOX_PARAM, ZOOM_PARAM],
        responses={(200, GEOJSON_MEDIA_TYPE): GEOJSON_RESPONSE},
        summary="Districts as a GeoJSON FeatureCollection",
    )
    def get(self, request):
        bbox, zoom = map_params(request.query_params)
        queryset = selectors.district_list(region=request.query_params.get("region"), bbox=bbox)
        return _areas_response(queryset, zoom)


class NeighborhoodGeoJSONView(APIView):
    @extend_schema(
        parameters=[
            REGION_PARAM,
            OpenApiParameter("district", OpenApiTypes.STR, description="district code"),
            BBOX_PARAM,
            ZOOM_PARAM,
        ],
        responses={(200, GEOJSON_MEDIA_TYPE): GEOJSON_RESPONSE},
        summary="Neighborhoods as a GeoJSON FeatureCollection",
    )
    def get(self, request):
        bbox, zoom = map_params(request.query_params)
        queryset = selectors.neighborhood_list(
            region=request.query_params.get("region"),
            district=request.query_params.get("district"),
            bbox=bbox,
        )
        return _areas_response(
            queryset,
            zoom,
            district=F("district__code"),
            district_name=F("district__name"),
        )


class RegionSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    metric_srid = serializers.IntegerField()
    synthetic = serializers.BooleanField()
    bbox = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    districts = serializers.IntegerField()
    neighborhoods = serializers.IntegerField()


class RegionListView(APIView):
    @extend_schema(responses={200: RegionSerializer(many=True)}, summary="Regions")
    def get(self, request):
        return Response(selectors.region_summaries())


class RegionGeoJSONView(APIView):
    @extend_schema(
        parameters=[ZOOM_PARAM],
        responses={(200, GEOJSON_MEDIA_TYPE): GEOJSON_RESPONSE},
        summary="Region outlines (union of their districts) as a GeoJSON FeatureCollection",
    )
    def get(self, request):
        _bbox, zoom = map_params(request.query_params)
        return feature_collection_response(
            selectors.region_list().filter(geom__isnull=False),
            geom_field="geom",
            properties={"code": "code", "name": "name", "synthetic": "synthetic"},
            zoom=zoom,
            max_features=settings.GEOJSON_MAX_FEATURES,
        )
