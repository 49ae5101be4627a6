"""Background jobs of the incidents app (django-tasks; `manage.py db_worker` runs them)."""

from django_tasks import task

from incidents.services import batches


@task()
def run_import_batch(batch_id: int) -> dict:
    """Imports the files uploaded for a queued ImportBatch, then deletes them."""
    return batches.run_web_import(batch_id)
