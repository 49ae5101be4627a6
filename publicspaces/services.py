"""Writes for public spaces: every change goes through here.

Each function is atomic, keyword-only, checks the caller's scope (``user=None`` is the
system itself: imports and the demo), refuses bad input with a ``ValidationError`` whose
``message_dict`` names the field, and writes a ``ChangeRecord`` for the space's history.

Scope rule for municipal staff: a space is theirs when its district (assigned
spatially, never chosen) is their district, and they may save a geometry only if it is
covered by their district, allowing ``PUBLICSPACES_SCOPE_TOLERANCE_M`` metres past the
border (measured in the region's UTM zone) for drawing and GPS imprecision. A geometry
reaching further out is refused, and the space keeps its old one. Objects out of scope
raise ``OutOfScope``: the API and the admin answer 404, as if they did not exist.
"""

from __future__ import annotations

import datetime as dt
import decimal
import zoneinfo
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.contrib.gis.geos import GEOSGeometry
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Model
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from geo.conf import STORAGE_SRID
from neighborhoods import locate as areas
from neighborhoods.models import District, Neighborhood, Region
from publicspaces.geometry import check_kind_geometry, geometry_as_geojson
from publicspaces.models import (
    OPEN_STATUSES,
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
from publicspaces.photos import clean_photo
from publicspaces.scope import SpaceScope, scope_for


class OutOfScope(ObjectDoesNotExist):
    """The object is outside what the user may see or edit: treat it as not found."""


class NotAllowed(Exception):
    """The user may not do this at all (e.g. a planner creating a space): HTTP 403."""


class VersionConflict(Exception):
    """Someone saved the object since the caller read it: HTTP 409."""


# --- audit checklist --------------------------------------------------------------------

# Each item is rated 0 (bad), 1 (fair) or 2 (good); for "incivility", 2 means no signs of
# incivility (graffiti, litter dumps, drinking, damage).
AUDIT_ITEMS = ("lighting", "cleanliness", "furniture", "vegetation", "visibility", "incivility")
AUDIT_MAX = 2
AUDIT_LABELS = {
    "lighting": gettext_lazy("Lighting"),
    "cleanliness": gettext_lazy("Cleanliness"),
    "furniture": gettext_lazy("Furniture (benches, bins, games)"),
    "vegetation": gettext_lazy("Vegetation"),
    "visibility": gettext_lazy("Visibility (open sight lines)"),
    "incivility": gettext_lazy("Signs of incivility (graffiti, dumping, damage)"),
}


def compute_condition_score(answers: Mapping[str, Any]) -> int:
    """0-100 from a complete audit checklist; raises ValidationError on a bad one."""
    errors = []
    unknown = sorted(set(answers) - set(AUDIT_ITEMS))
    if unknown:
        errors.append(_("Unknown checklist items: %(items)s.") % {"items": ", ".join(unknown)})
    missing = [item for item in AUDIT_ITEMS if item not in answers]
    if missing:
        errors.append(
            _("Rate every item; missing: %(items)s.")
            % {"items": ", ".join(str(AUDIT_LABELS[item]) for item in missing)}
        )
    for item in AUDIT_ITEMS:
        value = answers.get(item)
        if item in answers and (
            isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= AUDIT_MAX
        ):
            errors.append(
                _("%(item)s must be 0, 1 or 2 (bad, fair, good).") % {"item": AUDIT_LABELS[item]}
            )
    if errors:
        raise ValidationError({"audit": errors})
    total = sum(answers[item] for item in AUDIT_ITEMS)
    return round(100 * total / (AUDIT_MAX * len(AUDIT_ITEMS)))


# --- helpers ----------------------------------------------------------------------------


def _actor(user):
    return user if user is not None and user.is_authenticated else None


def _json_value(value):
    if isinstance(value, GEOSGeometry):
        return geometry_as_geojson(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, Model):
        return value.pk
    return value


def _snapshot(obj: Model, fields: Iterable[str]) -> dict:
    return {name: _json_value(getattr(obj, name)) for name in fields}


def _diff(before: Mapping, after: Mapping) -> dict:
    return {k: [before.get(k), after[k]] for k in after if before.get(k) != after[k]}


def _record(
    *,
    user,
    space: PublicSpace | None,
    obj: Model,
    action: str,
    changes: Mapping | None = None,
) -> ChangeRecord:
    actor = _actor(user)
    return ChangeRecord.objects.create(
        space=space,
        object_type=obj._meta.model_name,
        object_id=obj.pk,
        object_repr=str(obj)[:300],
        action=action,
        changes=dict(changes or {}),
        user=actor,
        username=actor.get_username() if actor else "",
    )


def _scope(user, within: SpaceScope | None) -> SpaceScope:
    if within is not None:
        if user is not None:
            raise ValueError("within= narrows system callers only; users have their own scope")
        return within
    return scope_for(user)


def _require_edit(scope: SpaceScope, space: PublicSpace) -> None:
    if not scope.may_edit_district(space.district_id):
        raise OutOfScope(_("No such public space."))


def _refuse_unknown(changes: Mapping, allowed: Iterable[str]) -> None:
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise ValidationError({name: [_("This field cannot be changed here.")] for name in unknown})


def _full_clean(obj: Model, exclude: Iterable[str] = ()) -> None:
    # Geometry checks run in services and the DB; Django cannot evaluate them in Python.
    obj.full_clean(exclude=list(exclude), validate_constraints=False)


def _constraint_messages() -> dict[str, str]:
    """What a user is told when a row breaks a constraint the checks before saving did not
    catch (most often a concurrent request); never the database's own text."""
    return {
        "recoveryproject_one_open_per_space": _(
            "This space already has a recovery project that is not finished."
        ),
        "publicspace_external_id_unique": _("Another space already has this external id."),
        "publicspace_geom_valid": _("The shape is not valid (it crosses itself?)."),
        "publicspace_geom_type": _("The shape does not fit the kind of space."),
    }


def _save(obj: Model) -> None:
    """Saves, turning a constraint the checks above did not catch into a ValidationError."""
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError as exc:
        rule = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) or ""
        message = _constraint_messages().get(rule) or _(
            "The data break a rule of the database (%(rule)s)."
        ) % {"rule": rule or "?"}
        raise ValidationError(message) from None


