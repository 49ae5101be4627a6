"""The public map in a real browser: boundaries drawn, tooltips, search, language switch,
attribution, and not a single request leaving this machine."""

import base64
import re
import unicodedata

import pytest
from playwright.sync_api import expect
from shapely.geometry import box

from tests.e2e.conftest import E2E_ATTRIBUTION, assert_basemap_drawn

pytestmark = pytest.mark.e2e

DISTRICT_PATHS = "#map path.leaflet-interactive"
TIMEOUT_MS = 15_000
TRANSPARENT_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def _wait_for_districts(page, count: int) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('#map path.leaflet-interactive').length >= n",
        arg=count,
        timeout=TIMEOUT_MS,
    )


def _zoom(page) -> float:
    return float(page.locator("#map").get_attribute("data-zoom"))


def _fills_map(page, code: str) -> bool:
    """The district's outline spans a good part of the map: the map zoomed to it."""
    box = page.locator(f'{DISTRICT_PATHS}[data-code="{code}"]').bounding_box()
    map_box = page.locator("#map").bounding_box()
    return box["width"] > 0.4 * map_box["width"] or box["height"] > 0.4 * map_box["height"]


def _assert_all_districts_in_view(page) -> None:
    """The map starts fitted to the regions' extent."""
    map_box = page.locator("#map").bounding_box()
    paths = page.locator(f'{DISTRICT_PATHS}[data-level="district"]')
    for index in range(paths.count()):
        box = paths.nth(index).bounding_box()
        assert box["x"] >= map_box["x"] - 2 and box["y"] >= map_box["y"] - 2, box
        assert box["x"] + box["width"] <= map_box["x"] + map_box["width"] + 2, box
        assert box["y"] + box["height"] <= map_box["y"] + map_box["height"] + 2, box


