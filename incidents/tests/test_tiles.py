"""Vector tiles: incidents as MVT, and the reusable builder in geo.mvt.

Tiles are decoded here with a minimal protobuf reader (the MVT 2.1 schema: Tile > Layer >
Feature/Value), so no decoding library is needed; positions are checked against the
XYZ/Web Mercator arithmetic and against PostGIS itself.
"""

from __future__ import annotations

import math
import struct

import pytest
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from geo.geojson import GeoJSONParameterError
from geo.mvt import (
    DEFAULT_BUFFER,
    DEFAULT_EXTENT,
    HALF_WORLD_M,
    capped_tile_bytes,
    check_tile,
    pixel_grid,
    pixel_size_m,
    tile_bounds,
    tile_bytes,
    tile_response,
)
from incidents.tests.factories import make_district, make_incident, make_region, make_user
from neighborhoods.models import District

pytestmark = pytest.mark.django_db

EARTH_RADIUS_M = 6378137.0
Z = 14


# --- a minimal MVT decoder ----------------------------------------------------------------


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes):
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 2:
            size, i = _varint(buf, i)
            value, i = buf[i : i + size], i + size
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def _packed(buf: bytes) -> list[int]:
    values, i = [], 0
    while i < len(buf):
        value, i = _varint(buf, i)
        values.append(value)
    return values


def _zigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def _value(buf: bytes):
    for number, _wire, raw in _fields(buf):
        if number == 1:
            return raw.decode()
        if number == 2:
            return struct.unpack("<f", raw)[0]
        if number == 3:
            return struct.unpack("<d", raw)[0]
        if number == 4:
            return raw - (1 << 64) if raw >= 1 << 63 else raw
        if number == 5:
            return raw
        if number == 6:
            return _zigzag(raw)
        if number == 7:
            return bool(raw)
    raise ValueError("empty value")


def _geometry(commands: list[int]) -> list[list[tuple[int, int]]]:
    """Parts (lists of tile-space vertices); ClosePath repeats nothing."""
    parts: list[list[tuple[int, int]]] = []
    x = y = i = 0
    while i < len(commands):
        command, count = commands[i] & 7, commands[i] >> 3
        i += 1
        if command == 7:  # ClosePath
            continue
        for _ in range(count):
            x += _zigzag(commands[i])
            y += _zigzag(commands[i + 1])
            i += 2
            if command == 1:  # MoveTo starts a part
                parts.append([])
            parts[-1].append((x, y))
    return parts


def decode_tile(data: bytes) -> dict[str, dict]:
    layers = {}
    for number, _wire, layer_buf in _fields(data):
        assert number == 3, "a Tile holds only layers"
        layer = {"features": [], "keys": [], "values": []}
        raw_features = []
        for field, _w, value in _fields(layer_buf):
            if field == 1:
                layer["name"] = value.decode()
            elif field == 2:
                raw_features.append(value)
            elif field == 3:
                layer["keys"].append(value.decode())
            elif field == 4:
                layer["values"].append(_value(value))
            elif field == 5:
                layer["extent"] = value
            elif field == 15:
                layer["version"] = value
        for raw in raw_features:
            feature = {"id": None, "properties": {}}
            for field, _w, value in _fields(raw):
                if field == 1:
                    feature["id"] = value
                elif field == 2:
                    tags = _packed(value)
                    for k, v in zip(tags[::2], tags[1::2], strict=True):
                        feature["properties"][layer["keys"][k]] = layer["values"][v]
                elif field == 3:
                    feature["type"] = value
                elif field == 4:
                    feature["geometry"] = _geometry(_packed(value))
            layer["features"].append(feature)
        layers[layer["name"]] = layer
    return layers


# --- helpers ------------------------------------------------------------------------------


