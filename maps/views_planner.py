"""The police planner's incident map. Like the public map, the page only carries settings
and translated labels; incidents, counts and boundaries come from /api/v1/ (planners-only
for incidents), fetched by static/js/maps/planner_map.js."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext

from accounts.roles import is_planner
from incidents.models import LocationQuality, TimePrecision
from neighborhoods.models import Region
from neighborhoods.selectors import attributions

# Server-side grid clusters below this zoom, raw incident points from it on.
POINTS_MIN_ZOOM = 15


def _api_urls() -> dict[str, str]:
    """Incident endpoints (planners only) and the public boundary endpoints."""
    return {
        "incidents": reverse("incident-geojson"),
        "clusters": reverse("incident-clusters"),
        "heat": reverse("incident-heat"),
        "stats": reverse("incident-stats"),
        "export": reverse("incident-export"),
        "categories": reverse("category-list"),
        "regions": reverse("region-list"),
        "districts": reverse("district-geojson"),
    }


def _planner_labels() -> dict:
    """Every string the planner script shows, translated for the active language."""
    return {
        "loading": gettext("Loading incidents…"),
        "loadError": gettext("The incidents could not be loaded. Try again later."),
        "boundaryError": gettext("The district boundaries could not be loaded."),
        "truncated": gettext(
            "Only the first %(limit)s incidents are drawn here: zoom in or narrow the filters."
        ),
        "noCategories": gettext("No category is selected: nothing to show."),
        "badDates": gettext("The start date is after the end date."),
        "total": gettext("%(count)s incidents in this view"),
        "totalOne": gettext("1 incident in this view"),
        "noIncidents": gettext("No incidents in this view."),
        "counting": gettext("Counting…"),
        "sensitive": gettext("sensitive"),
        "sensitiveHint": gettext("Sensitive category: never shown publicly."),
        "unclassified": gettext("Unclassified"),
        "families": {
            "crime": gettext("Crime"),
            "incivility": gettext("Incivility"),
        },
        "allInFamily": gettext("All: %(family)s"),
        "allDistricts": gettext("All districts"),
        "clusterTitle": gettext("%(count)s incidents here: click to zoom in"),
        "incident": gettext("Incident"),
        "when": gettext("When"),
        "precision": gettext("Time precision"),
        "source": gettext("Source"),
        "district": gettext("District"),
        "neighborhood": gettext("Neighborhood"),
        "locationQuality": gettext("Location"),
        "notAssigned": gettext("not assigned"),
        "range": gettext("from %(start)s to %(end)s"),
        "timePrecision": {value: str(label) for value, label in TimePrecision.choices},
        "locationQualities": {value: str(label) for value, label in LocationQuality.choices},
        "showFilters": gettext("Show filters"),
        "hideFilters": gettext("Hide filters"),
        "zoomIn": gettext("Zoom in"),
        "zoomOut": gettext("Zoom out"),
    }


@login_required
def planner_map(request):
    if not is_planner(request.user):
        raise PermissionDenied
    config = {
        "tileUrl": settings.MAP_TILE_URL,
        "tileAttribution": settings.MAP_TILE_ATTRIBUTION,
        "center": settings.MAP_DEFAULT_CENTER,
        "zoom": settings.MAP_DEFAULT_ZOOM,
        "pointsMinZoom": POINTS_MIN_ZOOM,
        "timeZone": settings.TIME_ZONE,
        "attributions": attributions(),
        "api": _api_urls(),
    }
    context = {
        "map_config": config,
        "map_labels": _planner_labels(),
        "synthetic": Region.objects.filter(synthetic=True).exists(),
        "points_min_zoom": POINTS_MIN_ZOOM,
    }
    return render(request, "maps/planner_map.html", context)
