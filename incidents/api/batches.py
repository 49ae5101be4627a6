"""Incident import batches over the API: list, detail (with refused rows) and upload.

Planners (and superusers) only. An upload takes the options of ``manage.py
import_incidents`` under the same names, queues the import and answers 202 with the batch;
poll its detail until ``finished``.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import NoReverseMatch, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from common.api import IsPlanner, PrivateAPIView
from incidents.models import Family, ImportBatch, LocationQuality, RefusedRow
from incidents.profiles import PROFILES
from incidents.services.batches import (
    fail_abandoned_batches,
    is_finished,
    option_errors,
    start_web_import,
    status_label,
    upload_errors,
)

REFUSED_DEFAULT_LIMIT = 1000
REFUSED_MAX_LIMIT = 10000


# --- responses -----------------------------------------------------------------------------


class RefusedRowSerializer(serializers.ModelSerializer):
    reason = serializers.CharField(
        source="reason_text", read_only=True, help_text="why, in the active language"
    )
    reason_code = serializers.CharField(
        read_only=True, help_text="the reason's code (blank for rows refused before codes)"
    )
    reason_params = serializers.DictField(
        read_only=True, help_text="the values the reason's sentence names"
    )

    class Meta:
        model = RefusedRow
        fields = ["file_name", "row_number", "reason", "reason_code", "reason_params"]


class ImportBatchSerializer(serializers.ModelSerializer):
    source = serializers.CharField(source="source.name")
    status_label = serializers.SerializerMethodField(help_text="status in the active language")
    finished = serializers.SerializerMethodField()
    created_by = serializers.CharField(
        source="created_by.get_username", default=None, allow_null=True
    )
    url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField(help_text="the batch's page for people")
    queued_at = serializers.DateTimeField(source="started_at")

    class Meta:
        model = ImportBatch
        fields = [
            "id",
            "url",
            "page_url",
            "source",
            "status",
            "status_label",
            "finished",
            "progress",
            "created_by",
            "queued_at",
            "finished_at",
            "duration_s",
            "files",
            "options",
            "skip_bad",
            *ImportBatch.ROW_COUNTS,
            "report",
        ]

    def get_status_label(self, batch: ImportBatch) -> str:
        return status_label(batch.status)

    def get_finished(self, batch: ImportBatch) -> bool:
        return is_finished(batch)

    def get_url(self, batch: ImportBatch) -> str:
        return self._absolute(reverse("import-batch-detail", args=[batch.pk]))

    def get_page_url(self, batch: ImportBatch) -> str:
        try:
            return self._absolute(reverse("incidents:import-detail", args=[batch.pk]))
        except NoReverseMatch:  # the pages are not mounted
            return ""

    def _absolute(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class ImportBatchDetailSerializer(ImportBatchSerializer):
    refused_rows = serializers.SerializerMethodField(
        help_text="refused rows in file and row order, from refused_offset, at most "
        "refused_limit of them (rows_refused is the total)"
    )

    class Meta(ImportBatchSerializer.Meta):
        fields = [*ImportBatchSerializer.Meta.fields, "refused_rows"]

    @extend_schema_field(RefusedRowSerializer(many=True))
    def get_refused_rows(self, batch: ImportBatch) -> list:
        offset = self.context.get("refused_offset", 0)
        limit = self.context.get("refused_limit", REFUSED_DEFAULT_LIMIT)
        rows = batch.refused_rows.only(*RefusedRow.SHOWN_FIELDS)[offset : offset + limit]
        return RefusedRowSerializer(rows, many=True).data


# --- upload --------------------------------------------------------------------------------


def _optional_text(help_text: str, max_length: int = 200) -> serializers.CharField:
    """An optional text option (a column name unless told otherwise): blank or null is none."""
    return serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=max_length,
        help_text=help_text,
    )


class ImportUploadSerializer(serializers.Serializer):
    files = serializers.ListField(
        child=serializers.FileField(allow_empty_file=False),
        allow_empty=False,
        help_text="one or more .csv, .geojson, .json or .gpkg files (repeat the field)",
    )
    source = _optional_text(
        "source name, e.g. cdmx-fgj; defaults to the profile's source", max_length=80
    )
    profile = serializers.ChoiceField(
        choices=list(PROFILES), required=False, allow_blank=True, allow_null=True
    )
    lat = _optional_text("latitude column (WGS84)")
    lon = _optional_text("longitude column (WGS84)")
    x = _optional_text("projected X column (needs crs)")
    y = _optional_text("projected Y column (needs crs)")
    crs = _optional_text("CRS of x/y or of a vector file without one, e.g. EPSG:32718")
    id = _optional_text("column with the source's own id (unique per source)")
    date = _optional_text("date (or date-time) column")
    time = _optional_text("time column, when separate from the date")
    date_end = _optional_text(
        "column with the date (or date-time) a time window ends; a date alone ends with that day"
    )
    time_end = _optional_text(
        "column with the time a window ends, when separate from date_end (alone: on the "
        "start's day)"
    )
    category = _optional_text("column with the source's label")
    label = _optional_text(
        "the same source label for every row, for a file without a category column (not "
        "with category)",
        max_length=300,
    )
    timezone = _optional_text(
        "time zone of naive times, e.g. America/Lima; default: the profile's, else the time "
        "zone of the region each row falls in",
        max_length=64,
    )
    family = serializers.ChoiceField(
        choices=Family.choices, required=False, allow_blank=True, allow_null=True
    )
    location_quality = serializers.ChoiceField(
        choices=LocationQuality.choices, required=False, allow_blank=True, allow_null=True
    )
    skip_bad = serializers.BooleanField(
        default=False,
        help_text="write the good rows; keep refused ones with reasons in the batch report",
    )
    dry_run = serializers.BooleanField(default=False)

    def to_internal_value(self, data):
        # Report the options that do not work together along with the fields that do
        # not parse, rather than one round trip each.
        try:
            return super().to_internal_value(data)
        except ValidationError as exc:
            errors = dict(exc.detail)
            for field, messages in option_errors(data).items():
                errors.setdefault(field, messages)
            raise ValidationError(errors) from None

    def validate(self, attrs):
        errors = option_errors(attrs)
        if problems := upload_errors(attrs.get("files") or []):
            errors["files"] = problems
        if errors:
            raise ValidationError(errors)
        return attrs


# --- views ---------------------------------------------------------------------------------


class BatchPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


REFUSED_PARAMS = [
    OpenApiParameter(
        "refused_offset", OpenApiTypes.INT, description="first refused row to return (0)"
    ),
    OpenApiParameter(
        "refused_limit",
        OpenApiTypes.INT,
        description=f"refused rows to return ({REFUSED_DEFAULT_LIMIT}, at most "
        f"{REFUSED_MAX_LIMIT})",
    ),
]


def _refused_window(request) -> dict:
    def number(name: str, default: int, maximum: int) -> int:
        raw = request.query_params.get(name)
        if raw in (None, ""):
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ValidationError({name: ["must be a whole number"]}) from None
        if value < 0:
            raise ValidationError({name: ["must not be negative"]})
        return min(value, maximum)

    return {
        "refused_offset": number("refused_offset", 0, 10**9),
        "refused_limit": number("refused_limit", REFUSED_DEFAULT_LIMIT, REFUSED_MAX_LIMIT),
    }


# PrivateAPIView first: its finalize_response marks every answer, errors included, private.
class ImportBatchListView(PrivateAPIView, GenericAPIView):
    permission_classes = [IsPlanner]
    parser_classes = [MultiPartParser, FormParser]
    pagination_class = BatchPagination
    serializer_class = ImportBatchSerializer
    queryset = ImportBatch.objects.select_related("source", "created_by").order_by("-pk")
    filter_backends: list = []

    @extend_schema(
        summary="Incident import batches, newest first", responses=ImportBatchSerializer(many=True)
    )
    def get(self, request):
        fail_abandoned_batches()
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        summary="Upload incident files and queue their import",
        request={"multipart/form-data": ImportUploadSerializer},
        responses={202: ImportBatchDetailSerializer},
    )
    def post(self, request):
        upload = ImportUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        data = dict(upload.validated_data)
        files = data.pop("files")
        try:
            batch = start_web_import(user=request.user, uploaded_files=files, options=data)
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from None
        batch = self.get_queryset().get(pk=batch.pk)
        body = ImportBatchDetailSerializer(
            batch, context={"request": request, **_refused_window(request)}
        ).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


class ImportBatchDetailView(PrivateAPIView, GenericAPIView):
    permission_classes = [IsPlanner]
    serializer_class = ImportBatchDetailSerializer
    queryset = ImportBatch.objects.select_related("source", "created_by")
    filter_backends: list = []

    @extend_schema(summary="One import batch with its refused rows", parameters=REFUSED_PARAMS)
    def get(self, request, pk: int):
        fail_abandoned_batches()
        batch = self.get_object()
        return Response(
            ImportBatchDetailSerializer(
                batch, context={"request": request, **_refused_window(request)}
            ).data
        )