def region_today(region: Region) -> dt.date:
    """Today's date where the space is (the step dates are local dates)."""
    try:
        zone = zoneinfo.ZoneInfo(region.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = dt.UTC
    return timezone.now().astimezone(zone).date()


def _refuse_future(values: Mapping[str, dt.date | None], region: Region) -> None:
    """Audits, photos and activities record what happened: none is dated after today
    (in the region), which would also put it ahead of everything on the maps."""
    today = region_today(region)
    future = [name for name, value in values.items() if value is not None and value > today]
    if future:
        raise ValidationError({name: [_("This date is in the future.")] for name in future})


# --- location and the municipal rule ------------------------------------------------------


def locate(
    *, geom: GEOSGeometry, scope: SpaceScope
) -> tuple[Region, District, Neighborhood | None]:
    """Region, district and neighborhood of a geometry (by the point on its surface), under
    the municipal rule; ValidationError({"geom": ...}) when it is out of bounds."""
    point = geom.point_on_surface
    if scope.edit_all:
        region = areas.region_covering(point)
        district = areas.district_for_geometry(region=region, geom=geom) if region else None
        if district is None:
            raise ValidationError({"geom": [_("The geometry lies outside every loaded district.")]})
    elif scope.district_id is not None:
        district = District.objects.select_related("region").get(pk=scope.district_id)
        tolerance = settings.PUBLICSPACES_SCOPE_TOLERANCE_M
        if not areas.covered_by_district(geom=geom, district=district, tolerance_m=tolerance):
            raise ValidationError(
                {
                    "geom": [
                        _(
                            "The geometry must lie inside your district, %(district)s: "
                            "part of it is outside (more than %(metres)s m past the border)."
                        )
                        % {"district": district.name, "metres": f"{tolerance:g}"}
                    ]
                }
            )
        region = district.region
    else:
        raise NotAllowed(_("You may not record public spaces."))
    return region, district, areas.neighborhood_covering(region=region, point=point)


# --- spaces -------------------------------------------------------------------------------

SPACE_FIELDS = (
    "name",
    "kind",
    "geom",
    "address",
    "responsible_municipality",
    "condition",
    "notes",
)
_SPACE_HISTORY_FIELDS = (*SPACE_FIELDS, "district", "neighborhood")


def _place(space: PublicSpace, scope: SpaceScope) -> None:
    if space.geom.srid != STORAGE_SRID:
        # Stored in WGS84; the scope checks compare with WGS84 district outlines.
        space.geom = space.geom.transform(STORAGE_SRID, clone=True)
    space.region, space.district, space.neighborhood = locate(geom=space.geom, scope=scope)
    if not space.responsible_municipality:
        space.responsible_municipality = space.district.name


@transaction.atomic
def create_space(
    *,
    user,
    name: str,
    kind: str,
    geom: GEOSGeometry,
    address: str = "",
    responsible_municipality: str = "",
    condition: str = Condition.DEGRADED,
    notes: str = "",
    audit: Mapping[str, int] | None = None,
    audited_on: dt.date | None = None,
    external_id: str = "",
    is_demo: bool = False,
    within: SpaceScope | None = None,
) -> PublicSpace:
    """Creates a space; its region, district and neighborhood are found from ``geom``.

    ``within`` narrows a system caller (``user=None``) to one district's rule, e.g.
    ``SpaceScope(district_id=...)`` for the importer's ``--district``."""
    scope = _scope(user, within)
    if not scope.can_edit:
        raise NotAllowed(_("You may not record public spaces."))
    check_kind_geometry(kind, geom)
    space = PublicSpace(
        name=name,
        kind=kind,
        geom=geom,
        address=address,
        responsible_municipality=responsible_municipality,
        condition=condition,
        notes=notes,
        external_id=external_id,
        is_demo=is_demo,
        created_by=_actor(user),
    )
    if audit is not None:
        space.audit = dict(audit)
        space.condition_score = compute_condition_score(audit)
        space.audited_on = audited_on
    _place(space, scope)
    _refuse_future({"audited_on": space.audited_on}, space.region)
    _full_clean(space, exclude=["region", "district"])
    _save(space)
    _record(
        user=user,
        space=space,
        obj=space,
        action=ChangeRecord.Action.CREATED,
        changes=_snapshot(space, _SPACE_HISTORY_FIELDS),
    )
    return space


@transaction.atomic
def update_space(
    *,
    user,
    space: PublicSpace,
    changes: Mapping[str, Any],
    expected_version: int | None = None,
    within: SpaceScope | None = None,
) -> PublicSpace:
    """Changes the fields in ``changes`` (any of SPACE_FIELDS). A new geometry is placed
    again (district, neighborhood) under the municipal rule. ``within``: see create_space."""
    scope = _scope(user, within)
    _refuse_unknown(changes, SPACE_FIELDS)
    # Lock the row: two saves of one space never interleave.
    current = PublicSpace.objects.select_for_update().get(pk=space.pk)
    _require_edit(scope, current)
    if expected_version is not None and expected_version != current.version:
        raise VersionConflict(
            _("This space was changed by someone else (version %(now)s, you had %(yours)s).")
            % {"now": current.version, "yours": expected_version}
        )
    before = _snapshot(current, _SPACE_HISTORY_FIELDS)
    for name, value in changes.items():
        setattr(current, name, value)
    check_kind_geometry(current.kind, current.geom)
    if "geom" in changes:
        _place(current, scope)
    _full_clean(current, exclude=["region", "district"])
    after = _snapshot(current, _SPACE_HISTORY_FIELDS)
    diff = _diff(before, after)
    if not diff:
        return current
    current.version = F("version") + 1
    _save(current)
    current.refresh_from_db()
    _record(user=user, space=current, obj=current, action=ChangeRecord.Action.UPDATED, changes=diff)
    return current


@transaction.atomic
def record_audit(
    *,
    user,
    space: PublicSpace,
    answers: Mapping[str, int],
    audited_on: dt.date | None = None,
) -> PublicSpace:
    """Stores a complete audit checklist and the condition score computed from it."""
    scope = scope_for(user)
    current = PublicSpace.objects.select_for_update().get(pk=space.pk)
    _require_edit(scope, current)
    score = compute_condition_score(answers)
    audited_on = audited_on or region_today(current.region)
    _refuse_future({"audited_on": audited_on}, current.region)
    before = _snapshot(current, ("audit", "condition_score", "audited_on"))
    current.audit = {item: answers[item] for item in AUDIT_ITEMS}
    current.condition_score = score
    current.audited_on = audited_on
    current.version = F("version") + 1
    _save(current)
    current.refresh_from_db()
    _record(
        user=user,
        space=current,
        obj=current,
        action=ChangeRecord.Action.AUDITED,
        changes=_diff(before, _snapshot(current, ("audit", "condition_score", "audited_on"))),
    )
    return current


@transaction.atomic
def delete_space(*, user, space: PublicSpace) -> None:
    """Deletes a space with its projects, photos and activities; its history stays."""
    scope = scope_for(user)
    current = PublicSpace.objects.select_for_update().get(pk=space.pk)
    _require_edit(scope, current)
    _record(
        user=user,
        space=None,
        obj=current,
        action=ChangeRecord.Action.DELETED,
        changes=_snapshot(current, _SPACE_HISTORY_FIELDS),
    )
    photos = [p.image.name for p in ProjectPhoto.objects.filter(project__space=current)]
    current.delete()
    _delete_files_on_commit(photos)


# --- recovery projects -----------------------------------------------------------------

# Allowed moves; "cancelled" from every state that is not final (maintained, cancelled).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    ProjectStatus.IDENTIFIED: (ProjectStatus.PLANNED, ProjectStatus.CANCELLED),
    ProjectStatus.PLANNED: (ProjectStatus.IN_WORKS, ProjectStatus.CANCELLED),
    ProjectStatus.IN_WORKS: (ProjectStatus.RECOVERED, ProjectStatus.CANCELLED),
    ProjectStatus.RECOVERED: (ProjectStatus.MAINTAINED, ProjectStatus.CANCELLED),
    ProjectStatus.MAINTAINED: (),
    ProjectStatus.CANCELLED: (),
}
STEP_DATE_FIELD = {
    ProjectStatus.IDENTIFIED: "identified_on",
    ProjectStatus.PLANNED: "planned_on",
    ProjectStatus.IN_WORKS: "works_started_on",
    ProjectStatus.RECOVERED: "recovered_on",
    ProjectStatus.MAINTAINED: "maintained_on",
    ProjectStatus.CANCELLED: "cancelled_on",
}
# What the space's condition becomes when a project reaches a status.
CONDITION_FOR_STATUS = {
    ProjectStatus.IN_WORKS: Condition.IN_RECOVERY,
    ProjectStatus.RECOVERED: Condition.RECOVERED,
    ProjectStatus.MAINTAINED: Condition.MAINTAINED,
}
PROJECT_FIELDS = (
    "title",
    "works_description",
    "budget",
    "spent",
    "currency",
    "funding_source",
    "notes",
    "partners",
    # Corrections of the dates of steps already reached.
    "identified_on",
    "planned_on",
    "works_started_on",
    "recovered_on",
    "maintained_on",
    "cancelled_on",
)
_PROJECT_HISTORY_FIELDS = (
    "title",
    "status",
    "works_description",
    "budget",
    "spent",
    "currency",
    "funding_source",
    "notes",
    *STEP_DATE_FIELD.values(),
)


