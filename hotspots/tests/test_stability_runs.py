# ruff: noqa: F811 (the town fixture is imported from test_runs)
"""Stability of a Gi* run's hot area across cell sizes, against PostGIS."""

from __future__ import annotations

import pytest
from django.db import connection

from hotspots.engine import HotspotRefused
from hotspots.engine import grid as grids
from hotspots.services import stability
from hotspots.tests.test_runs import SRID, planted_town, run_for, town  # noqa: F401

pytestmark = pytest.mark.django_db


def postgis_jaccard(run_a, run_b) -> float:
    """Area Jaccard of the two runs' hot cells (bin ≥ 2), computed by PostGIS."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH a AS (SELECT ST_Union(ST_Transform(geom, {SRID}), 0.001) g
                       FROM hotspots_hotspotcell WHERE run_id = %s AND gi_bin >= 2),
                 b AS (SELECT ST_Union(ST_Transform(geom, {SRID}), 0.001) g
                       FROM hotspots_hotspotcell WHERE run_id = %s AND gi_bin >= 2)
            SELECT ST_Area(ST_Intersection(a.g, b.g)) / ST_Area(ST_Union(a.g, b.g)) FROM a, b
            """,
            [run_a.pk, run_b.pk],
        )
        return cursor.fetchone()[0]


@pytest.mark.parametrize("grid_kind", ["square", "hex"])
def test_stability_rows_match_runs_at_those_cell_sizes(town, grid_kind):
    d1 = planted_town(town, seed=9, background=1200)
    run = run_for(town, districts=[d1], params={"grid": grid_kind, "cell_size_m": 100})
    table = run.stability
    assert [r["factor"] for r in table["rows"]] == list(stability.STABILITY_FACTORS)
    assert table["reference"]["hot_cells"] == run.summary["hot_cells"]
    assert "stability" in run.timings
    for factor in (0.5, 2.0):
        other = run_for(
            town,
            districts=[d1],
            params={"grid": grid_kind, "cell_size_m": 100 * factor, "stability": False},
        )
        assert other.stability == {} and "stability" not in other.timings
        (row,) = [r for r in table["rows"] if r["factor"] == factor]
        assert row["cell_size_m"] == 100 * factor
        assert row["cells"] == other.summary["cells"]
        assert row["hot_cells"] == other.summary["hot_cells"]
        assert row["jaccard"] == pytest.approx(postgis_jaccard(run, other), abs=1e-5)
    # planted clusters do not depend on the cell size much
    assert 0.3 < table["min_jaccard"] <= table["mean_jaccard"] <= 1


def test_compute_stability_again_with_other_factors(town):
    d1 = planted_town(town, seed=10, background=900)
    run = run_for(town, districts=[d1], params={"cell_size_m": 120, "stability": False})
    assert run.stability == {}
    run = stability.compute_stability(run=run, factors=(0.8, 1.25))
    assert [r["cell_size_m"] for r in run.stability["rows"]] == [96.0, 150.0]
    first = run.stability["rows"]
    assert stability.compute_stability(run=run, factors=(0.8, 1.25)).stability["rows"] == first
    with pytest.raises(HotspotRefused, match="other than 1"):
        stability.compute_stability(run=run, factors=(1.0,))
    kde = run_for(town, districts=[d1], method="kde", params={"cell_size_m": 100})
    with pytest.raises(HotspotRefused, match="grid \\+ Gi\\* runs only"):
        stability.compute_stability(run=kde)


def test_a_size_the_area_cannot_take_is_a_row_with_its_reason(town, monkeypatch):
    d1 = planted_town(town, seed=12, background=600)
    monkeypatch.setattr(grids, "MAX_CELLS", 4000)
    run = run_for(town, districts=[d1], params={"grid": "square", "cell_size_m": 100})
    (small,) = [r for r in run.stability["rows"] if r["factor"] == 0.5]
    assert small["jaccard"] is None and "choose larger cells" in small["error"]
    assert all(r["jaccard"] is not None for r in run.stability["rows"] if r["factor"] > 0.5)
