"""Mapping a source's label to a category of the taxonomy.

Incident.category is denormalised from its label's category so that filters need no join;
``map_label`` is the one place that changes a label's category and keeps the incidents in
step. An import gives the labels it reads their SourceLabel and category with
``LabelMapper``, creating the ones it has not seen.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError, RestrictedError
from django.utils.text import slugify

from incidents.models import Category, Incident, IncidentSource, SourceLabel
from incidents.services.request import ImportRequest

UNCLASSIFIED_PREFIX = "unclassified-"


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


class LabelMapper:
    """Source labels to (SourceLabel id, category id), creating a SourceLabel for every new
    label on the way (by the profile's rules, else an unclassified category of its own).
    Created inside the import's transaction: a refused import leaves none behind."""

    def __init__(self, request: ImportRequest, source: IncidentSource):
        self.request = request
        self.source = source
        # Held until the import commits: map_label (which locks a label FOR UPDATE before
        # moving it and its incidents to another category) waits for this import, or this
        # import waits for it and reads the new mapping. Either way no incident is written
        # with a category its label has left.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM incidents_sourcelabel WHERE source_id = %s FOR SHARE", [source.pk]
            )
        self.known = {
            sl.label: (sl.pk, sl.category_id, sl.category.unclassified)
            for sl in SourceLabel.objects.filter(source=source).select_related("category")
        }
        self.counts: dict[str, int] = {}
        self._categories = None
        # Held around this object's statements once a ChunkWriter shares the connection.
        self.db_lock = contextlib.nullcontext()

    def ids(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        codes, uniques = pd.factorize(pd.Series(labels, dtype=object), sort=False)
        label_ids = np.empty(len(uniques), dtype=np.int64)
        category_ids = np.empty(len(uniques), dtype=np.int64)
        per_code = np.bincount(codes, minlength=len(uniques))
        for code, label in enumerate(uniques):
            label_ids[code], category_ids[code], _ = self._get(label)
            self.counts[label] = self.counts.get(label, 0) + int(per_code[code])
        return label_ids[codes], category_ids[codes]

    def forget(self, label_ids: list[int]) -> None:
        """Rows removed from staging (duplicates) no longer count for their label."""
        by_id = {pk: label for label, (pk, _, _) in self.known.items()}
        for pk in label_ids:
            self.counts[by_id[pk]] -= 1

    def unmapped(self) -> dict[str, int]:
        return {
            label: count for label, count in self.counts.items() if count and self.known[label][2]
        }

    def _get(self, label: str) -> tuple[int, int, bool]:
        if label in self.known:
            return self.known[label]
        # get_or_create opens a savepoint: a chunk written inside it could be rolled back
        # with it, so the writer waits.
        with self.db_lock:
            return self._create(label)

    def _create(self, label: str) -> tuple[int, int, bool]:
        request, source = self.request, self.source
        if self._categories is None:
            self._categories = {c.code: c for c in Category.objects.filter(unclassified=False)}
        code = request.profile.category_for(label) if request.profile else None
        category = self._categories.get(code) if code else None
        if category is None:
            family = request.family or (
                request.profile.family if request.profile else source.default_family
            )
            # Labels that slugify alike ("Daño", "DANO") still get categories of their own.
            slug = slugify(f"{source.name} {label}")[:96]
            digest = hashlib.sha1(f"{source.name}\n{label}".encode(), usedforsecurity=False)
            category, _ = Category.objects.get_or_create(
                code=f"{UNCLASSIFIED_PREFIX}{slug}-{digest.hexdigest()[:8]}",
                defaults={
                    "name_es": f"Sin clasificar: {label or '(vacío)'}"[:200],
                    "name_en": f"Unclassified: {label or '(blank)'}"[:200],
                    "family": family,
                    "unclassified": True,
                },
            )
        made = SourceLabel.objects.create(source=source, label=label, category=category)
        self.known[label] = (made.pk, category.pk, category.unclassified)
        return self.known[label]
