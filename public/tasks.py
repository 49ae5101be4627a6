"""Background jobs of the public app (django-tasks; `manage.py db_worker` runs them).

The public tables are rebuilt after each successful import batch and each successful
hotspot run: incidents and hotspots send a signal (they are lower floors and never
import this app), and the receivers here enqueue the refresh once the sender's
transaction has committed, so that the job reads what was written.
"""

from django.db import transaction
from django_tasks import task

from public.services.refresh import refresh_public_tables


@task()
def refresh_public_tables_task(region_code: str) -> dict:
    """Rebuilds the public tables of the region ``region_code``."""
    return refresh_public_tables(region_code=region_code)


def enqueue_refresh(region_codes) -> None:
    for code in sorted(set(region_codes)):
        transaction.on_commit(lambda code=code: refresh_public_tables_task.enqueue(code))


def on_batch_imported(sender, *, batch_id: int, region_codes=(), **kwargs) -> None:
    enqueue_refresh(region_codes)


def on_hotspot_run_succeeded(sender, *, run_id: int, region_code: str, **kwargs) -> None:
    enqueue_refresh([region_code])


def connect_signals() -> None:
    from hotspots.signals import run_succeeded
    from incidents.signals import batch_imported

    batch_imported.connect(on_batch_imported, dispatch_uid="public-refresh-after-import")
    run_succeeded.connect(on_hotspot_run_succeeded, dispatch_uid="public-refresh-after-run")
