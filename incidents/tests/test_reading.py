"""Reading incident files: encodings, delimiters, numbers, dates and times, derived ids.

These tests exercise ``incidents.services.reading`` directly, without the database.
"""

from __future__ import annotations

import pandas as pd
import pytest

from incidents.profiles import PROFILES
from incidents.services import bounds, reading
from incidents.services.bounds import IncidentFileError, sniff_csv
from incidents.services.reading import (
    ChunkValidator,
    ColumnMapping,
    ReadOptions,
    csv_header,
    read_csv_chunks,
    text_values,
)

NOW = pd.Timestamp("2024-06-01T12:00:00Z")
COLUMNS = ColumnMapping(
    id="id", date="date", time="time", category="category", lat="lat", lon="lon"
)


def _validate(rows: list[dict], *, columns=COLUMNS, **options):
    """Runs one chunk of text rows through the validator; rows are numbered from 2."""
    frame = pd.DataFrame(rows, dtype=str).fillna("")
    options.setdefault("now", NOW)
    validator = ChunkValidator(ReadOptions(columns=columns, **options), 0, "test.csv")
    return validator.validate(frame, pd.RangeIndex(2, 2 + len(frame)).to_numpy())


def _row(**values):
    row = {
        "id": "1",
        "date": "2023-01-05",
        "time": "10:30:00",
        "category": "ROBO",
        "lat": "-12.05",
        "lon": "-77.05",
    }
    row.update(values)
    return row


def _read_all(path):
    return pd.concat([chunk for chunk, _, _ in read_csv_chunks(path)])


# --- encodings and delimiters -------------------------------------------------------------


