"""Admin map widget served entirely from this server.

Django's OpenLayers widgets load OpenLayers from a public CDN and draw NASA/OSM tiles:
blank on an offline machine. This one uses the vendored OpenLayers, draws the loaded
district boundaries as the background, and uses a tile layer only when MAP_TILE_URL is set.
"""

from django.conf import settings
from django.contrib.gis.forms.widgets import OSMWidget
from django.urls import reverse


class OfflineMapWidget(OSMWidget):
    template_name = "gis/barrio_openlayers.html"
    default_zoom = 12

    class Media:
        extend = False
        css = {"all": ("vendor/ol-7.2.2/ol.css", "gis/css/ol3.css")}
        js = ("vendor/ol-7.2.2/ol.js", "gis/js/OLMapWidget.js")

    def __init__(self, attrs=None):
        lat, lon = settings.MAP_DEFAULT_CENTER
        defaults = {"default_lat": lat, "default_lon": lon}
        super().__init__(attrs={**defaults, **(attrs or {})})

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["tile_url"] = settings.MAP_TILE_URL
        context["boundaries_url"] = reverse("district-geojson") + "?zoom=10"
        return context
