"""Hotspot layers on the planner map in a real browser: a run computed by the service is
shown by default (cells coloured by Gi* bin, the legend, a zone's popup), and the "Run
analysis" panel starts a new run through the API, follows it and draws its layers. No
request leaves this machine, and the page works without base tiles."""

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from django.contrib.auth.models import Group
from django.contrib.gis.geos import Point
from django.urls import reverse
from django.utils import translation
from playwright.sync_api import expect

from accounts.models import Role
from accounts.roles import ensure_role_groups
from hotspots.models import HotspotRun
from hotspots.services import runs
from incidents.models import Category, Incident
from incidents.taxonomy import ensure_taxonomy
from incidents.tests.factories import make_batch, make_label, make_source
from neighborhoods.models import District, Region
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 20_000
# COMAS (e2e-1) spans lon -79.06…-79.02, lat -13.02…-12.98 (see conftest.E2E_DISTRICTS).
CLUSTER = (-79.045, -13.005)
WHEN = dt.datetime(2024, 5, 10, 21, 0, tzinfo=dt.UTC)


@pytest.fixture
def hotspot_data(map_data):
    """Seeded incidents in COMAS (a dense cluster over a scattered background), a planner,
    and one grid + Gi* run of them computed by the service."""
    ensure_taxonomy(Category)
    ensure_role_groups()
    region = Region.objects.get(code="e2e")
    comas = District.objects.get(region=region, code="e2e-1")
    source = make_source("e2e-hotspots")
    batch = make_batch(source)
    rng = np.random.default_rng(5)
    points = [
        *zip(rng.uniform(-79.059, -79.021, 250), rng.uniform(-13.019, -12.981, 250), strict=True),
        *zip(rng.normal(CLUSTER[0], 0.0012, 160), rng.normal(CLUSTER[1], 0.0012, 160), strict=True),
    ]
    label = make_label(source, "robbery-person")
    Incident.objects.bulk_create(
        Incident(
            source=source,
            external_id=f"E2E-HS-{n}",
            point=Point(lon, lat, srid=4326),
            occurred_at=WHEN,
            label=label,
            category=label.category,
            region=region,
            district=comas,
            batch=batch,
        )
        for n, (lon, lat) in enumerate(points)
    )
    planner = Group.objects.get(name=Role.PLANNER).user_set.create(username="planner-hotspots")
    run = runs.create_run(
        user=planner,
        region=region,
        districts=[comas],
        date_from=dt.date(2024, 1, 1),
        date_to=dt.date(2024, 12, 31),
        params={"grid": "square", "cell_size_m": 250},
    )
    run = runs.execute_run(run=run)
    assert run.status == HotspotRun.Status.SUCCEEDED, run.message
    assert run.zones.exists()
    return {"run": run, "planner": planner}


