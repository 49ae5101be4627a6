"""Time windows (--date-end/--time-end), the time zone of naive times (the region's unless
--timezone or a profile says) and single-offence files (--label): reading, the command,
the batch page and the API."""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO

import numpy as np
import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import translation
from shapely.geometry import box

from incidents.models import ImportBatch, Incident
from incidents.services.reading import ChunkValidator, ColumnMapping, ReadOptions
from incidents.services.request import ImportResult
from incidents.tests.test_web_import import planner, planner_client  # noqa: F401 (fixtures)
from tests.geodata import grid_cell

NOW = pd.Timestamp("2024-06-01T12:00:00Z")
WINDOW = ColumnMapping(
    date="date", time="time", date_end="date_end", time_end="time_end", category="category",
    lat="lat", lon="lon",
)  # fmt: skip


def utc(*parts) -> pd.Timestamp:
    return pd.Timestamp(datetime(*parts, tzinfo=UTC))


def _validate(rows: list[dict], columns=WINDOW, tz="America/Lima"):
    frame = pd.DataFrame(rows, dtype=str).fillna("")
    validator = ChunkValidator(ReadOptions(columns=columns, timezone=tz, now=NOW), 0, "w.csv")
    return validator.validate(frame, np.arange(2, 2 + len(frame)))


def _row(**values) -> dict:
    row = {"date": "2024-03-01", "time": "18:00", "date_end": "", "time_end": ""}
    row |= {"category": "ROBO", "lat": "-12.05", "lon": "-77.05"}
    return row | values


# --- reading windows -----------------------------------------------------------------------


def test_a_window_from_friday_evening_to_monday_morning_is_a_range():
    chunk = _validate([_row(date_end="2024-03-04", time_end="08:00")])

    assert chunk.refused == []
    good = chunk.good.iloc[0]
    # Lima is UTC-5 all year.
    assert good["occurred_at"] == utc(2024, 3, 1, 23)
    assert good["occurred_until"] == utc(2024, 3, 4, 13)
    assert good["time_precision"] == "range"


def test_a_date_only_end_ends_at_the_next_local_midnight():
    chunk = _validate([_row(date_end="2024-03-03")])

    assert chunk.good.iloc[0]["occurred_until"] == utc(2024, 3, 4, 5)  # 00:00 in Lima
    assert chunk.good.iloc[0]["time_precision"] == "range"


def test_an_end_time_alone_ends_on_the_day_the_window_starts():
    chunk = _validate([_row(time="08:15", time_end="17:45"), _row(time="22:00", time_end="06:00")])

    assert chunk.good.iloc[0]["occurred_until"] == utc(2024, 3, 1, 22, 45)
    assert [(r.row_number, r.reason) for r in chunk.refused] == [
        (3, "the window ends ('2024-03-01 06:00') before it starts ('2024-03-01 22:00')")
    ]


def test_an_end_before_the_start_is_refused_with_its_row_and_an_equal_one_is_exact():
    chunk = _validate(
        [
            _row(date_end="2024-02-28", time_end="08:00"),
            _row(date_end="2024-03-01", time_end="18:00"),
            _row(date_end="someday"),
        ]
    )

    assert [(r.row_number, r.reason) for r in chunk.refused] == [
        (2, "the window ends ('2024-02-28 08:00') before it starts ('2024-03-01 18:00')"),
        (4, "unparsable end date 'someday'"),
    ]
    exact = chunk.good.iloc[0]
    assert exact["row_no"] == 3 and exact["time_precision"] == "exact"
    assert pd.isna(exact["occurred_until"])


def test_rows_without_an_end_keep_their_own_precision():
    chunk = _validate([_row(), _row(time=""), _row(time="", date_end="2024-03-01")])

    good = chunk.good
    assert good["time_precision"].tolist() == ["exact", "day", "day"]
    # A date-only start whose end is that same day is that day's window, nothing more.
    assert good["occurred_until"].iloc[1] == good["occurred_until"].iloc[2] == utc(2024, 3, 2, 5)


