"""The public map's privacy rules, in one place (architecture.md: public output).

Everything published reads through these functions; the thresholds are settings with
safe defaults (a value that is not a number falls back to the default, k is never below 1
and the extra-care k never below the ordinary one):

- a cell-month count below k is not published (``PUBLIC_MIN_COUNT``, default 5; for
  categories marked "extra care", ``PUBLIC_MIN_COUNT_EXTRA_CARE``, default 10);
- sensitive and unclassified categories are never published, in any form;
- a month is published only after a lag (``PUBLIC_LAG_MONTHS`` full months in between,
  default 1: January is published from 1 March);
- counts are per H3 cell at the resolutions ``PUBLIC_H3_RESOLUTIONS`` (7, 8, 9); the
  counts that survive are published as they are, with no noise and no coordinates.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings

DEFAULT_MIN_COUNT = 5
DEFAULT_MIN_COUNT_EXTRA_CARE = 10
DEFAULT_LAG_MONTHS = 1
DEFAULT_RESOLUTIONS = (7, 8, 9)


def _setting_int(name: str, default: int, *, minimum: int) -> int:
    value = getattr(settings, name, default)
    try:
        value = int(value)
    except (TypeError, ValueError):
        return default
    # A misconfiguration never weakens the rules below the safe floor.
    return max(value, minimum)


def base_min_count() -> int:
    return _setting_int("PUBLIC_MIN_COUNT", DEFAULT_MIN_COUNT, minimum=1)


def extra_care_min_count() -> int:
    return max(
        _setting_int("PUBLIC_MIN_COUNT_EXTRA_CARE", DEFAULT_MIN_COUNT_EXTRA_CARE, minimum=1),
        base_min_count(),
    )


def lag_months() -> int:
    return _setting_int("PUBLIC_LAG_MONTHS", DEFAULT_LAG_MONTHS, minimum=0)


def resolutions() -> tuple[int, ...]:
    values = getattr(settings, "PUBLIC_H3_RESOLUTIONS", DEFAULT_RESOLUTIONS)
    return tuple(sorted({int(v) for v in values if 0 <= int(v) <= 15})) or DEFAULT_RESOLUTIONS


def is_publishable_category(category) -> bool:
    """Sensitive and unclassified categories are never published."""
    return not (getattr(category, "sensitive", True) or getattr(category, "unclassified", True))


def min_count(category) -> int:
    """The smallest count of ``category`` a published cell-month may hold (k)."""
    return extra_care_min_count() if getattr(category, "extra_care", False) else base_min_count()


def keep(count: int, category) -> bool:
    """Whether a cell-month ``count`` of ``category`` may be published."""
    return is_publishable_category(category) and count >= min_count(category)


def add_months(month: dt.date, months: int) -> dt.date:
    """The first day of the month ``months`` after (or before) ``month``'s."""
    index = month.year * 12 + (month.month - 1) + months
    return dt.date(index // 12, index % 12 + 1, 1)


def last_published_month(today: dt.date) -> dt.date:
    """The newest month (its first day) that may be published on ``today`` (a local date
    of the region): with a lag of one month, January 2026 is published from 1 March 2026,
    so on 28 February 2026 the newest is December 2025."""
    return add_months(today.replace(day=1), -(lag_months() + 1))
