"""Incident API for planners: filters, GeoJSON, CSV, counts, clusters, heat map, categories.

A small hand-built world where the expected ids of every filter can be read off the
table below. All times UTC unless a test overrides TIME_ZONE.

    name  category        region    district nbhd  source  point (lon, lat)     when
    a     assault         lima      L1       N1    s1      (-77.095, -12.095)   03-10 12:00
    b     graffiti        lima      L1       -     s1      (-77.092, -12.092)   03-11 00:00
    c     burglary (day)  lima      L2       -     s2      (-77.085, -12.095)   [03-09, 03-10)
    d     homicide (rng)  lima      L2       -     s1      (-77.082, -12.092)   [02-25, 03-12)
    e     sexual-offence  lima      L1       -     s1      (-77.098, -12.098)   03-12 23:59:59
    f     assault         santiago  S1 (=L1) -     s1      (-70.695, -33.495)   03-10 08:00
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from geo.mvt import pixel_size_m
from incidents.models import Category, TimePrecision
from incidents.tests.factories import (
    make_district,
    make_incident,
    make_incidents,
    make_label,
    make_neighborhood,
    make_region,
    make_source,
    make_user,
)

pytestmark = pytest.mark.django_db

UTC = dt.UTC
EARTH_RADIUS_M = 6378137.0


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0, month: int = 3) -> dt.datetime:
    return dt.datetime(2024, month, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture
def planner(django_user_model):
    return make_user(django_user_model, "planner")


@pytest.fixture
def api(planner):
    client = APIClient()
    client.force_login(planner)
    return client


@pytest.fixture
def world():
    lima = make_region("lima", lon=-77.05, lat=-12.05)
    santiago = make_region("santiago", lon=-70.65, lat=-33.45)
    l1 = make_district(lima, "D1", (-77.10, -12.10, -77.09, -12.09), name="Lima Uno")
    l2 = make_district(lima, "D2", (-77.09, -12.10, -77.08, -12.09), name="Lima Dos")
    s1 = make_district(santiago, "D1", (-70.70, -33.50, -70.69, -33.49), name="Santiago Uno")
    n1 = make_neighborhood(lima, "N1", (-77.10, -12.10, -77.094, -12.094), district=l1)
    src1, src2 = make_source("s1"), make_source("s2")
    ids = {
        "a": make_incident(
            -77.095,
            -12.095,
            category="assault",
            when=at(10, 12),
            district=l1,
            neighborhood=n1,
            source=src1,
        ),
        "b": make_incident(
            -77.092, -12.092, category="graffiti", when=at(11), district=l1, source=src1
        ),
        "c": make_incident(
            -77.085,
            -12.095,
            category="burglary",
            when=at(9),
            until=at(10),
            precision=TimePrecision.DAY,
            district=l2,
            source=src2,
        ),
        "d": make_incident(
            -77.082,
            -12.092,
            category="homicide",
            when=at(25, month=2),
            until=at(12),
            district=l2,
            source=src1,
        ),
        "e": make_incident(
            -77.098,
            -12.098,
            category="sexual-offence",
            when=at(12, 23, 59, 59),
            district=l1,
            source=src1,
        ),
        "f": make_incident(
            -70.695, -33.495, category="assault", when=at(10, 8), district=s1, source=src1
        ),
    }
    return {name: incident.pk for name, incident in ids.items()}


def get(api, name, params=None, **kwargs):
    return api.get(reverse(name, kwargs=kwargs or None), params or {})


def collection(response) -> dict:
    assert response.status_code == 200, response
    assert response["Content-Type"] == "application/geo+json"
    return json.loads(b"".join(response.streaming_content))


def names(world, ids) -> set[str]:
    by_id = {pk: name for name, pk in world.items()}
    return {by_id[i] for i in ids}


def geojson_names(api, world, params) -> set[str]:
    data = collection(get(api, "incident-geojson", params))
    return names(world, [f["id"] for f in data["features"]])


def csv_rows(response) -> list[dict]:
    assert response.status_code == 200, response
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


# --- filters ----------------------------------------------------------------------------

FILTER_CASES = [
    ({}, "abcdef"),
    ({"category": "assault"}, "af"),
    ({"category": "assault,homicide"}, "adf"),
    ({"category": " assault , homicide ,"}, "adf"),
    ({"family": "incivility"}, "b"),
    ({"family": "crime"}, "acdef"),
    ({"region": "lima"}, "abcde"),
    ({"region": "santiago"}, "f"),
    ({"district": "D2"}, "cd"),  # D2 exists only in lima: no region needed
    ({"district": "D1", "region": "lima"}, "abe"),
    ({"district": "D1", "region": "santiago"}, "f"),
    ({"neighborhood": "N1"}, "a"),
    ({"source": "s2"}, "c"),
    ({"source": "s1"}, "abdef"),
    # Dates: whole days, both ends included; windows count when they overlap.
    ({"from": "2024-03-10", "to": "2024-03-10"}, "adf"),
    ({"from": "2024-03-11"}, "bde"),
    ({"to": "2024-03-09"}, "cd"),
    ({"from": "2024-03-12", "to": "2024-03-12"}, "e"),
    ({"from": "2024-03-13"}, ""),
    ({"to": "2024-02-24"}, ""),
    ({"from": "2024-02-25", "to": "2024-02-25"}, "d"),
    # bbox: edges included (a sits on the min corner).
    ({"bbox": "-77.095,-12.095,-77.09,-12.09"}, "ab"),
    ({"bbox": "-77.0949,-12.0949,-77.09,-12.09"}, "b"),
    ({"bbox": "-180,-90,180,90"}, "abcdef"),
    ({"bbox": "-71,-34,-70,-33"}, "f"),
    # Combined.
    ({"region": "lima", "family": "crime", "from": "2024-03-10", "to": "2024-03-12"}, "ade"),
    (
        {"bbox": "-77.1,-12.1,-77.08,-12.09", "category": "assault,burglary", "to": "2024-03-09"},
        "c",
    ),
    ({"district": "D1", "region": "lima", "source": "s1", "family": "crime"}, "ae"),
    ({"neighborhood": "N1", "category": "graffiti"}, ""),
]


@pytest.mark.parametrize(("params", "expected"), FILTER_CASES)
def test_filters_select_the_expected_incidents(api, world, params, expected):
    assert geojson_names(api, world, params) == set(expected)


@pytest.mark.parametrize(("params", "expected"), FILTER_CASES)
def test_every_endpoint_agrees_on_a_filter(api, world, params, expected):
    ids = {world[n] for n in expected}
    stats = get(api, "incident-stats", params).json()
    assert stats["total"] == len(ids)
    rows = csv_rows(get(api, "incident-export", params))
    assert {int(r["id"]) for r in rows} == ids
    clusters = collection(get(api, "incident-clusters", {**params, "zoom": 3}))
    assert sum(f["properties"]["count"] for f in clusters["features"]) == len(ids)
    heat = get(api, "incident-heat", {**params, "zoom": 3}).json()
    assert sum(p[2] for p in heat["points"]) == len(ids)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        # 2024-03-10 in Lima (UTC-5) runs from 05:00 UTC on the 10th to 05:00 on the 11th.
        ({"from": "2024-03-10", "to": "2024-03-10"}, "abdf"),
        # 2024-03-12 local: e (23:59:59 UTC on the 12th) is 18:59 local.
        ({"from": "2024-03-12", "to": "2024-03-12"}, "e"),
        ({"from": "2024-03-13"}, ""),
        ({"to": "2024-03-08"}, "cd"),  # c starts 19:00 local on the 8th
    ],
)
def test_days_are_in_the_configured_time_zone(api, world, settings, params, expected):
    settings.TIME_ZONE = "America/Lima"
    assert geojson_names(api, world, params) == set(expected)


def test_a_window_ending_exactly_at_the_start_of_the_day_does_not_count(api, world):
    # c is [03-09 00:00, 03-10 00:00): its end is exclusive.
    assert "c" not in geojson_names(api, world, {"from": "2024-03-10"})
    assert "c" in geojson_names(api, world, {"to": "2024-03-09"})


def test_repeated_category_parameters_add_up(api, world):
    response = api.get(reverse("incident-geojson") + "?category=assault&category=homicide")
    assert names(world, [f["id"] for f in collection(response)["features"]]) == set("adf")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "a,b,c,d"}, "bbox"),
        ({"bbox": "-77,-12,-78,-11"}, "bbox"),
        ({"from": "2024-3-1"}, "from"),
        ({"from": "2024-02-30"}, "from"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2024-03-10T00:00"}, "to"),
        ({"from": "2024-03-11", "to": "2024-03-10"}, "to"),
        ({"category": "assault,no-such-code"}, "category"),
        ({"family": "misdemeanour"}, "family"),
        ({"region": "atlantis"}, "region"),
        ({"district": "D9"}, "district"),
        ({"district": "D1"}, "district"),  # in lima and santiago: region needed
        ({"district": "D2", "region": "santiago"}, "district"),
        ({"neighborhood": "N9"}, "neighborhood"),
        ({"neighborhood": "N1", "region": "santiago"}, "neighborhood"),
        ({"source": "nobody"}, "source"),
    ],
)
def test_bad_filters_are_400_with_field_messages(api, world, params, field):
    for name, extra in [
        ("incident-geojson", {}),
        ("incident-export", {}),
        ("incident-stats", {}),
        ("incident-clusters", {"zoom": 10}),
        ("incident-heat", {"zoom": 10}),
    ]:
        response = get(api, name, {**params, **extra})
        assert response.status_code == 400, (name, response)
        assert field in response.json(), (name, response.json())
        assert response["Cache-Control"] == "private, no-store"
    response = get(api, "incident-tile", params, z=10, x=0, y=0)
    assert response.status_code == 400
    assert field in response.json()


def test_every_bad_field_is_named_at_once(api, world):
    response = get(
        api,
        "incident-geojson",
        {
            "bbox": "x",
            "from": "nope",
            "category": "zzz",
            "family": "x",
            "region": "x",
            "source": "x",
        },
    )
    assert response.status_code == 400
    assert set(response.json()) == {"bbox", "from", "category", "family", "region", "source"}
    assert response.json()["category"] == ["Unknown category code: zzz"]


@pytest.mark.parametrize("name", ["incident-clusters", "incident-heat"])
def test_zoom_and_filter_errors_are_reported_together(api, world, name):
    response = get(api, name, {"family": "x"})
    assert response.status_code == 400
    assert set(response.json()) == {"zoom", "family"}


def test_error_messages_never_echo_coordinates(api, world):
    response = get(api, "incident-geojson", {"bbox": "-77.095,-12.095,-77.099,-12.09"})
    assert response.status_code == 400
    assert "77" not in response.content.decode()


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("incident-clusters", {}, "zoom"),
        ("incident-clusters", {"zoom": "25"}, "zoom"),
        ("incident-clusters", {"zoom": "x"}, "zoom"),
        ("incident-heat", {}, "zoom"),
        ("incident-heat", {"zoom": "-1"}, "zoom"),
        ("incident-clusters", {"zoom": str(2**40)}, "zoom"),
        ("incident-heat", {"zoom": str(2**40)}, "zoom"),
        ("incident-geojson", {"limit": "0"}, "limit"),
        ("incident-geojson", {"limit": "abc"}, "limit"),
        ("incident-geojson", {"limit": "5001"}, "limit"),
        ("incident-geojson", {"offset": "-1"}, "offset"),
        ("incident-geojson", {"after_id": "x"}, "after_id"),
    ],
)
def test_bad_paging_and_zoom_are_400(api, world, name, params, field):
    response = get(api, name, params)
    assert response.status_code == 400
    assert field in response.json()


# --- GeoJSON ----------------------------------------------------------------------------


def test_geojson_feature_properties(api, world):
    data = collection(get(api, "incident-geojson", {"category": "burglary"}))
    assert data["type"] == "FeatureCollection"
    (feature,) = data["features"]
    assert feature["id"] == world["c"]
    assert feature["geometry"] == {"type": "Point", "coordinates": [-77.085, -12.095]}
    assert feature["properties"] == {
        "id": world["c"],
        "category": "burglary",
        "category_name": "Robo a casa habitación",
        "family": "crime",
        "sensitive": False,
        "occurred_at": "2024-03-09T00:00:00+00:00",
        "occurred_until": "2024-03-10T00:00:00+00:00",
        "time_precision": "day",
        "source": "s2",
        "district": "D2",
        "district_name": "Lima Dos",
        "neighborhood": None,
        "neighborhood_name": None,
        "location_quality": "exact",
    }
    assert data["numberReturned"] == 1
    assert data["truncated"] is False
    assert data["bbox"] == [-77.085, -12.095, -77.085, -12.095]


def test_geojson_sensitive_and_neighborhood(api, world):
    features = {
        f["id"]: f["properties"] for f in collection(get(api, "incident-geojson"))["features"]
    }
    assert features[world["e"]]["sensitive"] is True
    assert features[world["a"]]["neighborhood"] == "N1"
    assert features[world["a"]]["neighborhood_name"] == "Barrio N1"
    assert features[world["a"]]["occurred_until"] is None
    assert features[world["a"]]["time_precision"] == "exact"


def test_geojson_category_names_follow_the_language(api, world):
    response = api.get(
        reverse("incident-geojson"), {"category": "burglary"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    (feature,) = collection(response)["features"]
    assert feature["properties"]["category_name"] == "Burglary"


def test_geojson_is_ordered_by_id_and_private(api, world):
    response = get(api, "incident-geojson")
    assert response["Cache-Control"] == "private, no-store"
    ids = [f["id"] for f in collection(response)["features"]]
    assert ids == sorted(world.values())


def test_geojson_empty_result(api, world):
    data = collection(get(api, "incident-geojson", {"from": "2030-01-01"}))
    assert data["features"] == []
    assert data["numberReturned"] == 0
    assert data["truncated"] is False
    assert "bbox" not in data


def test_geojson_cap_truncates(api, world, settings):
    settings.INCIDENTS_MAX_FEATURES = 4
    data = collection(get(api, "incident-geojson"))
    assert [f["id"] for f in data["features"]] == sorted(world.values())[:4]
    assert data["truncated"] is True
    assert data["numberReturned"] == 4
    assert data["limit"] == 4
    assert get(api, "incident-geojson", {"limit": 5}).status_code == 400


def test_geojson_limit_exactly_the_result_is_not_truncated(api, world):
    data = collection(get(api, "incident-geojson", {"limit": 6}))
    assert data["numberReturned"] == 6
    assert data["truncated"] is False


def test_geojson_default_cap_is_5000(api, world):
    assert collection(get(api, "incident-geojson"))["limit"] == 5000


def test_geojson_cap_never_exceeds_the_global_geojson_cap(api, world, settings):
    settings.INCIDENTS_MAX_FEATURES = 100
    settings.GEOJSON_MAX_FEATURES = 3
    data = collection(get(api, "incident-geojson"))
    assert (data["limit"], data["numberReturned"], data["truncated"]) == (3, 3, True)


def test_geojson_offset_pages_cover_everything_once(api, world):
    seen = []
    for offset in range(0, 7, 2):
        data = collection(get(api, "incident-geojson", {"limit": 2, "offset": offset}))
        seen.extend(f["id"] for f in data["features"])
        assert data["truncated"] is (offset + 2 < 6)
    assert seen == sorted(world.values())


def test_geojson_keyset_pages_cover_everything_once(api, world):
    seen, after, pages = [], None, 0
    while True:
        params = {"limit": 4} if after is None else {"limit": 4, "after_id": after}
        data = collection(get(api, "incident-geojson", params))
        pages += 1
        seen.extend(f["id"] for f in data["features"])
        if not data["truncated"]:
            break
        after = data["features"][-1]["id"]
    assert pages == 2
    assert seen == sorted(world.values())


def test_geojson_keyset_with_filter(api, world):
    data = collection(get(api, "incident-geojson", {"region": "lima", "after_id": world["c"]}))
    assert names(world, [f["id"] for f in data["features"]]) == {"d", "e"}


def _geojson_query_count(api, params) -> int:
    with CaptureQueriesContext(connection) as queries:
        collection(get(api, "incident-geojson", params))
    return len(queries)


def test_geojson_query_count_does_not_grow_with_the_result(
    api, world, django_assert_max_num_queries
):
    params = {"region": "lima", "category": "assault", "district": "D1", "source": "s1"}
    small = _geojson_query_count(api, params)
    lima = make_region("lima")
    district = lima.district_set.get(code="D1")
    make_incidents(
        [(-77.099 + i * 0.0001, -12.099) for i in range(40)],
        category="assault",
        district=district,
        source=make_source("s1"),
    )
    with django_assert_max_num_queries(small):
        data = collection(get(api, "incident-geojson", params))
    assert data["numberReturned"] == 41
    # session + user + role check + 4 lookups (category, region, district, source) + the
    # features: well bounded whatever the size.
    assert small <= 9, small


# --- CSV --------------------------------------------------------------------------------


def test_csv_header_rows_and_headers(api, world):
    response = get(api, "incident-export", {"category": "burglary"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Cache-Control"] == "private, no-store"
    assert response["Content-Disposition"] == 'attachment; filename="incidents.csv"'
    assert response.streaming
    (row,) = csv_rows(response)
    assert row == {
        "id": str(world["c"]),
        "source": "s2",
        "external_id": row["external_id"],
        "label": "burglary",
        "category": "burglary",
        "category_name": "Robo a casa habitación",
        "family": "crime",
        "sensitive": "false",
        "occurred_at": "2024-03-09T00:00:00+00:00",
        "occurred_until": "2024-03-10T00:00:00+00:00",
        "time_precision": "day",
        "region": "lima",
        "district": "D2",
        "district_name": "Lima Dos",
        "neighborhood": "",
        "neighborhood_name": "",
        "location_quality": "exact",
        "lon": "-77.085000",
        "lat": "-12.095000",
    }


def test_csv_empty_result_still_has_its_header(api, world):
    response = get(api, "incident-export", {"from": "2030-01-01"})
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    assert text.splitlines() == [
        "id,source,external_id,label,category,category_name,family,sensitive,occurred_at,"
        "occurred_until,time_precision,region,district,district_name,neighborhood,"
        "neighborhood_name,location_quality,lon,lat"
    ]


def test_csv_neutralises_formulas(api, world):
    region = make_region("lima")
    district = make_district(
        region, "=1+1", (-77.2, -12.2, -77.19, -12.19), name='=HYPERLINK("http://x","y")'
    )
    hood = make_neighborhood(
        region,
        "@SUM(A1)",
        (-77.2, -12.2, -77.195, -12.195),
        district=district,
        name="+cmd|' /C calc'!A0",
    )
    source = make_source("s1")
    make_label(source, "assault", label="-2+3")
    incident = make_incident(
        -77.199,
        -12.199,
        category="assault",
        label="-2+3",
        district=district,
        neighborhood=hood,
        source=source,
        external_id="\tTAB",
    )
    (row,) = [r for r in csv_rows(get(api, "incident-export")) if r["id"] == str(incident.pk)]
    assert row["district"] == "'=1+1"
    assert row["district_name"] == '\'=HYPERLINK("http://x","y")'
    assert row["neighborhood"] == "'@SUM(A1)"
    assert row["neighborhood_name"] == "'+cmd|' /C calc'!A0"
    assert row["label"] == "'-2+3"
    assert row["external_id"] == "'\tTAB"
    # Numbers we wrote ourselves stay numbers, minus sign included.
    assert row["lon"] == "-77.199000"
    assert row["lat"] == "-12.199000"


def test_csv_names_follow_the_language(api, world):
    response = api.get(
        reverse("incident-export"), {"category": "burglary"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert csv_rows(response)[0]["category_name"] == "Burglary"


def test_csv_ignores_accept_and_format(api, world):
    response = api.get(reverse("incident-export") + "?format=csv", HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    assert len(csv_rows(response)) == 6


# --- stats ------------------------------------------------------------------------------


def test_stats_counts_per_category(api, world):
    response = get(api, "incident-stats", {"region": "lima"})
    assert response["Cache-Control"] == "private, no-store"
    data = response.json()
    assert data["total"] == 5
    assert data["by_category"] == [
        {
            "code": "assault",
            "name": "Lesiones y agresiones",
            "family": "crime",
            "sensitive": False,
            "count": 1,
        },
        {
            "code": "burglary",
            "name": "Robo a casa habitación",
            "family": "crime",
            "sensitive": False,
            "count": 1,
        },
        {
            "code": "graffiti",
            "name": "Grafiti",
            "family": "incivility",
            "sensitive": False,
            "count": 1,
        },
        {
            "code": "homicide",
            "name": "Homicidio",
            "family": "crime",
            "sensitive": False,
            "count": 1,
        },
        {
            "code": "sexual-offence",
            "name": "Delitos sexuales",
            "family": "crime",
            "sensitive": True,
            "count": 1,
        },
    ]


def test_stats_most_frequent_first_and_in_english(api, world):
    response = api.get(reverse("incident-stats"), HTTP_ACCEPT_LANGUAGE="en")
    data = response.json()
    assert data["total"] == 6
    assert data["by_category"][0] == {
        "code": "assault",
        "name": "Assault",
        "family": "crime",
        "sensitive": False,
        "count": 2,
    }


def test_stats_empty(api, world):
    assert get(api, "incident-stats", {"from": "2030-01-01"}).json() == {
        "total": 0,
        "by_category": [],
    }


# --- clusters ---------------------------------------------------------------------------


def _spread(n: int, origin=(-77.10, -12.10), step=0.0007):
    """n points on a square lattice ~75 m apart."""
    side = int(n**0.5) + 1
    return [(origin[0] + (i % side) * step, origin[1] + (i // side) * step) for i in range(n)]


@pytest.mark.parametrize("zoom", [0, 5, 10, 12, 14, 15, 18])
def test_clusters_sum_to_the_total(api, world, zoom):
    make_incidents(_spread(300), category="theft-person", region=make_region("lima"))
    total = get(api, "incident-stats").json()["total"]
    data = collection(get(api, "incident-clusters", {"zoom": zoom}))
    assert total == 306
    assert sum(f["properties"]["count"] for f in data["features"]) == total
    assert data["truncated"] is False
    assert data["zoom"] == zoom
    for feature in data["features"]:
        lon, lat = feature["geometry"]["coordinates"]
        min_lon, min_lat, max_lon, max_lat = feature["properties"]["bbox"]
        assert min_lon - 1e-6 <= lon <= max_lon + 1e-6
        assert min_lat - 1e-6 <= lat <= max_lat + 1e-6


def test_clusters_merge_near_points_and_split_far_ones(api, world):
    # At zoom 14 a 60-pixel cell is ~570 m (Web Mercator metres): a and b (~450 m apart
    # at this latitude) may share one; lima and santiago never do.
    data = collection(get(api, "incident-clusters", {"zoom": 14, "region": "santiago"}))
    (only,) = data["features"]
    assert only["properties"]["count"] == 1
    assert only["geometry"]["coordinates"] == [-70.695, -33.495]
    assert only["properties"]["bbox"] == [-70.695, -33.495, -70.695, -33.495]
    assert only["id"] == world["f"]

    low = collection(get(api, "incident-clusters", {"zoom": 2}))
    counts = sorted(f["properties"]["count"] for f in low["features"])
    assert counts == [1, 5]
    big = max(low["features"], key=lambda f: f["properties"]["count"])
    assert big["properties"]["bbox"] == [-77.098, -12.098, -77.082, -12.092]
    # The cluster sits at the mean position of its incidents.
    lon, lat = big["geometry"]["coordinates"]
    assert lon == pytest.approx((-77.095 - 77.092 - 77.085 - 77.082 - 77.098) / 5, abs=1e-6)
    assert lat == pytest.approx((-12.095 - 12.092 - 12.095 - 12.092 - 12.098) / 5, abs=1e-6)


def _lon_at_mercator_x(x: float) -> float:
    return math.degrees(x / EARTH_RADIUS_M)


def _cell_centre_x(lon: float, zoom: int, pixels: int) -> float:
    """Web Mercator x of the node of the ~``pixels`` grid nearest to ``lon``."""
    size = pixels * pixel_size_m(zoom)
    return round(math.radians(lon) * EARTH_RADIUS_M / size) * size


def test_clusters_grid_is_about_60_pixels(api, world):
    # Two points 100 m apart around a grid node: one cluster at zoom 12 (cell ~2.3 km),
    # two at zoom 18 (cell ~36 m).
    centre = _cell_centre_x(-77.3, 12, 60)
    lima = make_region("lima")
    make_incidents(
        [(_lon_at_mercator_x(centre - 50), -12.3), (_lon_at_mercator_x(centre + 50), -12.3)],
        category="noise",
        region=lima,
    )
    params = {"category": "noise"}
    (one,) = collection(get(api, "incident-clusters", {**params, "zoom": 12}))["features"]
    assert one["properties"]["count"] == 2
    two = collection(get(api, "incident-clusters", {**params, "zoom": 18}))["features"]
    assert [f["properties"]["count"] for f in two] == [1, 1]
    # Two points 250 m apart across a grid line at zoom 14 (~570 m cells) split...
    edge = _cell_centre_x(-77.3, 14, 60) + 60 * pixel_size_m(14) / 2
    make_incidents(
        [(_lon_at_mercator_x(edge - 125), -12.3), (_lon_at_mercator_x(edge + 125), -12.3)],
        category="litter",
        region=lima,
    )
    split = collection(get(api, "incident-clusters", {"category": "litter", "zoom": 14}))
    assert len(split["features"]) == 2
    # ...and share one at zoom 12, whose lines lie ~287 m from every zoom-14 line.
    merged = collection(get(api, "incident-clusters", {"category": "litter", "zoom": 12}))
    assert len(merged["features"]) == 1


def test_clusters_cap(api, world, settings):
    settings.INCIDENTS_MAX_CELLS = 1
    data = collection(get(api, "incident-clusters", {"zoom": 2}))
    assert data["truncated"] is True
    # The largest cluster is kept.
    assert [f["properties"]["count"] for f in data["features"]] == [5]


# --- heat -------------------------------------------------------------------------------


def test_heat_points_are_lat_lon_weight(api, world):
    data = get(api, "incident-heat", {"zoom": 16, "region": "santiago"}).json()
    assert data == {"points": [[-33.495, -70.695, 1]], "max": 1, "truncated": False}


def test_heat_axis_order_on_an_asymmetric_point(api, world):
    # Latitude 48.85, longitude 2.35: swapped axes would be obvious.
    make_incident(2.35, 48.85, category="noise", region=make_region("paris", lon=2.35, lat=48.85))
    data = get(api, "incident-heat", {"zoom": 12, "category": "noise"}).json()
    assert data["points"] == [[48.85, 2.35, 1]]


def test_heat_aggregates_and_reports_the_max(api, world):
    centre = _cell_centre_x(-77.3, 16, 8)
    lima = make_region("lima")
    # Four incidents within a metre of a grid node: one cell of weight 4 at its mean.
    make_incidents(
        [(_lon_at_mercator_x(centre + dx), -12.3) for dx in (-0.6, -0.2, 0.2, 1.0)],
        category="noise",
        region=lima,
    )
    data = get(api, "incident-heat", {"zoom": 16, "category": "noise"}).json()
    assert data["max"] == 4
    ((lat, lon, weight),) = data["points"]
    assert weight == 4
    assert lat == pytest.approx(-12.3, abs=1e-6)
    assert lon == pytest.approx(_lon_at_mercator_x(centre + 0.1), abs=1e-6)
    data = get(api, "incident-heat", {"zoom": 10}).json()
    assert sum(p[2] for p in data["points"]) == 10
    assert data["max"] == max(p[2] for p in data["points"])
    assert data["max"] >= 4


def test_heat_empty(api, world):
    assert get(api, "incident-heat", {"zoom": 5, "from": "2030-01-01"}).json() == {
        "points": [],
        "max": 0,
        "truncated": False,
    }


def test_heat_cap_keeps_heaviest(api, world, settings):
    settings.INCIDENTS_MAX_CELLS = 1
    lima = make_region("lima")
    make_incidents([(-77.3, -12.3)] * 3, category="noise", region=lima)
    data = get(api, "incident-heat", {"zoom": 18}).json()
    assert data["truncated"] is True
    assert data["points"] == [[-12.3, -77.3, 3]]
    assert data["max"] == 3


# --- categories -------------------------------------------------------------------------


def test_categories_list(api, world):
    response = get(api, "category-list")
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"
    data = response.json()
    assert len(data) == Category.objects.count()
    burglary = next(c for c in data if c["code"] == "burglary")
    assert burglary == {
        "code": "burglary",
        "name": "Robo a casa habitación",
        "name_es": "Robo a casa habitación",
        "name_en": "Burglary",
        "family": "crime",
        "sensitive": False,
        "unclassified": False,
    }
    assert next(c for c in data if c["code"] == "sexual-offence")["sensitive"] is True
    # crime before incivility, codes in order within a family.
    assert [c["family"] for c in data] == sorted(c["family"] for c in data)


def test_categories_in_english_and_unclassified(api, world):
    Category.objects.create(
        code="unclassified-x",
        name_es="Sin clasificar: x",
        name_en="Unclassified: x",
        family="crime",
        unclassified=True,
    )
    data = api.get(reverse("category-list"), HTTP_ACCEPT_LANGUAGE="en").json()
    assert next(c for c in data if c["code"] == "burglary")["name"] == "Burglary"
    assert next(c for c in data if c["code"] == "unclassified-x")["unclassified"] is True


def test_csv_times_are_in_the_regions_time_zone(api):
    region = make_region("lima-tz")
    region.time_zone = "America/Lima"
    region.save(update_fields=["time_zone"])
    district = make_district(region, "TZ1", (-77.1, -12.1, -77.0, -12.0))
    incident = make_incident(
        -77.05,
        -12.05,
        district=district,
        when=dt.datetime(2024, 3, 9, 5, 30, tzinfo=dt.UTC),
        until=dt.datetime(2024, 3, 9, 6, 30, tzinfo=dt.UTC),
    )
    (row,) = [r for r in csv_rows(get(api, "incident-export")) if r["id"] == str(incident.pk)]
    assert row["occurred_at"] == "2024-03-09T00:30:00-05:00"  # the same instant, Lima's clock
    assert row["occurred_until"] == "2024-03-09T01:30:00-05:00"