def test_a_date_only_start_and_a_later_date_only_end_cover_both_days():
    chunk = _validate([_row(time="", date_end="2024-03-02")])

    good = chunk.good.iloc[0]
    assert (good["occurred_at"], good["occurred_until"]) == (utc(2024, 3, 1, 5), utc(2024, 3, 3, 5))
    assert good["time_precision"] == "range"


def test_naive_times_of_each_row_are_read_in_its_region_s_zone():
    columns = ColumnMapping(date="date", category="category", lat="lat", lon="lon")
    frame = pd.DataFrame(
        {"date": ["2024-03-01 10:00"] * 3, "category": ["ROBO"] * 3,
         "lat": ["-12.05", "-33.45", "0.5"], "lon": ["-77.05", "-70.66", "0.5"]}
    )  # fmt: skip

    def locate(lon, lat):
        region = np.select([lat < -30, lat < 0], [2, 1], 0)
        return region, np.zeros_like(region), np.zeros_like(region)

    options = ReadOptions(
        columns=columns, now=NOW, timezone="UTC", locate=locate,
        region_zones={1: "America/Lima", 2: "America/Santiago"},
    )  # fmt: skip
    chunk = ChunkValidator(options, 0, "z.csv").validate(frame, np.arange(2, 5))

    # Santiago keeps summer time (UTC-3) until April; the third point is in no region.
    assert chunk.good["occurred_at"].tolist() == [utc(2024, 3, 1, 15), utc(2024, 3, 1, 13)]
    assert [(r.row_number, r.reason) for r in chunk.refused] == [(4, "outside every loaded region")]
    assert chunk.rows_by_region == {1: 1, 2: 1}


# --- the command ---------------------------------------------------------------------------


@pytest.fixture
def town(make_region):
    region = make_region("testville", {"D1": ("Uno", grid_cell(0)), "D2": ("Dos", grid_cell(1))})
    region.time_zone = "America/Lima"
    region.save(update_fields=["time_zone"])
    return region


def _write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def call(*args):
    stdout, stderr = StringIO(), StringIO()
    with translation.override("en"):
        call_command("import_incidents", *map(str, args), stdout=stdout, stderr=stderr)
    return stdout.getvalue()


def call_fails(*args) -> tuple[str, str]:
    stdout, stderr = StringIO(), StringIO()
    with translation.override("en"), pytest.raises(CommandError) as exc:
        call_command("import_incidents", *map(str, args), stdout=stdout, stderr=stderr)
    return str(exc.value), stderr.getvalue()


WINDOWED_CSV = (
    "id,from_date,from_time,to_date,to_time,offense,lat,lon\n"
    "W1,2024-03-01,18:00,2024-03-04,08:00,BURGLARY,-12.095,-77.095\n"
    "W2,2024-03-02,,2024-03-02,,BURGLARY,-12.095,-77.085\n"
    "W3,2024-03-02,09:30,,,BURGLARY,-12.094,-77.094\n"
    "W4,2024-03-05,12:00,2024-03-05,12:00,BURGLARY,-12.094,-77.094\n"
)
WINDOW_ARGS = [
    "--source", "test", "--id", "id", "--date", "from_date", "--time", "from_time",
    "--date-end", "to_date", "--time-end", "to_time", "--category", "offense",
]  # fmt: skip


@pytest.mark.django_db
def test_windowed_rows_are_stored_with_their_exclusive_end_and_import_again_unchanged(
    town, tmp_path
):
    path = _write(tmp_path / "windows.csv", WINDOWED_CSV)

    out = call(path, *WINDOW_ARGS)

    assert out.startswith("4 rows read from 1 file(s)")
    stored = {
        i.external_id: (i.occurred_at, i.occurred_until, i.time_precision)
        for i in Incident.objects.all()
    }
    assert stored == {
        "W1": (utc(2024, 3, 1, 23), utc(2024, 3, 4, 13), "range"),
        "W2": (utc(2024, 3, 2, 5), utc(2024, 3, 3, 5), "day"),
        "W3": (utc(2024, 3, 2, 14, 30), None, "exact"),
        "W4": (utc(2024, 3, 5, 17), None, "exact"),
    }
    again = call(path, *WINDOW_ARGS)
    assert "0 created, 0 updated, 4 unchanged" in again


