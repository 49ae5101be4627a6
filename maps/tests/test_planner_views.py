"""The planner's incident map page: who may open it, local-only assets, language, and the
settings and labels it hands the script."""

import json
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.staticfiles import finders
from django.shortcuts import resolve_url
from django.urls import reverse

from accounts.models import Role
from maps.tests.test_views import _parse

PLANNER_URL = "/planner/"


def _user(django_user_model, username, role=None, **extra):
    user = django_user_model.objects.create_user(username, password="x", **extra)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def planner(django_user_model):
    return _user(django_user_model, "planner", Role.PLANNER)


def test_url_name():
    assert reverse("planner-map") == PLANNER_URL


@pytest.mark.django_db
def test_anonymous_is_sent_to_the_login_page(client):
    response = client.get(PLANNER_URL)
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == resolve_url(settings.LOGIN_URL) == reverse("login")
    assert location.query == "next=/planner/"


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.MUNICIPAL, Role.PROGRAM, None])
def test_other_roles_are_forbidden(client, django_user_model, role):
    client.force_login(_user(django_user_model, f"user-{role}", role, is_staff=True))
    response = client.get(PLANNER_URL)
    assert response.status_code == 403
    assert b"planner-config" not in response.content


@pytest.mark.django_db
def test_planner_and_superuser_may_open_it(client, django_user_model, planner):
    client.force_login(planner)
    assert client.get(PLANNER_URL).status_code == 200

    admin = django_user_model.objects.create_superuser("root", password="x")
    client.force_login(admin)
    assert client.get(PLANNER_URL).status_code == 200


@pytest.mark.django_db
def test_page_references_only_local_urls(client, planner):
    client.force_login(planner)
    page = _parse(client.get(PLANNER_URL))
    assert page.urls, "the page should load its stylesheets and scripts"
    for tag, attribute, value in page.urls:
        lowered = value.strip().lower()
        assert "http://" not in lowered and "https://" not in lowered, (tag, attribute, value)
        assert not lowered.startswith("//"), (tag, attribute, value)
        assert lowered.startswith(("/", "#", "data:")), (tag, attribute, value)
    sources = {value for tag, attribute, value in page.urls if attribute in ("src", "href")}
    for expected in (
        "/static/vendor/leaflet-1.9.4/leaflet.js",
        "/static/vendor/leaflet-1.9.4/leaflet.css",
        "/static/vendor/leaflet.markercluster-1.5.3/leaflet.markercluster.js",
        "/static/vendor/leaflet.markercluster-1.5.3/MarkerCluster.css",
        "/static/vendor/leaflet.heat-0.2.0/leaflet-heat.js",
        "/static/js/maps/planner_map.js",
        "/static/css/barrio.css",
        "/static/css/planner.css",
    ):
        assert expected in sources, expected
    for value in sources:
        if value.startswith("/static/"):
            assert finders.find(value.removeprefix("/static/")), f"{value} is not a static file"
    # Nothing in the settings handed to the script points elsewhere either.
    config = json.loads(page.json_scripts["planner-config"])
    for url in config["api"].values():
        assert url.startswith("/api/v1/"), url


@pytest.mark.django_db
def test_config_carries_the_api_urls(client, planner, settings):
    settings.MAP_TILE_URL = ""
    client.force_login(planner)
    config = json.loads(_parse(client.get(PLANNER_URL)).json_scripts["planner-config"])
    assert config["api"] == {
        "incidents": "/api/v1/incidents/",
        "clusters": "/api/v1/incidents/clusters/",
        "heat": "/api/v1/incidents/heat/",
        "stats": "/api/v1/incidents/stats/",
        "export": "/api/v1/incidents/export.csv",
        "categories": "/api/v1/categories/",
        "regions": "/api/v1/regions/",
        "districts": "/api/v1/districts/",
    }
    assert config["pointsMinZoom"] == 15
    assert config["tileUrl"] == ""
    assert config["timeZone"] == settings.TIME_ZONE


@pytest.mark.django_db
def test_labels_are_spanish_by_default_and_english_after_the_switch(client, planner):
    client.force_login(planner)
    response = client.get(PLANNER_URL)
    page = _parse(response)
    text = response.content.decode()
    assert page.html_lang == "es"
    for phrase in ("Mapa de incidentes", "Filtros", "Categorías", "Exportar CSV", "Leyenda"):
        assert phrase in text, phrase
    assert '<label for="filter-from">Desde</label>' in text
    assert "Mapa de calor" in text
    labels = json.loads(page.json_scripts["planner-labels"])
    assert labels["loading"] == "Cargando incidentes…"
    assert labels["families"] == {"crime": "Delito", "incivility": "Incivilidad"}
    assert labels["sensitive"] == "sensible"
    assert labels["allDistricts"] == "Todos los distritos"
    assert labels["timePrecision"]["day"] == "Solo el día"
    assert labels["locationQualities"]["exact"] == "Exacta"

    response = client.post(reverse("set_language"), {"language": "en", "next": PLANNER_URL})
    assert response.status_code == 302
    response = client.get(PLANNER_URL)
    page = _parse(response)
    text = response.content.decode()
    assert page.html_lang == "en"
    for phrase in ("Incident map", "Filters", "Categories", "Export CSV", "Legend", "Heat map"):
        assert phrase in text, phrase
    assert "Exportar CSV" not in text
    labels = json.loads(page.json_scripts["planner-labels"])
    assert labels["loading"] == "Loading incidents…"
    assert labels["families"] == {"crime": "Crime", "incivility": "Incivility"}
    assert labels["timePrecision"]["day"] == "Day only"


@pytest.mark.django_db
def test_synthetic_notice_and_panel_toggle(client, planner):
    from neighborhoods.models import Region

    client.force_login(planner)
    page = _parse(client.get(PLANNER_URL))
    assert "synthetic-notice" in page.hidden_ids
    Region.objects.create(code="demo", name="Demo city", metric_srid=32718, synthetic=True)
    text = client.get(PLANNER_URL).content.decode()
    assert "Datos sintéticos de demostración" in text
    assert 'aria-controls="planner-panel"' in text
