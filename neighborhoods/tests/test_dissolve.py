"""load_boundaries --dissolve: a district published as several features (issue 12, item 5)."""

import zipfile
from io import StringIO

import geopandas as gpd
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from shapely.geometry import box

from neighborhoods.models import District, Region
from tests.geodata import grid_cell

pytestmark = pytest.mark.django_db

# A Lima police district "0101" in three pieces, as exported from a police GIS in UTM 18S
# (metres): two that touch along an edge and an exclave 3 km east; "0102" is whole.
X0, Y0 = 280_000, 8_660_000
PIECES = [
    ("0101", "CERCADO", box(X0, Y0, X0 + 1000, Y0 + 1000)),
    ("0102", "RIMAC", box(X0, Y0 + 2000, X0 + 1000, Y0 + 3000)),
    ("0101", "CERCADO", box(X0 + 1000, Y0, X0 + 2000, Y0 + 1000)),
    ("0101", "CERCADO", box(X0 + 5000, Y0, X0 + 6000, Y0 + 1000)),
]


def _shapefile(tmp_path, pieces=PIECES, population=None) -> str:
    folder = tmp_path / "shp"
    folder.mkdir()
    columns = {"DISTRITO": [p[0] for p in pieces], "NOMBRE": [p[1] for p in pieces]}
    if population is not None:
        columns["POBLACION"] = population
    gpd.GeoDataFrame(columns, geometry=[p[2] for p in pieces], crs="EPSG:32718").to_file(
        folder / "distritos.shp"
    )
    archive = tmp_path / "distritos.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for member in sorted(folder.iterdir()):
            out.write(member, member.name)
    return str(archive)


def _load(path, *args, fails=False, **options):
    stdout, stderr = StringIO(), StringIO()
    argv = [
        str(path), "--region", "lima", "--level", "district",
        "--code-field", "DISTRITO", "--name-field", "NOMBRE", *args,
    ]  # fmt: skip
    if fails:
        with pytest.raises(CommandError) as exc:
            call_command("load_boundaries", *argv, stdout=stdout, stderr=stderr, **options)
        return str(exc.value), stdout.getvalue(), stderr.getvalue()
    call_command("load_boundaries", *argv, stdout=stdout, stderr=stderr, **options)
    return stdout.getvalue(), stderr.getvalue()