def mercator(lon: float, lat: float) -> tuple[float, float]:
    x = math.radians(lon) * EARTH_RADIUS_M
    y = math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) * EARTH_RADIUS_M
    return x, y


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    x, y = mercator(lon, lat)
    size = 2 * HALF_WORLD_M / 2**z
    return int((x + HALF_WORLD_M) // size), int((HALF_WORLD_M - y) // size)


def tile_position(lon: float, lat: float, z: int, tx: int, ty: int, extent: int = 4096):
    """Where (lon, lat) lands in tile (z, tx, ty)'s integer grid."""
    x, y = mercator(lon, lat)
    size = 2 * HALF_WORLD_M / 2**z
    min_x = -HALF_WORLD_M + tx * size
    max_y = HALF_WORLD_M - ty * size
    return round((x - min_x) / size * extent), round((max_y - y) / size * extent)


@pytest.fixture
def api(django_user_model):
    client = APIClient()
    client.force_login(make_user(django_user_model, "planner"))
    return client


@pytest.fixture
def points():
    """Three incidents in one zoom-14 tile of Lima, one in Santiago."""
    lima = make_region("lima")
    district = make_district(lima, "150101", (-77.05, -12.06, -77.03, -12.04))
    a = make_incident(-77.0412, -12.0463, category="assault", district=district)
    b = make_incident(-77.0405, -12.0471, category="graffiti", district=district)
    c = make_incident(-77.0398, -12.0452, category="homicide", district=district)
    d = make_incident(-70.6500, -33.4400, category="assault", region=make_region("santiago"))
    assert len({tile_of(i.point.x, i.point.y, Z) for i in (a, b, c)}) == 1
    return {"a": a, "b": b, "c": c, "d": d}


def tile(api, z, x, y, params=None):
    return api.get(reverse("incident-tile", kwargs={"z": z, "x": x, "y": y}), params or {})


def features_by_id(response) -> dict[int, dict]:
    assert response.status_code == 200, response
    layers = decode_tile(response.content)
    assert set(layers) == {"incidents"}
    return {f["properties"]["id"]: f for f in layers["incidents"]["features"]}


# --- the incident tile endpoint -----------------------------------------------------------


def test_tile_holds_the_incidents_with_their_properties_and_positions(api, points):
    tx, ty = tile_of(-77.0412, -12.0463, Z)
    response = tile(api, Z, tx, ty)
    assert response["Content-Type"] == "application/vnd.mapbox-vector-tile"
    assert response["Cache-Control"] == "private, no-store"
    layer = decode_tile(response.content)["incidents"]
    assert layer["version"] == 2
    assert layer["extent"] == DEFAULT_EXTENT
    features = {f["properties"]["id"]: f for f in layer["features"]}
    assert set(features) == {points[n].pk for n in "abc"}
    for name, category, family in [
        ("a", "assault", "crime"),
        ("b", "graffiti", "incivility"),
        ("c", "homicide", "crime"),
    ]:
        incident = points[name]
        feature = features[incident.pk]
        assert feature["properties"] == {"id": incident.pk, "category": category, "family": family}
        assert feature["type"] == 1  # POINT
        assert feature["geometry"] == [
            [tile_position(incident.point.x, incident.point.y, Z, tx, ty)]
        ]


def test_tile_positions_match_postgis(api, points):
    tx, ty = tile_of(-77.0412, -12.0463, Z)
    features = features_by_id(tile(api, Z, tx, ty))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, ST_X(g), ST_Y(g) FROM (SELECT id, ST_AsMVTGeom(ST_Transform(point, 3857),"
            " ST_TileEnvelope(%s, %s, %s)) AS g FROM incidents_incident) q WHERE g IS NOT NULL",
            [Z, tx, ty],
        )
        expected = {pk: [[(round(x), round(y))]] for pk, x, y in cursor.fetchall()}
    assert {pk: f["geometry"] for pk, f in features.items()} == expected


def test_tile_applies_the_filters(api, points):
    tx, ty = tile_of(-77.0412, -12.0463, Z)
    assert set(features_by_id(tile(api, Z, tx, ty, {"category": "assault,homicide"}))) == {
        points["a"].pk,
        points["c"].pk,
    }
    assert set(features_by_id(tile(api, Z, tx, ty, {"family": "incivility"}))) == {points["b"].pk}
    assert tile(api, Z, tx, ty, {"region": "santiago"}).status_code == 204
    assert tile(api, Z, tx, ty, {"from": "2030-01-01"}).status_code == 204


def test_world_tile_holds_everything(api, points):
    features = features_by_id(tile(api, 0, 0, 0))
    assert set(features) == {i.pk for i in points.values()}
    # West of the meridian and south of the equator: the lower-left quarter of the tile.
    for feature in features.values():
        ((x, y),) = feature["geometry"][0]
        assert 0 <= x < 2048 and 2048 < y <= 4096


def test_a_crowded_tile_keeps_the_most_recent_incidents_and_says_it_was_cut(api, points, settings):
    settings.INCIDENT_TILE_MAX_FEATURES = 2
    newest = sorted(points.values(), key=lambda i: (i.occurred_at, i.pk), reverse=True)[:2]
    response = tile(api, 0, 0, 0)
    assert set(features_by_id(response)) == {i.pk for i in newest}
    assert response["X-Incidents-Truncated"] == "true"
    settings.INCIDENT_TILE_MAX_FEATURES = 4
    response = tile(api, 0, 0, 0)
    assert len(features_by_id(response)) == 4
    assert "X-Incidents-Truncated" not in response


def test_empty_tile_is_204(api, points):
    response = tile(api, Z, 0, 0)
    assert response.status_code == 204
    assert response.content == b""
    assert response["Cache-Control"] == "private, no-store"


@pytest.mark.parametrize(
    ("z", "x", "y", "field"),
    [
        (25, 0, 0, "z"),
        (0, 1, 0, "x"),
        (0, 0, 1, "y"),
        (3, 8, 0, "x"),
        (3, 0, 8, "y"),
        (14, 16384, 0, "x"),
    ],
)
def test_invalid_tile_address_is_400(api, points, z, x, y, field):
    response = tile(api, z, x, y)
    assert response.status_code == 400
    assert field in response.json()


def tile_path(z, x, y) -> str:
    """The tile URL written out, not reversed: the route refuses to build some of these."""
    return reverse("incident-tile", kwargs={"z": 0, "x": 0, "y": 0}).replace(
        "/0/0/0.mvt", f"/{z}/{x}/{y}.mvt"
    )


@pytest.mark.parametrize(
    ("z", "x", "y"),
    [(2**40, 0, 0), (2**31, 0, 0), (10**8, 0, 0), (0, 2**40, 0), (0, 0, 2**63), (3, 0, 10**30)],
)
def test_a_tile_coordinate_too_long_for_any_tile_matches_no_route(api, z, x, y):
    # More than 8 digits: never a Python int that 2 is raised to (z = 2**40 took the
    # process's memory until it died).
    response = api.get(tile_path(z, x, y))
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("z", "x", "y", "field"),
    [
        (2000, 0, 0, "z"),  # was a 500 (2**2000 metres per tile overflowed a float)
        (99999999, 0, 0, "z"),
        (24, 99999999, 0, "x"),
        (24, 0, 2**24, "y"),
    ],
)
def test_a_tile_coordinate_that_fits_the_route_but_not_the_pyramid_is_400(
    api, points, z, x, y, field
):
    response = api.get(tile_path(z, x, y))
    assert response.status_code == 400
    assert field in response.json()
    assert response["Cache-Control"] == "private, no-store"


def test_the_deepest_tiles_still_match_the_route(api, points):
    # The last tile of zoom 24 has 8-digit coordinates: the route takes it.
    last = 2**24 - 1
    assert api.get(tile_path(24, last, last)).status_code == 204


def test_a_point_in_the_buffer_shows_in_the_neighbouring_tile(api):
    # Two pixels east of a tile's east edge: drawn (outside 0..4096) by the western
    # neighbour, so symbols are not cut at tile edges.
    tx, ty = tile_of(-77.0412, -12.0463, Z)
    east_edge_x = -HALF_WORLD_M + (tx + 1) * (2 * HALF_WORLD_M / 2**Z)
    lon = math.degrees((east_edge_x + 2 * pixel_size_m(Z)) / EARTH_RADIUS_M)
    incident = make_incident(lon, -12.0463, region=make_region("lima"))
    west = features_by_id(tile(api, Z, tx, ty))
    ((x, _y),) = west[incident.pk]["geometry"][0]
    assert x == DEFAULT_EXTENT + 32  # 2 px of 256 → 32 units of 4096
    east = features_by_id(tile(api, Z, tx + 1, ty))
    ((x, _y),) = east[incident.pk]["geometry"][0]
    assert x == 32


# --- geo.mvt, the reusable builder --------------------------------------------------------


@pytest.mark.parametrize(
    ("z", "x", "y"), [(0, 0, 0), (3, 5, 2), (14, 4680, 8508), (24, 1, 16777214)]
)
@pytest.mark.parametrize("margin", [0.0, DEFAULT_BUFFER / DEFAULT_EXTENT])
def test_tile_bounds_match_st_tileenvelope(z, x, y, margin):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            "ST_TileEnvelope(%s, %s, %s, margin => %s) AS e",
            [z, x, y, margin],
        )
        expected = cursor.fetchone()
    ours = tile_bounds(z, x, y, margin=margin)
    assert ours.srid == 3857
    min_x, min_y, max_x, max_y = ours.extent
    # PostGIS clamps a margin at the edges of the world (always in y, in x when it spans
    # the whole width); we need not (nothing is stored beyond them): compare inside it.
    clamp = lambda v: max(-HALF_WORLD_M, min(HALF_WORLD_M, v))  # noqa: E731
    for ours_value, theirs in zip((min_x, min_y, max_x, max_y), expected, strict=True):
        assert clamp(ours_value) == pytest.approx(clamp(theirs), abs=1e-6)


