"""Which region a map opens on: the one asked for (``?region=``), else the one the visitor
chose last (their session; for a signed-in user also their profile, so it follows them to
another browser), else ``MAP_DEFAULT_REGION``, else the first region by name. A code that
names no region (a region removed since) is skipped, never an error."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.models import StaffProfile
from neighborhoods.selectors import region_list

SESSION_KEY = "map_region"


def _profile_region(request: HttpRequest) -> str:
    if not request.user.is_authenticated:
        return ""
    profile = StaffProfile.objects.filter(user=request.user).only("map_region").first()
    return profile.map_region if profile else ""


def chosen_region_code(request: HttpRequest) -> str:
    """The code of the region to open on; "" when there is no region at all."""
    codes = list(
        region_list().filter(geom__isnull=False).order_by("name").values_list("code", flat=True)
    )
    if not codes:
        return ""
    for candidate in (
        request.GET.get("region"),
        request.session.get(SESSION_KEY),
        _profile_region(request),
        settings.MAP_DEFAULT_REGION,
    ):
        if candidate and candidate in codes:
            return candidate
    return codes[0]


def region_choices() -> list[dict]:
    """The regions a map can open on (those with boundaries), by name."""
    return list(region_list().filter(geom__isnull=False).order_by("name").values("code", "name"))


def region_picker_config(request: HttpRequest) -> dict:
    """The picker's part of a map page's settings."""
    return {
        "chosenRegion": chosen_region_code(request),
        "chooseRegionUrl": reverse("choose-region"),
        "csrfToken": get_token(request),
    }


@require_POST
def choose_region(request: HttpRequest) -> HttpResponse:
    """Remembers the region picked on a map (204); an unknown one is a 400 on its field."""
    code = request.POST.get("region", "")
    if not code or not region_list().filter(code=code).exists():
        return JsonResponse({"region": [_("Choose one of the regions listed.")]}, status=400)
    request.session[SESSION_KEY] = code
    if request.user.is_authenticated:
        StaffProfile.objects.update_or_create(user=request.user, defaults={"map_region": code})
    return HttpResponse(status=204)
