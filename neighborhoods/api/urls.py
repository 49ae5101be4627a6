from django.urls import path

from neighborhoods.api import views

urlpatterns = [
    path("areas/lookup/", views.AreaLookupView.as_view(), name="area-lookup"),
    path("regions/", views.RegionListView.as_view(), name="region-list"),
    path("regions/geojson/", views.RegionGeoJSONView.as_view(), name="region-geojson"),
    path("districts/", views.DistrictGeoJSONView.as_view(), name="district-geojson"),
    path("neighborhoods/", views.NeighborhoodGeoJSONView.as_view(), name="neighborhood-geojson"),
]