def test_pixel_size():
    assert pixel_size_m(0) == pytest.approx(156543.03392804097)
    assert pixel_size_m(10) == pytest.approx(152.8740565703525)


@pytest.mark.parametrize(("z", "x", "y"), [(-1, 0, 0), (25, 0, 0), (2, -1, 0), (2, 0, 4)])
def test_check_tile_refuses(z, x, y):
    with pytest.raises(GeoJSONParameterError):
        check_tile(z, x, y)


@pytest.mark.parametrize("z", [-1, 25, 2000, 2**40])
def test_every_tile_function_refuses_a_zoom_outside_the_pyramid_first(z):
    """Before computing 2**z (z = 2**40 would be a number of a trillion bits)."""
    calls = {
        "tile_bounds": lambda: tile_bounds(z, 0, 0),
        "tile_bytes": lambda: tile_bytes(
            District.objects.all(), geom_field="geom", properties={}, z=z, x=0, y=0, layer="d"
        ),
        "capped_tile_bytes": lambda: capped_tile_bytes(
            District.objects.all(),
            max_features=10,
            geom_field="geom",
            properties={},
            z=z,
            x=0,
            y=0,
            layer="d",
        ),
    }
    for name, call in calls.items():
        with pytest.raises(GeoJSONParameterError) as exc:
            call()
        assert exc.value.field == "z", name


