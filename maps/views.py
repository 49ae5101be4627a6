"""Map pages. The page only carries settings and labels; data comes from /api/v1/."""

from django.conf import settings
from django.shortcuts import render

from neighborhoods.selectors import attributions


def public_map(request):
    config = {
        "tileUrl": settings.MAP_TILE_URL,
        "tileAttribution": settings.MAP_TILE_ATTRIBUTION,
        "center": settings.MAP_DEFAULT_CENTER,
        "zoom": settings.MAP_DEFAULT_ZOOM,
        "attributions": attributions(),
        "api": {
            "regions": "/api/v1/regions/",
            "districts": "/api/v1/districts/",
            "neighborhoods": "/api/v1/neighborhoods/",
        },
    }
    return render(request, "maps/public_map.html", {"map_config": config})
