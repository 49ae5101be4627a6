"""The municipal public-space flow in a real browser: a municipal user of COMAS draws a new
park on the map, fills the form, takes its recovery project through planned → in works →
recovered with a photo, logs an activity, and the anonymous public map then shows the park
in its layer. The same user gets a 404 for a RÍMAC space, and dragging the park into RÍMAC
is refused with the service's message. Along the way: the drawing tools' titles, the space
page framed on the space (a point at street zoom), a refused photo leaving the space page's
URL in the address bar (a reload does not post again), and the park marked by a dot on the
public map when zoomed out. Also: the pages at 375 px wide, and the drawing buttons' text
labels in Spanish and English (issue 13, item 10).

Districts are the synthetic e2e squares of conftest.py (COMAS west of RÍMAC), so no real
data is needed.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.contrib.gis.geos import Point, Polygon
from django.utils import translation
from PIL import Image
from playwright.sync_api import expect

from accounts.models import Role, StaffProfile
from accounts.roles import ensure_role_groups
from neighborhoods.models import District
from publicspaces.models import Condition, ProjectStatus, PublicSpace, SpaceKind
from publicspaces.services.common import region_today
from publicspaces.services.projects import create_project, transition_project
from publicspaces.services.spaces import create_space
from publicspaces.tests.conftest import give_evidence
from tests.e2e.conftest import assert_basemap_drawn, log_in

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 15_000
PARK = "Parque Las Flores"


@pytest.fixture
def muni_data(map_data, settings, tmp_path):
    """The e2e districts, a municipal user of COMAS and a space in RÍMAC."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    # A transactional test empties every table afterwards, the role groups too.
    ensure_role_groups()
    comas = District.objects.get(region__code="e2e", code="e2e-1")
    rimac = District.objects.get(region__code="e2e", code="e2e-2")
    user = Group.objects.get(name=Role.MUNICIPAL).user_set.create(username="muni-comas")
    StaffProfile.objects.create(user=user, district=comas)
    rimac_space = create_space(
        user=None,
        name="Plaza del Rímac",
        kind="plaza",
        geom=Polygon.from_bbox((-79.005, -13.005, -79.000, -13.000)),
    )
    assert rimac_space.district == rimac
    return {"user": user, "comas": comas, "rimac": rimac, "rimac_space": rimac_space}


def es(text) -> str:
    """A label as the Spanish page shows it (translated once the lead's catalogue has it)."""
    with translation.override("es"):
        # Lazy model labels translate when made text; plain strings go through gettext.
        return translation.gettext(text) if isinstance(text, str) else str(text)


def tool_name(text: str, language: str) -> str:
    """A drawing button's visible name in the given language."""
    with translation.override(language):
        return translation.pgettext("drawing tool", text)


# Geoman's drawing buttons and their visible names (the msgids of publicspaces/layers.py).
DRAW_TOOLS = {"polygon": "Polygon", "polyline": "Line", "marker": "Point", "rectangle": "Rectangle"}


def _png(path) -> str:
    Image.new("RGB", (80, 60), (40, 160, 90)).save(path, format="PNG")
    return str(path)


def _click_at(page, box, fx: float, fy: float) -> None:
    page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])


def _draw_park(page) -> None:
    """Draws a square in the middle of the district's outline with geoman's polygon tool."""
    outline = page.locator('#map path[data-level="district-outline"]')
    expect(outline).to_have_count(1, timeout=TIMEOUT_MS)
    page.wait_for_function(
        "() => document.querySelector('#map').getAttribute('data-moving') !== 'true'"
    )
    box = outline.bounding_box()
    page.locator(".leaflet-pm-icon-polygon").click()
    corners = [(0.4, 0.4), (0.6, 0.4), (0.6, 0.6), (0.4, 0.6)]
    for fx, fy in corners:
        _click_at(page, box, fx, fy)
        page.wait_for_timeout(150)
    _click_at(page, box, *corners[0])  # back on the first vertex: the polygon is closed


