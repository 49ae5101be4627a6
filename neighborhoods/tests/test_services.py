"""neighborhoods.services: boundary imports (upsert by code, all or nothing)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from shapely.geometry import Point, box

from neighborhoods.models import BoundarySource, District, Neighborhood, Region
from neighborhoods.services import BoundaryImportError, SourceInfo, import_boundaries
from tests.geodata import grid_cell

pytestmark = pytest.mark.django_db

LIMA = (-77.10, -12.10)
SANTIAGO = (-70.70, -33.50)
CDMX = (-99.20, 19.40)


def _districts(n=3, origin=LIMA, names=None):
    names = names or {}
    return [
        {
            "code": f"D{i}",
            "name": names.get(f"D{i}", f"District {i}"),
            "geometry": grid_cell(i, origin=origin),
        }
        for i in range(n)
    ]


def _import(path, **kwargs):
    kwargs.setdefault("region_code", "lima")
    kwargs.setdefault("level", "district")
    kwargs.setdefault("code_field", "code")
    kwargs.setdefault("name_field", "name")
    return import_boundaries(path=path, **kwargs)


def _writes(queries) -> list[str]:
    return [
        q["sql"]
        for q in queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]


@pytest.mark.parametrize(
    ("origin", "srid"), [(LIMA, 32718), (SANTIAGO, 32719), (CDMX, 32614)], ids=str
)
def test_import_creates_region_with_utm_srid_of_the_data(write_geojson, origin, srid):
    path = write_geojson(_districts(3, origin=origin))

    report = _import(path, region_code="city", region_name="The City")

    assert report.ok and report.written
    assert report.region_created and report.metric_srid == srid
    assert sorted(report.created) == ["D0", "D1", "D2"]
    region = Region.objects.get(code="city")
    assert (region.name, region.metric_srid, region.synthetic) == ("The City", srid, False)
    assert District.objects.filter(region=region).count() == 3
    assert any("created with metric CRS EPSG:" + str(srid) in line for line in report.lines())


def test_region_name_defaults_to_its_code(write_geojson):
    _import(write_geojson(_districts(1)))
    assert Region.objects.get(code="lima").name == "lima"


def test_second_identical_run_changes_nothing(write_geojson):
    path = write_geojson(_districts(4))
    _import(path)
    before = dict(District.objects.values_list("code", "updated_at"))
    region_geom = Region.objects.get(code="lima").geom

    with CaptureQueriesContext(connection) as queries:
        report = _import(path)

    assert report.ok and not report.region_created
    assert report.created == [] and report.updated == []
    assert sorted(report.unchanged) == ["D0", "D1", "D2", "D3"]
    assert report.summary().endswith("0 created, 0 updated, 4 unchanged, 0 repaired, 0 refused")
    assert _writes(queries.captured_queries) == []
    assert dict(District.objects.values_list("code", "updated_at")) == before
    assert Region.objects.get(code="lima").geom.equals_exact(region_geom, 0)


def test_changed_name_is_updated(write_geojson):
    _import(write_geojson(_districts(3)))
    before = dict(District.objects.values_list("code", "updated_at"))

    report = _import(write_geojson(_districts(3, names={"D1": "Renamed"}), name="v2.geojson"))

    assert report.updated == ["D1"]
    assert sorted(report.unchanged) == ["D0", "D2"]
    assert report.created == []
    assert District.objects.get(code="D1").name == "Renamed"
    after = dict(District.objects.values_list("code", "updated_at"))
    assert after["D0"] == before["D0"] and after["D2"] == before["D2"]


def test_updated_row_gets_a_new_updated_at(write_geojson):
    _import(write_geojson(_districts(2)))
    before = dict(District.objects.values_list("code", "updated_at"))

    report = _import(write_geojson(_districts(2, names={"D1": "Renamed"}), name="v2.geojson"))

    assert report.updated == ["D1"]
    after = dict(District.objects.values_list("code", "updated_at"))
    # updated_at (auto_now) says when the row last changed, also when a loader changed it.
    assert after["D1"] > before["D1"]
    assert after["D0"] == before["D0"]


def test_changed_geometry_is_updated_and_region_geometry_refreshed(write_geojson):
    _import(write_geojson(_districts(2)))
    old_area = Region.objects.get(code="lima").geom.area

    records = _districts(2)
    records[1]["geometry"] = grid_cell(1).union(grid_cell(1, 1))  # D1 grows northwards
    report = _import(write_geojson(records, name="v2.geojson"))

    assert report.updated == ["D1"] and report.unchanged == ["D0"]
    region = Region.objects.get(code="lima")
    assert region.geom.area == pytest.approx(old_area * 1.5)
    assert region.geom.covers(District.objects.get(code="D1").geom)


def test_region_geometry_covers_its_districts(write_geojson):
    records = _districts(3)
    records.append({"code": "far", "name": "Far", "geometry": grid_cell(10, 5)})
    _import(write_geojson(records))

    region = Region.objects.get(code="lima")
    districts = list(District.objects.filter(region=region))
    assert region.geom.geom_type == "MultiPolygon" and region.geom.valid
    for district in districts:
        assert region.geom.covers(district.geom), district.code
    assert region.geom.area == pytest.approx(sum(d.geom.area for d in districts))
    # Three adjacent cells merge into one part; the far one is a second part.
    assert region.geom.num_geom == 2


def test_region_name_is_updated_when_given(write_geojson):
    path = write_geojson(_districts(1))
    _import(path, region_name="Lima")
    _import(path, region_name="Lima Metropolitana")
    assert Region.objects.get(code="lima").name == "Lima Metropolitana"


def test_dry_run_writes_nothing(write_geojson):
    report = _import(write_geojson(_districts(3)), dry_run=True)

    assert report.ok and not report.written
    assert sorted(report.created) == ["D0", "D1", "D2"]
    assert report.region_created and report.metric_srid == 32718
    lines = report.lines()
    assert lines[0].endswith("3 created, 0 updated, 0 unchanged, 0 repaired, 0 refused")
    assert lines[-1] == "dry run: nothing was written"
    assert (
        "region lima would be created with metric CRS EPSG:32718 (the UTM zone of its centre)"
        in lines
    )
    assert "time zone America/Lima, from the region's location" in lines
    assert not Region.objects.exists() and not District.objects.exists()


def test_dry_run_on_an_existing_region_changes_nothing(write_geojson):
    _import(write_geojson(_districts(2)))
    before = list(District.objects.values_list("code", "name", "updated_at"))

    report = _import(
        write_geojson(_districts(3, names={"D0": "New name"}), name="v2.geojson"), dry_run=True
    )

    assert report.created == ["D2"] and report.updated == ["D0"]
    assert list(District.objects.values_list("code", "name", "updated_at")) == before


def test_one_null_geometry_means_nothing_is_written(write_geojson):
    records = _districts(4)
    records[2]["geometry"] = None

    report = _import(write_geojson(records))

    assert not report.ok and not report.written
    assert [(p.feature, p.reason) for p in report.refused] == [(3, "geometry is null")]
    assert "feature 3 (code=D2, name=District 2): geometry is null" in str(report.refused[0])
    assert report.lines()[-1] == "nothing was written: fix the refused features and run again"
    assert not Region.objects.exists() and not District.objects.exists()


def test_refused_feature_leaves_an_existing_region_untouched(write_geojson):
    _import(write_geojson(_districts(2)))
    before = list(District.objects.values_list("code", "name", "updated_at"))

    records = _districts(3, names={"D0": "Changed"})
    records[2]["geometry"] = None
    report = _import(write_geojson(records, name="v2.geojson"))

    assert not report.ok
    assert list(District.objects.values_list("code", "name", "updated_at")) == before


def test_every_refused_feature_is_reported_in_file_order(write_geojson):
    records = _districts(6)
    records[4]["code"] = "D0"  # duplicate of feature 1
    records[3]["name"] = ""
    records[1]["geometry"] = None
    records[5]["code"] = None

    report = _import(write_geojson(records))

    refused = {p.feature: p.reason for p in report.refused}
    assert list(refused) == [2, 4, 5, 6]
    assert refused[2] == "geometry is null"
    assert refused[4] == "no name in field 'name'"
    assert refused[5] == (
        "code D0 already used by feature 1 (give --dissolve to merge the features that share "
        "a code)"
    )
    assert refused[6] == "no code in field 'code'"
    assert not Region.objects.exists()


def test_duplicate_code_names_both_features(write_geojson):
    records = _districts(3)
    records[2]["code"] = "D0"

    report = _import(write_geojson(records))

    assert len(report.refused) == 1
    text = str(report.refused[0])
    assert text.startswith("feature 3 (code=D0, name=District 2)")
    assert "already used by feature 1" in text
    assert not District.objects.exists()


@pytest.mark.parametrize(
    ("option", "value"),
    [("code_field", "ubigeo"), ("name_field", "NOMBDIST"), ("population_field", "pop")],
)
def test_missing_field_lists_the_fields_of_the_file(write_geojson, option, value):
    records = [{**r, "extra": 1} for r in _districts(2)]
    flag = "--" + option.replace("_", "-")

    with pytest.raises(BoundaryImportError) as exc:
        _import(write_geojson(records), **{option: value})

    assert str(exc.value) == (
        f"{flag} {value!r} is not a field of the file; its fields are: code, name, extra"
    )
    assert not Region.objects.exists()


def test_unreadable_file_is_a_boundary_import_error(tmp_path):
    with pytest.raises(BoundaryImportError, match="no such file"):
        _import(tmp_path / "absent.geojson")


def test_unknown_level_is_refused(write_geojson):
    with pytest.raises(BoundaryImportError, match="level must be one of district, neighborhood"):
        _import(write_geojson(_districts(1)), level="block")


def test_projected_file_with_crs_option_is_imported(write_geojson):
    import shapely
    from pyproj import Transformer

    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32718", always_xy=True)
    records = _districts(2)
    for record in records:
        record["geometry"] = shapely.transform(
            record["geometry"], to_utm.transform, interleaved=False
        )
    report = _import(write_geojson(records), crs="EPSG:32718")

    assert report.ok and report.metric_srid == 32718
    stored = District.objects.get(code="D1").geom.extent
    assert stored == pytest.approx(grid_cell(1).bounds, abs=1e-6)


def test_invalid_geometry_is_repaired_reported_and_stored_valid(write_geojson):
    records = _districts(2)
    minx, miny, maxx, maxy = grid_cell(1).bounds
    from shapely.geometry import Polygon

    records[1]["geometry"] = Polygon([(minx, miny), (maxx, maxy), (maxx, miny), (minx, maxy)])

    report = _import(write_geojson(records))

    assert report.ok
    assert [p.feature for p in report.repaired] == [2]
    assert any(line.startswith("repaired: feature 2 (code=D1") for line in report.lines())
    stored = District.objects.get(code="D1").geom
    assert stored.valid and stored.geom_type == "MultiPolygon"


def test_numeric_codes_are_stored_as_whole_numbers(write_geojson):
    records = _districts(2)
    records[0]["code"], records[1]["code"] = 13101, 13102.0
    report = _import(write_geojson(records))
    assert report.ok
    assert sorted(District.objects.values_list("code", flat=True)) == ["13101", "13102"]


def test_population_field(write_geojson):
    records = _districts(3)
    records[0]["pop"], records[1]["pop"], records[2]["pop"] = 1200, None, 35.0
    _import(write_geojson(records), population_field="pop")
    assert dict(District.objects.values_list("code", "population")) == {
        "D0": 1200,
        "D1": None,
        "D2": 35,
    }


@pytest.mark.parametrize("bad", ["many", "-5", "2.5e"])
def test_bad_population_is_refused(write_geojson, bad):
    records = _districts(2)
    records[0]["pop"], records[1]["pop"] = "10", bad
    report = _import(write_geojson(records), population_field="pop")
    assert [p.feature for p in report.refused] == [2]
    assert "is not a whole number" in report.refused[0].reason
    assert not District.objects.exists()


def test_source_is_recorded_and_a_repeat_is_unchanged(write_geojson):
    source = SourceInfo(slug="ign", name="IGN", attribution="IGN Perú", licence="open")
    path = write_geojson(_districts(2))

    _import(path, source=source)
    report = _import(path, source=source)

    assert sorted(report.unchanged) == ["D0", "D1"]
    stored = BoundarySource.objects.get(slug="ign")
    assert (stored.name, stored.attribution, stored.licence) == ("IGN", "IGN Perú", "open")
    assert set(District.objects.values_list("source__slug", flat=True)) == {"ign"}


def test_upsert_queries_do_not_grow_with_the_number_of_rows(write_geojson):
    # Packs always pass a source: comparing it must not cost one query per row.
    source = SourceInfo(slug="src", name="Source")
    counts = {}
    for n in (3, 30):
        region = f"r{n}"
        path = write_geojson(_districts(n), name=f"{region}.geojson")
        _import(path, region_code=region, source=source)
        with CaptureQueriesContext(connection) as queries:
            report = _import(path, region_code=region, source=source)
        assert len(report.unchanged) == n
        counts[n] = len(queries.captured_queries)
    assert counts[30] == counts[3], counts


def test_neighborhood_upsert_queries_do_not_grow_with_the_number_of_rows(
    make_region, write_geojson
):
    counts = {}
    for n in (3, 30):
        region = f"r{n}"
        make_region(region, districts={"D": ("District", box(-99.3, 19.3, -99.0, 19.6))})
        records = [_hood(f"n{i}", f"N {i}", (i, 0)) for i in range(n)]
        path = write_geojson(records, name=f"{region}.geojson")
        _import(path, region_code=region, level="neighborhood")
        assert set(
            Neighborhood.objects.filter(region__code=region).values_list(
                "district__code", flat=True
            )
        ) == {"D"}
        with CaptureQueriesContext(connection) as queries:
            report = _import(path, region_code=region, level="neighborhood")
        assert len(report.unchanged) == n
        counts[n] = len(queries.captured_queries)
    assert counts[30] == counts[3], counts


# --- neighborhoods ------------------------------------------------------------------------


@pytest.fixture
def cdmx_districts(make_region):
    return make_region(
        "cdmx",
        districts={
            "09010": ("Álvaro Obregón", grid_cell(0, origin=CDMX)),
            "09003": ("Coyoacán", grid_cell(1, origin=CDMX)),
        },
    )


def _hood(code, name, cell, **extra):
    return {
        "code": code,
        "name": name,
        "geometry": grid_cell(*cell, origin=CDMX, size=0.005),
        **extra,
    }


def test_neighborhood_parent_by_district_code(cdmx_districts, write_geojson):
    path = write_geojson(
        [_hood("n1", "Uno", (0, 0), parent="09010"), _hood("n2", "Dos", (2, 0), parent="09003")]
    )

    report = _import(path, region_code="cdmx", level="neighborhood", parent_field="parent")

    assert report.ok and sorted(report.created) == ["n1", "n2"]
    assert dict(Neighborhood.objects.values_list("code", "district__code")) == {
        "n1": "09010",
        "n2": "09003",
    }


@pytest.mark.parametrize("spelling", ["Alvaro Obregon", "ALVARO OBREGON", "  álvaro   obregón "])
def test_neighborhood_parent_by_accent_insensitive_name(cdmx_districts, write_geojson, spelling):
    path = write_geojson([_hood("n1", "Uno", (0, 0), alcaldia=spelling)])

    report = _import(path, region_code="cdmx", level="neighborhood", parent_field="alcaldia")

    assert report.ok
    assert Neighborhood.objects.get(code="n1").district.name == "Álvaro Obregón"


def test_unknown_parent_is_refused(cdmx_districts, write_geojson):
    path = write_geojson(
        [
            _hood("n1", "Uno", (0, 0), alcaldia="Coyoacan"),
            _hood("n2", "Dos", (1, 0), alcaldia="Tlalpan"),
        ]
    )

    report = _import(path, region_code="cdmx", level="neighborhood", parent_field="alcaldia")

    assert not report.ok
    assert [str(p) for p in report.refused] == [
        "feature 2 (code=n2, name=Dos): parent district 'Tlalpan' not found in region cdmx"
    ]
    assert not Neighborhood.objects.exists()


def test_parent_field_in_a_region_without_districts_says_so(write_geojson):
    path = write_geojson([_hood("n1", "Uno", (0, 0), alcaldia="Coyoacán")])

    report = _import(path, region_code="cdmx", level="neighborhood", parent_field="alcaldia")

    assert "(it has no districts yet)" in report.refused[0].reason
    assert not Region.objects.exists()


def test_neighborhood_without_parent_field_gets_its_district_spatially(
    cdmx_districts, write_geojson
):
    # Cells of 0.005°: (0,0) and (1,1) fall in district 09010, (2,0) in 09003, (6,0) nowhere.
    path = write_geojson(
        [
            _hood("a", "A", (0, 0)),
            _hood("b", "B", (1, 1)),
            _hood("c", "C", (2, 0)),
            _hood("out", "Outside", (6, 0)),
        ]
    )

    report = _import(path, region_code="cdmx", level="neighborhood")

    assert report.ok
    assert dict(Neighborhood.objects.values_list("code", "district__code")) == {
        "a": "09010",
        "b": "09010",
        "c": "09003",
        "out": None,
    }


def test_neighborhood_straddling_a_border_goes_where_its_inside_point_is(
    cdmx_districts, write_geojson
):
    # Mostly in 09003, a sliver in 09010: its point on surface decides.
    x0 = CDMX[0] + 0.01
    shape = box(x0 - 0.001, CDMX[1], x0 + 0.008, CDMX[1] + 0.01)
    path = write_geojson([{"code": "s", "name": "Straddler", "geometry": shape}])

    _import(path, region_code="cdmx", level="neighborhood")

    hood = Neighborhood.objects.get(code="s")
    assert hood.district.code == "09003"
    assert District.objects.get(code="09003").geom.covers(hood.geom.point_on_surface)


def test_neighborhood_reload_keeps_spatial_parents_unchanged(cdmx_districts, write_geojson):
    path = write_geojson([_hood("a", "A", (0, 0)), _hood("c", "C", (2, 0))])
    _import(path, region_code="cdmx", level="neighborhood")
    report = _import(path, region_code="cdmx", level="neighborhood")
    assert sorted(report.unchanged) == ["a", "c"] and report.updated == []


def test_region_with_only_neighborhoods_takes_their_union(write_geojson):
    path = write_geojson([_hood("a", "A", (0, 0)), _hood("b", "B", (3, 3))])

    report = _import(path, region_code="barrios", level="neighborhood")

    region = Region.objects.get(code="barrios")
    assert report.region_created and region.metric_srid == 32614
    assert region.geom.area == pytest.approx(2 * 0.005**2)
    assert region.geom.covers(Neighborhood.objects.get(code="b").geom)
    assert Neighborhood.objects.get(code="a").district is None


def test_region_geometry_prefers_districts_over_neighborhoods(cdmx_districts, write_geojson):
    outside = {"code": "o", "name": "O", "geometry": Point(CDMX[0] + 0.5, CDMX[1]).buffer(0.001)}
    _import(write_geojson([outside]), region_code="cdmx", level="neighborhood")

    region = Region.objects.get(code="cdmx")
    assert region.geom.area == pytest.approx(2 * 0.01**2)
