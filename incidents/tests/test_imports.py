"""The import service: all or nothing, idempotency, area assignment, labels, profiles.

Every input file is written in tmp_path by the test itself; the region is built with
``make_region`` from grid cells near Lima (0.01° ≈ 1.1 km).
"""

from __future__ import annotations

import csv
import json

import pandas as pd
import pytest
import shapely
from shapely.geometry import box

from incidents.models import (
    Category,
    ImportBatch,
    Incident,
    IncidentSource,
    RefusedRow,
    SourceLabel,
)
from incidents.profiles import PROFILES
from incidents.services.bounds import IncidentFileError
from incidents.services.imports import ImportRefused, import_incidents
from incidents.services.reading import ColumnMapping
from incidents.services.request import ImportRequest
from tests.geodata import grid_cell

pytestmark = pytest.mark.django_db

HEADER = ["id", "date", "time", "category", "lat", "lon"]
# Points of the test town (see the ``town`` fixture).
IN_N1 = (-12.095, -77.098)  # district D1, neighborhood N1
IN_D1 = (-12.095, -77.092)  # district D1, no neighborhood
IN_D2 = (-12.095, -77.085)  # district D2
NEAR = (-12.095, -77.078)  # ~220 m east of D2: outside every district, within tolerance
FAR = (-12.500, -77.500)  # ~50 km away: outside every region


@pytest.fixture
def town(make_region):
    """Two districts side by side and one neighborhood in the western half of D1."""
    return make_region(
        "testville",
        {"D1": ("Uno", grid_cell(0)), "D2": ("Dos", grid_cell(1))},
        {"N1": ("Norte", box(-77.10, -12.10, -77.095, -12.09))},
    )


def row(id, where=IN_D1, date="2023-01-05", time="10:30:00", category="ROBO"):
    lat, lon = where
    return [id, date, time, category, lat, lon]


def write_csv(path, rows, header=HEADER, **kwargs):
    with path.open("w", newline="", encoding=kwargs.pop("encoding", "utf-8")) as handle:
        writer = csv.writer(handle, **kwargs)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run(path, *, source="test", columns=None, paths=None, **options):
    columns = columns or ColumnMapping(id="id")
    request = ImportRequest(paths=paths or [path], source=source, columns=columns, **options)
    return import_incidents(request=request)


def refused_of(exc_info):
    return [(r.row_number, r.reason) for r in exc_info.value.result.refused]


@pytest.fixture(params=["row-by-row", "bulk"])
def load_mode(request, settings):
    """Runs a test both ways an import writes: keeping the indexes current row by row,
    and as a bulk load (indexes set aside, rebuilt before the commit)."""
    settings.INCIDENT_BULK_LOAD_MIN_ROWS = 1 if request.param == "bulk" else 10**9
    return request.param


# --- all or nothing -----------------------------------------------------------------------


def test_three_bad_rows_write_nothing_and_are_named(town, tmp_path):
    path = write_csv(
        tmp_path / "bad.csv",
        [
            row("1"),
            row("2", date="2023-02-30"),
            row("3", where=(0, 0)),
            row("4"),
            row("5", where=("", "")),
            row("6", category="NUEVO DELITO"),
        ],
    )
    labels, categories = SourceLabel.objects.count(), Category.objects.count()

    with pytest.raises(ImportRefused) as exc:
        run(path)

    assert refused_of(exc) == [
        (3, "unparsable date '2023-02-30 10:30:00'"),
        (4, "coordinates are 0,0 (location missing)"),
        (6, "missing coordinates"),
    ]
    assert Incident.objects.count() == 0
    # Labels and unclassified categories made on the way are rolled back too.
    assert (SourceLabel.objects.count(), Category.objects.count()) == (labels, categories)
    batch = ImportBatch.objects.get()
    assert batch.status == ImportBatch.Status.FAILED
    assert (batch.rows_read, batch.rows_refused, batch.rows_created) == (6, 3, 0)
    assert list(batch.refused_rows.values_list("row_number", flat=True)) == [3, 4, 6]
    result = exc.value.result
    assert "nothing was written" in "\n".join(result.lines())


