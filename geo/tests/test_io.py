"""geo.io.read_vector: CRS rules, refusals and repairs, on files written in tmp_path."""

import json
import warnings
import zipfile

import geopandas as gpd
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, Point, Polygon, box

from geo.io import VectorFileError, read_vector

LIMA = (-77.04, -12.05)
TO_UTM18S = Transformer.from_crs("EPSG:4326", "EPSG:32718", always_xy=True)
# A ~1 km square in Lima, in lon/lat and in UTM 18S metres.
LIMA_SQUARE = box(-77.05, -12.06, -77.04, -12.05)
UTM_SQUARE = shapely.transform(LIMA_SQUARE, TO_UTM18S.transform, interleaved=False)
BOW_TIE = Polygon([(-77.05, -12.06), (-77.04, -12.05), (-77.04, -12.06), (-77.05, -12.05)])


def test_geojson_without_crs_member_is_wgs84(write_geojson):
    path = write_geojson([{"code": "a", "geometry": LIMA_SQUARE}])

    read = read_vector(path)

    assert read.driver == "GeoJSON"
    assert read.source_crs == "EPSG:4326"
    assert read.frame.crs.to_epsg() == 4326
    assert list(read.frame.index) == [1]
    assert read.frame.geometry[1].equals_exact(LIMA_SQUARE, 1e-12)
    assert read.repaired == [] and read.refused == []


def test_geojson_with_projected_crs_member_is_reprojected(write_geojson):
    x, y = TO_UTM18S.transform(*LIMA)
    path = write_geojson(
        [{"code": "p", "geometry": Point(x, y)}, {"code": "sq", "geometry": UTM_SQUARE}],
        crs="urn:ogc:def:crs:EPSG::32718",
    )

    read = read_vector(path)

    assert "32718" in read.source_crs
    assert read.frame.crs.to_epsg() == 4326
    point = read.frame.geometry[1]
    assert point.x == pytest.approx(LIMA[0], abs=1e-6)
    assert point.y == pytest.approx(LIMA[1], abs=1e-6)
    for got, want in zip(
        read.frame.geometry[2].exterior.coords, LIMA_SQUARE.exterior.coords, strict=True
    ):
        assert got == pytest.approx(want, abs=1e-6)


def test_geojson_with_wgs84_crs_member_is_not_reprojected(write_geojson):
    path = write_geojson(
        [{"code": "a", "geometry": LIMA_SQUARE}], crs="urn:ogc:def:crs:OGC:1.3:CRS84"
    )

    read = read_vector(path)

    assert read.frame.geometry[1].equals_exact(LIMA_SQUARE, 1e-9)


def test_geojson_with_projected_coordinates_and_no_crs_member_is_refused(write_geojson):
    path = write_geojson([{"code": "sq", "geometry": UTM_SQUARE}])

    with pytest.raises(VectorFileError, match="not longitudes/latitudes") as exc:
        read_vector(path)
    assert "--crs" in str(exc.value)


def test_geojson_with_projected_coordinates_accepts_an_explicit_crs(write_geojson):
    path = write_geojson([{"code": "sq", "geometry": UTM_SQUARE}])

    read = read_vector(path, crs="EPSG:32718")

    bounds = read.frame.total_bounds
    assert list(bounds) == pytest.approx(list(LIMA_SQUARE.bounds), abs=1e-6)


def test_crs_option_conflicting_with_the_declared_crs_is_refused(write_geojson):
    path = write_geojson([{"code": "sq", "geometry": UTM_SQUARE}], crs="EPSG:32718")

    with pytest.raises(VectorFileError, match="declares CRS .*32718.* but .*32719") as exc:
        read_vector(path, crs="EPSG:32719")
    assert "--crs" in str(exc.value)


def test_crs_option_equal_to_the_declared_crs_is_accepted(write_geojson):
    path = write_geojson([{"code": "sq", "geometry": UTM_SQUARE}], crs="EPSG:32718")

    read = read_vector(path, crs="EPSG:32718")

    assert list(read.frame.total_bounds) == pytest.approx(list(LIMA_SQUARE.bounds), abs=1e-6)