@pytest.mark.parametrize("zoom", [-1, 25, 2000, 2**40])
def test_pixel_grids_refuse_a_zoom_outside_the_pyramid_first(zoom):
    for call in (lambda: pixel_size_m(zoom), lambda: pixel_grid("point", zoom, 60)):
        with pytest.raises(GeoJSONParameterError) as exc:
            call()
        assert exc.value.field == "zoom"


@pytest.mark.parametrize("name", ["_mvt_geom", "bad name", "x;drop", "", "1abc"])
def test_tile_bytes_refuses_unsafe_property_names(name):
    with pytest.raises(ValueError, match="vector tile property name"):
        tile_bytes(
            District.objects.all(),
            geom_field="geom",
            properties={name: "code"},
            z=0,
            x=0,
            y=0,
            layer="x",
        )


def test_tile_bytes_serves_any_model(points):
    """The builder is not incident-specific: districts as polygons, own layer name."""
    district = District.objects.get(code="150101")
    tx, ty = tile_of(-77.04, -12.05, 12)
    data = tile_bytes(
        District.objects.all(),
        geom_field="geom",
        properties={"code": "code", "name": "name", "population": "population"},
        z=12,
        x=tx,
        y=ty,
        layer="districts",
        extent=512,
        buffer=16,
    )
    layers = decode_tile(data)
    assert set(layers) == {"districts"}
    assert layers["districts"]["extent"] == 512
    (feature,) = layers["districts"]["features"]
    assert feature["type"] == 3  # POLYGON
    # NULL attributes are left out of the feature.
    assert feature["properties"] == {"code": "150101", "name": district.name}
    ring = feature["geometry"][0]
    assert len(ring) >= 4
    assert all(-16 <= x <= 512 + 16 and -16 <= y <= 512 + 16 for x, y in ring)


def test_tile_bytes_empty_and_response():
    data = tile_bytes(
        District.objects.all(),
        geom_field="geom",
        properties={"code": "code"},
        z=0,
        x=0,
        y=0,
        layer="districts",
    )
    assert data == b""
    assert tile_response(data).status_code == 204
    response = tile_response(b"\x1a\x00")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.mapbox-vector-tile"
