"""The municipal pages (/municipality/): a map of the district's spaces with a form to add
one by drawing it, each space's page (details, shape, audit, recovery project step by step,
photos, activities, history), a filtered list with its CSV export, the photo files behind a
scope check, and the labels of the public and planner map layers.

Scope (publicspaces.scope): municipal staff see and edit their district only; another
district's space is a 404 on every URL. Program staff and admins see and edit all;
planners read everything and get no forms. Anyone else signed in gets 403, anonymous
visitors the login page. Every change goes through publicspaces.services; a refused one
re-renders the page with the service's messages next to the fields (HTTP 400), a
successful one redirects (POST-redirect-GET).
"""

from __future__ import annotations

import csv
import json
import mimetypes
from functools import wraps

from django.apps import apps
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import F, FloatField, Func, Prefetch, QuerySet
from django.http import (
    FileResponse,
    Http404,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from geo.geojson import feature_queryset
from incidents.api.views import csv_cell
from neighborhoods.models import District, Neighborhood
from neighborhoods.selectors import attributions
from publicspaces import photos, selectors
from publicspaces.forms import (
    ActivityForm,
    AuditForm,
    GeometryForm,
    NewSpaceForm,
    PhotoForm,
    ProjectForm,
    SpaceFilterForm,
    SpaceForm,
    TransitionForm,
    add_service_errors,
)
from publicspaces.geometry import geometry_as_geojson
from publicspaces.models import (
    OPEN_STATUSES,
    PUBLIC_CONDITIONS,
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
from publicspaces.services.activities import log_activity
from publicspaces.services.common import NotAllowed, OutOfScope, VersionConflict, region_today
from publicspaces.services.photos import add_photo
from publicspaces.services.projects import (
    STEP_DATE_FIELD,
    STEP_PATH,
    allowed_transitions,
    create_project,
    get_or_create_partner,
    transition_project,
)
from publicspaces.services.spaces import (
    AUDIT_ITEMS,
    AUDIT_LABELS,
    AUDIT_MAX,
    create_space,
    record_audit,
    update_space,
)

SPACES_PER_PAGE = 50
HISTORY_LIMIT = 200
PUBLIC_PHOTO_MAX_AGE = 300
# Condition colours shared by the municipal map, its legend and the public layer.
CONDITION_COLOURS = {
    Condition.DEGRADED: "#c0392b",
    Condition.IN_RECOVERY: "#d68910",
    Condition.RECOVERED: "#1e8449",
    Condition.MAINTAINED: "#1f618d",
    Condition.LOST_AGAIN: "#6c3483",
}
GEOM_FIELDS = {"geom": "geometry"}


# --- access ---------------------------------------------------------------------------------


def staff_page(view):
    """Signed-in users whose role reads public spaces; anyone else signed in gets 403."""

    @login_required
    @never_cache
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        request.space_scope = scope_for(request.user)
        if not request.space_scope.can_view:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


def _visible_space(request, pk: int) -> PublicSpace:
    try:
        return selectors.get_visible_space(user=request.user, pk=pk)
    except PublicSpace.DoesNotExist:
        raise Http404 from None


def _editable_space(request, pk: int) -> PublicSpace:
    """The space, 404 when out of sight, 403 for readers who may not edit (planners)."""
    space = _visible_space(request, pk)
    if not request.space_scope.may_edit_district(space.district_id):
        raise PermissionDenied
    return space


def _visible_project(request, pk: int) -> RecoveryProject:
    project = selectors.projects_visible_to(request.user).filter(pk=pk).first()
    if project is None:
        raise Http404
    if not request.space_scope.may_edit_district(project.space.district_id):
        raise PermissionDenied
    return project


def _detail_url(space_or_id, anchor: str = "") -> str:
    pk = getattr(space_or_id, "pk", space_or_id)
    url = reverse("publicspaces:detail", args=[pk])
    return f"{url}#{anchor}" if anchor else url


# --- labels and map settings ------------------------------------------------------------------


def condition_legend() -> list[dict]:
    return [
        {"value": value, "label": str(label), "colour": CONDITION_COLOURS[value]}
        for value, label in Condition.choices
    ]


def _choice_labels(choices) -> dict[str, str]:
    return {value: str(label) for value, label in choices}


def _base_map_config() -> dict:
    return {
        "tileUrl": settings.MAP_TILE_URL,
        "tileAttribution": settings.MAP_TILE_ATTRIBUTION,
        "center": settings.MAP_DEFAULT_CENTER,
        "zoom": settings.MAP_DEFAULT_ZOOM,
        "attributions": attributions(),
        "conditionColours": {str(k): v for k, v in CONDITION_COLOURS.items()},
    }


def _space_map_labels() -> dict:
    """Every string the municipal map scripts show, in the active language."""
    return {
        "zoomIn": _("Zoom in"),
        "zoomOut": _("Zoom out"),
        "loading": _("Loading the spaces…"),
        "loadError": _("The spaces could not be loaded. Try again later."),
        "noSpaces": _("No public space recorded here yet."),
        "openSpace": _("Open the space's page"),
        "demo": _("demo data"),
        "score": _("Condition score"),
        "activities": _("Activities"),
        "project": _("Project"),
        "drawHint": _("Draw the space with the tools on the map: a polygon, a line or a point."),
        "drawn": _("Shape drawn. Fill in the form and save."),
        "editing": _("Drag the vertices or the whole shape, then save."),
        "district": _("District"),
        "conditions": _choice_labels(Condition.choices),
        "kinds": _choice_labels(SpaceKind.choices),
        "statuses": _choice_labels(ProjectStatus.choices),
        # Geoman's own buttons.
        "drawPolygon": _("Draw an area, corner by corner"),
        "drawRectangle": _("Draw a rectangular area"),
        "drawLine": _("Draw a line (street-lighting stretch)"),
        "drawMarker": _("Drop a point"),
        "removeDrawn": _("Remove the drawing"),
    }


def district_outlines(district_ids) -> dict:
    """The districts' borders as a FeatureCollection, simplified in PostGIS for a
    street-level zoom (geo.geojson builds each feature's JSON text)."""
    rows = feature_queryset(
        District.objects.filter(pk__in=list(district_ids)).order_by("id"),
        geom_field="geom",
        properties={"code": "code", "name": "name"},
        zoom=15,
    )
    return {"type": "FeatureCollection", "features": [json.loads(r[0]) for r in rows]}


def _outline_config(request) -> dict:
    scope = request.space_scope
    if scope.district_id is not None and not scope.view_all:
        return {"districtOutline": district_outlines([scope.district_id])}
    return {"districtOutline": None, "districtsApi": reverse("district-geojson")}


# --- the map page and the new-space form -------------------------------------------------------


def _map_page(request, form: NewSpaceForm, status: int = 200):
    scope = request.space_scope
    config = {
        **_base_map_config(),
        **_outline_config(request),
        "api": {"spaces": reverse("publicspace-list")},
        "detailUrl": reverse("publicspaces:detail", args=[0]),
        "canEdit": scope.can_edit,
        "drawnGeometry": form.data.get("geometry") if form.is_bound else "",
    }
    district = None
    if scope.district_id is not None and not scope.view_all:
        district = District.objects.filter(pk=scope.district_id).first()
    context = {
        "nav": "map",
        "form": form,
        "can_edit": scope.can_edit,
        "district": district,
        "legend": condition_legend(),
        "map_config": config,
        "map_labels": _space_map_labels(),
    }
    return render(request, "publicspaces/space_map.html", context, status=status)


@require_GET
@staff_page
def space_map(request):
    return _map_page(request, NewSpaceForm())


@require_POST
@staff_page
def space_create(request):
    if not request.space_scope.can_edit:
        raise PermissionDenied
    form = NewSpaceForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            space = create_space(
                user=request.user,
                name=data["name"],
                kind=data["kind"],
                geom=data["geometry"],
                address=data["address"],
                condition=data["condition"],
                notes=data["notes"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc, GEOM_FIELDS)
        except NotAllowed:
            raise PermissionDenied from None
        else:
            messages.success(request, _("The space was saved."))
            return redirect(_detail_url(space))
    return _map_page(request, form, status=400)


# --- the space's page ---------------------------------------------------------------------------


def _steps(project: RecoveryProject) -> list[dict]:
    steps = []
    for status in STEP_PATH:  # cancelled is shown apart
        date = getattr(project, STEP_DATE_FIELD[status])
        steps.append(
            {
                "status": status,
                "label": ProjectStatus(status).label,
                "date": date,
                "current": project.status == status,
                "done": date is not None,
            }
        )
    if project.status == ProjectStatus.CANCELLED:
        steps.append(
            {
                "status": ProjectStatus.CANCELLED,
                "label": ProjectStatus.CANCELLED.label,
                "date": project.cancelled_on,
                "current": True,
                "done": True,
            }
        )
    return steps


def _short(value, limit: int = 80) -> str:
    text = "—" if value in (None, "") else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Records keep ids for these fields (language- and rename-neutral); the page shows names.
_NAMED_FIELDS = {
    "district": (District, "name"),
    "neighborhood": (Neighborhood, "name"),
    "project": (RecoveryProject, "title"),
    "partners": (Partner, "name"),
}


_HISTORY_EXTRA_LABELS = {"size": gettext_lazy("Size (pixels)")}


def _shape_text(value: dict) -> str:
    kind = str(value.get("type", ""))
    if kind.endswith("Point"):
        return _("a point")
    if kind.endswith("LineString"):
        return _("a line")
    return _("an area")


class _HistoryNames:
    """The names behind the ids the records of one page keep, fetched once per model."""

    def __init__(self, records):
        wanted: dict[str, set[int]] = {f: set() for f in _NAMED_FIELDS}

        def collect(field, value):
            if field not in wanted:
                return
            values = value if isinstance(value, list) else [value]
            for item in values:
                if isinstance(item, list):
                    collect(field, item)
                elif isinstance(item, int) and not isinstance(item, bool):
                    wanted[field].add(item)

        for record in records:
            for field, value in (record.changes or {}).items():
                if field == "space" and isinstance(value, dict):
                    for sub, pair in value.items():
                        collect(sub, pair)
                else:
                    collect(field, value)
        self.names = {
            field: dict(model.objects.filter(pk__in=ids).values_list("pk", attr)) if ids else {}
            for field, ids in wanted.items()
            for model, attr in [_NAMED_FIELDS[field]]
        }

    def show(self, field: str, value):
        names = self.names.get(field)
        if names is not None:
            if isinstance(value, list):
                return ", ".join(str(self.show(field, v)) for v in value) or None
            if isinstance(value, int) and not isinstance(value, bool):
                # The object was deleted since: its id is all that is left.
                return names.get(value, f"#{value}")
        return value


def _change(model, name: str, old, new, *, names: _HistoryNames, created: bool = False) -> dict:
    """A changed field as the reader's language shows it: records keep field names, choice
    codes ("kind": "park") and ids; the page shows verbose names, choice labels, names."""
    try:
        field = model._meta.get_field(name)
    except (AttributeError, FieldDoesNotExist):
        label, choices = _HISTORY_EXTRA_LABELS.get(name, name), {}
    else:
        label = capfirst(getattr(field, "verbose_name", name))
        choices = {str(k): v for k, v in field.flatchoices} if field.choices else {}
    if any(isinstance(v, dict) and "coordinates" in v for v in (old, new)):
        # A vertex list says nothing to a reader: what kind of shape, and that it changed.
        if created:
            return {"field": label, "old": None, "new": _shape_text(new)}
        return {"field": label, "old": None, "new": _("shape changed")}

    def show(value):
        if name == "audit" and isinstance(value, dict):
            value = ", ".join(
                f"{AUDIT_LABELS.get(k, k)}: {v}/{AUDIT_MAX}" for k, v in value.items()
            )
        elif name == "size" and isinstance(value, list):
            value = " × ".join(str(v) for v in value)
        elif isinstance(value, str):
            value = choices.get(value, value)
        else:
            value = names.show(name, value)
        return _short(value)

    return {"field": label, "old": None if created else show(old), "new": show(new)}


def _labels_in_every_language(choices) -> dict[str, str]:
    """Choice label (in any of the site's languages) -> code."""
    found = {}
    for language, _name in settings.LANGUAGES:
        with translation.override(language):
            found.update({str(label): value for value, label in choices})
    return found


def _record_title(record: ChangeRecord) -> str:
    """The record's title in the reader's language. Titles of activities ("Workshop
    2024-02-01") and photos ("Project — Before") were stored in the writer's language:
    their choice label is read back to its code and shown in the reader's."""
    title = record.object_repr
    changes = record.changes or {}

    def code(key, choices, stored_label):
        value = changes.get(key)
        if isinstance(value, list) and value:
            value = value[-1]
        if isinstance(value, str) and value in dict(choices):
            return value
        return _labels_in_every_language(choices).get(stored_label)

    if record.object_type == "activity" and " " in title:
        label, date = title.rsplit(" ", 1)
        kind = code("kind", Activity.Kind.choices, label)
        if kind:
            return f"{Activity.Kind(kind).label} {date}"
    elif record.object_type == "projectphoto" and " — " in title:
        project, label = title.rsplit(" — ", 1)
        stage = code("stage", ProjectPhoto.Stage.choices, label)
        if stage:
            return f"{project} — {ProjectPhoto.Stage(stage).label}"
    return title


def _history_rows(space: PublicSpace) -> list[dict]:
    models_by_type = {
        m._meta.model_name: m for m in apps.get_app_config("publicspaces").get_models()
    }
    records = list(selectors.space_history(space)[:HISTORY_LIMIT])
    names = _HistoryNames(records)
    rows = []
    for record in records:
        model = models_by_type.get(record.object_type)
        # Creations and deletions keep the saved values, not [old, new] pairs.
        snapshot = record.action in (ChangeRecord.Action.CREATED, ChangeRecord.Action.DELETED)
        changes = []
        for field, value in (record.changes or {}).items():
            if isinstance(value, list) and len(value) == 2 and not snapshot:
                changes.append(_change(model, field, value[0], value[1], names=names))
            elif isinstance(value, dict) and field == "space":
                for sub, pair in value.items():
                    if isinstance(pair, list) and len(pair) == 2:
                        changes.append(_change(PublicSpace, sub, pair[0], pair[1], names=names))
            else:
                changes.append(_change(model, field, None, value, names=names, created=True))
        # A transition moves the project's and the space's date together: say it once.
        seen, unique = set(), []
        for change in changes:
            key = (str(change["field"]), change["old"], change["new"])
            if key not in seen:
                seen.add(key)
                unique.append(change)
        rows.append({"record": record, "title": _record_title(record), "changes": unique})
    return rows


def _project_blocks(space: PublicSpace, can_edit: bool, bound: dict) -> list[dict]:
    """Each project, newest first, with its steps, the transitions allowed from its status
    and its photos; ``bound`` maps (form kind, project id) to a form that failed."""
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
        return _detail_url(space, f"project-{project_id}")
    anchor = next((a for key, a in _FORM_ANCHORS.items() if bound.get(key)), "")
    return _detail_url(space, anchor)


def _detail_page(request, space: PublicSpace, status: int = 200, **bound):
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
        **_base_map_config(),
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
        "space_form": bound.get("space_form") or SpaceForm(initial=initial_space),
        "geometry_form": geometry_form,
        "audit_form": bound.get("audit_form") or AuditForm(initial=audit_initial),
        "audit_items": AUDIT_ITEMS,
        "project_form": bound.get("project_form") or (None if has_open else ProjectForm()),
        "projects": _project_blocks(space, can_edit, bound.get("per_project") or {}),
        "activity_form": bound.get("activity_form")
        or ActivityForm(initial={"date": region_today(space.region)}),
        "activities": space.activities.select_related("project")[:100],
        "history": _history_rows(space),
        "map_config": config,
        "map_labels": _space_map_labels(),
    }
    return render(request, "publicspaces/space_detail.html", context, status=status)


@require_GET
@staff_page
def space_detail(request, pk: int):
    return _detail_page(request, _visible_space(request, pk))


def _service_call(form, call, field_map=None) -> bool:
    """Runs ``call`` (a service); on a ValidationError its messages go onto ``form``."""
    try:
        call()
    except ValidationError as exc:
        add_service_errors(form, exc, field_map)
        return False
    except VersionConflict as exc:
        form.add_error(None, str(exc))
        return False
    except OutOfScope:
        raise Http404 from None
    except NotAllowed:
        raise PermissionDenied from None
    return True


@require_POST
@staff_page
def space_edit(request, pk: int):
    space = _editable_space(request, pk)
    form = SpaceForm(request.POST)
    if form.is_valid() and _service_call(
        form,
        lambda: update_space(user=request.user, space=space, changes=form.cleaned_data),
    ):
        messages.success(request, _("The space was saved."))
        return redirect(_detail_url(space))
    return _detail_page(request, space, status=400, space_form=form)


@require_POST
@staff_page
def space_geometry(request, pk: int):
    space = _editable_space(request, pk)
    form = GeometryForm(request.POST)
    if form.is_valid() and _service_call(
        form,
        lambda: update_space(
            user=request.user,
            space=space,
            changes={"geom": form.cleaned_data["geometry"]},
            expected_version=form.cleaned_data["version"],
        ),
        GEOM_FIELDS,
    ):
        messages.success(request, _("The shape was saved."))
        return redirect(_detail_url(space, "shape"))
    return _detail_page(request, space, status=400, geometry_form=form)


@require_POST
@staff_page
def space_audit(request, pk: int):
    space = _editable_space(request, pk)
    form = AuditForm(request.POST)
    if form.is_valid() and _service_call(
        form,
        lambda: record_audit(
            user=request.user,
            space=space,
            answers=form.answers(),
            audited_on=form.cleaned_data["audited_on"],
        ),
    ):
        messages.success(request, _("The audit was saved."))
        return redirect(_detail_url(space, "audit"))
    return _detail_page(request, space, status=400, audit_form=form)


@require_POST
@staff_page
def project_create(request, pk: int):
    space = _editable_space(request, pk)
    form = ProjectForm(request.POST)

    def create():
        data = form.cleaned_data
        partners = []
        if data["partner_name"]:
            partners.append(
                get_or_create_partner(
                    user=request.user, name=data["partner_name"], kind=data["partner_kind"]
                )
            )
        create_project(
            user=request.user,
            space=space,
            title=data["title"],
            identified_on=data["identified_on"],
            works_description=data["works_description"],
            budget=data["budget"],
            currency=data["currency"],
            funding_source=data["funding_source"],
            partners=partners,
        )

    if form.is_valid() and _service_call(form, create, {"space": None, "name": "partner_name"}):
        messages.success(request, _("The recovery project was opened."))
        return redirect(_detail_url(space, "projects"))
    return _detail_page(request, space, status=400, project_form=form)


@require_POST
@staff_page
def project_transition(request, pk: int):
    project = _visible_project(request, pk)
    form = TransitionForm(request.POST, prefix=f"t{project.pk}")
    if form.is_valid() and _service_call(
        form,
        lambda: transition_project(
            user=request.user,
            project=project,
            to_status=form.cleaned_data["to_status"],
            on=form.cleaned_data["date"],
            note=form.cleaned_data["note"],
        ),
        {"status": "to_status"},
    ):
        messages.success(
            request,
            _("The project is now: %(status)s.")
            % {"status": ProjectStatus(form.cleaned_data["to_status"]).label},
        )
        return redirect(_detail_url(project.space_id, f"project-{project.pk}"))
    return _detail_page(
        request, project.space, status=400, per_project={("transition", project.pk): form}
    )


@require_POST
@staff_page
def project_photo(request, pk: int):
    project = _visible_project(request, pk)
    if photos.upload_too_large(request):
        return HttpResponse(
            _("The photo is too large (at most %(size)s MB).")
            % {"size": settings.PUBLICSPACES_PHOTO_MAX_BYTES // (1024 * 1024)},
            status=413,
            content_type="text/plain; charset=utf-8",
        )
    form = PhotoForm(request.POST, request.FILES, prefix=f"ph{project.pk}")
    if form.is_valid() and _service_call(
        form,
        lambda: add_photo(
            user=request.user,
            project=project,
            image=form.cleaned_data["image"],
            stage=form.cleaned_data["stage"],
            caption=form.cleaned_data["caption"],
            taken_on=form.cleaned_data["taken_on"],
        ),
    ):
        messages.success(request, _("The photo was added."))
        return redirect(_detail_url(project.space_id, f"project-{project.pk}"))
    return _detail_page(
        request, project.space, status=400, per_project={("photo", project.pk): form}
    )


@require_POST
@staff_page
def activity_create(request, pk: int):
    space = _editable_space(request, pk)
    project_id = request.POST.get("project") or None
    project = None
    if project_id:
        project = space.projects.filter(pk=project_id).first() if project_id.isdigit() else None
    form = ActivityForm(request.POST)
    if form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items()}
        if _service_call(
            form,
            lambda: log_activity(user=request.user, space=space, project=project, **data),
        ):
            messages.success(request, _("The activity was logged."))
            return redirect(_detail_url(space, "activities"))
    return _detail_page(request, space, status=400, activity_form=form)


# --- the list and its CSV export ---------------------------------------------------------------


def _filtered_spaces(request) -> tuple[SpaceFilterForm, QuerySet]:
    form = SpaceFilterForm(request.GET)
    data = form.cleaned_data if form.is_valid() else {}
    queryset = selectors.with_counts(
        selectors.filter_spaces(
            selectors.spaces_visible_to(request.user),
            selectors.SpaceFilters(
                kind=data.get("kind", ""), condition=data.get("condition", ""), q=data.get("q", "")
            ),
        )
    )
    status = data.get("project_status", "")
    if status == "none":
        queryset = queryset.filter(project_status__isnull=True)
    elif status:
        queryset = queryset.filter(project_status=status)
    return form, queryset.order_by("district__name", "name", "id")


@require_GET
@staff_page
def space_list(request):
    form, queryset = _filtered_spaces(request)
    page = Paginator(queryset, SPACES_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "nav": "list",
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "legend": condition_legend(),
        "colours": {str(k): v for k, v in CONDITION_COLOURS.items()},
        "status_labels": _choice_labels(ProjectStatus.choices),
        "can_edit": request.space_scope.can_edit,
    }
    return render(request, "publicspaces/space_list.html", context)


EXPORT_COLUMNS = (
    "id",
    "name",
    "kind",
    "condition",
    "condition_score",
    "project_status",
    "region",
    "district",
    "neighborhood",
    "address",
    "responsible_municipality",
    "recovered_on",
    "activity_count",
    "participant_total",
    "longitude",
    "latitude",
    "is_demo",
    "updated_at",
)


class _Echo:
    """A file-like object whose write returns the line, for csv.writer in a generator."""

    def write(self, value: str) -> str:
        return value


class _Coordinate(Func):
    output_field = FloatField()


@require_GET
@staff_page
def space_export(request):
    _form, queryset = _filtered_spaces(request)
    # A point on the surface: inside a polygon, on a line.
    surface = Func(F("geom"), function="ST_PointOnSurface")
    rows = queryset.annotate(
        longitude=_Coordinate(surface, function="ST_X"),
        latitude=_Coordinate(surface, function="ST_Y"),
        region_code=F("region__code"),
        district_name=F("district__name"),
        neighborhood_name=F("neighborhood__name"),
    ).values_list(
        "id",
        "name",
        "kind",
        "condition",
        "condition_score",
        "project_status",
        "region_code",
        "district_name",
        "neighborhood_name",
        "address",
        "responsible_municipality",
        "recovered_on",
        "activity_count",
        "participant_total",
        "longitude",
        "latitude",
        "is_demo",
        "updated_at",
    )

    def lines():
        writer = csv.writer(_Echo())
        # A byte-order mark so that spreadsheets open the UTF-8 text with its accents.
        yield "\ufeff" + writer.writerow(EXPORT_COLUMNS)
        for row in rows.iterator(chunk_size=2000):
            yield writer.writerow(
                [v.isoformat() if hasattr(v, "isoformat") else csv_cell(v) for v in row]
            )

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="public-spaces-{stamp}.csv"'
    return response


# --- photo files -------------------------------------------------------------------------------


@require_GET
def photo_file(request, name: str):
    """A project photo, for whoever may see its space, or anyone once the space is on
    the public layer. Nothing else under MEDIA_ROOT is reachable through here."""
    field = ProjectPhoto._meta.get_field("image")
    stored = field.generate_filename(None, name)
    photo = (
        ProjectPhoto.objects.select_related("project__space")
        .filter(image=stored)
        .only("image", "project__status", "project__space__condition")
        .first()
    )
    if photo is None:
        raise Http404
    public = selectors.photo_is_public(photo)
    if not public and not selectors.photos_visible_to(request.user).filter(pk=photo.pk).exists():
        raise Http404
    try:
        handle = photo.image.open("rb")
    except FileNotFoundError:
        raise Http404 from None
    content_type = mimetypes.guess_type(stored)[0] or "application/octet-stream"
    response = FileResponse(handle, content_type=content_type)
    response["Cache-Control"] = (
        f"public, max-age={PUBLIC_PHOTO_MAX_AGE}" if public else "private, no-store"
    )
    return response


# --- map layers on the public and planner maps -------------------------------------------------


def public_layer_config() -> dict:
    """Settings and labels of the public map's layer of recovered spaces
    (static/js/maps/public_map.js), in the active language."""
    return {
        "api": reverse("publicspace-public"),
        "colours": {str(c): CONDITION_COLOURS[c] for c in PUBLIC_CONDITIONS},
        "labels": {
            "layer": _("Recovered public spaces"),
            "kinds": _choice_labels(SpaceKind.choices),
            "conditions": _choice_labels(Condition.choices),
            "stages": _choice_labels(ProjectPhoto.Stage.choices),
            "district": _("District"),
            "neighborhood": _("Neighborhood"),
            "worksStarted": _("Works started"),
            "recoveredOn": _("Recovered on"),
            "maintainedOn": _("Maintained since"),
            "activities": _("Activities held"),
            "participants": _("Participants"),
            "photo": _("Photo: %(stage)s"),
            "demo": _("demo data"),
            "loadError": _("The public spaces could not be loaded."),
        },
    }


@require_GET
@staff_page
def planner_layer_config(request):
    """Settings and labels of the planner map's layer of spaces with the incidents around
    them (static/js/maps/planner_spaces.js), in the active language."""
    if not request.space_scope.view_all:
        raise PermissionDenied
    data = {
        "api": reverse("publicspace-incident-change"),
        # The planner page does not link this app's stylesheet: the script adds it.
        "css": static("css/publicspaces.css"),
        "defaultDistance": selectors.DEFAULT_DISTANCE_M,
        "maxDistance": selectors.MAX_DISTANCE_M,
        "months": selectors.DEFAULT_WINDOW_MONTHS,
        "labels": {
            "title": _("Recovered spaces: incidents nearby"),
            "show": _("Show the recovered spaces"),
            "distance": _("Distance (m)"),
            "apply": _("Count"),
            "before": _("Incidents in the %(months)s months before recovery"),
            "after": _("Incidents in the %(months)s months after recovery"),
            "complete": _("The period after recovery is complete."),
            "incomplete": _("The period after recovery is not over yet: the count is partial."),
            "within": _("within %(distance)s m"),
            "recoveredOn": _("Recovered on"),
            "fewer": _("Fewer incidents after"),
            "more": _("More incidents after"),
            "same": _("No change"),
            "partial": _("Period after not complete"),
            "badDistance": _("Enter a distance between 10 and %(max)s metres."),
            "loadError": _("The spaces could not be loaded."),
            "countOne": _("1 recovered space"),
            "count": _("%(count)s recovered spaces"),
            "kinds": _choice_labels(SpaceKind.choices),
            "demo": _("demo data"),
        },
    }
    return JsonResponse(data, headers={"Cache-Control": "private, no-store"})
