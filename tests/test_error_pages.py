"""The product's own error pages (issue 13, item 8): a 404 for another district's space, a
403 for another role's page and a 500 are Barrio's translated pages, never Django's debug
page with its list of URL patterns; `make run` serves them unless asked for DEBUG=1."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import path, reverse

from config.urls import urlpatterns as product_urlpatterns
from publicspaces.services.spaces import AUDIT_ITEMS, create_space
from publicspaces.tests.conftest import (  # noqa: F401 (fixtures)
    districts,
    inside_norte,
    make_user,
    square,
    users,
)

ROOT = Path(settings.BASE_DIR)


def _boom(request):
    raise RuntimeError("a bug in a view")


# This module is the URLconf of the 500 test: the product's URLs plus a view that raises.
handler404 = "config.api.not_found"
urlpatterns = [*product_urlpatterns, path("boom/", _boom)]

PAGES = {
    # status: (Spanish heading, English heading)
    404: ("Página no encontrada", "Page not found"),
    403: ("Esta página no es para su rol", "This page is not for your role"),
    500: ("Algo salió mal", "Something went wrong"),
}


@pytest.fixture
def error_urls(users, settings, tmp_path):  # noqa: F811 (the imported fixture)
    settings.MEDIA_ROOT = str(tmp_path / "media")
    p = inside_norte()
    space = create_space(
        user=None,
        name="Parque Norte",
        kind="park",
        geom=square(p.x, p.y),
        address="Av. 1",
        audit={item: 1 for item in AUDIT_ITEMS},
        audited_on=dt.date(2024, 1, 10),
    )
    return {
        # Sur's municipal staff asking for Norte's space.
        404: (users["sur"], reverse("publicspaces:detail", args=[space.pk])),
        # A user with no role asking for the municipality's map.
        403: (users["nobody"], reverse("publicspaces:map")),
        500: (None, "/boom/"),
    }


def _check_page(page: str, language: str, heading: str):
    assert f'<html lang="{language}">' in page
    assert f"<h1>{heading}</h1>" in page
    assert 'href="/"' in page  # the way back to the public map
    # Not Django's pages: no URL pattern list, no traceback, no stock English.
    for debug_text in ("URLconf", "Using the URLconf", "Traceback", "Server Error (500)"):
        assert debug_text not in page


@pytest.mark.urls("tests.test_error_pages")
@pytest.mark.django_db
@pytest.mark.parametrize("language", ["es", "en"])
@pytest.mark.parametrize("status", [404, 403, 500])
def test_error_pages_are_the_products_in_the_readers_language(client, error_urls, language, status):
    client.raise_request_exception = False  # the 500 is answered, not raised into the test
    user, url = error_urls[status]
    if user is not None:
        client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    response = client.get(url)
    assert response.status_code == status
    heading = PAGES[status][0 if language == "es" else 1]
    _check_page(response.content.decode(), language, heading)


@pytest.mark.urls("tests.test_error_pages")
@pytest.mark.django_db
def test_an_unknown_api_url_stays_a_json_404(client):
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


def _make_dry_run(*args: str) -> str:
    """The commands `make run` would execute (make -n), prerequisites included."""
    result = subprocess.run(
        ["make", "-n", "run", *args], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return result.stdout


@pytest.mark.parametrize(("args", "debug"), [((), "0"), (("DEBUG=1",), "1")])
def test_make_run_serves_with_debug_off_unless_asked(args, debug):
    commands = _make_dry_run(*args)
    assert f"export DJANGO_DEBUG={debug};" in commands
    serve = next(line for line in commands.splitlines() if "runserver" in line)
    # With DEBUG off runserver serves the static files only when told to.
    assert "--insecure" in serve


@pytest.mark.parametrize(("value", "expected"), [("0", "False"), ("1", "True")])
def test_the_local_settings_read_django_debug(value, expected):
    """config.settings.local (what `make run` uses) takes DEBUG from DJANGO_DEBUG."""
    code = "from django.conf import settings; print(settings.DEBUG)"
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_DEBUG": value,
        "DATABASE_URL": "postgis://u:p@127.0.0.1:1/x",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == expected
