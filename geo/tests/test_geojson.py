"""geo.geojson: bbox/zoom parsing and FeatureCollections streamed from PostGIS."""

import json
import math

import pytest
import shapely
from shapely.geometry import Point, shape

from geo.geojson import (
    MAX_ZOOM,
    BBox,
    GeoJSONParameterError,
    feature_collection_response,
    parse_bbox,
    parse_zoom,
    precision_for_zoom,
    simplify_tolerance_m,
)
from neighborhoods.models import District
from tests.geodata import grid_cell

# --- bbox -------------------------------------------------------------------------------


def test_parse_bbox_valid():
    assert parse_bbox("-77.1,-12.2,-76.9,-11.9") == BBox(-77.1, -12.2, -76.9, -11.9)


@pytest.mark.parametrize("raw", [None, ""])
def test_parse_bbox_absent(raw):
    assert parse_bbox(raw) is None


def test_parse_bbox_clamps_values_beyond_the_world():
    assert parse_bbox("-200,-95,190.5,100") == BBox(-180.0, -90.0, 180.0, 90.0)
    assert parse_bbox("-540,-12,-77,-11") == BBox(-180.0, -12.0, -77.0, -11.0)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("-76.9,-12.2,-77.1,-11.9", "minimum must be below its maximum"),  # lon inverted
        ("-77.1,-11.9,-76.9,-12.2", "minimum must be below its maximum"),  # lat inverted
        ("-77,-12,-77,-11", "minimum must be below its maximum"),  # zero width
        ("190,0,200,10", "minimum must be below its maximum"),  # empty after clamping
        ("1,2,3", "bbox must be minlon,minlat,maxlon,maxlat"),
        ("1,2,3,4,5", "bbox must be minlon,minlat,maxlon,maxlat"),
        ("a,b,c,d", "bbox values must be numbers"),
        ("1,2,,4", "bbox values must be numbers"),
        ("nan,0,1,1", "bbox values must be finite numbers"),
        ("0,0,inf,1", "bbox values must be finite numbers"),
        ("-inf,0,1,1", "bbox values must be finite numbers"),
    ],
)
def test_parse_bbox_refuses(raw, message):
    with pytest.raises(GeoJSONParameterError, match=message) as exc:
        parse_bbox(raw)
    assert exc.value.field == "bbox"
    assert exc.value.message == str(exc.value)


def test_bbox_geometry_is_wgs84_polygon():
    polygon = BBox(-77.1, -12.2, -76.9, -11.9).as_geometry()
    assert polygon.srid == 4326
    assert polygon.extent == pytest.approx((-77.1, -12.2, -76.9, -11.9))


# --- zoom -------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "zoom"), [(None, None), ("", None), ("0", 0), ("24", 24)])
def test_parse_zoom_valid(raw, zoom):
    assert parse_zoom(raw) == zoom


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("x", "whole number"),
        ("1.5", "whole number"),
        ("-1", f"between 0 and {MAX_ZOOM}"),
        ("25", f"between 0 and {MAX_ZOOM}"),
        ("99", f"between 0 and {MAX_ZOOM}"),
        (str(2**40), f"between 0 and {MAX_ZOOM}"),
        ("9" * 5000, "whole number"),
    ],
)
def test_parse_zoom_refuses(raw, message):
    with pytest.raises(GeoJSONParameterError, match=message) as exc:
        parse_zoom(raw)
    assert exc.value.field == "zoom"


@pytest.mark.parametrize("zoom", [-1, MAX_ZOOM + 1, 2**40])
def test_simplify_tolerance_refuses_a_zoom_outside_the_pyramid(zoom):
    with pytest.raises(GeoJSONParameterError) as exc:
        simplify_tolerance_m(zoom)
    assert exc.value.field == "zoom"


def test_precision_and_tolerance_follow_the_zoom():
    assert precision_for_zoom(None) == 6
    precisions = [precision_for_zoom(z) for z in range(MAX_ZOOM + 1)]
    assert precisions == sorted(precisions) and precisions[0] == 3 and precisions[-1] == 6
    assert simplify_tolerance_m(None) is None and simplify_tolerance_m(16) is None
    tolerances = [simplify_tolerance_m(z) for z in range(16)]
    # Half a pixel: halves with every zoom level.
    for coarser, finer in zip(tolerances, tolerances[1:], strict=False):
        assert finer == pytest.approx(coarser / 2)
    # At zoom 0 a 256-pixel tile spans the Web Mercator world (2πR ≈ 40,075 km).
    assert simplify_tolerance_m(0) * 2 * 256 == pytest.approx(2 * math.pi * 6378137, rel=1e-9)


# --- streamed FeatureCollection ---------------------------------------------------------