def allowed_transitions(status: str) -> tuple[str, ...]:
    return TRANSITIONS.get(status, ())


def _project_snapshot(project: RecoveryProject) -> dict:
    data = _snapshot(project, _PROJECT_HISTORY_FIELDS)
    if project.pk:
        data["partners"] = sorted(project.partners.values_list("name", flat=True))
    return data


def _check_step_dates(project: RecoveryProject, today: dt.date) -> None:
    """Each recorded step date is not in the future nor before the previous step's."""
    errors: dict[str, list[str]] = {}
    previous: tuple[str, dt.date] | None = None
    for field in STEP_DATE_FIELD.values():
        value = getattr(project, field)
        if value is None:
            continue
        if value > today:
            errors.setdefault(field, []).append(_("This date is in the future."))
        if field != "cancelled_on" and previous is not None and value < previous[1]:
            errors.setdefault(field, []).append(
                _("This date is before the previous step (%(step)s, %(date)s).")
                % {
                    "step": RecoveryProject._meta.get_field(previous[0]).verbose_name,
                    "date": previous[1].isoformat(),
                }
            )
        if field != "cancelled_on":
            previous = (field, value)
    if project.cancelled_on and project.cancelled_on < project.identified_on:
        errors.setdefault("cancelled_on", []).append(
            _("A project cannot be cancelled before it was identified.")
        )
    # A step not reached yet has no date.
    reached = _reached_steps(project.status)
    for status, field in STEP_DATE_FIELD.items():
        if status not in reached and getattr(project, field) is not None:
            errors.setdefault(field, []).append(_("The project has not reached this step."))
    if errors:
        raise ValidationError(errors)


