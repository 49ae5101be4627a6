"""How much of each known source's labels the taxonomy covers, and that every label
naming a sexual offence, incest, child abuse or trafficking lands in a sensitive category.

The open-data tests read the published files in ../shared/data while they run: the
shares are computed from the files, never stored here.
"""

from __future__ import annotations

import csv
import functools
import importlib
import re
from pathlib import Path

import pandas as pd
import pytest
from django.apps import apps

from config.env import FIXTURES_DIR
from incidents.models import Category, Incident, SourceLabel
from incidents.profiles import PROFILES, fold_label
from incidents.taxonomy import BY_CODE
from incidents.tests.factories import make_incident, make_source
from opendata.packs import PACKS

# A pack whose rows this share of (or less) is left "unclassified" still analyses right.
MAX_UNMAPPED_SHARE = 0.02

# Written from the wording of the offences (Código Penal de la CDMX, police.uk categories),
# independently of the rule files, and matched on labels without accents.
SENSITIVE_WORDS = re.compile(
    r"SEXUAL|VIOLACION(?! DE CORRESPONDENCIA)|ESTUPRO|INCEST|MENOR|INFANT|PORNOGRAF|"
    r"TRATA DE|LENOCINIO|PEDERAST|PROSTITU|\bRAPE\b|CHILD|TRAFFICK",
    re.IGNORECASE,
)


# --- the rule files -------------------------------------------------------------------


def _alternatives(pattern: str) -> list[str]:
    """The top-level ``|`` branches of a pattern (a group's branches stay together)."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(pattern):
        if char == "(" and pattern[index - 1 : index] != "\\":
            depth += 1
        elif char == ")" and pattern[index - 1 : index] != "\\":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(pattern[start:index])
            start = index + 1
    return [*parts, pattern[start:]]


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_rule_names_a_category_and_no_label_is_listed_twice(name):
    with (FIXTURES_DIR / "label_rules" / f"{name}.csv").open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert rows
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, start=2):
        assert row["category"] in BY_CODE, f"{name}.csv row {number}"
        for branch in _alternatives(row["pattern"]):
            key = fold_label(branch).upper()
            assert key, f"{name}.csv row {number}: an empty alternative matches every label"
            assert key not in seen, f"{name}.csv rows {seen.get(key)} and {number}: {branch!r}"
            seen[key] = number


def test_every_category_has_both_names_and_a_family():
    for category in BY_CODE.values():
        assert category.name_es.strip() and category.name_en.strip(), category.code
        assert category.family in ("crime", "incivility")


# Labels as the publishers word them, with and without accents, in any case.
SENSITIVE_LABELS = {
    "cdmx": [
        "ABUSO SEXUAL",
        "Abuso sexual agravado",
        "VIOLACIÓN",
        "VIOLACION EQUIPARADA",
        "TENTATIVA DE VIOLACIÓN",
        "ESTUPRO",
        "INCESTO",
        "ACOSO SEXUAL",
        "HOSTIGAMIENTO SEXUAL",
        "CONTRA LA INTIMIDAD SEXUAL",
        "PRIVACIÓN DE LA LIBERTAD PERSONAL CON FINES SEXUALES",
        "PRIVACION DE LA LIBERTAD PERSONAL (REALIZAR ACTO SEXUAL)",
        "CORRUPCIÓN DE MENORES",
        "CORRUPCIÓN DE PERSONAS MENORES DE EDAD",
        "PORNOGRAFÍA INFANTIL",
        "PORNOGRAFIA",
        "TURISMO SEXUAL",
        "PEDERASTIA",
        "ABUSO SEXUAL A MENOR DE EDAD",
        "TRATA DE PERSONAS",
        "LENOCINIO",
        "TRÁFICO DE MENORES",
        "TRAFICO DE INFANTES",
        "VIOLENCIA FAMILIAR",
        "SUSTRACCIÓN DE MENORES",
    ],
    "policeuk": ["Violence and sexual offences", "Violent crime"],
}


@pytest.mark.parametrize(
    ("profile", "label"),
    [(name, label) for name, labels in SENSITIVE_LABELS.items() for label in labels],
)
def test_a_label_naming_a_sexual_child_or_trafficking_offence_is_sensitive(profile, label):
    code = PROFILES[profile].category_for(label)
    assert code is not None and BY_CODE[code].sensitive, (label, code)


def test_a_violation_of_correspondence_is_not_a_sexual_offence():
    """VIOLACIÓN in Spanish is also "breach": opening another's letters is no rape."""
    code = PROFILES["cdmx"].category_for("VIOLACIÓN DE CORRESPONDENCIA")
    assert code == "other-crime"


