"""Writes of recovery projects: opening one, its steps (transitions and their dates), its
descriptive fields and partners, and deleting it. A project's steps set its space's
condition and recovery date.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterable, Mapping
from typing import Any

from babel.numbers import is_currency
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _

from neighborhoods.models import Region
from neighborhoods.regions import currency_for_time_zone
from publicspaces.models import (
    OPEN_STATUSES,
    ChangeRecord,
    Condition,
    Partner,
    ProjectPhoto,
    ProjectStatus,
    PublicSpace,
    RecoveryProject,
)
from publicspaces.scope import scope_for
from publicspaces.services.common import (
    NotAllowed,
    actor,
    diff,
    full_clean,
    record,
    record_deletion,
    record_update,
    refuse_unknown,
    region_today,
    require_edit,
    save,
    snapshot,
)
from publicspaces.services.photos import delete_files_on_commit

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
    "evidence_waiver",
    *STEP_DATE_FIELD.values(),
)


def allowed_transitions(status: str) -> tuple[str, ...]:
    return TRANSITIONS.get(status, ())


def _project_snapshot(project: RecoveryProject) -> dict:
    data = snapshot(project, _PROJECT_HISTORY_FIELDS)
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


def _check_money(project: RecoveryProject, region: Region) -> None:
    """Amounts are not negative and carry a currency: the project's, or else the region's
    (its own, or that of its time zone's country)."""
    errors = {}
    for field in ("budget", "spent"):
        value = getattr(project, field)
        if value is not None and value < 0:
            errors[field] = [_("An amount cannot be negative.")]
    project.currency = (project.currency or "").strip().upper()
    has_amount = project.budget is not None or project.spent is not None
    if has_amount and not project.currency:
        project.currency = region.currency or currency_for_time_zone(region.time_zone)
        if not project.currency:
            errors["currency"] = [
                _(
                    "Give the currency of the amounts (an ISO 4217 code such as PEN): "
                    "the region %(region)s has none."
                )
                % {"region": region.name}
            ]
    if project.currency and not is_currency(project.currency):
        errors["currency"] = [
            _("%(code)s is not an ISO 4217 currency code (e.g. PEN, MXN, CLP).")
            % {"code": project.currency}
        ]
    if errors:
        raise ValidationError(errors)


def missing_evidence(project: RecoveryProject, space: PublicSpace) -> list[str]:
    """What a project lacks before its space may be published as recovered: an audit of
    the space since the works started, and an "after" photo."""
    missing = []
    started = project.works_started_on or project.planned_on or project.identified_on
    if not space.audit or space.audited_on is None or space.audited_on < started:
        missing.append(
            _("an audit of the space dated %(date)s or later (the works started then)")
            % {"date": started.isoformat()}
        )
    if not project.photos.filter(stage=ProjectPhoto.Stage.AFTER).exists():
        missing.append(_("at least one “after” photo"))
    return missing


def _require_evidence(
    *, user, scope, project: RecoveryProject, space: PublicSpace, waiver: str
) -> None:
    """A recovery is published with its evidence, or with a program user's reason."""
    missing = missing_evidence(project, space)
    waiver = waiver.strip()
    if not missing:
        return
    if not waiver:
        raise ValidationError(
            {
                "status": [
                    _(
                        "Before the space shows as recovered on the public map, the "
                        "recovery needs: %(missing)s."
                    )
                    % {"missing": "; ".join(missing)}
                ]
            }
        )
    if not may_waive_evidence(user, scope):
        raise ValidationError(
            {
                "evidence_waiver": [
                    _(
                        "Only program staff may publish a recovery without an audit or an "
                        "“after” photo."
                    )
                ]
            }
        )
    project.evidence_waiver = waiver
    project.evidence_waived_by = actor(user)


def may_waive_evidence(user, scope=None) -> bool:
    """Program staff (who edit every district) and the system itself."""
    return (scope or scope_for(user)).edit_all


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
    require_edit(scope, space)
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
        currency=currency,
        funding_source=funding_source,
        notes=notes,
        is_demo=is_demo,
        created_by=actor(user),
    )
    full_clean(project, exclude=["space"])
    _check_money(project, space.region)
    _check_step_dates(project, region_today(space.region))
    save(project)
    if partners:
        _set_partners(project, partners)
    record(
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
    refuse_unknown(changes, PROJECT_FIELDS)
    current = RecoveryProject.objects.select_for_update().select_related("space").get(pk=project.pk)
    require_edit(scope, current.space)
    before = _project_snapshot(current)
    for name, value in changes.items():
        if name != "partners":
            setattr(current, name, value)
    full_clean(current, exclude=["space"])
    _check_money(current, current.space.region)
    _check_step_dates(current, region_today(current.space.region))
    save(current)
    if "partners" in changes:
        _set_partners(current, changes["partners"] or [])
    _sync_space_recovery_date(current.space)
    record_update(
        user=user, space=current.space, obj=current, before=before, after=_project_snapshot(current)
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


_SPACE_FOLLOWS = ("condition", "recovered_on")


def _space_follows(space: PublicSpace, condition: str | None) -> dict:
    """Gives the space ``condition`` (when one is given and it differs) and the recovery
    date of its projects; returns what changed, as [old, new] pairs."""
    before = snapshot(space, _SPACE_FOLLOWS)
    if condition is not None and condition != space.condition:
        space.condition = condition
        PublicSpace.objects.filter(pk=space.pk).update(
            condition=condition, version=F("version") + 1
        )
    _sync_space_recovery_date(space)
    return diff(before, snapshot(space, _SPACE_FOLLOWS))


@transaction.atomic
def transition_project(
    *,
    user,
    project: RecoveryProject,
    to_status: str,
    on: dt.date | None = None,
    note: str = "",
    evidence_waiver: str = "",
) -> RecoveryProject:
    """Moves a project one step (see TRANSITIONS), records the step's date (``on``,
    default today in the region) and updates the space's condition: in works -> in
    recovery, recovered -> recovered, maintained -> maintained; cancelling works in
    progress puts the space back to degraded.

    "Recovered" puts the space on the public map: it needs an audit since the works
    started and an "after" photo (``missing_evidence``), or a program user's reason
    (``evidence_waiver``), which is kept on the project and in its history."""
    scope = scope_for(user)
    current = RecoveryProject.objects.select_for_update().select_related("space").get(pk=project.pk)
    space = PublicSpace.objects.select_for_update().get(pk=current.space_id)
    require_edit(scope, space)
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
    if to_status == ProjectStatus.RECOVERED:
        _require_evidence(
            user=user, scope=scope, project=current, space=space, waiver=evidence_waiver
        )
    save(current)

    new_condition = CONDITION_FOR_STATUS.get(to_status)
    if to_status == ProjectStatus.CANCELLED and space.condition == Condition.IN_RECOVERY:
        new_condition = Condition.DEGRADED
    space_changes = _space_follows(space, new_condition)
    changes = diff(before, _project_snapshot(current))
    if space_changes:
        changes["space"] = space_changes
    record(
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
    require_edit(scope, space)
    deletion = record_deletion(
        user=user, space=space, obj=current, changes=_project_snapshot(current)
    )
    drove_condition = CONDITION_FOR_STATUS.get(current.status) == space.condition
    photos = list(current.photos.values_list("image", flat=True))
    current.delete()
    space_changes = _space_follows(
        space, _condition_from_projects(space) if drove_condition else None
    )
    if space_changes:
        deletion.changes = {**deletion.changes, "space": space_changes}
        deletion.save(update_fields=["changes"])
    delete_files_on_commit(photos)


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
    full_clean(partner)
    partner.save()
    return partner