def _settled(page) -> None:
    page.wait_for_function(
        "() => document.querySelector('#map').getAttribute('data-moving') !== 'true'",
        timeout=TIMEOUT_MS,
    )
    page.wait_for_timeout(300)  # the zoom animation ends a little after moveend


def _transition(page, status: str) -> None:
    page.locator(f'button[data-transition="{status}"]').click()
    expect(page.locator(".ps-project")).to_have_attribute("data-status", status, timeout=TIMEOUT_MS)


def test_municipal_user_logs_a_park_and_the_public_sees_it(
    live_server, muni_data, e2e_basemap, map_page, browser, tmp_path
):
    page, requests, errors = map_page
    log_in(page, live_server, muni_data["user"])

    # --- the district's map, with the drawing tools ---------------------------------------
    page.goto(live_server.url + "/municipality/")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.locator("#panel-heading")).to_contain_text("COMAS")
    expect(page.locator("#map")).to_have_attribute("data-ready", "true", timeout=TIMEOUT_MS)
    expect(page.locator("#map")).to_have_attribute("data-spaces", "0")
    assert_basemap_drawn(page, requests)
    expect(page.locator("#map-legend")).to_contain_text(es(Condition.RECOVERED.label))

    # The polygon and rectangle tools say which is which, in Spanish.
    titles = {
        tool: page.locator(f".leaflet-pm-icon-{tool}").evaluate(
            "(icon) => icon.closest('[title]').getAttribute('title')"
        )
        for tool in ("polygon", "rectangle")
    }
    assert titles == {
        "polygon": es("Draw an area, corner by corner"),
        "rectangle": es("Draw a rectangular area"),
    }

    _draw_park(page)
    expect(page.locator("#geometry-state")).to_have_attribute("data-drawn", "true")
    page.get_by_label(es("Name"), exact=True).fill(PARK)
    page.get_by_label(es("Kind"), exact=True).select_option("park")
    page.get_by_label(es("Address"), exact=True).fill("Av. Los Jazmines 123")
    page.locator("#space-save").click()

    # --- the space's page ---------------------------------------------------------------
    expect(page.locator("#space-name")).to_have_text(PARK, timeout=TIMEOUT_MS)
    space = PublicSpace.objects.get(name=PARK)
    assert space.district == muni_data["comas"]
    assert space.geom.geom_type == "Polygon"
    expect(page.locator("#space-district")).to_have_text("COMAS")
    # The map is framed on the park, not on its whole district.
    expect(page.locator("#map")).to_have_attribute("data-ready", "true", timeout=TIMEOUT_MS)
    _settled(page)
    map_box = page.locator("#map").bounding_box()
    park_box = page.locator(f'#map path[data-space-id="{space.pk}"]').bounding_box()
    share = max(park_box["width"] / map_box["width"], park_box["height"] / map_box["height"])
    assert share > 0.3, share

    page.locator("#project-form").get_by_label(es("Title"), exact=True).fill(
        "Recuperación del parque"
    )
    page.locator("#project-form button[type=submit]").click()
    expect(page.locator(".ps-project")).to_have_attribute("data-status", "identified")
    # Only the moves the services allow are offered.
    buttons = page.locator(".ps-transition-form button[data-transition]")
    assert [buttons.nth(i).get_attribute("data-transition") for i in range(buttons.count())] == [
        "planned",
        "cancelled",
    ]
    _transition(page, "planned")
    _transition(page, "in_works")
    expect(page.locator(".ps-condition")).to_have_attribute("data-condition", "in_recovery")
    # "Recovered" would publish it: the page lists the audit and the "after" photo it needs.
    expect(page.locator(".ps-evidence li")).to_have_count(2)
    give_evidence(space.created_by, space.projects.get(), region_today(space.region))
    page.reload()
    expect(page.locator(".ps-evidence")).to_have_count(0)
    _transition(page, "recovered")
    expect(page.locator(".ps-condition")).to_have_attribute("data-condition", "recovered")
    # The region's day, not the machine's: between midnight UTC and Lima's they differ.
    today = region_today(space.region).isoformat()
    project = space.projects.get()
    assert project.status == ProjectStatus.RECOVERED
    assert [project.planned_on, project.works_started_on, project.recovered_on] != [None] * 3
    expect(page.locator('.ps-step[data-step="recovered"]')).to_have_class(
        "ps-step is-done is-current"
    )

    # A file that is not an image is refused next to the field; the address bar shows the
    # space's page again, so reloading does not send the form a second time.
    photo_form = page.locator(".ps-photo-form")
    photo_form.locator("input[type=file]").set_input_files(
        {"name": "notes.png", "mimeType": "image/png", "buffer": b"not an image"}
    )
    photo_form.locator("button[type=submit]").click()
    expect(page.locator('.ps-photo-form [data-field="image"] .errorlist')).to_be_visible(
        timeout=TIMEOUT_MS
    )
    space_url = f"{live_server.url}/municipality/spaces/{space.pk}/"
    expect(page).to_have_url(f"{space_url}#project-{project.pk}")
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    response = page.reload()
    assert response.status == 200 and response.request.method == "GET"
    assert posts == []
    assert project.photos.count() == 1  # only the "after" photo given as evidence
    expect(page.locator(".ps-photo-form .errorlist")).to_have_count(0)

    # A photo of the result: previewed when chosen, shown once uploaded.
    photo_form = page.locator(".ps-photo-form")
    photo_form.get_by_label(es("Stage"), exact=True).select_option("after")
    photo_form.locator("input[type=file]").set_input_files(_png(tmp_path / "parque.png"))
    expect(photo_form.locator(".ps-photo-preview img")).to_have_count(1)
    photo_form.get_by_label(es("Caption"), exact=True).fill("El parque recuperado")
    photo_form.locator("button[type=submit]").click()
    photo = page.locator('.ps-photo[data-stage="after"] img')
    expect(photo).to_have_count(2, timeout=TIMEOUT_MS)
    page.wait_for_function(
        "() => { const i = document.querySelector('.ps-photo img'); "
        "return i && i.complete && i.naturalWidth > 0; }",
        timeout=TIMEOUT_MS,
    )

    # An activity held in the recovered park.
    page.locator("#activities summary").click()
    activity_form = page.locator("#activity-form")
    activity_form.get_by_label(es("Date"), exact=True).fill(today)
    activity_form.get_by_label(es("Kind"), exact=True).select_option("cultural")
    activity_form.get_by_label(es("Title"), exact=True).fill("Taller de pintura")
    activity_form.get_by_label(es("Participants"), exact=True).fill("25")
    activity_form.locator("button[type=submit]").click()
    expect(page.locator("#activity-table")).to_contain_text("Taller de pintura", timeout=TIMEOUT_MS)
    expect(page.locator("#history")).to_contain_text("muni-comas")

    # --- another district's space: not found ---------------------------------------------
    rimac_url = f"{live_server.url}/municipality/spaces/{muni_data['rimac_space'].pk}/"
    response = page.goto(rimac_url)
    assert response.status == 404
    assert "Plaza del Rímac" not in page.content()

    # --- dragging the park into RÍMAC is refused ------------------------------------------
    page.goto(f"{live_server.url}/municipality/spaces/{space.pk}/")
    expect(page.locator("#map")).to_have_attribute("data-ready", "true", timeout=TIMEOUT_MS)
    # The page frames the park: zoom out until its district (and RÍMAC) are in sight.
    _settled(page)
    for _ in range(3):
        page.locator("#map .leaflet-control-zoom-out").click()
        _settled(page)
    page.locator("#shape-move").click()
    park = page.locator(f'#map path[data-space-id="{space.pk}"]')
    park_box = park.bounding_box()
    outline_box = page.locator('#map path[data-level="district-outline"]').bounding_box()
    start_x = park_box["x"] + park_box["width"] / 2
    start_y = park_box["y"] + park_box["height"] / 2
    page.mouse.move(start_x, start_y)
    page.mouse.down()
    # One district's width to the east: RÍMAC.
    for step in range(1, 11):
        page.mouse.move(start_x + step * outline_box["width"] / 10, start_y)
    page.mouse.up()
    expect(page.locator("#map")).to_have_attribute("data-shape-changed", "true")
    page.locator("#shape-save").click()
    expect(page.locator("#geometry-errors")).to_contain_text("COMAS", timeout=TIMEOUT_MS)
    before = space.geom
    space.refresh_from_db()
    assert space.geom.equals_exact(before, 1e-9)
    assert space.district == muni_data["comas"]

    assert not errors, errors
    assert not requests.outside, requests.outside

    # --- the anonymous public map shows the park in its layer ------------------------------
    context = browser.new_context(locale="es-PE", viewport={"width": 1280, "height": 800})
    try:
        public = context.new_page()
        public_errors: list[str] = []
        public.on("pageerror", lambda error: public_errors.append(str(error)))
        public.goto(live_server.url + "/")
        expect(public.locator("#map")).to_have_attribute(
            "data-public-spaces", "1", timeout=TIMEOUT_MS
        )
        expect(public.locator("#map-legend")).to_contain_text(es("Recovered public space"))
        park_path = public.locator('#map path[data-layer="public-space"]')
        expect(park_path).to_have_count(1)
        # Zoomed out to a city's scale the park is a few pixels: a dot of a visible size
        # marks it, and opens its popup.
        park_dot = public.locator('#map path[data-layer="public-space-marker"]')
        expect(park_dot).to_have_count(0)  # at this zoom the shape itself is large enough
        zoom = int(public.locator("#map").get_attribute("data-zoom"))
        for _ in range(3):
            public.locator("#map .leaflet-control-zoom-out").click()
            _settled(public)
        assert int(public.locator("#map").get_attribute("data-zoom")) == zoom - 3
        assert max(park_path.bounding_box()["width"], park_path.bounding_box()["height"]) < 14
        expect(park_dot).to_have_count(1)
        assert park_dot.bounding_box()["width"] >= 14
        park_dot.click()
        expect(public.locator(".public-space-popup")).to_contain_text(PARK, timeout=TIMEOUT_MS)
        public.keyboard.press("Escape")
        # Zoomed out, the park is a few pixels: zoom to it through the district search.
        public.locator("#district-search").fill("comas")
        public.locator("#district-search").press("Enter")
        public.wait_for_timeout(600)
        _settled(public)
        expect(park_dot).to_have_count(0)
        park_path.click()
        popup = public.locator(".public-space-popup")
        expect(popup).to_contain_text(PARK, timeout=TIMEOUT_MS)
        expect(popup).to_contain_text(es(SpaceKind.PARK.label))
        expect(popup).to_contain_text("COMAS")
        expect(popup).to_contain_text(today)
        expect(popup.locator("dd").filter(has_text="25")).to_have_count(1)
        expect(popup.locator('img[data-stage="after"]')).to_have_count(
            2
        )  # the evidence and the one uploaded
        public.wait_for_function(
            "() => { const i = document.querySelector('.public-space-popup img'); "
            "return i && i.complete && i.naturalWidth > 0; }",
            timeout=TIMEOUT_MS,
        )
        # No personal data: not the address, the caption, the organiser or the user.
        text = popup.inner_text()
        for private in ("Jazmines", "El parque recuperado", "muni-comas"):
            assert private not in text
        # The layer toggle hides and shows it.
        public.locator("#public-spaces-toggle").uncheck()
        expect(park_path).to_have_count(0)
        public.locator("#public-spaces-toggle").check()
        expect(park_path).to_have_count(1)
        assert not public_errors, public_errors
    finally:
        context.close()


