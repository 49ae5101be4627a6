"""Bounds on what an incident file may make the import allocate: columns per row, bytes
per row, property names of a GeoJSON. They are measured by streaming the file in blocks,
before pandas or GDAL build anything, and a file that breaks one is refused by row number
from the reading service, the command, the upload page and the API alike.

Every file is written in tmp_path by the test itself.
"""

from __future__ import annotations

import io
import json
import random
from io import StringIO

import geopandas as gpd
import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import translation
from shapely.geometry import Point

from accounts.models import Role
from incidents.models import ImportBatch, Incident
from incidents.services import batches, bounds, reading
from incidents.services.bounds import CsvLayout, IncidentFileError, check_upload, inspect_csv
from incidents.services.imports import import_incidents
from incidents.services.reading import (
    ColumnMapping,
    csv_header,
    read_csv_chunks,
    read_vector_points,
)
from incidents.services.request import ImportRequest
from tests.geodata import grid_cell

WIDE_COLUMNS = 200_000
WIDE_EN = f"wide.csv: row 1 has {WIDE_COLUMNS:,} columns; at most 500 are accepted."
# Django writes Spanish thousands with a non-breaking space.
WIDE_ES = "wide.csv: la fila 1 tiene 200\xa0000 columnas; se aceptan como máximo 500."
GOOD_ROW = "1,2024-03-01 10:00,ROBO,-12.095,-77.095"


def wide_header(columns: int = WIDE_COLUMNS) -> str:
    """A header of ``columns`` names of a few bytes each (1.4 MB for 200,000), then a row."""
    return ",".join(f"c{n}" for n in range(columns)) + "\n" + "," * (columns - 1) + "\n"


