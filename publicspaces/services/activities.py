"""Writes of the activities held in a space (workshops, cleanups, fairs...), with their
participants by age group where they were counted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from publicspaces.models import Activity, PublicSpace, RecoveryProject
from publicspaces.scope import scope_for
from publicspaces.services.common import (
    actor,
    full_clean,
    record_deletion,
    record_update,
    refuse_future,
    refuse_unknown,
    require_edit,
    save,
    save_created,
    snapshot,
)

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
    require_edit(scope, space)
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
        created_by=actor(user),
    )
    full_clean(activity, exclude=["space"])
    _check_activity(activity)
    refuse_future({"date": activity.date}, space.region)
    save_created(activity, user=user, space=space, changes=snapshot(activity, ACTIVITY_FIELDS))
    return activity


@transaction.atomic
def update_activity(*, user, activity: Activity, changes: Mapping[str, Any]) -> Activity:
    scope = scope_for(user)
    refuse_unknown(changes, ACTIVITY_FIELDS)
    current = Activity.objects.select_for_update().select_related("space").get(pk=activity.pk)
    require_edit(scope, current.space)
    before = snapshot(current, ACTIVITY_FIELDS)
    for name, value in changes.items():
        setattr(current, name, value)
    full_clean(current, exclude=["space"])
    _check_activity(current)
    refuse_future({"date": current.date}, current.space.region)
    save(current)
    record_update(
        user=user,
        space=current.space,
        obj=current,
        before=before,
        after=snapshot(current, ACTIVITY_FIELDS),
    )
    return current


@transaction.atomic
def delete_activity(*, user, activity: Activity) -> None:
    scope = scope_for(user)
    current = Activity.objects.select_related("space").get(pk=activity.pk)
    require_edit(scope, current.space)
    record_deletion(
        user=user, space=current.space, obj=current, changes=snapshot(current, ACTIVITY_FIELDS)
    )
    current.delete()