def test_public_map(live_server, map_data, map_page):
    page, requests, errors = map_page
    districts = dict(map_data["districts"])
    names = set(districts.values())

    page.goto(live_server.url + "/")
    _wait_for_districts(page, len(districts))
    expect(page.locator("html")).to_have_attribute("lang", "es")
    _assert_all_districts_in_view(page)

    # Spanish page furniture: search with its label, language switch, legend, notice.
    expect(page.get_by_label("Buscar distrito")).to_be_visible()
    expect(page.get_by_role("button", name="English")).to_be_visible()
    expect(page.get_by_role("button", name="Español")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#map-legend")).to_contain_text("Leyenda")
    expect(page.locator("#map-legend")).to_contain_text("Distrito")
    if map_data["synthetic"]:
        expect(page.locator("#synthetic-notice")).to_be_visible()
        expect(page.locator("#synthetic-notice")).to_contain_text(
            "Datos sintéticos de demostración"
        )

    # Attribution of the loaded boundaries; no tile layer without a tile URL.
    attribution = page.locator(".leaflet-control-attribution")
    for line in map_data["attributions"]:
        expect(attribution).to_contain_text(line)
    assert map_data["attributions"], "the fixture should load attributed boundaries"
    expect(page.locator(".leaflet-tile-pane img")).to_have_count(0)

    # The name shows on hover.
    code, name = next(iter(sorted(districts.items())))
    page.locator(f'{DISTRICT_PATHS}[data-code="{code}"]').hover()
    tooltip = page.locator(".leaflet-tooltip")
    expect(tooltip).to_be_visible()
    expect(tooltip.locator(".area-tooltip-name")).to_have_text(name)
    expect(tooltip).to_contain_text("Distrito")
    if map_data["synthetic"]:
        expect(tooltip).to_contain_text("sintético")
    page.screenshot(path="/tmp/public_map.png")

    # Search: accent- and case-insensitive suggestions; Enter zooms to the first match.
    search = page.get_by_label("Buscar distrito")
    suggestions = page.locator("#district-suggestions [role=option]")
    search.fill("comas")
    expect(suggestions.first).to_contain_text("COMAS")
    search.fill("Rimac")
    expect(suggestions).to_have_count(1)
    expect(suggestions.first).to_contain_text("RÍMAC")
    expect(search).to_have_attribute("aria-expanded", "true")
    zoom_before = _zoom(page)
    search.press("Enter")
    expect(page.locator("#district-suggestions")).to_be_hidden()
    page.wait_for_function(
        "z => Number(document.querySelector('#map').dataset.zoom) > z",
        arg=zoom_before,
        timeout=TIMEOUT_MS,
    )
    expect(page.locator("#district-search-status")).to_have_text("Mostrando RÍMAC.")
    page.wait_for_function(
        "() => document.querySelector('#map path[data-code=\"e2e-2\"]') !== null"
    )
    assert _fills_map(page, "e2e-2")

    # Keyboard only: type, arrow down to the option, Enter.
    search.fill("")
    search.type("san martin")
    expect(suggestions.first).to_contain_text("SAN MARTÍN DE PORRES")
    search.press("ArrowDown")
    expect(suggestions.first).to_have_attribute("aria-selected", "true")
    expect(search).to_have_attribute("aria-activedescendant", "district-option-0")
    search.press("Enter")
    expect(page.locator("#district-search-status")).to_have_text("Mostrando SAN MARTÍN DE PORRES.")
    expect(page.locator("#map")).to_have_attribute("data-moving", "false", timeout=TIMEOUT_MS)
    page.wait_for_function(
        "code => { const p = document.querySelector(`#map path[data-code='${code}']`);"
        " if (!p) return false; const r = p.getBoundingClientRect(),"
        " m = document.querySelector('#map').getBoundingClientRect();"
        " return r.width > m.width * 0.4 || r.height > m.height * 0.4; }",
        arg="e2e-3",
        timeout=TIMEOUT_MS,
    )
    assert _fills_map(page, "e2e-3")
    page.screenshot(path="/tmp/public_map_search.png")
    search.fill("zzz")
    expect(page.locator("#district-suggestions")).to_contain_text("Ningún distrito")
    search.press("Escape")

    # Zoomed in past the neighborhood threshold: neighborhoods asked for the view's bbox.
    assert _zoom(page) >= 12
    page.wait_for_function(
        "() => performance.getEntriesByType('resource')"
        ".some(e => e.name.includes('/api/v1/neighborhoods/?'))",
        timeout=TIMEOUT_MS,
    )

    # English, then back to Spanish: the choice is posted to set_language and sticks.
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    _wait_for_districts(page, len(districts))
    expect(page.get_by_label("Find a district")).to_be_visible()
    expect(page.locator("#map-legend")).to_contain_text("Legend")
    expect(page.get_by_role("button", name="English")).to_have_attribute("aria-pressed", "true")
    if map_data["synthetic"]:
        expect(page.locator("#synthetic-notice")).to_contain_text("Synthetic demo data")
    expect(page.locator(".leaflet-control-attribution")).to_contain_text(
        map_data["attributions"][0]
    )
    page.locator(f'{DISTRICT_PATHS}[data-code="{code}"]').hover()
    expect(page.locator(".leaflet-tooltip")).to_contain_text("District")
    page.reload()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_role("button", name="Español").click()
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.get_by_label("Buscar distrito")).to_be_visible()
    _wait_for_districts(page, len(districts))

    # What was asked of the API, and that nothing at all left this machine.
    api_calls = [url for url in requests.all if "/api/v1/" in url]
    assert any(re.search(r"/api/v1/regions/$", url) for url in api_calls), api_calls
    assert any("/api/v1/districts/?zoom=" in url for url in api_calls), api_calls
    hoods = [url for url in api_calls if "/api/v1/neighborhoods/?" in url]
    assert hoods and all("bbox=" in url and "zoom=" in url for url in hoods), hoods
    assert names  # the fixture loaded something
    assert requests.outside == [], f"requests left 127.0.0.1: {requests.outside}"
    assert errors == [], f"script errors: {errors}"