def test_unknown_crs_option_is_refused(write_geojson):
    path = write_geojson([{"code": "a", "geometry": LIMA_SQUARE}])

    with pytest.raises(VectorFileError, match="unknown CRS 'EPSG:nope'"):
        read_vector(path, crs="EPSG:nope")


def test_geopackage_without_crs_is_refused_then_accepted_with_crs(tmp_path):
    path = tmp_path / "no_crs.gpkg"
    frame = gpd.GeoDataFrame({"code": ["sq"]}, geometry=[UTM_SQUARE], crs=None)
    with warnings.catch_warnings():  # pyogrio warns that the file will have no CRS: the point
        warnings.simplefilter("ignore", UserWarning)
        frame.to_file(path, driver="GPKG")

    with pytest.raises(VectorFileError, match="no coordinate reference system") as exc:
        read_vector(path)
    assert "--crs" in str(exc.value)

    read = read_vector(path, crs="EPSG:32718")
    assert read.driver == "GPKG"
    assert read.frame.crs.to_epsg() == 4326
    assert list(read.frame.total_bounds) == pytest.approx(list(LIMA_SQUARE.bounds), abs=1e-6)


def test_geopackage_with_crs_is_reprojected(tmp_path):
    path = tmp_path / "utm.gpkg"
    gpd.GeoDataFrame({"code": ["sq"]}, geometry=[UTM_SQUARE], crs="EPSG:32718").to_file(path)

    read = read_vector(path)

    assert read.driver == "GPKG"
    assert list(read.frame.total_bounds) == pytest.approx(list(LIMA_SQUARE.bounds), abs=1e-6)


def test_bow_tie_is_repaired_and_reported_with_its_feature_number(write_geojson):
    path = write_geojson(
        [
            {"code": "ok", "name": "Fine", "geometry": LIMA_SQUARE},
            {"code": "bt", "name": "Bow tie", "geometry": BOW_TIE},
        ]
    )

    read = read_vector(path, polygonal=True, label_fields=["code", "name"])

    assert read.refused == []
    assert [p.feature for p in read.repaired] == [2]
    problem = read.repaired[0]
    assert problem.label == "code=bt, name=Bow tie"
    assert "Self-intersection" in problem.reason
    assert str(problem).startswith("feature 2 (code=bt, name=Bow tie): repaired invalid geometry")
    repaired = read.frame.geometry[2]
    assert repaired.is_valid
    assert repaired.geom_type in ("Polygon", "MultiPolygon")
    # The two triangles of the bow tie survive: half of the square's area each side.
    assert repaired.area == pytest.approx(LIMA_SQUARE.area / 2)
    assert read.frame.geometry[1].equals(LIMA_SQUARE)


def test_degenerate_polygon_with_no_area_left_is_refused(write_geojson):
    flat = {"type": "Polygon", "coordinates": [[[-77.0, -12.0], [-76.9, -12.0], [-77.0, -12.0]]]}
    path = write_geojson([{"code": "ok", "geometry": LIMA_SQUARE}, {"code": "flat"}])
    collection = json.loads(path.read_text())
    collection["features"][1]["geometry"] = flat
    path.write_text(json.dumps(collection))

    read = read_vector(path, polygonal=True, label_fields=["code"])

    assert [(p.feature, p.label) for p in read.refused] == [(2, "code=flat")]
    assert "no area left after repair" in read.refused[0].reason


