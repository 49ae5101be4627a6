"""Project photos: the upload from a project on its space's page, and the photo files,
served behind a scope check."""

from __future__ import annotations

import mimetypes

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from publicspaces import selectors
from publicspaces.forms import PhotoForm
from publicspaces.models import ProjectPhoto
from publicspaces.photos import upload_too_large
from publicspaces.services.photos import add_photo
from publicspaces.views.common import staff_page, visible_project
from publicspaces.views.detail import submit

PUBLIC_PHOTO_MAX_AGE = 300


@require_POST
@staff_page
def project_photo(request, pk: int):
    project = visible_project(request, pk)
    if upload_too_large(request):
        return HttpResponse(
            _("The photo is too large (at most %(size)s MB).")
            % {"size": settings.PUBLICSPACES_PHOTO_MAX_BYTES // (1024 * 1024)},
            status=413,
            content_type="text/plain; charset=utf-8",
        )
    form = PhotoForm(request.POST, request.FILES, prefix=f"ph{project.pk}")
    return submit(
        request,
        project.space,
        form,
        lambda: add_photo(
            user=request.user,
            project=project,
            image=form.cleaned_data["image"],
            stage=form.cleaned_data["stage"],
            caption=form.cleaned_data["caption"],
            taken_on=form.cleaned_data["taken_on"],
        ),
        slot=("photo", project.pk),
        saved=_("The photo was added."),
        anchor=f"project-{project.pk}",
    )


@require_GET
def photo_file(request, name: str):
    """A project photo, for whoever may see its space, or anyone once the space is on
    the public layer. Nothing else under MEDIA_ROOT is reachable through here."""
    field = ProjectPhoto._meta.get_field("image")
    stored = field.generate_filename(None, name)
    photo = (
        ProjectPhoto.objects.select_related("project__space")
        .filter(image=stored)
        .only("image", "project__status", "project__space__condition")
        .first()
    )
    if photo is None:
        raise Http404
    public = selectors.photo_is_public(photo)
    if not public and not selectors.photos_visible_to(request.user).filter(pk=photo.pk).exists():
        raise Http404
    try:
        handle = photo.image.open("rb")
    except FileNotFoundError:
        raise Http404 from None
    content_type = mimetypes.guess_type(stored)[0] or "application/octet-stream"
    response = FileResponse(handle, content_type=content_type)
    response["Cache-Control"] = (
        f"public, max-age={PUBLIC_PHOTO_MAX_AGE}" if public else "private, no-store"
    )
    return response
