"""Public-space endpoints, mounted under /api/v1/ by config/api_router.py."""

from django.urls import path

from publicspaces.api import views

urlpatterns = [
    path("public-spaces/", views.SpaceListView.as_view(), name="publicspace-list"),
    # Fixed words before <int:pk> so they never read as ids.
    path("public-spaces/public/", views.PublicSpaceLayerView.as_view(), name="publicspace-public"),
    path(
        "public-spaces/incident-change/",
        views.IncidentChangeLayerView.as_view(),
        name="publicspace-incident-change",
    ),
    path("public-spaces/<int:pk>/", views.SpaceDetailView.as_view(), name="publicspace-detail"),
    path(
        "public-spaces/<int:pk>/history/",
        views.SpaceHistoryView.as_view(),
        name="publicspace-history",
    ),
    path("public-spaces/<int:pk>/audit/", views.SpaceAuditView.as_view(), name="publicspace-audit"),
    path("recovery-projects/", views.ProjectListView.as_view(), name="recoveryproject-list"),
    path(
        "recovery-projects/<int:pk>/",
        views.ProjectDetailView.as_view(),
        name="recoveryproject-detail",
    ),
    path(
        "recovery-projects/<int:pk>/transition/",
        views.ProjectTransitionView.as_view(),
        name="recoveryproject-transition",
    ),
    path(
        "recovery-projects/<int:pk>/photos/",
        views.ProjectPhotoListView.as_view(),
        name="recoveryproject-photos",
    ),
    path("project-photos/<int:pk>/", views.PhotoDetailView.as_view(), name="projectphoto-detail"),
    path("activities/", views.ActivityListView.as_view(), name="activity-list"),
    path("activities/<int:pk>/", views.ActivityDetailView.as_view(), name="activity-detail"),
    path("partners/", views.PartnerListView.as_view(), name="partner-list"),
]
