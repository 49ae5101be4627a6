"""The API's wiring: the schema's error responses (SPECTACULAR_SETTINGS) and the API's
404 for unknown URLs. The pieces views use are in common/api.py."""

from django.http import JsonResponse
from django.views.defaults import page_not_found
from rest_framework.exceptions import NotFound

# --- errors in the OpenAPI schema and for unknown API URLs ------------------------------

API_PREFIX = "/api/"

ERROR_SCHEMAS = {
    "ValidationErrors": {
        "type": "object",
        "description": "What was wrong, per field: {field: [messages]} (a nested field's "
        "messages by its key or index; non_field_errors for the request as a whole; "
        "detail for a body that could not be read)",
        "additionalProperties": {
            "anyOf": [
                {"type": "array", "items": {"type": "string"}},
                {"type": "object"},
                {"type": "string"},
            ]
        },
    },
    "ErrorDetail": {
        "type": "object",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    },
}
ERROR_RESPONSES = {
    "400": ("invalid parameters or body: {field: [messages]}", "ValidationErrors"),
    "403": ("not logged in, or not allowed", "ErrorDetail"),
    "404": ("no such object (or one this user may not see)", "ErrorDetail"),
    "413": ("the body is too large: {field: [message]}", "ValidationErrors"),
    "415": ("the body is not of a media type this operation reads", "ErrorDetail"),
}


def _error_codes(operation: dict) -> list[str]:
    """The errors every operation of this API can answer: 400 when it reads a query
    parameter or a body, 403 when it needs a logged-in user, 404 when its path names an
    object, 415 when it reads a body (sent as another media type)."""
    parameters = operation.get("parameters", [])
    codes = []
    if "requestBody" in operation or any(p.get("in") == "query" for p in parameters):
        codes.append("400")
    if "requestBody" in operation:
        codes.append("415")
    security = operation.get("security")
    if security and {} not in security:
        codes.append("403")
    if any(p.get("in") == "path" for p in parameters):
        codes.append("404")
    return codes


def document_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: adds the 400, 403, 404 and 415 each operation
    can answer and gives every error response of the schema its JSON body, so that the schema
    says what the API does without one decorator per view and error."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in ERROR_SCHEMAS.items():
        schemas.setdefault(name, schema)
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            responses = operation.setdefault("responses", {})
            for code in _error_codes(operation):
                responses.setdefault(code, {"description": ERROR_RESPONSES[code][0]})
            for code, response in responses.items():
                if code in ERROR_RESPONSES and not response.get("content"):
                    ref = {"$ref": f"#/components/schemas/{ERROR_RESPONSES[code][1]}"}
                    response["content"] = {"application/json": {"schema": ref}}
                elif code.startswith("4") and not response.get("content"):
                    ref = {"$ref": "#/components/schemas/ErrorDetail"}
                    response["content"] = {"application/json": {"schema": ref}}
    return result


def not_found(request, exception=None):
    """handler404: under /api/ a URL that names nothing (an id that is not a number, a
    path that does not exist) is the API's JSON 404, as for an id that exists nowhere;
    elsewhere Django's 404 page."""
    if request.path_info.startswith(API_PREFIX):
        response = JsonResponse({"detail": str(NotFound.default_detail)}, status=404)
        response["Cache-Control"] = "private, no-store"
        return response
    return page_not_found(request, exception)