def test_utf8_with_bom_is_read_without_the_bom_in_the_first_column(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffdate,category\n2023-01-05,Daño\n".encode())

    assert sniff_csv(path) == ("utf-8-sig", ",")
    assert csv_header(path) == ["date", "category"]
    assert _read_all(path)["category"].tolist() == ["Daño"]


def test_windows_1252_is_detected_and_accents_survive(tmp_path):
    path = tmp_path / "cp1252.csv"
    path.write_bytes("fecha;delito\n2023-01-05;DAÑO EN PROPIEDAD AJENA\n".encode("cp1252"))

    assert sniff_csv(path) == ("cp1252", ";")
    assert _read_all(path)["delito"].tolist() == ["DAÑO EN PROPIEDAD AJENA"]


def test_windows_1252_byte_after_the_sniffed_sample_is_still_detected(tmp_path, monkeypatch):
    # The only accented byte sits beyond the sample: the whole file must be checked, or
    # the read would fail half-way through.
    monkeypatch.setattr(bounds, "_SAMPLE_BYTES", 64)
    path = tmp_path / "late_accent.csv"
    lines = ["date,category"] + ["2023-01-05,ROBO"] * 20 + ["2023-01-06,DAÑO"]
    path.write_bytes(("\n".join(lines) + "\n").encode("cp1252"))

    assert sniff_csv(path)[0] == "cp1252"
    assert _read_all(path)["category"].iloc[-1] == "DAÑO"


def test_semicolon_delimiter_with_decimal_commas(tmp_path):
    path = tmp_path / "semicolon.csv"
    path.write_text("fecha;latitud;longitud\n05/01/2023;-12,0464;-77,0428\n", encoding="utf-8")

    assert sniff_csv(path)[1] == ";"
    frame = _read_all(path)
    assert reading._parse_numbers(text_values(frame["latitud"])).tolist() == [-12.0464]
    assert reading._parse_numbers(text_values(frame["longitud"])).tolist() == [-77.0428]


def test_quoted_fields_with_newlines_keep_spreadsheet_row_numbers(tmp_path):
    path = tmp_path / "multiline.csv"
    path.write_text(
        'id,notes,date\n1,"first line\nsecond line",2023-01-05\n2,plain,2023-01-06\n',
        encoding="utf-8",
    )
    chunks = list(read_csv_chunks(path))

    assert len(chunks) == 1
    frame, first_row, _ = chunks[0]
    assert first_row == 2  # the header is row 1
    assert frame["notes"].tolist() == ["first line\nsecond line", "plain"]
    assert frame["id"].tolist() == ["1", "2"]


def test_header_names_are_stripped_like_the_chunk_columns(tmp_path):
    path = tmp_path / "spaces.csv"
    path.write_text(" date , category \n2023-01-05,ROBO\n", encoding="utf-8")

    assert csv_header(path) == ["date", "category"]
    assert list(_read_all(path).columns) == ["date", "category"]


def test_short_rows_read_as_empty_values(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("date,category,lat,lon\n2023-01-05,ROBO\n", encoding="utf-8")

    frame = _read_all(path)
    assert frame.iloc[0].tolist() == ["2023-01-05", "ROBO", "", ""]


def test_an_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("\n", encoding="utf-8")

    with pytest.raises(IncidentFileError, match="empty"):
        sniff_csv(path)


# --- coordinates --------------------------------------------------------------------------


def test_bad_coordinates_are_refused_with_their_reason():
    chunk = _validate(
        [
            _row(id="ok"),
            _row(id="zero", lat="0", lon="0"),
            _row(id="missing", lat="", lon=""),
            _row(id="text", lat="abc", lon="-77"),
            _row(id="range", lat="-95", lon="-77"),
        ]
    )
    reasons = {r.raw["id"]: (r.row_number, r.reason) for r in chunk.refused}

    assert chunk.good["external_id"].tolist() == ["ok"]
    assert reasons == {
        "zero": (3, "coordinates are 0,0 (location missing)"),
        "missing": (4, "missing coordinates"),
        "text": (5, "coordinates are not numbers: 'abc', '-77'"),
        "range": (6, "latitude -95.0 is out of range"),
    }


def test_projected_coordinates_need_a_crs():
    columns = ColumnMapping(date="date", category="category", x="X", y="Y")

    with pytest.raises(IncidentFileError, match="CRS cannot be guessed.*--crs EPSG"):
        ChunkValidator(ReadOptions(columns=columns), 0, "utm.csv")


def test_placeholder_locations_are_refused_with_their_description():
    boston = PROFILES["boston311"]
    chunk = _validate(
        [_row(id="a", lat="42.3594", lon="-71.0587"), _row(id="b", lat="42.35", lon="-71.06")],
        placeholders=boston.placeholders,
    )

    assert [(r.raw["id"], r.reason) for r in chunk.refused] == [
        ("a", "known placeholder location (Boston 311 default point (City Hall))")
    ]
    assert chunk.good["external_id"].tolist() == ["b"]


# --- dates and times ----------------------------------------------------------------------


def _when(chunk, column="occurred_at"):
    return [pd.Timestamp(v).tz_convert("UTC") if pd.notna(v) else None for v in chunk.good[column]]


def test_naive_times_are_localised_with_the_time_zone():
    chunk = _validate([_row(date="2022-01-10", time="13:30:00")], timezone="America/Mexico_City")

    assert _when(chunk) == [pd.Timestamp("2022-01-10T19:30:00Z")]
    assert chunk.good["time_precision"].tolist() == ["exact"]
    assert _when(chunk, "occurred_until") == [None]


def test_offset_times_keep_their_offset_and_mixed_offsets_are_normalised():
    chunk = _validate(
        [
            _row(id="z", date="2019-01-01T19:50:00Z", time=""),
            _row(id="minus5", date="2019-01-01T14:50:00-05:00", time=""),
        ],
        timezone="America/Lima",
    )

    assert chunk.refused == []
    assert _when(chunk) == [pd.Timestamp("2019-01-01T19:50:00Z")] * 2


def test_a_date_only_value_becomes_a_day_window_in_local_time():
    # 2022-11-06 is 25 hours long in New York: the window ends at the next local midnight.
    chunk = _validate([_row(date="2022-11-06", time="")], timezone="America/New_York")

    assert _when(chunk) == [pd.Timestamp("2022-11-06T04:00:00Z")]
    assert _when(chunk, "occurred_until") == [pd.Timestamp("2022-11-07T05:00:00Z")]
    assert chunk.good["time_precision"].tolist() == ["day"]


def test_day_first_dates_are_read():
    chunk = _validate([_row(date="05/01/2023", time="")], timezone="UTC")

    assert _when(chunk) == [pd.Timestamp("2023-01-05T00:00:00Z")]
    assert chunk.good["time_precision"].tolist() == ["day"]


def test_cdmx_time_in_the_date_field_wins_over_a_garbled_time_field():
    chunk = _validate(
        [_row(date="2022-01-10 12:00:00", time="12:00:00:00")], timezone="America/Mexico_City"
    )

    assert chunk.refused == []
    assert _when(chunk) == [pd.Timestamp("2022-01-10T18:00:00Z")]
    assert chunk.good["time_precision"].tolist() == ["exact"]


def test_a_garbled_time_is_named_in_the_reason():
    chunk = _validate([_row(date="2022-01-10", time="12:00:00:00")])

    assert [r.reason for r in chunk.refused] == ["unparsable date '2022-01-10 12:00:00:00'"]


def test_unparsable_missing_and_future_dates_are_refused():
    chunk = _validate(
        [
            _row(id="bad", date="2023-13-45", time=""),
            _row(id="missing", date="", time=""),
            _row(id="future", date="2024-06-02", time="08:00"),
        ]
    )

    assert [(r.raw["id"], r.reason) for r in chunk.refused] == [
        ("bad", "unparsable date '2023-13-45'"),
        ("missing", "missing date"),
        ("future", "date '2024-06-02 08:00' is in the future"),
    ]


def test_an_ambiguous_local_time_is_kept_not_refused():
    # 01:30 happens twice in New York on 2022-11-06; the first (daylight) one is taken.
    chunk = _validate([_row(date="2022-11-06", time="01:30")], timezone="America/New_York")

    assert chunk.refused == []
    assert _when(chunk) == [pd.Timestamp("2022-11-06T05:30:00Z")]


def test_month_only_dates_are_month_windows_in_local_time():
    columns = ColumnMapping(date="Month", lat="lat", lon="lon", constant_label="ASB")
    chunk = _validate(
        [
            {"Month": "2022-03", "lat": "53.76", "lon": "-2.46"},
            {"Month": "2022-07-01", "lat": "53.76", "lon": "-2.46"},
        ],
        columns=columns,
        timezone="Europe/London",
        month_only=True,
    )

    assert _when(chunk) == [pd.Timestamp("2022-03-01T00:00Z"), pd.Timestamp("2022-06-30T23:00Z")]
    # March ends at midnight of 1 April in London, which is already summer time.
    assert _when(chunk, "occurred_until") == [
        pd.Timestamp("2022-03-31T23:00Z"),
        pd.Timestamp("2022-07-31T23:00Z"),
    ]
    assert chunk.good["time_precision"].tolist() == ["month", "month"]
    assert chunk.good["label"].tolist() == ["ASB", "ASB"]


# --- ids ----------------------------------------------------------------------------------


def test_missing_and_overlong_ids_and_overlong_labels_are_refused():
    chunk = _validate([_row(id=""), _row(id="x" * 121), _row(id="2", category="L" * 301)])

    assert [r.reason for r in chunk.refused] == [
        "missing id in column 'id'",
        "id longer than 120 characters",
        "label longer than 300 characters",
    ]


def test_derived_ids_are_stable_and_tell_identical_rows_apart():
    columns = ColumnMapping(date="date", category="category", lat="lat", lon="lon")
    rows = [_row(), _row(), _row(category="OTRO")]
    first = _validate(rows, columns=columns).good["external_id"].tolist()
    second = _validate(rows, columns=columns).good["external_id"].tolist()

    assert first == second
    assert len(set(first)) == 3


def test_derived_ids_count_identical_rows_across_chunks(tmp_path, monkeypatch):
    # Identical rows in different chunks of one file still get different ids.
    monkeypatch.setattr(bounds, "CHUNK_ROWS", 2)
    path = tmp_path / "same.csv"
    path.write_text(
        "date,category,lat,lon\n" + "2023-01-05,ROBO,-12.05,-77.05\n" * 5, encoding="utf-8"
    )
    columns = ColumnMapping(date="date", category="category", lat="lat", lon="lon")
    validator = ChunkValidator(ReadOptions(columns=columns, now=NOW), 0, path.name)
    ids = []
    for frame, first_row, _ in read_csv_chunks(path):
        numbers = pd.RangeIndex(first_row, first_row + len(frame)).to_numpy()
        ids += validator.validate(frame, numbers).good["external_id"].tolist()

    assert len(ids) == 5
    assert len(set(ids)) == 5
