# ruff: noqa: F811 (the town fixture is imported from test_runs)
"""The automatic cell size of emerging runs (issue 12, item 8): large enough cells for a
trend over many steps, the cube capped, the reason recorded and translated.

The engine part works on constructed incidents whose occupied cells are counted here
independently (squares: a set of floor(x / s), floor(y / s) pairs); the run part on the
seeded town of test_runs, against PostGIS."""

from __future__ import annotations

import datetime as dt
import io
import math

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import translation

from hotspots.engine import MIN_CELLS, HotspotRefused, step_size
from hotspots.engine import grid as grids
from hotspots.models import HotspotCell, HotspotRun
from hotspots.services import runs
from hotspots.services.params import requested_params
from hotspots.tables import parameter_table
from hotspots.tests.hotspot_fixtures import client_for
from hotspots.tests.test_methods import emerging_town
from hotspots.tests.test_runs import PERIOD, run_for, town  # noqa: F401 (town is a fixture)

# Places on a 100 m lattice over 4 × 4 km, three incidents at each.
LATTICE = 40
SPACING = 100.0
EXTENT = (LATTICE * SPACING, LATTICE * SPACING)


def lattice(per_place: int = 3) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.meshgrid(np.arange(LATTICE), np.arange(LATTICE), indexing="ij")
    x = np.repeat(SPACING / 2 + SPACING * a.ravel(), per_place)
    y = np.repeat(SPACING / 2 + SPACING * b.ravel(), per_place)
    return x, y


def squares_occupied(x, y, size: float) -> int:
    return len({(math.floor(p / size), math.floor(q / size)) for p, q in zip(x, y, strict=True)})


def choose(x, y, steps, *, base=100.0, max_bins=10**9, min_per_step=1.0):
    return step_size.size_for_steps(
        x,
        y,
        kind="square",
        base_size=base,
        steps=steps,
        step="month",
        extent_m=EXTENT,
        max_bins=max_bins,
        min_per_step=min_per_step,
    )


def test_more_steps_choose_larger_cells_for_the_same_incidents():
    x, y = lattice()
    short, long = choose(x, y, 12), choose(x, y, 24)
    assert long.size > short.size > 100.0
    for chosen, steps in ((short, 12), (long, 24)):
        assert chosen.rule["limit"] == step_size.TREND
        occupied = squares_occupied(x, y, chosen.size)
        assert chosen.rule["occupied_cells"] == occupied
        # Enough per step at the chosen size...
        assert len(x) / (steps * occupied) >= 1.0
        # ... and not at the candidate just below it (the chosen one is the smallest).
        below = round(chosen.size / step_size.GROWTH)
        assert len(x) / (steps * squares_occupied(x, y, below)) < 1.0


def test_the_base_size_stays_when_it_already_has_enough_per_step():
    x, y = lattice(per_place=30)  # 30 incidents per 100 m square: 2.5 a month over 12
    chosen = choose(x, y, 12)
    assert chosen.size == 100.0 and chosen.rule["limit"] == step_size.BASE
    assert chosen.rule["mean_per_step"] == pytest.approx(2.5)


def test_the_reason_says_how_many_steps_and_how_many_incidents_per_step():
    x, y = lattice()
    chosen = choose(x, y, 24)
    rule = chosen.rule
    assert rule["steps"] == 24 and rule["incidents"] == len(x)
    assert rule["mean_per_step"] == pytest.approx(
        len(x) / (24 * squares_occupied(x, y, chosen.size)), rel=5e-3
    )
    assert chosen.reason.startswith(
        f"24 monthly steps; at {chosen.size:g} m each occupied cell "
        f"({rule['occupied_cells']:,}) has on average {rule['mean_per_step']:.3g} "
        "incidents per step (target at least 1; "
    )
    assert "Optimized Hot Spot Analysis size, 100 m" in chosen.reason