def test_skip_bad_writes_the_good_rows_and_keeps_the_refused_ones(town, tmp_path, load_mode):
    path = write_csv(
        tmp_path / "bad.csv",
        [row("1"), row("2", date="yesterday"), row("3", where=(0, 0)), row("4", where=IN_D2)],
    )

    result = run(path, skip_bad=True)

    assert (result.rows_read, result.rows_created, result.rows_refused) == (4, 2, 2)
    assert set(Incident.objects.values_list("external_id", flat=True)) == {"1", "4"}
    batch = ImportBatch.objects.get(pk=result.batch_id)
    assert batch.status == ImportBatch.Status.SUCCEEDED
    assert list(RefusedRow.objects.filter(batch=batch).values_list("row_number", "reason")) == [
        (3, "unparsable date 'yesterday 10:30:00'"),
        (4, "coordinates are 0,0 (location missing)"),
    ]
    stored = RefusedRow.objects.get(batch=batch, row_number=3)
    assert stored.raw["id"] == "2"
    assert set(batch.report["timings_s"]) >= {"read_validate_copy", "insert", "commit"}


# --- idempotency --------------------------------------------------------------------------


def test_reimporting_the_same_file_changes_nothing_and_a_changed_row_is_updated(town, tmp_path):
    rows = [row(str(i), where=IN_D1 if i % 2 else IN_D2) for i in range(1, 11)]
    path = write_csv(tmp_path / "a.csv", rows)
    first = run(path)
    before = {i.external_id: (i.pk, i.batch_id) for i in Incident.objects.all()}

    again = run(path)

    assert (first.rows_created, first.rows_updated, first.rows_unchanged) == (10, 0, 0)
    assert (again.rows_created, again.rows_updated, again.rows_unchanged) == (0, 0, 10)
    # Unchanged rows keep their id and the batch that wrote them.
    assert {i.external_id: (i.pk, i.batch_id) for i in Incident.objects.all()} == before

    rows[2] = row("3", where=IN_D2, category="HURTO")
    changed = run(write_csv(tmp_path / "a.csv", rows))

    assert (changed.rows_created, changed.rows_updated, changed.rows_unchanged) == (0, 1, 9)
    incident = Incident.objects.get(external_id="3")
    assert incident.label.label == "HURTO"
    assert incident.district.code == "D2"
    assert incident.batch_id == changed.batch_id


# --- areas --------------------------------------------------------------------------------


def test_points_get_district_and_neighborhood(town, tmp_path):
    path = write_csv(tmp_path / "a.csv", [row("n1", IN_N1), row("d1", IN_D1), row("d2", IN_D2)])

    run(path)

    assigned = {
        i.external_id: (i.region.code, i.district.code, i.neighborhood and i.neighborhood.code)
        for i in Incident.objects.select_related("region", "district", "neighborhood")
    }
    assert assigned == {
        "n1": ("testville", "D1", "N1"),
        "d1": ("testville", "D1", None),
        "d2": ("testville", "D2", None),
    }


def test_outside_every_region_is_refused_and_near_a_region_is_kept_unassigned(town, tmp_path):
    path = write_csv(tmp_path / "a.csv", [row("in", IN_D1), row("near", NEAR), row("far", FAR)])

    with pytest.raises(ImportRefused) as exc:
        run(path)
    assert refused_of(exc) == [(4, "outside every loaded region")]

    result = run(path, skip_bad=True)

    assert (result.rows_created, result.rows_unassigned, result.rows_refused) == (2, 1, 1)
    near = Incident.objects.get(external_id="near")
    assert (near.region_id, near.district_id, near.neighborhood_id) == (town.pk, None, None)
    assert ImportBatch.objects.get(pk=result.batch_id).rows_unassigned == 1


def test_a_region_without_districts_assigns_by_its_neighborhoods(make_region, tmp_path):
    region = make_region("barrios", neighborhoods={"B1": ("Barrio", grid_cell(0))})
    path = write_csv(tmp_path / "a.csv", [row("1", IN_D1)])

    result = run(path)

    incident = Incident.objects.get()
    assert (incident.region_id, incident.district_id) == (region.pk, None)
    assert incident.neighborhood.code == "B1"
    assert result.rows_unassigned == 1  # no district


# --- ids ----------------------------------------------------------------------------------


