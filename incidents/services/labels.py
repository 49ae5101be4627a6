"""Mapping a source's label to a category of the taxonomy.

Incident.category is denormalised from its label's category so that filters need no join;
``map_label`` is the one place that changes a label's category and keeps the incidents in
step.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError, RestrictedError

from incidents.models import Category, Incident, SourceLabel


@dataclass
class LabelMapping:
    incidents_updated: int
    old_category_deleted: bool


def map_label(*, label: SourceLabel, category: Category) -> LabelMapping:
    """Points ``label`` and every incident of it at ``category``, atomically. The old
    category is deleted when it was an "unclassified" placeholder nothing uses any more.

    The old category is read from the database (not from ``label``, which a form may have
    changed already) and locked first: an import inserting incidents of that category
    waits for this to finish, and one that started first is waited for, so no incident
    keeps the old category behind this update's back.
    """
    with transaction.atomic():
        current = SourceLabel.objects.select_for_update().get(pk=label.pk)
        old_category_id = current.category_id
        Category.objects.select_for_update().filter(pk=old_category_id).first()
        if old_category_id != category.pk:
            SourceLabel.objects.filter(pk=label.pk).update(category=category)
        # One UPDATE; also repairs incidents left out of step by an earlier failure.
        updated = (
            Incident.objects.filter(label_id=label.pk)
            .exclude(category_id=category.pk)
            .update(category=category)
        )
        deleted = False
        if old_category_id != category.pk:
            orphan = Category.objects.filter(pk=old_category_id, unclassified=True)
            still_used = (
                SourceLabel.objects.filter(category_id=old_category_id).exists()
                or Incident.objects.filter(category_id=old_category_id).exists()
            )
            if not still_used:
                # Anything else that protects it (a later app's reference) keeps it.
                try:
                    with transaction.atomic():
                        deleted = orphan.delete()[0] > 0
                except (ProtectedError, RestrictedError, IntegrityError):
                    deleted = False
    label.category = category
    return LabelMapping(incidents_updated=updated, old_category_deleted=deleted)
