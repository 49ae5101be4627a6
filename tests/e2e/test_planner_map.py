"""The planner's incident map in a real browser, against the real incident API: clusters,
counts per category for the view, filters, a point's popup, the heat layer, the CSV link,
English, a phone, and not a single request leaving this machine."""

import datetime as dt
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Group
from django.contrib.gis.geos import Point, Polygon
from playwright.sync_api import expect
from shapely.geometry import box as shapely_box

from accounts.models import Role
from accounts.roles import ensure_role_groups
from incidents.models import (
    Category,
    ImportBatch,
    Incident,
    IncidentSource,
    LocationQuality,
    SourceLabel,
    TimePrecision,
)
from incidents.taxonomy import ensure_taxonomy
from neighborhoods.models import District, Region
from tests.e2e.conftest import assert_basemap_drawn, log_in

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 15_000
UTC = dt.UTC
SOURCE = "e2e-police"
UNCLASSIFIED = "unclassified-e2e-police-otros"
# A source label nobody mapped yet keeps the source's own words, markup included: shown
# as text, never run.
MARKUP = '<img src=x onerror="window.__injected = 1">'

# (category, district, lon, lat, occurred_at): the fixture's districts are three squares
# side by side between lon -79.06 and -78.94, lat -13.02 and -12.98.
INCIDENTS = [
    # Five burglaries close together in COMAS (e2e-1), about 200 m apart.
    *[
        (
            "burglary",
            "e2e-1",
            -79.052 + 0.002 * i,
            -13.012 + 0.001 * i,
            dt.datetime(2024, 1, 10 + i, 22, 15, tzinfo=UTC),
        )
        for i in range(5)
    ],
    # Four graffiti in RÍMAC (e2e-2).
    *[
        (
            "graffiti",
            "e2e-2",
            -79.004 + 0.002 * i,
            -13.004 + 0.002 * i,
            dt.datetime(2024, 4, 2 + i, 9, 0, tzinfo=UTC),
        )
        for i in range(4)
    ],
    # Sensitive and unclassified ones in SAN MARTÍN DE PORRES (e2e-3).
    ("sexual-offence", "e2e-3", -78.962, -13.010, dt.datetime(2024, 5, 1, 3, 30, tzinfo=UTC)),
    ("sexual-offence", "e2e-3", -78.958, -13.006, dt.datetime(2024, 5, 20, 23, 0, tzinfo=UTC)),
    (UNCLASSIFIED, "e2e-3", -78.950, -12.995, dt.datetime(2024, 6, 1, 12, 0, tzinfo=UTC)),
]
# Alone in the north-east of COMAS, far (1.5 km+) from everything else: its popup is read.
LONELY = {"lon": -79.030, "lat": -12.990}


@pytest.fixture
def incident_data(map_data):
    """The e2e districts, a planner, and incidents written straight into the tables."""
    # A transactional test empties every table afterwards, the migrations' rows too.
    ensure_taxonomy(Category)
    ensure_role_groups()
    region = Region.objects.get(code="e2e")
    districts = {d.code: d for d in District.objects.filter(region=region)}
    source = IncidentSource.objects.create(name=SOURCE, description="E2E police records")
    batch = ImportBatch.objects.create(source=source, status=ImportBatch.Status.SUCCEEDED)
    unclassified = Category.objects.create(
        code=UNCLASSIFIED,
        name_es=f"Sin clasificar: {MARKUP}",
        name_en=f"Unclassified: {MARKUP}",
        family="crime",
        unclassified=True,
    )
    assert Category.objects.filter(code="burglary", sensitive=False).exists()
    assert Category.objects.filter(code="sexual-offence", sensitive=True).exists()
    labels = {}

    def label_for(code):
        if code not in labels:
            category = unclassified if code == UNCLASSIFIED else Category.objects.get(code=code)
            labels[code] = SourceLabel.objects.create(
                source=source, label=f"LABEL {code.upper()}", category=category
            )
        return labels[code]

    def add(number, code, district, lon, lat, when, **extra):
        label = label_for(code)
        return Incident.objects.create(
            source=source,
            external_id=f"E2E-{number}",
            point=Point(lon, lat, srid=4326),
            occurred_at=when,
            label=label,
            category=label.category,
            region=region,
            district=districts[district],
            batch=batch,
            **extra,
        )

    for number, (code, district, lon, lat, when) in enumerate(INCIDENTS):
        add(number, code, district, lon, lat, when)
    lonely = add(
        len(INCIDENTS),
        "burglary",
        "e2e-1",
        LONELY["lon"],
        LONELY["lat"],
        dt.datetime(2024, 3, 5, tzinfo=UTC),
        occurred_until=dt.datetime(2024, 3, 6, tzinfo=UTC),
        time_precision=TimePrecision.DAY,
        location_quality=LocationQuality.ROUNDED,
    )

    planner = Group.objects.get(name=Role.PLANNER).user_set.create(username="planner-e2e")
    return {"lonely": lonely, "planner": planner, "total": Incident.objects.count()}


