"""Request and response shapes of the hotspot API (also its OpenAPI documentation)."""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework_gis.fields import GeometryField

from hotspots.engine.grid import ORIGINS
from hotspots.models import HotspotRun, HotspotValidation
from hotspots.services.params import ANALYSIS_AREAS, SUPPORTED_METHODS
from incidents.models import Category, Family
from neighborhoods.models import District, Neighborhood, Region

FINISHED = (HotspotRun.Status.SUCCEEDED, HotspotRun.Status.FAILED)
_MAX_CODES = 200


@extend_schema_field(
    {
        "type": "object",
        "description": "GeoJSON geometry (Polygon or MultiPolygon, WGS84)",
        "properties": {"type": {"type": "string"}, "coordinates": {"type": "array", "items": {}}},
        "nullable": True,
    }
)
class AreaGeometryField(GeometryField):
    """A drawn area as a GeoJSON geometry (documented as such in the schema)."""


def is_finished(run: HotspotRun) -> bool:
    return run.status in FINISHED


def _absolute(context: dict, path: str) -> str:
    request = context.get("request")
    return request.build_absolute_uri(path) if request else path


def _reverse(context: dict, name: str, *args) -> str:
    try:
        return _absolute(context, reverse(name, args=args))
    except NoReverseMatch:  # the pages are not mounted
        return ""


# --- responses ------------------------------------------------------------------------


class HotspotValidationSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(
        source="created_by.get_username", default=None, allow_null=True
    )

    class Meta:
        model = HotspotValidation
        fields = ["id", "eval_from", "eval_to", "report", "created_by", "created_at"]


class LayerLinksSerializer(serializers.Serializer):
    cells = serializers.CharField(help_text="Gi* cells (GeoJSON)")
    zones = serializers.CharField(help_text="zones (GeoJSON)")
    emerging = serializers.CharField(help_text="emerging categories (GeoJSON)")
    kde = serializers.CharField(help_text="kernel density (GeoJSON)")
    forecast = serializers.CharField(help_text="a forecast's flagged cells (GeoJSON)")
    cell_tiles = serializers.CharField(help_text="cells as vector tiles, {z}/{x}/{y}")
    zone_tiles = serializers.CharField(help_text="zones as vector tiles, {z}/{x}/{y}")


class HotspotRunSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField(help_text="the run's page for people")
    report_url = serializers.SerializerMethodField(help_text="the run's HTML report")
    region = serializers.CharField(source="region.code")
    region_name = serializers.CharField(source="region.name")
    districts = serializers.SerializerMethodField()
    neighborhoods = serializers.SerializerMethodField()
    categories = serializers.SerializerMethodField()
    polygon = AreaGeometryField(allow_null=True, help_text="the drawn area (GeoJSON), if any")
    method_label = serializers.CharField(source="get_method_display")
    status_label = serializers.CharField(source="get_status_display")
    finished = serializers.SerializerMethodField()
    created_by = serializers.CharField(
        source="created_by.get_username", default=None, allow_null=True
    )
    bbox = serializers.SerializerMethodField(
        help_text="[minlon, minlat, maxlon, maxlat] of the analysis area, once resolved"
    )

    class Meta:
        model = HotspotRun
        fields = [
            "id",
            "url",
            "page_url",
            "report_url",
            "region",
            "region_name",
            "districts",
            "neighborhoods",
            "polygon",
            "bbox",
            "area_m2",
            "date_from",
            "date_to",
            "family",
            "categories",
            "method",
            "method_label",
            "params",
            "metric_srid",
            "software_version",
            "status",
            "status_label",
            "finished",
            "progress",
            "message",
            "summary",
            "timings",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_url(self, run: HotspotRun) -> str:
        return _reverse(self.context, "hotspot-run-detail", run.pk)

    def get_page_url(self, run: HotspotRun) -> str:
        return _reverse(self.context, "hotspots:run-detail", run.pk)

    def get_report_url(self, run: HotspotRun) -> str:
        return _reverse(self.context, "hotspots:run-report", run.pk)

    def get_districts(self, run: HotspotRun) -> list[str]:
        return sorted(d.code for d in run.districts.all())

    def get_neighborhoods(self, run: HotspotRun) -> list[str]:
        return sorted(n.code for n in run.neighborhoods.all())

    def get_categories(self, run: HotspotRun) -> list[str]:
        return sorted(c.code for c in run.categories.all())

    def get_finished(self, run: HotspotRun) -> bool:
        return is_finished(run)

    @extend_schema_field(serializers.ListField(child=serializers.FloatField(), allow_null=True))
    def get_bbox(self, run: HotspotRun):
        if run.area_geom is None:
            return None
        return [round(v, 6) for v in run.area_geom.extent]


class HotspotRunDetailSerializer(HotspotRunSerializer):
    stability = serializers.JSONField(
        help_text="hot-area agreement at neighbouring cell sizes (Jaccard)"
    )
    validations = HotspotValidationSerializer(many=True, read_only=True)
    layers = serializers.SerializerMethodField()

    class Meta(HotspotRunSerializer.Meta):
        fields = [*HotspotRunSerializer.Meta.fields, "stability", "validations", "layers"]

    @extend_schema_field(LayerLinksSerializer)
    def get_layers(self, run: HotspotRun) -> dict:
        tile = "{z}/{x}/{y}"
        links = {
            "cells": _reverse(self.context, "hotspot-run-cells", run.pk),
            "zones": _reverse(self.context, "hotspot-run-zones", run.pk),
            "emerging": _reverse(self.context, "hotspot-run-emerging", run.pk),
            "kde": _reverse(self.context, "hotspot-run-kde", run.pk),
            "forecast": _reverse(self.context, "hotspot-run-forecast", run.pk),
        }
        for kind, name in (
            ("cell_tiles", "hotspot-cell-tile"),
            ("zone_tiles", "hotspot-zone-tile"),
        ):
            prefix = reverse(name, args=[run.pk, 0, 0, 0]).removesuffix("0/0/0.mvt")
            # Appended after: build_absolute_uri would percent-encode the braces.
            links[kind] = _absolute(self.context, prefix) + f"{tile}.mvt"
        return links


# --- requests -------------------------------------------------------------------------


class CodeListField(serializers.ListField):
    """Codes as a JSON list or one comma-separated string."""

    child = serializers.CharField(max_length=100)

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", _MAX_CODES)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = [item.strip() for item in data.split(",") if item.strip()]
        return list(dict.fromkeys(super().to_internal_value(data)))


class HotspotRunCreateSerializer(serializers.Serializer):
    region = serializers.SlugRelatedField(
        slug_field="code", queryset=Region.objects.all(), help_text="region code"
    )
    districts = CodeListField(help_text="district codes of the region (none: the whole region)")
    neighborhoods = CodeListField(help_text="neighborhood codes of the region")
    polygon = AreaGeometryField(
        required=False,
        allow_null=True,
        help_text="a drawn area (GeoJSON Polygon or MultiPolygon, WGS84)",
    )
    date_from = serializers.DateField()
    date_to = serializers.DateField(help_text="included")
    family = serializers.ChoiceField(choices=Family.choices, required=False, allow_blank=True)
    categories = CodeListField(help_text="category codes (none: every category of the family)")
    method = serializers.ChoiceField(
        choices=HotspotRun.Method.choices, default=HotspotRun.Method.GISTAR
    )
    params = serializers.JSONField(
        required=False,
        default=dict,
        help_text='the method\'s parameters, e.g. {"grid": "hex", "cell_size_m": 150}; '
        "every one left out takes its default, recorded on the run",
    )

    def validate_method(self, value: str) -> str:
        available = [str(m) for m in SUPPORTED_METHODS]
        if value not in available:
            raise serializers.ValidationError(
                f"method {value!r} is not available yet; available: {', '.join(available)}"
            )
        return value

    def validate_params(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("params must be a JSON object")
        # Choices checked here too, to answer with a message on the field.
        for name, choices in (("grid_origin", ORIGINS), ("analysis_area", ANALYSIS_AREAS)):
            if name in value and value[name] not in choices:
                raise serializers.ValidationError(f"{name} must be one of {', '.join(choices)}")
        return value

    def validate_polygon(self, value):
        if value is not None and value.geom_type not in ("Polygon", "MultiPolygon"):
            raise serializers.ValidationError("the drawn area must be a Polygon or MultiPolygon")
        if value is not None and value.srid is None:
            value.srid = 4326
        return value

    def _resolve(self, model, codes: list[str], region: Region, field: str, errors: dict):
        found = {a.code: a for a in model.objects.filter(region=region, code__in=codes)}
        missing = [c for c in codes if c not in found]
        if missing:
            errors[field] = [f"not in region {region.code}: {', '.join(missing)}"]
        return [found[c] for c in codes if c in found]

    def validate(self, attrs):
        errors: dict[str, list[str]] = {}
        region = attrs["region"]
        attrs["districts"] = self._resolve(
            District, attrs.get("districts") or [], region, "districts", errors
        )
        attrs["neighborhoods"] = self._resolve(
            Neighborhood, attrs.get("neighborhoods") or [], region, "neighborhoods", errors
        )
        codes = attrs.get("categories") or []
        categories = {c.code: c for c in Category.objects.filter(code__in=codes)}
        unknown = [c for c in codes if c not in categories]
        if unknown:
            errors["categories"] = [f"unknown category code(s): {', '.join(unknown)}"]
        attrs["categories"] = [categories[c] for c in codes if c in categories]
        if attrs["date_to"] < attrs["date_from"]:
            errors["date_to"] = ["the period ends before it starts"]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class HotspotValidationCreateSerializer(serializers.Serializer):
    eval_from = serializers.DateField(help_text="first day of the later period")
    eval_to = serializers.DateField(help_text="last day of the later period (included)")

    def validate(self, attrs):
        if attrs["eval_to"] < attrs["eval_from"]:
            raise serializers.ValidationError({"eval_to": ["the period ends before it starts"]})
        return attrs


class WeekHoursSerializer(serializers.Serializer):
    """The week-hour view of a run (``hotspots.services.week_hours.WeekHourTable``)."""

    run = serializers.IntegerField()
    method = serializers.CharField(
        help_text="aoristic: an incident known only to a window is split evenly over the "
        "hours it covers"
    )
    time_zone = serializers.CharField(help_text="IANA zone of the region: the hours are local")
    period = serializers.DictField(
        child=serializers.DateTimeField(),
        help_text="start and (exclusive) end of the run's period",
    )
    weekdays = serializers.ListField(child=serializers.CharField(), help_text="rows: mon … sun")
    weekday_labels = serializers.ListField(
        child=serializers.CharField(), help_text="the weekdays in the active language"
    )
    hours = serializers.ListField(child=serializers.IntegerField(), help_text="columns: 0 … 23")
    weights = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField()),
        help_text="7 rows (Monday first) of 24 aoristic weights, to 4 decimals",
    )
    max_weight = serializers.FloatField()
    total_weight = serializers.FloatField(help_text="the shares inside the run's period")
    incidents = serializers.IntegerField(help_text="incidents with a share inside the period")
    windowed = serializers.IntegerField(help_text="of them, known only to a time window")
    exact = serializers.IntegerField(help_text="of them, with an exact time")
    spread_evenly = serializers.IntegerField(
        help_text="windows longer than cap_hours inside the period, spread evenly over the week"
    )
    cap_hours = serializers.FloatField()