# A project's steps in order (a cancelled one leaves the path at any of them).
STEP_PATH = (
    ProjectStatus.IDENTIFIED,
    ProjectStatus.PLANNED,
    ProjectStatus.IN_WORKS,
    ProjectStatus.RECOVERED,
    ProjectStatus.MAINTAINED,
)


def _reached_steps(status: str) -> set[str]:
    path = list(STEP_PATH)
    if status == ProjectStatus.CANCELLED:
        # Cancelled projects keep the dates of whatever they had reached.
        return {*path, ProjectStatus.CANCELLED}
    return set(path[: path.index(status) + 1])


def _set_partners(project: RecoveryProject, partners: Iterable[Partner | int]) -> None:
    ids = [p.pk if isinstance(p, Partner) else p for p in partners]
    found = set(Partner.objects.filter(pk__in=ids).values_list("pk", flat=True))
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise ValidationError(
            {"partners": [_("Unknown partner ids: %(ids)s.") % {"ids": ", ".join(missing)}]}
        )
    project.partners.set(found)


def _check_money(project: RecoveryProject) -> None:
    errors = {}
    for field in ("budget", "spent"):
        value = getattr(project, field)
        if value is not None and value < 0:
            errors[field] = [_("An amount cannot be negative.")]
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def create_project(
    *,
    user,
    space: PublicSpace,
    title: str,
    identified_on: dt.date | None = None,
    works_description: str = "",
    budget: decimal.Decimal | None = None,
    spent: decimal.Decimal | None = None,
    currency: str = "",
    funding_source: str = "",
    partners: Iterable[Partner | int] = (),
    notes: str = "",
    is_demo: bool = False,
) -> RecoveryProject:
    """Opens a recovery project (status "identified") on a space that has no open one."""
    scope = scope_for(user)
    space = PublicSpace.objects.select_for_update().get(pk=space.pk)
    _require_edit(scope, space)
    if RecoveryProject.objects.filter(space=space, status__in=OPEN_STATUSES).exists():
        raise ValidationError(
            {"space": [_("This space already has a recovery project that is not finished.")]}
        )
    project = RecoveryProject(
        space=space,
        title=title,
        identified_on=identified_on or region_today(space.region),
        works_description=works_description,
        budget=budget,
        spent=spent,
        currency=currency.upper(),
        funding_source=funding_source,
        notes=notes,
        is_demo=is_demo,
        created_by=_actor(user),
    )
    _full_clean(project, exclude=["space"])
    _check_money(project)
    _check_step_dates(project, region_today(space.region))
    _save(project)
    if partners:
        _set_partners(project, partners)
    _record(
        user=user,
        space=space,
        obj=project,
        action=ChangeRecord.Action.CREATED,
        changes=_project_snapshot(project),
    )
    return project


