# ruff: noqa: F811 (the town fixture is imported from test_runs)
"""The ``forecast`` method: the back-test engine on constructed histories (the candidate
that truly predicts the held-out days wins; equal hits go to the period count), then the
run end to end against PostGIS, its validation on a later period, the API, the command,
the planner form, the run page and the report (English and Spanish)."""

from __future__ import annotations

import datetime as dt
import io
import json
import re

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import translation

from hotspots.engine import forecast as engine
from hotspots.engine import grid as grids
from hotspots.engine.kde import kde_grid
from hotspots.engine.validation import evaluate_scores
from hotspots.models import HotspotCell, HotspotRun
from hotspots.report import render_report
from hotspots.selectors import CellFilter, cell_queryset
from hotspots.services import runs
from hotspots.services.validation import validate_run
from hotspots.styles import SCORE_RAMP, candidate_label
from hotspots.tables import fmt
from hotspots.tests.hotspot_fixtures import client_for
from hotspots.tests.test_runs import (  # noqa: F401 (town is a fixture)
    SRID,
    X0,
    Y0,
    add_incidents,
    district,
    town,
)
from incidents.models import Incident
from incidents.tests.factories import make_user

# --- the engine on constructed histories ------------------------------------------------------

SIDE = 20  # a 20 × 20 grid of 100 m squares: 400 cells, 5 % = 20 cells
GRID = grids.Grid("square", 100.0, SRID)
N_DAYS, HOLDOUT = 360, 90
BLOCK_A = [(i, j) for i in range(2, 7) for j in range(2, 6)]  # 20 cells, south-west
BLOCK_B = [(i, j) for i in range(13, 18) for j in range(13, 17)]  # 20 cells, north-east


def _cells():
    i, j = np.meshgrid(np.arange(SIDE), np.arange(SIDE), indexing="ij")
    return i.ravel().astype(np.int64), j.ravel().astype(np.int64)


def _points(events: list[tuple[int, int, int, int]], seed: int = 1):
    """(cell i, cell j, day, n) -> points spread inside their cells, and their days."""
    rng = np.random.default_rng(seed)
    xs, ys, days = [], [], []
    for i, j, day, n in events:
        xs.append(i * 100 + rng.uniform(5, 95, n))
        ys.append(j * 100 + rng.uniform(5, 95, n))
        days.append(np.full(n, day))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(days)


def _inputs(x, y, day, *, stop=None):
    """History of the points on the 20 × 20 grid, with the KDE of the days before ``stop``."""
    ci, cj = _cells()
    keys = grids.cell_keys(ci, cj)
    pi, pj = GRID.index(x, y)
    cell = np.searchsorted(keys, grids.cell_keys(pi, pj))
    history = engine.History(cell, day.astype(np.int64), np.ones(len(x)), len(keys), N_DAYS)
    weights = grids.weights_matrix(GRID, ci, cj)
    keep = day < (N_DAYS if stop is None else stop)
    kde, _bandwidth = engine.kde_at_cells(x[keep], y[keep], GRID, ci, cj)
    return engine.Inputs(history, weights, kde)


def _background(rng, rate: float):
    """Poisson(rate) incidents per cell and day everywhere."""
    counts = rng.poisson(rate, size=(SIDE, SIDE, N_DAYS))
    return [
        (int(i), int(j), int(d), int(counts[i, j, d]))
        for i, j, d in zip(*np.nonzero(counts), strict=True)
    ]


def _rows(test):
    return {r.candidate.key: r for r in test.rows}


def test_a_shifting_hotspot_is_forecast_by_time_decayed_counts():
    """Block A is busy for the first 200 days, block B from day 200 on: over the fit days
    A has more incidents than B, but only B is busy in the held-out days."""
    rng = np.random.default_rng(3)
    events = _background(rng, 0.003)
    for day in range(N_DAYS):
        for i, j in BLOCK_A if day < 200 else BLOCK_B:
            events.append((i, j, day, 1))
    x, y, day = _points(events)
    fit = N_DAYS - HOLDOUT
    test = engine.backtest(_inputs(x, y, day, stop=fit), holdout_days=HOLDOUT, coverage=0.05)
    rows = _rows(test)
    # Half-lives of 14 and 30 days put B first (its 20 cells are the whole 5 %) and tie:
    # the longer one, closer to the plain count, is chosen. The period count, a 90-day
    # half-life (A's 200 days still weigh more), Gi* and KDE point at A.
    assert test.chosen.key == "decay_30"
    in_b = len(BLOCK_B) * HOLDOUT
    for key in ("decay_30", "decay_14"):
        assert rows[key].score.hits >= in_b, key
        assert rows[key].score.pei == pytest.approx(1.0)
    for key in ("count", "decay_90", "gistar", "kde"):
        assert rows[key].score.hits < in_b / 4, key
    assert rows["decay_30"].score.pai > 10 * rows["count"].score.pai
    assert test.fit_days == fit and test.holdout_days == HOLDOUT


