"""The run list's filters (region, method, status, author), kept by the pager, and the
superseded runs: hidden by default, shown on request with a link to the run that replaced
them. Runs are written directly (no analysis): the list reads only their rows."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from hotspots import selectors, views
from hotspots.models import HotspotRun
from incidents.tests.factories import make_district, make_region, make_user

pytestmark = pytest.mark.django_db

PERIOD = {"date_from": dt.date(2024, 1, 1), "date_to": dt.date(2024, 6, 30)}
BASE_TIME = dt.datetime(2024, 8, 1, 12, 0, tzinfo=dt.UTC)


def make_run(
    region,
    *,
    minutes: int,
    method: str = "gistar",
    status: str = "succeeded",
    user=None,
    districts=(),
    neighborhoods=(),
    polygon=None,
    **period,
) -> HotspotRun:
    """A run row created ``minutes`` after BASE_TIME."""
    run = HotspotRun.objects.create(
        region=region,
        method=method,
        status=status,
        progress=1.0 if status in ("succeeded", "failed") else 0.0,
        created_by=user,
        polygon=polygon,
        **{**PERIOD, **period},
    )
    run.districts.set(districts)
    run.neighborhoods.set(neighborhoods)
    HotspotRun.objects.filter(pk=run.pk).update(
        created_at=BASE_TIME + dt.timedelta(minutes=minutes)
    )
    return run


def planner(django_user_model, lang: str = "en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=lang)
    client.force_login(make_user(django_user_model, "planner", username=f"planner-{lang}"))
    return client


def listed(response) -> list[int]:
    """The run ids of the list's rows, in their order."""
    return [int(pk) for pk in re.findall(r'<tr data-run="(\d+)"', response.content.decode())]


@pytest.fixture
def regions():
    lima = make_region("lima")
    quito = make_region("quito", lon=-78.5, lat=-0.2)
    return lima, quito


def test_each_filter_narrows_the_list(regions, django_user_model):
    lima, quito = regions
    ana = make_user(django_user_model, "planner", username="ana")
    ben = make_user(django_user_model, "planner", username="ben")
    # Different periods: none of these supersedes another.
    a = make_run(lima, minutes=1, user=ana, date_from=dt.date(2023, 1, 1))
    b = make_run(lima, minutes=2, user=ben, method="kde", date_from=dt.date(2023, 2, 1))
    c = make_run(quito, minutes=3, user=ana, status="failed", date_from=dt.date(2023, 3, 1))
    d = make_run(quito, minutes=4, user=ben, method="dbscan", status="queued")
    client = planner(django_user_model)
    url = reverse("hotspots:run-list")

    assert listed(client.get(url)) == [d.pk, c.pk, b.pk, a.pk]
    assert listed(client.get(url, {"region": "lima"})) == [b.pk, a.pk]
    assert listed(client.get(url, {"region": "quito"})) == [d.pk, c.pk]
    assert listed(client.get(url, {"method": "kde"})) == [b.pk]
    assert listed(client.get(url, {"method": "gistar"})) == [c.pk, a.pk]
    assert listed(client.get(url, {"status": "failed"})) == [c.pk]
    assert listed(client.get(url, {"status": "queued"})) == [d.pk]
    assert listed(client.get(url, {"author": ana.pk})) == [c.pk, a.pk]
    assert listed(client.get(url, {"author": ben.pk, "region": "quito"})) == [d.pk]
    empty = client.get(url, {"method": "kde", "region": "quito"})
    assert listed(empty) == [] and 'id="no-run"' in empty.content.decode()
    assert "No run matches these filters." in empty.content.decode()
    # The form shows what it filters by, and only users who ran something as authors.
    html = client.get(url, {"region": "lima"}).content.decode()
    assert re.search(r'<option value="lima" selected>', html)
    author_select = html.split('name="author"', 1)[1].split("</select>", 1)[0]
    assert ">ana<" in author_select and ">ben<" in author_select
    assert "planner-en" not in author_select


