"""``manage.py run_hotspots``: summary, cells file, byte-identical repeats, refusals."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from hotspots.models import HotspotRun
from hotspots.tests.test_runs import CLUSTERS, planted_town, town  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db

BASE = ["--region", "hotville", "--from", "2024-01-01", "--to", "2024-12-31"]


def run_command(*args) -> str:
    out = io.StringIO()
    call_command("run_hotspots", *args, stdout=out)
    return out.getvalue()


def test_command_prints_a_summary_and_writes_identical_cells_files(town, tmp_path):  # noqa: F811
    planted_town(town)
    first, second = tmp_path / "a.geojson", tmp_path / "b.geojson"
    output = run_command(*BASE, "--district", "D1", "--output", str(first))
    run_command(*BASE, "--district", "D1", "--output", str(second))

    assert "succeeded:" in output and "automatic: Optimized Hot Spot Analysis" in output
    assert "FDR on" in output and "timings: area" in output
    assert f"zones: {len(CLUSTERS)}" in output
    assert first.read_bytes() == second.read_bytes()
    assert HotspotRun.objects.filter(status=HotspotRun.Status.SUCCEEDED).count() == 2

    collection = json.loads(first.read_text())
    assert collection["type"] == "FeatureCollection"
    assert collection["hotspot_run"]["region"] == "hotville"
    assert collection["hotspot_run"]["districts"] == ["D1"]
    features = collection["features"]
    run = HotspotRun.objects.order_by("id").first()
    assert len(features) == run.summary["cells"]
    properties = [f["properties"] for f in features]
    assert set(properties[0]) == {"i", "j", "count", "gi_z", "gi_p", "gi_bin", "zone"}
    assert sum(p["count"] for p in properties) == run.summary["incidents"]
    assert {p["zone"] for p in properties} == {None, 1, 2, 3}
    assert all(p["gi_bin"] >= 2 for p in properties if p["zone"] is not None)
    assert [(p["i"], p["j"]) for p in properties] == sorted((p["i"], p["j"]) for p in properties)
    assert features[0]["geometry"]["type"] == "Polygon"


def test_command_options_reach_the_run(town, tmp_path):  # noqa: F811
    planted_town(town, seed=4, background=800)
    output = run_command(
        *BASE,
        "--grid", "square",
        "--cell-size", "150",
        "--alpha", "0.01",
        "--no-fdr",
        "--permutations", "99",
        "--seed", "3",
        "--category", "robbery-person",
        "--category", "burglary",
    )  # fmt: skip
    run = HotspotRun.objects.get()
    assert run.params == {
        "grid": "square",
        "cell_size_m": 150.0,
        "neighbour_rule": "contiguity",
        "distance_band_m": None,
        "alpha": 0.01,
        "fdr": False,
        "permutations": 99,
        "seed": 3,
    }
    assert sorted(run.categories.values_list("code", flat=True)) == ["burglary", "robbery-person"]
    assert run.summary["incidents"] == CLUSTERS[0][2] + CLUSTERS[2][2]
    assert "square cells of 150 m" in output and "FDR off" in output

    run_command(*BASE, "--cell-size", "150", "--distance-band", "400")
    band = HotspotRun.objects.order_by("-id").first()
    assert band.params["neighbour_rule"] == "distance_band"
    assert band.params["distance_band_m"] == 400.0


def test_command_refusals(town):  # noqa: F811
    with pytest.raises(CommandError, match="refused: only 0 incidents"):
        run_command(*BASE, "--cell-size", "100")
    assert HotspotRun.objects.get().status == HotspotRun.Status.FAILED
    with pytest.raises(CommandError, match="unknown region"):
        run_command("--region", "nowhere", "--from", "2024-01-01", "--to", "2024-12-31")
    with pytest.raises(CommandError, match="unknown district"):
        run_command(*BASE, "--district", "D9")
    with pytest.raises(CommandError, match="unknown category"):
        run_command(*BASE, "--category", "piracy")
    with pytest.raises(CommandError, match="not a date"):
        run_command("--region", "hotville", "--from", "2024-13-01", "--to", "2024-12-31")
    # only the methods that work are accepted
    with pytest.raises(CommandError, match="invalid choice: 'dbscan'"):
        run_command(*BASE, "--method", "dbscan")
