"""The public tables' refresh against PostGIS: k suppression, extra care, sensitive and
unclassified categories, the lag, the region's time zone, the three H3 resolutions,
idempotency, the command and the signals that enqueue it.

Each group of the fixture is one point repeated; groups are ~5 km apart, farther than
an H3 resolution-7 cell is wide, so no two groups share a cell and every expected row
follows from the group alone.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

import h3
import pytest
from django.core.management import CommandError, call_command

from incidents.models import Category, Family, Incident
from incidents.signals import batch_imported
from incidents.tests.factories import build_incident, make_region
from public.models import PublicCellCount, PublicRefresh
from public.services.refresh import UnknownRegion, refresh_public_tables

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 3, 15)  # last published month (lag 1): January 2026
LIMA = "America/Lima"  # UTC-5, no daylight saving time


@dataclass(frozen=True)
class Group:
    lon: float
    lat: float
    category: str
    when: dt.datetime
    n: int
    month: dt.date  # the local month the incidents fall in


def utc(*args):
    return dt.datetime(*args, tzinfo=dt.UTC)


JAN = dt.date(2026, 1, 1)


def groups() -> list[Group]:
    """k-1 and k ordinary, k-1 and k extra care, sensitive, unclassified, the current and
    the previous month, an older month, and an instant that is January in Lima but
    February in UTC."""
    k = 5
    k_extra = 10
    return [
        Group(-77.00, -12.00, "assault", utc(2026, 1, 10, 12), k - 1, JAN),
        Group(-77.05, -12.00, "assault", utc(2026, 1, 10, 12), k, JAN),
        Group(-77.10, -12.00, "burglary", utc(2026, 1, 10, 12), k_extra - 1, JAN),
        Group(-77.15, -12.00, "burglary", utc(2026, 1, 10, 12), k_extra, JAN),
        Group(-77.00, -12.05, "sexual-offence", utc(2026, 1, 10, 12), 20, JAN),
        Group(-77.05, -12.05, "test-unclassified", utc(2026, 1, 10, 12), 20, JAN),
        Group(-77.10, -12.05, "graffiti", utc(2026, 3, 2, 12), 8, dt.date(2026, 3, 1)),
        Group(-77.15, -12.05, "graffiti", utc(2026, 2, 2, 12), 8, dt.date(2026, 2, 1)),
        Group(-77.00, -12.10, "graffiti", utc(2025, 12, 2, 12), 7, dt.date(2025, 12, 1)),
        Group(-77.05, -12.10, "theft-person", utc(2026, 2, 1, 3), 6, JAN),
    ]


def expected_rows(region, today=TODAY, *, k=5, k_extra=10, last_month=JAN) -> set[tuple]:
    """The rows the rules give for the fixture, computed here from each group."""
    rows = set()
    for g in groups():
        category = Category.objects.get(code=g.category)
        if category.sensitive or category.unclassified or g.month > last_month:
            continue
        if g.n < (k_extra if category.extra_care else k):
            continue
        for resolution in (7, 8, 9):
            cell = h3.latlng_to_cell(g.lat, g.lon, resolution)
            rows.add((resolution, cell, g.month, g.category, category.family, g.n))
    return rows


def table_rows(region) -> set[tuple]:
    return set(
        PublicCellCount.objects.filter(region=region).values_list(
            "resolution", "cell", "month", "category__code", "family", "count"
        )
    )


@pytest.fixture
def region(db):
    region = make_region("publictown")
    region.time_zone = LIMA
    region.save()
    Category.objects.filter(code="burglary").update(extra_care=True)
    Category.objects.create(
        code="test-unclassified",
        name_es="Sin clasificar",
        name_en="Unclassified",
        family=Family.CRIME,
        unclassified=True,
    )
    incidents = [
        build_incident(g.lon, g.lat, category=g.category, when=g.when, region=region)
        for g in groups()
        for _ in range(g.n)
    ]
    Incident.objects.bulk_create(incidents)
    return region


def test_rows_follow_the_rules_exactly(region):
    written = refresh_public_tables(region_code=region.code, today=TODAY)

    expected = expected_rows(region)
    assert table_rows(region) == expected
    assert written == {region.code: len(expected)}
    # k-1 not published, k published; the same for extra care (k = 10).
    codes = {row[3] for row in expected}
    assert codes == {"assault", "burglary", "graffiti", "theft-person"}
    assert min(row[5] for row in expected) >= 5
    assert PublicCellCount.objects.filter(category__code="burglary").get(resolution=9).count == 10
    refresh = PublicRefresh.objects.get(region=region)
    assert (refresh.rows, refresh.last_month) == (len(expected), JAN)


def test_sensitive_and_unclassified_never_in_the_table(region):
    refresh_public_tables(region_code=region.code, today=TODAY)
    assert not PublicCellCount.objects.filter(category__sensitive=True).exists()
    assert not PublicCellCount.objects.filter(category__unclassified=True).exists()


def test_the_current_and_previous_month_are_not_published(region):
    refresh_public_tables(region_code=region.code, today=TODAY)
    months = set(PublicCellCount.objects.values_list("month", flat=True))
    assert months == {dt.date(2025, 12, 1), JAN}
    # One month later, February is published too (March still not).
    refresh_public_tables(region_code=region.code, today=dt.date(2026, 4, 1))
    assert table_rows(region) == expected_rows(region, last_month=dt.date(2026, 2, 1))


def test_months_are_counted_in_the_region_time_zone(region):
    refresh_public_tables(region_code=region.code, today=TODAY)
    # 2026-02-01 03:00 UTC is 31 January, 22:00 in Lima.
    assert set(
        PublicCellCount.objects.filter(category__code="theft-person").values_list(
            "month", flat=True
        )
    ) == {JAN}


def test_each_row_cell_has_the_row_resolution(region):
    refresh_public_tables(region_code=region.code, today=TODAY)
    rows = list(PublicCellCount.objects.values_list("cell", "resolution"))
    assert {resolution for _, resolution in rows} == {7, 8, 9}
    assert all(h3.is_valid_cell(cell) and h3.get_resolution(cell) == res for cell, res in rows)


def test_settings_change_k(region, settings):
    settings.PUBLIC_MIN_COUNT = 4
    refresh_public_tables(region_code=region.code, today=TODAY)
    assert table_rows(region) == expected_rows(region, k=4)


def test_refresh_is_idempotent_and_replaces_the_region_rows(region):
    first = refresh_public_tables(region_code=region.code, today=TODAY)
    rows = table_rows(region)
    second = refresh_public_tables(region_code=region.code, today=TODAY)
    assert first == second
    assert table_rows(region) == rows
    assert PublicCellCount.objects.count() == len(rows)


def test_chunks_give_the_same_rows(region, monkeypatch):
    from incidents import selectors
    from public.services import refresh

    original = selectors.monthly_points
    monkeypatch.setattr(
        refresh, "monthly_points", lambda **kwargs: original(**kwargs | {"chunk_size": 3})
    )
    refresh_public_tables(region_code=region.code, today=TODAY)
    assert table_rows(region) == expected_rows(region)


def test_unknown_region_is_refused(db):
    with pytest.raises(UnknownRegion):
        refresh_public_tables(region_code="nowhere")


def test_command_prints_rows_per_region(region):
    out = io.StringIO()
    call_command("refresh_public", region=region.code, stdout=out)
    rows = PublicCellCount.objects.filter(region=region).count()
    assert out.getvalue() == f"{region.code}: {rows} public rows written\n"
    # The command counts with the real today: the fixture's months are all past the lag.
    assert rows == len(expected_rows(region, last_month=dt.date(2026, 3, 1)))
    assert rows == PublicRefresh.objects.get(region=region).rows


def test_command_without_region_refreshes_every_region(region):
    other = make_region("othertown")
    out = io.StringIO()
    call_command("refresh_public", stdout=out)
    lines = out.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == sorted([region.code, other.code])
    assert f"{other.code}: 0 public rows written" in lines


def test_command_refuses_an_unknown_region(db):
    with pytest.raises(CommandError, match="No region has the code 'nowhere'"):
        call_command("refresh_public", region="nowhere")


def test_import_signal_enqueues_the_refresh(region, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        batch_imported.send(sender=None, batch_id=0, region_codes=[region.code])
    assert len(callbacks) == 1
    # The immediate backend of the test settings has run the task.
    assert PublicRefresh.objects.get(region=region).rows == len(table_rows(region))
    assert PublicCellCount.objects.filter(region=region).exists()
