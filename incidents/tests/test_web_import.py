"""Imports started from the planner pages and the API (tasks run inline in the test settings)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from django.urls import reverse

from accounts.models import Role
from common.jobs import IMPORT_BATCH_JOBS
from incidents.models import Category, ImportBatch, Incident, RefusedRow, SourceLabel
from incidents.services import batches
from tests.geodata import grid_cell
from tests.sessions import end_session

pytestmark = [pytest.mark.django_db]

GOOD_CSV = (
    "id,date,category,lat,lon\n"
    "A1,2024-03-01 10:00,ROBO,-12.095,-77.095\n"
    "A2,2024-03-02 22:30,ROBO,-12.095,-77.085\n"
    "A3,2024-03-03,GRAFITI,-12.094,-77.094\n"
)
# Row 3: a date that is no date; row 5: no coordinates (the header is row 1).
BAD_CSV = (
    "id,date,category,lat,lon\n"
    "B1,2024-03-01 10:00,ROBO,-12.095,-77.095\n"
    "B2,not-a-date,ROBO,-12.095,-77.085\n"
    "B3,2024-03-03,ROBO,-12.094,-77.094\n"
    "B4,2024-03-04,ROBO,,\n"
)
OPTIONS = {
    "source": "test-src",
    "id": "id",
    "date": "date",
    "category": "category",
    "lat": "lat",
    "lon": "lon",
    "timezone": "America/Lima",
}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.INCIDENT_UPLOAD_ROOT = str(tmp_path / "uploads")
    return tmp_path / "uploads"


@pytest.fixture
def region(make_region):
    return make_region("testville", {"D1": ("Uno", grid_cell(0)), "D2": ("Dos", grid_cell(1))})


def _user(django_user_model, name, role=None, **extra):
    user = django_user_model.objects.create_user(name, password="x", **extra)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def planner(django_user_model):
    return _user(django_user_model, "planner", Role.PLANNER)


@pytest.fixture
def planner_client(client, planner):
    client.force_login(planner)
    return client


def _csv(text: str, name: str = "incidents.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def _uploads_left(media) -> list:
    folder = media / batches.UPLOAD_FOLDER
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


# --- a planner imports -----------------------------------------------------------------------


def test_planner_imports_a_csv_through_the_page(planner_client, planner, region, media):
    response = planner_client.post(
        reverse("incidents:import-new"), {**OPTIONS, "files": _csv(GOOD_CSV)}
    )
    batch = ImportBatch.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("incidents:import-detail", args=[batch.pk])
    assert batch.status == ImportBatch.Status.SUCCEEDED
    assert (batch.rows_read, batch.rows_created, batch.rows_refused) == (3, 3, 0)
    assert batch.created_by == planner
    assert batch.progress == 1.0
    assert batch.options["columns"] == {
        "id": "id",
        "date": "date",
        "category": "category",
        "lat": "lat",
        "lon": "lon",
    }
    assert batch.files[0]["name"] == "incidents.csv" and len(batch.files[0]["sha256"]) == 64
    assert batch.files[0]["rows"] == 3  # rows read from the file, shown on the batch page
    assert Incident.objects.filter(batch=batch).count() == 3
    assert set(Incident.objects.values_list("district__code", flat=True)) == {"D1", "D2"}
    assert _uploads_left(media) == []  # the uploaded files are deleted when the job ends

    page = planner_client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="count-created">3<' in html
    assert "progress-config" not in html  # finished: nothing to poll
    listing = planner_client.get(reverse("incidents:import-list")).content.decode()
    assert reverse("incidents:import-detail", args=[batch.pk]) in listing

    progress = planner_client.get(reverse("incidents:import-progress", args=[batch.pk])).json()
    assert progress["finished"] is True and progress["status"] == "succeeded"
    assert progress["progress"] == 1.0


def test_a_bulk_load_through_the_page_says_its_indexes_were_built_again(
    planner_client, region, settings
):
    settings.INCIDENT_BULK_LOAD_MIN_ROWS = 1
    response = planner_client.post(
        reverse("incidents:import-new"), {**OPTIONS, "files": _csv(GOOD_CSV)}
    )
    batch = ImportBatch.objects.get()
    assert batch.status == ImportBatch.Status.SUCCEEDED and batch.rows_created == 3
    assert "incident_point_gist" in batch.report["indexes_rebuilt"]
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'incidents_incident'")
        assert set(batch.report["indexes_rebuilt"]) < {name for (name,) in cursor.fetchall()}

    planner_client.cookies.load({"django_language": "en"})
    html = planner_client.get(response["Location"]).content.decode()
    assert "built once after loading instead of row by row" in html
    assert "Build the indexes again (bulk load)" in html
    planner_client.cookies.load({"django_language": "es"})
    html = planner_client.get(response["Location"]).content.decode()
    assert "una sola vez al final de la carga" in html
    assert "Reconstruir los índices (carga masiva)" in html


def test_the_upload_form_offers_the_command_options(planner_client):
    html = planner_client.get(reverse("incidents:import-new")).content.decode()
    for name in [
        "files",
        "profile",
        "source",
        "lat",
        "lon",
        "x",
        "y",
        "crs",
        "id",
        "date",
        "time",
        "category",
        "timezone",
        "family",
        "location_quality",
        "skip_bad",
        "dry_run",
    ]:
        assert f'name="{name}"' in html, name
    assert 'enctype="multipart/form-data"' in html


def test_planner_imports_a_csv_through_the_api(planner_client, region, media):
    response = planner_client.post(
        reverse("import-batch-list"), {**OPTIONS, "files": _csv(GOOD_CSV)}
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "succeeded" and body["finished"] is True
    assert (body["rows_read"], body["rows_created"], body["rows_refused"]) == (3, 3, 0)
    assert body["refused_rows"] == []
    assert response["Location"].endswith(reverse("import-batch-detail", args=[body["id"]]))
    assert Incident.objects.count() == 3
    assert _uploads_left(media) == []

    listing = planner_client.get(reverse("import-batch-list")).json()
    assert listing["count"] == 1 and listing["results"][0]["id"] == body["id"]
    detail = planner_client.get(reverse("import-batch-detail", args=[body["id"]])).json()
    assert detail["source"] == "test-src" and detail["rows_created"] == 3

    # The same file again changes nothing.
    again = planner_client.post(
        reverse("import-batch-list"), {**OPTIONS, "files": _csv(GOOD_CSV)}
    ).json()
    assert (again["rows_created"], again["rows_unchanged"]) == (0, 3)
    assert Incident.objects.count() == 3


def test_the_batch_api_answers_are_never_cached(planner_client, region, media):
    """Batches name files and refused rows (a victim's address can be in one): every
    answer, the refusals included, is private and not stored by a shared cache."""
    created = planner_client.post(
        reverse("import-batch-list"), {**OPTIONS, "files": _csv(GOOD_CSV)}
    )
    detail_url = reverse("import-batch-detail", args=[created.json()["id"]])
    answers = {
        "post": created,
        "list": planner_client.get(reverse("import-batch-list")),
        "detail": planner_client.get(detail_url),
        "bad window": planner_client.get(detail_url, {"refused_limit": "x"}),
        "unknown": planner_client.get(reverse("import-batch-detail", args=[10**6])),
    }
    answers["anonymous"] = Client().get(reverse("import-batch-list"))
    statuses = {name: answer.status_code for name, answer in answers.items()}
    assert statuses == {
        "post": 202,
        "list": 200,
        "detail": 200,
        "bad window": 400,
        "unknown": 404,
        "anonymous": 403,
    }
    assert {name: a["Cache-Control"] for name, a in answers.items()} == dict.fromkeys(
        answers, "private, no-store"
    )


def test_a_profile_names_the_source_when_none_is_given(planner_client, region):
    csv = (
        "CASE_ENQUIRY_ID,OPEN_DT,TYPE,LATITUDE,LONGITUDE\n"
        "101,2024-03-01 10:00:00,Graffiti Removal,-12.095,-77.095\n"
    )
    response = planner_client.post(
        reverse("import-batch-list"), {"profile": "boston311", "files": _csv(csv, "311.csv")}
    )
    assert response.status_code == 202, response.content
    assert response.json()["source"] == "boston-311"
    assert Incident.objects.get().category.code == "graffiti"


# --- refused rows ----------------------------------------------------------------------------


def test_bad_rows_fail_the_batch_write_nothing_and_show_their_numbers(
    planner_client, region, media
):
    response = planner_client.post(
        reverse("incidents:import-new"), {**OPTIONS, "files": _csv(BAD_CSV, "bad.csv")}
    )
    batch = ImportBatch.objects.get()
    assert response.status_code == 302
    assert batch.status == ImportBatch.Status.FAILED
    assert batch.rows_refused == 2 and batch.rows_created == 0
    assert not Incident.objects.exists()
    assert not SourceLabel.objects.exists()  # not even the new label
    assert not Category.objects.filter(unclassified=True).exists()
    assert list(batch.refused_rows.values_list("row_number", flat=True)) == [3, 5]
    assert _uploads_left(media) == []

    # Reasons are kept as a code and its values, and written in the reader's language.
    assert list(batch.refused_rows.values_list("reason_code", "reason_params", "reason")) == [
        ("unparsable_date", {"value": "'not-a-date'"}, "unparsable date 'not-a-date'"),
        ("missing_coordinates", {}, "missing coordinates"),
    ]
    html = planner_client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert 'id="refused-rows"' in html
    assert (
        '<td>bad.csv</td><td class="num">3</td><td>fecha ilegible &#x27;not-a-date&#x27;</td>'
        in html
    )
    assert '<td>bad.csv</td><td class="num">5</td><td>faltan las coordenadas</td>' in html
    assert "<li>fecha ilegible: 1</li>" in html and "<li>faltan las coordenadas: 1</li>" in html
    html = planner_client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<td>bad.csv</td><td class="num">5</td><td>missing coordinates</td>' in html

    url = reverse("import-batch-detail", args=[batch.pk])
    api = planner_client.get(url, HTTP_ACCEPT_LANGUAGE="en").json()
    assert api["status"] == "failed"
    assert [(r["row_number"], r["reason"], r["reason_code"]) for r in api["refused_rows"]] == [
        (3, "unparsable date 'not-a-date'", "unparsable_date"),
        (5, "missing coordinates", "missing_coordinates"),
    ]
    api = planner_client.get(url, HTTP_ACCEPT_LANGUAGE="es").json()
    assert [r["reason"] for r in api["refused_rows"]] == [
        "fecha ilegible 'not-a-date'",
        "faltan las coordenadas",
    ]
    # A row refused before reasons had codes shows its English sentence as it was.
    batch.refused_rows.filter(row_number=5).update(reason="an old reason", reason_code="")
    html = planner_client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert '<td class="num">5</td><td>an old reason</td>' in html
    window = planner_client.get(
        reverse("import-batch-detail", args=[batch.pk]), {"refused_offset": 1, "refused_limit": 1}
    ).json()
    assert [r["row_number"] for r in window["refused_rows"]] == [5]


def test_skip_bad_writes_the_good_rows_and_keeps_the_refused_ones(planner_client, region):
    response = planner_client.post(
        reverse("import-batch-list"),
        {**OPTIONS, "skip_bad": "true", "files": _csv(BAD_CSV, "bad.csv")},
    )
    body = response.json()
    assert body["status"] == "succeeded"
    assert (body["rows_created"], body["rows_refused"]) == (2, 2)
    assert [r["row_number"] for r in body["refused_rows"]] == [3, 5]
    assert Incident.objects.count() == 2


def test_dry_run_reports_and_writes_nothing(planner_client, region):
    planner_client.post(
        reverse("incidents:import-new"), {**OPTIONS, "dry_run": "on", "files": _csv(GOOD_CSV)}
    )
    batch = ImportBatch.objects.get()
    assert batch.status == batches.DRY_RUN_STATUS
    assert batch.rows_created == 3
    assert not Incident.objects.exists()
    page = planner_client.get(reverse("incidents:import-detail", args=[batch.pk]))
    assert "progress-config" not in page.content.decode()


def test_a_file_that_cannot_be_read_fails_the_batch_with_its_error(planner_client, region, media):
    planner_client.post(
        reverse("incidents:import-new"),
        {**OPTIONS, "category": "delito", "files": _csv(GOOD_CSV)},
    )
    batch = ImportBatch.objects.get()
    assert batch.status == ImportBatch.Status.FAILED
    assert "'delito'" in batch.report["error"]
    assert _uploads_left(media) == []
    html = planner_client.get(reverse("incidents:import-detail", args=[batch.pk])).content.decode()
    assert "delito" in html


# --- refused uploads -------------------------------------------------------------------------


def test_a_bad_suffix_is_a_form_error_and_nothing_is_saved(planner_client, region, media):
    response = planner_client.post(
        reverse("incidents:import-new"),
        {**OPTIONS, "files": SimpleUploadedFile("incidents.txt", GOOD_CSV.encode())},
    )
    assert response.status_code == 200
    assert "incidents.txt" in str(response.context["form"].errors["files"])
    assert not ImportBatch.objects.exists()
    assert _uploads_left(media) == []


@override_settings(INCIDENT_UPLOAD_MAX_BYTES=50)
def test_a_too_large_upload_is_a_form_error_and_nothing_is_saved(planner_client, region, media):
    response = planner_client.post(
        reverse("incidents:import-new"), {**OPTIONS, "files": _csv(GOOD_CSV)}
    )
    assert response.status_code == 200
    assert "MB" in str(response.context["form"].errors["files"])
    assert not ImportBatch.objects.exists()
    assert _uploads_left(media) == []

    api = planner_client.post(reverse("import-batch-list"), {**OPTIONS, "files": _csv(GOOD_CSV)})
    assert api.status_code == 400 and "files" in api.json()
    assert not ImportBatch.objects.exists()


def test_bad_options_are_field_errors(planner_client, region, media):
    bad = {
        "source": "Not A Slug",
        "x": "easting",
        "crs": "EPSG:nonsense",
        "timezone": "Mars/Olympus",
        "family": "weather",
        "files": _csv(GOOD_CSV),
    }
    response = planner_client.post(reverse("import-batch-list"), bad)
    assert response.status_code == 400
    errors = response.json()
    assert {"source", "y", "crs", "timezone", "family"} <= set(errors), errors
    assert all(isinstance(messages, list) and messages for messages in errors.values())

    page = planner_client.post(reverse("incidents:import-new"), {**bad, "files": _csv(GOOD_CSV)})
    assert {"source", "y", "crs", "timezone", "family"} <= set(page.context["form"].errors)
    assert not ImportBatch.objects.exists()
    assert _uploads_left(media) == []

    missing = planner_client.post(reverse("import-batch-list"), {"source": "test-src"})
    assert missing.status_code == 400 and "files" in missing.json()


# --- the job ---------------------------------------------------------------------------------


@override_settings(TASKS={"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}})
def test_a_queued_upload_waits_with_safe_names_until_a_worker_runs_it(planner, region, media):
    batch = batches.start_web_import(
        user=planner,
        uploaded_files=[_csv(GOOD_CSV, "../../etc/Robos marzo.csv")],
        options=OPTIONS,
    )
    assert batch.status == ImportBatch.Status.QUEUED
    saved = batches.upload_dir(batch.pk) / "Robos_marzo.csv"
    assert saved.read_text() == GOOD_CSV
    assert batch.files[0]["name"] == "Robos_marzo.csv"

    from django_tasks_db.models import DBTaskResult

    task = DBTaskResult.objects.get()
    assert task.args_kwargs["args"] == [batch.pk]

    assert batches.run_web_import(batch.pk) == {"batch": batch.pk, "status": "succeeded"}
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.SUCCEEDED and batch.rows_created == 3
    assert not batches.upload_dir(batch.pk).exists()
    # A second run of the same job never imports twice.
    assert batches.run_web_import(batch.pk)["status"] == "succeeded"
    assert ImportBatch.objects.get().rows_created == 3


def test_safe_file_names():
    assert batches.safe_file_names(
        ["a.csv", "A.CSV", "../x/.hidden.geojson", "..", "c d.gpkg"]
    ) == [
        "a.csv",
        "A-2.csv",
        "hidden.geojson",
        "file-4",
        "c_d.gpkg",
    ]


@pytest.mark.django_db(transaction=True)
def test_progress_written_inside_the_import_transaction_is_seen_by_other_connections():
    """The page polls on another connection while the import's transaction is open: the
    writer's progress must be visible there at once, and survive a rollback."""
    import threading

    from django.db import connections, transaction

    batch = ImportBatch.objects.create(source=_source(), status=ImportBatch.Status.RUNNING)
    writer = batches.ProgressWriter(batch.pk)
    seen = {}

    def read_elsewhere():
        seen["progress"] = ImportBatch.objects.get(pk=batch.pk).progress
        connections.close_all()

    with transaction.atomic():
        writer(0.5)
        reader = threading.Thread(target=read_elsewhere)
        reader.start()
        reader.join()
        transaction.set_rollback(True)
    assert writer.writes == 1
    assert seen["progress"] == 0.5
    assert ImportBatch.objects.get(pk=batch.pk).progress == 0.5


@pytest.mark.django_db(transaction=True)
def test_a_batch_whose_job_died_is_marked_failed_and_a_live_one_is_left_alone(planner_client):
    """A RUNNING batch is alive while its job holds the batch's advisory lock; once that
    lock is gone (PostgreSQL drops it with a dead job's connection) the pages fail it."""
    import psycopg2
    from django.db import connection

    alive = ImportBatch.objects.create(source=_source(), status=ImportBatch.Status.RUNNING)
    dead = ImportBatch.objects.create(source=alive.source, status=ImportBatch.Status.RUNNING)
    job = psycopg2.connect(**connection.get_connection_params())
    try:
        with job.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [IMPORT_BATCH_JOBS, alive.pk])
        page = planner_client.get(reverse("incidents:import-list"))
        assert page.status_code == 200
        alive.refresh_from_db()
        dead.refresh_from_db()
        assert alive.status == ImportBatch.Status.RUNNING
        assert dead.status == ImportBatch.Status.FAILED
        assert "se detuvo antes de terminar" in dead.report["error"]  # default language
    finally:
        end_session(job)  # the job "dies"
    assert (
        planner_client.get(reverse("import-batch-detail", args=[alive.pk])).json()["status"]
        == ImportBatch.Status.FAILED
    )


