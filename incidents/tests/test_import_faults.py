"""Imports under faults: a command-line import is alive while it runs, a lost database
ends the batch failed with a clean message, and nothing of a killed import is left behind
(its batch, its upload folder, its task row).

The faults are real ones: the import's own backend is terminated from another connection
(``pg_terminate_backend``) at a known point of the import, reached through a hook on a
step, so nothing depends on timing."""

from __future__ import annotations

import csv
import threading
from io import StringIO

import psycopg2
import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.utils import translation

from common.jobs import IMPORT_BATCH_JOBS
from incidents.models import ImportBatch, Incident
from incidents.services import batches, imports
from tests.geodata import grid_cell

pytestmark = pytest.mark.django_db(transaction=True)

HEADER = ["id", "date", "time", "category", "lat", "lon"]
ROWS = [
    ["1", "2023-01-05", "10:00", "ROBO", "-12.095", "-77.095"],
    ["2", "2023-01-06", "11:00", "ROBO", "-12.095", "-77.085"],
]


@pytest.fixture
def town(make_region):
    return make_region("testville", {"D1": ("Uno", grid_cell(0)), "D2": ("Dos", grid_cell(1))})


@pytest.fixture
def good_csv(tmp_path):
    path = tmp_path / "good.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(ROWS)
    return path


def other_connection():
    """A connection of the test's own, as another process would have."""
    raw = psycopg2.connect(**connection.get_connection_params())
    raw.autocommit = True
    return raw


def in_other_thread(function):
    """Runs ``function`` on a thread of its own (Django gives it its own connection) and
    returns what it returned; the thread's connections are closed after."""
    out = {}

    def run():
        try:
            out["value"] = function()
        except BaseException as exc:  # raised again in the caller
            out["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def after_first_chunk(monkeypatch, action):
    """Calls ``action()`` once, right after the import has staged its first chunk (inside
    its transaction, the batch RUNNING and visible to others)."""
    original = imports.stage_chunk
    done = []

    def hooked(*args, **kwargs):
        original(*args, **kwargs)
        if not done:
            done.append(True)
            action()

    monkeypatch.setattr(imports, "stage_chunk", hooked)
    return done


def terminate(pid: int) -> None:
    """Kills a server process from another connection, as a database restart or an
    administrator would, and waits until it is gone (with it, its locks)."""
    killer = other_connection()
    try:
        with killer.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s, 60000)", [pid])
            assert cursor.fetchone()[0]
    finally:
        killer.close()


def terminate_import_backend():
    terminate(connection.connection.info.backend_pid)


def end_session(raw) -> None:
    """The process owning a connection dies: its session ends, and its locks with it, before
    this returns (a client-side close alone does not wait for the server)."""
    terminate(raw.info.backend_pid)
    raw.close()


def command(*args):
    """The command in English (its messages, and the batch report it writes)."""
    stdout, stderr = StringIO(), StringIO()
    with translation.override("en"):
        call_command("import_incidents", *map(str, args), stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


COMMAND_ARGS = ["--source", "test", "--id", "id"]


# --- item 6: a command-line import is alive while it runs ----------------------------------


def test_a_running_command_line_import_is_never_taken_for_an_abandoned_one(
    town, good_csv, monkeypatch
):
    seen = {}

    def look_from_a_batch_page():
        batch_id = in_other_thread(lambda: ImportBatch.objects.get().pk)
        seen["locked"] = in_other_thread(lambda: job_lock_held(batch_id))
        seen["failed"] = in_other_thread(batches.fail_abandoned_batches)
        seen["status"] = in_other_thread(lambda: ImportBatch.objects.get().status)

    after_first_chunk(monkeypatch, look_from_a_batch_page)
    out, _ = command(good_csv, *COMMAND_ARGS)

    assert seen == {"locked": True, "failed": 0, "status": ImportBatch.Status.RUNNING}
    assert "2 created" in out
    batch = ImportBatch.objects.get()
    assert batch.status == ImportBatch.Status.SUCCEEDED
    assert Incident.objects.count() == 2
    assert not job_lock_held(batch.pk)


def test_a_batch_failed_meanwhile_stays_failed_and_its_import_writes_nothing(
    town, good_csv, monkeypatch
):
    """Whoever ends a batch while its import runs (here: failing it as abandoned without
    asking for its lock) wins: the import does not commit and never flips it back."""

    def fail_it_elsewhere():
        batch_id = in_other_thread(lambda: ImportBatch.objects.get().pk)
        assert in_other_thread(lambda: batches._fail_abandoned_batch(batch_id)) == 1

    after_first_chunk(monkeypatch, fail_it_elsewhere)
    with pytest.raises(CommandError) as raised:
        command(good_csv, *COMMAND_ARGS)

    batch = ImportBatch.objects.get()
    assert str(raised.value) == (
        f"Import batch #{batch.pk} was ended before its import finished: nothing was written."
    )
    assert batch.status == ImportBatch.Status.FAILED
    # Failed by the other thread, in the default language.
    assert "se detuvo antes de terminar" in batch.report["error"]
    assert Incident.objects.count() == 0


# --- item 8: a database lost mid-import ------------------------------------------------------


def job_lock_held(batch_id: int) -> bool:
    """Whether any session holds the job lock of the batch (in this test's database)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FROM pg_locks
            WHERE locktype = 'advisory' AND classid = %s AND objid = %s AND granted
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """,
            [IMPORT_BATCH_JOBS, batch_id],
        )
        return cursor.fetchone()[0] > 0