def test_a_duplicate_id_refuses_the_later_row_naming_the_first(town, tmp_path):
    first = write_csv(tmp_path / "first.csv", [row("A"), row("B"), row("A", where=IN_D2)])
    second = write_csv(tmp_path / "second.csv", [row("B", where=IN_D2)])

    with pytest.raises(ImportRefused) as exc:
        run(None, paths=[first, second])

    assert [(r.file_name, r.row_number, r.reason) for r in exc.value.result.refused] == [
        ("first.csv", 4, "duplicate id 'A' (first at first.csv row 2)"),
        ("second.csv", 2, "duplicate id 'B' (first at first.csv row 3)"),
    ]


def test_without_an_id_column_derived_ids_are_stable(town, tmp_path):
    rows = [row("", IN_D1)[1:], row("", IN_D1)[1:], row("", IN_D2)[1:]]  # two identical
    path = write_csv(tmp_path / "noid.csv", rows, header=HEADER[1:])

    first = run(path, columns=ColumnMapping())
    ids = set(Incident.objects.values_list("external_id", flat=True))
    again = run(path, columns=ColumnMapping())

    assert first.rows_created == 3
    assert len(ids) == 3
    assert (again.rows_created, again.rows_updated, again.rows_unchanged) == (0, 0, 3)
    assert set(Incident.objects.values_list("external_id", flat=True)) == ids


# --- encodings, delimiters, quoting, dates -------------------------------------------------


def test_utf8_bom_file_imports(town, tmp_path):
    path = tmp_path / "bom.csv"
    write_csv(path, [row("1", category="Daño")], encoding="utf-8-sig")

    run(path)

    assert Incident.objects.get().label.label == "Daño"


def test_windows_1252_semicolons_and_decimal_commas_import(town, tmp_path):
    path = tmp_path / "excel.csv"
    lat, lon = IN_N1
    text = (
        "id;fecha;hora;delito;latitud;longitud\n"
        f"1;05/01/2023;10:30;DAÑO EN PROPIEDAD AJENA;{str(lat).replace('.', ',')};"
        f"{str(lon).replace('.', ',')}\n"
    )
    path.write_bytes(text.encode("cp1252"))

    run(path, columns=ColumnMapping(id="id"), timezone="America/Lima")

    incident = Incident.objects.get()
    assert incident.label.label == "DAÑO EN PROPIEDAD AJENA"
    assert (round(incident.point.y, 7), round(incident.point.x, 7)) == IN_N1
    assert incident.neighborhood.code == "N1"
    assert incident.occurred_at == pd.Timestamp("2023-01-05T15:30:00Z")  # Lima is UTC-5


def test_quoted_newlines_keep_row_numbers_and_future_dates_are_refused(town, tmp_path):
    header = [*HEADER, "notes"]
    rows = [
        [*row("1"), "line one\nline two"],
        [*row("2"), 'a "quoted" note, with a comma'],
        [*row("3", date="2999-01-01"), ""],
    ]
    path = write_csv(tmp_path / "notes.csv", rows, header=header)

    with pytest.raises(ImportRefused) as exc:
        run(path)

    assert refused_of(exc) == [(4, "date '2999-01-01 10:30:00' is in the future")]
    result = run(path, skip_bad=True)
    assert result.rows_created == 2


def test_a_date_only_value_is_a_day_window(town, tmp_path):
    path = write_csv(tmp_path / "a.csv", [row("1", date="2023-01-05", time="")])

    run(path, timezone="America/Lima")

    incident = Incident.objects.get()
    assert incident.time_precision == "day"
    assert incident.occurred_at == pd.Timestamp("2023-01-05T05:00:00Z")
    assert incident.occurred_until == pd.Timestamp("2023-01-06T05:00:00Z")


# --- labels -------------------------------------------------------------------------------


def _cdmx_file(path, rows):
    header = ["row_id", "fecha_hecho", "hora_hecho", "delito", "latitud", "longitud"]
    return write_csv(path, rows, header=header)


