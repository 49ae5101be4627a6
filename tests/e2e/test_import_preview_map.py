"""A planner uploads a small CSV, changes a column in the preview, imports it, and opens
"View this batch on the map": only that batch's incidents, fitted, under a "Lote N" chip
that brings every incident back."""

import datetime as dt
import re

import pytest
from django.contrib.auth.models import Group
from django.contrib.gis.geos import Point
from playwright.sync_api import expect

from accounts.models import Role
from accounts.roles import ensure_role_groups
from incidents.models import Category, ImportBatch, Incident, IncidentSource, SourceLabel
from incidents.taxonomy import ensure_taxonomy
from neighborhoods.models import Region
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 20_000
# Inside the e2e districts (lon -79.06 to -78.94, lat -13.02 to -12.98); "tipo" is the
# column the planner picks as the category instead of the guessed "delito".
CSV = (
    "folio,fecha,delito,tipo,latitud,longitud\n"
    "P1,2024-03-01 10:00,ROBO,Hurto,-13.000,-79.050\n"
    "P2,2024-03-02 22:30,ROBO,Hurto,-13.005,-79.040\n"
    "P3,2024-03-03,GRAFITI,Daños,-13.010,-79.010\n"
    "P4,2024-03-04 08:00,ROBO,Hurto,-12.995,-79.000\n"
    "P5,2024-03-05 19:45,GRAFITI,Daños,-13.000,-78.990\n"
)


@pytest.fixture
def import_data(map_data):
    ensure_taxonomy(Category)
    ensure_role_groups()
    # One incident of an earlier batch: on the map until the batch is shown alone.
    source = IncidentSource.objects.create(name="e2e-earlier")
    earlier = ImportBatch.objects.create(source=source, status=ImportBatch.Status.SUCCEEDED)
    label = SourceLabel.objects.create(
        source=source, label="BURGLARY", category=Category.objects.get(code="burglary")
    )
    Incident.objects.create(
        source=source,
        external_id="EARLIER-1",
        point=Point(-79.030, -13.000, srid=4326),  # inside the batch's extent
        occurred_at=dt.datetime(2024, 2, 1, tzinfo=dt.UTC),
        label=label,
        category=label.category,
        region=Region.objects.get(code="e2e"),
        batch=earlier,
    )
    return Group.objects.get(name=Role.PLANNER).user_set.create(username="planner-import-e2e")


def _cluster_sum(page) -> int:
    return page.evaluate(
        "() => [...document.querySelectorAll('#map .incident-cluster-circle')]"
        ".reduce((sum, node) => sum + Number(node.dataset.count), 0)"
    )


def _wait_for_total(page, total: int) -> None:
    expect(page.locator("#stats-total")).to_have_attribute(
        "data-total", str(total), timeout=TIMEOUT_MS
    )
    expect(page.locator("#stats-total")).not_to_have_class(
        re.compile("is-loading"), timeout=TIMEOUT_MS
    )


def _wait_idle(page) -> None:
    page.wait_for_function(
        "() => document.querySelector('#map').getAttribute('aria-busy') === 'false'",
        timeout=TIMEOUT_MS,
    )


def test_preview_import_and_view_the_batch_on_the_map(live_server, import_data, map_page):
    page, requests, errors = map_page
    log_in(page, live_server, import_data)

    # Step one: the file and the source; no column named, so the preview comes next.
    page.goto(live_server.url + "/planner/imports/new/")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    page.locator("input[name=files]").set_input_files(
        files=[{"name": "robos.csv", "mimeType": "text/csv", "buffer": CSV.encode()}]
    )
    page.locator("input[name=source]").fill("e2e-upload")
    page.locator("input[name=timezone]").fill("America/Lima")
    page.get_by_role("button", name="Subir y ver la vista previa").click()

    # Step two: the first rows, and the guessed columns preset.
    expect(page.locator("h1")).to_have_text("Revise las columnas antes de importar")
    table = page.locator("#preview-table-1")
    expect(table.locator("tbody tr")).to_have_count(5)
    expect(table).to_contain_text("Daños")
    expect(page.locator("select[name=category]")).to_have_value("delito")
    expect(page.locator("select[name=date]")).to_have_value("fecha")
    expect(page.locator("select[name=lat]")).to_have_value("latitud")
    expect(page.locator("select[name=lon]")).to_have_value("longitud")
    expect(page.locator("select[name=id]")).to_have_value("")
    page.locator("select[name=category]").select_option("tipo")
    page.locator("select[name=id]").select_option("folio")
    page.get_by_role("button", name="Iniciar la importación").click()

    # The batch page (the job runs inline in the test settings).
    batch = ImportBatch.objects.get(source__name="e2e-upload")
    expect(page).to_have_url(re.compile(rf"/planner/imports/{batch.pk}/$"), timeout=TIMEOUT_MS)
    expect(page.locator("#count-created")).to_have_text("5", timeout=TIMEOUT_MS)
    batch.refresh_from_db()
    assert batch.options["columns"]["category"] == "tipo"
    assert set(Incident.objects.filter(batch=batch).values_list("label__label", flat=True)) == {
        "Hurto",
        "Daños",
    }

    # "View this batch on the map": its 5 incidents alone, fitted, under the chip.
    page.locator("#batch-map-link").click()
    expect(page).to_have_url(re.compile(rf"/planner/\?batch={batch.pk}"), timeout=TIMEOUT_MS)
    chip = page.locator("#batch-chip")
    expect(chip).to_be_visible(timeout=TIMEOUT_MS)
    expect(chip.locator(".batch-chip-label")).to_have_text(f"Lote {batch.pk}")
    expect(page.locator("#map")).to_have_attribute("data-batch", str(batch.pk))
    _wait_for_total(page, 5)
    expect(page.locator("#map")).to_have_attribute("data-mode", "clusters")
    _wait_idle(page)
    assert _cluster_sum(page) == 5
    view = page.evaluate(
        "() => { const m = document.querySelector('#map'); return m.getAttribute('data-zoom'); }"
    )
    assert view is None or int(view) >= 12  # fitted to the batch, not to the world
    page.screenshot(path="/tmp/planner_batch_map.png")
    stats_calls = [url for url in requests.all if "/api/v1/incidents/stats/" in url]
    assert stats_calls and all(f"batch={batch.pk}" in url for url in stats_calls)

    # The chip's button brings every incident back and drops ?batch= from the address.
    chip.get_by_role("button", name="Volver a mostrar todos los incidentes").click()
    expect(page.locator("#batch-chip")).to_have_count(0)
    _wait_for_total(page, 6)
    assert "batch=" not in page.url
    assert errors == []
    assert requests.outside == []
