"""The public map page: language, local-only assets and the settings it hands the script."""

import json
from html.parser import HTMLParser

import geopandas as gpd
import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse
from shapely.geometry import box

from geo.io import VectorRead
from neighborhoods.models import Region
from neighborhoods.services import SourceInfo, import_boundary_frame

URL_ATTRIBUTES = {"src", "href", "action", "srcset", "poster", "data"}


class _PageParser(HTMLParser):
    """Collects URL attributes and the text of json_script blocks."""

    def __init__(self):
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.json_scripts: dict[str, str] = {}
        self.html_lang: str | None = None
        self._json_id: str | None = None
        self.hidden_ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "html":
            self.html_lang = attributes.get("lang")
        for name, value in attrs:
            if name in URL_ATTRIBUTES and value is not None:
                self.urls.append((tag, name, value))
        if tag == "script" and attributes.get("type") == "application/json":
            self._json_id = attributes.get("id")
            self.json_scripts[self._json_id] = ""
        if "hidden" in attributes and attributes.get("id"):
            self.hidden_ids.add(attributes["id"])

    def handle_endtag(self, tag):
        if tag == "script":
            self._json_id = None

    def handle_data(self, data):
        if self._json_id:
            self.json_scripts[self._json_id] += data


def _parse(response) -> _PageParser:
    parser = _PageParser()
    parser.feed(response.content.decode())
    return parser


def _load_districts(*, synthetic: bool = False, attribution: str = "Test boundaries") -> None:
    frame = gpd.GeoDataFrame(
        {"code": ["d1", "d2"], "name": ["COMAS", "RÍMAC"]},
        geometry=[box(-79.0, -13.0, -78.99, -12.99), box(-78.99, -13.0, -78.98, -12.99)],
        crs="EPSG:4326",
    )
    frame.index = range(1, len(frame) + 1)
    import_boundary_frame(
        read=VectorRead(frame=frame, source_crs="EPSG:4326", driver="GeoJSON"),
        path="views-test",
        region_code="views-test",
        level="district",
        code_field="code",
        name_field="name",
        region_name="Views test city",
        source=SourceInfo(slug="views-test", name="Views test", attribution=attribution),
        synthetic=synthetic,
    )


@pytest.mark.django_db
def test_page_is_spanish_by_default(client):
    response = client.get("/")
    assert response.status_code == 200
    page = _parse(response)
    assert page.html_lang == "es"
    text = response.content.decode()
    assert "Buscar distrito" in text
    assert "Leyenda" in text
    assert '<label for="district-search"' in text
    labels = json.loads(page.json_scripts["map-labels"])
    assert labels["loading"] == "Cargando límites…"
    assert labels["district"] == "Distrito"


@pytest.mark.django_db
def test_language_switch_sticks_in_a_cookie(client):
    response = client.post(reverse("set_language"), {"language": "en", "next": "/"})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert response.cookies["django_language"].value == "en"

    response = client.get("/")
    assert response.status_code == 200
    page = _parse(response)
    assert page.html_lang == "en"
    text = response.content.decode()
    assert "Find a district" in text
    assert "Legend" in text
    assert "Buscar distrito" not in text
    assert json.loads(page.json_scripts["map-labels"])["district"] == "District"

    client.post(reverse("set_language"), {"language": "es", "next": "/"})
    page = _parse(client.get("/"))
    assert page.html_lang == "es"


@pytest.mark.django_db
def test_language_switch_is_a_csrf_protected_post_form(client):
    text = client.get("/").content.decode()
    assert f'action="{reverse("set_language")}" method="post"' in text
    assert 'name="csrfmiddlewaretoken"' in text
    assert 'name="language" value="en"' in text
    assert 'name="language" value="es"' in text


@pytest.mark.django_db
def test_page_references_only_local_urls(client):
    _load_districts(attribution="Boundaries © Someone, https://example.org/licence")
    response = client.get("/")
    page = _parse(response)
    assert page.urls, "the page should load its stylesheet and scripts"
    for tag, attribute, value in page.urls:
        lowered = value.strip().lower()
        assert "http://" not in lowered and "https://" not in lowered, (tag, attribute, value)
        assert not lowered.startswith("//"), (tag, attribute, value)
        assert lowered.startswith(("/", "#", "data:")), (tag, attribute, value)
    sources = {value for tag, attribute, value in page.urls if attribute in ("src", "href")}
    assert "/static/vendor/leaflet-1.9.4/leaflet.js" in sources
    assert "/static/vendor/leaflet-1.9.4/leaflet.css" in sources
    assert "/static/js/maps/public_map.js" in sources
    assert "/static/css/barrio.css" in sources
    for value in sources:
        if value.startswith("/static/"):
            assert finders.find(value.removeprefix("/static/")), f"{value} is not a static file"


@pytest.mark.django_db
def test_map_config_carries_api_urls_and_settings(client, settings):
    settings.MAP_TILE_URL = ""
    _load_districts()
    page = _parse(client.get("/"))
    config = json.loads(page.json_scripts["map-config"])
    assert config["api"] == {
        "regions": "/api/v1/regions/",
        "regionOutlines": "/api/v1/regions/geojson/",
        "districts": "/api/v1/districts/",
        "neighborhoods": "/api/v1/neighborhoods/",
    }
    assert config["api"]["districts"] == reverse("district-geojson")
    assert config["tileUrl"] == ""
    assert config["attributions"] == ["Test boundaries"]
    assert config["center"] == settings.MAP_DEFAULT_CENTER
    assert config["zoom"] == settings.MAP_DEFAULT_ZOOM
    assert config["neighborhoodMinZoom"] >= 10


@pytest.mark.django_db
def test_map_config_passes_a_configured_tile_layer(client, settings):
    settings.MAP_TILE_URL = "/tiles/{z}/{x}/{y}.png"
    settings.MAP_TILE_ATTRIBUTION = "Internal tiles"
    config = json.loads(_parse(client.get("/")).json_scripts["map-config"])
    assert config["tileUrl"] == "/tiles/{z}/{x}/{y}.png"
    assert config["tileAttribution"] == "Internal tiles"


@pytest.mark.django_db
def test_data_strings_are_escaped_in_the_page(client):
    _load_districts(attribution='<img src=x onerror="alert(1)">')
    text = client.get("/").content.decode()
    assert "<img src=x" not in text
    assert "\\u003Cimg src=x" in text


@pytest.mark.django_db
def test_synthetic_notice_only_when_a_synthetic_region_exists(client):
    page = _parse(client.get("/"))
    assert "synthetic-notice" in page.hidden_ids

    Region.objects.create(code="demo", name="Demo city", metric_srid=32718, synthetic=True)
    response = client.get("/")
    page = _parse(response)
    assert "synthetic-notice" not in page.hidden_ids
    assert "Datos sintéticos de demostración" in response.content.decode()

    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    assert "Synthetic demo data" in client.get("/").content.decode()