def test_planner_sees_hotspot_layers_and_starts_a_run(live_server, hotspot_data, map_page):
    page, requests, errors = map_page
    run = hotspot_data["run"]
    log_in(page, live_server, hotspot_data["planner"])
    page.goto(live_server.url + "/planner/")
    mapnode = page.locator("#map")

    # The newest succeeded run of the region is shown: its hot cells and zones.
    expect(mapnode).to_have_attribute("data-hotspot-run", str(run.pk), timeout=TIMEOUT_MS)
    expect(mapnode).to_have_attribute(
        "data-hotspot-zones", str(run.zones.count()), timeout=TIMEOUT_MS
    )
    significant = run.cells.exclude(gi_bin=0).count()
    assert significant > 0
    expect(mapnode).to_have_attribute("data-hotspot-cells", str(significant), timeout=TIMEOUT_MS)
    expect(page.locator("#hotspot-run")).to_have_value(str(run.pk))
    # The legend is folded to its title line; opened, it explains the run's cells.
    assert page.locator("#map-legend").evaluate("node => node.open") is False
    page.locator("#map-legend summary").click()
    legend = page.locator("#hotspot-legend")
    expect(legend).to_be_visible()
    expect(legend.locator("li")).to_have_count(6)  # ±1, ±2, ±3
    expect(legend.locator("li.bin-3")).to_contain_text("99 %")
    expect(legend.locator("li.bin--3")).to_contain_text("99 %")
    expect(page.locator("#hotspot-run-info a")).to_have_attribute(
        "href", f"/planner/hotspots/{run.pk}/"
    )
    expect(page.locator("#hotspot-zone-hint")).to_be_visible()  # the run has zones

    # The first zone's popup, with its figures.
    zone = run.zones.get(rank=1)
    page.evaluate(
        "([lat, lon]) => { window.location.hash = '#15/' + lat + '/' + lon; }",
        [zone.geom.point_on_surface.y, zone.geom.point_on_surface.x],
    )
    expect(mapnode).to_have_attribute("data-zoom", "15", timeout=TIMEOUT_MS)
    expect(mapnode).to_have_attribute("data-moving", "false", timeout=TIMEOUT_MS)
    page.locator('#map path[data-zone-rank="1"]').click()
    popup = page.locator(".leaflet-popup .hotspot-zone-popup")
    expect(popup).to_be_visible(timeout=TIMEOUT_MS)
    expect(popup).to_have_attribute("data-rank", "1")
    expect(popup).to_contain_text(f"{zone.incident_count}")
    robbery = Category.objects.get(code="robbery-person").name_es
    expect(popup).to_contain_text(f"{robbery} ({zone.incident_count})")
    page.screenshot(path="/tmp/planner_hotspots.png")

    # "Run analysis": a smaller cell size over the same district, followed to the end.
    page.locator("#hotspot-analysis > summary").click()
    page.locator("#hotspot-method").select_option("dbscan")
    expect(page.locator("#hotspot-dbscan-hint")).to_be_visible()
    expect(page.locator("[data-param=cell_size_m]")).to_be_hidden()
    page.locator("#hotspot-method").select_option("gistar")
    expect(page.locator("#hotspot-dbscan-hint")).to_be_hidden()
    expect(page.locator("#hotspot-from")).to_have_value("2024-01-01")  # the run's period
    expect(page.locator("#hotspot-to")).to_have_value("2024-12-31")
    page.locator("#hotspot-district").select_option("e2e-1")
    page.locator("#hotspot-grid").select_option("hex")
    page.locator("#hotspot-cell-size").fill("180")
    page.locator("#hotspot-grid-origin").select_option("area")
    page.locator("#hotspot-fdr").select_option("false")
    page.locator("#hotspot-submit").click()
    expect(mapnode).to_have_attribute("data-hotspot-job", "succeeded", timeout=TIMEOUT_MS)
    new_run = HotspotRun.objects.exclude(pk=run.pk).get()
    assert new_run.status == HotspotRun.Status.SUCCEEDED, new_run.message
    assert new_run.params["grid"] == "hex" and new_run.params["cell_size_m"] == 180
    assert new_run.params["grid_origin"] == "area" and new_run.params["fdr"] is False
    assert new_run.created_by == hotspot_data["planner"]
    expect(mapnode).to_have_attribute("data-hotspot-run", str(new_run.pk), timeout=TIMEOUT_MS)
    expect(page.locator("#hotspot-run")).to_have_value(str(new_run.pk))
    expect(mapnode).to_have_attribute(
        "data-hotspot-cells", str(new_run.cells.exclude(gi_bin=0).count()), timeout=TIMEOUT_MS
    )
    with translation.override("es"):
        done = translation.gettext("Done: the layers of run #%(id)s are on the map.")
    expect(page.locator("#hotspot-progress-text")).to_have_text(done % {"id": new_run.pk})
    expect(mapnode).to_have_attribute("data-hotspot-reused", "false")

    # The very same request again: the finished run is shown again, and the panel says so.
    page.locator("#hotspot-submit").click()
    expect(mapnode).to_have_attribute("data-hotspot-reused", "true", timeout=TIMEOUT_MS)
    with translation.override("es"):
        reused = translation.gettext(
            "Run #%(id)s already analysed exactly this with the same incidents: its "
            "layers are on the map, nothing was computed again."
        )
    expect(page.locator("#hotspot-progress-text")).to_have_text(reused % {"id": new_run.pk})
    assert HotspotRun.objects.count() == 2
    expect(page.locator(f'#hotspot-run option[value="{new_run.pk}"]')).to_have_count(1)
    expect(page.locator("#hotspot-run")).to_have_value(str(new_run.pk))

    # A refused request shows the service's reason.
    page.locator("#hotspot-from").fill("2020-01-01")
    page.locator("#hotspot-to").fill("2020-01-31")
    page.locator("#hotspot-submit").click()
    expect(mapnode).to_have_attribute("data-hotspot-job", "failed", timeout=TIMEOUT_MS)
    expect(page.locator("#hotspot-progress-text")).to_contain_text("incidents")

    assert requests.outside == []
    assert errors == []