def test_profile_rules_map_labels_and_unknown_labels_become_unclassified(town, tmp_path):
    path = _cdmx_file(
        tmp_path / "cdmx.csv",
        [
            row("1", category="VIOLENCIA FAMILIAR"),
            row("2", category="ROBO A CASA HABITACION SIN VIOLENCIA"),
            row("3", category="DELITO INVENTADO"),
            row("4", category="DELITO INVENTADO"),
        ],
    )

    result = import_incidents(
        request=ImportRequest(paths=[path], source="cdmx-fgj", profile=PROFILES["cdmx"])
    )

    assert result.rows_created == 4 and result.rows_refused == 0
    family = Incident.objects.get(external_id="1").category
    assert (family.code, family.sensitive, family.publishable) == ("domestic-violence", True, False)
    assert Incident.objects.get(external_id="2").category.code == "burglary"
    invented = Incident.objects.get(external_id="3").category
    assert invented.unclassified and not invented.publishable
    assert "DELITO INVENTADO" in invented.name_es
    assert result.unmapped_labels == {"DELITO INVENTADO": 2}
    assert "unclassified label (map it to a category): 'DELITO INVENTADO' × 2" in result.lines()
    source = IncidentSource.objects.get(name="cdmx-fgj")
    assert source.licence == PROFILES["cdmx"].licence


def test_labels_with_the_same_slug_get_categories_of_their_own(town, tmp_path):
    path = write_csv(tmp_path / "a.csv", [row("1", category="Daño"), row("2", category="DANO")])

    result = run(path)

    first, second = (Incident.objects.get(external_id=i).category for i in ("1", "2"))
    assert first != second
    assert first.unclassified and second.unclassified
    assert result.unmapped_labels == {"Daño": 1, "DANO": 1}


def test_naive_times_use_the_profile_time_zone(town, tmp_path):
    path = _cdmx_file(tmp_path / "cdmx.csv", [row("1", date="2022-01-10", time="13:30:00")])

    import_incidents(
        request=ImportRequest(paths=[path], source="cdmx-fgj", profile=PROFILES["cdmx"])
    )

    assert Incident.objects.get().occurred_at == pd.Timestamp("2022-01-10T19:30:00Z")


def test_cdmx_garbled_time_field_reads_the_time_of_the_date_field(town, tmp_path):
    path = _cdmx_file(
        tmp_path / "cdmx.csv", [row("1", date="2022-01-10 12:00:00", time="12:00:00:00")]
    )

    import_incidents(
        request=ImportRequest(paths=[path], source="cdmx-fgj", profile=PROFILES["cdmx"])
    )

    incident = Incident.objects.get()
    assert incident.occurred_at == pd.Timestamp("2022-01-10T18:00:00Z")
    assert incident.time_precision == "exact"


# --- profiles -----------------------------------------------------------------------------


def test_police_uk_months_are_month_windows_with_snapped_locations(town, tmp_path):
    path = write_csv(
        tmp_path / "asb.csv",
        [["2022-03", IN_D1[1], IN_D1[0], "On or near X"], ["2022-07", IN_D2[1], IN_D2[0], "Y"]],
        header=["Month", "Longitude", "Latitude", "Location"],
    )

    result = import_incidents(
        request=ImportRequest(paths=[path], source="police-uk", profile=PROFILES["policeuk"])
    )

    assert result.rows_created == 2
    march, july = Incident.objects.order_by("occurred_at")
    # Europe/London: March starts in winter time and ends in summer time.
    assert march.occurred_at == pd.Timestamp("2022-03-01T00:00:00Z")
    assert march.occurred_until == pd.Timestamp("2022-03-31T23:00:00Z")
    assert july.occurred_at == pd.Timestamp("2022-06-30T23:00:00Z")
    assert july.occurred_until == pd.Timestamp("2022-07-31T23:00:00Z")
    assert {i.time_precision for i in (march, july)} == {"month"}
    assert {i.location_quality for i in (march, july)} == {"snapped"}
    assert march.category.code == "antisocial-behaviour"


def test_boston_placeholder_rows_are_refused_with_the_reason(make_region, tmp_path):
    make_region("boston", {"BOS": ("Boston", box(-71.2, 42.2, -70.9, 42.4))})
    header = ["CASE_ENQUIRY_ID", "OPEN_DT", "TYPE", "LATITUDE", "LONGITUDE"]
    rows = [
        ["1", "2015-05-15T14:40:00", "Graffiti Removal", "42.3594", "-71.0587"],
        ["2", "2015-05-15T14:41:00", "Graffiti Removal", "42.3554", "-71.0638"],
    ]
    path = write_csv(tmp_path / "boston.csv", rows, header=header)

    result = import_incidents(
        request=ImportRequest(
            paths=[path], source="boston-311", profile=PROFILES["boston311"], skip_bad=True
        )
    )

    assert [(r.row_number, r.reason) for r in result.refused] == [
        (2, "known placeholder location (Boston 311 default point (City Hall))")
    ]
    incident = Incident.objects.get()
    assert (incident.external_id, incident.category.code) == ("2", "graffiti")
    assert incident.occurred_at == pd.Timestamp("2015-05-15T18:41:00Z")  # EDT


