"""The incident endpoints' ``batch`` filter: the incidents one import batch wrote."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from incidents.models import ImportBatch
from incidents.selectors import batch_extent
from incidents.tests.factories import make_incident, make_region, make_source, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def batches():
    region = make_region("lima", lon=-77.05, lat=-12.05)
    first, second = make_source("s1"), make_source("s2")
    for lon, lat in [(-77.095, -12.095), (-77.085, -12.090)]:
        make_incident(lon, lat, source=first, region=region)
    make_incident(-77.050, -12.050, source=second, region=region)
    return {
        "first": ImportBatch.objects.get(source=first),
        "second": ImportBatch.objects.get(source=second),
        "empty": ImportBatch.objects.create(source=first, status=ImportBatch.Status.SUCCEEDED),
    }


@pytest.fixture
def api(django_user_model):
    client = APIClient()
    client.force_login(make_user(django_user_model, "planner"))
    return client


def _body(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def _features(response) -> list:
    return json.loads(_body(response))["features"]


@pytest.mark.parametrize(
    "name", ["incident-geojson", "incident-stats", "incident-clusters", "incident-export"]
)
def test_every_incident_endpoint_takes_the_batch_filter(api, batches, name):
    batch = batches["first"]
    response = api.get(reverse(name), {"batch": batch.pk, "zoom": 12})
    assert response.status_code == 200
    everything = api.get(reverse(name), {"zoom": 12})
    assert _body(response) != _body(everything)


def test_the_batch_filter_keeps_that_batchs_incidents(api, batches):
    url = reverse("incident-geojson")
    assert len(_features(api.get(url, {"batch": batches["first"].pk}))) == 2
    assert len(_features(api.get(url, {"batch": batches["second"].pk}))) == 1
    assert _features(api.get(url, {"batch": batches["empty"].pk})) == []
    stats = api.get(reverse("incident-stats"), {"batch": batches["first"].pk}).json()
    assert stats["total"] == 2
    # With the other filters, as any filter.
    both = api.get(url, {"batch": batches["first"].pk, "bbox": "-77.09,-12.1,-77.08,-12.08"})
    assert len(_features(both)) == 1


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "99999999999", "1;DROP"])
def test_a_bad_batch_is_a_400_naming_the_field(api, batches, value):
    response = api.get(reverse("incident-geojson"), {"batch": value})
    assert response.status_code == 400
    assert list(response.json()) == ["batch"]


def test_an_unknown_batch_is_a_400(api, batches):
    missing = max(b.pk for b in batches.values()) + 100
    response = api.get(reverse("incident-geojson"), {"batch": missing})
    assert response.status_code == 400
    assert response.json() == {"batch": [f"Unknown import batch: {missing}"]}


def test_only_planners_filter_by_batch(client, django_user_model, batches):
    url = reverse("incident-geojson")
    params = {"batch": batches["first"].pk}
    assert client.get(url, params).status_code in (401, 403)
    client.force_login(make_user(django_user_model, None))
    assert client.get(url, params).status_code == 403


def test_batch_extent(batches):
    first = batch_extent(batches["first"].pk)
    assert first == {
        "id": batches["first"].pk,
        "count": 2,
        "bbox": [-77.095, -12.095, -77.085, -12.09],
    }
    assert batch_extent(batches["empty"].pk) == {
        "id": batches["empty"].pk,
        "count": 0,
        "bbox": None,
    }
    assert batch_extent(max(b.pk for b in batches.values()) + 1) is None