def test_municipal_pages_fit_a_375px_phone(live_server, muni_data, browser):
    space = create_space(
        user=muni_data["user"],
        name="Losa deportiva con un nombre bastante largo para un teléfono",
        kind="sports_field",
        geom=Polygon.from_bbox((-79.045, -13.005, -79.040, -13.000)),
    )
    context = browser.new_context(
        locale="es-PE",
        viewport={"width": 375, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        log_in(page, live_server, muni_data["user"])
        for path in (
            "/municipality/",
            f"/municipality/spaces/{space.pk}/",
            "/municipality/spaces/",
        ):
            page.goto(live_server.url + path)
            width = page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= 375, (path, width)
        page.goto(live_server.url + "/municipality/")
        expect(page.locator("#map")).to_have_attribute("data-spaces", "1", timeout=TIMEOUT_MS)
        map_box = page.locator("#map").bounding_box()
        assert map_box["width"] == pytest.approx(375, abs=1)
        # The form comes under the map and its fields are a finger wide.
        name_box = page.get_by_label(es("Name"), exact=True).bounding_box()
        assert name_box["y"] > map_box["y"] + map_box["height"] - 1
        assert name_box["height"] >= 44 and name_box["width"] > 300
        page.goto(f"{live_server.url}/municipality/spaces/{space.pk}/")
        expect(page.locator("#map")).to_have_attribute("data-ready", "true", timeout=TIMEOUT_MS)
        save_box = page.locator("#shape-save").bounding_box()
        assert save_box["height"] >= 44
        page.screenshot(path="/tmp/municipality_phone.png", full_page=True)
        assert not errors, errors
    finally:
        context.close()


@pytest.mark.parametrize("language", ["es", "en"])
def test_the_drawing_buttons_show_their_names(live_server, muni_data, browser, language):
    """Each drawing button shows its name next to its icon, in the page's language, on a
    desktop and on a 375 px phone (where the toolbar keeps clear of the map's centre); the
    name is the button's accessible name, the longer title stays; the labelled polygon
    button still draws."""
    errors: list[str] = []
    for viewport, phone in (
        ({"width": 1280, "height": 800}, False),
        ({"width": 375, "height": 740}, True),
    ):
        context = browser.new_context(
            locale="es-PE" if language == "es" else "en-US",
            viewport=viewport,
            is_mobile=phone,
            has_touch=phone,
            device_scale_factor=2 if phone else 1,
        )
        try:
            page = context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            log_in(page, live_server, muni_data["user"])
            if language == "en":
                context.add_cookies(
                    [{"name": "django_language", "value": "en", "url": live_server.url}]
                )
            page.goto(live_server.url + "/municipality/")
            expect(page.locator("html")).to_have_attribute("lang", language)
            expect(page.locator("#map")).to_have_attribute("data-ready", "true", timeout=TIMEOUT_MS)
            map_box = page.locator("#map").bounding_box()
            with translation.override(language):
                polygon_title = translation.gettext("Draw an area, corner by corner")
            for tool, msgid in DRAW_TOOLS.items():
                name = tool_name(msgid, language)
                if language == "es":
                    assert name != msgid, f"{msgid!r} has no Spanish translation"
                button = page.locator("a.leaflet-buttons-control-button").filter(
                    has=page.locator(f".leaflet-pm-icon-{tool}")
                )
                label = button.locator(".draw-label")
                expect(label).to_be_visible()
                expect(label).to_have_text(name)
                assert button.inner_text().strip() == name
                expect(page.get_by_role("button", name=name, exact=True)).to_have_count(1)
                # The icon still shows, left of its name, and the name fits in the button.
                icon = button.locator(".control-icon").bounding_box()
                text = label.bounding_box()
                box = button.bounding_box()
                assert icon["width"] >= 16 and icon["x"] + icon["width"] <= text["x"]
                assert (
                    box["x"] <= text["x"] and text["x"] + text["width"] <= box["x"] + box["width"]
                )
                assert box["height"] >= (40 if phone else 30)
            title = page.get_by_role("button", name=tool_name("Polygon", language), exact=True)
            expect(title).to_have_attribute("title", polygon_title)
            # The toolbar stays in the map's left part, clear of its centre.
            toolbar = page.locator(".leaflet-pm-toolbar.leaflet-pm-draw").bounding_box()
            assert toolbar["x"] + toolbar["width"] < map_box["x"] + map_box["width"] / 2 - 20
            # Nor does the map's status message lie over the buttons.
            status = page.locator("#map-status")
            if status.is_visible():
                status_box = status.bounding_box()
                assert (
                    status_box["x"] >= toolbar["x"] + toolbar["width"]
                    or status_box["y"] >= toolbar["y"] + toolbar["height"]
                ), (status_box, toolbar)
            if phone:
                # Drawing a polygon, geoman's actions (finish, remove the last corner,
                # cancel) come beside the wider toolbar and still fit on the map.
                page.get_by_role("button", name=tool_name("Polygon", language), exact=True).click()
                actions = page.locator(".button-container.active .leaflet-pm-action")
                expect(actions.first).to_be_visible()
                for index in range(actions.count()):
                    action = actions.nth(index).bounding_box()
                    assert action["x"] + action["width"] <= map_box["x"] + map_box["width"], index
                    assert action["height"] >= 29
                page.screenshot(path=f"/tmp/draw_labels_phone_{language}.png")
                assert not errors, errors
                continue
            # Clicking the labelled button starts drawing: geoman shows its actions, and
            # four clicks and a click back on the first corner make the shape.
            page.get_by_role("button", name=tool_name("Polygon", language), exact=True).click()
            expect(page.locator(".button-container.active[data-tool=drawPolygon]")).to_have_count(1)
            expect(
                page.locator(".button-container.active .leaflet-pm-actions-container")
            ).to_be_visible()
            outline = page.locator('#map path[data-level="district-outline"]')
            page.wait_for_function(
                "() => document.querySelector('#map').getAttribute('data-moving') !== 'true'"
            )
            box = outline.bounding_box()
            corners = [(0.4, 0.4), (0.6, 0.4), (0.6, 0.6), (0.4, 0.6)]
            for fx, fy in corners:
                _click_at(page, box, fx, fy)
                page.wait_for_timeout(150)
            _click_at(page, box, *corners[0])
            expect(page.locator("#geometry-state")).to_have_attribute("data-drawn", "true")
            page.screenshot(path=f"/tmp/draw_labels_desktop_{language}.png")
            assert not errors, errors
        finally:
            context.close()


def test_a_point_space_page_opens_at_street_zoom(live_server, muni_data, map_page):
    page, requests, errors = map_page
    lamp = create_space(
        user=None, name="Poste 14", kind="lighting_point", geom=Point(-79.041, -13.001, srid=4326)
    )
    log_in(page, live_server, muni_data["user"])
    page.goto(f"{live_server.url}/municipality/spaces/{lamp.pk}/")
    expect(page.locator("#map")).to_have_attribute("data-ready", "true", timeout=TIMEOUT_MS)
    _settled(page)
    # Not the district's frame (about zoom 13 here): close enough to see the street.
    assert page.locator("#map").get_attribute("data-zoom") == "18"
    marker = page.locator("#map .leaflet-marker-icon").bounding_box()
    map_box = page.locator("#map").bounding_box()
    centre_x = marker["x"] + marker["width"] / 2 - map_box["x"]
    assert centre_x == pytest.approx(map_box["width"] / 2, abs=2)
    assert not errors, errors
    assert not requests.outside, requests.outside


def test_planner_layer_counts_incidents_around_recovered_spaces(live_server, muni_data, map_page):
    """The planner map's layer: before/after counts within the chosen distance."""
    from incidents.models import Category, ImportBatch, Incident, IncidentSource, SourceLabel
    from incidents.taxonomy import ensure_taxonomy

    page, requests, errors = map_page
    ensure_taxonomy(Category)
    comas = muni_data["comas"]
    park = create_space(
        user=None,
        name="Parque Planner",
        kind="park",
        geom=Polygon.from_bbox((-79.0405, -13.0005, -79.0395, -12.9995)),
    )
    project = create_project(user=None, space=park, title="P", identified_on=dt.date(2024, 1, 1))
    for status, day in (("planned", 2), ("in_works", 3), ("recovered", 10)):
        transition_project(
            user=None,
            project=project,
            to_status=status,
            on=dt.date(2024, 1, day),
            evidence_waiver="Acta de entrega (e2e)",
        )
    source = IncidentSource.objects.create(name="e2e-spaces")
    batch = ImportBatch.objects.create(source=source, status=ImportBatch.Status.SUCCEEDED)
    category = Category.objects.get(code="burglary")
    label = SourceLabel.objects.create(source=source, label="ROBO", category=category)
    # (lon, lat, when): 3 near the park before, 1 near after, 1 far (about 550 m) before.
    points = [
        (-79.0400, -13.0010, dt.datetime(2023, 9, 1, tzinfo=dt.UTC)),
        (-79.0390, -13.0000, dt.datetime(2023, 11, 1, tzinfo=dt.UTC)),
        (-79.0410, -12.9990, dt.datetime(2023, 12, 20, tzinfo=dt.UTC)),
        (-79.0400, -13.0010, dt.datetime(2024, 3, 1, tzinfo=dt.UTC)),
        (-79.0350, -13.0000, dt.datetime(2023, 10, 1, tzinfo=dt.UTC)),
    ]
    for number, (lon, lat, when) in enumerate(points):
        Incident.objects.create(
            source=source,
            external_id=f"PS-{number}",
            point=Point(lon, lat, srid=4326),
            occurred_at=when,
            label=label,
            category=category,
            region=comas.region,
            district=comas,
            batch=batch,
        )
    planner = Group.objects.get(name=Role.PLANNER).user_set.create(username="planner-spaces")
    log_in(page, live_server, planner)
    page.goto(live_server.url + "/planner/")
    control = page.locator("#planner-spaces")
    expect(control).to_be_visible(timeout=TIMEOUT_MS)
    control.locator("summary").click()  # folded to its title in the side panel
    page.locator("#planner-spaces-toggle").check()
    expect(control).to_have_attribute("data-count", "1", timeout=TIMEOUT_MS)
    space_path = page.locator('#map path[data-layer="planner-space"]')
    expect(space_path).to_have_attribute("data-change", "fewer")
    page.locator("#planner-spaces-distance").fill("800")
    page.locator("#planner-spaces-form button").click()
    expect(control).to_have_attribute("aria-busy", "false", timeout=TIMEOUT_MS)
    # Zoomed out to the three districts the park is a few pixels under the incident
    # clusters: the click goes to its path, as Leaflet reads it.
    space_path.dispatch_event("click")
    popup = page.locator(".planner-space-popup")
    expect(popup).to_contain_text("Parque Planner", timeout=TIMEOUT_MS)
    # 800 m takes in the far one too: 4 before, 1 after; the 6 months after are over.
    expect(popup.locator('[data-count="before"]')).to_have_text("4")
    expect(popup.locator('[data-count="after"]')).to_have_text("1")
    expect(popup.locator(".planner-space-complete")).to_have_attribute("data-complete", "true")
    page.locator("#planner-spaces-distance").fill("100")
    page.locator("#planner-spaces-form button").click()
    expect(control).to_have_attribute("aria-busy", "false", timeout=TIMEOUT_MS)
    space_path.dispatch_event("click")
    # The popup of the previous count fades out: only the new one stays.
    expect(page.locator(".planner-space-popup")).to_have_count(1)
    expect(page.locator('.planner-space-popup [data-count="before"]')).to_have_text("3")
    assert not errors, errors
