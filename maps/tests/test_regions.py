"""The region a map opens on: asked for, else remembered (session, then a signed-in user's
profile), else MAP_DEFAULT_REGION, else the first by name; the picker that remembers it."""

import pytest
from django.contrib.auth.models import Group
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.test import Client, override_settings
from django.urls import reverse

from accounts.models import Role, StaffProfile
from neighborhoods.models import Region

CHOOSE_URL = "/map/region/"


def _region(code, name, x):
    return Region.objects.create(
        code=code,
        name=name,
        metric_srid=32718,
        geom=MultiPolygon(Polygon.from_bbox((x, -13.0, x + 0.1, -12.9)), srid=4326),
    )


@pytest.fixture
def regions(db):
    return [_region("beta", "Beta city", -70.0), _region("alpha", "Alpha city", -75.0)]


@pytest.fixture
def planner(django_user_model):
    user = django_user_model.objects.create_user("planner", password="x")
    user.groups.add(Group.objects.get(name=Role.PLANNER))
    return user


def _chosen(client, url="/", **params):
    response = client.get(url, params)
    assert response.status_code == 200
    return response.context["map_config"]["chosenRegion"], response


def test_first_by_name_then_the_setting_then_the_question(client, regions):
    assert reverse("choose-region") == CHOOSE_URL
    assert _chosen(client)[0] == "alpha"
    with override_settings(MAP_DEFAULT_REGION="beta"):
        assert _chosen(client)[0] == "beta"
        assert _chosen(client, region="alpha")[0] == "alpha"
    # A code that names no region is skipped, not an error.
    with override_settings(MAP_DEFAULT_REGION="gone"):
        assert _chosen(client, region="nowhere")[0] == "alpha"


def test_the_picker_lists_regions_with_the_chosen_one_selected(client, regions):
    _, response = _chosen(client, region="beta")
    html = response.content.decode()
    assert '<select id="region-picker" name="region">' in html
    assert '<option value="beta" selected>Beta city</option>' in html
    assert '<option value="alpha">Alpha city</option>' in html
    assert html.index("Alpha city") < html.index("Beta city")


def test_a_choice_is_remembered_in_the_session(client, regions):
    assert client.post(CHOOSE_URL, {"region": "beta"}).status_code == 204
    assert _chosen(client)[0] == "beta"
    with override_settings(MAP_DEFAULT_REGION="alpha"):
        assert _chosen(client)[0] == "beta"  # the visitor's own choice comes first


def test_a_signed_in_users_choice_follows_them(client, regions, planner):
    client.force_login(planner)
    assert client.post(CHOOSE_URL, {"region": "beta"}).status_code == 204
    assert StaffProfile.objects.get(user=planner).map_region == "beta"
    other_browser = Client()
    other_browser.force_login(planner)
    assert _chosen(other_browser, "/planner/")[0] == "beta"
    assert _chosen(other_browser)[0] == "beta"


def test_bad_choices_are_field_errors(client, regions):
    for data in ({"region": "nowhere"}, {}):
        response = client.post(CHOOSE_URL, data)
        assert response.status_code == 400
        assert list(response.json()) == ["region"]
    assert client.get(CHOOSE_URL).status_code == 405


def test_the_choice_needs_the_pages_csrf_token(regions):
    browser = Client(enforce_csrf_checks=True)
    assert browser.post(CHOOSE_URL, {"region": "beta"}).status_code == 403
    page = browser.get("/")
    token = page.context["map_config"]["csrfToken"]
    response = browser.post(CHOOSE_URL, {"region": "beta"}, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 204


def test_no_region_no_picker(client, db):
    chosen, response = _chosen(client)
    assert chosen == ""
    assert 'class="region-picker" hidden' in response.content.decode()
