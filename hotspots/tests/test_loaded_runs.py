"""The runs the demo and the CDMX pack are loaded with: computed once, reused after."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command

from demo.hotspots import DEMO_RUNS, ensure_demo_runs
from hotspots.models import HotspotCell, HotspotRun, HotspotValidation, HotspotZone
from incidents.models import Incident

pytestmark = pytest.mark.django_db


def test_load_demo_leaves_succeeded_runs_and_loading_again_adds_none():
    out = StringIO()
    call_command("load_demo", stdout=out)
    runs = list(HotspotRun.objects.order_by("id"))
    assert len(runs) == len(DEMO_RUNS) == 3
    assert all(r.status == HotspotRun.Status.SUCCEEDED for r in runs)
    assert [r.method for r in runs] == ["gistar", "emerging", "gistar"]
    newest = HotspotRun.objects.order_by("-created_at", "-id").first()
    assert newest.method == "gistar" and newest.date_to == dt.date(2025, 12, 31)
    # the planner map has cells and zones to show: the demo's planted hotspots
    assert HotspotZone.objects.filter(run=newest).count() >= 5
    assert HotspotCell.objects.filter(run=newest, gi_bin__gte=2).exists()
    emerging = runs[1]
    assert len(emerging.params["steps"]) == 24
    # "Parque de la loma" and "Pasaje sin luz" emerge in the second year
    assert emerging.summary["hot_pattern_cells"] > 0
    validation = HotspotValidation.objects.get(run=runs[0])
    zones = [r for r in validation.report["rows"] if r["method"] == "zones"]
    assert zones and zones[0]["pai"] > 1
    assert "hotspot run #" in out.getvalue() and "PAI" in out.getvalue()

    out = StringIO()
    call_command("load_demo", stdout=out)
    assert HotspotRun.objects.count() == 3 and HotspotValidation.objects.count() == 1
    assert out.getvalue().count("already computed with the same inputs") == 3

    # Once the incidents change, the runs are computed again.
    Incident.objects.filter(pk=Incident.objects.order_by("pk").first().pk).delete()
    ensure_demo_runs()
    assert HotspotRun.objects.count() == 6


@pytest.mark.open_data
def test_cdmx_pack_computes_a_validated_run_of_2022(shared_data):
    out = StringIO()
    call_command(
        "load_open_data", "cdmx", "--from", str(shared_data), stdout=out, stderr=StringIO()
    )
    run = HotspotRun.objects.get(region__code="cdmx")
    assert run.status == HotspotRun.Status.SUCCEEDED, run.message
    assert (run.date_from, run.date_to) == (dt.date(2022, 1, 1), dt.date(2022, 9, 30))
    assert run.summary["incidents"] > 150_000 and run.summary["zones"] > 10
    # The dense centre merged into one zone of many km² (issue 12, item 10): now split into
    # patrol-sized parts, none larger than the default 1 km².
    assert run.summary["zones_split"] >= 1
    assert run.summary["zones"] > run.summary["zones_merged"]
    assert max(z.area_m2 for z in HotspotZone.objects.filter(run=run)) <= 1e6
    validation = HotspotValidation.objects.get(run=run)
    assert (validation.eval_from, validation.eval_to) == (
        dt.date(2022, 10, 1),
        dt.date(2022, 12, 31),
    )
    report = validation.report
    assert report["evaluation"]["incidents"] > 40_000
    rows = {(r["method"], r["coverage"]): r for r in report["rows"]}
    # The zones concentrate the last quarter's crimes far beyond their share of the city,
    # and so does the naive baseline: both PAIs are in the report.
    assert rows[("zones", None)]["pai"] > 2
    for coverage in (0.01, 0.05, 0.1):
        assert rows[("naive_period", coverage)]["pai"] > 2
        assert rows[("top_cells", coverage)]["pai"] > 2
    text = out.getvalue()
    assert "validated on 2022-10-01 to 2022-12-31: zones" in text
    assert "naive baseline" in text
    # a run over 168,000 incidents, measured (stability included)
    assert run.timings["total"] < 30

    call_command(
        "load_open_data", "cdmx", "--from", str(shared_data), stdout=StringIO(), stderr=StringIO()
    )
    assert HotspotRun.objects.filter(region__code="cdmx").count() == 1
    assert HotspotValidation.objects.count() == 1
