"""A successful import batch and a successful hotspot run enqueue the refresh of their
regions' public tables (once their transaction has committed); a refused import does not.

The test settings run tasks with django-tasks' immediate backend, so an enqueued refresh
has run when the commit callbacks return.
"""

from __future__ import annotations

from unittest import mock

import pytest

from hotspots.models import HotspotRun
from hotspots.services import runs
from hotspots.tests.hotspot_fixtures import CELL, PERIOD, town  # noqa: F401 - a fixture
from incidents.services.imports import ImportRefused
from incidents.tests.factories import make_user
from incidents.tests.test_imports import row, run, write_csv
from public import tasks
from public.models import PublicCellCount, PublicRefresh
from tests.geodata import grid_cell

pytestmark = pytest.mark.django_db


@pytest.fixture
def import_town(make_region):
    """The region of incidents.tests.test_imports (its ``row`` points fall in D1)."""
    return make_region("testville", {"D1": ("Uno", grid_cell(0)), "D2": ("Dos", grid_cell(1))})


def test_a_successful_import_refreshes_its_region(
    import_town, tmp_path, django_capture_on_commit_callbacks
):
    path = write_csv(tmp_path / "ok.csv", [row(str(i)) for i in range(6)])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = run(path)
    assert result.rows_created == 6
    assert len(callbacks) == 1
    refresh = PublicRefresh.objects.get(region=import_town)
    assert refresh.rows == PublicCellCount.objects.filter(region=import_town).count()


def test_a_refused_import_enqueues_nothing(
    import_town, tmp_path, django_capture_on_commit_callbacks
):
    path = write_csv(tmp_path / "bad.csv", [row("1"), row("2", date="yesterday")])
    with (
        mock.patch.object(tasks, "refresh_public_tables_task") as task,
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(ImportRefused),
    ):
        run(path)
    task.enqueue.assert_not_called()
    assert not PublicRefresh.objects.exists()


def test_a_dry_run_enqueues_nothing(import_town, tmp_path, django_capture_on_commit_callbacks):
    path = write_csv(tmp_path / "ok.csv", [row("1")])
    with (
        mock.patch.object(tasks, "refresh_public_tables_task") as task,
        django_capture_on_commit_callbacks(execute=True),
    ):
        run(path, dry_run=True)
    task.enqueue.assert_not_called()


def test_a_successful_hotspot_run_refreshes_its_region(
    town,  # noqa: F811
    django_user_model,
    django_capture_on_commit_callbacks,
):
    planner = make_user(django_user_model, "planner", username="run-owner")
    hotspot_run = runs.create_run(
        user=planner,
        region=town,
        districts=[town.district_set.get(code="T1")],
        params={"grid": "square", "cell_size_m": CELL},
        **PERIOD,
    )
    with (
        mock.patch.object(tasks, "refresh_public_tables_task") as task,
        django_capture_on_commit_callbacks(execute=True),
    ):
        hotspot_run = runs.execute_run(run=hotspot_run)
    assert hotspot_run.status == HotspotRun.Status.SUCCEEDED
    task.enqueue.assert_called_once_with(town.code)