def test_a_finished_job_releases_its_lock(planner, region):
    from django.db import connection

    batch = batches.start_web_import(user=planner, uploaded_files=[_csv(GOOD_CSV)], options=OPTIONS)
    batches.run_web_import(batch.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            # This test database's locks only: other test runs on the server hold their own.
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            [IMPORT_BATCH_JOBS],
        )
        assert cursor.fetchone()[0] == 0
    assert batches.fail_abandoned_batches() == 0


def _source():
    from incidents.models import IncidentSource

    return IncidentSource.objects.create(name="s")


# --- who may ---------------------------------------------------------------------------------


@pytest.fixture
def batch(region):
    batch = ImportBatch.objects.create(source=_source(), status=ImportBatch.Status.FAILED)
    RefusedRow.objects.create(batch=batch, file_name="f.csv", row_number=2, reason="x")
    return batch


def _every_url(batch):
    return [
        ("get", reverse("incidents:import-list")),
        ("get", reverse("incidents:import-new")),
        ("post", reverse("incidents:import-new")),
        ("get", reverse("incidents:import-detail", args=[batch.pk])),
        ("get", reverse("incidents:import-progress", args=[batch.pk])),
        ("get", reverse("import-batch-list")),
        ("post", reverse("import-batch-list")),
        ("get", reverse("import-batch-detail", args=[batch.pk])),
    ]


