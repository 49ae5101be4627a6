"""Liveness of background jobs (imports, hotspot runs) that outlive a request.

A job's work happens in one database transaction, so a job that dies (worker killed,
machine restarted) writes nothing; but the record that says it is RUNNING would stay so for
ever. While it runs, a job holds a session-level advisory lock keyed by (namespace, record
id). PostgreSQL releases the lock with the dead job's connection, so a RUNNING record whose
lock is free belongs to no living job, and :func:`fail_abandoned` marks it failed.

So a record must never be RUNNING, and seen by others, without its lock held: whoever
creates a record as RUNNING takes the lock inside the transaction that creates it (a
session-level lock outlives that transaction), and keeps it until the record is finished.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import InterfaceError, OperationalError, connection
from django.db.models import QuerySet

# First keys of the advisory locks, one per kind of job (the second key is the record's id).
IMPORT_BATCH_JOBS = 0x1B47C4
HOTSPOT_RUN_JOBS = 0x1B47C5


def _lock(namespace: int, record_id: int, *, take: bool, wait: bool = False) -> bool:
    if not take:
        function = "pg_advisory_unlock"
    else:
        function = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s, %s)", [namespace, record_id])
        answer = cursor.fetchone()[0]
    return True if (take and wait) else bool(answer)  # pg_advisory_lock returns void


@contextmanager
def job_lock(namespace: int, record_id: int, *, wait: bool = False) -> Iterator[bool]:
    """Holds the job lock of a record for the block; yields False (and holds nothing) when
    another living job holds it already, or with ``wait`` waits for it (only for a lock
    that others hold for a moment, e.g. the id of a record being created)."""
    acquired = _lock(namespace, record_id, take=True, wait=wait)
    session = connection.connection
    try:
        yield acquired
    finally:
        # The lock goes with the session that took it: once that connection is gone (lost,
        # closed, replaced by a fresh one) there is nothing left to release.
        if acquired and connection.connection is session:
            try:
                _lock(namespace, record_id, take=False)
            except (OperationalError, InterfaceError):
                if connection.is_usable():
                    raise


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
