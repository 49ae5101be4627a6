"""Liveness of background jobs (imports, hotspot runs) that outlive a request.

A job's work happens in one database transaction, so a job that dies (worker killed,
machine restarted) writes nothing; but the record that says it is RUNNING would stay so for
ever. While it runs, a job holds a session-level advisory lock keyed by (namespace, record
id). PostgreSQL releases the lock with the dead job's connection, so a RUNNING record whose
lock is free belongs to no living job, and :func:`fail_abandoned` marks it failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connection
from django.db.models import QuerySet

# First keys of the advisory locks, one per kind of job (the second key is the record's id).
IMPORT_BATCH_JOBS = 0x1B47C4
HOTSPOT_RUN_JOBS = 0x1B47C5


def _lock(namespace: int, record_id: int, *, take: bool) -> bool:
    function = "pg_try_advisory_lock" if take else "pg_advisory_unlock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s, %s)", [namespace, record_id])
        return bool(cursor.fetchone()[0])


@contextmanager
def job_lock(namespace: int, record_id: int) -> Iterator[bool]:
    """Holds the job lock of a record for the block; yields False (and holds nothing) when
    another living job holds it already."""
    acquired = _lock(namespace, record_id, take=True)
    try:
        yield acquired
    finally:
        if acquired:
            _lock(namespace, record_id, take=False)


def fail_abandoned(running: QuerySet, namespace: int, fail: Callable[[int], int]) -> int:
    """Calls ``fail(pk)`` for each record of ``running`` whose job lock is free, while
    holding that lock (so ``fail`` must re-check the status: the job may have just
    finished). Returns the sum of what ``fail`` returned."""
    failed = 0
    for record_id in running.values_list("pk", flat=True):
        with job_lock(namespace, record_id) as acquired:
            if acquired:
                failed += fail(record_id)
    return failed