@pytest.mark.parametrize(
    "query, field",
    [
        ({"region": "atlantis"}, "region"),
        ({"method": "astrology"}, "method"),
        ({"status": "lost"}, "status"),
        ({"author": "999999"}, "author"),
        ({"author": "nobody"}, "author"),
        ({"page": "x", "status": "<script>"}, "status"),
    ],
)
def test_an_invalid_filter_is_a_field_error_not_a_500(regions, django_user_model, query, field):
    lima, _quito = regions
    run = make_run(lima, minutes=1)
    response = planner(django_user_model).get(reverse("hotspots:run-list"), query)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="id_{field}_error"' in html
    assert "<script>" not in html.split('id="run-filters"', 1)[1]
    # The invalid field filters nothing; the list is still there.
    assert listed(response) == [run.pk]


def test_the_invalid_filter_error_is_in_spanish(regions, django_user_model):
    make_run(regions[0], minutes=1)
    response = planner(django_user_model, "es").get(
        reverse("hotspots:run-list"), {"method": "astrology"}
    )
    assert response.status_code == 200
    error = response.content.decode().split('id="id_method_error"', 1)[1].split("</ul>", 1)[0]
    with translation.override("es"):
        expected = str(
            views.RunFilterForm.base_fields["method"].error_messages["invalid_choice"]
            % {"value": "astrology"}
        )
    assert expected in error and "Select a valid choice" not in error


def test_filters_are_kept_by_the_pager(regions, django_user_model, monkeypatch):
    lima, quito = regions
    monkeypatch.setattr(views, "RUNS_PER_PAGE", 2)
    lima_runs = [make_run(lima, minutes=i, date_from=dt.date(2023, 1, 1 + i)) for i in range(5)]
    for i in range(3):
        make_run(quito, minutes=10 + i, date_from=dt.date(2023, 1, 1 + i))
    client = planner(django_user_model)
    first = client.get(reverse("hotspots:run-list"), {"region": "lima"})
    html = first.content.decode()
    assert listed(first) == [lima_runs[4].pk, lima_runs[3].pk]
    assert "?region=lima&amp;page=2" in html
    second = client.get(reverse("hotspots:run-list"), {"region": "lima", "page": 2})
    assert listed(second) == [lima_runs[2].pk, lima_runs[1].pk]
    third = client.get(reverse("hotspots:run-list"), {"region": "lima", "page": 3})
    assert listed(third) == [lima_runs[0].pk]
    assert "?region=lima&amp;page=2" in third.content.decode()


@pytest.fixture
def reruns(regions):
    """Runs over one district and period in Lima, and runs that differ from them in one
    way each (none of those is superseded)."""
    lima, quito = regions
    box = (-77.1, -12.1, -77.0, -12.0)
    d1 = make_district(lima, "D1", box)
    d2 = make_district(lima, "D2", (-77.0, -12.1, -76.9, -12.0))
    old = make_run(lima, minutes=1, districts=[d1])
    failed_rerun = make_run(lima, minutes=2, districts=[d1], status="failed")
    middle = make_run(lima, minutes=3, districts=[d1])
    newest = make_run(lima, minutes=4, districts=[d1])
    # Queued, not running: the pages fail a running run whose job is gone.
    queued_rerun = make_run(lima, minutes=5, districts=[d1], status="queued")
    polygon = MultiPolygon(Polygon.from_bbox((-77.08, -12.08, -77.02, -12.02)), srid=4326)
    others = [
        make_run(lima, minutes=0, districts=[d1], method="kde"),  # another method
        make_run(lima, minutes=0, districts=[d2]),  # another district
        make_run(lima, minutes=0, districts=[d1, d2]),  # more districts
        make_run(lima, minutes=0),  # the whole region
        make_run(lima, minutes=0, districts=[d1], polygon=polygon),  # a drawn area
        make_run(lima, minutes=0, districts=[d1], date_to=dt.date(2024, 5, 31)),  # period
        make_run(quito, minutes=0),  # another region
    ]
    return {
        "old": old,
        "failed_rerun": failed_rerun,
        "middle": middle,
        "newest": newest,
        "queued_rerun": queued_rerun,
        "others": others,
    }