def test_the_report_draws_its_map_without_any_network(hotspot_data, map_page):
    from hotspots.report import render_report

    page, requests, errors = map_page
    run = hotspot_data["run"]
    # As a downloaded file opened from disk: nothing but the page itself.
    page.set_content(render_report(run))
    expect(page.locator(".folium-map.leaflet-container")).to_be_visible(timeout=TIMEOUT_MS)
    significant = run.cells.exclude(gi_bin=0).count()
    # The area outline, the significant cells and the zones, all drawn by Leaflet.
    expect(page.locator("path.leaflet-interactive")).to_have_count(
        1 + significant + run.zones.count(), timeout=TIMEOUT_MS
    )
    expect(page.locator(".report-legend li")).to_have_count(7)  # 6 significant bins, the zone
    page.locator("path.leaflet-interactive").last.click(force=True)
    expect(page.locator(".leaflet-popup.foliumpopup")).to_be_visible(timeout=TIMEOUT_MS)
    page.screenshot(path="/tmp/hotspot_report.png", full_page=False)
    assert requests.outside == []
    assert errors == []


def test_emerging_categories_with_the_time_slider_and_kde(live_server, hotspot_data, map_page):
    from hotspots.engine.emerging import LEGEND
    from hotspots.tests.hotspot_fixtures import copy_run

    page, requests, errors = map_page
    run = hotspot_data["run"]
    steps = ["2024-01-01", "2024-02-01", "2024-03-01"]
    emerging = copy_run(run, method="emerging", params={"steps": steps, "step": "month"})
    cells = list(emerging.cells.order_by("i", "j")[:3])
    # Persistent, new, and no pattern but hot in the second month only.
    for cell, code, bins in zip(cells, (4, 1, 0), ([2, 3, 3], [0, 0, 2], [0, 1, 0]), strict=True):
        emerging.cells.filter(pk=cell.pk).update(emerging=code, step_bins=bins)
    emerging.cells.exclude(pk__in=[c.pk for c in cells]).update(emerging=0, step_bins=[0, 0, 0])
    kde = copy_run(run, method="kde")
    kde.cells.update(density=0)
    kde.cells.filter(count__gt=0).update(density=12.5)
    log_in(page, live_server, hotspot_data["planner"])

    page.goto(live_server.url + f"/planner/?run={emerging.pk}")
    mapnode = page.locator("#map")
    expect(mapnode).to_have_attribute("data-hotspot-run", str(emerging.pk), timeout=TIMEOUT_MS)
    # Whole period: the two cells with a pattern, and the legend of the categories.
    expect(mapnode).to_have_attribute("data-hotspot-cells", "2", timeout=TIMEOUT_MS)
    expect(mapnode).to_have_attribute("data-hotspot-legend", "emerging")
    expect(page.locator("#hotspot-legend li.emerging-persistent_hot_spot")).to_have_text(
        LEGEND[4]["es"]
    )
    slider = page.locator("#hotspot-step")
    expect(page.locator("#hotspot-step-box")).to_be_visible()
    expect(slider).to_have_attribute("max", "3")
    # Step by step: the cells hot or cold in that month.
    for step, drawn in ((1, 1), (2, 2), (3, 2)):
        slider.fill(str(step))
        expect(mapnode).to_have_attribute("data-hotspot-step", str(step))
        expect(mapnode).to_have_attribute("data-hotspot-cells", str(drawn))
    page.locator("#map-legend summary").click()  # folded to its title until opened
    expect(page.locator("#hotspot-legend li.bin-3")).to_be_visible()

    # The KDE run from the list: a density ramp over the cells with incidents.
    page.locator("#hotspot-run").select_option(str(kde.pk))
    expect(mapnode).to_have_attribute("data-hotspot-run", str(kde.pk), timeout=TIMEOUT_MS)
    expect(mapnode).to_have_attribute(
        "data-hotspot-cells", str(kde.cells.filter(count__gt=0).count()), timeout=TIMEOUT_MS
    )
    expect(mapnode).to_have_attribute("data-hotspot-legend", "kde")
    expect(page.locator("#hotspot-step-box")).to_be_hidden()
    # The density cells come for the view (bbox) at its zoom, not for the whole region.
    kde_calls = [
        parse_qs(urlsplit(url).query)
        for url in requests.all
        if urlsplit(url).path == reverse("hotspot-run-kde", args=[kde.pk])
    ]
    assert kde_calls and all({"bbox", "zoom"} <= set(call) for call in kde_calls)
    # Panned far away, the cells are asked again for the new view.
    page.evaluate("() => { window.location.hash = '#14/-13.0/-78.80'; }")
    expect(mapnode).to_have_attribute("data-hotspot-cells", "0", timeout=TIMEOUT_MS)
    # No zones in a density run: neither the zone hint nor the zones toggle.
    expect(page.locator("#hotspot-zone-hint")).to_be_hidden()
    expect(page.locator("#hotspot-zones-label")).to_be_hidden()
    expect(page.locator("#hotspot-cells-label")).to_be_visible()
    assert requests.outside == []
    assert errors == []