def test_public_map_on_a_phone(live_server, map_data, phone_page):
    page, requests, errors = phone_page
    districts = dict(map_data["districts"])

    page.goto(live_server.url + "/")
    _wait_for_districts(page, len(districts))

    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    for locator in (
        page.get_by_label("Buscar distrito"),
        page.get_by_role("button", name="English"),
        page.locator("#map-legend summary"),
        page.locator(".leaflet-control-zoom-in"),
    ):
        expect(locator).to_be_visible()
        box = locator.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
        assert box["height"] >= 32, box  # big enough for a finger
    # The legend starts folded on a small screen and opens on tap.
    expect(page.locator("#map-legend")).not_to_have_attribute("open", "")
    page.locator("#map-legend summary").tap()
    expect(page.locator("#map-legend")).to_contain_text("Distrito")

    # The credits fold into an (i) button, translated, that opens and closes them.
    credits = page.locator(".leaflet-control-attribution")
    expect(credits).to_be_hidden()
    button = page.get_by_role("button", name="Fuentes de los datos")
    expect(button).to_be_visible()
    button.tap()
    expect(credits).to_be_visible()
    expect(credits).to_contain_text(E2E_ATTRIBUTION)
    assert credits.bounding_box()["x"] >= 0
    button.tap()
    expect(credits).to_be_hidden()

    # Tapping an area shows its name.
    code, name = next(iter(sorted(districts.items())))
    page.locator(f'{DISTRICT_PATHS}[data-code="{code}"]').tap()
    expect(page.locator(".leaflet-tooltip .area-tooltip-name")).to_have_text(name)
    page.screenshot(path="/tmp/public_map_mobile.png")

    assert requests.outside == [], f"requests left 127.0.0.1: {requests.outside}"
    assert errors == [], f"script errors: {errors}"


def test_tiles_and_markup_in_data_stay_local_and_textual(
    live_server, district_loader, map_page, settings
):
    """A configured tile layer is drawn (from this server here) with its attribution;
    names and attributions holding markup are shown as text, never run as HTML."""
    page, requests, errors = map_page
    settings.MAP_TILE_URL = "/tiles/{z}/{x}/{y}.png"
    settings.MAP_TILE_ATTRIBUTION = "<b>Local</b> tiles"
    evil = '<img src=x onerror="window.__injected = 1">'
    district_loader(
        [("x-1", evil, box(-79.02, -13.02, -78.98, -12.98))],
        region_code="markup",
        region_name="Markup city",
        attribution='<script>window.__injected = 2</script>Quoted "source"',
        synthetic=False,
    )

    # This server has no tiles: answer them in the browser (after the request log saw
    # them), with a 1x1 transparent PNG.
    page.route(
        "**/tiles/**",
        lambda route: route.fulfill(status=200, content_type="image/png", body=TRANSPARENT_PNG),
    )

    page.goto(live_server.url + "/")
    _wait_for_districts(page, 1)
    expect(page.locator("#synthetic-notice")).to_be_hidden()
    tiles = page.locator(".leaflet-tile-pane img")
    expect(tiles.first).to_be_attached()
    assert tiles.first.evaluate("img => img.src").startswith(live_server.url + "/tiles/")
    assert any("/tiles/" in url for url in requests.all)

    attribution = page.locator(".leaflet-control-attribution")
    expect(attribution).to_contain_text("<b>Local</b> tiles")
    expect(attribution).to_contain_text('<script>window.__injected = 2</script>Quoted "source"')
    page.locator(f'{DISTRICT_PATHS}[data-code="x-1"]').hover()
    expect(page.locator(".leaflet-tooltip .area-tooltip-name")).to_have_text(evil)

    page.get_by_label("Buscar distrito").fill("img src")
    expect(page.locator("#district-suggestions [role=option]").first).to_have_text(evil)
    assert page.evaluate("window.__injected === undefined")
    assert page.locator("#map img[src=x], #district-suggestions img").count() == 0

    assert requests.outside == [], f"requests left 127.0.0.1: {requests.outside}"
    assert errors == [], f"script errors: {errors}"


