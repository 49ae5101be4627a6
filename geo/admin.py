from django.contrib.gis import admin

from geo.widgets import OfflineMapWidget


class OfflineGISModelAdmin(admin.GISModelAdmin):
    """Base admin for models with geometries: vendored OpenLayers, no outside requests."""

    gis_widget = OfflineMapWidget
