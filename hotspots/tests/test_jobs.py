"""A run whose job died is failed by the pages; a run is never executed twice at once."""

import psycopg2
import pytest
from django.db import connection

from common.jobs import HOTSPOT_RUN_JOBS
from hotspots.engine import HotspotRefused
from hotspots.models import HotspotRun
from hotspots.services import runs
from hotspots.tests.test_runs import PERIOD, planted_town, town  # noqa: F401 - fixture
from tests.sessions import end_session

pytestmark = pytest.mark.django_db(transaction=True)


def _other_job_holds(run_id: int):
    job = psycopg2.connect(**connection.get_connection_params())
    with job.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [HOTSPOT_RUN_JOBS, run_id])
    return job


def test_a_running_run_without_a_living_job_is_failed_and_a_live_one_is_kept(town):  # noqa: F811
    alive = runs.create_run(region=town, **PERIOD)
    dead = runs.create_run(region=town, **PERIOD)
    HotspotRun.objects.filter(pk__in=[alive.pk, dead.pk]).update(status=HotspotRun.Status.RUNNING)
    job = _other_job_holds(alive.pk)
    try:
        assert runs.fail_abandoned_runs() == 1
        alive.refresh_from_db()
        dead.refresh_from_db()
        assert alive.status == HotspotRun.Status.RUNNING
        assert dead.status == HotspotRun.Status.FAILED
        assert "stopped before it finished" in dead.message
    finally:
        end_session(job)
    assert runs.fail_abandoned_runs() == 1
    assert HotspotRun.objects.get(pk=alive.pk).status == HotspotRun.Status.FAILED


def test_a_run_another_job_is_executing_is_not_executed_again(town):  # noqa: F811
    planted_town(town)
    run = runs.create_run(region=town, **PERIOD)
    job = _other_job_holds(run.pk)
    try:
        with pytest.raises(HotspotRefused, match="already being executed"):
            runs.execute_run(run=run)
        run.refresh_from_db()
        assert run.status == HotspotRun.Status.QUEUED and not run.cells.exists()
    finally:
        end_session(job)
    run = runs.execute_run(run=run)
    assert run.status == HotspotRun.Status.SUCCEEDED
    assert runs.fail_abandoned_runs() == 0
