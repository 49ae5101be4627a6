"""Barrio's category taxonomy: two families, crime and incivility.

Sensitive categories (sexual offences, domestic violence, child abuse, trafficking) are
never shown publicly in any form. The categories are the rows of ``fixtures/taxonomy.csv``,
applied by a data migration and kept in step by ``ensure_taxonomy`` (idempotent).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from config.env import FIXTURES_DIR


@dataclass(frozen=True)
class CategoryDef:
    code: str
    name_es: str
    name_en: str
    family: str
    sensitive: bool = False


CRIME, INCIVILITY = "crime", "incivility"

# The taxonomy is data (one row a category), so that reviewing a change to it is a data diff.
TAXONOMY_FILE = FIXTURES_DIR / "taxonomy.csv"
FAMILIES = (CRIME, INCIVILITY)
_FLAGS = {"yes": True, "no": False}


def read_taxonomy(path: Path = TAXONOMY_FILE) -> list[CategoryDef]:
    """The categories of ``path``, refusing a file that would make a wrong taxonomy (an
    unknown family or flag, a repeated code) rather than loading part of it."""
    with path.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    categories, seen = [], set()
    for number, row in enumerate(rows, start=2):
        code = row["code"].strip()
        if not code or code in seen:
            raise ValueError(f"{path.name} row {number}: empty or repeated code {code!r}")
        if row["family"] not in FAMILIES or row["sensitive"] not in _FLAGS:
            raise ValueError(f"{path.name} row {number}: family or sensitive flag not known")
        seen.add(code)
        categories.append(
            CategoryDef(
                code, row["name_es"], row["name_en"], row["family"], _FLAGS[row["sensitive"]]
            )
        )
    return categories


CATEGORIES: list[CategoryDef] = read_taxonomy()

BY_CODE = {c.code: c for c in CATEGORIES}


def ensure_taxonomy(category_model, *, overwrite: bool = True) -> None:
    """Every category of the taxonomy exists; ``overwrite`` also resets their names and
    flags to the taxonomy's (the data migration does; post_migrate only adds missing ones,
    e.g. after a test flush, and leaves edits alone)."""
    if not overwrite:
        existing = set(category_model.objects.values_list("code", flat=True))
        category_model.objects.bulk_create(
            [
                category_model(
                    code=item.code,
                    name_es=item.name_es,
                    name_en=item.name_en,
                    family=item.family,
                    sensitive=item.sensitive,
                    unclassified=False,
                )
                for item in CATEGORIES
                if item.code not in existing
            ]
        )
        return
    for item in CATEGORIES:
        category_model.objects.update_or_create(
            code=item.code,
            defaults={
                "name_es": item.name_es,
                "name_en": item.name_en,
                "family": item.family,
                "sensitive": item.sensitive,
                "unclassified": False,
            },
        )


def ensure_taxonomy_after_migrate(sender, apps=None, using="default", **kwargs) -> None:
    """post_migrate: a flushed database (TransactionTestCase, ``manage.py flush``) gets its
    categories back, as role groups do."""
    if sender.name != "incidents":
        return
    if apps is None:  # ``flush`` sends no migration state
        from django.apps import apps
    try:
        category_model = apps.get_model("incidents", "Category")
    except LookupError:  # migrated back before the incidents app
        return
    ensure_taxonomy(category_model, overwrite=False)
