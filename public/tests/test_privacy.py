"""The privacy rules of public/privacy.py, as pure functions (no database)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from public import privacy


def category(**flags):
    values = {"sensitive": False, "unclassified": False, "extra_care": False} | flags
    return SimpleNamespace(**values)


def test_sensitive_and_unclassified_categories_are_never_publishable():
    assert privacy.is_publishable_category(category())
    assert not privacy.is_publishable_category(category(sensitive=True))
    assert not privacy.is_publishable_category(category(unclassified=True))
    # Something that does not say is not published either.
    assert not privacy.is_publishable_category(object())
    assert not privacy.keep(1000, category(sensitive=True))


def test_min_count_defaults_and_keep():
    assert privacy.min_count(category()) == 5
    assert privacy.min_count(category(extra_care=True)) == 10
    assert not privacy.keep(4, category())
    assert privacy.keep(5, category())
    assert not privacy.keep(9, category(extra_care=True))
    assert privacy.keep(10, category(extra_care=True))


def test_settings_change_the_rules_but_never_below_the_floor(settings):
    settings.PUBLIC_MIN_COUNT = 3
    settings.PUBLIC_MIN_COUNT_EXTRA_CARE = 2  # never below the ordinary k
    assert privacy.min_count(category()) == 3
    assert privacy.min_count(category(extra_care=True)) == 3
    settings.PUBLIC_MIN_COUNT = 0
    assert privacy.min_count(category()) == 1
    settings.PUBLIC_MIN_COUNT = "not a number"
    assert privacy.min_count(category()) == privacy.DEFAULT_MIN_COUNT


@pytest.mark.parametrize(
    ("today", "lag", "expected"),
    [
        # January 2026 is published from 1 March 2026 (one full month in between).
        (dt.date(2026, 3, 1), 1, dt.date(2026, 1, 1)),
        (dt.date(2026, 2, 28), 1, dt.date(2025, 12, 1)),
        (dt.date(2026, 1, 15), 1, dt.date(2025, 11, 1)),
        (dt.date(2026, 3, 31), 0, dt.date(2026, 2, 1)),
        (dt.date(2026, 3, 31), 3, dt.date(2025, 11, 1)),
    ],
)
def test_last_published_month(settings, today, lag, expected):
    settings.PUBLIC_LAG_MONTHS = lag
    assert privacy.last_published_month(today) == expected


def test_resolutions_default():
    assert privacy.resolutions() == (7, 8, 9)
