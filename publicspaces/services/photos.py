"""Writes of project photos: adding one (checked and re-encoded by
``publicspaces.photos``) and deleting one, whose file goes once the deletion is committed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from publicspaces.models import ChangeRecord, ProjectPhoto, RecoveryProject
from publicspaces.photos import clean_photo
from publicspaces.scope import scope_for
from publicspaces.services.common import (
    actor,
    full_clean,
    record,
    record_deletion,
    refuse_future,
    require_edit,
)


def delete_files_on_commit(names: Iterable[str]) -> None:
    """Removes the stored photo files once the transaction that let go of them commits."""
    names = [n for n in names if n]
    if not names:
        return

    def remove():
        storage = ProjectPhoto._meta.get_field("image").storage
        for name in names:
            storage.delete(name)

    transaction.on_commit(remove)


@transaction.atomic
def add_photo(
    *,
    user,
    project: RecoveryProject,
    image,
    stage: str,
    caption: str = "",
    taken_on: dt.date | None = None,
    is_demo: bool = False,
    storage_name: str | None = None,
) -> ProjectPhoto:
    """Validates ``image`` (an uploaded file) with Pillow and stores a re-encoded copy with
    no EXIF; refusals are ValidationError({"image": [...]}).

    ``storage_name`` (system callers only: the demo) stores the file under that fixed
    name, replacing a file already there, so that reloading the demo does not pile up
    copies of the same generated pictures."""
    if storage_name is not None and user is not None:
        raise ValueError("storage_name is for the demo (user=None) only")
    scope = scope_for(user)
    current = RecoveryProject.objects.select_related("space").get(pk=project.pk)
    require_edit(scope, current.space)
    if stage not in ProjectPhoto.Stage.values:
        raise ValidationError({"stage": [_("Choose before, during or after.")]})
    refuse_future({"taken_on": taken_on}, current.space.region)
    clean = clean_photo(image)
    photo = ProjectPhoto(
        project=current,
        stage=stage,
        caption=caption,
        taken_on=taken_on,
        is_demo=is_demo,
        uploaded_by=actor(user),
    )
    full_clean(photo, exclude=["image", "project"])
    stored = ""
    try:
        if storage_name is not None:
            storage = photo.image.storage
            storage.delete(storage_name)
            stored = storage.save(storage_name, clean.file)
            photo.image.name = stored
            photo.width, photo.height = clean.width, clean.height
        else:
            photo.image.save(clean.file.name, clean.file, save=False)
            stored = photo.image.name
        photo.save()
        record(
            user=user,
            space=current.space,
            obj=photo,
            action=ChangeRecord.Action.CREATED,
            changes={
                "stage": stage,
                "caption": caption,
                "project": current.pk,
                "size": [photo.width, photo.height],
            },
        )
    except Exception:
        # Nothing in the database refers to the file any more: remove it.
        if stored:
            photo.image.storage.delete(stored)
        raise
    return photo


@transaction.atomic
def delete_photo(*, user, photo: ProjectPhoto) -> None:
    scope = scope_for(user)
    current = ProjectPhoto.objects.select_related("project__space").get(pk=photo.pk)
    require_edit(scope, current.project.space)
    record_deletion(
        user=user,
        space=current.project.space,
        obj=current,
        changes={"stage": current.stage, "caption": current.caption},
    )
    name = current.image.name
    current.delete()
    delete_files_on_commit([name])