def test_the_cube_cap_enlarges_the_cells_to_the_smallest_size_within_it():
    x, y = lattice(per_place=30)
    cap = 200 * 12  # the base size would give (4000 + 200)² / 100² = 1,764 cells
    chosen = choose(x, y, 12, max_bins=cap)
    assert chosen.rule["limit"] == step_size.MEMORY
    assert step_size.estimated_cells("square", chosen.size, EXTENT) * 12 <= cap
    assert step_size.estimated_cells("square", chosen.size - 1, EXTENT) * 12 > cap
    assert "cells × steps stay within 2,400" in chosen.reason


def test_too_few_incidents_stop_at_the_fewest_cells_and_say_so():
    x, y = lattice(per_place=1)  # 1,600 incidents over 120 steps: ~13 per step in all
    chosen = choose(x, y, 120)
    assert chosen.rule["limit"] == step_size.FEWEST_CELLS and chosen.rule["mean_per_step"] < 1
    assert step_size.estimated_cells("square", chosen.size, EXTENT) >= step_size.MIN_TREND_CELLS
    larger = max(chosen.size + 1, round(chosen.size * step_size.GROWTH))
    assert step_size.estimated_cells("square", larger, EXTENT) < step_size.MIN_TREND_CELLS
    assert "not reached" in chosen.reason


def test_a_cap_no_grid_of_enough_cells_fits_is_refused():
    x, y = lattice()
    with pytest.raises(HotspotRefused, match="too many for this area"):
        choose(x, y, 120, max_bins=(MIN_CELLS - 1) * 120)


def test_hexagons_are_sized_the_same_way():
    rng = np.random.default_rng(5)
    x, y = rng.uniform(0, 4000, 5000), rng.uniform(0, 4000, 5000)
    base, _reason = grids.choose_cell_size(x, y, "hex")
    chosen = step_size.size_for_steps(
        x, y, kind="hex", base_size=base, steps=24, step="week", extent_m=(4000, 4000),
        max_bins=10**9,
    )  # fmt: skip
    i, j = grids.Grid("hex", chosen.size, 32718).index(x, y)
    occupied = len(set(zip(i.tolist(), j.tolist(), strict=True)))
    assert chosen.rule["occupied_cells"] == occupied and 5000 / (24 * occupied) >= 1
    assert chosen.size > base and chosen.reason.startswith("24 weekly steps")


# --- runs -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_weekly_run_chooses_larger_cells_than_a_monthly_one_and_records_why(town):
    emerging_town(town)  # every incident in D1, the west half of the town
    monthly = run_for(town, method="emerging")
    weekly = run_for(town, method="emerging", params={"step": "week"})
    for run in (monthly, weekly):
        assert run.status == HotspotRun.Status.SUCCEEDED, run.message
    m, w = monthly.params, weekly.params
    assert w["cell_size_m"] > m["cell_size_m"], (m["cell_size_rule"], w["cell_size_rule"])
    assert m["cell_size_rule"]["steps"] == 12 and w["cell_size_rule"]["steps"] == 52
    assert m["cell_size_reason"].startswith(f"12 monthly steps; at {m['cell_size_m']:g} m")
    assert "Starting size: Optimized Hot Spot Analysis fishnet rule" in m["cell_size_reason"]
    # The stored mean is what the stored cells hold.
    cells = HotspotCell.objects.filter(run=monthly)
    occupied = cells.filter(count__gt=0).count()
    assert m["cell_size_rule"]["occupied_cells"] == occupied
    # Asking again for what was asked (the automatic size) gives the same run parameters.
    assert requested_params(m, "emerging")["cell_size_m"] is None
    assert "cell_size_rule" not in requested_params(m, "emerging")

    with translation.override("es"):
        rows = dict(map(tuple, parameter_table(monthly).rows))
    reason = rows["Por qué este tamaño de celda"]
    assert reason.startswith(
        f"12 pasos mensuales; con celdas de {m['cell_size_m']:g} m cada celda ocupada"
    )
    assert "cell_size_rule" not in rows


