"""Boundary API: area lookup, region list, districts and neighborhoods as GeoJSON."""

import json

import pytest
import shapely
from django.urls import reverse
from rest_framework.test import APIClient
from shapely.geometry import shape

from tests.geodata import LIMA_ORIGIN, grid_cell

pytestmark = pytest.mark.django_db

SANTIAGO_ORIGIN = (-70.70, -33.50)


def _small(col, row=0):
    """A 0.005° cell: (0, 0) and (1, 1) lie in district cell 0, (2, 0) in district cell 1."""
    return grid_cell(col, row, size=0.005)


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def boundaries(make_region):
    lima = make_region(
        "lima",
        districts={
            "150101": ("Lima", grid_cell(0)),
            "150102": ("Ancón", grid_cell(1)),
            "150103": ("Ate", grid_cell(2)),
        },
        neighborhoods={
            "N1": ("Barrio Uno", _small(0, 0)),
            "N2": ("Barrio Dos", _small(2, 0)),
        },
        region_name="Lima Metropolitana",
    )
    santiago = make_region(
        "santiago", districts={"13101": ("Santiago", grid_cell(0, origin=SANTIAGO_ORIGIN))}
    )
    return lima, santiago


def _geojson(api, name, **params):
    response = api.get(reverse(name), params)
    assert response.status_code == 200, response
    assert response["Content-Type"] == "application/geo+json"
    return json.loads(b"".join(response.streaming_content))


def _codes(collection):
    return sorted(f["properties"]["code"] for f in collection["features"])


# --- lookup ---------------------------------------------------------------------------


def test_lookup_returns_region_district_and_neighborhood(api, boundaries):
    point = _small(0, 0).centroid

    response = api.get(reverse("area-lookup"), {"lat": point.y, "lon": point.x})

    assert response.status_code == 200
    assert response.json() == [
        {
            "type": "region",
            "code": "lima",
            "name": "Lima Metropolitana",
            "region": "lima",
            "synthetic": False,
        },
        {
            "type": "district",
            "code": "150101",
            "name": "Lima",
            "region": "lima",
            "population": None,
        },
        {
            "type": "neighborhood",
            "code": "N1",
            "name": "Barrio Uno",
            "region": "lima",
            "district": "150101",
            "population": None,
        },
    ]


def test_lookup_in_a_district_without_neighborhood(api, boundaries):
    point = grid_cell(2).centroid
    response = api.get(reverse("area-lookup"), {"lat": point.y, "lon": point.x})
    assert [(a["type"], a["code"]) for a in response.json()] == [
        ("region", "lima"),
        ("district", "150103"),
    ]


def test_lookup_outside_every_region_is_an_empty_list(api, boundaries):
    response = api.get(reverse("area-lookup"), {"lat": 0, "lon": 0})
    assert response.status_code == 200
    assert response.json() == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lon": -77.0}, "lat"),
        ({"lat": -12.0}, "lon"),
        ({"lat": 91, "lon": -77.0}, "lat"),
        ({"lat": -90.5, "lon": -77.0}, "lat"),
        ({"lat": -12.0, "lon": 181}, "lon"),
        ({"lat": -12.0, "lon": "abc"}, "lon"),
        ({"lat": "nan", "lon": -77.0}, "lat"),
        ({"lat": -12.0, "lon": "inf"}, "lon"),
        ({"lat": "", "lon": -77.0}, "lat"),
    ],
)
def test_lookup_refuses_bad_coordinates_with_field_messages(api, params, field):
    response = api.get(reverse("area-lookup"), params)
    assert response.status_code == 400
    body = response.json()
    assert list(body) == [field]
    assert isinstance(body[field], list) and body[field][0]


def test_lookup_at_the_limits_of_the_world_is_fine(api, db):
    response = api.get(reverse("area-lookup"), {"lat": -90, "lon": 180})
    assert response.status_code == 200 and response.json() == []


# --- regions ----------------------------------------------------------------------------


def test_region_list_gives_counts_srid_and_extent(api, boundaries):
    response = api.get(reverse("region-list"))

    assert response.status_code == 200
    regions = {r["code"]: r for r in response.json()}
    assert list(regions) == ["lima", "santiago"]  # ordered by name
    lima = regions["lima"]
    assert (lima["name"], lima["metric_srid"], lima["districts"], lima["neighborhoods"]) == (
        "Lima Metropolitana",
        32718,
        3,
        2,
    )
    lon0, lat0 = LIMA_ORIGIN
    assert lima["bbox"] == pytest.approx([lon0, lat0, lon0 + 0.03, lat0 + 0.01], abs=1e-6)
    assert regions["santiago"]["metric_srid"] == 32719
    assert regions["santiago"]["neighborhoods"] == 0


# --- districts GeoJSON -------------------------------------------------------------------


def test_districts_geojson(api, boundaries):
    collection = _geojson(api, "district-geojson")

    assert collection["type"] == "FeatureCollection"
    assert _codes(collection) == ["13101", "150101", "150102", "150103"]
    assert collection["truncated"] is False
    lima = next(f for f in collection["features"] if f["properties"]["code"] == "150101")
    assert lima["properties"] == {
        "code": "150101",
        "name": "Lima",
        "region": "lima",
        "population": None,
    }
    geometry = shape(lima["geometry"])
    assert geometry.bounds == pytest.approx(grid_cell(0).bounds, abs=1e-6)
    assert geometry.area == pytest.approx(grid_cell(0).area)


