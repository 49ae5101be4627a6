"""Background jobs of the hotspots app (django-tasks; `manage.py db_worker` runs them).

Callers (the API, the pages, commands) enqueue here; the services never import this module.
"""

from django_tasks import task

from hotspots.engine import HotspotRefused
from hotspots.models import HotspotRun
from hotspots.services.runs import execute_run


@task()
def execute_hotspot_run(run_id: int) -> dict:
    """Executes a queued hotspot run. A refusal (too few incidents, no variation...) is a
    result, recorded on the run as FAILED with its message, not a job error."""
    run = HotspotRun.objects.get(pk=run_id)
    try:
        execute_run(run=run)
    except HotspotRefused:
        pass
    run.refresh_from_db()
    return {"run": run.pk, "status": run.status, "message": run.message}


def enqueue_run(run: HotspotRun) -> HotspotRun:
    """Queues the background job (with the immediate backend it has run on return)."""
    execute_hotspot_run.enqueue(run.pk)
    run.refresh_from_db()
    return run
