"""Background jobs of the hotspots app (django-tasks; `manage.py db_worker` runs them)."""

from django_tasks import task

from hotspots.engine import HotspotRefused


@task()
def execute_hotspot_run(run_id: int) -> dict:
    """Executes a queued hotspot run. A refusal (too few incidents, no variation...) is a
    result, recorded on the run as FAILED with its message, not a job error."""
    from hotspots import services
    from hotspots.models import HotspotRun

    run = HotspotRun.objects.get(pk=run_id)
    try:
        services.execute_run(run=run)
    except HotspotRefused:
        pass
    run.refresh_from_db()
    return {"run": run.pk, "status": run.status, "message": run.message}