def test_the_selector_finds_what_supersedes_a_run(reruns):
    by_id = {run.pk: run.superseded_by for run in selectors.run_list()}
    newest = reruns["newest"].pk
    # Superseded by the newest succeeded rerun, whatever came between.
    assert by_id[reruns["old"].pk] == newest
    assert by_id[reruns["failed_rerun"].pk] == newest
    assert by_id[reruns["middle"].pk] == newest
    # Nothing finished after the newest one (a queued rerun does not count), and a run
    # that differs in method, area, drawn polygon, period or region is not replaced.
    assert by_id[newest] is None
    assert by_id[reruns["queued_rerun"].pk] is None
    for other in reruns["others"]:
        assert by_id[other.pk] is None, other
    # The same creation time: the later id wins.
    twin = make_run(
        reruns["newest"].region, minutes=4, districts=list(reruns["newest"].districts.all())
    )
    assert selectors.run_list().get(pk=newest).superseded_by == twin.pk


def test_superseded_runs_are_hidden_then_shown_with_a_link(reruns, django_user_model):
    client = planner(django_user_model)
    url = reverse("hotspots:run-list")
    superseded = {reruns["old"].pk, reruns["failed_rerun"].pk, reruns["middle"].pk}
    every = set(HotspotRun.objects.values_list("pk", flat=True))

    hidden = client.get(url)
    assert set(listed(hidden)) == every - superseded
    html = hidden.content.decode()
    toggle = html.split('id="superseded-toggle"', 1)[1].split("</p>", 1)[0]
    assert "Show superseded runs (3)" in toggle and 'href="?superseded=on"' in toggle
    assert "Superseded by" not in html

    shown = client.get(url, {"superseded": "on"})
    assert set(listed(shown)) == every
    html = shown.content.decode()
    newest_url = reverse("hotspots:run-detail", args=[reruns["newest"].pk])
    for pk in superseded:
        row = html.split(f'<tr data-run="{pk}"', 1)[1].split("</tr>", 1)[0]
        assert row.startswith(' class="run-superseded"')
        assert f'Superseded by <a href="{newest_url}">run #{reruns["newest"].pk}</a>' in row
    newest_row = html.split(f'<tr data-run="{reruns["newest"].pk}"', 1)[1].split("</tr>", 1)[0]
    assert "Superseded" not in newest_row
    assert "Hide superseded runs" in html

    # The count follows the other filters, and the toggle keeps them.
    filtered = client.get(url, {"status": "failed"})
    assert listed(filtered) == []
    toggle = filtered.content.decode().split('id="superseded-toggle"', 1)[1].split("</p>", 1)[0]
    assert "Show superseded runs (1)" in toggle and "status=failed&amp;superseded=on" in toggle
    assert listed(client.get(url, {"status": "failed", "superseded": "on"})) == [
        reruns["failed_rerun"].pk
    ]


def test_the_superseded_marks_are_in_spanish(reruns, django_user_model):
    client = planner(django_user_model, "es")
    html = client.get(reverse("hotspots:run-list")).content.decode()
    assert "Mostrar los análisis reemplazados (3)" in html
    html = client.get(reverse("hotspots:run-list"), {"superseded": "on"}).content.decode()
    assert "Reemplazado por el <a" in html and "Superseded" not in html


def test_no_superseded_toggle_when_nothing_is_superseded(regions, django_user_model):
    make_run(regions[0], minutes=1)
    html = planner(django_user_model).get(reverse("hotspots:run-list")).content.decode()
    assert 'id="superseded-toggle"' not in html


def test_a_run_created_now_supersedes_an_older_one(regions):
    # created_at is set on save (not by make_run): an ordinary new run compares too.
    lima = regions[0]
    old = make_run(lima, minutes=1)
    new = HotspotRun.objects.create(region=lima, status="succeeded", progress=1.0, **PERIOD)
    assert new.created_at > timezone.now() - dt.timedelta(minutes=5)
    assert selectors.run_list().get(pk=old.pk).superseded_by == new.pk
