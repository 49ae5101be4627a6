"""What the municipal pages share: who may open them, the objects a URL names (404 out of
sight, 403 for readers who may not edit), the URL of a space's page, and a service call
whose refusal goes onto a form."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.urls import reverse
from django.views.decorators.cache import never_cache

from publicspaces import selectors
from publicspaces.forms import add_service_errors
from publicspaces.models import PublicSpace, RecoveryProject
from publicspaces.scope import scope_for
from publicspaces.services.common import NotAllowed, OutOfScope, VersionConflict

GEOM_FIELDS = {"geom": "geometry"}


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


def visible_space(request, pk: int) -> PublicSpace:
    try:
        return selectors.get_visible_space(user=request.user, pk=pk)
    except PublicSpace.DoesNotExist:
        raise Http404 from None


def editable_space(request, pk: int) -> PublicSpace:
    """The space, 404 when out of sight, 403 for readers who may not edit (planners)."""
    space = visible_space(request, pk)
    if not request.space_scope.may_edit_district(space.district_id):
        raise PermissionDenied
    return space


def visible_project(request, pk: int) -> RecoveryProject:
    project = selectors.projects_visible_to(request.user).filter(pk=pk).first()
    if project is None:
        raise Http404
    if not request.space_scope.may_edit_district(project.space.district_id):
        raise PermissionDenied
    return project


def detail_url(space_or_id, anchor: str = "") -> str:
    pk = getattr(space_or_id, "pk", space_or_id)
    url = reverse("publicspaces:detail", args=[pk])
    return f"{url}#{anchor}" if anchor else url


def service_call(form, call, field_map=None) -> bool:
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