def test_a_stable_hotspot_is_forecast_by_the_period_count():
    """Block A is busy every day. Some other cells have a short burst in the last fit days
    that does not last: short half-lives chase it; the longest half-life ranks the cells
    like the count, and the tie goes to the simpler count."""
    rng = np.random.default_rng(5)
    events = _background(rng, 0.003)
    for day in range(N_DAYS):
        for i, j in BLOCK_A:
            events.append((i, j, day, 1))
    burst = [(i, j) for i in range(10, 20) for j in (0, 1)]  # 20 cells
    fit = N_DAYS - HOLDOUT
    for i, j in burst:
        for d in range(fit - 5, fit):
            events.append((i, j, d, 10))
    x, y, day = _points(events)
    test = engine.backtest(_inputs(x, y, day, stop=fit), holdout_days=HOLDOUT, coverage=0.05)
    rows = _rows(test)
    assert test.chosen.key == "count"
    assert rows["count"].score.pei == pytest.approx(1.0)
    assert rows["decay_90"].score.hits == rows["count"].score.hits  # a tie, lost
    assert rows["decay_14"].score.hits < rows["count"].score.hits / 2
    assert [r.candidate.key for r in test.rows] == [
        "count",
        "decay_90",
        "decay_30",
        "decay_14",
        "gistar",
        "kde",
    ]


def test_the_back_test_scores_are_the_validation_engine_s():
    rng = np.random.default_rng(9)
    events = _background(rng, 0.02)
    x, y, day = _points(events)
    inputs = _inputs(x, y, day, stop=N_DAYS - HOLDOUT)
    test = engine.backtest(inputs, holdout_days=HOLDOUT, coverage=0.1, half_lives=(30,))
    observed = inputs.history.counts(N_DAYS - HOLDOUT)
    fit_counts = inputs.history.counts(0, N_DAYS - HOLDOUT)
    for row in test.rows:
        tiebreak = engine.tiebreak_for(row.candidate, fit_counts)
        values = engine.candidate_scores(row.candidate, inputs, N_DAYS - HOLDOUT)
        (expected,) = evaluate_scores(values, observed, coverages=(0.1,), tiebreak=tiebreak)
        assert row.score.hits == expected.hits and row.score.pai == expected.pai
        assert row.score.n_cells == 40
    best = max(r.score.hits for r in test.rows)
    first_best = next(r for r in test.rows if r.score.hits == best)
    assert test.chosen == first_best.candidate


def test_decayed_counts_halve_every_half_life():
    history = engine.History(
        cell=np.array([0, 0, 1]), day=np.array([9, 0, 4]), n=np.array([2.0, 4.0, 1.0]),
        n_cells=2, n_days=10,
    )  # fmt: skip
    decayed = history.decayed(9.0)
    assert decayed[0] == pytest.approx(2 + 4 * 0.5)
    assert decayed[1] == pytest.approx(2 ** (-5 / 9))
    assert history.decayed(9.0, stop=5)[1] == pytest.approx(1.0)
    assert list(history.counts(0, 5)) == [4.0, 1.0]


