# ruff: noqa: F811  (pytest fixtures imported from hotspot_fixtures)
"""The week-hour view of a run (service, API, page): the run's own incidents spread
aoristically over the local hours of the week, checked against a count minute by minute
in the region's clock (zoneinfo), independent of the engine."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from hotspots.models import HotspotRun
from hotspots.services.week_hours import run_week_hours
from hotspots.tests.hotspot_fixtures import WHEN, client_for, gistar_run, town  # noqa: F401
from incidents.models import Category, Incident, TimePrecision
from incidents.tests.factories import build_incident, make_district, make_region, make_user

pytestmark = pytest.mark.django_db

LIMA = "America/Lima"
NEW_YORK = "America/New_York"
INSIDE = (-77.05, -12.05)  # in district A
OUTSIDE = (-76.95, -12.05)  # in district B
CAP = 7 * 86400


def local(zone: str, *args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=ZoneInfo(zone))


def brute_force(windows, zone: str, period: tuple[dt.datetime, dt.datetime]) -> np.ndarray:
    """Each window (start, end or None) walked minute by minute in ``zone``'s clock, cut
    to the period; a part longer than a week spread evenly over the 168 hours."""
    tz = ZoneInfo(zone)
    p0, p1 = (p.timestamp() for p in period)
    table = np.zeros((7, 24))
    for start, end in windows:
        s = start.timestamp()
        if end is None:
            if p0 <= s < p1:
                t = start.astimezone(tz)
                table[t.weekday(), t.hour] += 1
            continue
        e = end.timestamp()
        cs, ce = max(s, p0), min(e, p1)
        if ce <= cs:
            continue
        if ce - cs > CAP:
            table += (ce - cs) / (e - s) / 168
            continue
        minutes = (e - s) / 60
        for m in range(int((cs - s) // 60), int((ce - s) // 60)):
            t = dt.datetime.fromtimestamp(s + 60 * m, dt.UTC).astimezone(tz)
            table[t.weekday(), t.hour] += 1 / minutes
    return table


def _world(zone: str):
    region = make_region(f"wh-{zone.split('/')[-1].lower()}")
    region.time_zone = zone
    region.save(update_fields=["time_zone"])
    a = make_district(region, "A", (-77.1, -12.1, -77.0, -12.0))
    b = make_district(region, "B", (-77.0, -12.1, -76.9, -12.0))
    return region, a, b


def _add(region, district, windows, *, category="burglary", point=INSIDE):
    Incident.objects.bulk_create(
        [
            build_incident(
                *point,
                category=category,
                when=start,
                until=end,
                precision=None if end is None else TimePrecision.RANGE,
                region=region,
                district=district,
            )
            for start, end in windows
        ]
    )


def _run(region, districts, *, date_from, date_to, categories=()):
    run = HotspotRun.objects.create(
        region=region,
        date_from=date_from,
        date_to=date_to,
        status=HotspotRun.Status.SUCCEEDED,
        progress=1.0,
    )
    run.districts.set(districts)
    run.categories.set(Category.objects.filter(code__in=categories))
    return run


def test_a_weekend_window_is_spread_evenly_over_its_62_hours():
    region, a, _b = _world(LIMA)
    friday = local(LIMA, 2024, 3, 8, 18)
    _add(region, a, [(friday, local(LIMA, 2024, 3, 11, 8))])
    run = _run(region, [a], date_from=dt.date(2024, 3, 1), date_to=dt.date(2024, 3, 31))
    table = run_week_hours(run=run)
    covered = np.zeros((7, 24), dtype=bool)
    covered[4, 18:] = covered[5, :] = covered[6, :] = covered[0, :8] = True
    assert covered.sum() == 62
    np.testing.assert_allclose(table.weights[covered], 1 / 62)
    assert not table.weights[~covered].any()
    assert (table.method, table.time_zone) == ("aoristic", LIMA)
    assert (table.incidents, table.windowed, table.exact, table.spread_evenly) == (1, 1, 0, 0)
    assert table.weight == pytest.approx(1.0)


def test_the_runs_incidents_match_a_minute_by_minute_count():
    region, a, b = _world(LIMA)
    date_from, date_to = dt.date(2024, 3, 1), dt.date(2024, 3, 31)
    period = (local(LIMA, 2024, 3, 1), local(LIMA, 2024, 4, 1))
    counted = [
        (local(LIMA, 2024, 3, 8, 18), local(LIMA, 2024, 3, 11, 8)),  # Friday to Monday
        (local(LIMA, 2024, 3, 12, 9, 17), None),  # exact times, two in one quarter hour
        (local(LIMA, 2024, 3, 12, 9, 20), None),
        (local(LIMA, 2024, 3, 19, 9, 50), None),
        (local(LIMA, 2024, 3, 13), local(LIMA, 2024, 3, 14)),  # a day
        (local(LIMA, 2024, 3, 20, 22, 40), local(LIMA, 2024, 3, 21, 1, 10)),  # minutes
        (local(LIMA, 2024, 2, 29, 20), local(LIMA, 2024, 3, 1, 4)),  # half before the period
        (local(LIMA, 2024, 3, 31, 22), local(LIMA, 2024, 4, 1, 2)),  # half after it
        (local(LIMA, 2024, 3, 1), local(LIMA, 2024, 4, 1)),  # a month: spread evenly
    ]
    _add(region, a, counted)
    # Not the run's: another district, another category, outside the period.
    _add(region, b, [(local(LIMA, 2024, 3, 12, 3), None)], point=OUTSIDE)
    _add(region, a, [(local(LIMA, 2024, 3, 12, 3), None)], category="assault")
    _add(region, a, [(local(LIMA, 2024, 4, 2, 3), None), (local(LIMA, 2024, 2, 28, 3), None)])
    run = _run(region, [a], date_from=date_from, date_to=date_to, categories=["burglary"])
    table = run_week_hours(run=run)
    np.testing.assert_allclose(table.weights, brute_force(counted, LIMA, period), atol=1e-9)
    assert table.incidents == len(counted)
    assert (table.windowed, table.exact, table.spread_evenly) == (6, 3, 1)
    assert table.weight == pytest.approx(len(counted) - 1.0)  # two halves outside
    assert table.weights.sum() == pytest.approx(table.weight)
    assert table.period_start == period[0] and table.period_end == period[1]


def test_daylight_saving_nights_in_new_york():
    """Exact times grouped by quarter hour in the database and windows across both
    changes of 2024 land in the hours New York's clock shows."""
    region, a, _b = _world(NEW_YORK)
    spring = dt.datetime(2024, 3, 10, 7, 0, tzinfo=dt.UTC)  # 02:00 EST becomes 03:00 EDT
    autumn = dt.datetime(2024, 11, 3, 6, 0, tzinfo=dt.UTC)  # 02:00 EDT becomes 01:00 EST
    minute = dt.timedelta(minutes=1)
    counted = [
        (spring - minute, None),
        (spring, None),
        (spring + 14 * minute, None),
        (spring - 90 * minute, spring + 90 * minute),
        (autumn - minute, None),  # 01:59 EDT
        (autumn + minute, None),  # 01:01 EST
        (autumn - 2 * 60 * minute, autumn + 2 * 60 * minute),
    ]
    _add(region, a, counted)
    run = _run(region, [a], date_from=dt.date(2024, 1, 1), date_to=dt.date(2024, 12, 31))
    period = (local(NEW_YORK, 2024, 1, 1), local(NEW_YORK, 2025, 1, 1))
    table = run_week_hours(run=run)
    np.testing.assert_allclose(table.weights, brute_force(counted, NEW_YORK, period), atol=1e-9)
    # Sunday 01:00: 01:59 EST in March, its share of the 00:30-04:30 window (60 of 180
    # minutes), 01:59 EDT and 01:01 EST in November and the 01:00 hour twice of that
    # night's 00:00-03:00 window (120 of 240 minutes).
    assert table.weights[6, 1] == pytest.approx(1 + 1 / 3 + 2 + 1 / 2)
    assert table.weights[6, 2].round(9) == 60 / 240  # 02:00 EST in November only