def _metric(code: str) -> tuple[float, int, bool]:
    """Area in m² (UTM 18S), number of polygons and validity of a stored district."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ST_Area(ST_Transform(geom, 32718)), ST_NumGeometries(geom), ST_IsValid(geom) "
            "FROM neighborhoods_district WHERE code = %s",
            [code],
        )
        return cursor.fetchone()


def test_without_dissolve_the_file_is_refused_and_the_message_names_dissolve(tmp_path):
    message, _, err = _load(_shapefile(tmp_path), fails=True)

    assert message == "2 feature(s) refused; nothing was written"
    assert (
        "refused: feature 3 (DISTRITO=0101, NOMBRE=CERCADO): code 0101 already used by "
        "feature 1 (give --dissolve to merge the features that share a code)"
    ) in err.splitlines()
    assert not Region.objects.exists()


def test_dissolve_merges_a_district_published_in_three_pieces(tmp_path):
    out, err = _load(_shapefile(tmp_path), "--dissolve")

    assert err == ""
    lines = out.splitlines()
    assert lines[0].endswith("2 created, 0 updated, 0 unchanged, 0 repaired, 0 refused")
    assert "district 0101 merged from 3 features (1, 3, 4)" in lines
    assert sorted(District.objects.values_list("code", "name")) == [
        ("0101", "CERCADO"),
        ("0102", "RIMAC"),
    ]
    area, polygons, valid = _metric("0101")
    # Three 1 km² squares; the two that touch become one polygon, the exclave stays apart.
    assert area == pytest.approx(3_000_000, rel=1e-3)
    assert (polygons, valid) == (2, True)
    assert _metric("0102")[:2] == (pytest.approx(1_000_000, rel=1e-3), 1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT ST_IsValid(geom), ST_NumGeometries(geom) FROM neighborhoods_region")
        assert cursor.fetchone() == (True, 3)


def test_a_second_dissolved_load_changes_nothing(tmp_path):
    path = _shapefile(tmp_path)
    _load(path, "--dissolve")

    out, _ = _load(path, "--dissolve")

    assert out.splitlines()[0].endswith("0 created, 0 updated, 2 unchanged, 0 repaired, 0 refused")


def test_names_that_disagree_keep_the_first_and_say_so(tmp_path):
    pieces = [PIECES[0], PIECES[1], ("0101", "Cercado de Lima", PIECES[2][2]), PIECES[3]]

    out, _ = _load(_shapefile(tmp_path, pieces), "--dissolve")

    assert (
        "note: district 0101: the merged features have different names (CERCADO; "
        "Cercado de Lima); kept 'CERCADO', the first"
    ) in out.splitlines()
    assert District.objects.get(code="0101").name == "CERCADO"


def test_names_differing_only_in_case_or_accents_are_not_a_disagreement(tmp_path):
    pieces = [PIECES[0], PIECES[1], ("0101", "Cercado", PIECES[2][2]), PIECES[3]]

    out, _ = _load(_shapefile(tmp_path, pieces), "--dissolve")

    assert "different names" not in out


@pytest.mark.parametrize(
    ("population", "expected", "note"),
    [
        # The district's population repeated on every piece (a multipart file exploded).
        ([30_000, 20_000, 30_000, 30_000], 30_000, None),
        # Each piece's own population: added up, and said so.
        ([10_000, 20_000, 15_000, 5_000], 30_000,
         "note: district 0101: population 30000 is the sum of the merged features' "
         "(10000, 15000, 5000)"),
    ],
)  # fmt: skip
def test_populations_of_merged_pieces(tmp_path, population, expected, note):
    out, _ = _load(
        _shapefile(tmp_path, population=population),
        "--dissolve",
        "--population-field",
        "POBLACION",
    )

    assert District.objects.get(code="0101").population == expected
    assert District.objects.get(code="0102").population == 20_000
    if note:
        assert note in out.splitlines()
    else:
        assert "population" not in out


def test_dissolve_with_nothing_to_merge_says_so(write_geojson):
    records = [
        {"DISTRITO": f"01{i:02d}", "NOMBRE": f"D{i}", "geometry": grid_cell(i)} for i in range(2)
    ]

    out, _ = _load(write_geojson(records), "--dissolve")

    assert "--dissolve: no two features share a code, nothing was merged" in out.splitlines()
    assert District.objects.count() == 2


def test_overlapping_pieces_merge_into_one_valid_polygon(write_geojson):
    # GeoJSON pieces that overlap (digitised twice along a street): the union counts the
    # overlap once.
    a = grid_cell(0)
    b = grid_cell(0).buffer(0).union(grid_cell(1)).difference(grid_cell(1).buffer(-0.004))
    records = [
        {"DISTRITO": "0101", "NOMBRE": "CERCADO", "geometry": a},
        {"DISTRITO": "0101", "NOMBRE": "CERCADO", "geometry": b},
    ]

    out, _ = _load(write_geojson(records), "--dissolve")

    assert "district 0101 merged from 2 features (1, 2)" in out
    stored = District.objects.get(code="0101").geom
    assert stored.valid
    expected = a.union(b)
    assert stored.area == pytest.approx(expected.area, rel=1e-6)


def test_a_refused_piece_refuses_the_whole_file_even_with_dissolve(tmp_path, write_geojson):
    records = [
        {"DISTRITO": "0101", "NOMBRE": "CERCADO", "geometry": grid_cell(0)},
        {"DISTRITO": "0101", "NOMBRE": "CERCADO", "geometry": None},
    ]

    message, _, err = _load(write_geojson(records), "--dissolve", fails=True)

    assert message == "1 feature(s) refused; nothing was written"
    assert "feature 2" in err and "geometry is null" in err
    assert not District.objects.exists()


def test_neighborhoods_dissolve_too_and_keep_the_first_parent(write_geojson):
    districts = [
        {"DISTRITO": "D1", "NOMBRE": "Uno", "geometry": grid_cell(0)},
        {"DISTRITO": "D2", "NOMBRE": "Dos", "geometry": grid_cell(1)},
    ]
    _load(write_geojson(districts, name="d.geojson"))
    hoods = [
        {"code": "N1", "name": "Barrio", "parent": "D1", "geometry": grid_cell(0).buffer(-0.004)},
        {"code": "N1", "name": "Barrio", "parent": "D2", "geometry": grid_cell(1).buffer(-0.004)},
    ]
    stdout = StringIO()

    call_command(
        "load_boundaries", str(write_geojson(hoods, name="n.geojson")), "--region", "lima",
        "--level", "neighborhood", "--code-field", "code", "--name-field", "name",
        "--parent-field", "parent", "--dissolve", stdout=stdout,
    )  # fmt: skip

    lines = stdout.getvalue().splitlines()
    assert "neighborhood N1 merged from 2 features (1, 2)" in lines
    assert (
        "note: neighborhood N1: the merged features have different parent districts (D1; D2); "
        "kept the first's"
    ) in lines
    hood = Region.objects.get(code="lima").neighborhood_set.get(code="N1")
    assert hood.district.code == "D1" and hood.geom.num_geom == 2
