"""Who may read incidents: police planners and superusers; nobody else, from any URL.

Denied requests are refused before any parameter is read, so neither a result, an error
message nor an export ever carries a coordinate to them.
"""

from __future__ import annotations

import json
import math

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import StaffProfile
from incidents.tests.factories import make_district, make_incident, make_region, make_user

pytestmark = pytest.mark.django_db

# An unusual coordinate whose digits would be easy to spot in any response.
LON, LAT = -77.0123457, -12.0456789
DIGITS = ("0123457", "0456789", "77.01", "12.04")
TILE_Z = 14


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


TILE_X, TILE_Y = tile_of(LON, LAT, TILE_Z)

# (url name, kwargs, query params, status for planners)
ENDPOINTS = [
    ("incident-geojson", {}, {}, 200),
    ("incident-export", {}, {}, 200),
    ("incident-stats", {}, {}, 200),
    ("incident-clusters", {}, {"zoom": 10}, 200),
    ("incident-heat", {}, {"zoom": 10}, 200),
    ("incident-tile", {"z": TILE_Z, "x": TILE_X, "y": TILE_Y}, {}, 200),
    ("incident-tile", {"z": TILE_Z, "x": 0, "y": 0}, {}, 204),
    ("category-list", {}, {}, 200),
]
ENDPOINT_IDS = [f"{name}-{status}" for name, _kw, _p, status in ENDPOINTS]
# Requests a planner would get a 400 for: others must still get 403, never a hint.
BAD_REQUESTS = [
    ("incident-geojson", {}, {"bbox": "1,2", "limit": "0"}),
    ("incident-export", {}, {"category": "nope"}),
    ("incident-stats", {}, {"from": "2024-13-01"}),
    ("incident-clusters", {}, {}),
    ("incident-heat", {}, {"zoom": "99"}),
    ("incident-tile", {"z": 99, "x": 0, "y": 0}, {}),
    ("incident-tile", {"z": 1, "x": 5, "y": 5}, {}),
]

ALLOWED = ["planner", "superuser"]
DENIED = ["anonymous", "municipal", "program", "staff", "viewer"]


@pytest.fixture
def incident():
    region = make_region("lima")
    district = make_district(region, "150101", (-77.02, -12.05, -77.0, -12.04))
    return make_incident(LON, LAT, district=district, category="sexual-offence")


@pytest.fixture
def client_for(django_user_model, incident):
    def build(who: str) -> APIClient:
        client = APIClient()
        if who == "anonymous":
            return client
        if who == "superuser":
            user = make_user(django_user_model, superuser=True)
        elif who == "staff":
            # Staff flag alone: may enter the admin, not read incidents.
            user = make_user(django_user_model, username="staffer", is_staff=True)
        elif who == "viewer":
            # Holds the model permission directly but is not a planner.
            user = make_user(django_user_model, username="viewer", is_staff=True)
            user.user_permissions.add(Permission.objects.get(codename="view_incident"))
        else:
            user = make_user(django_user_model, who, is_staff=True)
            if who == "municipal":
                StaffProfile.objects.create(user=user, district=incident.district)
        client.force_login(user)
        return client

    return build


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.parametrize("who", ALLOWED)
@pytest.mark.parametrize(("name", "kwargs", "params", "status"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_planners_and_superusers_may_read(client_for, who, name, kwargs, params, status):
    response = client_for(who).get(reverse(name, kwargs=kwargs or None), params)
    assert response.status_code == status
    assert response["Cache-Control"] == "private, no-store"
    body = _body(response)
    if status == 204:
        assert body == b""
    elif name == "incident-tile":
        assert response["Content-Type"] == "application/vnd.mapbox-vector-tile"
        assert body


@pytest.mark.parametrize("who", DENIED)
@pytest.mark.parametrize(("name", "kwargs", "params", "status"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_everyone_else_is_refused(client_for, who, name, kwargs, params, status):
    response = client_for(who).get(reverse(name, kwargs=kwargs or None), params)
    if who == "anonymous":
        assert response.status_code in (401, 403)
    else:
        assert response.status_code == 403
    assert not response.streaming
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == {"detail"}
    text = response.content.decode()
    assert not any(d in text for d in DIGITS)
    assert "sexual" not in text


@pytest.mark.parametrize("who", DENIED)
@pytest.mark.parametrize(("name", "kwargs", "params"), BAD_REQUESTS)
def test_bad_parameters_give_no_hint_to_others(client_for, who, name, kwargs, params):
    response = client_for(who).get(reverse(name, kwargs=kwargs), params)
    assert response.status_code in ((401, 403) if who == "anonymous" else (403,))
    assert set(response.json()) == {"detail"}


@pytest.mark.parametrize(("name", "kwargs", "params"), BAD_REQUESTS)
def test_the_same_bad_parameters_are_400_for_planners(client_for, name, kwargs, params):
    assert client_for("planner").get(reverse(name, kwargs=kwargs), params).status_code == 400


def test_the_planner_geojson_does_carry_the_coordinate(client_for):
    body = _body(client_for("planner").get(reverse("incident-geojson"))).decode()
    assert "-77.012346" in body  # (6 decimals) - the check above is not vacuous


def test_the_csv_for_planners_carries_it_and_nobody_else_gets_a_line(client_for):
    url = reverse("incident-export")
    assert "-77.012346" in _body(client_for("planner").get(url)).decode("utf-8-sig")
    for who in DENIED:
        response = client_for(who).get(url)
        assert response.status_code in (401, 403)
        assert "text/csv" not in response["Content-Type"]


def test_a_negative_tile_address_is_not_even_routed(client_for):
    response = client_for("municipal").get("/api/v1/tiles/incidents/1/-1/0.mvt")
    assert response.status_code == 404
    assert not any(d in response.content.decode() for d in DIGITS)


def test_the_public_openapi_schema_has_no_coordinate_example(client_for):
    response = client_for("anonymous").get(reverse("api-schema"), {"format": "json"})
    assert response.status_code == 200
    schema = json.loads(response.content)
    # The public API's paths (public categories, counts per cell) have their own tests.
    paths = {
        p
        for p in schema["paths"]
        if ("incidents" in p or "categories" in p) and not p.startswith("/api/v1/public/")
    }
    assert paths == {
        "/api/v1/incidents/",
        "/api/v1/incidents/export.csv",
        "/api/v1/incidents/stats/",
        "/api/v1/incidents/clusters/",
        "/api/v1/incidents/heat/",
        "/api/v1/tiles/incidents/{z}/{x}/{y}.mvt",
        "/api/v1/categories/",
    }
    incident_part = json.dumps([schema["paths"][p] for p in sorted(paths)])
    assert '"example' not in incident_part
    assert not any(d in response.content.decode() for d in DIGITS)