# --- API ----------------------------------------------------------------------------------


def test_planners_read_the_week_hours_of_a_run(gistar_run, django_user_model):
    client = client_for(django_user_model, "planner")
    response = client.get(
        reverse("hotspot-run-week-hours", args=[gistar_run.pk]), HTTP_ACCEPT_LANGUAGE="es"
    )
    assert response.status_code == 200, response.content[:300]
    assert response["Cache-Control"] == "private, no-store"
    assert response["Content-Type"].startswith("application/json")
    data = response.json()
    assert data["method"] == "aoristic"
    assert data["time_zone"] == gistar_run.region.time_zone
    assert data["weekdays"] == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    assert data["weekday_labels"][0] == "lunes"
    assert data["hours"] == list(range(24))
    weights = np.array(data["weights"])
    assert weights.shape == (7, 24)
    # Every incident of the town has the fixture's exact time, in the run's period.
    when = WHEN.astimezone(ZoneInfo(gistar_run.region.time_zone))
    selected = Incident.objects.filter(region=gistar_run.region).count()
    assert weights[when.weekday(), when.hour] == selected
    assert weights.sum() == data["total_weight"] == data["incidents"] == selected
    assert (data["windowed"], data["exact"], data["spread_evenly"]) == (0, selected, 0)
    assert data["max_weight"] == selected and data["cap_hours"] == 168