def _console_errors(page) -> list[str]:
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    return errors


def _wait_for_total(page, total: int) -> None:
    expect(page.locator("#stats-total")).to_have_attribute(
        "data-total", str(total), timeout=TIMEOUT_MS
    )
    expect(page.locator("#stats-total")).not_to_have_class(
        re.compile("is-loading"), timeout=TIMEOUT_MS
    )


def _counts(page) -> dict[str, int]:
    """The counts panel as {category code: count}."""
    rows = page.locator("#category-counts tbody tr")
    return {
        rows.nth(i).get_attribute("data-code"): int(rows.nth(i).get_attribute("data-count"))
        for i in range(rows.count())
    }


def _cluster_sum(page) -> int:
    return page.evaluate(
        "() => [...document.querySelectorAll('#map .incident-cluster-circle')]"
        ".reduce((sum, node) => sum + Number(node.dataset.count), 0)"
    )


def _wait_idle(page) -> None:
    page.wait_for_function(
        "() => document.querySelector('#map').getAttribute('aria-busy') === 'false'",
        timeout=TIMEOUT_MS,
    )


def _api_calls(requests, path: str) -> list[dict]:
    calls = []
    for url in requests.all:
        parts = urlsplit(url)
        if parts.path == path:
            calls.append({k: v[0] for k, v in parse_qs(parts.query).items()})
    return calls