@transaction.atomic
def update_project(
    *, user, project: RecoveryProject, changes: Mapping[str, Any]
) -> RecoveryProject:
    """Changes descriptive fields, amounts, partners (ids) or the dates of reached steps;
    the status changes only through ``transition_project``."""
    scope = scope_for(user)
    if "status" in changes:
        raise ValidationError(
            {"status": [_("Change the status with a transition, one step at a time.")]}
        )
    _refuse_unknown(changes, PROJECT_FIELDS)
    current = RecoveryProject.objects.select_for_update().select_related("space").get(pk=project.pk)
    _require_edit(scope, current.space)
    before = _project_snapshot(current)
    for name, value in changes.items():
        if name != "partners":
            setattr(current, name, value)
    if "currency" in changes:
        current.currency = (current.currency or "").upper()
    _full_clean(current, exclude=["space"])
    _check_money(current)
    _check_step_dates(current, region_today(current.space.region))
    _save(current)
    if "partners" in changes:
        _set_partners(current, changes["partners"] or [])
    _sync_space_recovery_date(current.space)
    diff = _diff(before, _project_snapshot(current))
    if diff:
        _record(
            user=user,
            space=current.space,
            obj=current,
            action=ChangeRecord.Action.UPDATED,
            changes=diff,
        )
    return current


