from django.urls import path

from maps import views, views_planner

urlpatterns = [
    path("", views.public_map, name="public-map"),
    path("planner/", views_planner.planner_map, name="planner-map"),
]