# --- vector files -------------------------------------------------------------------------


def test_geojson_points_import_and_other_geometries_are_refused(town, tmp_path):
    def feature(id, geometry):
        return {
            "type": "Feature",
            "properties": {"id": id, "date": "2023-01-05T10:30:00", "category": "ROBO"},
            "geometry": shapely.geometry.mapping(geometry),
        }

    lat, lon = IN_D2
    path = tmp_path / "points.geojson"
    features = [
        feature(1, shapely.Point(lon, lat)),
        feature(2, shapely.LineString([(lon, lat), (lon + 0.001, lat)])),
        feature(3, shapely.Point(IN_N1[1], IN_N1[0])),
        feature(4, box(lon, lat, lon + 0.001, lat + 0.001)),
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))

    with pytest.raises(ImportRefused) as exc:
        run(path)
    assert refused_of(exc) == [
        (2, "geometry is a LineString, not a point"),
        (4, "geometry is a Polygon, not a point"),
    ]
    assert "refused: points.geojson feature 2: geometry is a LineString, not a point" in (
        exc.value.result.lines()
    )

    result = run(path, skip_bad=True)

    assert (result.rows_read, result.rows_created, result.rows_refused) == (4, 2, 2)
    assigned = dict(Incident.objects.values_list("external_id", "district__code"))
    assert assigned == {"1": "D2", "3": "D1"}


# --- dry run and file errors ----------------------------------------------------------------


def test_dry_run_writes_nothing_but_reports_what_would_be_created(town, tmp_path):
    path = write_csv(tmp_path / "a.csv", [row("1"), row("2", where=IN_D2, category="NUEVO")])
    counts = [
        m.objects.count() for m in (IncidentSource, SourceLabel, Category, ImportBatch, Incident)
    ]

    result = run(path, dry_run=True)

    assert (result.rows_created, result.rows_updated, result.batch_id) == (2, 0, None)
    assert result.status == "dry-run"
    assert result.unmapped_labels == {"ROBO": 1, "NUEVO": 1}
    assert "dry run: nothing was written" in result.lines()
    assert [
        m.objects.count() for m in (IncidentSource, SourceLabel, Category, ImportBatch, Incident)
    ] == counts


def test_an_unusable_file_is_refused_before_anything_is_read(town, tmp_path):
    path = write_csv(tmp_path / "a.csv", [["x", "y"]], header=["foo", "bar"])

    with pytest.raises(IncidentFileError, match="no latitude/longitude columns"):
        run(path, columns=ColumnMapping())
    with pytest.raises(IncidentFileError, match="no such file"):
        run(tmp_path / "missing.csv")
    assert Incident.objects.count() == 0


def test_large_imports_are_inserted_in_slices_and_all_counted(town, tmp_path, monkeypatch):
    from incidents.services import staging

    monkeypatch.setattr(staging, "INSERT_SLICE_ROWS", 300)
    rows = [row(str(i), where=IN_D1 if i % 3 else IN_D2) for i in range(2000)]
    path = write_csv(tmp_path / "many.csv", rows)

    first = run(path)
    rows[1500] = row("1500", where=IN_N1)
    again = run(write_csv(path, rows))

    assert first.rows_created == Incident.objects.count() == 2000
    assert (again.rows_created, again.rows_updated, again.rows_unchanged) == (0, 1, 1999)
    assert Incident.objects.get(external_id="1500").neighborhood.code == "N1"


def test_a_point_on_a_shared_border_goes_to_the_lowest_district_id(make_region, tmp_path):
    from django.db import connection

    region = make_region(
        "border",
        {
            "W": ("West", box(-77.10, -12.10, -77.09, -12.09)),
            "E": ("East", box(-77.09, -12.10, -77.08, -12.09)),
        },
    )
    west, east = (region.district_set.get(code=c) for c in ("W", "E"))
    path = write_csv(tmp_path / "a.csv", [row("edge", where=(-12.095, -77.09))])

    run(path)

    incident = Incident.objects.get()
    assert incident.district_id == min(west.pk, east.pk)
    # The same answer PostGIS gives for the subdivided pieces.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(area_id) FROM neighborhoods_areapart "
            "WHERE kind = 'district' AND ST_Intersects(geom, %s::geometry)",
            [incident.point.ewkt],
        )
        assert cursor.fetchone()[0] == incident.district_id


