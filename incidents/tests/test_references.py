"""The incident table's references are enforced by statement-level triggers (migration
0003) instead of per-row foreign keys: every way of breaking them must still fail, and the
ORM's on_delete rules must still work."""

import threading

import psycopg2
import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError

from incidents.models import Category, Incident
from incidents.tests.factories import (
    make_district,
    make_incident,
    make_neighborhood,
    make_region,
    make_source,
)
from neighborhoods.models import District, Neighborhood, Region

pytestmark = pytest.mark.django_db

MISSING_ID = 2_000_000_000

REFERENCE_COLUMNS = [
    "source_id",
    "label_id",
    "category_id",
    "region_id",
    "district_id",
    "neighborhood_id",
    "batch_id",
]


@pytest.fixture
def incident():
    region = make_region()
    district = make_district(region, "D1", (-77.1, -12.1, -77.0, -12.0))
    hood = make_neighborhood(region, "N1", (-77.1, -12.1, -77.0, -12.0), district=district)
    return make_incident(-77.05, -12.05, region=region, district=district, neighborhood=hood)


def test_the_seven_references_have_no_per_row_foreign_key():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_constraint "
            "WHERE conrelid = 'incidents_incident'::regclass AND contype = 'f'"
        )
        assert cursor.fetchone()[0] == 0
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'incidents_incident'::regclass "
            "AND NOT tgisinternal ORDER BY tgname"
        )
        assert [name for (name,) in cursor.fetchall()] == [
            "incident_refs_insert",
            "incident_refs_update",
        ]


@pytest.mark.parametrize("column", REFERENCE_COLUMNS)
def test_an_update_to_a_missing_reference_is_refused(incident, column):
    with pytest.raises(IntegrityError, match=column), transaction.atomic():
        Incident.objects.filter(pk=incident.pk).update(**{column: MISSING_ID})
    incident.refresh_from_db()
    assert getattr(incident, column) != MISSING_ID


@pytest.mark.parametrize("column", REFERENCE_COLUMNS)
def test_an_insert_with_a_missing_reference_is_refused(incident, column):
    columns = ", ".join(REFERENCE_COLUMNS)
    values = ", ".join(
        str(MISSING_ID) if name == column else f"i.{name}" for name in REFERENCE_COLUMNS
    )
    with pytest.raises(IntegrityError, match=column), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO incidents_incident (external_id, point, occurred_at, "
                f"time_precision, location_quality, {columns}) "
                f"SELECT 'copy', i.point, i.occurred_at, i.time_precision, "
                f"i.location_quality, {values} FROM incidents_incident i WHERE i.id = %s",
                [incident.pk],
            )
    assert not Incident.objects.filter(external_id="copy").exists()


def test_a_null_optional_reference_is_accepted(incident):
    Incident.objects.filter(pk=incident.pk).update(district=None, neighborhood=None)
    incident.refresh_from_db()
    assert incident.district_id is None and incident.neighborhood_id is None


@pytest.mark.parametrize(
    ("table", "attribute"),
    [
        ("incidents_category", "category_id"),
        ("incidents_sourcelabel", "label_id"),
        ("incidents_incidentsource", "source_id"),
        ("incidents_importbatch", "batch_id"),
        ("neighborhoods_region", "region_id"),
        ("neighborhoods_district", "district_id"),
        ("neighborhoods_neighborhood", "neighborhood_id"),
    ],
)
def test_a_raw_delete_cannot_orphan_an_incident(incident, table, attribute):
    referenced = getattr(incident, attribute)
    with pytest.raises(IntegrityError, match="still referenced"), transaction.atomic():
        with connection.cursor() as cursor:
            # Deferred Django FKs between the other tables would complain at commit; the
            # incident trigger fires at the end of the DELETE statement itself.
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            cursor.execute(f"DELETE FROM {table} WHERE id = %s", [referenced])
    assert Incident.objects.filter(pk=incident.pk).exists()


def test_deleting_an_unreferenced_row_still_works(incident):
    unused = Category.objects.exclude(pk=incident.category_id).filter(unclassified=False).first()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM incidents_sourcelabel WHERE category_id = %s", [unused.pk])
        cursor.execute("DELETE FROM incidents_category WHERE id = %s", [unused.pk])
    assert not Category.objects.filter(pk=unused.pk).exists()


def test_the_orm_on_delete_rules_still_apply(incident):
    with pytest.raises(ProtectedError):
        Category.objects.filter(pk=incident.category_id).delete()
    Neighborhood.objects.filter(pk=incident.neighborhood_id).delete()  # SET_NULL
    District.objects.filter(pk=incident.district_id).delete()  # SET_NULL
    incident.refresh_from_db()
    assert incident.district_id is None and incident.neighborhood_id is None
    Region.objects.filter(pk=incident.region_id).delete()  # CASCADE
    assert not Incident.objects.filter(pk=incident.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_delete_waits_for_the_import_that_references_the_row():
    """The trigger locks the referenced rows FOR KEY SHARE, as a foreign key does: a
    delete of a referenced source in another transaction waits, then sees the new
    incident and is refused."""
    incident = make_incident(-77.05, -12.05, source=make_source("first"))
    other = make_source("second")
    outcome: dict = {}

    with transaction.atomic():
        Incident.objects.filter(pk=incident.pk).update(source=other)

        started = threading.Event()

        def delete_other_source():
            raw = psycopg2.connect(**connection.get_connection_params())
            raw.autocommit = True
            try:
                with raw.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    outcome["pid"] = cursor.fetchone()[0]
                    started.set()
                    cursor.execute("SET lock_timeout = '20s'")
                    cursor.execute("DELETE FROM incidents_incidentsource WHERE id = %s", [other.pk])
                outcome["deleted"] = True
            except psycopg2.Error as error:
                outcome["error"] = error
            finally:
                raw.close()

        thread = threading.Thread(target=delete_other_source)
        thread.start()
        assert started.wait(timeout=60)
        assert _waits_for_a_lock(outcome["pid"]), "the delete did not wait for the transaction"
        assert "deleted" not in outcome
    thread.join(timeout=30)
    assert "deleted" not in outcome
    assert "still referenced" in str(outcome["error"])
    assert Incident.objects.get(pk=incident.pk).source_id == other.pk


def _waits_for_a_lock(pid: int, *, polls: int = 600) -> bool:
    """Whether backend ``pid`` comes to wait for a lock (asked of PostgreSQL, not guessed
    from a clock: it may take a busy machine a while to get there)."""
    import time

    with connection.cursor() as cursor:
        for _ in range(polls):
            # pg_locks, not pg_stat_activity: the latter is a snapshot frozen for the
            # length of the test's transaction.
            cursor.execute(
                "SELECT EXISTS (SELECT FROM pg_locks WHERE pid = %s AND NOT granted)", [pid]
            )
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.05)
    return False
