"""validate_run against PostGIS: a 10 × 10 grid where hit rate, PAI and PEI are computed
by hand from where the incidents were put, refusals, and one record per period."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from hotspots.engine import HotspotRefused
from hotspots.models import HotspotCell, HotspotValidation
from hotspots.services.runs import create_run, execute_run
from hotspots.services.validation import validate_run
from hotspots.tests.test_runs import X0, Y0, add_incidents, metric_box
from incidents.models import Incident

pytestmark = pytest.mark.django_db

TRAIN = {"date_from": dt.date(2024, 1, 1), "date_to": dt.date(2024, 12, 31)}
EVAL = {"eval_from": dt.date(2025, 1, 1), "eval_to": dt.date(2025, 3, 31)}
LATER = dt.datetime(2025, 2, 10, 12, 0, tzinfo=dt.UTC)
SIZE = 100.0
CENTRE = (4, 5)  # (column, row) of the block's centre cell, counted from the corner


def put(region, column: int, row: int, n: int, **kwargs):
    """``n`` incidents spread inside cell (column, row) of the 100 m grid."""
    offsets = np.linspace(20, 80, n) if n > 1 else np.array([50.0])
    add_incidents(
        region,
        X0 + column * SIZE + offsets,
        # later incidents on the other diagonal: never on a line through earlier ones
        Y0 + row * SIZE + (offsets if "when" in kwargs else offsets[::-1]),
        **kwargs,
    )


@pytest.fixture
def square_town(make_region):
    """1 km × 1 km on 100 m grid lines (inset 1 m): exactly 100 square cells. 2024: a
    3 × 3 block of 20 incidents per cell around a centre of 30; 2025: 12 incidents in
    the centre and 4 + 4 in two far cells of the north-east corner, 20 in all."""
    region = make_region(
        "paiville", {"P": ("Cuadrado", metric_box(X0, Y0, X0 + 1000, Y0 + 1000, inset=1))}
    )
    cx, cy = CENTRE
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            put(region, cx + dx, cy + dy, 30 if (dx, dy) == (0, 0) else 20)
    put(region, cx, cy, 12, when=LATER)
    put(region, 9, 9, 4, when=LATER)
    put(region, 8, 9, 4, when=LATER)
    return region


def rows_of(report, method):
    return [r for r in report["rows"] if r["method"] == method]


def test_pai_pei_and_hit_rate_match_a_hand_computed_case(square_town):
    run = execute_run(
        run=create_run(region=square_town, **TRAIN, params={"grid": "square", "cell_size_m": SIZE})
    )
    assert run.summary["cells"] == 100
    validation = validate_run(run=run, **EVAL)
    report = validation.report
    assert report["evaluation"]["incidents"] == 20
    assert report["run"]["incidents"] == 30 + 8 * 20
    assert report["grid"] == {
        "kind": "square",
        "cell_size_m": SIZE,
        "cell_area_m2": 10_000.0,
        "cells": 100,
        "area_km2": 1.0,
        "source": "the run's grid",
    }
    assert report["coverages"] == [0.01, 0.05, 0.1]
    assert [m["key"] for m in report["methods"]] == [
        "zones",
        "top_cells",
        "naive_period",
        "naive_last_month",
    ]

    # Zones: whatever cells Gi* flagged, the centre is one of them and the far corner
    # is not, so n = 12 of N = 20 in k of the 100 cells.
    x0, y0 = int(X0 // SIZE), int(Y0 // SIZE)
    zone_cells = {
        (i - x0, j - y0)
        for i, j in HotspotCell.objects.filter(run=run, zone__isnull=False).values_list("i", "j")
    }
    k = len(zone_cells)
    assert CENTRE in zone_cells and not zone_cells & {(9, 9), (8, 9)} and k >= 3
    (zones,) = rows_of(report, "zones")
    assert zones["coverage"] is None and zones["n_cells"] == k
    assert zones["hits"] == 12 and zones["total"] == 20
    assert zones["hit_rate"] == pytest.approx(0.6)
    assert zones["area_share"] == pytest.approx(k / 100)
    assert zones["pai"] == pytest.approx(0.6 / (k / 100))
    # the oracle's k cells hold all 20 later incidents: PAI* = 1 / (k/100), PEI = 0.6
    assert zones["pai_star"] == pytest.approx(1 / (k / 100))
    assert zones["pei"] == pytest.approx(0.6)

    # Top cells by Gi* z: the centre (1 %), then the four cells beside it (5 %), then the
    # rest of the block and the next cell (10 %): always 12 hits.
    expected = {
        0.01: (1, 0.6 / 0.01, 1.0),  # (cells, PAI, PEI): oracle 12/20 in 1 cell
        0.05: (5, 0.6 / 0.05, 0.6),  # oracle: 20/20 in 5 cells → PAI* 20
        0.10: (10, 0.6 / 0.10, 0.6),
    }
    for method in ("top_cells", "naive_period", "naive_last_month"):
        found = rows_of(report, method)
        assert [r["coverage"] for r in found] == [0.01, 0.05, 0.1]
        for row in found:
            cells, pai, pei = expected[row["coverage"]]
            assert row["n_cells"] == cells, (method, row)
            assert row["hits"] == 12 and row["hit_rate"] == pytest.approx(0.6)
            assert row["area_share"] == pytest.approx(cells / 100)
            assert row["pai"] == pytest.approx(pai) and row["pei"] == pytest.approx(pei)

    # Asking again updates the same record.
    again = validate_run(run=run, **EVAL)
    assert again.pk == validation.pk and HotspotValidation.objects.count() == 1
    other = validate_run(run=run, eval_from=dt.date(2025, 2, 1), eval_to=dt.date(2025, 2, 28))
    assert other.pk != validation.pk and other.report["evaluation"]["incidents"] == 20


def test_validation_refusals(square_town):
    run = execute_run(
        run=create_run(region=square_town, **TRAIN, params={"grid": "square", "cell_size_m": SIZE})
    )
    with pytest.raises(HotspotRefused, match="must start after the run's period ends"):
        validate_run(run=run, eval_from=dt.date(2024, 12, 1), eval_to=dt.date(2025, 1, 31))
    with pytest.raises(HotspotRefused, match="ends before it starts"):
        validate_run(run=run, eval_from=dt.date(2025, 3, 1), eval_to=dt.date(2025, 2, 1))
    with pytest.raises(HotspotRefused, match="no incidents"):
        validate_run(run=run, eval_from=dt.date(2026, 1, 1), eval_to=dt.date(2026, 3, 31))
    queued = create_run(region=square_town, **TRAIN)
    with pytest.raises(HotspotRefused, match="only a succeeded run"):
        validate_run(run=queued, **EVAL)
    assert not HotspotValidation.objects.exists()


def test_dbscan_and_kde_runs_are_validated_too(square_town):
    dbscan = execute_run(
        run=create_run(
            region=square_town, **TRAIN, method="dbscan", params={"eps_m": 30, "min_points": 10}
        )
    )
    report = validate_run(run=dbscan, **EVAL).report
    (zones,) = rows_of(report, "zones")
    # The later incidents inside the cluster hulls, counted here through the ORM.
    later = Incident.objects.filter(occurred_at__gte=LATER - dt.timedelta(days=1))
    inside = {
        pk
        for zone in dbscan.zones.all()
        for pk in later.filter(point__intersects=zone.geom).values_list("pk", flat=True)
    }
    assert zones["hits"] == len(inside) > 0 and zones["n_cells"] == 0
    assert zones["pai"] == pytest.approx((len(inside) / 20) / zones["area_share"])
    assert zones["area_share"] == pytest.approx(dbscan.summary["zones_area_km2"] / 1.0, rel=0.05)
    assert "automatic" in report["grid"]["source"]
    assert not rows_of(report, "top_cells")

    kde = execute_run(
        run=create_run(
            region=square_town,
            **TRAIN,
            method="kde",
            params={"cell_size_m": SIZE, "bandwidth_m": 150},
        )
    )
    report = validate_run(run=kde, **EVAL).report
    assert not rows_of(report, "zones")
    top = rows_of(report, "top_cells")[0]
    # the densest cell is the block's centre
    assert top["n_cells"] == 1 and top["hits"] == 12