# --- chunks --------------------------------------------------------------------------------


@pytest.fixture
def small_chunks(monkeypatch):
    """Three rows per chunk, so one import is written chunk after chunk while the next is
    read."""
    from incidents.services import bounds

    monkeypatch.setattr(bounds, "CHUNK_ROWS", 3)


def test_duplicates_across_chunks_and_files_name_the_first_row(
    town, tmp_path, small_chunks, load_mode
):
    first = write_csv(
        tmp_path / "first.csv",
        # chunk rows 2-4 | 5-7 | 8-9
        [row("A"), row("B"), row("A"), row("C", where=NEAR), row("B"), row("D"), row("C")]
        + [row("E"), row("A")],
    )
    second = write_csv(tmp_path / "second.csv", [row("C"), row("F"), row("E")])

    result = run(None, paths=[first, second], skip_bad=True)

    assert [(r.file_name, r.row_number, r.reason) for r in result.refused] == [
        ("first.csv", 4, "duplicate id 'A' (first at first.csv row 2)"),
        ("first.csv", 6, "duplicate id 'B' (first at first.csv row 3)"),
        ("first.csv", 8, "duplicate id 'C' (first at first.csv row 5)"),
        ("first.csv", 10, "duplicate id 'A' (first at first.csv row 2)"),
        ("second.csv", 2, "duplicate id 'C' (first at first.csv row 5)"),
        ("second.csv", 4, "duplicate id 'E' (first at first.csv row 9)"),
    ]
    assert (result.rows_read, result.rows_created, result.rows_unassigned) == (12, 6, 1)
    assert sorted(Incident.objects.values_list("external_id", flat=True)) == list("ABCDEF")
    # The first row of C is the one written: the one outside every district.
    assert Incident.objects.get(external_id="C").district_id is None

    again = run(None, paths=[first, second], skip_bad=True)
    assert (again.rows_created, again.rows_updated, again.rows_unchanged) == (0, 0, 6)
    assert again.rows_refused == 6


def test_a_row_refused_in_a_late_chunk_leaves_the_early_chunks_unwritten(
    town, tmp_path, small_chunks
):
    rows = [row(str(i)) for i in range(8)] + [row("far", where=FAR)]
    path = write_csv(tmp_path / "late.csv", rows)

    with pytest.raises(ImportRefused) as exc:
        run(path)

    assert refused_of(exc) == [(10, "outside every loaded region")]
    assert Incident.objects.count() == 0
    assert ImportBatch.objects.get().status == ImportBatch.Status.FAILED


def test_a_database_error_while_writing_a_chunk_rolls_everything_back(
    town, tmp_path, small_chunks, monkeypatch
):
    from django.db import DatabaseError

    from incidents.services import staging

    real_insert = staging._insert_staged
    calls = []

    def insert_then_fail(cursor, staged, params, **options):
        calls.append(staged)
        if len(calls) == 2:
            cursor.execute("SELECT 1 / 0")
        return real_insert(cursor, staged, params, **options)

    monkeypatch.setattr(staging, "_insert_staged", insert_then_fail)
    path = write_csv(tmp_path / "a.csv", [row(str(i)) for i in range(9)])

    with pytest.raises(DatabaseError, match="division by zero"):
        run(path)

    assert Incident.objects.count() == 0
    assert ImportBatch.objects.get().status == ImportBatch.Status.FAILED
    # The import's connection is usable again.
    assert run(path).rows_created == 9


# --- bulk loads ----------------------------------------------------------------------------