def _forecast_run(hotspot_data):
    """A forecast run computed by the service: the fixture's incidents all fall on one
    day, so a fortnightly history over 2024 is added for the back-test to fit and score."""
    region = Region.objects.get(code="e2e")
    comas = District.objects.get(region=region, code="e2e-1")
    template = Incident.objects.filter(district=comas).first()
    rng = np.random.default_rng(7)
    history = []
    for week in range(26):
        when = dt.datetime(2024, 1, 2, 20, 0, tzinfo=dt.UTC) + dt.timedelta(days=14 * week)
        spot = rng.normal(CLUSTER, 0.001, size=(6, 2))
        scattered = np.column_stack(
            [rng.uniform(-79.059, -79.021, 4), rng.uniform(-13.019, -12.981, 4)]
        )
        for n, (lon, lat) in enumerate([*spot, *scattered]):
            history.append(
                Incident(
                    source=template.source,
                    external_id=f"E2E-FC-{week}-{n}",
                    point=Point(float(lon), float(lat), srid=4326),
                    occurred_at=when,
                    label=template.label,
                    category=template.category,
                    region=region,
                    district=comas,
                    batch=template.batch,
                )
            )
    Incident.objects.bulk_create(history)
    run = runs.create_run(
        user=hotspot_data["planner"],
        region=region,
        districts=[comas],
        date_from=dt.date(2024, 1, 1),
        date_to=dt.date(2024, 12, 31),
        method="forecast",
        params={"grid": "square", "cell_size_m": 250, "coverage": 0.05},
    )
    run = runs.execute_run(run=run)
    assert run.status == HotspotRun.Status.SUCCEEDED, run.message
    return run


