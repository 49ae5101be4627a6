from django.urls import path

from public.api import views

urlpatterns = [
    path("public/regions/", views.PublicRegionsView.as_view(), name="public-regions"),
    path(
        "public/regions/<str:code>/months/",
        views.PublicMonthsView.as_view(),
        name="public-months",
    ),
    path(
        "public/regions/<str:code>/categories/",
        views.PublicCategoriesView.as_view(),
        name="public-categories",
    ),
    path("public/regions/<str:code>/cells/", views.PublicCellsView.as_view(), name="public-cells"),
    path(
        "public/regions/<str:code>/cells.csv",
        views.PublicCellsCSVView.as_view(),
        name="public-cells-csv",
    ),
    path("public/regions/<str:code>/zones/", views.PublicZonesView.as_view(), name="public-zones"),
]
