"""Helpers for tests that play a second database session (a job holding its lock)."""

from __future__ import annotations

import time

from django.db import connection


def end_session(session, *, polls: int = 1200) -> None:
    """Closes a raw psycopg2 connection as a dying job's would be, and returns once
    PostgreSQL has let go of every lock it held: closing returns before the server has
    ended the session, so a test asking at once might still see its locks."""
    pid = session.get_backend_pid()
    session.close()
    with connection.cursor() as cursor:
        for _ in range(polls):
            # pg_locks, not pg_stat_activity: the latter is a snapshot frozen for the
            # length of the test's transaction.
            cursor.execute("SELECT EXISTS (SELECT FROM pg_locks WHERE pid = %s)", [pid])
            if not cursor.fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError(f"session {pid} still holds locks a minute after it was closed")
