"""Property-based tests of the incident readers: whatever a file holds (blanks, NaN and
other missing-value spellings, mixed types, odd encodings and delimiters, quoted line
breaks, huge fields), reading it gives a report, every row either accepted or refused by
its number with a reason, or refuses the whole file with a message: never a traceback.

The readers run without the database (the row-level checks); a smaller property runs the
whole import service, dry, on the database. Examples are derandomized (the same on every
run, no example database) and few, so the file takes seconds.
"""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pandas as pd
import pytest
from django.test import override_settings
from hypothesis import HealthCheck, Phase, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from shapely.geometry import box

from incidents.services.bounds import IncidentFileError, inspect_csv
from incidents.services.imports import ImportRefused, import_incidents
from incidents.services.reading import (
    ChunkValidator,
    ColumnMapping,
    ReadOptions,
    csv_header,
    read_csv_chunks,
    read_vector_points,
)
from incidents.services.request import ImportRequest, resolve_columns

NOW = pd.Timestamp("2024-06-01T12:00:00Z")
ENCODINGS = ("utf-8", "utf-8-sig", "latin-1", "cp1252")
DELIMITERS = (",", ";", "\t", "|")
# Small, so that a huge field crosses the row bound in some examples and not in others.
MAX_ROW_BYTES = 20_000


def bounded(max_examples: int):
    return hypothesis_settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )


# --- cell values ---------------------------------------------------------------------------

MISSING = st.sampled_from(
    ["", " ", "NaN", "nan", "NA", "N/A", "NULL", "null", "None", "-", "inf", "-inf", "1e400"]
)
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(-200, 200).map(lambda v: f"{v:.6f}"),
    st.floats(-200, 200).map(lambda v: f"{v:.4f}".replace(".", ",")),  # decimal comma
    st.integers(-(10**30), 10**30).map(str),
    st.booleans().map(str),
)
DATES = st.datetimes(
    min_value=pd.Timestamp("1890-01-01").to_pydatetime(),
    max_value=pd.Timestamp("2030-12-31").to_pydatetime(),
).flatmap(
    lambda moment: st.sampled_from(
        [
            moment.strftime("%Y-%m-%d"),
            moment.strftime("%Y-%m-%dT%H:%M:%S"),
            moment.strftime("%Y-%m-%d %H:%M:%SZ"),
            moment.strftime("%Y-%m-%dT%H:%M:%S-05:00"),
            moment.strftime("%d/%m/%Y %H:%M"),
            moment.strftime("%d-%m-%Y"),
            moment.strftime("%Y/%m/%d"),
            moment.strftime("%m/%d/%Y"),  # month first: unreadable or read day first
            moment.strftime("%Y-%m"),
        ]
    )
)
TIMES = st.one_of(
    st.times().map(lambda t: t.strftime("%H:%M")),
    st.times().map(lambda t: t.strftime("%H:%M:%S:00")),  # the CDMX garbled form
    st.integers(0, 9999).map(str),
)


def texts(encoding: str):
    """Text the encoding can write, with the characters that trouble CSV readers."""
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    plain = st.text(st.characters(codec=codec, exclude_categories=["Cs"]), max_size=30)
    tricky = st.sampled_from(['"', '""', "\n", "\r\n", ",", ";", "\t", "|", "'", "\\", "#"])
    huge = st.integers(1_000, 40_000).map(lambda n: "x" * n)
    return st.one_of(plain, tricky, st.lists(st.one_of(plain, tricky)).map("".join), huge)


def cells(encoding: str):
    return st.one_of(MISSING, NUMBERS, DATES, TIMES, texts(encoding))


@st.composite
def csv_files(draw):
    """(bytes of a CSV file, its header, the number of data rows written)."""
    encoding = draw(st.sampled_from(ENCODINGS))
    delimiter = draw(st.sampled_from(DELIMITERS))
    with_id = draw(st.booleans())
    with_time = draw(st.booleans())
    with_end = draw(st.booleans())
    header = ["date", "category", "lat", "lon"]
    header += ["id"] * with_id + ["time"] * with_time + ["date_end"] * with_end
    header += draw(st.lists(st.sampled_from(["notes", "extra", "año"]), max_size=2, unique=True))

    def mostly(valid):  # a readable value three times in four, anything else otherwise
        return st.sampled_from([True, True, True, False]).flatmap(
            lambda readable: valid if readable else cells(encoding)
        )

    roles = {
        "date": mostly(DATES),
        "date_end": st.one_of(DATES, MISSING, cells(encoding)),
        "time": mostly(TIMES),
        "lat": mostly(st.floats(-13, -11).map(repr)),
        "lon": mostly(st.floats(-78, -76).map(repr)),
        "id": mostly(st.integers(0, 10**6).map(str)),
        "category": mostly(st.sampled_from(["ROBO", "Hurto agravado", "Daño"])),
    }
    row = st.fixed_dictionaries({name: roles.get(name, cells(encoding)) for name in header})
    rows = draw(st.lists(row, min_size=draw(st.sampled_from([0, 1, 1, 1])), max_size=12))
    buffer = io.StringIO(newline="")
    terminator = draw(st.sampled_from(["\n", "\r\n"]))
    # Python's writer quotes only the characters of its line terminator: with "\n", a lone
    # "\r" in a field would end the row for every reader, so quote all then.
    quoting = (
        csv.QUOTE_ALL
        if terminator == "\n"
        else draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    )
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, lineterminator=terminator)
    writer.writerow(header)
    for values in rows:
        writer.writerow([values[name] for name in header])
    return buffer.getvalue().encode(encoding), header, len(rows)


