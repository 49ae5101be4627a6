"""Map pages. The page only carries settings and labels; data comes from /api/v1/."""

from django.conf import settings
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext

from geo.basemap import basemap_config
from maps.regions import region_choices, region_picker_config
from neighborhoods.models import Region
from neighborhoods.selectors import attribution_extents, attributions

# Neighborhoods are drawn (and fetched for the visible bbox) from this zoom on.
NEIGHBORHOOD_MIN_ZOOM = 12


def _map_labels() -> dict[str, str]:
    """Every string the map script shows, translated for the active language."""
    return {
        "loading": gettext("Loading boundaries…"),
        "loadError": gettext("The boundaries could not be loaded. Try again later."),
        "noData": gettext("No boundaries have been loaded yet."),
        "truncated": gettext("Too many areas to show here: zoom in to see all of them."),
        "noMatches": gettext("No district matches that name."),
        "matchesOne": gettext("1 district found. Use the arrow keys to choose."),
        # "%(count)s" is replaced by the script.
        "matchesMany": gettext("%(count)s districts found. Use the arrow keys to choose."),
        "zoomedTo": gettext("Showing %(name)s."),
        "syntheticBadge": gettext("synthetic"),
        "district": gettext("District"),
        "neighborhood": gettext("Neighborhood"),
        "zoomIn": gettext("Zoom in"),
        "zoomOut": gettext("Zoom out"),
    }


def public_map(request):
    config = {
        **basemap_config(),
        **region_picker_config(request),
        "center": settings.MAP_DEFAULT_CENTER,
        "zoom": settings.MAP_DEFAULT_ZOOM,
        "neighborhoodMinZoom": NEIGHBORHOOD_MIN_ZOOM,
        "attributions": attributions(),
        "attributionExtents": attribution_extents(),
        "api": {
            "regions": reverse("region-list"),
            "regionOutlines": reverse("region-geojson"),
            "districts": reverse("district-geojson"),
            "neighborhoods": reverse("neighborhood-geojson"),
        },
    }
    context = {
        "map_config": config,
        "map_labels": _map_labels(),
        # Rendered by the server so the notice is there before any script runs; the
        # script also shows it if a synthetic region arrives from the API.
        "synthetic": Region.objects.filter(synthetic=True).exists(),
        "region_choices": region_choices(),
        "chosen_region": config["chosenRegion"],
        "neighborhood_min_zoom": NEIGHBORHOOD_MIN_ZOOM,
    }
    return render(request, "maps/public_map.html", context)