@pytest.mark.parametrize(
    "role, extra", [(Role.MUNICIPAL, {}), (Role.PROGRAM, {"is_staff": True}), (None, {})]
)
def test_non_planners_get_403_everywhere(client, django_user_model, batch, role, extra, media):
    client.force_login(_user(django_user_model, "other", role, **extra))
    for method, url in _every_url(batch):
        data = {**OPTIONS, "files": _csv(GOOD_CSV)} if method == "post" else None
        response = getattr(client, method)(url, data)
        assert response.status_code == 403, (method, url, response.status_code)
    assert ImportBatch.objects.count() == 1
    assert _uploads_left(media) == []


def test_anonymous_visitors_are_sent_to_log_in(client, batch):
    for method, url in _every_url(batch):
        response = getattr(client, method)(url)
        if url.startswith("/api/"):
            assert response.status_code == 403, url
        else:
            assert response.status_code == 302, url
            assert response["Location"].startswith(reverse("login")), url


def test_english_pages(planner_client, batch):
    planner_client.cookies.load({"django_language": "en"})
    html = planner_client.get(reverse("incidents:import-detail", args=[batch.pk])).content.decode()
    assert "Refused rows" in html
    planner_client.cookies.load({"django_language": "es"})
    html = planner_client.get(reverse("incidents:import-detail", args=[batch.pk])).content.decode()
    assert "Filas rechazadas" in html