def test_a_command_import_whose_database_connection_dies_fails_its_batch_with_a_message(
    town, good_csv, monkeypatch
):
    after_first_chunk(monkeypatch, terminate_import_backend)
    with pytest.raises(CommandError) as raised:
        command(good_csv, *COMMAND_ARGS)

    batch = ImportBatch.objects.get()
    assert str(raised.value) == (
        "The connection to the database was lost during the import: nothing was written. "
        f"Import batch #{batch.pk} is marked failed."
    )
    assert batch.status == ImportBatch.Status.FAILED
    assert batch.finished_at is not None
    assert batch.report["error"].startswith(
        "The connection to the database was lost during the import ("
    )
    assert batch.report["error"].endswith("Nothing was written: run the import again.")
    assert Incident.objects.count() == 0
    assert not job_lock_held(batch.pk)


def test_when_the_database_stays_gone_the_batch_is_failed_when_next_seen(
    town, good_csv, monkeypatch
):
    """The import cannot mark its batch failed: it says so, and since its job lock went
    with its connection, the batch pages fail it once the database is back."""
    from django.db import OperationalError

    monkeypatch.setattr(imports, "RECONNECT_DELAYS_S", (0.0, 0.0))
    attempts = []

    def server_gone():
        terminate_import_backend()

        def refuse(*args, **kwargs):
            attempts.append(True)
            raise OperationalError("connection refused: the server is not running")

        monkeypatch.setattr(connection, "get_new_connection", refuse)

    after_first_chunk(monkeypatch, server_gone)
    with pytest.raises(CommandError) as raised:
        command(good_csv, *COMMAND_ARGS)
    monkeypatch.undo()  # the database is back

    batch = ImportBatch.objects.get()
    assert str(raised.value) == (
        "The connection to the database was lost during the import and the database cannot "
        f"be reached: nothing was written. Import batch #{batch.pk} will be marked failed when "
        "it is next seen (the import pages and API)."
    )
    assert len(attempts) >= 2
    assert batch.status == ImportBatch.Status.RUNNING
    assert batches.fail_abandoned_batches() == 1
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.FAILED
    assert Incident.objects.count() == 0


