"""One import batch on the planner map: ?batch= on the map page (the chip, the extent the
script fits) and the link from the batch's page."""

import json

import pytest
from django.urls import reverse

from incidents.models import ImportBatch
from incidents.tests.factories import make_incident, make_region, make_source, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch():
    region = make_region("lima", lon=-77.05, lat=-12.05)
    source = make_source("s1")
    for lon, lat in [(-77.095, -12.095), (-77.085, -12.090)]:
        make_incident(lon, lat, source=source, region=region)
    found = ImportBatch.objects.get(source=source)
    ImportBatch.objects.filter(pk=found.pk).update(rows_created=2)
    found.refresh_from_db()
    return found


@pytest.fixture
def planner_client(client, django_user_model):
    client.force_login(make_user(django_user_model, "planner"))
    return client


def _config(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="planner-config" type="application/json">')
    body = html[start:].split(">", 1)[1].split("</script>", 1)[0]
    return json.loads(body)


def test_the_map_shows_one_batch_with_a_chip(planner_client, batch):
    planner_client.cookies.load({"django_language": "es"})
    response = planner_client.get(reverse("planner-map"), {"batch": batch.pk})
    assert response.status_code == 200
    config = _config(response)
    assert config["batch"] == {
        "id": batch.pk,
        "count": 2,
        "bbox": [-77.095, -12.095, -77.085, -12.09],
        "label": f"Lote {batch.pk}",
        "page": reverse("incidents:import-detail", args=[batch.pk]),
    }
    html = response.content.decode()
    assert 'id="batch-chip"' in html and f"Lote {batch.pk}</a>" in html
    assert "Volver a mostrar todos los incidentes" in html

    planner_client.cookies.load({"django_language": "en"})
    html = planner_client.get(reverse("planner-map"), {"batch": batch.pk}).content.decode()
    assert f"Batch {batch.pk}</a>" in html and "Show every incident again" in html


def test_without_batch_there_is_no_chip(planner_client, batch):
    response = planner_client.get(reverse("planner-map"))
    assert _config(response)["batch"] is None
    assert 'id="batch-chip"' not in response.content.decode()


@pytest.mark.parametrize("value", ["nope", "999999", "-3"])
def test_an_unknown_batch_says_so_and_shows_everything(planner_client, batch, value):
    planner_client.cookies.load({"django_language": "en"})
    response = planner_client.get(reverse("planner-map"), {"batch": value})
    assert response.status_code == 200
    assert _config(response)["batch"] is None
    assert f"There is no import batch “{value}”: showing every incident." in (
        response.content.decode()
    )


def test_the_batch_page_links_to_the_map(planner_client, batch):
    planner_client.cookies.load({"django_language": "en"})
    html = planner_client.get(reverse("incidents:import-detail", args=[batch.pk])).content.decode()
    link = f'href="{reverse("planner-map")}?batch={batch.pk}"'
    assert link in html and "View this batch on the map" in html
    # Nothing to see: a failed batch, or one that wrote nothing.
    ImportBatch.objects.filter(pk=batch.pk).update(status=ImportBatch.Status.FAILED)
    html = planner_client.get(reverse("incidents:import-detail", args=[batch.pk])).content.decode()
    assert "View this batch on the map" not in html


def test_only_planners_open_the_map_of_a_batch(client, django_user_model, batch):
    client.force_login(make_user(django_user_model, None))
    assert client.get(reverse("planner-map"), {"batch": batch.pk}).status_code == 403
