"""Runs for the API, layer, report and page tests: a small town in UTM 18S metres with
seeded background incidents and two planted clusters, analysed by the real service
(grid + Gi*), plus helpers to write emerging/KDE cells and validations directly.

Import the fixtures by name into a test module (``from hotspots.tests.hotspot_fixtures
import gistar_run, ...``).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from rest_framework.test import APIClient

from hotspots.models import HotspotCell, HotspotRun, HotspotValidation
from hotspots.services import runs
from hotspots.tests.test_runs import add_incidents as add_metric_incidents
from hotspots.tests.test_runs import lonlat  # noqa: F401 - used by the tests that import it
from hotspots.tests.test_runs import metric_box as runs_metric_box
from incidents.tests.factories import make_user

SRID = 32718
X0, Y0 = 280_000.0, 8_666_000.0
SIDE = 3000.0
CELL = 200.0
WHEN = dt.datetime(2024, 3, 10, 15, 0, tzinfo=dt.UTC)
PERIOD = {"date_from": dt.date(2024, 1, 1), "date_to": dt.date(2024, 6, 30)}
# (centre x, centre y, points, category), metres from the south-west corner.
CLUSTERS = [(800.0, 900.0, 150, "robbery-person"), (2200.0, 2100.0, 110, "burglary")]


def metric_box(x0, y0, x1, y1, *, inset=1.0):
    return runs_metric_box(x0, y0, x1, y1, inset=inset)


def add_incidents(region, district, xs, ys, *, category="theft-person", when=WHEN):
    add_metric_incidents(region, xs, ys, category=category, district=district, when=when)


@pytest.fixture
def town(make_region):
    """One 3 × 3 km district, T1, with 500 background incidents and two clusters."""
    region = make_region("apitown", {"T1": ("Centro", metric_box(X0, Y0, X0 + SIDE, Y0 + SIDE))})
    district = region.district_set.get(code="T1")
    rng = np.random.default_rng(7)
    add_incidents(
        region, district, X0 + rng.uniform(5, SIDE - 5, 500), Y0 + rng.uniform(5, SIDE - 5, 500)
    )
    for cx, cy, n, category in CLUSTERS:
        add_incidents(
            region,
            district,
            X0 + cx + rng.normal(0, 80, n),
            Y0 + cy + rng.normal(0, 80, n),
            category=category,
        )
    return region


def cluster_lonlat(index: int) -> tuple[float, float]:
    cx, cy, _n, _c = CLUSTERS[index]
    return lonlat(X0 + cx, Y0 + cy)


@pytest.fixture
def gistar_run(town, django_user_model):
    """The town analysed with square 200 m cells (every other parameter by default)."""
    planner = make_user(django_user_model, "planner", username="run-owner")
    run = runs.create_run(
        user=planner,
        region=town,
        districts=[town.district_set.get(code="T1")],
        params={"grid": "square", "cell_size_m": CELL},
        **PERIOD,
    )
    run = runs.execute_run(run=run)
    assert run.status == HotspotRun.Status.SUCCEEDED, run.message
    assert run.zones.count() >= 2
    return run


def copy_run(run: HotspotRun, *, method: str, params: dict | None = None) -> HotspotRun:
    """A SUCCEEDED run of ``method`` over the same area and cells (no values yet), for
    layers the services may not compute yet."""
    copy = HotspotRun.objects.create(
        region=run.region,
        date_from=run.date_from,
        date_to=run.date_to,
        method=method,
        params={**run.params, **(params or {})},
        metric_srid=run.metric_srid,
        area_geom=run.area_geom,
        area_m2=run.area_m2,
        status=HotspotRun.Status.SUCCEEDED,
        progress=1.0,
        summary={"incidents": run.summary["incidents"], "cells": run.summary["cells"]},
    )
    HotspotCell.objects.bulk_create(
        [
            HotspotCell(run=copy, i=c.i, j=c.j, geom=c.geom, count=c.count)
            for c in run.cells.order_by("i", "j")
        ]
    )
    return copy


def add_validation(run: HotspotRun, **report) -> HotspotValidation:
    """A validation row shaped like services.validate_run's report (version 1)."""
    zones = {
        "method": "zones",
        "coverage": None,
        "area_share": 0.133,
        "n_cells": 30,
        "hits": 97.0,
        "total": 300.0,
        "hit_rate": 0.3233,
        "pai": 2.431,
        "pei": 0.593,
    }
    naive = {**zones, "method": "naive_period", "coverage": 0.05, "pai": 1.25, "pei": 0.31}
    default = {
        "version": 1,
        "evaluation": {"date_from": "2024-07-01", "date_to": "2024-09-30", "incidents": 300},
        "grid": {"kind": "square", "cell_size_m": 200.0, "cells": 225, "area_km2": 9.0},
        "metrics": {"pai": "PAI: hit rate ÷ share of the area flagged (1 = no better than chance)"},
        "methods": [
            {"key": "zones", "label": "Hot zones"},
            {"key": "naive_period", "label": "Naive: count over the run's period"},
        ],
        "columns": list(zones),
        "rows": [zones, naive],
    }
    return HotspotValidation.objects.create(
        run=run,
        eval_from=dt.date(2024, 7, 1),
        eval_to=dt.date(2024, 9, 30),
        report=report or default,
    )


def client_for(django_user_model, who: str, district=None) -> APIClient:
    """A client logged in as ``who``: anonymous, planner, superuser, municipal or program."""
    from accounts.models import StaffProfile

    client = APIClient()
    if who == "anonymous":
        return client
    if who == "superuser":
        user = make_user(django_user_model, superuser=True)
    else:
        user = make_user(django_user_model, who, username=f"{who}-client")
        if who == "municipal" and district is not None:
            StaffProfile.objects.create(user=user, district=district)
    client.force_login(user)
    return client