def read_all(path, columns: ColumnMapping, **options):
    """The reading half of an import, as _stage_file runs it: (good rows, refused, rows)."""
    layout = inspect_csv(path)
    header = csv_header(path, layout)
    mapping = resolve_columns(ImportRequest(paths=[], source="x", columns=columns), header, "f")
    validator = ChunkValidator(ReadOptions(columns=mapping, now=NOW, **options), 0, path.name)
    good, refused, rows = [], [], 0
    for frame, first_row, _ in read_csv_chunks(path, layout):
        chunk = validator.validate(frame, np.arange(first_row, first_row + len(frame)))
        good.append(chunk.good)
        refused.extend(chunk.refused)
        rows += chunk.rows
    return (pd.concat(good) if good else pd.DataFrame()), refused, rows


def check_report(good: pd.DataFrame, refused, rows: int) -> None:
    numbers = [r.row_number for r in refused] + good.get("row_no", pd.Series()).tolist()
    assert sorted(numbers) == list(range(2, 2 + rows))  # each row accounted for once
    for row in refused:
        assert isinstance(row.reason, str) and row.reason
    if len(good):
        assert good["lat"].between(-90, 90).all() and good["lon"].between(-180, 180).all()
        assert good["occurred_at"].notna().all()
        window = good["occurred_until"].notna()
        assert (good["occurred_until"][window] > good["occurred_at"][window]).all()
        assert good["external_id"].map(lambda v: isinstance(v, str) and v != "").all()
        precision = good["time_precision"]
        assert set(precision) <= {"exact", "day", "range"}
        assert (window == (precision != "exact")).all()


# --- CSV -----------------------------------------------------------------------------------


@override_settings(INCIDENT_IMPORT_MAX_ROW_BYTES=MAX_ROW_BYTES)
@bounded(max_examples=120)
@given(drawn=csv_files(), region_zones=st.booleans())
def test_any_csv_gives_a_report_or_a_refusal_never_a_traceback(
    tmp_path_factory, drawn, region_zones
):
    content, header, written = drawn
    path = tmp_path_factory.mktemp("csv") / "export.csv"
    path.write_bytes(content)
    columns = ColumnMapping(
        id="id" if "id" in header else None,
        time="time" if "time" in header else None,
        date_end="date_end" if "date_end" in header else None,
    )
    options = {}
    if region_zones:
        # Region 1 west of -77, region 2 east of it, nothing south of -12.5.
        options = {
            "locate": lambda lon, lat: (
                np.where(lat < -12.5, 0, np.where(lon < -77, 1, 2)),
                np.zeros(len(lon), dtype=np.int64),
                np.zeros(len(lon), dtype=np.int64),
            ),
            "region_zones": {1: "America/Lima", 2: "America/Bogota"},
            "timezone": "UTC",
        }
    try:
        good, refused, rows = read_all(path, columns, **options)
    except IncidentFileError as exc:
        assert str(exc)  # the whole file refused, with a message
        event(f"file refused: {str(exc).split(':')[1].split('(')[0].strip()[:40]}")
        return
    event(f"read: {'some' if len(good) else 'no'} rows accepted, {len(refused) > 0} refused")
    assert rows == written
    check_report(good, refused, rows)


@bounded(max_examples=40)
@given(
    blanks=st.lists(st.booleans(), min_size=1, max_size=30),
    spelling=st.sampled_from(["", "NaN", "nan", "NULL", " "]),
)
def test_blank_coordinates_without_an_id_column_are_refused_by_row(
    tmp_path_factory, blanks, spelling
):
    """The Cincinnati burglary shape (issue 12): no id column, some rows without
    coordinates. Each blank row is refused by its number; the others get derived ids."""
    path = tmp_path_factory.mktemp("blank") / "burglary.csv"
    lines = ["incident_no,offense_date,offense,longitude,latitude"]
    for n, blank in enumerate(blanks):
        where = f"{spelling},{spelling}" if blank else f"-77.0{n % 10},-12.0{n % 10}"
        lines.append(f"{n % 3},2017-05-25T00:00:00Z,BURGLARY,{where}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    columns = ColumnMapping(date="offense_date", category="offense")

    good, refused, rows = read_all(path, columns)

    check_report(good, refused, rows)
    assert [r.row_number for r in refused] == [n + 2 for n, b in enumerate(blanks) if b]
    expected = "missing coordinates" if spelling.strip() == "" else "coordinates are not numbers"
    assert all(r.reason.startswith(expected) for r in refused)
    assert good["external_id"].is_unique  # identical rows told apart by occurrence


# --- GeoJSON -------------------------------------------------------------------------------

JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    DATES,
)


