"""What every write for public spaces shares: the errors, the caller's scope, saving and the
change history.

Each service is atomic, keyword-only, checks the caller's scope (``user=None`` is the system
itself: imports and the demo), refuses bad input with a ``ValidationError`` whose
``message_dict`` names the field, and writes a ``ChangeRecord`` for the space's history.
Objects out of scope raise ``OutOfScope``: the API and the admin answer 404, as if they did
not exist.
"""

from __future__ import annotations

import datetime as dt
import decimal
import zoneinfo
from collections.abc import Iterable, Mapping

from django.contrib.gis.geos import GEOSGeometry
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone
from django.utils.translation import gettext as _

from neighborhoods.models import Region
from publicspaces.geometry import geometry_as_geojson
from publicspaces.models import ChangeRecord, PublicSpace
from publicspaces.scope import SpaceScope, scope_for


class OutOfScope(ObjectDoesNotExist):
    """The object is outside what the user may see or edit: treat it as not found."""


class NotAllowed(Exception):
    """The user may not do this at all (e.g. a planner creating a space): HTTP 403."""


class VersionConflict(Exception):
    """Someone saved the object since the caller read it: HTTP 409."""


def actor(user):
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


def snapshot(obj: Model, fields: Iterable[str]) -> dict:
    return {name: _json_value(getattr(obj, name)) for name in fields}


def diff(before: Mapping, after: Mapping) -> dict:
    return {k: [before.get(k), after[k]] for k in after if before.get(k) != after[k]}


def record(
    *,
    user,
    space: PublicSpace | None,
    obj: Model,
    action: str,
    changes: Mapping | None = None,
) -> ChangeRecord:
    who = actor(user)
    return ChangeRecord.objects.create(
        space=space,
        object_type=obj._meta.model_name,
        object_id=obj.pk,
        object_repr=str(obj)[:300],
        action=action,
        changes=dict(changes or {}),
        user=who,
        username=who.get_username() if who else "",
    )


def save_created(obj: Model, *, user, space: PublicSpace, changes: Mapping) -> None:
    """Saves a new object (see ``save``) and records its creation with ``changes``."""
    save(obj)
    record(user=user, space=space, obj=obj, action=ChangeRecord.Action.CREATED, changes=changes)


def record_update(*, user, space: PublicSpace, obj: Model, before: Mapping, after: Mapping) -> None:
    """Records the fields that differ between the two snapshots, if any."""
    changes = diff(before, after)
    if changes:
        record(user=user, space=space, obj=obj, action=ChangeRecord.Action.UPDATED, changes=changes)


def record_deletion(
    *, user, space: PublicSpace | None, obj: Model, changes: Mapping
) -> ChangeRecord:
    """Records that ``obj`` is deleted, with what it held (``changes``); call it before the
    deletion, while ``obj`` still has its primary key."""
    return record(
        user=user, space=space, obj=obj, action=ChangeRecord.Action.DELETED, changes=changes
    )


def resolve_scope(user, within: SpaceScope | None) -> SpaceScope:
    if within is not None:
        if user is not None:
            raise ValueError("within= narrows system callers only; users have their own scope")
        return within
    return scope_for(user)


def require_edit(scope: SpaceScope, space: PublicSpace) -> None:
    if not scope.may_edit_district(space.district_id):
        raise OutOfScope(_("No such public space."))


def refuse_unknown(changes: Mapping, allowed: Iterable[str]) -> None:
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise ValidationError({name: [_("This field cannot be changed here.")] for name in unknown})


def full_clean(obj: Model, exclude: Iterable[str] = ()) -> None:
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


def save(obj: Model) -> None:
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


def refuse_future(values: Mapping[str, dt.date | None], region: Region) -> None:
    """Audits, photos and activities record what happened: none is dated after today
    (in the region), which would also put it ahead of everything on the maps."""
    today = region_today(region)
    future = [name for name, value in values.items() if value is not None and value > today]
    if future:
        raise ValidationError({name: [_("This date is in the future.")] for name in future})