def test_the_command_exits_non_zero_with_a_clean_message_when_its_backend_is_killed(
    town, good_csv, tmp_path
):
    """The real command in a process of its own: blocked on a lock the test holds, mid
    import, its backend is terminated from here."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    from incidents.models import Category, IncidentSource, SourceLabel

    source = IncidentSource.objects.create(name="test")
    category = Category.objects.create(
        code="test-robo", name_es="Robo", name_en="Robbery", family="crime"
    )
    SourceLabel.objects.create(source=source, label="ROBO", category=category)
    params = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": "postgis://{USER}:{PASSWORD}@{HOST}:{PORT}/{NAME}".format(**params),
        "DJANGO_READ_DOT_ENV_FILE": "false",
    }
    holder = other_connection()
    holder.autocommit = False
    watcher = other_connection()  # autocommit: each look at pg_stat_activity is a fresh one
    process = None
    try:
        with holder.cursor() as cursor:
            # The import locks its source's labels FOR SHARE inside its transaction: it waits.
            cursor.execute(
                "SELECT id FROM incidents_sourcelabel WHERE source_id = %s FOR UPDATE", [source.pk]
            )
        process = subprocess.Popen(
            [sys.executable, "manage.py", "import_incidents", str(good_csv), *COMMAND_ARGS],
            cwd=Path(__file__).resolve().parents[2],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Waits (for as long as the process takes to start) until the import is blocked
        # on our lock: a condition, not a guess at how long that takes.
        deadline = time.monotonic() + 120
        with watcher.cursor() as cursor:
            while True:
                cursor.execute(
                    "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                    [holder.info.backend_pid],
                )
                row = cursor.fetchone()
                if row or process.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert row, "the import never waited on the lock"
            cursor.execute("SELECT pg_terminate_backend(%s, 60000)", [row[0]])
        out, err = process.communicate(timeout=120)
    finally:
        holder.rollback()
        holder.close()
        watcher.close()
        if process is not None and process.poll() is None:
            process.kill()
            process.communicate()

    batch = ImportBatch.objects.get()
    assert process.returncode == 1, (out, err)
    assert "Traceback" not in err
    # In the default language, Spanish.
    assert err.startswith("CommandError: Se perdió la conexión con la base de datos")
    assert f"El lote de importación n.º {batch.pk} queda marcado como fallido." in err
    assert batch.status == ImportBatch.Status.FAILED
    assert Incident.objects.count() == 0


# --- the web import's job --------------------------------------------------------------------

DB_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
OPTIONS = {
    "source": "test",
    "id": "id",
    "date": "date",
    "category": "category",
    "lat": "lat",
    "lon": "lon",
}


@pytest.fixture
def uploads(settings, tmp_path):
    settings.INCIDENT_UPLOAD_ROOT = str(tmp_path / "uploads")
    return tmp_path / "uploads" / batches.UPLOAD_FOLDER


def queue_web_import(good_csv, settings):
    """A web import queued for a worker (the database task backend), and its task row."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = DB_TASKS
    upload = SimpleUploadedFile("good.csv", good_csv.read_bytes(), content_type="text/csv")
    batch = batches.start_web_import(user=None, uploaded_files=[upload], options=OPTIONS)
    assert batch.status == ImportBatch.Status.QUEUED
    return batch, DBTaskResult.objects.get(args_kwargs__args=[batch.pk])


def test_a_job_import_whose_database_connection_dies_fails_its_batch(
    town, good_csv, uploads, settings, monkeypatch
):
    """The worker runs the job; its backend is terminated mid-import: the batch ends
    failed with the reason, the upload is removed, and the worker records the task failed."""
    from django_tasks_db.management.commands.db_worker import Worker

    batch, task = queue_web_import(good_csv, settings)
    assert batches.upload_dir(batch.pk).is_dir()
    task.claim("worker-1")
    after_first_chunk(monkeypatch, terminate_import_backend)
    worker = Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=1,
        worker_id="worker-1",
        excluded_queue_names=[],
    )
    with translation.override("en"):
        worker.run_task(task)

    batch.refresh_from_db()
    task.refresh_from_db()
    assert batch.status == ImportBatch.Status.FAILED
    assert batch.report["error"].startswith(
        "The connection to the database was lost during the import ("
    )
    assert not batches.upload_dir(batch.pk).exists()
    assert task.status == "FAILED"
    assert task.exception_class_path == "incidents.services.imports.ImportInterrupted"
    assert Incident.objects.count() == 0
    assert not job_lock_held(batch.pk)


# --- item 7: nothing of a killed import stays behind ----------------------------------------