def test_planner_map(live_server, incident_data, e2e_basemap, map_page):
    page, requests, errors = map_page
    console_errors = _console_errors(page)
    total = incident_data["total"]
    assert total == 13
    log_in(page, live_server, incident_data["planner"])

    page.goto(live_server.url + "/planner/")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.locator("#map path[data-level=district]")).to_have_count(3, timeout=TIMEOUT_MS)
    assert_basemap_drawn(page, requests)

    # Everything is in view at first: server clusters whose counts add up to the total,
    # and the counts panel agreeing with them.
    _wait_for_total(page, total)
    expect(page.locator("#map")).to_have_attribute("data-mode", "clusters")
    _wait_idle(page)
    assert _cluster_sum(page) == total
    expect(page.locator("#stats-total")).to_have_text("13 incidentes en esta vista")
    assert _counts(page) == {"burglary": 6, "graffiti": 4, "sexual-offence": 2, UNCLASSIFIED: 1}
    burglary_row = page.locator('#category-counts tr[data-code="burglary"]')
    expect(burglary_row).to_contain_text("Robo a casa habitación")
    expect(burglary_row.locator("td")).to_have_text("6")
    expect(
        page.locator('#category-counts tr[data-code="sexual-offence"] .badge-sensitive')
    ).to_have_text("sensible")

    # The category filter: grouped by family, sensitive ones marked, unclassified last.
    groups = page.locator("#category-groups fieldset.category-group")
    expect(groups).to_have_count(3)
    assert [groups.nth(i).get_attribute("data-family") for i in range(3)] == [
        "crime",
        "incivility",
        "unclassified",
    ]
    expect(groups.nth(0).locator("legend")).to_contain_text("Delito")
    expect(groups.nth(1).locator("legend")).to_contain_text("Incivilidad")
    expect(groups.nth(2).locator("legend")).to_contain_text("Sin clasificar")
    expect(groups.nth(2).locator(".category-name")).to_have_text(f"Sin clasificar: {MARKUP}")
    expect(
        page.locator(f'#category-counts tr[data-code="{UNCLASSIFIED}"] .category-name')
    ).to_have_text(f"Sin clasificar: {MARKUP}")
    expect(
        page.locator('input[name=category][value="sexual-offence"]').locator("xpath=..")
    ).to_contain_text("sensible")
    expect(
        page.locator('input[name=category][value="burglary"]').locator("xpath=..")
    ).not_to_contain_text("sensible")
    # The district select holds the districts of the boundary API.
    options = page.locator("#filter-district option")
    expect(options).to_have_count(4)
    expect(options.first).to_have_text("Todos los distritos")
    expect(page.locator("#map-legend")).to_contain_text("Leyenda")
    expect(page.locator("#export-csv")).to_have_text("Exportar CSV")
    page.screenshot(path="/tmp/planner_map.png")

    # Untick graffiti: counts, clusters and the export link follow.
    page.get_by_label("Grafiti").uncheck()
    _wait_for_total(page, total - 4)
    _wait_idle(page)
    assert "graffiti" not in _counts(page)
    assert _counts(page)["burglary"] == 6
    assert _cluster_sum(page) == total - 4
    last_stats = _api_calls(requests, "/api/v1/incidents/stats/")[-1]
    assert "graffiti" not in last_stats["category"].split(",")
    assert "burglary" in last_stats["category"].split(",")
    assert "bbox" in last_stats
    export = urlsplit(page.locator("#export-csv").get_attribute("href"))
    assert export.path == "/api/v1/incidents/export.csv"
    assert parse_qs(export.query)["category"] == [last_stats["category"]]
    expect(
        page.locator('fieldset[data-family="incivility"] input.category-all')
    ).not_to_be_checked()

    # A date range as well: from March on, the January burglaries drop out.
    page.locator("#filter-from").fill("2024-03-01")
    _wait_for_total(page, 4)  # the lonely burglary, two sensitive, one unclassified
    assert _counts(page) == {"sexual-offence": 2, "burglary": 1, UNCLASSIFIED: 1}
    assert parse_qs(urlsplit(page.locator("#export-csv").get_attribute("href")).query)["from"] == [
        "2024-03-01"
    ]
    page.screenshot(path="/tmp/planner_map_filtered.png")

    # Clear the filters: everything is back.
    page.get_by_role("button", name="Borrar filtros").click()
    _wait_for_total(page, total)
    assert "category" not in parse_qs(
        urlsplit(page.locator("#export-csv").get_attribute("href")).query
    )

    # A district: the map zooms to it, the requests carry it, counts shrink to it.
    page.locator("#filter-district").select_option(label="RÍMAC")
    _wait_for_total(page, 4)
    last_stats = _api_calls(requests, "/api/v1/incidents/stats/")[-1]
    assert last_stats["district"] == "e2e-2" and last_stats["region"] == "e2e"
    page.locator("#filter-district").select_option(value="")

    # A server cluster zooms in when clicked.
    _wait_for_total(page, total)
    _wait_idle(page)
    zoom_before = float(page.locator("#map").get_attribute("data-zoom"))
    page.locator("#map .incident-cluster-server").first.click()
    page.wait_for_function(
        "z => Number(document.querySelector('#map').dataset.zoom) > z",
        arg=zoom_before,
        timeout=TIMEOUT_MS,
    )

    # Zoomed right in on the lonely burglary: raw points, one in view, and its popup.
    page.evaluate(f"() => {{ window.location.hash = '#16/{LONELY['lat']}/{LONELY['lon']}'; }}")
    expect(page.locator("#map")).to_have_attribute("data-zoom", "16", timeout=TIMEOUT_MS)
    expect(page.locator("#map")).to_have_attribute("data-mode", "points", timeout=TIMEOUT_MS)
    _wait_for_total(page, 1)
    assert _counts(page) == {"burglary": 1}
    marker = page.locator(f'#map .incident-dot[data-id="{incident_data["lonely"].pk}"]')
    expect(marker).to_have_count(1)
    expect(page.locator("#map .incident-dot")).to_have_count(1)
    marker.click()
    popup = page.locator(".leaflet-popup .incident-popup")
    expect(popup).to_be_visible()
    expect(popup.locator(".incident-popup-title")).to_have_text("Robo a casa habitación")
    expect(popup).to_contain_text("Delito")
    expect(popup).to_contain_text("5 de marzo de 2024")
    expect(popup).to_contain_text("Solo el día")
    expect(popup).to_contain_text(SOURCE)
    expect(popup).to_contain_text("COMAS")
    expect(popup).to_contain_text("sin asignar")  # no neighborhood
    expect(popup).to_contain_text("Redondeada")
    page.wait_for_function(
        "() => getComputedStyle(document.querySelector('.leaflet-popup')).opacity === '1'"
    )
    page.screenshot(path="/tmp/planner_map_popup.png")
    points_calls = _api_calls(requests, "/api/v1/incidents/")
    assert points_calls and "bbox" in points_calls[-1]

    # Panning a little asks again for the new view, and the open popup stays open (the
    # incident keeps its marker).
    page.evaluate(
        f"() => {{ window.location.hash = '#16/{LONELY['lat'] + 0.002}/{LONELY['lon']}'; }}"
    )
    page.wait_for_function(
        "n => performance.getEntriesByType('resource')"
        ".filter(e => e.name.includes('/api/v1/incidents/?')).length > n",
        arg=len(points_calls),
        timeout=TIMEOUT_MS,
    )
    _wait_idle(page)
    expect(popup).to_be_visible()
    expect(popup).to_have_attribute("data-id", str(incident_data["lonely"].pk))

    # Back out to the whole city, then the heat layer.
    page.evaluate("() => { window.location.hash = '#13/-13.0/-79.0'; }")
    expect(page.locator("#map")).to_have_attribute("data-mode", "clusters", timeout=TIMEOUT_MS)
    _wait_for_total(page, total)
    page.get_by_label("Mapa de calor").check()
    page.wait_for_function(
        "() => Number(document.querySelector('#map').dataset.heatPoints) > 0", timeout=TIMEOUT_MS
    )
    expect(page.locator("#map canvas.leaflet-heatmap-layer")).to_be_visible()
    heat_calls = _api_calls(requests, "/api/v1/incidents/heat/")
    assert heat_calls and {"zoom", "bbox"} <= set(heat_calls[-1])
    page.screenshot(path="/tmp/planner_map_heat.png")
    # The heat map stands on its own: turned on with the incidents off, it draws, and it
    # follows a new view.
    page.get_by_label("Mapa de calor").uncheck()
    page.get_by_label("Incidentes", exact=True).uncheck()
    page.get_by_label("Mapa de calor").check()
    expect(page.locator("#map canvas.leaflet-heatmap-layer")).to_be_visible()
    heat_calls_before = len(_api_calls(requests, "/api/v1/incidents/heat/"))
    page.evaluate("() => { window.location.hash = '#13/-13.002/-79.0'; }")
    page.wait_for_function(
        "n => performance.getEntriesByType('resource')"
        ".filter(e => e.name.includes('/api/v1/incidents/heat/')).length > n",
        arg=heat_calls_before,
        timeout=TIMEOUT_MS,
    )
    _wait_idle(page)
    expect(page.locator("#map canvas.leaflet-heatmap-layer")).to_be_visible()
    assert int(page.locator("#map").get_attribute("data-heat-points")) > 0
    page.get_by_label("Incidentes", exact=True).check()
    page.get_by_label("Mapa de calor").uncheck()
    expect(page.locator("#map canvas.leaflet-heatmap-layer")).to_have_count(0)

    # English: labels, category names and the counts panel.
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    _wait_for_total(page, total)
    expect(page.locator("#stats-total")).to_have_text("13 incidents in this view")
    expect(page.locator('#category-counts tr[data-code="burglary"]')).to_contain_text("Burglary")
    expect(page.get_by_label("Heat map")).to_be_visible()
    expect(page.locator("#export-csv")).to_have_text("Export CSV")
    _wait_idle(page)
    assert _cluster_sum(page) == total
    page.screenshot(path="/tmp/planner_map_en.png")
    page.get_by_role("button", name="Español").click()
    expect(page.locator("html")).to_have_attribute("lang", "es")

    assert page.evaluate("window.__injected === undefined")
    assert page.locator("img[src=x]").count() == 0

    # Every clusters request asked for the view and its zoom; nothing left this machine.
    cluster_calls = _api_calls(requests, "/api/v1/incidents/clusters/")
    assert cluster_calls and all({"zoom", "bbox"} <= set(call) for call in cluster_calls)
    assert requests.outside == [], f"requests left 127.0.0.1: {requests.outside}"
    assert errors == [], f"script errors: {errors}"
    assert console_errors == [], f"console errors: {console_errors}"