@pytest.fixture
def wide_csv(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text(wide_header(), encoding="utf-8")
    return path


@pytest.fixture
def no_pandas(monkeypatch):
    """Fails the test if pandas is asked to read a CSV: the bounds come before it."""

    def refuse(*args, **kwargs):
        raise AssertionError("pandas read the file before its bounds were checked")

    monkeypatch.setattr(reading.pd, "read_csv", refuse)


def refusal(call) -> str:
    with pytest.raises(IncidentFileError) as exc:
        call()
    return str(exc.value)


# --- the reading service ---------------------------------------------------------------------


def test_a_wide_csv_is_refused_before_pandas_reads_it(wide_csv, no_pandas):
    with translation.override("en"):
        assert refusal(lambda: inspect_csv(wide_csv)) == WIDE_EN
        assert refusal(lambda: csv_header(wide_csv)) == WIDE_EN
        assert refusal(lambda: next(read_csv_chunks(wide_csv))) == WIDE_EN
    with translation.override("es"):
        assert refusal(lambda: inspect_csv(wide_csv)) == WIDE_ES


def test_the_column_bound_is_a_setting_and_names_the_first_row_over_it(tmp_path, settings):
    settings.INCIDENT_IMPORT_MAX_COLUMNS = 5
    path = tmp_path / "rows.csv"
    # Row 3 has six columns once the quoted comma and line break are left inside their field.
    path.write_text('id,date,category,lat,lon\n1,"a, b\nc",x,1,2\n1,2,3,4,5,6\n', encoding="utf-8")
    with translation.override("en"):
        assert refusal(lambda: inspect_csv(path)) == (
            "rows.csv: row 3 has 6 columns; at most 5 are accepted."
        )
    settings.INCIDENT_IMPORT_MAX_COLUMNS = 6
    assert inspect_csv(path).columns == 6


def test_a_long_row_is_refused_with_its_number(tmp_path, no_pandas):
    path = tmp_path / "long.csv"
    path.write_text(
        "id,date,category\n1,2024-03-01,ROBO\n2,2024-03-01," + "x" * 70_000 + "\n3,a,b\n",
        encoding="utf-8",
    )
    with translation.override("en"):
        assert refusal(lambda: inspect_csv(path)) == (
            "long.csv: row 3 is longer than 65,536 bytes."
        )
    with translation.override("es"):
        assert refusal(lambda: inspect_csv(path)) == (
            "long.csv: la fila 3 ocupa más de 65\xa0536 bytes."
        )


def test_a_quote_left_open_is_named_as_the_likely_cause(tmp_path, settings):
    settings.INCIDENT_IMPORT_MAX_ROW_BYTES = 100
    path = tmp_path / "open.csv"
    path.write_text('id,notes\n1,"never closed\n' + "2,plain\n" * 50, encoding="utf-8")
    with translation.override("en"):
        message = refusal(lambda: inspect_csv(path))
    assert message.startswith("open.csv: row 2 is longer than 100 bytes; a quoted value")
    assert "closing quote missing" in message


def test_quoted_delimiters_and_line_breaks_stay_inside_their_row(tmp_path, settings):
    settings.INCIDENT_IMPORT_MAX_COLUMNS = 3
    path = tmp_path / "quoted.csv"
    notes = '"' + ",\n" * 1000 + 'a ""quoted"" word"'  # 1,000 commas and line breaks
    path.write_text(f"id,notes,date\n1,{notes},2023-01-05\n2,plain,2023-01-06\n", "utf-8")

    layout = inspect_csv(path)

    assert (layout.columns, layout.longest_row) == (3, len(f"1,{notes},2023-01-05"))
    frame = pd.concat([chunk for chunk, _, _ in read_csv_chunks(path, layout)])
    assert frame["id"].tolist() == ["1", "2"]


def test_a_long_row_of_spaces_is_a_blank_line_as_for_pandas(tmp_path, settings):
    settings.INCIDENT_IMPORT_MAX_ROW_BYTES = 100
    path = tmp_path / "blank.csv"
    path.write_text("id,date\n" + " " * 500 + "\n\r\n1,2023-01-05\n", encoding="utf-8")
    assert inspect_csv(path).longest_row == len("1,2023-01-05")
    assert pd.concat([c for c, _, _ in read_csv_chunks(path)])["id"].tolist() == ["1"]


def test_chunks_are_sized_by_cells_and_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(bounds, "CHUNK_CELLS", 100)
    path = tmp_path / "ten.csv"
    header = ",".join(f"c{n}" for n in range(10))
    rows = "".join(f"{n},1,2,3,4,5,6,7,8,9\n" for n in range(25))
    path.write_text(header + "\n" + rows, encoding="utf-8")

    chunks = [(len(chunk), first) for chunk, first, _ in read_csv_chunks(path)]

    assert chunks == [(10, 2), (10, 12), (5, 22)]  # 100 cells of ten columns per chunk
    assert CsvLayout("utf-8", ",", 10, 1_000).chunk_rows == 10
    monkeypatch.setattr(bounds, "CHUNK_BYTES", 5_000)
    assert CsvLayout("utf-8", ",", 1, 1_000).chunk_rows == 5  # rows of up to 1,000 bytes


# The C parser's states (pandas/_libs/src/parser/tokenizer.c) for the options the import
# uses, one byte at a time: (bytes, columns) of each row.
def _rows_as_pandas_splits_them(data: bytes, delimiter: int) -> list[tuple[int, int]]:
    rows, state, size, columns, solid = [], "start", 0, 1, False

    def end():
        nonlocal size, columns, solid
        if size and solid:
            rows.append((size, columns))
        size, columns, solid = 0, 1, False

    for byte in data:
        solid |= byte not in (0x20, 0x0A, 0x0D) and (byte != 0x09 or delimiter == 0x09)
        if state == "quoted":
            size += 1
            state = "quote in quoted" if byte == 0x22 else "quoted"
        elif byte in (0x0A, 0x0D):
            end()
            state = "start"
        elif byte == delimiter:
            size, columns, state = size + 1, columns + 1, "start"
        elif state == "quote in quoted" and byte == 0x22:
            size, state = size + 1, "quoted"
        elif byte == 0x22 and state == "start":
            size, state = size + 1, "quoted"
        else:
            size, state = size + 1, "field"
    end()
    return rows


def test_rows_are_measured_as_pandas_splits_them_whatever_the_blocks(monkeypatch, settings):
    settings.INCIDENT_IMPORT_MAX_COLUMNS = settings.INCIDENT_IMPORT_MAX_ROW_BYTES = 10**9
    pieces = [b'"', b'"', b",", b";", b"\n", b"\r", b"a", b" ", b"\t"]
    rng = random.Random(20240601)
    for _ in range(3000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        delimiter = rng.choice([",", ";", "\t"])
        monkeypatch.setattr(bounds, "_SCAN_BLOCK_BYTES", rng.randint(1, 9))
        rows = bounds._CsvRows("x.csv", delimiter)
        seen = []
        ended = rows._ended

        def record(sizes, delimiters, filled, ended=ended, seen=seen):
            columns = (delimiters[filled] + 1).tolist()
            seen.extend(zip(sizes[filled].tolist(), columns, strict=True))
            ended(sizes, delimiters, filled)

        rows._ended = record
        for block in bounds._split([data]):
            rows.feed(block)
        rows.finish()
        assert seen == _rows_as_pandas_splits_them(data, ord(delimiter)), (data, delimiter)


@pytest.mark.parametrize(
    "text",
    [
        'id,notes\n1,"a ""b"" c"\n2,"x\ny"\n',  # doubled quotes, a line break in quotes
        'id,notes\n1,5" pipe\n2,plain\n',  # a quote inside a field is a character
        "id,notes\r\n1,a\r\n\r\n   \r\n2,b\r\n",  # CRLF, a blank line, a line of spaces
        'id,notes,more\n1,"closed"after,x\n',  # text after a closing quote
    ],
)
def test_the_measures_agree_with_pandas(text, settings):
    settings.INCIDENT_IMPORT_MAX_COLUMNS = 10**9
    rows = bounds._CsvRows("x.csv", ",")
    rows.feed(text.encode())
    rows.finish()
    frame = pd.read_csv(io.StringIO(text), header=None, dtype=str, keep_default_na=False)
    assert (rows.rows, rows.widest) == frame.shape


# --- GeoJSON and GeoPackage --------------------------------------------------------------


def _feature_collection(properties_of_each: list[dict]) -> str:
    return json.dumps(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [-77.095, -12.095]},
                    "properties": properties,
                }
                for properties in properties_of_each
            ],
        }
    )


