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

from config.jobs import IMPORT_BATCH_JOBS
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
    original = imports._stage_chunk
    done = []

    def hooked(*args, **kwargs):
        original(*args, **kwargs)
        if not done:
            done.append(True)
            action()

    monkeypatch.setattr(imports, "_stage_chunk", hooked)
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
