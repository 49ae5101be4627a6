"""The small US crime exports of ../shared/data/us-small-crime-samples (read at run time,
never copied): no id column and blank coordinates (Cincinnati burglary), a single offence
with dates only (NYC shootings). Every expected count comes from the files themselves.

No US boundaries are in the data folder: a region is a box around each file's extent
(PROVENANCE.md gives it), with the city's time zone.
"""

from __future__ import annotations

from io import StringIO
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from django.utils import translation
from shapely.geometry import box

from incidents.models import ImportBatch, Incident
from incidents.tests.test_import_open_data import data_rows, import_command

pytestmark = [pytest.mark.open_data, pytest.mark.django_db]

SAMPLES = "us-small-crime-samples"
NEW_YORK = ZoneInfo("America/New_York")


def _region(make_region, code: str, bbox: tuple[float, float, float, float]):
    region = make_region(code, {"ALL": (code, box(*bbox))})
    region.time_zone = "America/New_York"
    region.save(update_fields=["time_zone"])
    return region


@pytest.fixture
def cincinnati(shared_data, make_region):
    _region(make_region, "cincinnati", (-84.71, 39.06, -84.37, 39.23))
    return shared_data / SAMPLES / "cincinnati_burglary_2016_2018.csv"


CINCINNATI_ARGS = ["--source", "cpd", "--date", "offense_date", "--category", "offense"]


def test_cincinnati_without_an_id_column_refuses_blank_coordinates_by_row(cincinnati):
    rows = data_rows([cincinnati])
    blank = rows[(rows["longitude"] == "") | (rows["latitude"] == "")]
    assert len(blank) > 0

    stderr = StringIO()
    with pytest.raises(CommandError) as refused:
        call_command(
            "import_incidents", str(cincinnati), *CINCINNATI_ARGS, stdout=StringIO(), stderr=stderr
        )

    assert str(refused.value) == f"{len(blank)} row(s) refused; nothing was written"
    shown = [line for line in stderr.getvalue().splitlines() if line.startswith("refused: ")]
    assert shown == [
        f"refused: {cincinnati.name} row {number}: missing coordinates"
        for number in blank["__row"][:200]
    ]
    assert not Incident.objects.exists()


def test_cincinnati_with_skip_bad_writes_the_rest_with_stable_derived_ids(cincinnati):
    rows = data_rows([cincinnati])
    blank = (rows["longitude"] == "") | (rows["latitude"] == "")

    counts, out = import_command(cincinnati, *CINCINNATI_ARGS, "--skip-bad")

    assert counts["read"] == len(rows)
    assert (counts["created"], counts["refused"]) == ((~blank).sum(), blank.sum())
    # Identical rows (the export repeats some) are told apart, not refused as duplicates.
    assert Incident.objects.count() == (~blank).sum()
    batch = ImportBatch.objects.get()
    assert batch.report["refused_reasons"] == {"missing coordinates": int(blank.sum())}
    assert batch.report["time_zones"] == [
        {"zone": "America/New_York", "origin": "region", "region": "cincinnati",
         "rows": int((~blank).sum())}
    ]  # fmt: skip
    # The times carry "Z": the zone is named but changes nothing.
    first = rows[~blank].iloc[0]
    stored = Incident.objects.order_by("occurred_at").values_list("occurred_at", flat=True)
    assert pd.Timestamp(first["offense_date"]) in {pd.Timestamp(t) for t in stored}

    again, _ = import_command(cincinnati, *CINCINNATI_ARGS, "--skip-bad")
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, counts["created"])


def test_nyc_shootings_are_one_offence_by_day_in_new_york_time(shared_data, make_region):
    _region(make_region, "nyc", (-74.18, 40.54, -73.70, 40.91))
    path = shared_data / SAMPLES / "nyc_shootings_2019.csv"
    rows = data_rows([path])
    # One row per victim: incident_key repeats, so ids are derived from the content.
    assert rows["incident_key"].duplicated().any()

    with translation.override("en"):
        counts, out = import_command(
            path,
            "--source",
            "nypd-shootings",
            "--date",
            "occur_date",
            "--label",
            "Shooting incident",
        )

    assert (counts["read"], counts["created"], counts["refused"]) == (len(rows), len(rows), 0)
    assert "every row has the label 'Shooting incident' (--label)" in out
    incidents = Incident.objects.all()
    assert set(incidents.values_list("label__label", "time_precision").distinct()) == {
        ("Shooting incident", "day")
    }
    days = {pd.Timestamp(d, tz=NEW_YORK) for d in rows["occur_date"]}
    starts = set(incidents.values_list("occurred_at", flat=True))
    assert {pd.Timestamp(s) for s in starts} == days  # local midnights, not UTC ones
    for start, until in incidents.values_list("occurred_at", "occurred_until")[:50]:
        local = pd.Timestamp(start).tz_convert(NEW_YORK)
        assert pd.Timestamp(until).tz_convert(NEW_YORK) == local + pd.Timedelta(days=1)
