"""Writes of public spaces: recording, placing, changing, auditing and deleting a space.

Scope rule for municipal staff: a space is theirs when its district (assigned
spatially, never chosen) is their district, and they may save a geometry only if it is
covered by their district, allowing ``PUBLICSPACES_SCOPE_TOLERANCE_M`` metres past the
border (measured in the region's UTM zone) for drawing and GPS imprecision. A geometry
reaching further out is refused, and the space keeps its old one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.gis.geos import GEOSGeometry
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from geo.conf import STORAGE_SRID
from neighborhoods import locate as areas
from neighborhoods.models import District, Neighborhood, Region
from publicspaces.geometry import check_kind_geometry
from publicspaces.models import (
    PUBLIC_CONDITIONS,
    ChangeRecord,
    Condition,
    ProjectPhoto,
    PublicSpace,
)
from publicspaces.scope import SpaceScope, scope_for
from publicspaces.services.common import (
    NotAllowed,
    VersionConflict,
    actor,
    diff,
    full_clean,
    record,
    record_deletion,
    refuse_future,
    refuse_unknown,
    region_today,
    require_edit,
    resolve_scope,
    save,
    save_created,
    snapshot,
)
from publicspaces.services.photos import delete_files_on_commit

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
_AUDIT_HISTORY_FIELDS = ("audit", "condition_score", "audited_on")


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


def _refuse_published_by_hand(user, condition: str) -> None:
    """A person makes a space recovered or maintained (and so public) only through its
    recovery project, with the evidence that asks for; imports and the demo (the system,
    ``user=None``) bring conditions recorded elsewhere."""
    if user is not None and condition in PUBLIC_CONDITIONS:
        raise ValidationError(
            {
                "condition": [
                    _(
                        "A space shows as recovered or maintained on the public map only "
                        "through its recovery project, with an audit after the works and "
                        "an “after” photo."
                    )
                ]
            }
        )


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
    scope = resolve_scope(user, within)
    if not scope.can_edit:
        raise NotAllowed(_("You may not record public spaces."))
    _refuse_published_by_hand(user, condition)
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
        created_by=actor(user),
    )
    if audit is not None:
        space.audit = dict(audit)
        space.condition_score = compute_condition_score(audit)
        space.audited_on = audited_on
    _place(space, scope)
    refuse_future({"audited_on": space.audited_on}, space.region)
    full_clean(space, exclude=["region", "district"])
    save_created(space, user=user, space=space, changes=snapshot(space, _SPACE_HISTORY_FIELDS))
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
    scope = resolve_scope(user, within)
    refuse_unknown(changes, SPACE_FIELDS)
    # Lock the row: two saves of one space never interleave.
    current = PublicSpace.objects.select_for_update().get(pk=space.pk)
    require_edit(scope, current)
    if expected_version is not None and expected_version != current.version:
        raise VersionConflict(
            _("This space was changed by someone else (version %(now)s, you had %(yours)s).")
            % {"now": current.version, "yours": expected_version}
        )
    before = snapshot(current, _SPACE_HISTORY_FIELDS)
    if changes.get("condition", current.condition) != current.condition:
        _refuse_published_by_hand(user, changes["condition"])
    for name, value in changes.items():
        setattr(current, name, value)
    check_kind_geometry(current.kind, current.geom)
    if "geom" in changes:
        _place(current, scope)
    full_clean(current, exclude=["region", "district"])
    changed = diff(before, snapshot(current, _SPACE_HISTORY_FIELDS))
    if not changed:
        return current
    current.version = F("version") + 1
    save(current)
    current.refresh_from_db()
    record(
        user=user, space=current, obj=current, action=ChangeRecord.Action.UPDATED, changes=changed
    )
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
    require_edit(scope, current)
    score = compute_condition_score(answers)
    audited_on = audited_on or region_today(current.region)
    refuse_future({"audited_on": audited_on}, current.region)
    before = snapshot(current, _AUDIT_HISTORY_FIELDS)
    current.audit = {item: answers[item] for item in AUDIT_ITEMS}
    current.condition_score = score
    current.audited_on = audited_on
    current.version = F("version") + 1
    save(current)
    current.refresh_from_db()
    record(
        user=user,
        space=current,
        obj=current,
        action=ChangeRecord.Action.AUDITED,
        changes=diff(before, snapshot(current, _AUDIT_HISTORY_FIELDS)),
    )
    return current


@transaction.atomic
def delete_space(*, user, space: PublicSpace) -> None:
    """Deletes a space with its projects, photos and activities; its history stays."""
    scope = scope_for(user)
    current = PublicSpace.objects.select_for_update().get(pk=space.pk)
    require_edit(scope, current)
    record_deletion(
        user=user, space=None, obj=current, changes=snapshot(current, _SPACE_HISTORY_FIELDS)
    )
    photos = [p.image.name for p in ProjectPhoto.objects.filter(project__space=current)]
    current.delete()
    delete_files_on_commit(photos)