@pytest.mark.django_db
def test_an_explicit_cell_size_over_the_cap_is_refused_before_the_cube(town, settings):
    d1 = emerging_town(town)
    settings.HOTSPOT_EMERGING_MAX_BINS = 1800  # 200 m squares over 4 × 4 km: 400 × 12
    request = dict(
        region=town,
        districts=[d1],
        **PERIOD,
        method="emerging",
        params={"grid": "square", "cell_size_m": 200},
    )
    # Refused when asked: the area alone holds more cells than the cap allows.
    with pytest.raises(HotspotRefused, match="more than this server allows") as refused:
        runs.create_run(**request)
    assert "HOTSPOT_EMERGING_MAX_BINS" in str(refused.value)
    assert not HotspotRun.objects.exists()
    # The size it suggests fits.
    suggested = float(str(refused.value).split("choose cells of about ")[1].split(" m")[0])
    assert (4000 / suggested) ** 2 * 12 <= 1800 * 1.05

    # A run that fitted when asked but not when it runs (the cap was lowered meanwhile)
    # is refused before its cube is built, and fails with the reason.
    settings.HOTSPOT_EMERGING_MAX_BINS = 10**6
    run = runs.create_run(**request)
    settings.HOTSPOT_EMERGING_MAX_BINS = 1800
    with pytest.raises(HotspotRefused, match="more than this server allows"):
        runs.execute_run(run=run)
    run.refresh_from_db()
    assert run.status == HotspotRun.Status.FAILED
    assert "HOTSPOT_EMERGING_MAX_BINS" in run.message
    assert not HotspotCell.objects.filter(run=run).exists()

    # Left automatic, the size is chosen within the cap.
    auto = run_for(town, districts=[d1], method="emerging", params={"grid": "square"})
    assert auto.status == HotspotRun.Status.SUCCEEDED, auto.message
    assert auto.params["cell_size_rule"]["limit"] == step_size.MEMORY
    assert HotspotCell.objects.filter(run=auto).count() * 12 <= 1800
    assert dt.date.fromisoformat(auto.params["steps"][-1]) == dt.date(2024, 12, 1)


@pytest.mark.django_db
def test_the_command_prints_the_reason_and_refuses_a_size_over_the_cap(town, settings):
    emerging_town(town)
    base = ["--region", "hotville", "--from", "2024-01-01", "--to", "2024-12-31"]
    out = io.StringIO()
    call_command("run_hotspots", *base, "--method", "emerging", stdout=out)
    assert "(automatic: 12 monthly steps; at " in out.getvalue()

    settings.HOTSPOT_EMERGING_MAX_BINS = 1800
    with pytest.raises(CommandError, match="refused: .* more than this server allows"):
        call_command(
            "run_hotspots", *base, "--method", "emerging", "--cell-size", "100",
            stdout=io.StringIO(),
        )  # fmt: skip


@pytest.mark.django_db
def test_the_api_answers_400_to_a_cell_size_over_the_cap(town, settings, django_user_model):
    d1 = emerging_town(town)
    settings.HOTSPOT_EMERGING_MAX_BINS = 1800
    client = client_for(django_user_model, "planner")
    body = {
        "region": town.code,
        "districts": [d1.code],
        "date_from": "2024-01-01",
        "date_to": "2024-12-31",
        "method": "emerging",
        "params": {"grid": "square", "cell_size_m": 100},
    }
    response = client.post(reverse("hotspot-run-list"), body, format="json")
    assert response.status_code == 400, response.content
    (message,) = response.json()["non_field_errors"]
    assert "more than this server allows" in message and "choose cells of about" in message
    assert not HotspotRun.objects.exists()

    fits = client.post(
        reverse("hotspot-run-list"), {**body, "params": {"grid": "square"}}, format="json"
    )
    assert fits.status_code in (200, 202), fits.content