def test_demo_city(live_server, demo_data, map_page):
    """The built-in demo city: labelled synthetic everywhere, neighborhoods when zoomed in."""
    page, requests, errors = map_page
    districts = dict(demo_data["districts"])
    assert len(districts) >= 3

    page.goto(live_server.url + "/")
    page.wait_for_function(
        "n => document.querySelectorAll('#map path[data-level=district]').length >= n",
        arg=len(districts),
        timeout=TIMEOUT_MS,
    )
    _assert_all_districts_in_view(page)
    assert_basemap_drawn(page, requests)
    expect(page.locator("#synthetic-notice")).to_be_visible()
    expect(page.locator("#synthetic-notice")).to_contain_text("Datos sintéticos de demostración")
    for line in demo_data["attributions"]:
        expect(page.locator(".leaflet-control-attribution")).to_contain_text(line)
    page.screenshot(path="/tmp/public_map_demo_start.png")

    # Search with the accents left out, then see the neighborhoods of the district.
    code, name = next((c, n) for c, n in sorted(districts.items()) if n != _plain(n))
    search = page.get_by_label("Buscar distrito")
    search.fill(_plain(name).lower())
    expect(page.locator("#district-suggestions [role=option]").first).to_contain_text(name)
    search.press("Enter")
    expect(page.locator("#district-search-status")).to_have_text(f"Mostrando {name}.")
    page.wait_for_function(
        "() => document.querySelectorAll('#map path[data-level=neighborhood]').length > 0",
        timeout=TIMEOUT_MS,
    )
    assert _zoom(page) >= 12
    expect(page.locator("#map")).to_have_attribute("data-moving", "false", timeout=TIMEOUT_MS)

    # The map is centred on the chosen district: its middle is one of its neighborhoods.
    # Neighborhoods reload after the move and may be redrawn under the pointer: hover
    # again until the tooltip shows.
    map_box = page.locator("#map").bounding_box()
    tooltip = page.locator(".leaflet-tooltip")
    centre = (map_box["x"] + map_box["width"] / 2, map_box["y"] + map_box["height"] / 2)
    for attempt in range(20):
        page.mouse.move(centre[0] + attempt % 3, centre[1])
        if tooltip.is_visible():
            break
        page.wait_for_timeout(250)
    expect(tooltip).to_be_visible()
    expect(tooltip).to_contain_text("Barrio")
    expect(tooltip).to_contain_text("sintético")
    assert tooltip.locator(".area-tooltip-name").inner_text() in demo_data["neighborhoods"]
    expect(tooltip.locator(".area-tooltip-detail")).to_have_text(name)
    page.screenshot(path="/tmp/public_map_demo.png")

    assert requests.outside == [], f"requests left 127.0.0.1: {requests.outside}"
    assert errors == [], f"script errors: {errors}"