def test_planner_map_on_a_phone(live_server, incident_data, phone_page):
    page, requests, errors = phone_page
    console_errors = _console_errors(page)
    log_in(page, live_server, incident_data["planner"])

    page.goto(live_server.url + "/planner/")
    _wait_for_total(page, incident_data["total"])
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    # The filters start folded away, leaving the map; the toggle opens them.
    toggle = page.locator("#panel-toggle")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(page.locator("#planner-panel")).to_be_hidden()
    expect(page.locator("#map .incident-cluster-circle").first).to_be_visible()
    for locator in (toggle, page.get_by_role("button", name="English")):
        box = locator.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
        assert box["height"] >= 32, box
    page.screenshot(path="/tmp/planner_map_phone.png")

    toggle.tap()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#planner-panel")).to_be_visible()
    # The layer toggles are the panel's first controls, large enough for a finger.
    for locator in (page.locator(".map-toggle").first, page.locator(".map-toggle").last):
        box = locator.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
        assert box["height"] >= 32, box
    expect(page.get_by_label("Desde")).to_be_visible()
    page.get_by_label("Grafiti").tap()
    _wait_for_total(page, incident_data["total"] - 4)
    page.screenshot(path="/tmp/planner_map_phone_panel.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    toggle.tap()
    expect(page.locator("#planner-panel")).to_be_hidden()

    assert requests.outside == [], f"requests left 127.0.0.1: {requests.outside}"
    assert errors == [], f"script errors: {errors}"
    assert console_errors == [], f"console errors: {console_errors}"


# Wraps fetch to hold every request back for window.__fetchDelay ms (aborting it while it
# waits, as the browser would) and to keep each request's URL and AbortSignal.
SLOW_FETCH = """
(() => {
  const realFetch = window.fetch.bind(window);
  window.__fetches = [];
  window.__fetchDelay = 0;
  window.fetch = (url, options) => {
    const entry = { url: String(url), signal: options && options.signal };
    window.__fetches.push(entry);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => realFetch(url, options).then(resolve, reject), window.__fetchDelay);
      if (entry.signal) {
        entry.signal.addEventListener("abort", () => {
          clearTimeout(timer);
          reject(new DOMException("The operation was aborted.", "AbortError"));
        });
      }
    });
  };
})();
"""


def test_a_new_view_aborts_the_requests_in_flight(live_server, incident_data, map_page):
    page, requests, errors = map_page
    console_errors = _console_errors(page)
    log_in(page, live_server, incident_data["planner"])
    page.add_init_script(SLOW_FETCH)
    page.goto(live_server.url + "/planner/")
    _wait_for_total(page, incident_data["total"])
    _wait_idle(page)

    # Slow answers: a filter change starts requests, and the view changes before they end.
    page.evaluate("() => { window.__fetchDelay = 1500; }")
    started = page.evaluate("() => window.__fetches.length")
    page.get_by_label("Grafiti").uncheck()
    page.wait_for_function(
        "n => window.__fetches.slice(n).some(f => f.url.includes('/incidents/stats/'))",
        arg=started,
        timeout=TIMEOUT_MS,
    )
    in_flight = page.evaluate("() => window.__fetches.length")
    page.evaluate("() => { window.location.hash = '#14/-13.0/-79.0'; }")
    page.evaluate("() => { window.__fetchDelay = 0; }")
    expect(page.locator("#map")).to_have_attribute("data-zoom", "14", timeout=TIMEOUT_MS)
    page.wait_for_function(
        "n => window.__fetches.slice(n).some(f => f.url.includes('/incidents/stats/'))",
        arg=in_flight,
        timeout=TIMEOUT_MS,
    )
    _wait_idle(page)
    # What the view holds, counted here from the bbox the page asked for.
    bbox = [
        float(v) for v in _api_calls(requests, "/api/v1/incidents/stats/")[-1]["bbox"].split(",")
    ]
    expected = (
        Incident.objects.filter(point__coveredby=Polygon.from_bbox(bbox))
        .exclude(category__code="graffiti")
        .count()
    )
    assert 0 < expected < incident_data["total"] - 4
    _wait_for_total(page, expected)

    aborted = page.evaluate(
        """([from, to]) => window.__fetches.slice(from, to)
             .map(f => [f.url.split('?')[0], f.signal ? f.signal.aborted : null])""",
        [started, in_flight],
    )
    assert aborted, "the filter change should have started requests"
    assert all(flag is True for _, flag in aborted), aborted
    assert {"/api/v1/incidents/stats/", "/api/v1/incidents/clusters/"} <= {u for u, _ in aborted}
    # The counts are those of the new view with the new filter.
    counts = _counts(page)
    assert "graffiti" not in counts and sum(counts.values()) == expected
    assert requests.outside == [], f"requests left 127.0.0.1: {requests.outside}"
    assert errors == [], f"script errors: {errors}"
    assert console_errors == [], f"console errors: {console_errors}"


def test_the_region_picker_opens_the_region_and_follows_the_planner(
    live_server, incident_data, district_loader, browser, map_page
):
    """A second city far away: the planner map opens on the first, its district filter lists
    that city's districts only; picking the other city moves the map and the filter there,
    and the choice is kept in the planner's profile, so another browser opens on it."""
    page, requests, errors = map_page
    district_loader(
        [("far-1", "PROVIDENCIA", shapely_box(-70.62, -33.44, -70.58, -33.40))],
        region_code="far",
        region_name="Santiago de prueba",
        attribution="Far test boundaries",
        synthetic=True,
    )
    log_in(page, live_server, incident_data["planner"])
    page.goto(live_server.url + "/planner/")
    picker = page.locator("#region-picker")
    expect(picker).to_have_value("e2e")  # the first by name, with no choice made yet
    expect(page.locator("#map path[data-level=district][data-code^=e2e]")).to_have_count(
        3, timeout=TIMEOUT_MS
    )
    _wait_for_total(page, incident_data["total"])
    district_options = page.locator("#filter-district option[value]:not([value=''])")
    expect(district_options).to_have_count(3)
    assert "far|far-1" not in district_options.evaluate_all("(nodes) => nodes.map((n) => n.value)")

    picker.select_option("far")
    page.wait_for_function(
        "() => new URL(location.href).searchParams.get('region') === 'far'", timeout=TIMEOUT_MS
    )
    expect(district_options).to_have_count(1, timeout=TIMEOUT_MS)
    expect(district_options).to_have_attribute("value", "far|far-1")
    # The map fits the far city: its district's outline is drawn inside the map's box.
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
    expect(page.locator(".leaflet-control-attribution")).to_contain_text("Far test boundaries")

    # Another browser, the same planner: the map opens on the region picked.
    other = browser.new_context(viewport={"width": 1366, "height": 768}, locale="es-PE")
    try:
        second = other.new_page()
        log_in(second, live_server, incident_data["planner"])
        second.goto(live_server.url + "/planner/")
        expect(second.locator("#region-picker")).to_have_value("far")
        expect(second.locator("#filter-district option[value]:not([value=''])")).to_have_count(
            1, timeout=TIMEOUT_MS
        )
    finally:
        other.close()
    assert requests.outside == [], f"requests left 127.0.0.1: {requests.outside}"
    assert errors == [], f"script errors: {errors}"
