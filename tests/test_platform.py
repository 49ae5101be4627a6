"""The platform the product stands on: PostGIS present, version floors, offline assets."""

import re
from importlib.metadata import version

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from packaging.version import Version

EXTERNAL_URL = re.compile(r"""(?:src|href)=["'](https?:)?//""", re.IGNORECASE)


@pytest.mark.django_db
def test_postgis_extension_is_installed():
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")
        (installed,) = cursor.fetchone()
    assert Version(installed) >= Version("3.0")


def test_version_floors_exclude_known_vulnerable_releases():
    assert Version(version("Django")) >= Version("5.2.18")
    assert Version(version("Django")) < Version("6.0")
    assert Version(version("djangorestframework")) >= Version("3.17.2")


def test_storage_srid_is_wgs84():
    assert settings.GEO_STORAGE_SRID == 4326


def test_openapi_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for path in ("/api/v1/areas/lookup/", "/api/v1/districts/", "/api/v1/neighborhoods/"):
        assert path in text


@pytest.mark.django_db
def test_schema_and_docs_are_served_from_this_server(client):
    schema = client.get(reverse("api-schema"))
    assert schema.status_code == 200
    docs = client.get(reverse("api-docs"))
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui-bundle.js" in html
    assert not EXTERNAL_URL.search(html), "API docs must not load assets from another host"


@pytest.mark.django_db
def test_admin_map_widget_uses_vendored_openlayers(admin_client):
    response = admin_client.get(reverse("admin:neighborhoods_neighborhood_add"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/vendor/ol-7.2.2/ol.js" in html
    assert not EXTERNAL_URL.search(html), "the admin must not load assets from another host"
    # No tile server configured: the widget draws district outlines instead of OSM tiles.
    assert "ol.source.OSM" not in html
    assert reverse("district-geojson") in html


def test_deeply_nested_json_is_a_400_on_every_api(django_user_model):
    """The JSON parser of every API (common.parsers.JSONParser) answers 400, not a 500, to a
    body nested deeper than Python's json module can follow."""
    from rest_framework.test import APIClient

    from incidents.tests.factories import make_user

    client = APIClient()
    client.force_login(make_user(django_user_model, superuser=True))
    body = "[" * 100_000 + "]" * 100_000
    for name in ("hotspot-run-list", "publicspace-list"):
        response = client.post(reverse(name), body, content_type="application/json")
        assert response.status_code == 400, (name, response.status_code)
        assert "nested too deeply" in response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize("query", [{"lang": "es"}, {}])
def test_api_schema_speaks_spanish(client, query):
    """?lang=es (drf-spectacular's), or a Spanish browser: the schema's title and
    description in Spanish; ?lang=en gives them in English."""
    headers = {} if query else {"HTTP_ACCEPT_LANGUAGE": "es"}
    schema = client.get(reverse("api-schema"), {**query, "format": "json"}, **headers).json()
    assert schema["info"]["title"] == "API de Barrio"
    assert schema["info"]["description"].startswith("Límites y búsqueda de áreas")
    english = client.get(reverse("api-schema"), {"lang": "en", "format": "json"}).json()
    assert english["info"]["title"] == "Barrio API"
    yaml_text = client.get(reverse("api-schema"), {"lang": "es"}).content.decode()
    assert "title: API de Barrio" in yaml_text
    docs = client.get(reverse("api-docs"), {"lang": "es"}, **headers).content.decode()
    assert "<title>API de Barrio</title>" in docs
