"""A NUL character (``%00``) in a query string is a 400 on every page and API endpoint.

PostgreSQL text cannot hold a NUL: a filter value carrying one reached the database and
made psycopg raise, a 500 on every incident endpoint and filter (issue 10, item 3).
config.middleware.RefuseNulCharactersMiddleware refuses it before any view runs: under
/api/ with the API's ``{field: [message]}``, elsewhere with the 400 page.
"""

from __future__ import annotations

import pytest
from django.urls import NoReverseMatch, get_resolver, reverse
from rest_framework.test import APIClient

from incidents.tests.factories import make_user

pytestmark = pytest.mark.django_db

NUL_VALUE = "lima\x00"
MESSAGE_EN = "Null characters are not allowed."
MESSAGE_ES = "No se admiten caracteres nulos."

INCIDENT_FILTERS = ["district", "region", "neighborhood", "source", "category"]
INCIDENT_ENDPOINTS = [
    ("incident-geojson", {}, {}),
    ("incident-stats", {}, {}),
    ("incident-heat", {}, {"zoom": "10"}),
    ("incident-clusters", {}, {"zoom": "10"}),
    ("incident-export", {}, {}),
    ("incident-tile", {"z": 0, "x": 0, "y": 0}, {}),
]
# Every endpoint/parameter pair that answered 500 before.
PAIRS = [
    (name, kwargs, extra, parameter)
    for name, kwargs, extra in INCIDENT_ENDPOINTS
    for parameter in INCIDENT_FILTERS
] + [("hotspot-run-list", {}, {}, "region")]


@pytest.fixture
def superuser_client(django_user_model):
    client = APIClient(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(make_user(django_user_model, superuser=True))
    return client


@pytest.fixture
def planner_client(django_user_model):
    client = APIClient(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(make_user(django_user_model, "planner"))
    return client


@pytest.mark.parametrize(
    ("name", "kwargs", "extra", "parameter"),
    PAIRS,
    ids=[f"{name}-{parameter}" for name, _kwargs, _extra, parameter in PAIRS],
)
def test_a_nul_in_a_filter_is_a_400_naming_the_parameter(
    planner_client, name, kwargs, extra, parameter
):
    url = reverse(name, kwargs=kwargs or None)
    response = planner_client.get(url, {**extra, parameter: NUL_VALUE})
    assert response.status_code == 400
    assert response.json() == {parameter: [MESSAGE_EN]}
    assert response["Cache-Control"] == "private, no-store"


def test_the_same_filters_without_the_nul_still_work(planner_client):
    # The guard only refuses NULs: a well-formed unknown code is still the view's 400.
    response = planner_client.get(reverse("incident-stats"), {"region": "lima"})
    assert response.status_code == 400
    assert response.json() == {"region": ["Unknown region code: lima"]}
    assert planner_client.get(reverse("incident-stats")).status_code == 200


def _every_api_path() -> list[str]:
    """One path of every route under /api/, built with the first arguments it takes."""
    paths = set()
    for name in get_resolver().reverse_dict:
        if not isinstance(name, str):
            continue
        for args in ([], [1], [1, 0, 0, 0], [0, 0, 0]):
            try:
                path = reverse(name, args=args)
            except NoReverseMatch:
                continue
            if path.startswith("/api/"):
                paths.add(path)
            break
    return sorted(paths)


def test_every_api_endpoint_refuses_a_nul_in_any_parameter(superuser_client):
    paths = _every_api_path()
    assert reverse("publicspace-list") in paths and reverse("district-geojson") in paths
    for path in paths:
        for params in ({"q": NUL_VALUE}, {"bbox": "1,2,3,4", "zoom": "1\x00"}):
            response = superuser_client.get(path, params)
            assert response.status_code == 400, (path, params, response.status_code)
            (field,) = set(params) - {"bbox"}
            assert response.json() == {field: [MESSAGE_EN]}, path


def test_a_nul_in_a_repeated_value_or_a_parameter_name_is_refused(planner_client):
    url = reverse("incident-geojson")
    response = planner_client.get(url + "?category=assault&category=%00")
    assert response.status_code == 400
    assert response.json() == {"category": [MESSAGE_EN]}
    response = planner_client.get(url + "?reg%00ion=lima")
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": [MESSAGE_EN]}


def test_the_refusal_is_in_the_users_language(django_user_model):
    client = APIClient(raise_request_exception=False)  # no Accept-Language: Spanish
    client.force_login(make_user(django_user_model, "planner"))
    response = client.get(reverse("incident-stats"), {"district": NUL_VALUE})
    assert response.status_code == 400
    assert response.json() == {"district": [MESSAGE_ES]}


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("public-map", {"lang": NUL_VALUE}),
        ("incidents:import-list", {"page": "1\x00"}),
        ("hotspots:run-list", {"page": "1\x00"}),
        ("publicspaces:list", {"kind": NUL_VALUE, "q": "parque"}),
        ("publicspaces:export", {"q": NUL_VALUE}),
        ("publicspaces:map", {"condition": NUL_VALUE}),
    ],
)
def test_pages_answer_a_nul_with_the_400_page(superuser_client, name, params):
    response = superuser_client.get(reverse(name), params)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "This request cannot be read" in page
    assert MESSAGE_EN in page
    assert "\x00" not in page


def test_the_400_page_is_in_spanish_by_default(client):
    response = client.get(reverse("public-map"), {"q": NUL_VALUE})
    assert response.status_code == 400
    page = response.content.decode()
    assert MESSAGE_ES in page
    assert "This request cannot be read" not in page


SESSION_SHAPED_NUL = "abcdefgh\x00ijklmnopqrstuvwxyz012345"


@pytest.mark.parametrize("cookie", ["sessionid", "csrftoken", "django_language"])
@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/api/v1/regions/"])
def test_a_cookie_with_a_nul_is_ignored_not_a_500(cookie, path):
    # A session key of 8+ characters reaches the session table's lookup, where a NUL made
    # psycopg raise on every page; the cookie is now dropped and the visitor anonymous.
    client = APIClient(raise_request_exception=False)
    response = client.get(path, HTTP_COOKIE=f"{cookie}={SESSION_SHAPED_NUL}")
    assert response.status_code == 200


def test_a_nul_cookie_does_not_hide_the_other_cookies(django_user_model):
    user = make_user(django_user_model, "planner")
    client = APIClient()
    client.force_login(user)
    session_key = client.cookies["sessionid"].value
    response = client.get(
        "/api/v1/regions/",
        HTTP_COOKIE=f"sessionid={session_key}; tracker={SESSION_SHAPED_NUL}",
    )
    assert response.status_code == 200
    assert response.wsgi_request.user == user
