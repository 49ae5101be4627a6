"""Every app's API under /api/v1/."""

from django.urls import include, path

urlpatterns = [
    path("", include("neighborhoods.api.urls")),
    path("", include("incidents.api.urls")),
    path("", include("incidents.api.batch_urls")),
    path("", include("hotspots.api.urls")),
    path("", include("publicspaces.api.urls")),
    path("", include("public.api.urls")),
]
