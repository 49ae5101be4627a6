"""What the OpenAPI schema promises about errors, GeoJSON and nullable fields, and the
API's JSON 404 for a URL that names nothing (tests/test_api_fuzz.py checks the answers
against the whole schema)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

SCHEMA_URL = "/api/schema/?format=json"


@pytest.fixture
def schema(client) -> dict:
    response = client.get(SCHEMA_URL)
    assert response.status_code == 200
    return response.json()


def _operation(schema: dict, method: str, path: str) -> dict:
    return schema["paths"][path][method]


def _json_error_schema(response: dict) -> str:
    return response["content"]["application/json"]["schema"]["$ref"]


def test_geojson_operations_document_their_media_type(schema):
    for path in [
        "/api/v1/districts/",
        "/api/v1/neighborhoods/",
        "/api/v1/regions/geojson/",
        "/api/v1/incidents/",
        "/api/v1/incidents/clusters/",
        "/api/v1/hotspot-runs/{id}/cells/",
        "/api/v1/hotspot-runs/{id}/zones/",
        "/api/v1/public-spaces/",
        "/api/v1/public-spaces/public/",
        "/api/v1/public-spaces/incident-change/",
    ]:
        content = _operation(schema, "get", path)["responses"]["200"]["content"]
        assert list(content) == ["application/geo+json"], path


def test_every_operation_documents_the_errors_it_can_answer(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            parameters = operation.get("parameters", [])
            responses = operation["responses"]
            label = f"{method.upper()} {path}"
            if any(p["in"] == "path" for p in parameters):
                assert _json_error_schema(responses["404"]).endswith("/ErrorDetail"), label
            if any(p["in"] == "query" for p in parameters) or "requestBody" in operation:
                assert _json_error_schema(responses["400"]).endswith("/ValidationErrors"), label
            if "requestBody" in operation:
                assert _json_error_schema(responses["415"]).endswith("/ErrorDetail"), label
            if {} not in operation.get("security", [{}]):
                assert _json_error_schema(responses["403"]).endswith("/ErrorDetail"), label
    # Open to anyone: no 403 is promised.
    assert "403" not in _operation(schema, "get", "/api/v1/districts/")["responses"]
    assert "403" not in _operation(schema, "get", "/api/v1/public-spaces/public/")["responses"]
    # Planners only: documented once by the view, given its body by the hook.
    stats = _operation(schema, "get", "/api/v1/incidents/stats/")["responses"]
    assert stats["403"]["description"] == "not logged in, or not a police planner"
    assert _json_error_schema(stats["403"]).endswith("/ErrorDetail")
    # Documented by their views: a stale version and a photo over the size limit.
    patch = _operation(schema, "patch", "/api/v1/public-spaces/{id}/")["responses"]
    assert _json_error_schema(patch["409"]).endswith("/ErrorDetail")
    upload = _operation(schema, "post", "/api/v1/recovery-projects/{id}/photos/")["responses"]
    assert _json_error_schema(upload["413"]).endswith("/ValidationErrors")


def test_created_by_is_nullable(schema):
    components = schema["components"]["schemas"]
    for name in ["HotspotRun", "HotspotRunDetail", "HotspotValidation", "ImportBatch"]:
        assert components[name]["properties"]["created_by"]["nullable"] is True, name


def test_an_api_url_that_names_nothing_is_a_json_404(client):
    for url in ["/api/v1/public-spaces/not-a-number/", "/api/v1/no-such-endpoint/"]:
        response = client.get(url)
        assert response.status_code == 404, url
        assert response["Content-Type"] == "application/json", url
        # DRF's own "Not found." in the request's language (Spanish by default).
        assert response.json() == {"detail": "No encontrado."}, url
    page = client.get("/no-such-page/")
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")