@st.composite
def geojson_files(draw):
    features = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["point", "point", "point", "none", "line"]))
        if kind == "point":
            x = draw(st.one_of(st.floats(-78, -76), st.floats(-1e3, 1e3)))
            y = draw(st.one_of(st.floats(-13, -11), st.floats(-1e3, 1e3)))
            geometry = {"type": "Point", "coordinates": [x, y]}
        elif kind == "line":
            geometry = {"type": "LineString", "coordinates": [[-77, -12], [-77.1, -12.1]]}
        else:
            geometry = None
        properties = {
            name: draw(JSON_VALUES)
            for name in ("date", "category", "id", "time")
            if draw(st.booleans())
        }
        features.append({"type": "Feature", "geometry": geometry, "properties": properties})
    return {"type": "FeatureCollection", "features": features}


@pytest.mark.filterwarnings("ignore:Could not parse column", "ignore:Several features")
@bounded(max_examples=40)
@given(collection=geojson_files())
def test_any_geojson_of_mixed_types_gives_a_report_or_a_refusal(tmp_path_factory, collection):
    path = tmp_path_factory.mktemp("geojson") / "points.geojson"
    path.write_text(json.dumps(collection), encoding="utf-8")
    try:
        table, refused = read_vector_points(path, None)
        header = list(table.columns)
        mapping = resolve_columns(
            ImportRequest(paths=[], source="x", columns=ColumnMapping(lat="__lat", lon="__lon")),
            header,
            path.name,
        )
        validator = ChunkValidator(ReadOptions(columns=mapping, now=NOW), 0, path.name)
        chunk = validator.validate(table, table.index.to_numpy())
    except IncidentFileError as exc:
        assert str(exc)
        return
    features = len(collection["features"])
    numbers = [r.row_number for r in refused + chunk.refused] + chunk.good["row_no"].tolist()
    assert sorted(numbers) == list(range(1, features + 1))  # features count from 1
    assert all(r.reason for r in refused + chunk.refused)


# --- the whole import service, on the database --------------------------------------------


@pytest.fixture
def lima(make_region):
    region = make_region("lima-test", {"L1": ("Uno", box(-78, -13, -76, -11))})
    region.time_zone = "America/Lima"
    region.save(update_fields=["time_zone"])
    return region


@pytest.mark.django_db
@override_settings(INCIDENT_IMPORT_MAX_ROW_BYTES=MAX_ROW_BYTES)
@bounded(max_examples=25)
@given(drawn=csv_files(), skip_bad=st.booleans())
def test_the_import_service_reports_or_refuses_any_csv(lima, tmp_path_factory, drawn, skip_bad):
    content, header, written = drawn
    path = tmp_path_factory.mktemp("service") / "export.csv"
    path.write_bytes(content)
    request = ImportRequest(
        paths=[path],
        source="fuzz",
        columns=ColumnMapping(
            id="id" if "id" in header else None,
            time="time" if "time" in header else None,
            date_end="date_end" if "date_end" in header else None,
        ),
        skip_bad=skip_bad,
        dry_run=True,
    )
    try:
        result = import_incidents(request=request)
    except IncidentFileError as exc:
        assert str(exc)
        return
    except ImportRefused as exc:
        result = exc.result
        assert result.rows_refused > 0 and not skip_bad
    assert result.rows_read == written
    numbers = sorted(r.row_number for r in result.refused)
    assert len(numbers) == len(set(numbers)) and all(2 <= n <= written + 1 for n in numbers)
    assert result.lines()  # the report renders
    if result.rows_read - result.rows_refused:
        assert {z["zone"] for z in result.time_zones} == {"America/Lima"}
    assert not math.isnan(result.duration_s)


# --- what the properties found, kept as examples ------------------------------------------


def test_a_latin1_byte_windows_1252_leaves_undefined_is_read_not_a_traceback(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("date,category,lat,lon\n2023-01-05,Da\x8fño,-12.05,-77.05\n".encode("latin-1"))

    good, refused, rows = read_all(path, ColumnMapping())

    assert (rows, refused) == (1, [])
    assert good["label"].tolist() == ["Da\ufffdño"]


def test_a_huge_whole_number_property_is_kept_as_written(tmp_path):
    path = tmp_path / "huge.geojson"
    features = [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-77.0, -12.0]},
         "properties": {"id": value}}
        for value in (1.0, 1e300)
    ]  # fmt: skip
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))

    table, refused = read_vector_points(path, None)

    assert refused == []
    assert table["id"].tolist() == ["1.0", "1e+300"]