@pytest.mark.parametrize("empty", [None, {"type": "Polygon", "coordinates": []}])
def test_null_or_empty_geometry_is_refused_with_its_feature_number(write_geojson, empty):
    path = write_geojson(
        [
            {"code": "a", "geometry": LIMA_SQUARE},
            {"code": "b", "geometry": LIMA_SQUARE},
            {"code": "c", "geometry": empty},
            {"code": "d", "geometry": LIMA_SQUARE},
        ]
    )

    read = read_vector(path, polygonal=True, label_fields=["code"])

    assert [p.feature for p in read.refused] == [3]
    assert str(read.refused[0]) == "feature 3 (code=c): geometry is null"
    assert list(read.frame.index) == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("geometry", "kind"),
    [(Point(-77.0, -12.0), "Point"), (LineString([(-77.0, -12.0), (-76.9, -12.1)]), "LineString")],
)
def test_non_polygon_geometry_is_refused_when_polygons_are_needed(write_geojson, geometry, kind):
    path = write_geojson(
        [{"code": "a", "geometry": LIMA_SQUARE}, {"code": "x", "geometry": geometry}]
    )

    read = read_vector(path, polygonal=True, label_fields=["code"])
    assert [p.feature for p in read.refused] == [2]
    assert f"geometry is a {kind}, a Polygon or MultiPolygon is needed" in read.refused[0].reason

    # Without polygonal=True the same file is fine.
    assert read_vector(path).refused == []


def test_zipped_shapefile_is_read_with_its_prj(tmp_path):
    folder = tmp_path / "shp"
    folder.mkdir()
    gpd.GeoDataFrame(
        {"code": ["sq"], "name": ["Square"]}, geometry=[UTM_SQUARE], crs="EPSG:32718"
    ).to_file(folder / "barrios.shp")
    archive = tmp_path / "barrios.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for member in sorted(folder.iterdir()):
            out.write(member, member.name)
    assert {".shp", ".shx", ".dbf", ".prj"} <= {p.suffix for p in folder.iterdir()}

    read = read_vector(archive, polygonal=True)

    assert read.driver == "ESRI Shapefile"
    assert "32718" in read.source_crs
    assert list(read.frame["code"]) == ["sq"]
    assert list(read.frame.total_bounds) == pytest.approx(list(LIMA_SQUARE.bounds), abs=1e-6)


@pytest.mark.parametrize("member", ["../evil.shp", "/abs/evil.shp", "a/../../evil.shp"])
def test_zip_with_unsafe_member_name_is_refused(tmp_path, member):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr(member, b"not really a shapefile")

    with pytest.raises(VectorFileError, match="unsafe member name"):
        read_vector(archive)


def test_zip_without_exactly_one_shapefile_is_refused(tmp_path):
    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("a.shp", b"")
        out.writestr("b.shp", b"")
    with pytest.raises(VectorFileError, match=r"exactly one \.shp file \(found 2\)"):
        read_vector(archive)


def test_file_named_zip_that_is_not_a_zip_is_refused(tmp_path):
    archive = tmp_path / "fake.zip"
    archive.write_text("hello")
    with pytest.raises(VectorFileError, match="not a valid zip archive"):
        read_vector(archive)


def test_vrt_disguised_as_geojson_is_refused(tmp_path, write_geojson):
    target = write_geojson([{"code": "a", "geometry": LIMA_SQUARE}], name="target.geojson")
    disguised = tmp_path / "boundaries.geojson"
    disguised.write_text(
        "<OGRVRTDataSource><OGRVRTLayer name='target'>"
        f"<SrcDataSource>{target}</SrcDataSource>"
        "</OGRVRTLayer></OGRVRTDataSource>"
    )

    with pytest.raises(VectorFileError, match="'OGR_VRT' is not accepted"):
        read_vector(disguised)


def test_missing_path_and_folder_are_refused(tmp_path):
    with pytest.raises(VectorFileError, match="no such file"):
        read_vector(tmp_path / "absent.geojson")
    with pytest.raises(VectorFileError, match="not a file"):
        read_vector(tmp_path)


def test_garbage_file_is_refused(tmp_path):
    path = tmp_path / "broken.geojson"
    path.write_text("{ this is not json")
    with pytest.raises(VectorFileError, match="cannot be read"):
        read_vector(path)
