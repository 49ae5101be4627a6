"""The activities held in a space: logging one from its page."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from publicspaces.forms import ActivityForm
from publicspaces.services.activities import log_activity
from publicspaces.views.common import editable_space, staff_page
from publicspaces.views.detail import submit


@require_POST
@staff_page
def activity_create(request, pk: int):
    space = editable_space(request, pk)
    project_id = request.POST.get("project") or None
    project = None
    if project_id:
        project = space.projects.filter(pk=project_id).first() if project_id.isdigit() else None
    form = ActivityForm(request.POST)
    return submit(
        request,
        space,
        form,
        lambda: log_activity(user=request.user, space=space, project=project, **form.cleaned_data),
        slot="activity_form",
        saved=_("The activity was logged."),
        anchor="activities",
    )