def _index_definitions() -> set[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'incidents_incident'")
        return {definition for (definition,) in cursor.fetchall()}


def _stored_rows(source: str) -> list[tuple]:
    return [
        (point.coords, *values)
        for point, *values in Incident.objects.filter(source__name=source)
        .order_by("external_id")
        .values_list(
            "point", "external_id", "occurred_at", "occurred_until", "time_precision",
            "label__label", "region__code", "district__code", "neighborhood__code",
            "location_quality",
        )
    ]  # fmt: skip


@pytest.fixture
def bulk_from_one_row(settings):
    """Any import bringing more rows than the table holds loads in bulk."""
    settings.INCIDENT_BULK_LOAD_MIN_ROWS = 1


def test_small_imports_keep_the_indexes_row_by_row(town, tmp_path):
    result = run(write_csv(tmp_path / "a.csv", [row("1"), row("2")]))

    assert result.indexes_rebuilt == []
    assert "index_rebuild" not in result.timings


def test_a_bulk_load_rebuilds_the_same_indexes_and_stores_what_an_upsert_stores(
    town, tmp_path, small_chunks, bulk_from_one_row, settings
):
    indexes_before = _index_definitions()
    lock_timeout_before = _lock_timeout()
    rows = [row(str(i), where=(IN_N1, IN_D1, IN_D2, NEAR)[i % 4]) for i in range(10)]
    path = write_csv(tmp_path / "first-load.csv", rows)

    bulk = run(path, source="bulk")

    assert (bulk.rows_created, bulk.rows_updated, bulk.rows_refused) == (10, 0, 0)
    assert sorted(bulk.indexes_rebuilt) == sorted(
        ["incident_point_gist", "incident_occurred_brin", "incident_region_time"]
    )
    assert "index_rebuild" in bulk.timings
    assert _index_definitions() == indexes_before
    assert _lock_timeout() == lock_timeout_before
    assert ImportBatch.objects.get(pk=bulk.batch_id).report["indexes_rebuilt"] == (
        bulk.indexes_rebuilt
    )
    assert any("indexes were built once after loading" in line for line in bulk.lines())

    # The same file row by row, into another source: the very same incidents.
    settings.INCIDENT_BULK_LOAD_MIN_ROWS = 10**9
    row_by_row = run(path, source="row-by-row")
    assert row_by_row.indexes_rebuilt == []
    assert _stored_rows("bulk") == _stored_rows("row-by-row")
    assert len(_stored_rows("bulk")) == 10


def test_a_bulk_load_over_a_source_already_stored_still_upserts(town, tmp_path, bulk_from_one_row):
    run(write_csv(tmp_path / "january.csv", [row("1"), row("2"), row("3")]))
    grown = [row("1"), row("2", where=IN_D2), row("3")] + [row(str(i)) for i in range(4, 12)]

    result = run(write_csv(tmp_path / "year.csv", grown))

    assert result.indexes_rebuilt  # 11 rows into a table of 3
    assert (result.rows_created, result.rows_updated, result.rows_unchanged) == (8, 1, 2)
    assert Incident.objects.count() == 11
    assert Incident.objects.get(external_id="2").district.code == "D2"

    # Now the table holds as many rows as the file: row by row, and nothing changes.
    again = run(write_csv(tmp_path / "year.csv", grown))
    assert again.indexes_rebuilt == []
    assert (again.rows_created, again.rows_updated, again.rows_unchanged) == (0, 0, 11)


@pytest.fixture
def bulk_decisions(monkeypatch):
    """What each import decided about setting the indexes aside (None: it did not)."""
    from incidents.services import staging

    decisions = []
    real = staging._set_indexes_aside

    def recorded(*args, **kwargs):
        decisions.append(real(*args, **kwargs))
        return decisions[-1]

    monkeypatch.setattr(staging, "_set_indexes_aside", recorded)
    return decisions


def test_a_refused_bulk_load_writes_nothing_and_keeps_the_indexes(
    town, tmp_path, small_chunks, bulk_from_one_row, bulk_decisions
):
    indexes_before = _index_definitions()
    # The refused row is in chunk 5: the reader is at most two chunks ahead of the writer,
    # so the first chunks are written, in bulk, before the refusal is known.
    rows = [row(str(i)) for i in range(12)] + [row("far", where=FAR)]

    with pytest.raises(ImportRefused):
        run(write_csv(tmp_path / "late.csv", rows))

    assert len(bulk_decisions) == 1 and bulk_decisions[0].indexes  # it did go in bulk
    assert Incident.objects.count() == 0
    assert _index_definitions() == indexes_before


def test_a_dry_run_never_takes_the_table_for_a_bulk_load(town, tmp_path, bulk_from_one_row):
    result = run(write_csv(tmp_path / "a.csv", [row("1"), row("2")]), dry_run=True)

    assert result.rows_created == 2
    assert result.indexes_rebuilt == []
    assert Incident.objects.count() == 0


def test_keep_indexes_and_the_setting_turn_bulk_loads_off(
    town, tmp_path, bulk_from_one_row, settings
):
    kept = run(write_csv(tmp_path / "a.csv", [row("1"), row("2")]), keep_indexes=True)
    assert (kept.rows_created, kept.indexes_rebuilt) == (2, [])
    assert ImportBatch.objects.get(pk=kept.batch_id).options["keep_indexes"] is True

    settings.INCIDENT_BULK_LOAD = False
    off = run(write_csv(tmp_path / "b.csv", [row(str(i)) for i in range(3, 9)]))
    assert (off.rows_created, off.indexes_rebuilt) == (6, [])


def test_an_index_that_would_not_come_back_as_it_was_keeps_the_import_row_by_row(
    town, tmp_path, bulk_from_one_row
):
    from django.db import connection

    with connection.cursor() as cursor:  # pg_get_indexdef does not carry comments
        cursor.execute("COMMENT ON INDEX incident_point_gist IS 'tuned by the DBA'")
    indexes_before = _index_definitions()

    result = run(write_csv(tmp_path / "a.csv", [row("1"), row("2")]))

    assert (result.rows_created, result.indexes_rebuilt) == (2, [])
    assert _index_definitions() == indexes_before
    with connection.cursor() as cursor:
        cursor.execute("SELECT obj_description('incident_point_gist'::regclass, 'pg_class')")
        assert cursor.fetchone()[0] == "tuned by the DBA"


def _lock_timeout() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        return cursor.fetchone()[0]


def test_a_bulk_load_that_cannot_lock_the_table_at_once_goes_row_by_row(
    town, tmp_path, bulk_from_one_row, settings, bulk_decisions, monkeypatch
):
    import psycopg2
    from django.db import connection

    from incidents.services import staging

    # How far each decision got: the count taken without the lock, then (only once the
    # lock is granted) the count taken under it. Seen from the code, not from a clock, so
    # a busy machine cannot change the answer.
    counts = []
    real_table_holds = staging._table_holds

    def counted(cursor, rows):
        counts.append(rows)
        return real_table_holds(cursor, rows)

    monkeypatch.setattr(staging, "_table_holds", counted)
    settings.INCIDENT_BULK_LOAD_LOCK_TIMEOUT_MS = 200
    lock_timeout_before = _lock_timeout()
    indexes_before = _index_definitions()
    reader = psycopg2.connect(**connection.get_connection_params())
    try:
        # A planner's long read of incidents, in its own transaction.
        reader.cursor().execute("SELECT count(*) FROM incidents_incident")
        result = run(write_csv(tmp_path / "a.csv", [row("1"), row("2"), row("3")]))
    finally:
        reader.rollback()
        reader.close()

    assert bulk_decisions == [None]
    assert len(counts) == 1  # it asked for the lock after the first count, and gave up
    assert result.indexes_rebuilt == []
    assert result.rows_created == 3
    assert _index_definitions() == indexes_before
    assert _lock_timeout() == lock_timeout_before

    # With the reader gone, the next import of more rows than the table holds goes in bulk.
    # A generous timeout: on a busy machine autovacuum may hold the table for a moment, and
    # it steps aside for a waiting lock by itself.
    settings.INCIDENT_BULK_LOAD_LOCK_TIMEOUT_MS = 60_000
    rows = [row(str(i)) for i in range(4, 10)]
    assert run(write_csv(tmp_path / "b.csv", rows)).indexes_rebuilt
    assert len(counts) == 3  # both counts this time: the lock was granted


def test_the_expected_size_of_an_import_is_estimated_from_its_bytes():
    from incidents.services.staging import _expected_rows

    assert _expected_rows(100_000, 7_000_000, 70_000_000) == 1_000_000
    assert _expected_rows(5, 0, 100) == 500  # nothing read yet: no division by zero


def test_rows_per_byte_of_one_file_are_applied_only_to_later_files_of_its_kind(tmp_path):
    from incidents.services.imports import _later_bytes_of_same_kind

    files = []
    for name, size in [("a.csv", 100), ("b.geojson", 5000), ("c.txt", 300), ("d.gpkg", 70)]:
        files.append(tmp_path / name)
        files[-1].write_bytes(b"x" * size)

    assert _later_bytes_of_same_kind(files) == [300, 70, 0, 0]
