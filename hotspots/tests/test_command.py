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
        "grid_origin": "crs",
        "analysis_area": "boundary",
        "alpha": 0.01,
        "fdr": False,
        "permutations": 99,
        "seed": 3,
        "stability": True,
        "max_zone_km2": 1.0,
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
    with pytest.raises(CommandError, match="invalid choice: 'voronoi'"):
        run_command(*BASE, "--method", "voronoi")
    # an option of another method is refused, not ignored
    with pytest.raises(CommandError, match="--eps does not apply to --method gistar"):
        run_command(*BASE, "--eps", "100")
    with pytest.raises(CommandError, match="--validate-from and --validate-to go together"):
        run_command(*BASE, "--validate-from", "2025-01-01")


def test_command_methods_validation_stability_and_report(town, tmp_path):  # noqa: F811
    import datetime as dt

    from hotspots.tests.test_runs import X0, Y0, add_incidents, district

    d1 = planted_town(town, seed=5, background=900)
    # later incidents, at the biggest cluster and scattered
    add_incidents(
        town, [X0 + 900] * 30 + [X0 + 3500] * 10, [Y0 + 1100] * 30 + [Y0 + 300] * 10,
        district=d1, when=dt.datetime(2025, 2, 1, tzinfo=dt.UTC),
    )  # fmt: skip
    assert district(town, "D1") == d1
    report = tmp_path / "report.html"
    output = run_command(
        *BASE, "--district", "D1", "--cell-size", "120",
        "--validate-from", "2025-01-01", "--validate-to", "2025-03-31",
        "--report", str(report),
    )  # fmt: skip
    assert "stability of the hot area" in output and "Jaccard" in output
    assert "validation against 2025-01-01 to 2025-03-31: 40 incidents" in output
    lines = output.splitlines()
    zones = next(line for line in lines if line.strip().startswith("Hot zones"))
    naive = [
        line for line in lines if line.strip().startswith("Naive: count over the run's period")
    ]
    assert len(naive) == 3 and "PAI" in output
    # Every row's PAI ends where the heading's does, the longest label's rows included.
    heading = next(line for line in lines if "coverage" in line and "PAI" in line)
    pai_end = heading.index("PAI") + len("PAI")
    for line in [zones, *naive]:
        pai = line.split()[-2]
        assert line.rindex(pai, 0, pai_end + 1) + len(pai) == pai_end, line
    assert float(zones.split()[-2]) > 1  # the zones' PAI
    assert report.stat().st_size > 1000 and "<html" in report.read_text().lower()

    kde_a, kde_b = tmp_path / "a.geojson", tmp_path / "b.geojson"
    for path in (kde_a, kde_b):
        out = run_command(
            *BASE, "--district", "D1", "--method", "kde", "--cell-size", "100",
            "--bandwidth", "300", "--output", str(path),
        )  # fmt: skip
    assert "bandwidth 300 m" in out
    assert kde_a.read_bytes() == kde_b.read_bytes()
    kde = HotspotRun.objects.filter(method="kde").order_by("id").first()
    features = json.loads(kde_a.read_text())["features"]
    assert len(features) == kde.summary["cells"]
    assert all(f["properties"]["density"] > 0 or f["properties"]["count"] > 0 for f in features)

    # DBSCAN has no cells: --output writes its zones, the same bytes for the same inputs.
    db_a, db_b = tmp_path / "zones-a.geojson", tmp_path / "zones-b.geojson"
    for path in (db_a, db_b):
        out = run_command(
            *BASE, "--district", "D1", "--method", "dbscan", "--eps", "60", "--min-points", "25",
            "--output", str(path),
        )  # fmt: skip
    assert "3 cluster zone(s) at a distance of 60 m and 25 points" in out and "zones: 3" in out
    assert f"zones written to {db_b}" in out
    assert db_a.read_bytes() == db_b.read_bytes()
    run = HotspotRun.objects.filter(method="dbscan").order_by("id").first()
    assert run.params == {"eps_m": 60.0, "min_points": 25, "concave_ratio": 0.5}
    collection = json.loads(db_a.read_text())
    assert collection["hotspot_run"]["method"] == "dbscan"
    zones = list(run.zones.order_by("rank"))
    assert [f["properties"]["rank"] for f in collection["features"]] == [z.rank for z in zones]
    for feature, zone in zip(collection["features"], zones, strict=True):
        assert feature["geometry"]["type"] == "MultiPolygon"
        assert feature["properties"]["incident_count"] == zone.incident_count
        assert feature["properties"]["top_categories"] == zone.top_categories
        assert feature["properties"]["area_m2"] == pytest.approx(zone.area_m2, abs=1e-6)

    with pytest.raises(CommandError, match="only 1 whole monthly step"):
        run_command(*BASE, "--from", "2024-03-01", "--to", "2024-04-15", "--method", "emerging")
