"""The settings of the planner map's layer of recovered spaces (publicspaces.layers), for
those who read every space."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from publicspaces.layers import planner_layer_config as layer_config
from publicspaces.views.common import staff_page


@require_GET
@staff_page
def planner_layer_config(request):
    """The layer's settings and labels as JSON; planners, program staff and admins only."""
    if not request.space_scope.view_all:
        raise PermissionDenied
    return JsonResponse(layer_config(), headers={"Cache-Control": "private, no-store"})
