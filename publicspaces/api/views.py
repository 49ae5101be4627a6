"""Public-space endpoints under /api/v1/.

Staff endpoints (spaces, projects, photos, activities, partners, history) read through the
scoped selectors, so an object of another district is a 404, and write through the
services, whose ValidationError becomes a 400 with field messages. They answer
``Cache-Control: private, no-store``. The public layer is anonymous and cacheable; the
incidents-around-recovery layer is for police planners only.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, RestrictedError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import (
    APIException,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import CACHE_CONTROL, PlannerAPIView
from common.parsers import JSONParser
from geo.api.params import map_params
from geo.geojson import GEOJSON_MEDIA_TYPE, feature_collection_response
from incidents.models import Family
from publicspaces import selectors
from publicspaces.api import serializers as s
from publicspaces.models import Condition, Partner, SpaceKind
from publicspaces.photos import upload_too_large
from publicspaces.scope import scope_for
from publicspaces.services.activities import delete_activity, log_activity, update_activity
from publicspaces.services.common import NotAllowed, VersionConflict
from publicspaces.services.photos import add_photo, delete_photo
from publicspaces.services.projects import (
    create_project,
    delete_project,
    get_or_create_partner,
    transition_project,
    update_project,
)
from publicspaces.services.spaces import create_space, delete_space, record_audit, update_space

PUBLIC_MAX_AGE = 300

GEOJSON_RESPONSE = OpenApiResponse(
    OpenApiTypes.OBJECT, description="GeoJSON FeatureCollection (application/geo+json)"
)
SPACE_FILTERS = [
    OpenApiParameter("kind", OpenApiTypes.STR, enum=SpaceKind.values),
    OpenApiParameter("condition", OpenApiTypes.STR, enum=Condition.values),
    OpenApiParameter("region", OpenApiTypes.STR, description="region code"),
    OpenApiParameter("district", OpenApiTypes.STR, description="district code"),
    OpenApiParameter("q", OpenApiTypes.STR, description="name or address contains"),
    OpenApiParameter("bbox", OpenApiTypes.STR, description="minlon,minlat,maxlon,maxlat"),
    OpenApiParameter("zoom", OpenApiTypes.INT, description="simplifies polygons for the zoom"),
]


VERSION_CHANGED = "the space changed since the version sent (someone else saved it)"


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The object was changed by someone else; reload it."
    default_code = "conflict"


@contextmanager
def service_errors():
    """Service exceptions as HTTP answers: 400 with field messages, 404, 403, 409."""
    try:
        yield
    except DjangoValidationError as exc:
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        raise ValidationError(detail) from None
    except NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    except VersionConflict as exc:
        raise Conflict(str(exc)) from None
    except ObjectDoesNotExist:
        raise NotFound() from None
    except (ProtectedError, RestrictedError) as exc:
        raise ValidationError({"detail": [str(exc.args[0])]}) from None


class CanReadSpaces(BasePermission):
    """Staff whose role reads spaces (municipal, program, planner, admin)."""

    def has_permission(self, request, view) -> bool:
        return scope_for(request.user).can_view


class StaffAPIView(APIView):
    permission_classes = [CanReadSpaces]
    parser_classes = [JSONParser]

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = CACHE_CONTROL
        return response

    def get_visible(self, queryset, pk):
        try:
            return queryset.get(pk=pk)
        except queryset.model.DoesNotExist:
            raise NotFound() from None


def _choice(params, name, choices):
    value = params.get(name, "")
    if value and value not in choices:
        raise ValidationError({name: [f"Unknown {name} {value!r}."]})
    return value


def _space_filters(params) -> selectors.SpaceFilters:
    bbox, _zoom = map_params(params)
    demo = params.get("is_demo")
    return selectors.SpaceFilters(
        kind=_choice(params, "kind", SpaceKind.values),
        condition=_choice(params, "condition", Condition.values),
        region=params.get("region", ""),
        district=params.get("district", ""),
        q=params.get("q", "")[:200],
        bbox=bbox,
        is_demo=None if demo in (None, "") else demo.lower() in ("1", "true", "yes"),
    )


# --- spaces ----------------------------------------------------------------------------------


class SpaceListView(StaffAPIView):
    @extend_schema(
        parameters=SPACE_FILTERS,
        responses={(200, GEOJSON_MEDIA_TYPE): GEOJSON_RESPONSE},
        summary="Public spaces the user may see, as GeoJSON",
        operation_id="public_spaces_list",
        tags=["public spaces"],
    )
    def get(self, request):
        filters = _space_filters(request.query_params)
        _bbox, zoom = map_params(request.query_params)
        queryset = selectors.with_counts(
            selectors.filter_spaces(selectors.spaces_visible_to(request.user), filters)
        )
        return feature_collection_response(
            queryset.order_by("id"),
            geom_field="geom",
            properties=selectors.staff_space_properties(),
            zoom=zoom,
            max_features=settings.GEOJSON_MAX_FEATURES,
        )

    @extend_schema(
        request=s.SpaceInputSerializer,
        responses={201: OpenApiTypes.OBJECT},
        summary="Record a public space (GeoJSON Feature or flat JSON with geom)",
        tags=["public spaces"],
    )
    def post(self, request):
        data = s.SpaceInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        values.pop("version", None)
        with service_errors():
            space = create_space(user=request.user, **values)
        return Response(s.SpaceFeatureSerializer(space).data, status=status.HTTP_201_CREATED)


class SpaceDetailView(StaffAPIView):
    def get_space(self, request, pk):
        return self.get_visible(selectors.spaces_visible_to(request.user), pk)

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, tags=["public spaces"])
    def get(self, request, pk):
        return Response(s.SpaceFeatureSerializer(self.get_space(request, pk)).data)

    @extend_schema(
        request=s.SpaceInputSerializer,
        responses={200: OpenApiTypes.OBJECT, 409: OpenApiResponse(description=VERSION_CHANGED)},
        tags=["public spaces"],
    )
    def patch(self, request, pk):
        space = self.get_space(request, pk)
        data = s.SpaceInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        expected = changes.pop("version", None)
        with service_errors():
            space = update_space(
                user=request.user, space=space, changes=changes, expected_version=expected
            )
        return Response(s.SpaceFeatureSerializer(space).data)

    @extend_schema(responses={204: None}, tags=["public spaces"])
    def delete(self, request, pk):
        space = self.get_space(request, pk)
        with service_errors():
            delete_space(user=request.user, space=space)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SpaceAuditView(StaffAPIView):
    @extend_schema(
        request=s.AuditSerializer, responses={200: OpenApiTypes.OBJECT}, tags=["public spaces"]
    )
    def post(self, request, pk):
        space = self.get_visible(selectors.spaces_visible_to(request.user), pk)
        data = s.AuditSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with service_errors():
            space = record_audit(
                user=request.user,
                space=space,
                answers=data.validated_data["answers"],
                audited_on=data.validated_data.get("audited_on"),
            )
        return Response(s.SpaceFeatureSerializer(space).data)


class SpaceHistoryView(StaffAPIView):
    @extend_schema(responses={200: s.ChangeRecordSerializer(many=True)}, tags=["public spaces"])
    def get(self, request, pk):
        space = self.get_visible(selectors.spaces_visible_to(request.user), pk)
        records = selectors.space_history(space)[:1000]
        return Response(s.ChangeRecordSerializer(records, many=True).data)


# --- projects --------------------------------------------------------------------------------


class ProjectListView(StaffAPIView):
    @extend_schema(
        parameters=[OpenApiParameter("space", OpenApiTypes.INT)],
        responses={200: s.ProjectSerializer(many=True)},
        tags=["public spaces"],
    )
    def get(self, request):
        queryset = selectors.projects_visible_to(request.user).prefetch_related("photos")
        space = request.query_params.get("space")
        if space:
            if not space.isdigit():
                raise ValidationError({"space": ["Must be a space id."]})
            queryset = queryset.filter(space_id=int(space))
        return Response(s.ProjectSerializer(queryset[:1000], many=True).data)

    @extend_schema(request=s.ProjectSerializer, responses={201: s.ProjectSerializer})
    def post(self, request):
        data = s.ProjectSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        with service_errors():
            project = create_project(user=request.user, **values)
        return Response(s.ProjectSerializer(project).data, status=status.HTTP_201_CREATED)


class ProjectDetailView(StaffAPIView):
    def get_project(self, request, pk):
        return self.get_visible(selectors.projects_visible_to(request.user), pk)

    @extend_schema(responses={200: s.ProjectSerializer}, tags=["public spaces"])
    def get(self, request, pk):
        return Response(s.ProjectSerializer(self.get_project(request, pk)).data)

    @extend_schema(request=s.ProjectSerializer, responses={200: s.ProjectSerializer})
    def patch(self, request, pk):
        project = self.get_project(request, pk)
        if "status" in request.data:
            raise ValidationError(
                {"status": ["Change the status with POST .../transition/, one step at a time."]}
            )
        data = s.ProjectSerializer(
            project, data=request.data, partial=True, context={"request": request}
        )
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        if "space" in changes and changes["space"].pk != project.space_id:
            raise ValidationError({"space": ["A project cannot move to another space."]})
        changes.pop("space", None)
        with service_errors():
            project = update_project(user=request.user, project=project, changes=changes)
        return Response(s.ProjectSerializer(project).data)

    @extend_schema(responses={204: None}, tags=["public spaces"])
    def delete(self, request, pk):
        project = self.get_project(request, pk)
        with service_errors():
            delete_project(user=request.user, project=project)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProjectTransitionView(StaffAPIView):
    @extend_schema(
        request=s.TransitionSerializer,
        responses={200: s.ProjectSerializer},
        summary="Move a project one step (identified → planned → in works → recovered → "
        "maintained, or cancelled)",
        tags=["public spaces"],
    )
    def post(self, request, pk):
        project = self.get_visible(selectors.projects_visible_to(request.user), pk)
        data = s.TransitionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with service_errors():
            project = transition_project(
                user=request.user,
                project=project,
                to_status=data.validated_data["status"],
                on=data.validated_data.get("date"),
                note=data.validated_data.get("note", ""),
                evidence_waiver=data.validated_data.get("evidence_waiver", ""),
            )
        return Response(s.ProjectSerializer(project).data)


class ProjectPhotoListView(StaffAPIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(responses={200: s.PhotoSerializer(many=True)}, tags=["public spaces"])
    def get(self, request, pk):
        project = self.get_visible(selectors.projects_visible_to(request.user), pk)
        return Response(s.PhotoSerializer(project.photos.all(), many=True).data)

    @extend_schema(
        request={"multipart/form-data": s.PhotoUploadSerializer},
        responses={
            201: s.PhotoSerializer,
            413: OpenApiResponse(description="larger than PUBLICSPACES_PHOTO_MAX_BYTES"),
        },
        summary="Upload a photo (JPEG, PNG or WebP; EXIF removed)",
        tags=["public spaces"],
    )
    def post(self, request, pk):
        project = self.get_visible(selectors.projects_visible_to(request.user), pk)
        if upload_too_large(request):
            # Before request.data: the body is not read, so not spooled to disk.
            limit = settings.PUBLICSPACES_PHOTO_MAX_BYTES / 1048576
            return Response(
                {"image": [f"The photo is larger than {limit:.1f} MB."]},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        data = s.PhotoUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with service_errors():
            photo = add_photo(user=request.user, project=project, **data.validated_data)
        return Response(s.PhotoSerializer(photo).data, status=status.HTTP_201_CREATED)


class PhotoDetailView(StaffAPIView):
    @extend_schema(responses={200: s.PhotoSerializer}, tags=["public spaces"])
    def get(self, request, pk):
        return Response(
            s.PhotoSerializer(self.get_visible(selectors.photos_visible_to(request.user), pk)).data
        )

    @extend_schema(responses={204: None}, tags=["public spaces"])
    def delete(self, request, pk):
        photo = self.get_visible(selectors.photos_visible_to(request.user), pk)
        with service_errors():
            delete_photo(user=request.user, photo=photo)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- activities and partners -------------------------------------------------------------


class ActivityListView(StaffAPIView):
    @extend_schema(
        parameters=[OpenApiParameter("space", OpenApiTypes.INT)],
        responses={200: s.ActivitySerializer(many=True)},
        tags=["public spaces"],
    )
    def get(self, request):
        queryset = selectors.activities_visible_to(request.user)
        space = request.query_params.get("space")
        if space:
            if not space.isdigit():
                raise ValidationError({"space": ["Must be a space id."]})
            queryset = queryset.filter(space_id=int(space))
        return Response(s.ActivitySerializer(queryset[:1000], many=True).data)

    @extend_schema(request=s.ActivitySerializer, responses={201: s.ActivitySerializer})
    def post(self, request):
        data = s.ActivitySerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        with service_errors():
            activity = log_activity(user=request.user, **data.validated_data)
        return Response(s.ActivitySerializer(activity).data, status=status.HTTP_201_CREATED)


class ActivityDetailView(StaffAPIView):
    def get_activity(self, request, pk):
        return self.get_visible(selectors.activities_visible_to(request.user), pk)

    @extend_schema(responses={200: s.ActivitySerializer}, tags=["public spaces"])
    def get(self, request, pk):
        return Response(s.ActivitySerializer(self.get_activity(request, pk)).data)

    @extend_schema(request=s.ActivitySerializer, responses={200: s.ActivitySerializer})
    def patch(self, request, pk):
        activity = self.get_activity(request, pk)
        data = s.ActivitySerializer(
            activity, data=request.data, partial=True, context={"request": request}
        )
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        if "space" in changes and changes["space"].pk != activity.space_id:
            raise ValidationError({"space": ["An activity cannot move to another space."]})
        changes.pop("space", None)
        with service_errors():
            activity = update_activity(user=request.user, activity=activity, changes=changes)
        return Response(s.ActivitySerializer(activity).data)

    @extend_schema(responses={204: None}, tags=["public spaces"])
    def delete(self, request, pk):
        activity = self.get_activity(request, pk)
        with service_errors():
            delete_activity(user=request.user, activity=activity)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PartnerListView(StaffAPIView):
    @extend_schema(responses={200: s.PartnerSerializer(many=True)}, tags=["public spaces"])
    def get(self, request):
        return Response(s.PartnerSerializer(Partner.objects.all()[:1000], many=True).data)

    @extend_schema(request=s.PartnerSerializer, responses={201: s.PartnerSerializer})
    def post(self, request):
        data = s.PartnerSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with service_errors():
            partner = get_or_create_partner(user=request.user, **data.validated_data)
        return Response(s.PartnerSerializer(partner).data, status=status.HTTP_201_CREATED)


# --- public and planner layers ---------------------------------------------------------------


class PublicSpaceLayerView(APIView):
    """Anyone: recovered and maintained spaces, with no personal data."""

    permission_classes = []
    authentication_classes = []

    @extend_schema(
        parameters=[
            OpenApiParameter("region", OpenApiTypes.STR, description="region code"),
            SPACE_FILTERS[-2],
            SPACE_FILTERS[-1],
        ],
        responses={(200, GEOJSON_MEDIA_TYPE): GEOJSON_RESPONSE},
        summary="Recovered and maintained public spaces (public map layer)",
        tags=["public spaces"],
    )
    def get(self, request):
        bbox, zoom = map_params(request.query_params)
        queryset = selectors.filter_spaces(
            selectors.public_spaces(),
            selectors.SpaceFilters(region=request.query_params.get("region", ""), bbox=bbox),
        )
        response = feature_collection_response(
            queryset.order_by("id"),
            geom_field="geom",
            properties=selectors.public_space_properties(),
            zoom=zoom,
            max_features=settings.GEOJSON_MAX_FEATURES,
        )
        response["Cache-Control"] = f"public, max-age={PUBLIC_MAX_AGE}"
        return response


def _number(params, name, *, default, minimum, maximum, integer=False):
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise ValidationError({name: ["Must be a number."]}) from None
    if not math.isfinite(value) or not minimum <= value <= maximum:
        raise ValidationError({name: [f"Must be between {minimum} and {maximum}."]})
    return value


class IncidentChangeLayerView(PlannerAPIView):
    """Planners: incidents near each recovered space before and after its recovery."""

    forbidden_message = "Only police planners may read incidents."

    @extend_schema(
        parameters=[
            OpenApiParameter("distance", OpenApiTypes.NUMBER, description="metres (10-2000)"),
            OpenApiParameter("months", OpenApiTypes.INT, description="window (1-24, default 6)"),
            OpenApiParameter("family", OpenApiTypes.STR, enum=Family.values),
            *SPACE_FILTERS,
        ],
        responses={(200, GEOJSON_MEDIA_TYPE): GEOJSON_RESPONSE},
        summary="Recovered spaces with incident counts before/after recovery (planners)",
        tags=["public spaces"],
    )
    def get(self, request):
        params = request.query_params
        distance = _number(
            params,
            "distance",
            default=selectors.DEFAULT_DISTANCE_M,
            minimum=10,
            maximum=selectors.MAX_DISTANCE_M,
        )
        months = _number(
            params,
            "months",
            default=selectors.DEFAULT_WINDOW_MONTHS,
            minimum=1,
            maximum=24,
            integer=True,
        )
        family = _choice(params, "family", Family.values)
        _bbox, zoom = map_params(params)
        queryset = selectors.spaces_with_incident_counts(
            selectors.filter_spaces(
                selectors.spaces_visible_to(request.user), _space_filters(params)
            ),
            distance_m=distance,
            months=months,
            family=family,
        )
        return feature_collection_response(
            queryset.order_by("id"),
            geom_field="geom",
            properties=selectors.incident_change_properties(distance, months),
            zoom=zoom,
            max_features=settings.GEOJSON_MAX_FEATURES,
        )
