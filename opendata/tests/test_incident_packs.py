"""Open-data packs with incidents, read from ../shared/data at run time."""

import csv
from io import StringIO

import pytest
from django.core.management import call_command

from incidents.models import ImportBatch, Incident, TimePrecision
from neighborhoods.models import District, Neighborhood, Region
from neighborhoods.selectors import attributions

pytestmark = [pytest.mark.django_db, pytest.mark.open_data]


def _load(pack, data_dir):
    out = StringIO()
    call_command("load_open_data", pack, "--from", str(data_dir), stdout=out, stderr=StringIO())
    return out.getvalue()


def _placeholder_rows(folder):
    total = flagged = 0
    for path in sorted(folder.glob("boston311_2015_*.csv")):
        with path.open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                total += 1
                flagged += row["placeholder_location"] == "True"
    return total, flagged


def test_boston_pack_refuses_placeholder_points_and_reloads_unchanged(shared_data):
    total, placeholders = _placeholder_rows(shared_data / "boston-311-incivilities-2015")
    _load("boston", shared_data)
    region = Region.objects.get(code="boston")
    assert region.metric_srid == 32619
    batch = ImportBatch.objects.get(source__name="boston-311")
    assert batch.status == ImportBatch.Status.SUCCEEDED
    assert batch.rows_read == total
    refused = batch.refused_rows.values_list("reason", flat=True)
    assert len(refused) == placeholders
    assert set(refused) == {"known placeholder location (Boston 311 default point (City Hall))"}
    assert Incident.objects.filter(source__name="boston-311").count() == total - placeholders
    assert Incident.objects.filter(category__code="graffiti").exists()
    assert Incident.objects.filter(category__code="street-light-outage").exists()
    assert any("Boston 311" in line for line in attributions())

    out = _load("boston", shared_data)
    assert "0 created, 0 updated" in out
    second = ImportBatch.objects.filter(source__name="boston-311").order_by("-pk").first()
    assert second.rows_unchanged == total - placeholders


def test_lancashire_pack_loads_wards_and_month_only_asb(shared_data):
    _load("lancashire", shared_data)
    region = Region.objects.get(code="lancashire")
    assert District.objects.filter(region=region).count() == 14
    assert Neighborhood.objects.filter(region=region).count() == 271
    with (shared_data / "uk-antisocial-behaviour" / "lancashire_asb_2022.csv").open() as handle:
        rows = sum(1 for _ in csv.DictReader(handle))
    incidents = Incident.objects.filter(source__name="police-uk", region=region)
    assert incidents.count() == rows
    assert set(incidents.values_list("time_precision", flat=True).distinct()) == {
        TimePrecision.MONTH
    }
    assert set(incidents.values_list("location_quality", flat=True).distinct()) == {"snapped"}
    first = incidents.order_by("occurred_at").first()
    assert (
        first.occurred_until.month == first.occurred_at.month % 12 + 1 or first.occurred_at.day != 1
    )
    # Nearly every point falls in a ward of the district it lies in.
    assert incidents.filter(neighborhood__isnull=True).count() < rows * 0.01
