"""Planner pages for incident imports, mounted at /planner/imports/ by config/urls.py."""

from django.urls import path

from incidents import views

app_name = "incidents"

urlpatterns = [
    path("", views.import_list, name="import-list"),
    path("new/", views.import_new, name="import-new"),
    path("new/<str:token>/", views.import_preview, name="import-preview"),
    path("<int:pk>/", views.import_detail, name="import-detail"),
    path("<int:pk>/progress/", views.import_progress, name="import-progress"),
]
