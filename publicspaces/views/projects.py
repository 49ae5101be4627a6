"""A space's recovery projects: opening one (with a partner) and moving it a step."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from publicspaces.forms import ProjectForm, TransitionForm
from publicspaces.models import ProjectStatus
from publicspaces.services.projects import (
    create_project,
    get_or_create_partner,
    transition_project,
)
from publicspaces.views.common import editable_space, staff_page, visible_project
from publicspaces.views.detail import submit


@require_POST
@staff_page
def project_create(request, pk: int):
    space = editable_space(request, pk)
    form = ProjectForm(request.POST)

    def create():
        data = form.cleaned_data
        partners = []
        if data["partner_name"]:
            partners.append(
                get_or_create_partner(
                    user=request.user, name=data["partner_name"], kind=data["partner_kind"]
                )
            )
        create_project(
            user=request.user,
            space=space,
            title=data["title"],
            identified_on=data["identified_on"],
            works_description=data["works_description"],
            budget=data["budget"],
            currency=data["currency"],
            funding_source=data["funding_source"],
            partners=partners,
        )

    return submit(
        request,
        space,
        form,
        create,
        slot="project_form",
        saved=_("The recovery project was opened."),
        anchor="projects",
        field_map={"space": None, "name": "partner_name"},
    )


@require_POST
@staff_page
def project_transition(request, pk: int):
    project = visible_project(request, pk)
    form = TransitionForm(request.POST, prefix=f"t{project.pk}")
    return submit(
        request,
        project.space,
        form,
        lambda: transition_project(
            user=request.user,
            project=project,
            to_status=form.cleaned_data["to_status"],
            on=form.cleaned_data["date"],
            note=form.cleaned_data["note"],
            evidence_waiver=form.cleaned_data["evidence_waiver"],
        ),
        slot=("transition", project.pk),
        saved=lambda: (
            _("The project is now: %(status)s.")
            % {"status": ProjectStatus(form.cleaned_data["to_status"]).label}
        ),
        anchor=f"project-{project.pk}",
        field_map={"status": "to_status"},
    )
