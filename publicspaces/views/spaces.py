"""The spaces: the municipal map with the form to add one by drawing it, the filtered list,
and the forms of a space's own fields, shape and audit on its page."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from neighborhoods.models import District
from publicspaces import selectors
from publicspaces.forms import (
    AuditForm,
    GeometryForm,
    NewSpaceForm,
    SpaceFilterForm,
    SpaceForm,
    add_service_errors,
)
from publicspaces.layers import (
    CONDITION_COLOURS,
    base_map_config,
    choice_labels,
    condition_legend,
    district_outlines,
    space_map_labels,
)
from publicspaces.models import ProjectStatus
from publicspaces.services.common import NotAllowed
from publicspaces.services.spaces import create_space, record_audit, update_space
from publicspaces.views.common import GEOM_FIELDS, detail_url, editable_space, staff_page
from publicspaces.views.detail import submit

SPACES_PER_PAGE = 50


# --- the map page and the new-space form -------------------------------------------------------


def _outline_config(request) -> dict:
    scope = request.space_scope
    if scope.district_id is not None and not scope.view_all:
        return {"districtOutline": district_outlines([scope.district_id])}
    return {"districtOutline": None, "districtsApi": reverse("district-geojson")}


def _map_page(request, form: NewSpaceForm, status: int = 200):
    scope = request.space_scope
    config = {
        **base_map_config(),
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
        "map_labels": space_map_labels(),
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
            return redirect(detail_url(space))
    return _map_page(request, form, status=400)


# --- the list ----------------------------------------------------------------------------------


def filtered_spaces(request) -> tuple[SpaceFilterForm, QuerySet]:
    """The list's filters from the query string, and the visible spaces they select (with
    their counts), in the list's order; the CSV export reads the same."""
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
    form, queryset = filtered_spaces(request)
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
        "status_labels": choice_labels(ProjectStatus.choices),
        "can_edit": request.space_scope.can_edit,
    }
    return render(request, "publicspaces/space_list.html", context)


# --- a space's own forms on its page -----------------------------------------------------------


@require_POST
@staff_page
def space_edit(request, pk: int):
    space = editable_space(request, pk)
    form = SpaceForm(request.POST, current_condition=space.condition)
    return submit(
        request,
        space,
        form,
        lambda: update_space(user=request.user, space=space, changes=form.cleaned_data),
        slot="space_form",
        saved=_("The space was saved."),
    )


@require_POST
@staff_page
def space_geometry(request, pk: int):
    space = editable_space(request, pk)
    form = GeometryForm(request.POST)
    return submit(
        request,
        space,
        form,
        lambda: update_space(
            user=request.user,
            space=space,
            changes={"geom": form.cleaned_data["geometry"]},
            expected_version=form.cleaned_data["version"],
        ),
        slot="geometry_form",
        saved=_("The shape was saved."),
        anchor="shape",
        field_map=GEOM_FIELDS,
    )


@require_POST
@staff_page
def space_audit(request, pk: int):
    space = editable_space(request, pk)
    form = AuditForm(request.POST)
    return submit(
        request,
        space,
        form,
        lambda: record_audit(
            user=request.user,
            space=space,
            answers=form.answers(),
            audited_on=form.cleaned_data["audited_on"],
        ),
        slot="audit_form",
        saved=_("The audit was saved."),
        anchor="audit",
    )
