from django.urls import path

from geo import converters  # noqa: F401 (registers <tile:…>)
from incidents.api import views

urlpatterns = [
    path("incidents/", views.IncidentGeoJSONView.as_view(), name="incident-geojson"),
    path("incidents/export.csv", views.IncidentExportView.as_view(), name="incident-export"),
    path("incidents/stats/", views.IncidentStatsView.as_view(), name="incident-stats"),
    path("incidents/clusters/", views.IncidentClusterView.as_view(), name="incident-clusters"),
    path("incidents/heat/", views.IncidentHeatView.as_view(), name="incident-heat"),
    path(
        "tiles/incidents/<tile:z>/<tile:x>/<tile:y>.mvt",
        views.IncidentTileView.as_view(),
        name="incident-tile",
    ),
    path("categories/", views.CategoryListView.as_view(), name="category-list"),
]
