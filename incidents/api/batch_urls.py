"""Import batch endpoints, mounted under /api/v1/ by config/api_router.py."""

from django.urls import path

from incidents.api import batches

urlpatterns = [
    path("import-batches/", batches.ImportBatchListView.as_view(), name="import-batch-list"),
    path(
        "import-batches/<int:pk>/",
        batches.ImportBatchDetailView.as_view(),
        name="import-batch-detail",
    ),
]