def _plain(text: str) -> str:
    """The text without accents, as someone typing on a phone might write it."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _in_view(page, code) -> bool:
    """The district's outline lies inside the map's box."""
    map_box = page.locator("#map").bounding_box()
    box = page.locator(f'#map path[data-level="district"][data-code="{code}"]').bounding_box()
    if box is None or box["width"] <= 3:  # off-screen, Leaflet draws no outline (a dot of stroke)
        return False
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    return (
        map_box["x"] <= cx <= map_box["x"] + map_box["width"]
        and map_box["y"] <= cy <= map_box["y"] + map_box["height"]
    )


def test_region_picker_opens_the_chosen_region_and_remembers_it(
    live_server, map_data, district_loader, map_page
):
    """Two cities far apart: the map opens on one (not on the world), the picker moves it to
    the other, and the next visit opens there."""
    page, requests, errors = map_page
    district_loader(
        [("far-1", "PROVIDENCIA", box(-70.62, -33.44, -70.58, -33.40))],
        region_code="far",
        region_name="Santiago de prueba",
        attribution="Far test boundaries",
        synthetic=True,
    )
    page.goto(live_server.url + "/")
    picker = page.get_by_label("Región")
    expect(picker).to_have_value("e2e")  # the first by name, with no choice made yet
    _wait_for_districts(page, 4)
    expect(page.locator("#map")).to_have_attribute("data-moving", "false", timeout=TIMEOUT_MS)
    assert _in_view(page, "e2e-2") and not _in_view(page, "far-1")
    assert _zoom(page) >= 10  # a city, not the world
    # Only the sources of what is on screen are credited.
    credits = page.locator(".leaflet-control-attribution")
    expect(credits).to_contain_text(E2E_ATTRIBUTION)
    expect(credits).not_to_contain_text("Far test boundaries")

    picker.select_option("far")
    page.wait_for_function(
        "() => new URL(location.href).searchParams.get('region') === 'far'", timeout=TIMEOUT_MS
    )
    page.wait_for_timeout(300)  # the fit animates; then the map settles
    expect(page.locator("#map")).to_have_attribute("data-moving", "false", timeout=TIMEOUT_MS)
    page.wait_for_function(
        """() => {
          const m = document.querySelector('#map').getBoundingClientRect();
          const p = document.querySelector('#map path[data-level=district][data-code="far-1"]');
          if (!p) return false;
          const b = p.getBoundingClientRect();
          if (b.width <= 3) return false;
          const x = b.x + b.width / 2, y = b.y + b.height / 2;
          return x >= m.x && x <= m.right && y >= m.y && y <= m.bottom;
        }""",
        timeout=TIMEOUT_MS,
    )
    assert not _in_view(page, "e2e-2")
    expect(credits).to_contain_text("Far test boundaries")
    expect(credits).not_to_contain_text(E2E_ATTRIBUTION)

    # The next visit, without ?region=, opens on the region picked.
    page.goto(live_server.url + "/")
    expect(page.get_by_label("Región")).to_have_value("far")
    _wait_for_districts(page, 4)
    expect(page.locator("#map")).to_have_attribute("data-moving", "false", timeout=TIMEOUT_MS)
    assert _in_view(page, "far-1") and not _in_view(page, "e2e-2")
    assert requests.outside == [], f"requests left 127.0.0.1: {requests.outside}"
    assert errors == [], f"script errors: {errors}"


def test_region_outlines_follow_the_zoom(live_server, demo_data, map_page):
    page, requests, errors = map_page
    page.goto(live_server.url + "/")
    mapnode = page.locator("#map")
    _wait_for_districts(page, len(demo_data["districts"]))
    expect(mapnode).to_have_attribute("data-moving", "false", timeout=TIMEOUT_MS)
    # Asked for at the zoom the map settled at, not the world zoom it was made at.
    page.wait_for_function(
        """() => {
          const node = document.querySelector('#map');
          const asked = Number(node.getAttribute('data-region-outline-zoom'));
          return asked >= Math.round(Number(node.getAttribute('data-zoom')));
        }""",
        timeout=TIMEOUT_MS,
    )
    first = int(mapnode.get_attribute("data-region-outline-zoom"))
    assert first >= 9, first  # the demo city fills the map from about zoom 11

    # Zoomed in, they are asked for again, finer, and replace the coarse ones.
    page.locator(".leaflet-control-zoom-in").click()
    expect(mapnode).to_have_attribute("data-moving", "false", timeout=TIMEOUT_MS)
    page.locator(".leaflet-control-zoom-in").click()
    expect(mapnode).to_have_attribute(
        "data-region-outline-zoom", re.compile(rf"^(?!{first}$)\d+$"), timeout=TIMEOUT_MS
    )
    assert int(mapnode.get_attribute("data-region-outline-zoom")) > first
    outline_calls = [u for u in requests.all if "zoom=" in u and "/regions/" in u]
    assert len(outline_calls) >= 2, outline_calls
    assert requests.outside == [] and errors == []
