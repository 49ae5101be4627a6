"""The list's CSV export (publicspaces.exports), under the list's filters."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from publicspaces.exports import csv_lines
from publicspaces.views.common import staff_page
from publicspaces.views.spaces import filtered_spaces


@require_GET
@staff_page
def space_export(request):
    _form, queryset = filtered_spaces(request)
    response = StreamingHttpResponse(csv_lines(queryset), content_type="text/csv; charset=utf-8")
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="public-spaces-{stamp}.csv"'
    return response
