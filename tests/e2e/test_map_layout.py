"""Maps a person can use (issue 13), on the demo city at 1366×768 and on a 375×812 phone,
in Spanish and English: with the panels closed the map shows at least 60 % of the screen,
nothing of Barrio's lies over the map's centre, the page never scrolls sideways, the base
map draws and no request leaves this machine. The run page fits the screen too."""

import pytest
from django.contrib.auth.models import Group

from accounts.models import Role, StaffProfile
from hotspots.models import HotspotRun
from neighborhoods.models import District
from tests.e2e.conftest import RequestLog, assert_basemap_drawn, log_in

SIZES = {"desktop": (1366, 768), "phone": (375, 812)}
TIMEOUT_MS = 20_000

LAYOUT_JS = """() => {
  const vw = window.innerWidth, vh = window.innerHeight;
  const node = document.getElementById('map');
  const m = node.getBoundingClientRect();
  const w = Math.max(0, Math.min(m.right, vw) - Math.max(m.left, 0));
  const h = Math.max(0, Math.min(m.bottom, vh) - Math.max(m.top, 0));
  const cx = Math.max(m.left, 0) + w / 2, cy = Math.max(m.top, 0) + h / 2;
  const hit = document.elementFromPoint(cx, cy);
  const describe = (el) => el ? (el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
      (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ').join('.') : '')) : 'nothing';
  const onMap = Boolean(hit && node.contains(hit) && !hit.closest('.leaflet-control-container'));
  return {
    share: (w * h) / (vw * vh),
    centre: describe(hit),
    parent: hit && hit.parentElement ? describe(hit.parentElement) : '',
    onMap: onMap,
    scrollWidth: document.documentElement.scrollWidth,
    width: vw,
  };
}"""


@pytest.fixture
def layout_users(demo_data, django_user_model):
    planner = django_user_model.objects.create_user("layout-planner")
    planner.groups.add(Group.objects.get(name=Role.PLANNER))
    municipal = django_user_model.objects.create_user("layout-municipal")
    municipal.groups.add(Group.objects.get(name=Role.MUNICIPAL))
    StaffProfile.objects.create(
        user=municipal, district=District.objects.filter(region__code="demo").order_by("code")[0]
    )
    return {"planner": planner, "municipal": municipal}


def _page(browser, size: str, language: str):
    width, height = SIZES[size]
    phone = size == "phone"
    context = browser.new_context(
        viewport={"width": width, "height": height},
        locale="es-PE" if language == "es" else "en-US",
        is_mobile=phone,
        has_touch=phone,
        device_scale_factor=2 if phone else 1,
    )
    page = context.new_page()
    log = RequestLog()
    log.attach(page)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return context, page, log, errors


def _in_language(page, live_server, language: str) -> None:
    if language == "en":
        page.context.add_cookies(
            [{"name": "django_language", "value": "en", "url": live_server.url}]
        )


def _close_panels(page) -> None:
    """Every panel a person can close: the planner's filter panel or drawer."""
    toggle = page.locator("#panel-toggle")
    if toggle.count() and toggle.is_visible() and toggle.get_attribute("aria-expanded") == "true":
        toggle.click()
        page.wait_for_function(
            "() => document.querySelector('#panel-toggle').getAttribute('aria-expanded') === 'false'"
        )
        page.wait_for_timeout(400)  # the panel slides away


def _check_layout(page, where: str) -> None:
    layout = page.evaluate(LAYOUT_JS)
    assert layout["scrollWidth"] <= layout["width"], f"{where}: scrolls sideways {layout}"
    assert layout["share"] >= 0.60, f"{where}: the map shows {layout['share']:.0%} {layout}"
    assert layout["onMap"], f"{where}: {layout['centre']} (in {layout['parent']}) covers the centre"


@pytest.mark.parametrize("language", ["es", "en"])
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize(
    "url,role,ready",
    [
        ("/", None, "#map path[data-level=district]"),
        ("/planner/", "planner", "#map path[data-level=district]"),
        ("/municipality/", "municipal", "#map[data-ready=true]"),
    ],
    ids=["public", "planner", "municipality"],
)
def test_the_map_has_the_screen(
    live_server, layout_users, browser, url, role, ready, size, language
):
    context, page, requests, errors = _page(browser, size, language)
    try:
        _in_language(page, live_server, language)
        if role:
            log_in(page, live_server, layout_users[role])
        page.goto(live_server.url + url)
        page.wait_for_selector(ready, state="attached", timeout=TIMEOUT_MS)
        assert page.locator("html").get_attribute("lang") == language
        assert_basemap_drawn(page, requests)
        _close_panels(page)
        page.wait_for_function(
            "() => document.querySelector('#map').getAttribute('data-moving') !== 'true'",
            timeout=TIMEOUT_MS,
        )
        _check_layout(page, f"{url} {size} {language}")
        assert requests.outside == [], f"requests left 127.0.0.1: {requests.outside}"
        assert errors == [], f"script errors: {errors}"
    finally:
        context.close()


@pytest.mark.parametrize("size", list(SIZES))
def test_the_run_page_fits_the_screen(live_server, layout_users, browser, size):
    run = HotspotRun.objects.filter(status=HotspotRun.Status.SUCCEEDED).order_by("pk").last()
    assert run is not None, "the demo computes its hotspot runs"
    context, page, requests, errors = _page(browser, size, "es")
    try:
        log_in(page, live_server, layout_users["planner"])
        page.goto(f"{live_server.url}/planner/hotspots/{run.pk}/")
        page.wait_for_selector("main", timeout=TIMEOUT_MS)
        width = page.evaluate("window.innerWidth")
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, f"the run page is {scroll} px wide on a {width} px screen"
        assert requests.outside == [] and errors == []
    finally:
        context.close()
