"""Hotspot endpoints, mounted under /api/v1/ by config/api_router.py."""

from django.urls import path

from geo import converters  # noqa: F401 (registers <tile:…>)
from hotspots.api import views

urlpatterns = [
    path("hotspot-runs/", views.HotspotRunListView.as_view(), name="hotspot-run-list"),
    path("hotspot-runs/<int:pk>/", views.HotspotRunDetailView.as_view(), name="hotspot-run-detail"),
    path(
        "hotspot-runs/<int:pk>/validations/",
        views.HotspotValidationListView.as_view(),
        name="hotspot-run-validations",
    ),
    path(
        "hotspot-runs/<int:pk>/cells/", views.HotspotCellsView.as_view(), name="hotspot-run-cells"
    ),
    path(
        "hotspot-runs/<int:pk>/zones/", views.HotspotZonesView.as_view(), name="hotspot-run-zones"
    ),
    path(
        "hotspot-runs/<int:pk>/emerging/",
        views.HotspotEmergingView.as_view(),
        name="hotspot-run-emerging",
    ),
    path("hotspot-runs/<int:pk>/kde/", views.HotspotKDEView.as_view(), name="hotspot-run-kde"),
    path(
        "hotspot-runs/<int:pk>/forecast/",
        views.HotspotForecastView.as_view(),
        name="hotspot-run-forecast",
    ),
    path(
        "hotspot-runs/<int:pk>/week-hours/",
        views.HotspotWeekHoursView.as_view(),
        name="hotspot-run-week-hours",
    ),
    path(
        "tiles/hotspots/<int:run>/cells/<tile:z>/<tile:x>/<tile:y>.mvt",
        views.HotspotCellTileView.as_view(),
        name="hotspot-cell-tile",
    ),
    path(
        "tiles/hotspots/<int:run>/zones/<tile:z>/<tile:x>/<tile:y>.mvt",
        views.HotspotZoneTileView.as_view(),
        name="hotspot-zone-tile",
    ),
]
