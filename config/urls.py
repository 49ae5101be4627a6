from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from geo.basemap import pmtiles_archive

# Under /api/ an unknown URL is a JSON 404 like the API's own (config.api.not_found).
handler404 = "config.api.not_found"

urlpatterns = [
    path("", include("maps.urls")),
    path("planner/imports/", include("incidents.urls")),
    path("planner/hotspots/", include("hotspots.urls")),
    path("", include("publicspaces.urls")),  # /municipality/ and the photo files
    path("basemap/tiles.pmtiles", pmtiles_archive, name="basemap-pmtiles"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/", include("accounts.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_router")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
# MEDIA_ROOT is never served wholesale, not even with DEBUG: the only uploaded files are
# project photos, which publicspaces.urls serves after checking who may see them.
