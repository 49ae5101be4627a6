"""Importing the real incident data sets in ../shared/data (read at run time, never copied).

Every expected count is derived from the files themselves while the test runs.
"""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from django.core.management import call_command, get_commands, load_command_class
from django.db import connection
from shapely.geometry import box

from incidents.models import Incident

pytestmark = [pytest.mark.open_data, pytest.mark.django_db]

CDMX_POINTS = "cdmx-fgj-carpetas/points"
BOSTON = "boston-311-incivilities-2015"
LANCASHIRE = "uk-antisocial-behaviour"
SUMMARY = re.compile(
    r"(?P<read>\d+) rows read from (?P<files>\d+) file\(s\) in [\d.]+ s: (?P<created>\d+) "
    r"created, (?P<updated>\d+) updated, (?P<unchanged>\d+) unchanged \([^)]*\), "
    r"(?P<refused>\d+) refused, (?P<unassigned>\d+) inside a region"
)


def import_command(*args) -> tuple[dict[str, int], str]:
    """Runs import_incidents; returns the counts of its summary line and its output."""
    stdout, stderr = StringIO(), StringIO()
    call_command("import_incidents", *map(str, args), stdout=stdout, stderr=stderr)
    out = stdout.getvalue()
    match = SUMMARY.search(out)
    assert match, out
    return {k: int(v) for k, v in match.groupdict().items()}, out


def data_rows(paths: list[Path]) -> pd.DataFrame:
    """The files' rows as text, with their file name and spreadsheet row number."""
    frames = []
    for path in paths:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        frames.append(frame.assign(__file=path.name, __row=range(2, len(frame) + 2)))
    return pd.concat(frames, ignore_index=True)


def load_cdmx_boundaries(data_dir: Path) -> None:
    """The CDMX pack's alcaldías and colonias, without the pack's own incident import."""
    command = load_command_class(get_commands()["load_open_data"], "load_open_data")
    options = {
        a
        for action in command.create_parser("manage.py", "load_open_data")._actions
        for a in action.option_strings
    }
    extra = ["--boundaries-only"] if "--boundaries-only" in options else []
    call_command(
        "load_open_data", "cdmx", "--from", str(data_dir), *extra,
        stdout=StringIO(), stderr=StringIO(),
    )  # fmt: skip


