# ruff: noqa: F811 (the fixtures are imported from hotspot_fixtures)
"""What an analyst reads on the run page and in the report (issue 12, item 11): the naive
baseline's name, aligned validation columns, DBSCAN zones without a "0 cells" column, zone
densities with a decimal below 10 per km²."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from hotspots.models import HotspotRun
from hotspots.report import render_report
from hotspots.services import runs
from hotspots.tables import density, validation_tables, zone_table
from hotspots.tests.hotspot_fixtures import (  # noqa: F401 (fixtures)
    PERIOD,
    add_validation,
    gistar_run,
    town,
)
from incidents.tests.factories import make_user

pytestmark = pytest.mark.django_db

NAIVE = {
    "en": ("Naive: count over the run&#x27;s period", "the count over the run&#x27;s period"),
    "es": ("Ingenuo: conteo en el periodo del análisis", "conteo en el periodo del análisis"),
}


def page(run, lang: str, django_user_model) -> str:
    client = Client(HTTP_ACCEPT_LANGUAGE=lang)
    user = django_user_model.objects.filter(username=f"reader-{lang}").first()
    client.force_login(user or make_user(django_user_model, "planner", username=f"reader-{lang}"))
    response = client.get(reverse("hotspots:run-detail", args=[run.pk]))
    assert response.status_code == 200
    return response.content.decode()


def report(run, lang: str) -> str:
    with translation.override(lang):
        return render_report(run)


def table_after(html: str, marker: str) -> str:
    return html.split(marker, 1)[1].split("</table>", 1)[0]


@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_naive_baseline_is_the_count_over_the_run_s_period(gistar_run, django_user_model, lang):
    # A report stored with the old name reads with the new one.
    validation = add_validation(gistar_run)
    report_body = dict(validation.report)
    report_body["methods"] = [
        {"key": "zones", "label": "Hot zones"},
        {"key": "naive_period", "label": "Naive: last period's count"},
    ]
    validation.report = report_body
    validation.save()
    label, sentence = NAIVE[lang]
    for html in (page(gistar_run, lang, django_user_model), report(gistar_run, lang)):
        assert f">{label}</td>" in html
        assert "last period" not in html and "periodo anterior" not in html
    assert unescape(sentence) in unescape(page(gistar_run, lang, django_user_model))


def test_validation_columns_line_up(gistar_run, django_user_model):
    zones = {
        "method": "zones",
        "coverage": None,
        "area_share": 0.1334,
        "n_cells": 30,
        "hits": 97.0,
        "total": 300.0,
        "hit_rate": 0.32333,
        "pai": 2.4,
        "pei": 0.5931,
    }
    tiny = {**zones, "method": "naive_period", "coverage": 0.01, "area_share": 0.0004}
    tiny.update(hit_rate=0.0004, pai=12.0, pei=None)
    add_validation(
        gistar_run,
        version=1,
        methods=[
            {"key": "zones", "label": "Hot zones"},
            {"key": "naive_period", "label": "Naive: count over the run's period"},
        ],
        columns=list(zones),
        rows=[zones, tiny],
    )
    with translation.override("en"):
        (table,) = validation_tables(gistar_run.validations.get())
    assert table.numeric == frozenset(range(1, len(zones)))  # all but the method's name
    by_column = dict(zip(list(zones), zip(*table.rows, strict=True), strict=True))
    # The same decimals all down a column: shares to one decimal, even a tiny one, PAI and
    # PEI to two, counts whole.
    assert by_column["area_share"] == ("13.3 %", "0.0 %")
    assert by_column["hit_rate"] == ("32.3 %", "0.0 %")
    assert by_column["coverage"] == ("—", "1.0 %")
    assert by_column["pai"] == ("2.40", "12.00") and by_column["pei"] == ("0.59", "—")
    assert by_column["hits"] == ("97", "97")
    for html in (page(gistar_run, "en", django_user_model), report(gistar_run, "en")):
        part = html.split("Validation against 2024-07-01 – 2024-09-30", 1)[1]
        part = part.split("</table>", 1)[0]
        header = re.findall(r"<th scope=\"col\"([^>]*)>", part)
        assert header[0] == "" and all(h == ' class="num"' for h in header[1:])
        for row in re.findall(r"<tr>(.*?)</tr>", part)[1:]:
            cells = re.findall(r"<td([^>]*)>", row)
            assert cells[0] == "" and all(c == ' class="num"' for c in cells[1:])
    assert ".report-body td.num" in report(gistar_run, "en")


@pytest.mark.parametrize("lang", ["en", "es"])
def test_dbscan_zones_show_incidents_and_no_cells(town, django_user_model, lang):
    run = runs.execute_run(
        run=runs.create_run(
            region=town,
            districts=[town.district_set.get(code="T1")],
            method="dbscan",
            params={"eps_m": 60, "min_points": 20},
            **PERIOD,
        )
    )
    assert run.status == HotspotRun.Status.SUCCEEDED, run.message
    zones = list(run.zones.order_by("rank"))
    assert zones and all(z.cell_count == 0 for z in zones)
    cells = {"en": "Cells", "es": "Celdas"}[lang]
    incidents = {"en": "Incidents", "es": "Incidentes"}[lang]
    head = "<h2>Zones</h2>" if lang == "en" else "<h2>Zonas</h2>"
    for table in (
        table_after(page(run, lang, django_user_model), 'id="zones-table"'),
        table_after(report(run, lang), head),
    ):
        assert f">{incidents}</th>" in table and f">{cells}</th>" not in table
        for zone in zones:
            count = f"{zone.incident_count:,}".replace(",", "." if lang == "es" else ",")
            assert f'<td class="num">{zone.rank}</td><td class="num">{count}</td>' in table


def test_zone_density_keeps_a_decimal_below_ten_per_km2(gistar_run, django_user_model):
    with translation.override("en"):
        written = [density(v) for v in (0.04, 2.44, 9.94, 9.96, 10.0, 123.4)]
    assert written == [
        "0.04",  # below the decimal shown: still not 0 (as fmt writes it)
        "2.4",
        "9.9",
        "10",  # 10.0 once rounded: from 10 on, whole numbers
        "10",
        "123",
    ]
    zones = list(gistar_run.zones.order_by("rank"))
    zones[0].density_per_km2 = 2.44
    zones[1].density_per_km2 = 1234.56
    for zone in zones[:2]:
        zone.save()
    with translation.override("es"):
        rows = zone_table(gistar_run).rows
    # Spanish: decimal comma; 1 235 grouped by the locale's separator, no decimals.
    assert rows[0][4] == "2,4" and re.fullmatch(r"1\D?235", rows[1][4])
    html = page(gistar_run, "en", django_user_model)
    table = table_after(html, 'id="zones-table"')
    assert '<td class="num">2.4</td>' in table and '<td class="num">1,235</td>' in table
    # The report's zone popups write the same.
    assert '"density": "2.4"' in report(gistar_run, "en")