def test_a_forecast_run_shows_its_flagged_cells_by_score(live_server, hotspot_data, map_page):
    page, requests, errors = map_page
    run = _forecast_run(hotspot_data)
    flagged = run.cells.filter(zone__isnull=False)
    assert 0 < flagged.count() == run.summary["flagged_cells"] < run.cells.count()
    log_in(page, live_server, hotspot_data["planner"])
    page.goto(live_server.url + f"/planner/?run={run.pk}")
    mapnode = page.locator("#map")
    expect(mapnode).to_have_attribute("data-hotspot-run", str(run.pk), timeout=TIMEOUT_MS)
    # The flagged cells, not the empty Gi* layer, and the zones they form.
    expect(mapnode).to_have_attribute(
        "data-hotspot-cells", str(flagged.count()), timeout=TIMEOUT_MS
    )
    expect(mapnode).to_have_attribute("data-hotspot-zones", str(run.zones.count()))
    expect(mapnode).to_have_attribute("data-hotspot-legend", "forecast")
    with translation.override("es"):
        title = translation.gettext("Forecast: flagged cells, by score")
        ranking = translation.gettext("Ranking")
    assert title != "Forecast: flagged cells, by score"
    expect(page.locator("#hotspot-legend-title")).to_have_text(title)
    expect(page.locator("#hotspot-legend li")).to_have_count(4)
    expect(page.locator("#hotspot-cells-label")).to_be_visible()
    forecast_calls = [
        parse_qs(urlsplit(url).query)
        for url in requests.all
        if urlsplit(url).path == reverse("hotspot-run-forecast", args=[run.pk])
    ]
    assert forecast_calls and all({"bbox", "zoom"} <= set(call) for call in forecast_calls)

    # The top cell's popup: its count, its score's ranking and its zone. The zones and the
    # incidents are hidden so that the click reaches the cell canvas at the map's centre.
    top = flagged.select_related("zone").order_by("-score", "i", "j").first()
    page.locator("#hotspot-zones-toggle").uncheck()
    page.locator("#incidents-toggle").uncheck()
    centre = top.geom.centroid
    page.evaluate(
        "([lat, lon]) => { window.location.hash = '#17/' + lat + '/' + lon; }",
        [centre.y, centre.x],
    )
    expect(mapnode).to_have_attribute("data-zoom", "17", timeout=TIMEOUT_MS)
    expect(mapnode).to_have_attribute("data-moving", "false", timeout=TIMEOUT_MS)
    expect(mapnode).to_have_attribute("aria-busy", "false", timeout=TIMEOUT_MS)
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    popup = page.locator(".leaflet-popup .hotspot-cell-popup")
    expect(popup).to_be_visible(timeout=TIMEOUT_MS)
    with translation.override("es"):
        from hotspots.styles import candidate_label

        label = candidate_label(run.summary)
    expect(popup).to_contain_text(ranking)
    expect(popup).to_contain_text(label)
    expect(popup.locator("dd").first).to_have_text(str(top.count))
    expect(popup.locator("dd").last).to_have_text(str(top.zone.rank))
    page.screenshot(path="/tmp/planner_forecast_cells.png")
    assert requests.outside == []
    assert errors == []


def _box(page, selector: str) -> dict:
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not displayed"
    return box