def test_a_geojson_with_too_many_properties_is_refused_before_gdal(tmp_path, monkeypatch):
    import pyogrio

    def refuse(*args, **kwargs):
        raise AssertionError("GDAL read the file before its bounds were checked")

    monkeypatch.setattr(pyogrio, "read_info", refuse)
    one = tmp_path / "one.geojson"  # one feature of 200,000 properties
    one.write_text(_feature_collection([{f"p{n}": n for n in range(WIDE_COLUMNS)}]))
    spread = tmp_path / "spread.geojson"  # 600 features of 400 properties, all different
    spread.write_text(
        _feature_collection([{f"p{f}_{n}": 1 for n in range(400)} for f in range(600)])
    )
    with translation.override("en"):
        for path in (one, spread):
            assert refusal(lambda path=path: read_vector_points(path, None)) == (
                f"{path.name} has more than 500 different property names; at most 500 are accepted."
            )


def test_property_names_are_counted_once_whatever_the_blocks(tmp_path, monkeypatch):
    """Names repeated in every feature, cut by block ends, escaped or spaced, count once."""
    names = ["id", 'fecha "hecho"', "dir\\", "a: b", "ñandú", ""]
    features = [{name: f"{name}{n}" for name in names} for n in range(30)]
    texts = [
        _feature_collection(features),
        json.dumps(json.loads(_feature_collection(features)), indent=2, ensure_ascii=False),
        _feature_collection(features).replace('":', '" :'),
    ]
    expected = len({*names, "type", "features", "geometry", "coordinates", "properties"})
    for text in texts:
        for block in (1, 2, 3, 7, 64, 1 << 18):
            monkeypatch.setattr(bounds, "_SCAN_BLOCK_BYTES", block)
            counted = bounds._JsonNames("x.geojson", 1000)
            for part in bounds._split([text.encode()]):
                counted.feed(part)
            assert len(counted.names) == expected, (block, text[:80])


def test_a_geojson_within_the_bound_is_read(tmp_path):
    path = tmp_path / "points.geojson"
    path.write_text(_feature_collection([{"id": "A1", "fecha": "2024-03-01"}] * 3))
    table, refused = read_vector_points(path, None)
    assert (len(table), refused) == (3, [])