def test_cdmx_2022_imports_with_alcaldias_and_a_second_run_changes_nothing(shared_data):
    load_cdmx_boundaries(shared_data)
    Incident.objects.all().delete()  # in case the pack imported its incidents as well
    paths = sorted((shared_data / CDMX_POINTS).glob("cdmx_fgj_2022-*.csv"))
    assert len(paths) == 12
    expected_rows = len(data_rows(paths))
    args = [*paths, "--source", "cdmx-fgj", "--profile", "cdmx", "--skip-bad"]

    first, out = import_command(*args)

    assert first["files"] == 12
    assert first["read"] == expected_rows
    assert first["read"] == first["created"] + first["refused"]
    assert first["updated"] == first["unchanged"] == 0
    # Every refusal is a point outside the city: the data have no other defect we refuse.
    reasons = re.findall(r"^refused: \S+ row \d+: (.*)$", out, flags=re.MULTILINE)
    assert set(reasons) <= {"outside every loaded region"}
    incidents = Incident.objects.filter(source__name="cdmx-fgj")
    assert incidents.count() == first["created"]
    with_alcaldia = incidents.filter(district__isnull=False).count()
    assert with_alcaldia >= 0.99 * first["created"]
    assert first["unassigned"] == first["created"] - with_alcaldia
    assert incidents.filter(category__code="domestic-violence", category__sensitive=True).exists()
    # Areas are found in Python; PostGIS's ST_Intersects on the same pieces agrees (every
    # tenth row, lowest area id on a shared border).
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*),
              count(*) FILTER (WHERE i.district_id IS DISTINCT FROM (
                SELECT min(p.area_id) FROM neighborhoods_areapart p
                WHERE p.kind = 'district' AND ST_Intersects(p.geom, i.point))),
              count(*) FILTER (WHERE i.neighborhood_id IS DISTINCT FROM (
                SELECT min(p.area_id) FROM neighborhoods_areapart p
                WHERE p.kind = 'neighborhood' AND ST_Intersects(p.geom, i.point)))
            FROM incidents_incident i WHERE mod(i.id, 10) = 0
            """
        )
        checked, other_district, other_neighborhood = cursor.fetchone()
    assert checked >= first["created"] // 10 - 1
    assert (other_district, other_neighborhood) == (0, 0)

    second, _ = import_command(*args)

    assert (second["created"], second["updated"]) == (0, 0)
    assert second["unchanged"] == first["created"]
    assert second["refused"] == first["refused"]


def test_boston_311_placeholder_rows_are_refused_with_their_reason(shared_data, make_region):
    # Boundaries containing Boston: a box around the data's bbox (PROVENANCE.md).
    make_region("boston", {"BOS": ("Boston", box(-71.20, 42.22, -70.98, 42.41))})
    paths = sorted((shared_data / BOSTON).glob("boston311_2015_*.csv"))
    rows = data_rows(paths)
    placeholders = rows[rows["placeholder_location"] == "True"]
    assert len(placeholders) > 0

    counts, out = import_command(
        *paths, "--source", "boston-311", "--profile", "boston311", "--skip-bad"
    )

    assert counts["read"] == len(rows)
    assert counts["refused"] == len(placeholders)
    assert counts["created"] == len(rows) - len(placeholders)
    refused = re.findall(r"^refused: (\S+) row (\d+): (.*)$", out, flags=re.MULTILINE)
    shown = min(len(placeholders), 200)  # the report lists the first 200
    expected = set(zip(placeholders["__file"], placeholders["__row"].astype(str), strict=True))
    assert len(refused) == shown
    assert {(f, r) for f, r, _ in refused} <= expected
    assert {reason for *_, reason in refused} == {
        "known placeholder location (Boston 311 default point (City Hall))"
    }
    assert not Incident.objects.filter(point__equals="SRID=4326;POINT(-71.0587 42.3594)").exists()


def test_police_uk_lancashire_asb_is_month_precise_and_snapped(shared_data):
    folder = shared_data / LANCASHIRE
    call_command(
        "load_boundaries", str(folder / "lancashire_districts.geojson"),
        "--region", "lancashire", "--level", "district",
        "--code-field", "objectid", "--name-field", "district",
        stdout=StringIO(), stderr=StringIO(),
    )  # fmt: skip
    path = folder / "lancashire_asb_2022.csv"
    rows = data_rows([path])
    args = [path, "--source", "police-uk", "--profile", "policeuk", "--skip-bad"]

    counts, out = import_command(*args)

    assert counts["read"] == len(rows)
    assert counts["read"] == counts["created"] + counts["refused"]
    reasons = re.findall(r"^refused: \S+ row \d+: (.*)$", out, flags=re.MULTILINE)
    assert set(reasons) <= {"outside every loaded region"}
    incidents = Incident.objects.filter(source__name="police-uk")
    assert incidents.count() == counts["created"]
    assert set(incidents.values_list("time_precision", "location_quality").distinct()) == {
        ("month", "snapped")
    }
    assert set(incidents.values_list("category__code", flat=True).distinct()) == {
        "antisocial-behaviour"
    }
    assert incidents.filter(district__isnull=True).count() == counts["unassigned"]
    london = ZoneInfo("Europe/London")
    starts = {
        (i.occurred_at.astimezone(london), i.occurred_until.astimezone(london))
        for i in incidents.only("occurred_at", "occurred_until")
    }
    assert {(s.day, s.hour, s.minute) for s, _ in starts} == {(1, 0, 0)}
    assert {
        (u.day, u.hour, (u.year * 12 + u.month) - (s.year * 12 + s.month)) for s, u in starts
    } == {(1, 0, 1)}
    assert {s.strftime("%Y-%m") for s, _ in starts} == set(rows["month"].str.slice(0, 7))

    # Many rows share a snapped point and a month: their derived ids stay stable.
    again, _ = import_command(*args)
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, counts["created"])