def test_kernel_density_at_cell_centres():
    rng = np.random.default_rng(2)
    x, y = rng.normal(1000, 150, 300), rng.normal(1000, 150, 300)
    square = grids.Grid("square", 50.0, SRID)
    i, j = np.meshgrid(np.arange(10, 30), np.arange(12, 28), indexing="ij")
    i, j = i.ravel(), j.ravel()
    density, bandwidth = engine.kde_at_cells(x, y, square, i, j)
    surface = kde_grid(x, y, bandwidth=bandwidth, cell_size=50.0, bounds=(500, 600, 1500, 1400))
    assert np.allclose(density, surface.density[j - 12, i - 10])
    # hexagons: the exact kernel sum at each centre, within a few per cent of the peak
    hexes = grids.Grid("hex", 40.0, SRID)
    hi, hj = np.meshgrid(np.arange(12, 22), np.arange(10, 20), indexing="ij")
    hi, hj = hi.ravel(), hj.ravel()
    sampled, h = engine.kde_at_cells(x, y, hexes, hi, hj)
    cx, cy = hexes.centres(hi, hj)
    d2 = (cx[:, None] - x[None, :]) ** 2 + (cy[:, None] - y[None, :]) ** 2
    exact = (3 / (np.pi * h * h) * np.clip(1 - d2 / (h * h), 0, None) ** 2).sum(axis=1) * 1e6
    assert np.abs(sampled - exact).max() < 0.05 * exact.max()


def test_the_held_out_days():
    assert engine.holdout_days_for(360, 0.25) == 90
    assert engine.holdout_days_for(2, 0.25) == 1
    assert engine.holdout_days_for(3, 0.5) == 2


# --- the run end to end (PostGIS) -------------------------------------------------------------

OLD_SPOT, NEW_SPOT = (900.0, 1100.0), (3000.0, 2900.0)
FORECAST_PARAMS = {"grid": "square", "cell_size_m": 200, "coverage": 0.05}


def shifting_town(region, *, seed: int = 4):
    """2024 in D1 (4 × 4 km): background every fortnight, an old hot spot January–July,
    a new one from August on; January–February 2025: the new one only."""
    d1 = district(region, "D1")
    rng = np.random.default_rng(seed)
    day = dt.date(2024, 1, 3)
    while day <= dt.date(2025, 2, 28):
        when = dt.datetime(day.year, day.month, day.day, 17, 0, tzinfo=dt.UTC)
        add_incidents(
            region, X0 + rng.uniform(1, 3999, 12), Y0 + rng.uniform(1, 3999, 12),
            district=d1, when=when,
        )  # fmt: skip
        cx, cy = OLD_SPOT if day < dt.date(2024, 8, 1) else NEW_SPOT
        add_incidents(
            region, X0 + cx + rng.normal(0, 120, 14), Y0 + cy + rng.normal(0, 120, 14),
            category="robbery-person", district=d1, when=when,
        )  # fmt: skip
        day += dt.timedelta(days=14)
    return d1


def forecast_run(region, d1, **params):
    run = runs.create_run(
        region=region,
        districts=[d1],
        date_from=dt.date(2024, 1, 1),
        date_to=dt.date(2024, 12, 31),
        method="forecast",
        params={**FORECAST_PARAMS, **params},
    )
    return runs.execute_run(run=run)