def _overlap(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


def test_zones_are_clickable_over_the_incidents_and_the_incidents_can_be_hidden(
    live_server, hotspot_data, map_page
):
    page, requests, errors = map_page
    run = hotspot_data["run"]
    zone = run.zones.get(rank=1)
    inside = zone.geom.point_on_surface
    log_in(page, live_server, hotspot_data["planner"])
    # Zoomed out to the district: the server's incident clusters are drawn in the zone.
    page.goto(live_server.url + f"/planner/#13/{inside.y}/{inside.x}")
    mapnode = page.locator("#map")
    expect(mapnode).to_have_attribute(
        "data-hotspot-zones", str(run.zones.count()), timeout=TIMEOUT_MS
    )
    expect(mapnode).to_have_attribute("data-mode", "clusters", timeout=TIMEOUT_MS)
    clusters = page.locator("#map .incident-cluster")
    expect(clusters.first).to_be_visible(timeout=TIMEOUT_MS)
    zone_path = page.locator('#map path[data-zone-rank="1"]')
    zone_box = zone_path.bounding_box()
    under_zone = [
        box
        for box in (clusters.nth(n).bounding_box() for n in range(clusters.count()))
        if box and _overlap(box, zone_box)
    ]
    assert under_zone, "the test needs clusters drawn inside the zone"

    # A click inside the zone opens the zone, not the cluster below it (which would zoom in).
    zone_path.click()
    popup = page.locator(".leaflet-popup .hotspot-zone-popup")
    expect(popup).to_have_attribute("data-rank", "1", timeout=TIMEOUT_MS)
    expect(mapnode).to_have_attribute("data-zoom", "13")
    page.keyboard.press("Escape")
    expect(popup).to_have_count(0)

    # The incidents toggle hides the clusters (the counts stay) and brings them back.
    total = page.locator("#stats-total").get_attribute("data-total")
    assert total and int(total) > 0
    toggle = page.locator("#incidents-toggle")
    expect(toggle).to_be_checked()
    toggle.uncheck()
    expect(mapnode).to_have_attribute("data-incidents-layer", "off")
    expect(clusters).to_have_count(0)
    expect(mapnode).to_have_attribute("data-incidents", "0")
    expect(page.locator("#stats-total")).to_have_attribute("data-total", total)
    zone_path.click()
    expect(popup).to_have_attribute("data-rank", "1", timeout=TIMEOUT_MS)
    expect(popup).to_contain_text(f"{zone.incident_count}")
    # A new view keeps them hidden until the toggle is ticked again.
    page.evaluate(
        "([lat, lon]) => { window.location.hash = '#14/' + lat + '/' + lon; }",
        [inside.y, inside.x],
    )
    expect(mapnode).to_have_attribute("data-zoom", "14", timeout=TIMEOUT_MS)
    expect(mapnode).to_have_attribute("aria-busy", "false", timeout=TIMEOUT_MS)
    expect(clusters).to_have_count(0)
    toggle.check()
    expect(mapnode).to_have_attribute("data-incidents-layer", "on")
    expect(clusters.first).to_be_visible(timeout=TIMEOUT_MS)
    page.screenshot(path="/tmp/planner_hotspots_zone_click.png")
    assert requests.outside == []
    assert errors == []


def test_the_map_panels_do_not_overlap_on_a_phone(live_server, hotspot_data, phone_page):
    page, requests, errors = phone_page
    page.set_viewport_size({"width": 375, "height": 812})
    log_in(page, live_server, hotspot_data["planner"])
    page.goto(live_server.url + "/planner/")
    mapnode = page.locator("#map")
    expect(mapnode).to_have_attribute(
        "data-hotspot-run", str(hotspot_data["run"].pk), timeout=TIMEOUT_MS
    )
    # One panel holds every control, closed on a phone: on the map lie only the legend,
    # folded to its title, the zoom buttons and the credits.
    expect(page.locator("#planner-panel")).to_be_hidden()
    assert page.locator("#map-legend").evaluate("node => node.open") is False
    map_box = _box(page, "#map")
    assert map_box["width"] * map_box["height"] >= 0.6 * 375 * 812, map_box
    legend = _box(page, "#map-legend")
    assert legend["height"] <= 48 and legend["width"] <= 160, legend
    assert page.locator("#map .leaflet-control-container #map-layer-toggles").count() == 0

    # The drawer opens over the top of the map and leaves its lower part in view: the
    # layers come first, the recovered spaces folded to their title.
    page.locator("#panel-toggle").tap()
    expect(page.locator("#incidents-toggle")).to_be_visible()
    spaces = page.locator("#planner-spaces")
    expect(spaces).to_be_visible(timeout=TIMEOUT_MS)
    assert spaces.evaluate("node => node.open") is False
    expect(page.locator("#planner-spaces-distance")).to_be_hidden()
    drawer = _box(page, "#planner-panel")
    uncovered = map_box["y"] + map_box["height"] - (drawer["y"] + drawer["height"])
    assert uncovered >= 0.35 * map_box["height"], (drawer, map_box)
    page.screenshot(path="/tmp/planner_hotspots_phone.png")

    # Opened, the spaces' form is in the drawer and within the screen.
    page.locator("#planner-spaces > summary").tap()
    expect(page.locator("#planner-spaces-distance")).to_be_visible()
    opened = _box(page, "#planner-spaces")
    assert opened["x"] >= 0 and opened["x"] + opened["width"] <= 375, opened
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert requests.outside == []
    assert errors == []


def test_the_hotspot_panel_keeps_to_the_sidebar(live_server, hotspot_data, map_page):
    page, requests, errors = map_page
    run = hotspot_data["run"]
    log_in(page, live_server, hotspot_data["planner"])
    page.goto(live_server.url + "/planner/")
    expect(page.locator("#map")).to_have_attribute(
        "data-hotspot-run", str(run.pk), timeout=TIMEOUT_MS
    )
    panel = _box(page, "#planner-panel")
    select = _box(page, "#hotspot-run")
    heading = _box(page, "#hotspot-heading")
    # The run select (long option texts) fits the sidebar, aligned with the filters.
    assert (
        select["x"] >= panel["x"] + 8
        and select["x"] + select["width"] <= panel["x"] + panel["width"]
    )
    assert abs(heading["x"] - _box(page, "#counts-heading")["x"]) < 1
    assert abs(select["x"] - _box(page, "#filter-district")["x"]) < 1
    assert abs(select["width"] - _box(page, "#filter-district")["width"]) < 1
    page.locator("#hotspot-panel").screenshot(path="/tmp/planner_hotspot_panel.png")
    assert requests.outside == []
    assert errors == []


def test_the_week_hour_table_scrolls_in_its_box_on_a_phone(live_server, hotspot_data, phone_page):
    page, requests, errors = phone_page
    page.set_viewport_size({"width": 375, "height": 812})
    run = hotspot_data["run"]
    log_in(page, live_server, hotspot_data["planner"])
    page.goto(live_server.url + reverse("hotspots:run-detail", args=[run.pk]))
    box = page.locator("#week-hours-scroll")
    table = box.locator("#week-hours-table")
    expect(table).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator("#week-hours-method")).to_contain_text("Aorístico")
    expect(table.locator("caption")).to_contain_text("aorístico")
    expect(table.locator("tbody tr")).to_have_count(7)
    # The 26 columns are wider than the phone: the box scrolls, not the page.
    sizes = box.evaluate("node => [node.scrollWidth, node.clientWidth]")
    assert sizes[0] > sizes[1], sizes
    edge = _box(page, "#week-hours-scroll")
    assert edge["x"] >= 0 and edge["x"] + edge["width"] <= 375, edge
    # Nothing else on the page (the zones' table, the parameters) widens it either.
    wide = page.evaluate(
        """() => [...document.querySelectorAll('main *')]
            .filter(n => n.getBoundingClientRect().right > 376 && !n.closest('[class$=scroll]'))
            .map(n => n.tagName + '#' + n.id)"""
    )
    assert wide == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    box.evaluate("node => { node.scrollLeft = node.scrollWidth; }")
    assert box.evaluate("node => node.scrollLeft") > 0
    assert page.evaluate("window.scrollX") == 0
    # The weekday column stays in view while the hours scroll.
    monday = page.locator("#week-hours-table tbody th").first.bounding_box()
    assert edge["x"] - 1 <= monday["x"] <= edge["x"] + 1, (monday, edge)
    page.locator("#week-hours").screenshot(path="/tmp/planner_week_hours_phone.png")
    assert requests.outside == []
    assert errors == []