def test_a_killed_web_import_is_failed_its_upload_removed_and_its_task_row_ended(
    town, good_csv, uploads, settings
):
    """The job runs in a session of its own (holding the batch's lock, as run_web_import
    does) and that session dies: the next look at the batches cleans everything up."""
    batch, task = queue_web_import(good_csv, settings)
    task.claim("worker-1")
    job = other_connection()
    with job.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [IMPORT_BATCH_JOBS, batch.pk])
        cursor.execute(
            "UPDATE incidents_importbatch SET status = 'running' WHERE id = %s", [batch.pk]
        )
    try:
        assert batches.fail_abandoned_batches() == 0  # alive: left alone
        assert batches.upload_dir(batch.pk).is_dir()
    finally:
        end_session(job)  # the worker is killed

    assert batches.fail_abandoned_batches() == 1
    batch.refresh_from_db()
    task.refresh_from_db()
    assert batch.status == ImportBatch.Status.FAILED
    assert not batches.upload_dir(batch.pk).exists()
    assert task.status == "FAILED"
    assert task.finished_at is not None
    assert task.exception_class_path == "incidents.services.batches.ImportJobAbandoned"
    assert batches.fail_abandoned_batches() == 0


def test_the_sweep_removes_upload_folders_of_ended_or_missing_batches_only(town, uploads, settings):
    from incidents.models import IncidentSource

    source = IncidentSource.objects.create(name="s")
    ended = ImportBatch.objects.create(source=source, status=ImportBatch.Status.SUCCEEDED)
    refused = ImportBatch.objects.create(source=source, status=ImportBatch.Status.FAILED)
    queued = ImportBatch.objects.create(source=source, status=ImportBatch.Status.QUEUED)
    missing, being_created = 10**9, 10**9 + 1
    for batch_id in (ended.pk, refused.pk, queued.pk, missing, being_created):
        folder = batches.upload_dir(batch_id)
        folder.mkdir(parents=True)
        (folder / "police.csv").write_text("id\n")
    (uploads / "notes").mkdir()  # not a batch folder: not ours to remove
    creator = other_connection()  # start_web_import holds the new batch's lock until it commits
    try:
        with creator.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [IMPORT_BATCH_JOBS, being_created])
        assert batches.sweep_orphans()["folders"] == 3
    finally:
        end_session(creator)

    left = sorted(p.name for p in uploads.iterdir())
    assert left == sorted([str(queued.pk), str(being_created), "notes"])
    assert batches.sweep_orphans()["folders"] == 1  # once its creator is gone
    assert not batches.upload_dir(being_created).exists()


def test_a_sweep_while_an_upload_is_being_saved_leaves_its_folder_alone(
    town, good_csv, uploads, settings, monkeypatch
):
    """Until start_web_import commits, others cannot see the batch its folder is for."""
    original = batches._save_upload
    swept = []

    def save_while_sweeping(upload, path):
        swept.append(in_other_thread(batches.sweep_orphans)["folders"])
        return original(upload, path)

    monkeypatch.setattr(batches, "_save_upload", save_while_sweeping)
    batch, _ = queue_web_import(good_csv, settings)

    assert swept == [0]
    assert (batches.upload_dir(batch.pk) / "good.csv").read_bytes() == good_csv.read_bytes()


def test_the_sweep_ends_task_rows_that_dead_workers_left_running(town, good_csv, uploads, settings):
    import datetime as dt

    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    long_ago = timezone.now() - batches.ORPHAN_TASK_AFTER - dt.timedelta(minutes=1)
    # A batch that ended long ago; one that ended just now (its worker records the task's
    # end in a moment); one whose task started long ago but never took it; one deleted.
    old, recent, never_taken, deleted = (queue_web_import(good_csv, settings) for _ in range(4))
    for _batch, task in (old, recent, never_taken, deleted):
        task.claim("worker-1")
    DBTaskResult.objects.filter(pk=never_taken[1].pk).update(started_at=long_ago)
    for batch, finished_at in ((old[0], long_ago), (recent[0], timezone.now())):
        ImportBatch.objects.filter(pk=batch.pk).update(
            status=ImportBatch.Status.SUCCEEDED, finished_at=finished_at
        )
    deleted[0].delete()

    swept = batches.sweep_orphans()

    assert swept == {"folders": 3, "tasks": 2, "batches": 1}
    status = dict(DBTaskResult.objects.values_list("pk", "status"))
    assert status[old[1].pk] == status[deleted[1].pk] == status[never_taken[1].pk] == "FAILED"
    assert status[recent[1].pk] == "RUNNING"
    never_taken[0].refresh_from_db()
    assert never_taken[0].status == ImportBatch.Status.FAILED
    assert not batches.upload_dir(never_taken[0].pk).exists()
    assert batches.sweep_orphans() == {"folders": 0, "tasks": 0, "batches": 0}