def test_districts_filtered_by_region(api, boundaries):
    assert _codes(_geojson(api, "district-geojson", region="lima")) == [
        "150101",
        "150102",
        "150103",
    ]
    assert _codes(_geojson(api, "district-geojson", region="santiago")) == ["13101"]
    assert _codes(_geojson(api, "district-geojson", region="nowhere")) == []


def test_districts_filtered_by_bbox(api, boundaries):
    lon0, lat0 = LIMA_ORIGIN
    inside_first = f"{lon0 + 0.002},{lat0 + 0.002},{lon0 + 0.008},{lat0 + 0.008}"
    across_second_and_third = f"{lon0 + 0.015},{lat0 + 0.002},{lon0 + 0.025},{lat0 + 0.008}"

    first = _geojson(api, "district-geojson", bbox=inside_first)
    assert _codes(first) == ["150101"]
    assert first["bbox"] == pytest.approx(list(grid_cell(0).bounds), abs=1e-6)
    assert _codes(_geojson(api, "district-geojson", bbox=across_second_and_third)) == [
        "150102",
        "150103",
    ]
    assert _codes(_geojson(api, "district-geojson", bbox="0,0,1,1")) == []
    # A zoomed-out Leaflet map sends longitudes past ±180: clamped, not refused.
    assert len(_geojson(api, "district-geojson", bbox="-540,-90,540,90")["features"]) == 4


def test_districts_truncated_at_the_configured_cap(api, boundaries, settings):
    settings.GEOJSON_MAX_FEATURES = 2
    collection = _geojson(api, "district-geojson", region="lima")
    assert collection["truncated"] is True
    assert len(collection["features"]) == collection["numberReturned"] == 2


def test_districts_at_a_valid_zoom(api, boundaries):
    collection = _geojson(api, "district-geojson", zoom=10)
    assert len(collection["features"]) == 4
    for feature in collection["features"]:
        assert shape(feature["geometry"]).is_valid


@pytest.mark.parametrize("name", ["district-geojson", "neighborhood-geojson"])
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"zoom": "99"}, "zoom"),
        ({"zoom": "-1"}, "zoom"),
        ({"zoom": "x"}, "zoom"),
        ({"bbox": "-76.9,-12.2,-77.1,-11.9"}, "bbox"),
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "a,b,c,d"}, "bbox"),
        ({"bbox": "nan,0,1,1"}, "bbox"),
    ],
)
def test_map_parameters_are_validated(api, db, name, params, field):
    response = api.get(reverse(name), params)
    assert response.status_code == 400
    body = response.json()
    assert list(body) == [field] and body[field][0]


@pytest.mark.parametrize("n", [2, 20])
def test_districts_queries_do_not_grow_with_the_number_of_districts(
    api, make_region, django_assert_max_num_queries, n
):
    make_region("grid", districts={f"D{i:02d}": (f"D {i}", grid_cell(i)) for i in range(n)})
    with django_assert_max_num_queries(1):
        collection = _geojson(api, "district-geojson", region="grid", zoom=12)
    assert len(collection["features"]) == n
    assert {f["properties"]["region"] for f in collection["features"]} == {"grid"}


# --- neighborhoods GeoJSON ------------------------------------------------------------


def test_neighborhoods_geojson(api, boundaries):
    collection = _geojson(api, "neighborhood-geojson")

    assert _codes(collection) == ["N1", "N2"]
    n1 = next(f for f in collection["features"] if f["properties"]["code"] == "N1")
    assert n1["properties"] == {
        "code": "N1",
        "name": "Barrio Uno",
        "region": "lima",
        "district": "150101",
        "district_name": "Lima",
        "population": None,
    }


def test_neighborhoods_filtered_by_district(api, boundaries):
    assert _codes(_geojson(api, "neighborhood-geojson", district="150101")) == ["N1"]
    assert _codes(_geojson(api, "neighborhood-geojson", district="150102")) == ["N2"]
    assert _codes(_geojson(api, "neighborhood-geojson", district="150103")) == []


def test_neighborhoods_filtered_by_region_and_bbox(api, boundaries):
    assert _codes(_geojson(api, "neighborhood-geojson", region="santiago")) == []
    lon0, lat0 = LIMA_ORIGIN
    bbox = f"{lon0 + 0.011},{lat0 + 0.001},{lon0 + 0.014},{lat0 + 0.004}"
    assert _codes(_geojson(api, "neighborhood-geojson", region="lima", bbox=bbox)) == ["N2"]


def test_neighborhoods_queries_do_not_grow_with_the_number_of_neighborhoods(
    api, make_region, django_assert_max_num_queries
):
    counts = []
    for n in (2, 20):
        make_region(
            f"hoods{n}",
            districts={"D": ("District", grid_cell(0, size=0.2))},
            neighborhoods={f"N{i:02d}": (f"N {i}", _small(i)) for i in range(n)},
        )
        with django_assert_max_num_queries(1) as queries:
            collection = _geojson(api, "neighborhood-geojson", region=f"hoods{n}")
        assert len(collection["features"]) == n
        assert {f["properties"]["district"] for f in collection["features"]} == {"D"}
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1]


def test_region_outlines_are_the_union_of_their_districts(api, boundaries):
    response = api.get(reverse("region-geojson"), {"zoom": 14})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/geo+json"
    collection = json.loads(b"".join(response.streaming_content))
    by_code = {f["properties"]["code"]: f for f in collection["features"]}
    assert set(by_code) == {"lima", "santiago"}
    lima = shape(by_code["lima"]["geometry"])
    expected = shapely.union_all([grid_cell(0), grid_cell(1), grid_cell(2)])
    assert lima.symmetric_difference(expected).area < 1e-9
    assert by_code["lima"]["properties"]["synthetic"] is False
