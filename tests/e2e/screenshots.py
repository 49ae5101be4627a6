"""The README's screenshots of the demo city: the public, planner and municipality maps and
a run page, at 1366×768 and 375×812, in Spanish and English.

Not part of the suite (the name does not start with ``test_``): ``make screenshots`` runs
this file by name and writes the pictures to ``docs/screenshots/`` (or
``$BARRIO_SCREENSHOTS``). Each picture is taken the way the layout tests check the page
(base map drawn, panels as a person first sees them), so they show what a user sees.
"""

import os
from pathlib import Path

import pytest

from hotspots.models import HotspotRun
from tests.e2e.conftest import assert_basemap_drawn, log_in
from tests.e2e.test_map_layout import SIZES, TIMEOUT_MS, _in_language, _page, layout_users

__all__ = ["layout_users"]  # a fixture used by the function below

OUTPUT = Path(
    os.environ.get("BARRIO_SCREENSHOTS")
    or Path(__file__).resolve().parents[2] / "docs" / "screenshots"
)

PAGES = {
    "public": ("/", None, "#map path[data-level=district]"),
    "planner": ("/planner/", "planner", "#map path[data-level=district]"),
    "municipality": ("/municipality/", "municipal", "#map[data-ready=true]"),
    "run": (None, "planner", "#map-link"),
}


def _run_url() -> str:
    run = (
        HotspotRun.objects.filter(status=HotspotRun.Status.SUCCEEDED, method="gistar")
        .order_by("pk")
        .last()
    ) or HotspotRun.objects.filter(status=HotspotRun.Status.SUCCEEDED).order_by("pk").last()
    assert run is not None, "the demo computes its hotspot runs"
    return f"/planner/hotspots/{run.pk}/"


@pytest.mark.parametrize("language", ["es", "en"])
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("name", list(PAGES))
def test_screenshot(live_server, layout_users, browser, name, size, language):  # noqa: F811
    url, role, ready = PAGES[name]
    url = url or _run_url()
    context, page, requests, errors = _page(browser, size, language)
    try:
        _in_language(page, live_server, language)
        if role:
            log_in(page, live_server, layout_users[role])
        page.goto(live_server.url + url)
        page.wait_for_selector(ready, state="attached", timeout=TIMEOUT_MS)
        if name != "run":
            assert_basemap_drawn(page, requests)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(800)  # markers and labels settle after the last response
        OUTPUT.mkdir(parents=True, exist_ok=True)
        path = OUTPUT / f"{name}-{size}-{language}.jpg"
        page.screenshot(path=str(path), type="jpeg", quality=70)
        assert path.stat().st_size > 10_000, f"{path} is nearly empty"
        assert requests.outside == [], requests.outside
        assert errors == [], errors
    finally:
        context.close()