def _sync_space_recovery_date(space: PublicSpace) -> None:
    """The space's recovery date is that of its latest project that was recovered."""
    latest = (
        RecoveryProject.objects.filter(
            space=space,
            status__in=[ProjectStatus.RECOVERED, ProjectStatus.MAINTAINED],
            recovered_on__isnull=False,
        )
        .order_by("-recovered_on")
        .values_list("recovered_on", flat=True)
        .first()
    )
    if space.recovered_on != latest:
        PublicSpace.objects.filter(pk=space.pk).update(recovered_on=latest)
        space.recovered_on = latest


@transaction.atomic
def transition_project(
    *,
    user,
    project: RecoveryProject,
    to_status: str,
    on: dt.date | None = None,
    note: str = "",
) -> RecoveryProject:
    """Moves a project one step (see TRANSITIONS), records the step's date (``on``,
    default today in the region) and updates the space's condition: in works -> in
    recovery, recovered -> recovered, maintained -> maintained; cancelling works in
    progress puts the space back to degraded."""
    scope = scope_for(user)
    current = RecoveryProject.objects.select_for_update().select_related("space").get(pk=project.pk)
    space = PublicSpace.objects.select_for_update().get(pk=current.space_id)
    _require_edit(scope, space)
    from_status = current.status
    if to_status not in ProjectStatus.values:
        raise ValidationError({"status": [_("Unknown status %(s)s.") % {"s": repr(to_status)}]})
    if to_status not in allowed_transitions(from_status):
        allowed = allowed_transitions(from_status)
        raise ValidationError(
            {
                "status": [
                    _(
                        "A project cannot go from %(from)s to %(to)s; from %(from)s it can go "
                        "to: %(allowed)s."
                    )
                    % {
                        "from": ProjectStatus(from_status).label,
                        "to": ProjectStatus(to_status).label,
                        "allowed": ", ".join(str(ProjectStatus(s).label) for s in allowed)
                        or _("nothing (final status)"),
                    }
                ]
            }
        )
    today = region_today(space.region)
    on = on or today
    before = _project_snapshot(current)
    current.status = to_status
    setattr(current, STEP_DATE_FIELD[to_status], on)
    if note:
        current.notes = f"{current.notes}\n{on.isoformat()}: {note}".strip()
    try:
        _check_step_dates(current, today)
    except ValidationError as exc:
        # The date given is the one to fix, whatever field name the check used.
        raise ValidationError(
            {"date": [m for ms in exc.message_dict.values() for m in ms]}
        ) from None
    _save(current)

    space_before = _snapshot(space, ("condition", "recovered_on"))
    new_condition = CONDITION_FOR_STATUS.get(to_status)
    if to_status == ProjectStatus.CANCELLED and space.condition == Condition.IN_RECOVERY:
        new_condition = Condition.DEGRADED
    if new_condition is not None and new_condition != space.condition:
        space.condition = new_condition
        PublicSpace.objects.filter(pk=space.pk).update(
            condition=new_condition, version=F("version") + 1
        )
    _sync_space_recovery_date(space)
    changes = _diff(before, _project_snapshot(current))
    space_changes = _diff(space_before, _snapshot(space, ("condition", "recovered_on")))
    if space_changes:
        changes["space"] = space_changes
    _record(
        user=user,
        space=space,
        obj=current,
        action=ChangeRecord.Action.TRANSITION,
        changes=changes,
    )
    return current


def _condition_from_projects(space: PublicSpace) -> str:
    """The condition the space's projects give it: that of its latest project (by the date
    it was identified) whose step sets one; degraded when none does."""
    status = (
        RecoveryProject.objects.filter(space=space, status__in=list(CONDITION_FOR_STATUS))
        .order_by("-identified_on", "-id")
        .values_list("status", flat=True)
        .first()
    )
    return CONDITION_FOR_STATUS[status] if status else Condition.DEGRADED


