"""Planner pages for hotspot runs, mounted at /planner/hotspots/ by config/urls.py."""

from django.urls import path

from hotspots import views

app_name = "hotspots"

urlpatterns = [
    path("", views.run_list, name="run-list"),
    path("<int:pk>/", views.run_detail, name="run-detail"),
    path("<int:pk>/validate/", views.run_validate, name="run-validate"),
    path("<int:pk>/report.html", views.run_report, name="run-report"),
    path("<int:pk>/zones.geojson", views.run_zones_geojson, name="run-zones-geojson"),
    path("<int:pk>/zones.gpkg", views.run_zones_geopackage, name="run-zones-gpkg"),
]