def test_a_geopackage_with_too_many_columns_is_refused(tmp_path, settings):
    path = tmp_path / "points.gpkg"
    frame = gpd.GeoDataFrame(
        {f"c{n}": ["x"] for n in range(6)}, geometry=[Point(-77.095, -12.095)], crs=4326
    )
    frame.to_file(path, driver="GPKG")
    settings.INCIDENT_IMPORT_MAX_COLUMNS = 5
    with translation.override("en"):
        assert refusal(lambda: read_vector_points(path, None)) == (
            "points.gpkg has 6 columns; at most 5 are accepted."
        )
    settings.INCIDENT_IMPORT_MAX_COLUMNS = 6
    assert len(read_vector_points(path, None)[0]) == 1


def test_an_upload_is_checked_in_blocks_before_it_is_saved():
    wide = SimpleUploadedFile("wide.csv", wide_header().encode())
    with translation.override("en"):
        assert refusal(lambda: check_upload(wide)) == WIDE_EN
    assert wide.tell() == 0  # rewound for whoever reads it next
    names = _feature_collection([{f"p{n}": n for n in range(1000)}])
    with translation.override("en"):
        assert "more than 500 different property names" in refusal(
            lambda: check_upload(SimpleUploadedFile("wide.geojson", names.encode()))
        )
    check_upload(SimpleUploadedFile("good.csv", f"id,date,category,lat,lon\n{GOOD_ROW}\n".encode()))


# --- the import: service, command, upload page, API -----------------------------------------


@pytest.fixture
def town(make_region):
    return make_region("testville", {"D1": ("Uno", grid_cell(0)), "D2": ("Dos", grid_cell(1))})


@pytest.mark.django_db
def test_the_service_refuses_a_wide_csv_and_writes_nothing(town, wide_csv, no_pandas):
    request = ImportRequest(paths=[wide_csv], source="test", columns=ColumnMapping())
    with translation.override("en"):
        assert refusal(lambda: import_incidents(request=request)) == WIDE_EN
    assert not Incident.objects.exists()
    batch = ImportBatch.objects.get()
    assert batch.status == ImportBatch.Status.FAILED
    assert batch.report["error"] == WIDE_EN


@pytest.mark.django_db
def test_the_command_refuses_a_wide_csv_exit_non_zero_in_spanish(town, wide_csv, no_pandas):
    # From a shell no language is active: the command speaks LANGUAGE_CODE, Spanish.
    with translation.override("es"), pytest.raises(CommandError) as exc:  # exit status 1
        call_command(
            "import_incidents", wide_csv, "--source", "test", stdout=StringIO(), stderr=StringIO()
        )
    assert str(exc.value) == WIDE_ES
    assert not Incident.objects.exists()
    assert ImportBatch.objects.get().status == ImportBatch.Status.FAILED


OPTIONS = {"source": "test-src", "id": "id", "date": "date", "category": "category"}


@pytest.fixture
def planner_client(client, django_user_model, settings, tmp_path):
    from django.contrib.auth.models import Group

    settings.INCIDENT_UPLOAD_ROOT = str(tmp_path / "uploads")
    user = django_user_model.objects.create_user("planner", password="x")
    user.groups.add(Group.objects.get(name=Role.PLANNER))
    client.force_login(user)
    return client


def _uploads_left(settings) -> list:
    from pathlib import Path

    folder = Path(settings.INCIDENT_UPLOAD_ROOT) / batches.UPLOAD_FOLDER
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.django_db
def test_the_upload_page_refuses_a_wide_csv_and_saves_nothing(planner_client, town, settings):
    upload = SimpleUploadedFile("wide.csv", wide_header().encode(), content_type="text/csv")
    response = planner_client.post(
        reverse("incidents:import-new"), {**OPTIONS, "files": upload}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 200
    assert response.context["form"].errors["files"] == [WIDE_EN]
    assert WIDE_EN in response.content.decode()
    assert not ImportBatch.objects.exists()
    assert _uploads_left(settings) == []


@pytest.mark.django_db
def test_an_api_upload_of_a_wide_csv_fails_its_batch_with_the_message(
    planner_client, town, settings
):
    upload = SimpleUploadedFile("wide.csv", wide_header().encode(), content_type="text/csv")
    response = planner_client.post(
        reverse("import-batch-list"), {**OPTIONS, "files": upload}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 202, response.content
    batch = ImportBatch.objects.get()
    assert batch.status == ImportBatch.Status.FAILED
    assert batch.report["error"] == WIDE_EN
    assert not Incident.objects.exists()
    assert _uploads_left(settings) == []
