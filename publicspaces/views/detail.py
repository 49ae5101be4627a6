"""A space's page: its details, shape, audit, recovery projects step by step with their
photos, activities and history, each with its form for those who may edit. The forms post
to the views of their family (spaces, projects, photos, activities), which go through
``submit``: a refusal renders this page again with the form's errors."""

from __future__ import annotations

import json

from django.contrib import messages
from django.db.models import Prefetch
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from publicspaces import selectors
from publicspaces.forms import (
    ActivityForm,
    AuditForm,
    GeometryForm,
    PhotoForm,
    ProjectForm,
    SpaceForm,
    TransitionForm,
)
from publicspaces.geometry import geometry_as_geojson
from publicspaces.history import history_rows
from publicspaces.layers import (
    CONDITION_COLOURS,
    base_map_config,
    district_outlines,
    space_map_labels,
)
from publicspaces.models import (
    OPEN_STATUSES,
    ProjectPhoto,
    ProjectStatus,
    PublicSpace,
    RecoveryProject,
)
from publicspaces.services.common import region_today
from publicspaces.services.projects import (
    STEP_DATE_FIELD,
    STEP_PATH,
    allowed_transitions,
    missing_evidence,
)
from publicspaces.services.spaces import AUDIT_ITEMS
from publicspaces.views.common import detail_url, service_call, staff_page, visible_space


def _step(status: str, date, current: bool) -> dict:
    label = ProjectStatus(status).label
    return {"status": status, "label": label, "date": date, "current": current, "done": True}


def _steps(project: RecoveryProject) -> list[dict]:
    steps = []
    for status in STEP_PATH:  # cancelled is shown apart
        date = getattr(project, STEP_DATE_FIELD[status])
        step = _step(status, date, current=project.status == status)
        steps.append({**step, "done": date is not None})
    if project.status == ProjectStatus.CANCELLED:
        steps.append(_step(ProjectStatus.CANCELLED, project.cancelled_on, current=True))
    return steps


def _project_blocks(
    space: PublicSpace, can_edit: bool, bound: dict, may_waive: bool = False
) -> list[dict]:
    """Each project, newest first, with its steps, the transitions allowed from its status,
    what it still needs before "recovered" puts the space on the public map, and its
    photos; ``bound`` maps (form kind, project id) to a form that failed."""
    projects = space.projects.prefetch_related(
        "partners",
        Prefetch("photos", ProjectPhoto.objects.order_by(selectors.STAGE_ORDER, "id")),
    ).order_by("-identified_on", "-id")
    blocks = []
    for project in projects:
        allowed = allowed_transitions(project.status)
        transition_form = bound.get(("transition", project.pk)) or TransitionForm(
            prefix=f"t{project.pk}"
        )
        photo_form = bound.get(("photo", project.pk)) or PhotoForm(prefix=f"ph{project.pk}")
        blocks.append(
            {
                "project": project,
                "steps": _steps(project),
                "transitions": [
                    {"value": s, "label": ProjectStatus(s).label, "cancel": s == "cancelled"}
                    for s in allowed
                ]
                if can_edit
                else [],
                "transition_form": transition_form,
                "missing_evidence": missing_evidence(project, space)
                if can_edit and ProjectStatus.RECOVERED in allowed
                else [],
                "may_waive": may_waive,
                "photo_form": photo_form if can_edit else None,
                "photos": project.photos.all(),
            }
        )
    return blocks


# Where on the space's page each refused form is shown.
_FORM_ANCHORS = {
    "space_form": "details",
    "geometry_form": "shape",
    "audit_form": "audit",
    "project_form": "projects",
    "activity_form": "activities",
}


def _page_url(space: PublicSpace, bound: dict) -> str:
    """The space page's own URL, at the refused form: a refused POST is re-rendered under
    the form's URL, and the page's script puts this one in the address bar so that a
    reload reads the page instead of sending the form again."""
    per_project = bound.get("per_project") or {}
    if per_project:
        _kind, project_id = next(iter(per_project))
        return detail_url(space, f"project-{project_id}")
    anchor = next((a for key, a in _FORM_ANCHORS.items() if bound.get(key)), "")
    return detail_url(space, anchor)


def detail_page(request, space: PublicSpace, status: int = 200, **bound):
    """The space's page; ``bound`` holds the form that failed, to show its errors."""
    can_edit = request.space_scope.may_edit_district(space.district_id)
    space = (
        selectors.with_counts(PublicSpace.objects.filter(pk=space.pk))
        .select_related("region", "district", "neighborhood")
        .get()
    )
    has_open = space.projects.filter(status__in=OPEN_STATUSES).exists()
    initial_space = {
        f: getattr(space, f) for f in ("name", "kind", "address", "condition", "notes")
    }
    audit_initial = {k: str(v) for k, v in (space.audit or {}).items()}
    audit_initial["audited_on"] = space.audited_on
    geometry_form = bound.get("geometry_form") or GeometryForm(
        initial={"geometry": json.dumps(geometry_as_geojson(space.geom)), "version": space.version}
    )
    config = {
        **base_map_config(),
        "districtOutline": district_outlines([space.district_id]),
        "space": {
            "id": space.pk,
            "condition": space.condition,
            "geometry": geometry_as_geojson(space.geom),
        },
        "canEdit": can_edit,
        "drawnGeometry": geometry_form.data.get("geometry") if geometry_form.is_bound else "",
    }
    context = {
        "space": space,
        "page_url": _page_url(space, bound),
        "can_edit": can_edit,
        "colour": CONDITION_COLOURS.get(space.condition, "#555"),
        "space_form": bound.get("space_form")
        or SpaceForm(initial=initial_space, current_condition=space.condition),
        "geometry_form": geometry_form,
        "audit_form": bound.get("audit_form") or AuditForm(initial=audit_initial),
        "audit_items": AUDIT_ITEMS,
        "project_form": bound.get("project_form") or (None if has_open else ProjectForm()),
        "projects": _project_blocks(
            space,
            can_edit,
            bound.get("per_project") or {},
            may_waive=can_edit and request.space_scope.edit_all,
        ),
        "activity_form": bound.get("activity_form")
        or ActivityForm(initial={"date": region_today(space.region)}),
        "activities": space.activities.select_related("project")[:100],
        "history": history_rows(space),
        "map_config": config,
        "map_labels": space_map_labels(),
    }
    return render(request, "publicspaces/space_detail.html", context, status=status)


def submit(
    request,
    space: PublicSpace,
    form,
    call,
    *,
    slot: str | tuple[str, int],
    saved,
    anchor: str = "",
    field_map=None,
):
    """The POST of one of the page's forms. When ``form`` is valid, ``call`` (a service)
    runs; done, the message ``saved`` (a text, or a function giving it) is shown and the
    browser goes to the space's page at ``anchor``; refused (the form's errors, or the
    service's messages mapped by ``field_map``), the page is rendered again (HTTP 400) with
    the form in its ``slot``: a ``detail_page`` keyword, or (kind, project id) for a
    project's own forms."""
    if form.is_valid() and service_call(form, call, field_map):
        messages.success(request, saved() if callable(saved) else saved)
        return redirect(detail_url(space, anchor))
    bound = {"per_project": {slot: form}} if isinstance(slot, tuple) else {slot: form}
    return detail_page(request, space, status=400, **bound)


@require_GET
@staff_page
def space_detail(request, pk: int):
    return detail_page(request, visible_space(request, pk))