def _collection(queryset, **kwargs):
    kwargs.setdefault("max_features", 1000)
    response = feature_collection_response(
        queryset,
        geom_field="geom",
        properties={"code": "code", "name": "name"},
        **kwargs,
    )
    assert response["Content-Type"] == "application/geo+json"
    body = b"".join(response.streaming_content)
    return json.loads(body)


def _vertex_count(geometry: dict) -> int:
    return int(shapely.get_num_coordinates(shape(geometry)))


def _extent(features) -> list[float]:
    bounds = [shape(f["geometry"]).bounds for f in features]
    return [
        min(b[0] for b in bounds),
        min(b[1] for b in bounds),
        max(b[2] for b in bounds),
        max(b[3] for b in bounds),
    ]


@pytest.fixture
def five_districts(make_region):
    # Spread on two rows so that the extent of any subset differs from the whole.
    cells = {f"D{i}": (f"District {i}", grid_cell(i * 2, i % 2)) for i in range(5)}
    return make_region("grid", districts=cells)


def test_feature_collection_is_valid_geojson_with_bbox_of_its_features(five_districts):
    collection = _collection(District.objects.all())

    assert collection["type"] == "FeatureCollection"
    assert collection["numberReturned"] == 5
    assert collection["truncated"] is False
    features = collection["features"]
    assert [f["properties"]["code"] for f in features] == ["D0", "D1", "D2", "D3", "D4"]
    ids = set(District.objects.values_list("id", flat=True))
    for feature in features:
        assert feature["type"] == "Feature"
        assert feature["id"] in ids
        assert feature["geometry"]["type"] == "MultiPolygon"
        assert shape(feature["geometry"]).is_valid
    assert collection["bbox"] == pytest.approx(_extent(features), abs=1e-6)
    stored = District.objects.get(code="D4").geom.extent
    assert collection["bbox"][2] == pytest.approx(stored[2], abs=1e-6)


def test_feature_collection_is_truncated_at_the_cap(five_districts):
    collection = _collection(District.objects.order_by("code"), max_features=3)

    assert collection["truncated"] is True
    assert collection["numberReturned"] == 3
    assert len(collection["features"]) == 3
    assert [f["properties"]["code"] for f in collection["features"]] == ["D0", "D1", "D2"]
    # The bbox is the extent of the features returned, not of every matching row.
    assert collection["bbox"] == pytest.approx(_extent(collection["features"]), abs=1e-6)
    assert collection["bbox"] != pytest.approx(
        _extent(_collection(District.objects.all())["features"]), abs=1e-6
    )


def test_feature_collection_exactly_at_the_cap_is_not_truncated(five_districts):
    collection = _collection(District.objects.all(), max_features=5)
    assert collection["truncated"] is False
    assert len(collection["features"]) == 5


def test_empty_feature_collection_has_no_bbox(db):
    collection = _collection(District.objects.none())
    assert collection == {
        "type": "FeatureCollection",
        "features": [],
        "numberReturned": 0,
        "truncated": False,
    }


def test_extra_members_are_added(five_districts):
    collection = _collection(
        District.objects.all(), extra_members={"attribution": ["Someone"], "region": "grid"}
    )
    assert collection["attribution"] == ["Someone"]
    assert collection["region"] == "grid"


@pytest.fixture
def detailed_district(make_region):
    # A ~1.1 km-radius disc drawn with 2,000 vertices.
    disc = Point(-77.03, -12.05).buffer(0.01, quad_segs=500)
    make_region("disc", districts={"DISC": ("Disc", disc)})
    return int(shapely.get_num_coordinates(disc))


def test_low_zoom_simplifies_detailed_polygons_but_keeps_valid_geojson(detailed_district):
    full = _collection(District.objects.all())["features"][0]["geometry"]
    assert _vertex_count(full) == detailed_district

    counts = {}
    for zoom in (5, 10, 13, 16):
        collection = _collection(District.objects.all(), zoom=zoom)
        geometry = collection["features"][0]["geometry"]
        polygon = shape(geometry)
        # GEOS may hand a one-part MultiPolygon back as a Polygon once simplified.
        assert geometry["type"] in ("Polygon", "MultiPolygon"), zoom
        assert polygon.is_valid and not polygon.is_empty, zoom
        # Still in the right place at every zoom.
        assert polygon.contains(Point(-77.03, -12.05)), zoom
        counts[zoom] = _vertex_count(geometry)

    assert counts[5] < counts[10] < counts[13] < detailed_district
    assert counts[5] <= 10
    assert counts[16] == detailed_district  # zoomed far in: no simplification
    # Low zoom also rounds coordinates to what a pixel resolves.
    low = _collection(District.objects.all(), zoom=5)["features"][0]["geometry"]
    ring = shapely.get_exterior_ring(shapely.get_parts(shape(low))[0])
    for x, y in ring.coords:
        assert round(x, 3) == x and round(y, 3) == y
