"""Reads for public spaces: scoped lists, history, the public layer and the planner layer.

Every staff read starts from a ``*_visible_to(user)`` queryset, so a municipal user's
queries always carry their district. The public layer (``public_spaces``) and its
properties (``public_space_properties``) expose recovered and maintained spaces only, with
no personal data: no staff names, organisers, notes, captions or addresses.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Concat, JSONObject
from django.db.models.lookups import LessThanOrEqual
from django.utils import timezone

from common.db import LocalDate, MonthsAfter
from geo.geojson import BBox
from incidents import selectors as incident_selectors
from publicspaces.models import (
    PUBLIC_CONDITIONS,
    Activity,
    ChangeRecord,
    ProjectPhoto,
    ProjectStatus,
    PublicSpace,
    RecoveryProject,
)
from publicspaces.scope import scope_for

# --- scoped reads ---------------------------------------------------------------------------


def spaces_visible_to(user) -> QuerySet[PublicSpace]:
    """The spaces ``user`` may read (see publicspaces.scope)."""
    queryset = PublicSpace.objects.select_related("region", "district", "neighborhood")
    return scope_for(user).visible(queryset)


def spaces_editable_by(user) -> QuerySet[PublicSpace]:
    return scope_for(user).editable(
        PublicSpace.objects.select_related("region", "district", "neighborhood")
    )


def projects_visible_to(user) -> QuerySet[RecoveryProject]:
    queryset = RecoveryProject.objects.select_related("space", "space__district")
    return scope_for(user).visible(queryset, "space__district").prefetch_related("partners")


def photos_visible_to(user) -> QuerySet[ProjectPhoto]:
    queryset = ProjectPhoto.objects.select_related("project", "project__space")
    return scope_for(user).visible(queryset, "project__space__district")


def activities_visible_to(user) -> QuerySet[Activity]:
    queryset = Activity.objects.select_related("space", "project")
    return scope_for(user).visible(queryset, "space__district")


def get_visible_space(*, user, pk) -> PublicSpace:
    """The space, or PublicSpace.DoesNotExist when it is missing or out of scope."""
    return spaces_visible_to(user).get(pk=pk)


@dataclass(frozen=True)
class SpaceFilters:
    kind: str = ""
    condition: str = ""
    district: str = ""  # district code
    region: str = ""  # region code
    q: str = ""  # name or address contains
    bbox: BBox | None = None
    is_demo: bool | None = None


def filter_spaces(queryset: QuerySet[PublicSpace], filters: SpaceFilters) -> QuerySet:
    """The list filters of the municipal page, its CSV export and the API."""
    if filters.kind:
        queryset = queryset.filter(kind=filters.kind)
    if filters.condition:
        queryset = queryset.filter(condition=filters.condition)
    if filters.region:
        queryset = queryset.filter(region__code=filters.region)
    if filters.district:
        queryset = queryset.filter(district__code=filters.district)
    if filters.q:
        queryset = queryset.filter(Q(name__icontains=filters.q) | Q(address__icontains=filters.q))
    if filters.bbox is not None:
        queryset = queryset.filter(geom__bboverlaps=filters.bbox.as_geometry())
    if filters.is_demo is not None:
        queryset = queryset.filter(is_demo=filters.is_demo)
    return queryset


def with_counts(queryset: QuerySet[PublicSpace]) -> QuerySet[PublicSpace]:
    """Adds ``activity_count``, ``participant_total`` and ``project_status`` (the status of
    the space's latest project, open or not)."""
    open_project = RecoveryProject.objects.filter(space=OuterRef("pk")).order_by(
        "-identified_on", "-id"
    )
    activities = Activity.objects.filter(space=OuterRef("pk")).order_by().values("space")
    return queryset.annotate(
        activity_count=Coalesce(
            Subquery(activities.annotate(c=Count("id")).values("c")[:1]),
            0,
            output_field=IntegerField(),
        ),
        participant_total=Coalesce(
            Subquery(activities.annotate(s=Sum("participants")).values("s")[:1]),
            0,
            output_field=IntegerField(),
        ),
        project_status=Subquery(open_project.values("status")[:1]),
        project_id=Subquery(open_project.values("id")[:1]),
    )


def staff_space_properties() -> dict:
    """GeoJSON properties of the staff map (municipal page, API list)."""
    return {
        "id": "id",
        "name": "name",
        "kind": "kind",
        "condition": "condition",
        "condition_score": "condition_score",
        "address": "address",
        "region": F("region__code"),
        "district": F("district__code"),
        "district_name": F("district__name"),
        "neighborhood": F("neighborhood__code"),
        "neighborhood_name": F("neighborhood__name"),
        "responsible_municipality": "responsible_municipality",
        "recovered_on": "recovered_on",
        "project_id": "project_id",
        "project_status": "project_status",
        "activity_count": "activity_count",
        "is_demo": "is_demo",
        "version": "version",
        "updated_at": "updated_at",
    }


def space_history(space: PublicSpace) -> QuerySet[ChangeRecord]:
    """Every change to the space and to its projects, photos and activities, newest first.
    Scope is the caller's business: fetch ``space`` through ``get_visible_space``."""
    return ChangeRecord.objects.filter(
        Q(space=space) | Q(object_type="publicspace", object_id=space.pk)
    ).order_by("-at", "-id")


# --- public layer -------------------------------------------------------------------------


# Before, during, after: the order a neighbour reads the story in.
STAGE_ORDER = Case(
    When(stage=ProjectPhoto.Stage.BEFORE, then=Value(0)),
    When(stage=ProjectPhoto.Stage.DURING, then=Value(1)),
    default=Value(2),
)


def public_spaces() -> QuerySet[PublicSpace]:
    """Recovered and maintained spaces, for anyone (the public map)."""
    return PublicSpace.objects.filter(condition__in=PUBLIC_CONDITIONS)


# Projects whose photos are published: a finished recovery. Photos of a project still
# identified, planned or in works (e.g. a second stage on a recovered space) are working
# material nobody has decided to publish yet; cancelled projects are not shown at all.
PUBLIC_PHOTO_PROJECT_STATUSES = (ProjectStatus.RECOVERED, ProjectStatus.MAINTAINED)


def public_photos() -> QuerySet[ProjectPhoto]:
    """The photos anyone may see: those the public layer lists (its spaces, finished
    projects). The photo file view must use the same rule (``photo_is_public``)."""
    return ProjectPhoto.objects.filter(
        project__status__in=PUBLIC_PHOTO_PROJECT_STATUSES,
        project__space__condition__in=PUBLIC_CONDITIONS,
    )


def photo_is_public(photo: ProjectPhoto) -> bool:
    return public_photos().filter(pk=photo.pk).exists()


def public_space_properties() -> dict:
    """The public layer's properties, built in PostgreSQL. Only what a neighbour may
    read: no ids of people, no organiser, notes, captions or address."""
    photos = (
        public_photos()
        .filter(project__space=OuterRef("pk"))
        .order_by(STAGE_ORDER, "id")
        .values(
            json=JSONObject(
                url=Concat(Value(settings.MEDIA_URL), F("image")),
                stage=F("stage"),
                width=F("width"),
                height=F("height"),
            )
        )
    )
    latest = RecoveryProject.objects.filter(
        space=OuterRef("pk"), status__in=[ProjectStatus.RECOVERED, ProjectStatus.MAINTAINED]
    ).order_by("-recovered_on", "-id")
    activities = Activity.objects.filter(space=OuterRef("pk")).order_by().values("space")
    return {
        "name": "name",
        "kind": "kind",
        "condition": "condition",
        "district": F("district__name"),
        "neighborhood": F("neighborhood__name"),
        "recovered_on": "recovered_on",
        "works_started_on": Subquery(latest.values("works_started_on")[:1]),
        "maintained_on": Subquery(latest.values("maintained_on")[:1]),
        "activity_count": Coalesce(
            Subquery(activities.annotate(c=Count("id")).values("c")[:1]),
            0,
            output_field=IntegerField(),
        ),
        "participant_total": Coalesce(
            Subquery(activities.annotate(s=Sum("participants")).values("s")[:1]),
            0,
            output_field=IntegerField(),
        ),
        "photos": ArraySubquery(photos),
        "is_demo": "is_demo",
    }


# --- planner layer --------------------------------------------------------------------------

DEFAULT_DISTANCE_M = 200
MAX_DISTANCE_M = 2000
DEFAULT_WINDOW_MONTHS = 6


def spaces_with_incident_counts(
    queryset: QuerySet[PublicSpace],
    *,
    distance_m: float = DEFAULT_DISTANCE_M,
    months: int = DEFAULT_WINDOW_MONTHS,
    family: str = "",
) -> QuerySet[PublicSpace]:
    """Recovered spaces (those with a recovery date) annotated with ``incidents_before``
    and ``incidents_after``: incidents (by their start time) within ``distance_m`` metres
    in the ``months`` before the recovery date and the ``months`` from it on, plus
    ``after_complete`` (whether that later window has fully passed).

    Planners only: the counts come from the raw incident table, sensitive categories
    included, and a caller can vary the distance and window freely, so small counts
    (and their differences) can point at single incidents near a space. No minimum-count
    suppression is applied because the only readers (police planners, superusers) may
    read those incidents' points anyway. Before showing these counts to anyone else
    (municipal staff, the public), apply the reliability plan's rules first: fixed
    parameters, sensitive categories dropped, counts below k suppressed (B1 items 2-5)."""

    def count(months_from: int, months_to: int):
        return incident_selectors.count_near(
            geom=OuterRef("geom"),
            metric_srid=OuterRef("region__metric_srid"),
            time_zone=OuterRef("region__time_zone"),
            day=OuterRef("recovered_on"),
            months_from=months_from,
            months_to=months_to,
            distance_m=distance_m,
            family=family,
        )

    # "Today" is the region's date (a space's dates are local dates), not the server's:
    # the instant comes from Python so that one query sees one moment.
    today = LocalDate(Value(timezone.now()), F("region__time_zone"))
    return queryset.filter(recovered_on__isnull=False).annotate(
        incidents_before=count(-months, 0),
        incidents_after=count(0, months),
        after_complete=LessThanOrEqual(MonthsAfter(F("recovered_on"), Value(months)), today),
    )


def incident_change_properties(distance_m: float, months: int) -> dict:
    return {
        "id": "id",
        "name": "name",
        "kind": "kind",
        "condition": "condition",
        "district": F("district__code"),
        "district_name": F("district__name"),
        "recovered_on": "recovered_on",
        "incidents_before": "incidents_before",
        "incidents_after": "incidents_after",
        "after_complete": "after_complete",
        "distance_m": Value(distance_m),
        "window_months": Value(months),
        "is_demo": "is_demo",
    }
