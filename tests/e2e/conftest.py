"""Browser tests: Debian's Chromium driven by Playwright's sync API against live_server.

Never ``playwright install``: the browser is the system ``chromium`` (``make test``
installs it). Without it the tests fail with a message saying so; they do not skip.
"""

import io
import os
import shutil
from urllib.parse import urlsplit

import geopandas as gpd
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from shapely.geometry import box

from geo.io import VectorRead
from neighborhoods.models import District, Neighborhood, Region
from neighborhoods.selectors import attributions
from neighborhoods.services import SourceInfo, import_boundary_frame

# Playwright's sync API runs an event loop in this thread; Django's ORM refuses to run
# under one unless told it is safe (the tests only touch the ORM between browser calls).
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}

# Three squares in a row near Lima (lon -79, lat -13); names in capitals and with accents
# like the published district files, to exercise accent- and case-insensitive search.
E2E_DISTRICTS = [
    ("e2e-1", "COMAS", box(-79.06, -13.02, -79.02, -12.98)),
    ("e2e-2", "RÍMAC", box(-79.02, -13.02, -78.98, -12.98)),
    ("e2e-3", "SAN MARTÍN DE PORRES", box(-78.98, -13.02, -78.94, -12.98)),
]
E2E_ATTRIBUTION = "E2E test boundaries"


def is_local(url: str) -> bool:
    """True for requests that stay on this machine (or never touch the network)."""
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.scheme in ("http", "https", "ws", "wss") and parts.hostname in LOCAL_HOSTS


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium")
    if not path:
        pytest.fail(
            "Debian's `chromium` is not on PATH, so the browser tests cannot run. "
            "Install it with `sudo apt-get install chromium` (or run `make test`, which "
            "installs it). Do not use `playwright install`.",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


class RequestLog:
    """Every request the page makes; the ones bound outside this machine are aborted."""

    def __init__(self):
        self.all: list[str] = []
        self.outside: list[str] = []

    def attach(self, page) -> None:
        page.on("request", self._on_request)
        page.route("**/*", self._route)

    def _on_request(self, request) -> None:
        self.all.append(request.url)
        if not is_local(request.url) and request.url not in self.outside:
            self.outside.append(request.url)

    def _route(self, route) -> None:
        url = route.request.url
        if is_local(url):
            route.continue_()
        else:
            if url not in self.outside:
                self.outside.append(url)
            route.abort()


def log_in(page, live_server, user) -> None:
    """The session of a logged-in client, handed to the browser as its cookie."""
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )


def _open_page(browser, **context_options):
    context = browser.new_context(locale="es-PE", **context_options)
    page = context.new_page()
    log = RequestLog()
    log.attach(page)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return context, page, log, errors


@pytest.fixture
def map_page(browser):
    """A desktop-sized page, its request log and the script errors it raised."""
    context, page, log, errors = _open_page(browser, viewport={"width": 1280, "height": 800})
    yield page, log, errors
    context.close()


@pytest.fixture
def phone_page(browser):
    context, page, log, errors = _open_page(
        browser,
        viewport={"width": 390, "height": 780},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    yield page, log, errors
    context.close()


def _load_districts(districts, *, region_code, region_name, attribution, synthetic):
    frame = gpd.GeoDataFrame(
        {"code": [code for code, _, _ in districts], "name": [name for _, name, _ in districts]},
        geometry=[geom for _, _, geom in districts],
        crs="EPSG:4326",
    )
    frame.index = range(1, len(frame) + 1)  # VectorRead's frames number features from 1
    report = import_boundary_frame(
        read=VectorRead(frame=frame, source_crs="EPSG:4326", driver="GeoJSON"),
        path=region_code,
        region_code=region_code,
        level="district",
        code_field="code",
        name_field="name",
        region_name=region_name,
        source=SourceInfo(
            slug=region_code, name=region_name, attribution=attribution, synthetic=synthetic
        ),
        synthetic=synthetic,
    )
    assert report.written, report.lines()
    return {
        "districts": list(
            District.objects.filter(region__code=region_code)
            .order_by("code")
            .values_list("code", "name")
        ),
        "attributions": attributions(),
        "synthetic": Region.objects.filter(synthetic=True).exists(),
    }


@pytest.fixture
def district_loader(transactional_db):
    """Loads (code, name, geometry) districts through the product's own loader."""
    return _load_districts


@pytest.fixture
def map_data(district_loader):
    """Three districts of a synthetic region, with an attribution."""
    return district_loader(
        E2E_DISTRICTS,
        region_code="e2e",
        region_name="E2E city",
        attribution=E2E_ATTRIBUTION,
        synthetic=True,
    )


@pytest.fixture
def demo_data(transactional_db):
    """The built-in synthetic demo city, loaded by its own command (``make run`` does)."""
    call_command("load_demo", stdout=io.StringIO())
    return {
        "districts": list(
            District.objects.filter(region__code="demo")
            .order_by("code")
            .values_list("code", "name")
        ),
        "neighborhoods": set(
            Neighborhood.objects.filter(region__code="demo").values_list("name", flat=True)
        ),
        "attributions": attributions(),
    }


def assert_basemap_drawn(page, requests, timeout_ms: int = 20_000) -> None:
    """The self-hosted base map drew: some tile of it holds more than two colours (streets
    on the land; the first tile drawn may be all sea, so wait for one), and the archive was
    read from this server."""
    from playwright.sync_api import expect

    expect(page.locator("#map")).to_have_attribute("data-basemap", "drawn", timeout=timeout_ms)
    page.wait_for_function(
        """() => {
          for (const canvas of document.querySelectorAll('.leaflet-basemap-pane canvas')) {
            if (!canvas.width) continue;
            const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            const seen = new Set();
            for (let i = 0; i < data.length; i += 4 * 97) seen.add(data[i] << 16 | data[i + 1] << 8 | data[i + 2]);
            if (seen.size > 2) return true;
          }
          return false;
        }""",
        timeout=timeout_ms,
    )
    assert any(url.endswith("/basemap/tiles.pmtiles") for url in requests.all), requests.all


@pytest.fixture
def e2e_basemap(transactional_db, settings, tmp_path):
    """A small street map over the E2E districts, written by the product's own PMTiles
    writer and served as the deployment's extract (MAP_PMTILES)."""
    from geo.pmtiles_archive import ArchiveFeature, write_pmtiles

    west, south, east, north = -79.07, -13.03, -78.93, -12.97
    step = 0.004
    features = [
        ArchiveFeature(
            "earth",
            f"POLYGON(({west} {south},{east} {south},{east} {north},{west} {north},{west} {south}))",
            0,
            {"kind": "earth"},
        )
    ]
    count = round((east - west) / step)
    for i in range(count + 1):
        lon = west + i * step
        kind = "major_road" if i % 5 == 0 else "minor_road"
        features.append(
            ArchiveFeature(
                "roads",
                f"LINESTRING({lon} {south},{lon} {north})",
                10,
                {"kind": kind, "name": f"Calle {i}"},
            )
        )
    for j in range(round((north - south) / step) + 1):
        lat = south + j * step
        features.append(
            ArchiveFeature(
                "roads",
                f"LINESTRING({west} {lat},{east} {lat})",
                10,
                {"kind": "minor_road", "name": f"Jirón {j}"},
            )
        )
    path = tmp_path / "e2e.pmtiles"
    write_pmtiles(
        path=path,
        features=features,
        min_zoom=8,
        max_zoom=14,
        metadata={"name": "e2e streets", "attribution": "E2E streets (test)"},
    )
    settings.MAP_PMTILES = str(path)
    settings.MAP_TILE_URL = ""
    return path