@pytest.mark.parametrize("who", ["anonymous", "municipal", "program"])
def test_other_roles_do_not_read_the_week_hours(gistar_run, django_user_model, who):
    client = client_for(django_user_model, who, district=gistar_run.region.district_set.first())
    for pk in (gistar_run.pk, gistar_run.pk + 1000):
        response = client.get(reverse("hotspot-run-week-hours", args=[pk]))
        assert response.status_code in (401, 403), (who, response.status_code)
        assert response["Cache-Control"] == "private, no-store"
        assert "weights" not in response.json()


def test_an_unknown_or_unfinished_run_has_no_week_hours(gistar_run, django_user_model):
    client = client_for(django_user_model, "planner")
    missing = client.get(reverse("hotspot-run-week-hours", args=[gistar_run.pk + 1000]))
    assert missing.status_code == 404
    assert missing["Cache-Control"] == "private, no-store"
    HotspotRun.objects.filter(pk=gistar_run.pk).update(status=HotspotRun.Status.QUEUED)
    running = client.get(reverse("hotspot-run-week-hours", args=[gistar_run.pk]))
    assert running.status_code == 409 and "detail" in running.json()
    assert running["Cache-Control"] == "private, no-store"


# --- the run page -------------------------------------------------------------------------


def _page(client, run, language: str) -> str:
    response = client.get(
        reverse("hotspots:run-detail", args=[run.pk]), HTTP_ACCEPT_LANGUAGE=language
    )
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize(
    ("language", "caption", "monday", "value"),
    [
        (
            "en",
            "Aoristic: an incident known only to have happened between two times",
            "Monday",
            ".",
        ),
        ("es", "Aorístico: un incidente del que solo se sabe que ocurrió entre dos", "lunes", ","),
    ],
)
def test_the_run_page_shows_the_week_hours_table(
    gistar_run, django_user_model, language, caption, monday, value
):
    client = Client()
    client.force_login(make_user(django_user_model, "planner", username="wh-page"))
    html = _page(client, gistar_run, language)
    section = html.split('<section id="week-hours"', 1)[1].split("</section>", 1)[0]
    method = section.split('id="week-hours-method">', 1)[1].split("</p>", 1)[0]
    assert method.startswith(caption) and gistar_run.region.time_zone in method
    box = section.split('id="week-hours-scroll"', 1)[1].split("</div>", 1)[0]
    table = box.split('id="week-hours-table"', 1)[1].split("</table>", 1)[0]
    assert 'aria-describedby="week-hours-method"' in table
    assert f"({gistar_run.region.time_zone})</caption>" in table
    body = table.split("<tbody>", 1)[1]
    assert body.count("<tr>") == 7 and body.count("<td") == 7 * 25
    assert f'<th scope="row">{monday}</th>' in body
    # Every incident has the fixture's time: its hour holds them all, one decimal.
    when = WHEN.astimezone(ZoneInfo(gistar_run.region.time_zone))
    selected = Incident.objects.filter(region=gistar_run.region).count()
    row = body.split("<tr>")[1 + when.weekday()]
    cells = row.split('<td class="num')[1:]
    assert cells[when.hour].startswith(f' wh-5">{selected}{value}0</td>')
    assert cells[(when.hour + 1) % 24].startswith(f' wh-0">0{value}0</td>')
    assert f"{selected} ({selected} " in html.split('id="week-hours-counts"', 1)[1]


def test_an_unfinished_run_page_has_no_week_hours(gistar_run, django_user_model):
    HotspotRun.objects.filter(pk=gistar_run.pk).update(status=HotspotRun.Status.QUEUED)
    client = Client()
    client.force_login(make_user(django_user_model, "planner", username="wh-page"))
    assert 'id="week-hours' not in _page(client, gistar_run, "en")
