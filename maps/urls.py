from django.urls import path

from maps import regions, views, views_planner

urlpatterns = [
    path("", views.public_map, name="public-map"),
    path("planner/", views_planner.planner_map, name="planner-map"),
    path("map/region/", regions.choose_region, name="choose-region"),
]