@pytest.mark.django_db
def test_a_window_that_ends_before_it_starts_refuses_the_import_by_row(town, tmp_path):
    path = _write(
        tmp_path / "backwards.csv",
        WINDOWED_CSV + "W5,2024-03-09,10:00,2024-03-08,23:00,BURGLARY,-12.094,-77.094\n",
    )

    message, err = call_fails(path, *WINDOW_ARGS)

    assert message == "1 row(s) refused; nothing was written"
    assert (
        "refused: backwards.csv row 6: the window ends ('2024-03-08 23:00') before it starts "
        "('2024-03-09 10:00')" in err
    )
    assert not Incident.objects.exists()


@pytest.mark.django_db
def test_a_month_only_profile_takes_no_window_end(town, tmp_path):
    path = _write(
        tmp_path / "uk.csv",
        "Crime ID,Month,Crime type,Latitude,Longitude,Until\nX,2024-01,Burglary,-12.09,-77.09,x\n",
    )

    message, _ = call_fails(path, "--source", "uk", "--profile", "policeuk", "--date-end", "Until")

    assert "gives months only" in message


# --- the time zone of naive times ---------------------------------------------------------

NAIVE_CSV = "id,date,category,lat,lon\nN1,2024-03-01 10:00,ROBO,-12.095,-77.095\n"


@pytest.mark.django_db
def test_without_an_option_or_a_profile_naive_times_are_read_in_the_region_s_zone(town, tmp_path):
    out = call(_write(tmp_path / "naive.csv", NAIVE_CSV), "--source", "test", "--id", "id")

    assert Incident.objects.get().occurred_at == utc(2024, 3, 1, 15)  # 10:00 in Lima
    assert (
        "times without an offset read in America/Lima, the time zone of region testville "
        "(1 rows)" in out
    )
    batch = ImportBatch.objects.get()
    assert batch.report["time_zones"] == [
        {"zone": "America/Lima", "origin": "region", "region": "testville", "rows": 1}
    ]


@pytest.mark.django_db
def test_the_command_report_is_in_one_language_when_the_site_speaks_spanish(town, tmp_path):
    path = _write(tmp_path / "naive.csv", NAIVE_CSV)

    stdout = StringIO()
    with translation.override("es"):  # LANGUAGE_CODE of a deployment
        call_command(
            "import_incidents",
            str(path),
            "--source",
            "test",
            "--id",
            "id",
            "--label",
            "Robo",
            stdout=stdout,
        )
    out = stdout.getvalue()

    assert "1 rows read from 1 file(s)" in out
    assert "times without an offset read in America/Lima" in out
    assert "every row has the label 'Robo' (--label)" in out
    assert "horas" not in out and "etiqueta" not in out


def test_the_report_lines_are_english_for_every_caller_of_the_service():
    """load_open_data prints the service's lines itself, not through import_incidents."""
    result = ImportResult(
        batch_id=1,
        dry_run=False,
        status=ImportBatch.Status.SUCCEEDED,
        files=[{"name": "a.csv"}],
        time_zones=[{"zone": "America/Mexico_City", "origin": "profile", "profile": "cdmx"}],
        constant_label="Robo",
    )

    with translation.override("es"):
        lines = result.lines()

    assert "times without an offset read in America/Mexico_City (profile cdmx)" in lines
    assert "every row has the label 'Robo' (--label)" in lines
    with translation.override("es"):
        assert translation.gettext("times without an offset read in %(zone)s (--timezone)") != (
            "times without an offset read in %(zone)s (--timezone)"
        )  # Spanish is there to leak: the check above is not vacuous