def test_labels_match_whatever_their_accents_or_spacing():
    cdmx = PROFILES["cdmx"]
    assert cdmx.category_for("USURPACIÓN DE IDENTIDAD") == "fraud"
    assert cdmx.category_for("usurpacion  de identidad") == "fraud"
    assert cdmx.category_for("DANO EN PROPIEDAD AJENA") == "criminal-damage"
    assert cdmx.category_for("PRIVACIÓN DE LA LIBERTAD PERSONAL") == "extortion-kidnapping"


# --- labels already stored, re-pointed by the migration --------------------------------


@pytest.mark.django_db
def test_the_migration_moves_unclassified_labels_and_public_ones_now_sensitive():
    migration = importlib.import_module("incidents.migrations.0005_taxonomy_coverage")
    cdmx, uk = make_source("cdmx-fgj"), make_source("police-uk")
    placeholder = Category.objects.create(
        code="unclassified-cdmx-fgj-usurpacion", name_es="x", name_en="x", unclassified=True
    )
    identity = make_incident(-99.1, 19.4, source=cdmx, category=placeholder.code,
                             label="USURPACIÓN DE IDENTIDAD")  # fmt: skip
    ddh = Category.objects.create(
        code="unclassified-cdmx-fgj-ddh", name_es="y", name_en="y", unclassified=True
    )
    unknown = make_incident(-99.1, 19.4, source=cdmx, category=ddh.code, label="DDH SIN DATOS")
    violence = make_incident(-2.5, 53.7, source=uk, category="assault",
                             label="Violence and sexual offences")  # fmt: skip
    # A planner's own choice for a public label stands.
    chosen = make_incident(-99.1, 19.4, source=cdmx, category="assault",
                           label="LESIONES CULPOSAS POR TRANSITO VEHICULAR")  # fmt: skip

    migration.apply_new_rules(apps, None)

    def category_of(incident):
        incident.refresh_from_db()
        assert incident.label.category_id == incident.category_id
        return incident.category.code

    assert category_of(identity) == "fraud"
    assert not Category.objects.filter(pk=placeholder.pk).exists()
    assert category_of(unknown) == ddh.code
    assert category_of(violence) == "violence-and-sexual"
    assert Category.objects.get(code="violence-and-sexual").sensitive
    assert category_of(chosen) == "assault"
    assert SourceLabel.objects.count() == Incident.objects.count() == 4


# --- the real files -------------------------------------------------------------------


@functools.cache
def _pack_labels(data_dir: Path) -> dict[str, tuple[str, pd.Series]]:
    """For every pack with incidents, its profile name and the label of each of its rows
    (the category column the profile names, as the importer reads it, or its constant
    label), from the files the pack would load."""
    found = {}
    for pack in PACKS.values():
        for layer in pack.incidents:
            profile = PROFILES[layer.profile]
            paths = sorted(p for p in data_dir.rglob(layer.pattern) if p.is_file())
            assert paths, f"pack {pack.name}: no {layer.pattern} under {data_dir}"
            labels = []
            for path in paths:
                frame = pd.read_csv(path, dtype=str, keep_default_na=False)
                column = next((c for c in profile.category if c in frame.columns), None)
                if column is None:
                    assert profile.constant_label, f"{path.name}: no label column"
                    labels.append(pd.Series(profile.constant_label, index=frame.index))
                else:
                    labels.append(frame[column].str.strip())
            found[f"{pack.name} ({layer.pattern})"] = (layer.profile, pd.concat(labels))
    return found


@pytest.fixture
def pack_labels(shared_data):
    return _pack_labels(shared_data)


@pytest.mark.open_data
def test_each_pack_leaves_at_most_two_percent_of_its_rows_unclassified(pack_labels):
    assert any(name.startswith("cdmx") for name in pack_labels)
    for name, (profile, labels) in pack_labels.items():
        counts = labels.value_counts()
        unmapped = [
            label for label in counts.index if PROFILES[profile].category_for(label) is None
        ]
        share = counts[unmapped].sum() / counts.sum()
        assert share <= MAX_UNMAPPED_SHARE, (
            f"{name}: {share:.1%} of the rows unclassified, labels {sorted(unmapped)[:20]}"
        )


@pytest.mark.open_data
def test_every_published_label_naming_a_sensitive_offence_is_sensitive(pack_labels):
    checked = 0
    for name, (profile, labels) in pack_labels.items():
        for label in labels.unique():
            if SENSITIVE_WORDS.search(fold_label(label)):
                code = PROFILES[profile].category_for(label)
                assert code is not None and BY_CODE[code].sensitive, (name, label, code)
                checked += 1
    assert checked > 0  # the CDMX labels include such offences