def test_a_district_run_shows_that_districts_incidents_only(live_server, hotspot_data, map_page):
    page, requests, errors = map_page
    run = hotspot_data["run"]
    comas = run.districts.get()
    rimac = District.objects.get(region=run.region, code="e2e-2")
    source = make_source("e2e-hotspots-rimac")
    label = make_label(source, "robbery-person")
    Incident.objects.create(
        source=source,
        external_id="E2E-RIMAC-1",
        point=Point(-79.0, -13.0, srid=4326),
        occurred_at=WHEN,
        label=label,
        category=label.category,
        region=run.region,
        district=rimac,
        batch=make_batch(source),
    )
    in_comas = Incident.objects.filter(district=comas).count()
    assert Incident.objects.exclude(district=comas).exists()
    log_in(page, live_server, hotspot_data["planner"])

    # Opened on the run over COMAS: the incident filter follows it to COMAS.
    page.goto(live_server.url + f"/planner/?run={run.pk}")
    expect(page.locator("#map")).to_have_attribute(
        "data-hotspot-run", str(run.pk), timeout=TIMEOUT_MS
    )
    expect(page.locator("#filter-district")).to_have_value(f"e2e|{comas.code}")
    expect(page.locator("#stats-total")).to_have_attribute(
        "data-total", str(in_comas), timeout=TIMEOUT_MS
    )
    # Choosing every district again is the planner's to do, and shows them all.
    page.locator("#filter-district").select_option("")
    expect(page.locator("#stats-total")).to_have_attribute(
        "data-total", str(in_comas + 1), timeout=TIMEOUT_MS
    )
    assert requests.outside == [] and errors == []