@pytest.mark.django_db
def test_the_timezone_option_wins_over_the_region_and_says_so(town, tmp_path):
    path = _write(tmp_path / "naive.csv", NAIVE_CSV)

    out = call(path, "--source", "test", "--id", "id", "--timezone", "America/Bogota")

    assert "times without an offset read in America/Bogota (--timezone)" in out
    assert ImportBatch.objects.get().report["time_zones"] == [
        {"zone": "America/Bogota", "origin": "option"}
    ]
    call(path, "--source", "test", "--id", "id", "--timezone", "UTC")
    assert Incident.objects.get().occurred_at == utc(2024, 3, 1, 10)


@pytest.mark.django_db
def test_a_profile_s_zone_wins_over_the_region(town, tmp_path):
    path = _write(
        tmp_path / "cdmx.csv",
        "fecha_hecho,hora_hecho,delito,latitud,longitud\n2022-01-10,12:00,ROBO,-12.095,-77.095\n",
    )

    out = call(path, "--source", "cdmx-fgj", "--profile", "cdmx")

    assert "times without an offset read in America/Mexico_City (profile cdmx)" in out
    assert Incident.objects.get().occurred_at == utc(2022, 1, 10, 18)  # CST, UTC-6


@pytest.mark.django_db
def test_rows_of_two_regions_are_read_each_in_its_own_zone(town, make_region, tmp_path):
    santiago = make_region("santiago-test", {"S1": ("Centro", box(-70.7, -33.5, -70.6, -33.4))})
    santiago.time_zone = "America/Santiago"
    santiago.save(update_fields=["time_zone"])
    path = _write(
        tmp_path / "two.csv",
        NAIVE_CSV
        + "N2,2024-03-01 10:00,ROBO,-33.45,-70.65\nN3,2024-03-01 11:00,ROBO,-33.45,-70.65\n",
    )

    out = call(path, "--source", "test", "--id", "id")

    times = dict(Incident.objects.values_list("external_id", "occurred_at"))
    assert times == {
        "N1": utc(2024, 3, 1, 15),
        "N2": utc(2024, 3, 1, 13),
        "N3": utc(2024, 3, 1, 14),
    }
    assert "America/Santiago, the time zone of region santiago-test (2 rows)" in out
    assert "America/Lima, the time zone of region testville (1 rows)" in out


@pytest.mark.django_db
def test_an_unknown_time_zone_is_refused_before_anything_is_read(town, tmp_path):
    path = _write(tmp_path / "naive.csv", NAIVE_CSV)

    message, _ = call_fails(path, "--source", "test", "--timezone", "Mars/Olympus")

    assert message == "unknown time zone 'Mars/Olympus' (--timezone); write it like America/Lima"
    assert not ImportBatch.objects.exists()


# --- single-offence files ------------------------------------------------------------------

SHOOTINGS_CSV = (
    "incident_key,boro,occur_date,murder,latitude,longitude\n"
    "191709964,BROOKLYN,2019-01-01,TRUE,-12.095,-77.095\n"
    "191739125,BROOKLYN,2019-01-01,FALSE,-12.095,-77.085\n"
)
SHOOTING_ARGS = ["--source", "nypd", "--id", "incident_key", "--date", "occur_date"]


@pytest.mark.django_db
def test_label_gives_every_row_of_a_single_offence_file_its_label(town, tmp_path):
    path = _write(tmp_path / "shootings.csv", SHOOTINGS_CSV)

    out = call(path, *SHOOTING_ARGS, "--label", "Shooting incident")

    assert "2 created" in out
    assert "every row has the label 'Shooting incident' (--label)" in out
    assert set(Incident.objects.values_list("label__label", "time_precision")) == {
        ("Shooting incident", "day")
    }
    assert ImportBatch.objects.get().options["columns"]["constant_label"] == "Shooting incident"


