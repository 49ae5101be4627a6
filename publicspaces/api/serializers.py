"""Input and output shapes of the public-space API. Input serializers only parse and
type-check: every rule (scope, geometry placement, transitions) lives in the services."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from publicspaces import selectors
from publicspaces.geometry import geometry_as_geojson, parse_geojson_geometry
from publicspaces.models import (
    Activity,
    ChangeRecord,
    Condition,
    Partner,
    ProjectPhoto,
    ProjectStatus,
    PublicSpace,
    RecoveryProject,
    SpaceKind,
)
from publicspaces.scope import scope_for
from publicspaces.services import projects
from publicspaces.services.projects import STEP_DATE_FIELD
from publicspaces.services.spaces import AUDIT_ITEMS, AUDIT_MAX


@extend_schema_field(
    {"type": "object", "description": "GeoJSON geometry: Point, LineString, Polygon, MultiPolygon"}
)
class GeoJSONGeometryField(serializers.Field):
    """A GeoJSON geometry object, checked by publicspaces.geometry (never parsed by GDAL)."""

    default_error_messages = {"invalid": "Invalid geometry."}

    def to_internal_value(self, data):
        try:
            return parse_geojson_geometry(data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None

    def to_representation(self, value):
        return geometry_as_geojson(value)


def flatten_feature(data):
    """Accepts a GeoJSON Feature ({"type": "Feature", "geometry", "properties"}) as well as
    flat JSON with a ``geom`` member."""
    if hasattr(data, "get") and data.get("type") == "Feature":
        properties = data.get("properties") or {}
        if not isinstance(properties, dict):
            raise serializers.ValidationError({"properties": ["Must be an object."]})
        flat = {k: v for k, v in properties.items() if k != "geom"}
        if "geometry" in data:
            flat["geom"] = data["geometry"]
        return flat
    return data


class SpaceInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=SpaceKind.choices)
    geom = GeoJSONGeometryField()
    address = serializers.CharField(max_length=300, required=False, allow_blank=True)
    responsible_municipality = serializers.CharField(
        max_length=200, required=False, allow_blank=True
    )
    condition = serializers.ChoiceField(choices=Condition.choices, required=False)
    notes = serializers.CharField(required=False, allow_blank=True)
    version = serializers.IntegerField(
        required=False, min_value=1, help_text="the version you read: 409 if it changed"
    )

    def to_internal_value(self, data):
        return super().to_internal_value(flatten_feature(data))


class AuditSerializer(serializers.Serializer):
    answers = serializers.DictField(
        child=serializers.IntegerField(min_value=0, max_value=AUDIT_MAX),
        help_text="each of " + ", ".join(AUDIT_ITEMS) + ": 0 bad, 1 fair, 2 good",
    )
    audited_on = serializers.DateField(required=False)


def _district(area):
    return None if area is None else {"code": area.code, "name": area.name}


class SpaceFeatureSerializer(serializers.BaseSerializer):
    """One space as a GeoJSON Feature (staff view)."""

    def to_representation(self, space: PublicSpace):
        return {
            "type": "Feature",
            "id": space.pk,
            "geometry": geometry_as_geojson(space.geom),
            "properties": {
                "id": space.pk,
                "name": space.name,
                "kind": space.kind,
                "kind_label": space.get_kind_display(),
                "condition": space.condition,
                "condition_label": space.get_condition_display(),
                "condition_score": space.condition_score,
                "audit": space.audit,
                "audited_on": space.audited_on,
                "address": space.address,
                "region": space.region.code,
                "district": _district(space.district),
                "neighborhood": _district(space.neighborhood),
                "responsible_municipality": space.responsible_municipality,
                "recovered_on": space.recovered_on,
                "notes": space.notes,
                "is_demo": space.is_demo,
                "version": space.version,
                "created_at": space.created_at,
                "updated_at": space.updated_at,
            },
        }


class ScopedPrimaryKeyField(serializers.PrimaryKeyRelatedField):
    """A related id the requesting user may edit; anything else reads as "does not exist"."""

    def __init__(self, *, editable_queryset, **kwargs):
        self.editable_queryset = editable_queryset
        super().__init__(**kwargs)

    def get_queryset(self):
        request = self.context["request"]
        return self.editable_queryset(request.user)


def _editable_spaces(user):
    return selectors.spaces_editable_by(user)


def _editable_projects(user):
    return scope_for(user).editable(RecoveryProject.objects.all(), "space__district")


class PhotoSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = ProjectPhoto
        fields = ["id", "project", "stage", "url", "width", "height", "caption", "taken_on"]
        read_only_fields = fields

    def get_url(self, photo) -> str:
        return photo.image.url


class PhotoUploadSerializer(serializers.Serializer):
    image = serializers.FileField()
    stage = serializers.ChoiceField(choices=ProjectPhoto.Stage.choices)
    caption = serializers.CharField(max_length=300, required=False, allow_blank=True)
    taken_on = serializers.DateField(required=False)


class ProjectSerializer(serializers.ModelSerializer):
    space = ScopedPrimaryKeyField(editable_queryset=_editable_spaces)
    partners = serializers.PrimaryKeyRelatedField(
        many=True, queryset=Partner.objects.all(), required=False
    )
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    allowed_transitions = serializers.SerializerMethodField()
    photos = PhotoSerializer(many=True, read_only=True)

    class Meta:
        model = RecoveryProject
        fields = [
            "id",
            "space",
            "title",
            "status",
            "status_label",
            "allowed_transitions",
            "identified_on",
            "planned_on",
            "works_started_on",
            "recovered_on",
            "maintained_on",
            "cancelled_on",
            "works_description",
            "budget",
            "spent",
            "currency",
            "funding_source",
            "partners",
            "notes",
            "evidence_waiver",
            "photos",
            "is_demo",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["status", "evidence_waiver", "is_demo", "created_at", "updated_at"]
        extra_kwargs = {"identified_on": {"required": False}}

    def get_allowed_transitions(self, project) -> list[str]:
        return list(projects.allowed_transitions(project.status))

    def validate(self, attrs):
        if self.instance is None:
            # A new project is "identified": the later steps' dates come with their
            # transitions (create_project takes none of them).
            later = [
                field
                for status, field in STEP_DATE_FIELD.items()
                if status != ProjectStatus.IDENTIFIED and field in attrs
            ]
            if later:
                raise serializers.ValidationError(
                    {
                        field: ["Recorded by the transition to that step (POST .../transition/)."]
                        for field in later
                    }
                )
        return attrs


class TransitionSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=ProjectStatus.choices)
    date = serializers.DateField(required=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=1000)
    evidence_waiver = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=1000,
        help_text="Program staff only: why a recovery is published without an audit since the "
        "works started or an 'after' photo.",
    )


class ActivitySerializer(serializers.ModelSerializer):
    space = ScopedPrimaryKeyField(editable_queryset=_editable_spaces)
    project = ScopedPrimaryKeyField(
        editable_queryset=_editable_projects, required=False, allow_null=True
    )
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)

    class Meta:
        model = Activity
        fields = [
            "id",
            "space",
            "project",
            "date",
            "kind",
            "kind_label",
            "title",
            "organizer",
            "participants",
            "children",
            "youth",
            "adults",
            "older_adults",
            "notes",
            "is_demo",
            "created_at",
        ]
        read_only_fields = ["is_demo", "created_at"]
        # The services apply the rule with a message naming the field.
        validators = []


class PartnerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Partner
        fields = ["id", "name", "kind"]
        extra_kwargs = {"name": {"validators": []}}


class ChangeRecordSerializer(serializers.ModelSerializer):
    action_label = serializers.CharField(source="get_action_display", read_only=True)

    class Meta:
        model = ChangeRecord
        fields = [
            "id",
            "at",
            "username",
            "action",
            "action_label",
            "object_type",
            "object_id",
            "object_repr",
            "changes",
        ]
        read_only_fields = fields
