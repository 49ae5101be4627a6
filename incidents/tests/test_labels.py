"""Mapping a source's label to a category re-points its incidents."""

import pytest

from incidents.models import Category, Incident, SourceLabel
from incidents.services.imports import import_incidents
from incidents.services.labels import map_label
from incidents.services.reading import ColumnMapping
from incidents.services.request import ImportRequest
from tests.geodata import grid_cell

pytestmark = pytest.mark.django_db

CSV = (
    "id,date,category,lat,lon\n"
    "1,2024-03-01 10:00,PINTAS EN MUROS,-12.095,-77.095\n"
    "2,2024-03-02 10:00,PINTAS EN MUROS,-12.095,-77.085\n"
    "3,2024-03-03 10:00,Pintas en muros,-12.094,-77.094\n"
    "4,2024-03-04 10:00,OTRA COSA,-12.094,-77.084\n"
)


@pytest.fixture
def imported(make_region, tmp_path):
    make_region("testville", {"D1": ("Uno", grid_cell(0)), "D2": ("Dos", grid_cell(1))})
    path = tmp_path / "labels.csv"
    path.write_text(CSV)
    import_incidents(
        request=ImportRequest(
            paths=[path],
            source="muni",
            columns=ColumnMapping(id="id", date="date", category="category"),
            timezone="America/Lima",
        )
    )
    return {sl.label: sl for sl in SourceLabel.objects.select_related("category")}


def test_new_labels_start_unclassified(imported):
    assert all(label.category.unclassified for label in imported.values())
    assert len({label.category_id for label in imported.values()}) == 3


def test_map_label_repoints_incidents_and_deletes_the_orphan_placeholder(imported):
    graffiti = Category.objects.get(code="graffiti")
    other = imported["OTRA COSA"]
    placeholder = other.category

    result = map_label(label=other, category=graffiti)

    assert result.incidents_updated == 1
    assert result.old_category_deleted is True
    assert not Category.objects.filter(pk=placeholder.pk).exists()
    assert SourceLabel.objects.get(pk=other.pk).category == graffiti
    assert other.category == graffiti
    assert Incident.objects.get(external_id="4").category == graffiti
    # Other labels' incidents are untouched.
    assert Incident.objects.filter(category=graffiti).count() == 1


def test_a_placeholder_still_used_by_another_label_is_kept(imported):
    graffiti = Category.objects.get(code="graffiti")
    upper, lower = imported["PINTAS EN MUROS"], imported["Pintas en muros"]
    placeholder = upper.category
    # Both spellings share one placeholder (as a planner might arrange with map_label).
    first_of_lower = lower.category
    map_label(label=lower, category=placeholder)
    assert not Category.objects.filter(pk=first_of_lower.pk).exists()

    first = map_label(label=upper, category=graffiti)
    assert (first.incidents_updated, first.old_category_deleted) == (2, False)
    assert Category.objects.filter(pk=placeholder.pk).exists()
    assert Incident.objects.get(external_id="3").category == placeholder

    second = map_label(label=lower, category=graffiti)
    assert (second.incidents_updated, second.old_category_deleted) == (1, True)
    assert not Category.objects.filter(pk=placeholder.pk).exists()
    assert set(
        Incident.objects.filter(external_id__in=["1", "2", "3"]).values_list(
            "category__code", flat=True
        )
    ) == {"graffiti"}


def test_remapping_a_classified_label_keeps_the_taxonomy_category(imported):
    graffiti = Category.objects.get(code="graffiti")
    litter = Category.objects.get(code="litter")
    label = imported["OTRA COSA"]
    map_label(label=label, category=graffiti)

    result = map_label(label=label, category=litter)

    assert (result.incidents_updated, result.old_category_deleted) == (1, False)
    assert Category.objects.filter(pk=graffiti.pk).exists()
    assert Incident.objects.get(external_id="4").category == litter


def test_map_label_reads_the_old_category_from_the_database(imported):
    """An admin form assigns the new category to the instance before saving."""
    graffiti = Category.objects.get(code="graffiti")
    label = imported["OTRA COSA"]
    placeholder = label.category
    label.category = graffiti  # as ModelForm does

    result = map_label(label=label, category=graffiti)

    assert result.incidents_updated == 1 and result.old_category_deleted
    assert not Category.objects.filter(pk=placeholder.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_an_import_in_progress_holds_its_labels_against_a_concurrent_remapping(
    make_region, tmp_path
):
    """While an import's transaction is open, map_label (which locks the label FOR UPDATE)
    cannot move the label's incidents to another category behind the import's back."""
    import psycopg2
    from django.db import connection, transaction

    from incidents.services.imports import get_or_create_source
    from incidents.services.labels import LabelMapper

    make_region("testville", {"D1": ("Uno", grid_cell(0)), "D2": ("Dos", grid_cell(1))})
    path = tmp_path / "labels.csv"
    path.write_text(CSV)
    request = ImportRequest(
        paths=[path],
        source="muni",
        columns=ColumnMapping(id="id", date="date", category="category"),
        timezone="America/Lima",
    )
    import_incidents(request=request)
    label = SourceLabel.objects.get(label="OTRA COSA")

    def remap_attempt() -> str:
        other = psycopg2.connect(**connection.get_connection_params())
        try:
            with other, other.cursor() as cursor:
                cursor.execute("SET lock_timeout = '300ms'")
                cursor.execute(
                    "SELECT id FROM incidents_sourcelabel WHERE id = %s FOR UPDATE", [label.pk]
                )
            return "locked"
        except psycopg2.errors.LockNotAvailable:
            return "waited"
        finally:
            other.close()

    with transaction.atomic():
        LabelMapper(request, get_or_create_source(request))
        assert remap_attempt() == "waited"
    assert remap_attempt() == "locked"