@pytest.mark.django_db
def test_label_and_a_category_column_are_refused_together(town, tmp_path):
    path = _write(tmp_path / "shootings.csv", SHOOTINGS_CSV)

    message, _ = call_fails(path, *SHOOTING_ARGS, "--label", "Shooting", "--category", "boro")

    assert message == (
        "--label gives every row the same label and --category reads each row's label from a "
        "column: give one or the other"
    )
    assert not Incident.objects.exists()


@pytest.mark.django_db
def test_label_wins_over_a_category_column_only_guessed_from_its_name(town, tmp_path):
    path = _write(
        tmp_path / "typed.csv",
        "id,date,type,lat,lon\nT1,2024-03-01,premise: street,-12.095,-77.095\n",
    )

    call(path, "--source", "test", "--id", "id", "--label", "Robbery")

    assert Incident.objects.get().label.label == "Robbery"


@pytest.mark.django_db
def test_a_blank_label_is_refused(town, tmp_path):
    path = _write(tmp_path / "shootings.csv", SHOOTINGS_CSV)

    message, _ = call_fails(path, *SHOOTING_ARGS, "--label", "  ")

    assert message == "--label must have 1 to 300 characters"


# --- the web form, the batch page and the API ---------------------------------------------


def _upload(text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("shootings.csv", text.encode(), content_type="text/csv")


WEB_OPTIONS = {"source": "nypd", "id": "incident_key", "date": "occur_date"}


@pytest.mark.django_db
def test_the_upload_form_takes_a_label_and_window_columns(planner_client, town):  # noqa: F811
    html = planner_client.get(reverse("incidents:import-new")).content.decode()
    for name in ("label", "date_end", "time_end"):
        assert f'name="{name}"' in html, name

    response = planner_client.post(
        reverse("incidents:import-new"),
        {**WEB_OPTIONS, "label": "Shooting incident", "files": _upload(SHOOTINGS_CSV)},
    )

    batch = ImportBatch.objects.get()
    assert response.status_code == 302 and batch.status == ImportBatch.Status.SUCCEEDED
    assert set(Incident.objects.values_list("label__label", flat=True)) == {"Shooting incident"}
    planner_client.cookies.load({"django_language": "en"})
    page = planner_client.get(response["Location"]).content.decode()
    assert (
        '<dd id="batch-time-zones">times without an offset read in America/Lima, the time '
        "zone of region testville (2 rows)</dd>" in page
    )


@pytest.mark.django_db
def test_the_upload_form_refuses_a_label_with_a_category_column(planner_client, town):  # noqa: F811
    planner_client.cookies.load({"django_language": "en"})
    response = planner_client.post(
        reverse("incidents:import-new"),
        {**WEB_OPTIONS, "label": "Shooting", "category": "boro", "files": _upload(SHOOTINGS_CSV)},
    )

    assert response.status_code == 200
    assert response.context["form"].errors["label"] == [
        "A label for every row and a category column do not go together: give one or the other."
    ]
    assert not ImportBatch.objects.exists()


@pytest.mark.django_db
def test_the_api_takes_a_label_and_a_window_and_reports_the_zone(planner_client, town):  # noqa: F811
    windowed = (
        "incident_key,occur_date,end_date,latitude,longitude\n"
        "1,2019-01-01 22:00,2019-01-02 06:00,-12.095,-77.095\n"
    )
    response = planner_client.post(
        reverse("import-batch-list"),
        {**WEB_OPTIONS, "date_end": "end_date", "label": "Burglary", "files": _upload(windowed)},
    )

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["options"]["columns"]["constant_label"] == "Burglary"
    assert body["report"]["time_zones"] == [
        {"zone": "America/Lima", "origin": "region", "region": "testville", "rows": 1}
    ]
    incident = Incident.objects.get()
    assert (incident.occurred_at, incident.occurred_until, incident.time_precision) == (
        utc(2019, 1, 2, 3),
        utc(2019, 1, 2, 11),
        "range",
    )

    refused = planner_client.post(
        reverse("import-batch-list"),
        {**WEB_OPTIONS, "label": "x", "category": "boro", "files": _upload(windowed)},
    )
    assert refused.status_code == 400 and "label" in refused.json()
