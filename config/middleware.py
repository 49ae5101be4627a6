"""Project-wide middleware (see MIDDLEWARE in settings)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from rest_framework.settings import api_settings

NUL = "\x00"
API_PREFIX = "/api/"


def nul_parameter(params) -> str | None:
    """The name of the first query parameter whose name or any value holds a NUL
    character (``non_field_errors`` when the name itself does), or None."""
    for name, values in params.lists():
        if NUL in name:
            return api_settings.NON_FIELD_ERRORS_KEY
        if any(NUL in value for value in values):
            return name
    return None


class RefuseNulCharactersMiddleware:
    """Answers 400 to a query string with a NUL (``%00``) anywhere in it, before any view
    reads it.

    PostgreSQL text cannot hold a NUL: a filter value carrying one made psycopg raise
    while the view queried, a 500 on every endpoint that compared a parameter with a
    column. Refusing it here holds for every page and API endpoint, present and future.
    Request bodies are left to their forms and serializers, whose CharFields already
    refuse NULs with a field error (and the uploads to their own views). Under /api/ the
    answer is the API's 400 (``{parameter: [message]}``); elsewhere the 400 page.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        field = nul_parameter(request.GET)
        if field is None:
            return self.get_response(request)
        message = _("Null characters are not allowed.")
        if request.path_info.startswith(API_PREFIX):
            response = JsonResponse({field: [message]}, status=400)
        else:
            response = render(request, "400.html", {"message": message}, status=400)
        response["Cache-Control"] = "private, no-store"
        return response


class DropNulCookiesMiddleware:
    """Forgets every cookie whose name or value holds a NUL before any other middleware
    reads the cookies.

    No cookie this site sets can hold one, so such a cookie is forged or corrupt: treated
    as absent, the visitor is simply anonymous. Read as it came, a session key with a NUL
    reached the session table's lookup and made psycopg raise, a 500 on every page.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        cookies = request.COOKIES
        if any(NUL in name or NUL in value for name, value in cookies.items()):
            request.COOKIES = {
                name: value
                for name, value in cookies.items()
                if NUL not in name and NUL not in value
            }
        return self.get_response(request)