@transaction.atomic
def delete_project(*, user, project: RecoveryProject) -> None:
    """Deletes a project with its photos. When the space's condition came from this project
    (e.g. recovered by it), the condition is worked out again from the projects left (the
    latest that sets one; degraded when none does), and the recovery date follows the
    projects left. A condition set by hand since (e.g. lost again) stays. The space's
    changes are recorded with the deletion."""
    scope = scope_for(user)
    current = RecoveryProject.objects.select_related("space").get(pk=project.pk)
    space = PublicSpace.objects.select_for_update().get(pk=current.space_id)
    _require_edit(scope, space)
    record = _record(
        user=user,
        space=space,
        obj=current,
        action=ChangeRecord.Action.DELETED,
        changes=_project_snapshot(current),
    )
    space_before = _snapshot(space, ("condition", "recovered_on"))
    drove_condition = CONDITION_FOR_STATUS.get(current.status) == space.condition
    photos = list(current.photos.values_list("image", flat=True))
    current.delete()
    if drove_condition:
        condition = _condition_from_projects(space)
        if condition != space.condition:
            space.condition = condition
            PublicSpace.objects.filter(pk=space.pk).update(
                condition=condition, version=F("version") + 1
            )
    _sync_space_recovery_date(space)
    space_changes = _diff(space_before, _snapshot(space, ("condition", "recovered_on")))
    if space_changes:
        record.changes = {**record.changes, "space": space_changes}
        record.save(update_fields=["changes"])
    _delete_files_on_commit(photos)


# --- partners -----------------------------------------------------------------------------


@transaction.atomic
def get_or_create_partner(*, user, name: str, kind: str) -> Partner:
    """Partners are shared by every district: anyone who may edit spaces may add one."""
    if not scope_for(user).can_edit:
        raise NotAllowed(_("You may not record partners."))
    name = " ".join(name.split())
    existing = Partner.objects.filter(name__iexact=name).first()
    if existing is not None:
        return existing
    partner = Partner(name=name, kind=kind)
    _full_clean(partner)
    partner.save()
    return partner


# --- photos -----------------------------------------------------------------------------


def _delete_files_on_commit(names: Iterable[str]) -> None:
    names = [n for n in names if n]
    if not names:
        return

    def remove():
        storage = ProjectPhoto._meta.get_field("image").storage
        for name in names:
            storage.delete(name)

    transaction.on_commit(remove)


@transaction.atomic
def add_photo(
    *,
    user,
    project: RecoveryProject,
    image,
    stage: str,
    caption: str = "",
    taken_on: dt.date | None = None,
    is_demo: bool = False,
    storage_name: str | None = None,
) -> ProjectPhoto:
    """Validates ``image`` (an uploaded file) with Pillow and stores a re-encoded copy with
    no EXIF; refusals are ValidationError({"image": [...]}).

    ``storage_name`` (system callers only: the demo) stores the file under that fixed
    name, replacing a file already there, so that reloading the demo does not pile up
    copies of the same generated pictures."""
    if storage_name is not None and user is not None:
        raise ValueError("storage_name is for the demo (user=None) only")
    scope = scope_for(user)
    current = RecoveryProject.objects.select_related("space").get(pk=project.pk)
    _require_edit(scope, current.space)
    if stage not in ProjectPhoto.Stage.values:
        raise ValidationError({"stage": [_("Choose before, during or after.")]})
    _refuse_future({"taken_on": taken_on}, current.space.region)
    clean = clean_photo(image)
    photo = ProjectPhoto(
        project=current,
        stage=stage,
        caption=caption,
        taken_on=taken_on,
        is_demo=is_demo,
        uploaded_by=_actor(user),
    )
    _full_clean(photo, exclude=["image", "project"])
    stored = ""
    try:
        if storage_name is not None:
            storage = photo.image.storage
            storage.delete(storage_name)
            stored = storage.save(storage_name, clean.file)
            photo.image.name = stored
            photo.width, photo.height = clean.width, clean.height
        else:
            photo.image.save(clean.file.name, clean.file, save=False)
            stored = photo.image.name
        photo.save()
        _record(
            user=user,
            space=current.space,
            obj=photo,
            action=ChangeRecord.Action.CREATED,
            changes={
                "stage": stage,
                "caption": caption,
                "project": current.pk,
                "size": [photo.width, photo.height],
            },
        )
    except Exception:
        # Nothing in the database refers to the file any more: remove it.
        if stored:
            photo.image.storage.delete(stored)
        raise
    return photo


