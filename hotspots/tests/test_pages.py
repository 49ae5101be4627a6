# ruff: noqa: F811  (pytest fixtures imported from hotspot_fixtures)
"""The planner's run pages: list, detail (progress, tables, validation form), the report
download; everyone but planners is sent to the login page or refused."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from hotspots.models import HotspotRun, HotspotValidation
from hotspots.tests.hotspot_fixtures import (  # noqa: F401  (fixtures)
    CLUSTERS,
    X0,
    Y0,
    add_incidents,
    add_validation,
    copy_run,
    gistar_run,
    town,
)
from incidents.tests.factories import make_user

pytestmark = pytest.mark.django_db


def browser(django_user_model, who: str) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    if who != "anonymous":
        client.force_login(make_user(django_user_model, who, username=f"{who}-page"))
    return client


def _urls(run):
    return [
        reverse("hotspots:run-list"),
        reverse("hotspots:run-detail", args=[run.pk]),
        reverse("hotspots:run-report", args=[run.pk]),
    ]


def test_anonymous_visitors_are_sent_to_the_login_page(gistar_run, django_user_model):
    client = browser(django_user_model, "anonymous")
    for url in _urls(gistar_run):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    post = client.post(reverse("hotspots:run-validate", args=[gistar_run.pk]), {})
    assert post.status_code == 302


@pytest.mark.parametrize("who", ["municipal", "program"])
def test_other_roles_are_refused(gistar_run, django_user_model, who):
    client = browser(django_user_model, who)
    for url in _urls(gistar_run):
        assert client.get(url).status_code == 403, url
    response = client.post(
        reverse("hotspots:run-validate", args=[gistar_run.pk]),
        {"eval_from": "2024-07-01", "eval_to": "2024-09-30"},
    )
    assert response.status_code == 403
    assert not HotspotValidation.objects.exists()


def test_the_run_list(gistar_run, django_user_model):
    failed = copy_run(gistar_run, method="kde")
    HotspotRun.objects.filter(pk=failed.pk).update(status="failed", message="nope")
    response = browser(django_user_model, "planner").get(reverse("hotspots:run-list"))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.index(f'data-run="{failed.pk}"') < html.index(f'data-run="{gistar_run.pk}"')
    assert reverse("hotspots:run-detail", args=[gistar_run.pk]) in html
    assert "status-failed" in html and "status-succeeded" in html


def test_a_finished_run_page_shows_its_tables_and_report_link(gistar_run, django_user_model):
    add_validation(gistar_run)
    response = browser(django_user_model, "planner").get(
        reverse("hotspots:run-detail", args=[gistar_run.pk])
    )
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    html = response.content.decode()
    assert f"Hotspot run #{gistar_run.pk}" in html
    for section in ("summary", "zones", "parameters", "timings"):
        assert f'id="{section}-table"' in html, section
    zone_rows = html.split('id="zones-table"', 1)[1].split("</table>", 1)[0].count("<tr>")
    assert zone_rows == gistar_run.zones.count() + 1
    assert "Hot zones" in html and '<td class="num">2.43</td>' in html  # the validation table
    assert 'id="run-progress"' not in html  # finished: no progress bar
    assert reverse("hotspots:run-report", args=[gistar_run.pk]) in html
    assert f"/planner/?run={gistar_run.pk}" in html
    # The form proposes the period right after the run's.
    assert 'name="eval_from" value="2024-07-01"' in html


def test_a_running_run_page_polls_the_api(gistar_run, django_user_model):
    import psycopg2
    from django.db import connection

    from common.jobs import HOTSPOT_RUN_JOBS

    HotspotRun.objects.filter(pk=gistar_run.pk).update(status="running", progress=0.4)
    job = psycopg2.connect(**connection.get_connection_params())  # a living job holds the run
    try:
        with job.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [HOTSPOT_RUN_JOBS, gistar_run.pk])
        html = (
            browser(django_user_model, "planner")
            .get(reverse("hotspots:run-detail", args=[gistar_run.pk]))
            .content.decode()
        )
    finally:
        job.close()
    assert 'id="run-progress"' in html and 'value="0.4000"' in html
    assert reverse("hotspot-run-detail", args=[gistar_run.pk]) in html  # polled URL
    assert 'id="validate-form"' not in html


def test_validating_from_the_page(gistar_run, django_user_model):
    rng_points = 60
    cx, cy, _n, category = CLUSTERS[0]
    add_incidents(
        gistar_run.region,
        gistar_run.region.district_set.get(code="T1"),
        [X0 + cx + 10 * (k % 7) for k in range(rng_points)],
        [Y0 + cy + 10 * (k // 7) for k in range(rng_points)],
        category=category,
        when=dt.datetime(2024, 8, 2, 10, tzinfo=dt.UTC),
    )
    client = browser(django_user_model, "planner")
    url = reverse("hotspots:run-validate", args=[gistar_run.pk])
    bad = client.post(url, {"eval_from": "2024-09-30", "eval_to": "2024-07-01"})
    assert bad.status_code == 400
    assert "The period ends before it starts." in bad.content.decode()
    refused = client.post(url, {"eval_from": "2024-03-01", "eval_to": "2024-03-31"})
    assert refused.status_code == 400  # inside the run's own period: the service says why
    assert "must start after" in refused.content.decode()
    assert not gistar_run.validations.exists()

    response = client.post(url, {"eval_from": "2024-07-01", "eval_to": "2024-09-30"})
    assert response.status_code == 302
    assert response["Location"].endswith(f"/planner/hotspots/{gistar_run.pk}/#validations")
    validation = gistar_run.validations.get()
    page = client.get(reverse("hotspots:run-detail", args=[gistar_run.pk])).content.decode()
    assert "Validation against 2024-07-01 – 2024-09-30" in page
    zones = next(r for r in validation.report["rows"] if r["method"] == "zones")
    assert f"{zones['pai']:.2f}" in page


def test_the_report_downloads_as_a_file(gistar_run, django_user_model):
    with translation.override("en"):
        response = browser(django_user_model, "planner").get(
            reverse("hotspots:run-report", args=[gistar_run.pk])
        )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert (
        response["Content-Disposition"]
        == f'attachment; filename="hotspot-run-{gistar_run.pk}.html"'
    )
    html = response.content.decode()
    assert html.startswith("<!DOCTYPE html>") and "Zone rank" in html


def test_the_validation_form_keeps_iso_dates_in_spanish(gistar_run, django_user_model):
    """<input type="date"> only reads yyyy-mm-dd: a localized "01/07/2024" shows it empty."""
    client = Client(HTTP_ACCEPT_LANGUAGE="es")
    client.force_login(make_user(django_user_model, "planner", username="planner-es"))
    html = client.get(reverse("hotspots:run-detail", args=[gistar_run.pk])).content.decode()
    assert 'lang="es"' in html
    expected_end = min(dt.date(2024, 12, 29), dt.date.today()).isoformat()
    assert 'name="eval_from" value="2024-07-01"' in html
    assert f'name="eval_to" value="{expected_end}"' in html
