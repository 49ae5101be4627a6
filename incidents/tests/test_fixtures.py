"""The reviewed data files in fixtures/: the taxonomy, the label mappings and the sample
import file the README points to."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

from config.env import FIXTURES_DIR
from incidents.demo import BAD_ROWS, DEMO_PROFILE, DEMO_SOURCE, generate_demo_incidents
from incidents.models import Category, Incident
from incidents.profiles import PROFILES, read_label_rules
from incidents.services.imports import ImportRefused, import_incidents
from incidents.services.request import ImportRequest
from incidents.taxonomy import CATEGORIES, read_taxonomy

SAMPLE = FIXTURES_DIR / "samples" / "incidents_demo_city.csv"


@pytest.mark.django_db
def test_the_taxonomy_file_is_what_the_database_holds():
    stored = {
        c.code: (c.name_es, c.name_en, c.family, c.sensitive)
        for c in Category.objects.filter(unclassified=False)
    }
    with (FIXTURES_DIR / "taxonomy.csv").open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))

    assert stored == {
        r["code"]: (r["name_es"], r["name_en"], r["family"], r["sensitive"] == "yes") for r in rows
    }
    assert {c.code for c in CATEGORIES if c.sensitive} == {
        "sexual-offence",
        "domestic-violence",
        "child-abuse",
        "trafficking",
        "violence-and-sexual",
        "child-abduction",
        "family-offence",
        "missing-person",
        "suicide",
        "health-offence",
    }


def test_a_taxonomy_file_with_a_repeated_code_or_unknown_family_is_refused(tmp_path):
    path = tmp_path / "taxonomy.csv"
    header = "code,name_es,name_en,family,sensitive\n"
    path.write_text(header + "graffiti,Grafiti,Graffiti,incivility,no\n" * 2)
    with pytest.raises(ValueError, match="row 3: empty or repeated code"):
        read_taxonomy(path)

    path.write_text(header + "graffiti,Grafiti,Graffiti,nuisance,no\n")
    with pytest.raises(ValueError, match="row 2: family or sensitive flag"):
        read_taxonomy(path)


def test_every_label_rule_file_is_read_in_order_by_its_profile():
    for name, profile in PROFILES.items():
        with (FIXTURES_DIR / "label_rules" / f"{name}.csv").open(encoding="utf-8") as file:
            rows = [(r["pattern"], r["category"]) for r in csv.DictReader(file)]
        assert profile.label_rules == tuple(rows)
    # The first matching rule wins: a sensitive label never falls to a general rule below it.
    assert PROFILES["cdmx"].category_for("ABUSO SEXUAL") == "sexual-offence"
    assert PROFILES["cdmx"].category_for("ROBO A TRANSEUNTE EN VIA PUBLICA CON VIOLENCIA") == (
        "robbery-person"
    )


def test_a_label_rule_naming_no_category_or_not_compiling_is_refused(tmp_path, monkeypatch):
    from incidents import profiles

    monkeypatch.setattr(profiles, "LABEL_RULES_DIR", tmp_path)
    (tmp_path / "bad.csv").write_text("pattern,category\nROBO,robbery-of-the-moon\n")
    with pytest.raises(ValueError, match="row 2: no category 'robbery-of-the-moon'"):
        read_label_rules("bad")

    (tmp_path / "bad.csv").write_text("pattern,category\nROBO(,other-theft\n")
    with pytest.raises(ValueError, match="row 2"):
        read_label_rules("bad")


def test_the_sample_file_holds_the_demo_generators_rows_and_its_bad_rows():
    sample = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    generated = generate_demo_incidents().astype(str).set_index("id")

    good = sample[~sample["id"].str.startswith("DEMO-BAD")]
    assert len(good) == 20
    for record in good.to_dict("records"):
        expected = generated.loc[record["id"]]
        assert [record[c] for c in ("fecha", "tipo")] == [expected["fecha"], expected["tipo"]]
        assert float(record["lat"]) == pytest.approx(float(expected["lat"]))
    assert sorted(sample.loc[sample["id"].str.startswith("DEMO-BAD"), "id"]) == [
        row["id"] for row in BAD_ROWS
    ]


@pytest.mark.django_db
def test_the_sample_file_imports_into_the_demo_city_refusing_its_three_bad_rows():
    from neighborhoods.demo import load_demo_boundaries

    load_demo_boundaries()
    request = ImportRequest(paths=[SAMPLE], source=DEMO_SOURCE, profile=DEMO_PROFILE)

    with pytest.raises(ImportRefused) as refused:
        import_incidents(request=request)
    assert [r.row_number for r in refused.value.result.refused] == [8, 16, 24]
    assert Incident.objects.count() == 0

    skipped = import_incidents(
        request=ImportRequest(
            paths=[SAMPLE], source=DEMO_SOURCE, profile=DEMO_PROFILE, skip_bad=True
        )
    )
    assert skipped.rows_created == 20
    assert Incident.objects.filter(district__isnull=False).count() == 20