@transaction.atomic
def delete_photo(*, user, photo: ProjectPhoto) -> None:
    scope = scope_for(user)
    current = ProjectPhoto.objects.select_related("project__space").get(pk=photo.pk)
    _require_edit(scope, current.project.space)
    _record(
        user=user,
        space=current.project.space,
        obj=current,
        action=ChangeRecord.Action.DELETED,
        changes={"stage": current.stage, "caption": current.caption},
    )
    name = current.image.name
    current.delete()
    _delete_files_on_commit([name])


# --- activities -------------------------------------------------------------------------

ACTIVITY_FIELDS = (
    "project",
    "date",
    "kind",
    "title",
    "organizer",
    "participants",
    "children",
    "youth",
    "adults",
    "older_adults",
    "notes",
)
AGE_GROUPS = ("children", "youth", "adults", "older_adults")


def _check_activity(activity: Activity) -> None:
    errors: dict[str, list[str]] = {}
    counted = sum(getattr(activity, g) or 0 for g in AGE_GROUPS)
    if counted > (activity.participants or 0):
        errors["participants"] = [
            _("The age groups add up to %(counted)s, more than the %(participants)s participants.")
            % {"counted": counted, "participants": activity.participants}
        ]
    if activity.project_id is not None and activity.project.space_id != activity.space_id:
        errors["project"] = [_("This project belongs to another space.")]
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def log_activity(
    *,
    user,
    space: PublicSpace,
    date: dt.date,
    kind: str,
    participants: int = 0,
    title: str = "",
    organizer: str = "",
    project: RecoveryProject | None = None,
    children: int | None = None,
    youth: int | None = None,
    adults: int | None = None,
    older_adults: int | None = None,
    notes: str = "",
    is_demo: bool = False,
) -> Activity:
    """Logs an activity held in a space; age groups are optional and cannot add up to
    more than the participants."""
    scope = scope_for(user)
    space = PublicSpace.objects.get(pk=space.pk)
    _require_edit(scope, space)
    activity = Activity(
        space=space,
        project=project,
        date=date,
        kind=kind,
        title=title,
        organizer=organizer,
        participants=participants,
        children=children,
        youth=youth,
        adults=adults,
        older_adults=older_adults,
        notes=notes,
        is_demo=is_demo,
        created_by=_actor(user),
    )
    _full_clean(activity, exclude=["space"])
    _check_activity(activity)
    _refuse_future({"date": activity.date}, space.region)
    _save(activity)
    _record(
        user=user,
        space=space,
        obj=activity,
        action=ChangeRecord.Action.CREATED,
        changes=_snapshot(activity, ACTIVITY_FIELDS),
    )
    return activity


@transaction.atomic
def update_activity(*, user, activity: Activity, changes: Mapping[str, Any]) -> Activity:
    scope = scope_for(user)
    _refuse_unknown(changes, ACTIVITY_FIELDS)
    current = Activity.objects.select_for_update().select_related("space").get(pk=activity.pk)
    _require_edit(scope, current.space)
    before = _snapshot(current, ACTIVITY_FIELDS)
    for name, value in changes.items():
        setattr(current, name, value)
    _full_clean(current, exclude=["space"])
    _check_activity(current)
    _refuse_future({"date": current.date}, current.space.region)
    _save(current)
    diff = _diff(before, _snapshot(current, ACTIVITY_FIELDS))
    if diff:
        _record(
            user=user,
            space=current.space,
            obj=current,
            action=ChangeRecord.Action.UPDATED,
            changes=diff,
        )
    return current


@transaction.atomic
def delete_activity(*, user, activity: Activity) -> None:
    scope = scope_for(user)
    current = Activity.objects.select_related("space").get(pk=activity.pk)
    _require_edit(scope, current.space)
    _record(
        user=user,
        space=current.space,
        obj=current,
        action=ChangeRecord.Action.DELETED,
        changes=_snapshot(current, ACTIVITY_FIELDS),
    )
    current.delete()


__all__ = [
    "AUDIT_ITEMS",
    "NotAllowed",
    "OutOfScope",
    "SpaceKind",
    "VersionConflict",
    "add_photo",
    "allowed_transitions",
    "compute_condition_score",
    "create_project",
    "create_space",
    "delete_activity",
    "delete_photo",
    "delete_project",
    "delete_space",
    "get_or_create_partner",
    "locate",
    "log_activity",
    "record_audit",
    "transition_project",
    "update_activity",
    "update_project",
    "update_space",
]
