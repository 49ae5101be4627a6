"""``manage.py import_incidents``: exit status, messages, projected coordinates, dry run."""

from __future__ import annotations

import csv
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from pyproj import Transformer
from shapely.geometry import box

from incidents.models import ImportBatch, Incident, RefusedRow
from tests.geodata import grid_cell

pytestmark = pytest.mark.django_db

HEADER = ["id", "date", "time", "category", "lat", "lon"]
UTM_10N = "EPSG:32610"


@pytest.fixture
def town(make_region):
    return make_region("testville", {"D1": ("Uno", grid_cell(0)), "D2": ("Dos", grid_cell(1))})


@pytest.fixture
def vancouver(make_region):
    """Two districts either side of lon -123.1, around lat 49.26."""
    return make_region(
        "vancouver",
        {
            "WEST": ("West", box(-123.20, 49.20, -123.10, 49.32)),
            "EAST": ("East", box(-123.10, 49.20, -123.00, 49.32)),
        },
    )


def write_csv(path, rows, header=HEADER):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def call(*args):
    stdout, stderr = StringIO(), StringIO()
    call_command("import_incidents", *map(str, args), stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def call_fails(*args):
    stdout, stderr = StringIO(), StringIO()
    with pytest.raises(CommandError) as exc:
        call_command("import_incidents", *map(str, args), stdout=stdout, stderr=stderr)
    return str(exc.value), stdout.getvalue(), stderr.getvalue()


def _bad_file(tmp_path):
    return write_csv(
        tmp_path / "bad.csv",
        [
            ["1", "2023-01-05", "10:00", "ROBO", "-12.095", "-77.095"],
            ["2", "2023-31-01", "10:00", "ROBO", "-12.095", "-77.095"],
            ["3", "2023-01-05", "10:00", "ROBO", "0", "0"],
            ["4", "2023-01-05", "10:00", "ROBO", "", ""],
            ["5", "2023-01-05", "11:00", "HURTO", "-12.095", "-77.085"],
        ],
    )


def test_bad_rows_exit_non_zero_write_nothing_and_are_named(town, tmp_path):
    message, out, err = call_fails(_bad_file(tmp_path), "--source", "test", "--id", "id")

    assert message == "3 row(s) refused; nothing was written"
    assert "refused: bad.csv row 3: unparsable date '2023-31-01 10:00'" in err
    assert "refused: bad.csv row 4: coordinates are 0,0 (location missing)" in err
    assert "refused: bad.csv row 5: missing coordinates" in err
    assert "nothing was written" in err
    assert "5 rows read from 1 file(s)" in err
    assert out == ""
    assert Incident.objects.count() == 0
    assert ImportBatch.objects.get().status == ImportBatch.Status.FAILED


def test_skip_bad_writes_the_good_rows_and_stores_the_refused_ones(town, tmp_path):
    out, err = call(_bad_file(tmp_path), "--source", "test", "--id", "id", "--skip-bad")

    assert "2 created, 0 updated, 0 unchanged (written), 3 refused" in out
    assert "refused: bad.csv row 3: unparsable date" in out
    batch = ImportBatch.objects.get()
    assert f"import batch #{batch.pk}" in out
    assert (batch.status, batch.rows_created, batch.rows_refused) == ("succeeded", 2, 3)
    assert list(RefusedRow.objects.filter(batch=batch).values_list("row_number", flat=True)) == [
        3,
        4,
        5,
    ]
    assert sorted(Incident.objects.values_list("external_id", flat=True)) == ["1", "5"]

    out, _ = call(_bad_file(tmp_path), "--source", "test", "--id", "id", "--skip-bad")
    assert "0 created, 0 updated, 2 unchanged (written), 3 refused" in out


def test_dry_run_reports_what_would_be_written(town, tmp_path):
    path = _bad_file(tmp_path)

    out, _ = call(path, "--source", "test", "--id", "id", "--skip-bad", "--dry-run")

    assert "2 created, 0 updated, 0 unchanged (would be written), 3 refused" in out
    assert "dry run: nothing was written" in out
    assert Incident.objects.count() == ImportBatch.objects.count() == 0


def test_a_first_load_says_it_built_the_indexes_once_and_keep_indexes_prevents_it(
    town, tmp_path, settings
):
    settings.INCIDENT_BULK_LOAD_MIN_ROWS = 1
    good = [["1", "2023-01-05", "10:00", "ROBO", "-12.095", "-77.095"]]
    kept, _ = call(write_csv(tmp_path / "a.csv", good), "--source", "t", "--id", "id",
                   "--keep-indexes")  # fmt: skip
    assert "1 created" in kept and "built once after loading" not in kept

    more = [[str(i), "2023-01-05", "10:00", "ROBO", "-12.095", "-77.095"] for i in range(2, 6)]
    bulk, _ = call(write_csv(tmp_path / "b.csv", more), "--source", "t", "--id", "id")
    assert "4 created" in bulk
    assert "its indexes were built once after loading instead of row by row" in bulk
    assert "incident_point_gist" in bulk


def _vancouver_rows():
    """Vancouver open-data style: TYPE, HUNDRED_BLOCK, NEIGHBOURHOOD, X/Y in UTM 10N."""
    to_utm = Transformer.from_crs("EPSG:4326", UTM_10N, always_xy=True)
    places = [
        ("Theft from Vehicle", "10XX ROBSON ST", "West End", -123.125, 49.285),
        ("Mischief", "3XX E HASTINGS ST", "Strathcona", -123.098, 49.281),
        ("Break and Enter Commercial", "21XX W 4TH AVE", "Kitsilano", -123.157, 49.268),
        ("Theft of Bicycle", "5XX KINGSWAY", "Mount Pleasant", -123.083, 49.262),
    ]
    rows = []
    for number, (kind, block, hood, lon, lat) in enumerate(places, start=1):
        x, y = to_utm.transform(lon, lat)
        rows.append([f"V{number}", kind, f"2023-03-0{number} 14:15", block, hood, x, y])
    header = ["ID", "TYPE", "DATE", "HUNDRED_BLOCK", "NEIGHBOURHOOD", "X", "Y"]
    return header, [[*r[:5], f"{r[5]:.3f}", f"{r[6]:.3f}"] for r in rows]


def test_projected_xy_with_crs_imports_at_the_transformed_points(vancouver, tmp_path):
    header, rows = _vancouver_rows()
    path = write_csv(tmp_path / "vancouver.csv", rows, header=header)
    args = ["--source", "vpd", "--id", "ID", "--category", "TYPE", "--date", "DATE"]

    out, _ = call(
        path, *args, "--x", "X", "--y", "Y", "--crs", UTM_10N, "--timezone", "America/Vancouver"
    )

    assert "4 created" in out
    to_lonlat = Transformer.from_crs(UTM_10N, "EPSG:4326", always_xy=True)
    for external_id, *_, x, y in rows:
        truth = to_lonlat.transform(float(x), float(y))
        incident = Incident.objects.get(external_id=external_id)
        assert incident.point.x == pytest.approx(truth[0], abs=1e-6)
        assert incident.point.y == pytest.approx(truth[1], abs=1e-6)
    districts = dict(Incident.objects.values_list("external_id", "district__code"))
    assert districts == {"V1": "WEST", "V2": "EAST", "V3": "WEST", "V4": "EAST"}


def test_projected_xy_without_crs_is_refused_saying_the_crs_is_needed(vancouver, tmp_path):
    header, rows = _vancouver_rows()
    path = write_csv(tmp_path / "vancouver.csv", rows, header=header)
    args = ["--source", "vpd", "--id", "ID", "--category", "TYPE", "--date", "DATE"]

    message, _, _ = call_fails(path, *args, "--x", "X", "--y", "Y")
    assert "CRS cannot be guessed" in message and "--crs EPSG:" in message

    message, _, _ = call_fails(path, *args)
    assert "no latitude/longitude columns" in message
    assert "use --x/--y with --crs EPSG:XXXX" in message
    assert Incident.objects.count() == 0


def test_unknown_column_and_profile_are_command_errors(town, tmp_path):
    path = _bad_file(tmp_path)

    message, _, _ = call_fails(path, "--source", "test", "--id", "nope")
    assert "column 'nope' (--id) not found" in message
    with pytest.raises(CommandError, match="invalid choice"):
        call(path, "--source", "test", "--profile", "nope")