def _cell_of(run, x, y):
    size = run.params["cell_size_m"]
    return HotspotCell.objects.get(run=run, i=int((X0 + x) // size), j=int((Y0 + y) // size))


@pytest.mark.django_db
def test_a_forecast_run_backtests_chooses_and_draws_the_new_hot_spot(town):
    d1 = shifting_town(town)
    run = forecast_run(town, d1)
    assert run.status == HotspotRun.Status.SUCCEEDED, run.message
    s = run.summary
    backtest = s["backtest"]
    assert backtest["fit_to"] == "2024-09-30" and backtest["test_from"] == "2024-10-01"
    assert backtest["test_to"] == "2024-12-31" and backtest["coverage"] == 0.05
    rows = {r["key"]: r for r in backtest["rows"]}
    assert list(rows) == ["count", "decay_90", "decay_30", "decay_14", "gistar", "kde"]
    assert s["chosen"] == backtest["chosen"] and rows[s["chosen"]]["chosen"]
    assert sum(r["chosen"] for r in rows.values()) == 1
    # the old spot still has more incidents over the fit days: the count loses to decay
    assert rows[s["chosen"]]["kind"] == "decay"
    assert rows[s["chosen"]]["pai"] > rows["count"]["pai"]
    assert rows[s["chosen"]]["pai"] == max(r["pai"] for r in rows.values())
    for row in rows.values():
        assert 0 <= row["hit_rate"] <= 1 and row["n_cells"] == rows["count"]["n_cells"]
        assert row["total"] == backtest["test_incidents"]
    assert backtest["fit_incidents"] + backtest["test_incidents"] == s["incidents"]
    assert s["incidents"] == Incident.objects.filter(occurred_at__year=2024).count()
    # 5 % of the 400 cells of D1 flagged; the new spot is in a zone, the old one is not
    assert s["flagged_cells"] == 20 and s["flagged_share"] == pytest.approx(0.05, abs=0.003)
    new, old = _cell_of(run, *NEW_SPOT), _cell_of(run, *OLD_SPOT)
    assert new.zone is not None and new.score > old.score and new.count < old.count
    assert run.zones.count() == s["zones"] >= 1
    assert sum(z.cell_count for z in run.zones.all()) == s["flagged_cells"]
    assert not HotspotCell.objects.filter(run=run, score__isnull=True).exists()
    assert "forecast by Time-decayed count, half-life" in run.message

    # Repeatable; and validating on a later period works like any run's
    again = forecast_run(town, d1)
    assert again.summary == run.summary
    report = validate_run(
        run=run, eval_from=dt.date(2025, 1, 1), eval_to=dt.date(2025, 2, 28)
    ).report
    methods = {r["method"] for r in report["rows"]}
    assert {"zones", "top_cells", "naive_period"} <= methods
    top5 = next(r for r in report["rows"] if r["method"] == "top_cells" and r["coverage"] == 0.05)
    naive5 = next(
        r for r in report["rows"] if r["method"] == "naive_period" and r["coverage"] == 0.05
    )
    assert top5["pai"] > naive5["pai"]


def _geojson(response) -> dict:
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == "application/geo+json"
    return json.loads(b"".join(response.streaming_content))


@pytest.mark.django_db
def test_the_forecast_layer_is_the_flagged_cells_by_score_geojson_and_tiles(
    town, django_user_model
):
    from hotspots import selectors
    from hotspots.tests.test_layers import features, tile_of
    from hotspots.tests.test_runs import lonlat

    run = forecast_run(town, shifting_town(town))
    assert run.status == HotspotRun.Status.SUCCEEDED, run.message
    flagged = {(c.i, c.j): c for c in run.cells.filter(zone__isnull=False).select_related("zone")}
    assert len(flagged) == run.summary["flagged_cells"] == 20
    assert run.cells.filter(zone__isnull=True).count() == run.cells.count() - 20 > 0
    assert not run.cells.filter(gi_bin__isnull=False).exists()  # why the Gi* layer is empty

    # The selector: the flagged cells only, highest score first.
    chosen = selectors.cell_queryset(run, selectors.CellFilter(layer="forecast"))
    assert {(c.i, c.j) for c in chosen} == set(flagged)
    scores = [c.score for c in chosen]
    assert scores == sorted(scores, reverse=True)
    assert min(scores) >= run.cells.filter(zone__isnull=True).order_by("-score")[0].score

    client = client_for(django_user_model, "planner")
    url = reverse("hotspot-run-forecast", args=[run.pk])
    data = _geojson(client.get(url, HTTP_ACCEPT_LANGUAGE="en"))
    assert data["method"] == "forecast" and data["layer"] == "forecast"
    by_ij = {
        (f["properties"]["i"], f["properties"]["j"]): f["properties"] for f in data["features"]
    }
    assert set(by_ij) == set(flagged)
    for ij, props in by_ij.items():
        cell = flagged[ij]
        assert props["count"] == cell.count
        assert props["score"] == pytest.approx(cell.score)
        assert props["zone"] == cell.zone.rank
    assert data["min_score"] == pytest.approx(min(c.score for c in flagged.values()))
    assert data["max_score"] == pytest.approx(max(c.score for c in flagged.values()))
    # Which ranking the scores are of: the back-test's choice, in the reader's language.
    assert data["chosen"] == run.summary["chosen"]
    assert data["chosen_label"] == run.summary["chosen_label"].capitalize()
    row = next(r for r in run.summary["backtest"]["rows"] if r["key"] == data["chosen"])
    spanish = _geojson(client.get(url, HTTP_ACCEPT_LANGUAGE="es"))
    assert spanish["chosen_label"] == (
        f"Conteo con decaimiento temporal, vida media de {row['half_life_days']:g} días"
    )
    # The Gi* layer of a forecast run stays empty, the detail links the forecast layer.
    assert _geojson(client.get(reverse("hotspot-run-cells", args=[run.pk])))["numberReturned"] == 0
    detail = client.get(reverse("hotspot-run-detail", args=[run.pk])).json()
    assert detail["layers"]["forecast"].endswith(f"/api/v1/hotspot-runs/{run.pk}/forecast/")

    # Vector tiles of a forecast run: the flagged cells in the tile, with score and zone,
    # and none of the unflagged cells around them.
    lon, lat = lonlat(X0 + NEW_SPOT[0], Y0 + NEW_SPOT[1])
    x, y = tile_of(lon, lat, 14)
    response = client.get(reverse("hotspot-cell-tile", args=[run.pk, 14, x, y]))
    assert response.status_code == 200
    cells = {
        (c["properties"]["i"], c["properties"]["j"]): c["properties"]
        for c in features(response.content, "cells")
    }
    in_tile = {
        (c.i, c.j) for c in run.cells.all() if tile_of(*c.geom.centroid.coords, 14) == (x, y)
    }
    assert in_tile - set(flagged), "the tile needs unflagged cells to leave out"
    # (A tile also holds the cells across its edge.)
    assert set(in_tile) & set(flagged) <= set(cells) <= set(flagged)
    assert in_tile & set(flagged)
    for ij, props in cells.items():
        assert props["score"] == pytest.approx(flagged[ij].score)
        assert props["zone"] == flagged[ij].zone.rank


@pytest.mark.django_db
def test_a_forecast_with_nothing_in_the_held_out_days_is_refused(town):
    d1 = district(town, "D1")
    rng = np.random.default_rng(1)
    add_incidents(
        town, X0 + rng.uniform(1, 3999, 80), Y0 + rng.uniform(1, 3999, 80), district=d1,
        when=dt.datetime(2024, 3, 10, 12, tzinfo=dt.UTC),
    )  # fmt: skip
    run = runs.create_run(
        region=town, districts=[d1], date_from=dt.date(2024, 1, 1),
        date_to=dt.date(2024, 12, 31), method="forecast", params=FORECAST_PARAMS,
    )  # fmt: skip
    with pytest.raises(Exception, match="no incidents in the last 92 day"):
        runs.execute_run(run=run)
    run.refresh_from_db()
    assert run.status == HotspotRun.Status.FAILED
    assert not HotspotCell.objects.filter(run=run).exists()


# --- API, command, planner form, run page and report -------------------------------------------


def _api_post(client, region, **body):
    payload = {
        "region": region.code,
        "districts": ["D1"],
        "date_from": "2024-01-01",
        "date_to": "2024-12-31",
        "method": "forecast",
        **body,
    }
    return client.post(reverse("hotspot-run-list"), payload, format="json")


@pytest.mark.django_db
def test_the_api_runs_a_forecast_with_its_coverage_and_refuses_a_bad_one(town, django_user_model):
    shifting_town(town)
    client = client_for(django_user_model, "planner")
    before = HotspotRun.objects.count()
    for bad in (0, 0.9, "five", True):
        response = _api_post(client, town, params={**FORECAST_PARAMS, "coverage": bad})
        assert response.status_code == 400, (bad, response.content)
        assert any("coverage" in m for m in response.json()["non_field_errors"])
    assert HotspotRun.objects.count() == before
    response = _api_post(client, town, params={**FORECAST_PARAMS, "coverage": 0.1})
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "succeeded" and body["method"] == "forecast"
    assert body["params"]["coverage"] == 0.1 and body["params"]["holdout"] == 0.25
    assert body["summary"]["backtest"]["coverage"] == 0.1
    assert body["summary"]["flagged_cells"] == 40


@pytest.mark.django_db
def test_the_command_runs_a_forecast_and_refuses_bad_options(town):
    shifting_town(town)
    out = io.StringIO()
    call_command(
        "run_hotspots", "--region", town.code, "--district", "D1", "--from", "2024-01-01",
        "--to", "2024-12-31", "--method", "forecast", "--grid", "square", "--cell-size", "200",
        "--coverage", "0.05", "--half-lives", "30,14", "--validate-from", "2025-01-01",
        "--validate-to", "2025-02-28", stdout=out,
    )  # fmt: skip
    text = out.getvalue()
    run = HotspotRun.objects.get()
    assert run.params["half_lives_days"] == [14, 30]
    assert "back-test: fitted 2024-01-01 to 2024-09-30" in text
    assert f"{run.summary['chosen']}" in text and "<- chosen" in text
    assert "decay_90" not in text and "validation against 2025-01-01" in text
    with pytest.raises(CommandError, match="coverage must be a share"):
        call_command(
            "run_hotspots", "--region", town.code, "--from", "2024-01-01", "--to",
            "2024-12-31", "--method", "forecast", "--coverage", "5", stdout=io.StringIO(),
        )  # fmt: skip
    with pytest.raises(CommandError, match="--coverage does not apply to --method gistar"):
        call_command(
            "run_hotspots", "--region", town.code, "--from", "2024-01-01", "--to",
            "2024-12-31", "--coverage", "0.05", stdout=io.StringIO(),
        )  # fmt: skip
    with pytest.raises(CommandError, match="not a list of days"):
        call_command(
            "run_hotspots", "--region", town.code, "--from", "2024-01-01", "--to",
            "2024-12-31", "--method", "forecast", "--half-lives", "a,b", stdout=io.StringIO(),
        )  # fmt: skip


@pytest.mark.django_db
def test_the_planner_form_offers_the_forecast_and_its_coverage(client, django_user_model):
    client.force_login(make_user(django_user_model, "planner", username="planner-form"))
    html = client.get(reverse("planner-map")).content.decode()
    assert '<option value="forecast">' in html
    assert 'data-param="coverage"' in html and 'name="coverage"' in html
    config = json.loads(html.split('id="planner-config" type="application/json">')[1].split("<")[0])
    assert {"coverage", "holdout", "half_lives_days", "grid"} <= set(
        config["hotspots"]["params"]["forecast"]
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "lang, title, chosen, period",
    [
        ("en", "Back-test of the candidate forecasts", "chosen", "Period count"),
        (
            "es",
            "Prueba retrospectiva de los pronósticos candidatos",
            "elegido",
            "Conteo del periodo",
        ),
    ],
)
def test_the_run_page_and_report_show_the_back_test(
    town, django_user_model, lang, title, chosen, period
):
    run = forecast_run(town, shifting_town(town))
    client = Client(HTTP_ACCEPT_LANGUAGE=lang)
    client.force_login(make_user(django_user_model, "planner", username=f"planner-{lang}"))
    html = client.get(reverse("hotspots:run-detail", args=[run.pk])).content.decode()
    table = html.split('id="backtest-table"', 1)[1].split("</table>", 1)[0]
    assert title in html
    assert table.count("<tr>") == 1 + 6  # the header and the six candidates
    assert table.count(f"<td>{chosen}</td>") == 1 and period in table
    chosen_row = next(r for r in table.split("<tr>") if f"<td>{chosen}</td>" in r)
    pai = next(r for r in run.summary["backtest"]["rows"] if r["chosen"])["pai"]
    decimal = "," if lang == "es" else "."
    assert f'<td class="num">{pai:.2f}</td>'.replace(".", decimal) in chosen_row
    with translation.override(lang):
        report = render_report(run)
    assert title in report and period in report and '"backtest"' not in report


def test_the_report_draws_the_flagged_cells_on_the_score_ramp(town):
    run = forecast_run(town, shifting_town(town))
    flagged = list(cell_queryset(run, CellFilter(layer="forecast")).values_list("score", flat=True))
    assert flagged
    with translation.override("es"):
        report = render_report(run)
        ranking = candidate_label(run.summary)
    decoder = json.JSONDecoder()
    collections = [
        decoder.raw_decode(report, m.start())[0] for m in re.finditer(r'\{"features": \[', report)
    ]
    drawn = [f for c in collections for f in c["features"] if "ranking" in f.get("properties", {})]
    assert len(drawn) == len(flagged)
    assert {f["properties"]["ranking"] for f in drawn} == {ranking}
    colours = {f["properties"]["colour"] for f in drawn}
    assert colours <= set(SCORE_RAMP) and SCORE_RAMP[-1] in colours
    # The highest score gets the darkest colour, and the legend gives the ranges in Spanish.
    top = max(drawn, key=lambda f: float(f["properties"]["score"].replace(",", ".")))
    assert top["properties"]["colour"] == SCORE_RAMP[-1]
    # (the legend's HTML is written into the script as JSON)
    assert json.dumps("<strong>Pronóstico: celdas marcadas, por puntaje</strong>")[1:-1] in (
        report.replace("\\u003c", "<").replace("\\u003e", ">")
    )
    assert fmt(float(max(flagged)), 3) in report
