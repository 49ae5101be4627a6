"""The municipal pages under /municipality/ and the photo files under MEDIA_URL, mounted at
the site root by config/urls.py (before the development media server, so a photo is always
served through its scope check)."""

from django.conf import settings
from django.urls import path

from publicspaces.views import activities, detail, exports, layers, photos, projects, spaces

app_name = "publicspaces"

urlpatterns = [
    path("municipality/", spaces.space_map, name="map"),
    path("municipality/spaces/", spaces.space_list, name="list"),
    path("municipality/spaces/export.csv", exports.space_export, name="export"),
    path("municipality/spaces/new/", spaces.space_create, name="create"),
    path("municipality/spaces/<int:pk>/", detail.space_detail, name="detail"),
    path("municipality/spaces/<int:pk>/edit/", spaces.space_edit, name="edit"),
    path("municipality/spaces/<int:pk>/geometry/", spaces.space_geometry, name="geometry"),
    path("municipality/spaces/<int:pk>/audit/", spaces.space_audit, name="audit"),
    path("municipality/spaces/<int:pk>/projects/", projects.project_create, name="project-create"),
    path(
        "municipality/spaces/<int:pk>/activities/",
        activities.activity_create,
        name="activity-create",
    ),
    path(
        "municipality/projects/<int:pk>/transition/",
        projects.project_transition,
        name="project-transition",
    ),
    path("municipality/projects/<int:pk>/photos/", photos.project_photo, name="project-photo"),
    path("municipality/layers/planner.json", layers.planner_layer_config, name="planner-layer"),
]

# Photos keep the URL their storage gives them (MEDIA_URL + name), so the API, the admin
# and the public layer all reach them through the same check.
if settings.MEDIA_URL.startswith("/"):
    urlpatterns.append(
        path(
            f"{settings.MEDIA_URL.lstrip('/')}publicspaces/photos/<str:name>",
            photos.photo_file,
            name="photo-file",
        )
    )
