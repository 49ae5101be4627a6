# ruff: noqa: F811 (the fixtures are imported from hotspot_fixtures)
"""A run's outcome sentence is in the reader's language on the run page and in the report;
the English message the run stored stays for the command and for failures."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from hotspots.models import HotspotRun
from hotspots.outcome import run_outcome, summary_sentence
from hotspots.report import render_report
from hotspots.tests.hotspot_fixtures import (  # noqa: F401 (fixtures)
    gistar_run,
    town,
)
from incidents.tests.factories import make_user

FORECAST = {
    "method": "forecast",
    "incidents": 168625,
    "cells": 40210,
    "cell_size_m": 150.0,
    "coverage": 0.05,
    "flagged_cells": 2010,
    "zones": 383,
    "chosen": "count",
    "chosen_label": "period count",
    "backtest": {"rows": [{"key": "count", "kind": "count", "chosen": True}]},
}
EMERGING = {
    "method": "emerging",
    "incidents": 5003,
    "cells": 929,
    "cell_size_m": 500.0,
    "steps": 24,
    "step": "month",
    "hot_pattern_cells": 12,
    "cold_pattern_cells": 1,
}
KDE = {
    "method": "kde",
    "incidents": 900,
    "cells": 300,
    "cell_size_m": 100.0,
    "bandwidth_m": 250.0,
    "density_max_per_km2": 1234.5,
}
DBSCAN = {
    "method": "dbscan",
    "incidents": 900,
    "zones": 4,
    "eps_m": 100.0,
    "min_points": 12,
    "noise_incidents": 300,
}


def sentence(summary: dict, lang: str) -> str:
    with translation.override(lang):
        return summary_sentence(summary)


def test_each_method_s_sentence_in_english_and_spanish():
    assert sentence(FORECAST, "en") == (
        "168,625 incidents in 40,210 cells (150 m); forecast by Period count (best back-test "
        "PAI at 5.0 % of the area): 2,010 cells in 383 zone(s)"
    )
    spanish = sentence(FORECAST, "es")
    assert spanish.startswith("168\u00a0625 incidentes en 40\u00a0210 celdas (150 m)")
    assert "Conteo del periodo" in spanish and "period count" not in spanish
    assert "over 24 monthly steps" in sentence(EMERGING, "en")
    assert "24 pasos mensuales" in sentence(EMERGING, "es")
    assert "250 m" in sentence(KDE, "en") and "ancho de banda de 250 m" in sentence(KDE, "es")
    assert "4 cluster zone(s)" in sentence(DBSCAN, "en")
    assert "300 incidentes en ningún grupo" in sentence(DBSCAN, "es")


@pytest.mark.django_db
@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_run_page_and_report_say_the_outcome_in_the_reader_s_language(
    gistar_run, django_user_model, lang
):
    hot = gistar_run.summary["hot_cells"]
    client = Client(HTTP_ACCEPT_LANGUAGE=lang)
    client.force_login(make_user(django_user_model, "planner", username=f"outcome-{lang}"))
    html = client.get(reverse("hotspots:run-detail", args=[gistar_run.pk])).content.decode()
    with translation.override(lang):
        expected = run_outcome(gistar_run)
        report = render_report(gistar_run)

    word = {"en": "hot and", "es": "celdas calientes y"}[lang]
    assert f"{hot} {word}" in expected
    assert f'<p id="run-message" class="notice">{expected}</p>' in html
    assert expected in report
    if lang == "es":
        assert gistar_run.message not in html and "incidents in" not in expected


@pytest.mark.django_db
def test_a_failed_run_shows_the_reason_it_stored(gistar_run):
    HotspotRun.objects.filter(pk=gistar_run.pk).update(
        status=HotspotRun.Status.FAILED, message="refused: only 3 incidents match"
    )
    gistar_run.refresh_from_db()
    with translation.override("es"):
        assert run_outcome(gistar_run) == "refused: only 3 incidents match"


@pytest.mark.django_db
def test_a_summary_without_the_figures_falls_back_to_the_stored_message(gistar_run):
    HotspotRun.objects.filter(pk=gistar_run.pk).update(summary={"method": "gistar"})
    gistar_run.refresh_from_db()
    assert run_outcome(gistar_run) == gistar_run.message
