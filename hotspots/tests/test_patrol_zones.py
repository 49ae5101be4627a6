# ruff: noqa: F811 (the town fixture is imported from test_runs)
"""Patrol-sized zones end to end (issue 12, item 10): a Gi* run over a town whose two dense
peaks merge into one component splits it into parts within the planner's maximum area,
ranked after the split; the rule is recorded and shown; the command, the API and the
planner form take ``max_zone_km2``."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import translation

from hotspots.models import HotspotCell, HotspotRun, HotspotZone
from hotspots.report import render_report
from hotspots.tests.hotspot_fixtures import client_for
from hotspots.tests.test_forecast import forecast_run, shifting_town
from hotspots.tests.test_runs import (  # noqa: F401 (town is a fixture)
    X0,
    Y0,
    add_incidents,
    run_for,
    town,
)
from incidents.tests.factories import make_user

pytestmark = pytest.mark.django_db

CELL = 200.0  # square cells of 0.04 km²
PEAKS = [(3000.0, 2000.0), (5000.0, 2000.0)]
SMALL = (7300.0, 500.0)  # a small separate cluster, far from the peaks
PARAMS = {"grid": "square", "cell_size_m": CELL, "stability": False}


def twin_peaks_city(region, seed: int = 5):
    """The 8 × 4 km town: background, two dense peaks 2 km apart joined by a busy street
    (so their hot cells touch), and one small cluster on its own."""
    rng = np.random.default_rng(seed)
    add_incidents(region, X0 + rng.uniform(1, 7999, 900), Y0 + rng.uniform(1, 3999, 900))
    for cx, cy in PEAKS:
        add_incidents(region, X0 + cx + rng.normal(0, 350, 700), Y0 + cy + rng.normal(0, 350, 700))
    add_incidents(
        region,
        X0 + rng.uniform(PEAKS[0][0], PEAKS[1][0], 400),
        Y0 + PEAKS[0][1] + rng.normal(0, 120, 400),
    )
    add_incidents(
        region,
        X0 + SMALL[0] + rng.normal(0, 110, 260),
        Y0 + SMALL[1] + rng.normal(0, 110, 260),
        category="burglary",
    )


def zone_cells(run) -> dict[int, set[tuple[int, int]]]:
    out: dict[int, set[tuple[int, int]]] = {}
    for rank, i, j in HotspotCell.objects.filter(run=run, zone__isnull=False).values_list(
        "zone__rank", "i", "j"
    ):
        out.setdefault(rank, set()).add((i, j))
    return out


def cell_key(x: float, y: float) -> tuple[int, int]:
    return int((X0 + x) // CELL), int((Y0 + y) // CELL)


def snapshot(run):
    return [
        (z.rank, z.incident_count, z.cell_count, round(z.area_m2, 3), z.geom.wkb.hex())
        for z in HotspotZone.objects.filter(run=run).order_by("rank")
    ]


def test_two_merged_peaks_are_split_into_ranked_zones_within_the_maximum_area(town):
    twin_peaks_city(town)
    whole = run_for(town, params={**PARAMS, "max_zone_km2": 100})
    assert whole.status == HotspotRun.Status.SUCCEEDED, whole.message
    merged = zone_cells(whole)
    peak_cells = {cell_key(*p) for p in PEAKS}
    big = next(rank for rank, cells in merged.items() if peak_cells <= cells)
    # The construction works: both peaks in one merged zone, far larger than 1 km².
    assert len(merged[big]) * CELL**2 / 1e6 > 2
    assert whole.summary["zones_split"] == 0
    assert whole.summary["zones_merged"] == whole.summary["zones"] == len(merged)

    split = run_for(town, params={**PARAMS, "max_zone_km2": 1.0})
    assert split.status == HotspotRun.Status.SUCCEEDED, split.message
    s = split.summary
    assert s["zones_merged"] == len(merged) and s["zones_split"] >= 1
    assert s["zone_rule"]["rule"] == "split_at_peaks" and s["zone_rule"]["score"] == "gi_z"
    assert s["zone_rule"]["max_zone_km2"] == 1.0 and s["zone_rule"]["peaks"] >= 2
    parts = zone_cells(split)
    assert s["zones"] == len(parts) > len(merged)
    zones = list(HotspotZone.objects.filter(run=split).order_by("rank"))
    assert all(z.area_m2 <= 1e6 for z in zones)
    # The big zone's cells are now in at least two zones, the two peaks in different ones.
    inside_big = [rank for rank, cells in parts.items() if cells & merged[big]]
    assert len(inside_big) >= 2
    assert set().union(*(parts[r] for r in inside_big)) == merged[big]
    rank_of = {cell: rank for rank, cells in parts.items() for cell in cells}
    assert rank_of[cell_key(*PEAKS[0])] != rank_of[cell_key(*PEAKS[1])]
    # Same hot cells overall; the small cluster's zone is exactly as it was.
    assert set().union(*parts.values()) == set().union(*merged.values())
    small = cell_key(*SMALL)
    assert small in rank_of
    old_small = next(cells for cells in merged.values() if small in cells)
    assert parts[rank_of[small]] == old_small
    # Ranked after the split: most incidents first, ranks 1..n.
    assert [z.rank for z in zones] == list(range(1, len(zones) + 1))
    counts = [z.incident_count for z in zones]
    assert counts == sorted(counts, reverse=True)
    assert sum(counts) == sum(z.incident_count for z in HotspotZone.objects.filter(run=whole))
    # Deterministic: the same request gives the same zones, rank for rank.
    again = run_for(town, params={**PARAMS, "max_zone_km2": 1.0})
    assert snapshot(again) == snapshot(split)


def test_a_forecast_run_splits_its_zones_too(town):
    d1 = shifting_town(town)
    run = forecast_run(town, d1, max_zone_km2=0.08)  # two 200 m cells at most
    assert run.status == HotspotRun.Status.SUCCEEDED, run.message
    s = run.summary
    assert s["zone_rule"]["score"] == "forecast" and s["zone_rule"]["max_zone_km2"] == 0.08
    assert s["zones_split"] >= 1 and s["zones"] > s["zones_merged"]
    assert all(z.cell_count <= 2 for z in HotspotZone.objects.filter(run=run))
    # Every flagged cell still in a zone.
    assert HotspotCell.objects.filter(run=run, zone__isnull=False).count() == s["flagged_cells"]


@pytest.mark.parametrize(
    "lang, label, text",
    [
        ("en", "How large zones are split", "a zone larger than 1.00 km² is cut at the local"),
        ("es", "Cómo se dividen las zonas grandes", "una zona de más de 1,00 km² se corta en"),
    ],
)
def test_the_run_page_and_report_write_the_rule_in_the_reader_s_language(
    town, django_user_model, lang, label, text
):
    twin_peaks_city(town)
    run = run_for(town, params=PARAMS)
    client = Client(HTTP_ACCEPT_LANGUAGE=lang)
    client.force_login(make_user(django_user_model, "planner", username=f"planner-{lang}"))
    page = client.get(reverse("hotspots:run-detail", args=[run.pk])).content.decode()
    summary = page.split('id="summary-table"', 1)[1].split("</table>", 1)[0]
    assert label in summary and text in summary
    with translation.override(lang):
        report = render_report(run)
    assert label in report and text in report


def _api_post(client, region, params):
    payload = {
        "region": region.code,
        "date_from": "2024-01-01",
        "date_to": "2024-12-31",
        "method": "gistar",
        "params": params,
    }
    return client.post(reverse("hotspot-run-list"), payload, format="json")


def test_the_api_takes_max_zone_km2_and_refuses_bad_values(town, django_user_model):
    twin_peaks_city(town)
    client = client_for(django_user_model, "planner")
    for bad in (0, 0.001, 500, "big", True):
        response = _api_post(client, town, {**PARAMS, "max_zone_km2": bad})
        assert response.status_code == 400, (bad, response.content)
        assert any("max_zone_km2" in m for m in response.json()["non_field_errors"])
    assert HotspotRun.objects.count() == 0
    response = _api_post(client, town, {**PARAMS, "max_zone_km2": 0.5})
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["params"]["max_zone_km2"] == 0.5
    assert body["summary"]["zone_rule"]["max_zone_km2"] == 0.5


def test_the_command_takes_max_zone_km2_and_refuses_bad_values(town):
    twin_peaks_city(town)
    out = io.StringIO()
    call_command(
        "run_hotspots", "--region", town.code, "--from", "2024-01-01", "--to", "2024-12-31",
        "--grid", "square", "--cell-size", "200", "--no-stability", "--max-zone-km2", "0.5",
        stdout=out,
    )  # fmt: skip
    run = HotspotRun.objects.get()
    assert run.params["max_zone_km2"] == 0.5
    assert "zones larger than 0.5 km² split at the local maxima of gi_z" in out.getvalue()
    for bad, message in (
        ("0", "refused: max_zone_km2 must be between 0.01 and 100 km²"),
        ("x", "invalid float value: 'x'"),
    ):
        with pytest.raises(CommandError) as raised:
            call_command(
                "run_hotspots", "--region", town.code, "--from", "2024-01-01", "--to",
                "2024-12-31", "--max-zone-km2", bad, stdout=io.StringIO(),
            )  # fmt: skip
        assert message in str(raised.value)
    with pytest.raises(CommandError, match="--max-zone-km2 does not apply to --method kde"):
        call_command(
            "run_hotspots", "--region", town.code, "--from", "2024-01-01", "--to",
            "2024-12-31", "--method", "kde", "--max-zone-km2", "1", stdout=io.StringIO(),
        )  # fmt: skip
    assert HotspotRun.objects.count() == 1


def test_the_planner_form_offers_max_zone_km2_for_the_cell_methods(client, django_user_model):
    client.force_login(make_user(django_user_model, "planner", username="planner-zones"))
    html = client.get(reverse("planner-map")).content.decode()
    assert 'data-param="max_zone_km2"' in html and 'name="max_zone_km2"' in html
    config = json.loads(html.split('id="planner-config" type="application/json">')[1].split("<")[0])
    params = config["hotspots"]["params"]
    assert "max_zone_km2" in params["gistar"] and "max_zone_km2" in params["forecast"]
    assert "max_zone_km2" not in params["dbscan"] and "max_zone_km2" not in params["kde"]
