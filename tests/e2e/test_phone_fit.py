"""Every staff page fits a 375×812 phone (issue 13, item 7): on the demo city, in Spanish
and English, the document never scrolls sideways. Wide tables may scroll inside their own
box; the page may not. A failure names the page and the elements whose right edge passes
the screen's, so the message says what to fix."""

import pytest
from django.contrib.auth.models import Group
from django.db.models import Count

from accounts.models import Role, StaffProfile
from hotspots.models import HotspotRun
from incidents.models import ImportBatch
from publicspaces.models import PublicSpace
from tests.e2e.conftest import RequestLog, log_in

WIDTH, HEIGHT = 375, 812
TIMEOUT_MS = 20_000
LANGUAGES = ["es", "en"]

# The elements past the right edge of the screen that are not clipped by a box of their
# own (overflow other than visible) lying inside the screen; the ones where the overflow
# starts (their own text spills out of them, or their parent fits) come first.
OVERFLOW_JS = """(limit) => {
  const vw = Math.min(window.innerWidth, limit);
  const describe = (el) => {
    let text = el.tagName.toLowerCase();
    if (el.id) text += '#' + el.id;
    if (el.classList && el.classList.length) text += '.' + Array.from(el.classList).join('.');
    return text;
  };
  const path = (el) => {
    const parts = [];
    for (let node = el; node && node !== document.body && parts.length < 4; node = node.parentElement) {
      parts.unshift(describe(node));
    }
    return parts.join(' > ');
  };
  const clipped = (el) => {
    for (let node = el.parentElement; node && node !== document.documentElement; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (style.overflowX !== 'visible' && node.getBoundingClientRect().right <= vw + 0.5) return true;
      if (style.position === 'fixed') return false;
    }
    return false;
  };
  // Its box, or further where its own content (a long word, say) spills out of it.
  const spills = (el) => getComputedStyle(el).overflowX === 'visible' &&
      el.scrollWidth > el.clientWidth + 1 &&
      !Array.from(el.children).some((child) => child.getBoundingClientRect().right > vw + 0.5);
  const right = (el) => {
    const box = el.getBoundingClientRect();
    return spills(el) ? Math.max(box.right, box.left + el.scrollWidth) : box.right;
  };
  const past = new Set();
  for (const el of document.body.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    if (!box.width || !box.height) continue;
    if (right(el) > vw + 0.5 && !clipped(el)) past.add(el);
  }
  const items = Array.from(past).map((el) => {
    const box = el.getBoundingClientRect();
    const text = (el.innerText || el.value || '').trim().replace(/\\s+/g, ' ').slice(0, 60);
    return {
      element: path(el),
      starts: !past.has(el.parentElement),
      spills: spills(el),
      left: Math.round(box.left),
      right: Math.round(right(el)),
      width: Math.round(box.width),
      text: text,
    };
  });
  items.sort((a, b) => (b.spills - a.spills) || (b.starts - a.starts) || (b.right - a.right));
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    count: items.length,
    widest: items.slice(0, 8),
  };
}"""


@pytest.fixture
def phone_data(demo_data, django_user_model):
    """A user per staff role, an account with no role, and the demo's objects to visit:
    a finished run, a failed one (its long message must wrap), an import batch and the
    public space with the most projects (in the municipal user's district)."""
    space = (
        PublicSpace.objects.annotate(n=Count("projects"))
        .select_related("district")
        .order_by("-n", "pk")
        .first()
    )
    assert space is not None, "the demo has public spaces"
    users = {}
    for name, role in [
        ("planner", Role.PLANNER),
        ("municipal", Role.MUNICIPAL),
        ("program", Role.PROGRAM),
    ]:
        user = django_user_model.objects.create_user(f"phone-{name}")
        user.groups.add(Group.objects.get(name=role))
        users[name] = user
    StaffProfile.objects.create(user=users["municipal"], district=space.district)
    users["admin"] = django_user_model.objects.create_superuser(
        "phone-admin", "phone-admin@example.org", "x"
    )
    users["norole"] = django_user_model.objects.create_user("phone-norole")

    run = HotspotRun.objects.filter(status=HotspotRun.Status.SUCCEEDED).order_by("pk").last()
    assert run is not None, "the demo computes its hotspot runs"
    failed = HotspotRun.objects.get(pk=run.pk)
    failed.pk = None
    failed.status = HotspotRun.Status.FAILED
    failed.message = (
        "GDALException: could not read /var/lib/barrio/imports/2024/incidentes_comisaria_"
        "san_martin_de_porres_enero_diciembre_version_final_revisada.geojson"
    )
    failed.save()
    batch = ImportBatch.objects.order_by("pk").last()
    assert batch is not None, "the demo imports its incidents"
    return {
        "users": users,
        "run": run.pk,
        "failed_run": failed.pk,
        "batch": batch.pk,
        "space": space.pk,
    }


# (id, role or None, url with {run}, {failed_run}, {batch} or {space}, what to wait for)
PAGES = [
    ("login", None, "/accounts/login/", "form"),
    ("no-role", "norole", "/accounts/home/", "main"),
    ("403", "municipal", "/planner/imports/", "main"),
    ("404", "planner", "/planner/hotspots/999999/", "main"),
    ("public-map", None, "/", "#map path[data-level=district]"),
    ("planner-map", "planner", "/planner/", "#map path[data-level=district]"),
    ("run-list", "planner", "/planner/hotspots/", "main"),
    ("run-detail", "planner", "/planner/hotspots/{run}/", "main"),
    ("run-detail-failed", "planner", "/planner/hotspots/{failed_run}/", "main"),
    ("run-report", "planner", "/planner/hotspots/{run}/report.html", ".folium-map"),
    ("run-export-refused", "planner", "/planner/hotspots/{failed_run}/zones.geojson", "main"),
    ("import-list", "planner", "/planner/imports/", "main"),
    ("import-new", "planner", "/planner/imports/new/", "main form"),
    ("import-detail", "planner", "/planner/imports/{batch}/", "main"),
    ("municipality-map", "municipal", "/municipality/", "#map[data-ready=true]"),
    ("municipality-map-program", "program", "/municipality/", "#map[data-ready=true]"),
    ("municipality-map-planner", "planner", "/municipality/", "#map[data-ready=true]"),
    ("space-list", "municipal", "/municipality/spaces/", "main"),
    ("space-list-program", "program", "/municipality/spaces/", "main"),
    ("space-detail", "municipal", "/municipality/spaces/{space}/", "#map"),
    ("space-detail-planner", "planner", "/municipality/spaces/{space}/", "#map"),
    ("admin-index", "admin", "/admin/", "#content"),
    ("admin-spaces", "admin", "/admin/publicspaces/publicspace/", "#changelist"),
    ("admin-space-change", "admin", "/admin/publicspaces/publicspace/{space}/change/", "form"),
    ("admin-imports", "admin", "/admin/incidents/importbatch/", "#changelist"),
    ("admin-import-change", "admin", "/admin/incidents/importbatch/{batch}/change/", "form"),
    ("admin-incidents", "admin", "/admin/incidents/incident/", "#changelist"),
    ("admin-runs", "admin", "/admin/hotspots/hotspotrun/", "#changelist"),
    ("admin-users", "admin", "/admin/auth/user/", "#changelist"),
    ("admin-districts", "admin", "/admin/neighborhoods/district/", "#changelist"),
    ("admin-projects", "admin", "/admin/publicspaces/recoveryproject/", "#changelist"),
    ("api-docs", "planner", "/api/docs/", "#swagger-ui"),
]

# The forms sent back with their errors (sent empty; the space's name emptied first).
SUBMITTED = [
    ("import-new-errors", "planner", "/planner/imports/new/", "form.import-form"),
    ("space-new-errors", "municipal", "/municipality/", "#space-form"),
    ("space-edit-errors", "municipal", "/municipality/spaces/{space}/", "#space-edit-form"),
    ("audit-errors", "municipal", "/municipality/spaces/{space}/", "#audit-form"),
]


def _serve_inline(route) -> None:
    """The run report is a download (Content-Disposition: attachment); show it instead."""
    response = route.fetch()
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-disposition"}
    route.fulfill(response=response, headers=headers)


def _send_with_errors(page, form: str) -> None:
    """Opens the form's folded section, empties its text fields and blankable selects, sends it."""
    page.evaluate(
        """(form) => {
          const node = document.querySelector(form);
          for (let up = node; up; up = up.parentElement) if (up.tagName === 'DETAILS') up.open = true;
          node.querySelectorAll('input[type=text], input[type=number], textarea').forEach(
            (field) => { field.value = ''; });
          node.querySelectorAll('select').forEach((field) => {
            if (field.options.length && field.options[0].value === '') field.selectedIndex = 0;
          });
        }""",
        form,
    )
    with page.expect_navigation(wait_until="load", timeout=TIMEOUT_MS):
        page.locator(f"{form} [type=submit]").last.click()
    page.wait_for_selector(".errorlist, .notice-error, [role=alert]", timeout=TIMEOUT_MS)


def _measure(
    browser, live_server, user, url: str, ready: str, language: str, form: str | None = None
) -> dict:
    context = browser.new_context(
        viewport={"width": WIDTH, "height": HEIGHT},
        locale="es-PE" if language == "es" else "en-US",
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )
    try:
        page = context.new_page()
        RequestLog().attach(page)
        if url.endswith("report.html"):
            page.route("**/report.html", _serve_inline)
        if language == "en":
            context.add_cookies(
                [{"name": "django_language", "value": "en", "url": live_server.url}]
            )
        if user is not None:
            log_in(page, live_server, user)
        page.goto(live_server.url + url)
        page.wait_for_selector(ready, state="attached", timeout=TIMEOUT_MS)
        page.wait_for_load_state("load")
        if form:
            _send_with_errors(page, form)
        if not url.startswith("/api/"):  # Swagger UI's own page has no language
            lang = page.locator("html").get_attribute("lang") or ""
            assert lang.startswith(language), f"{url}: the page is in {lang!r}, not {language!r}"
        # Every folded section open: the forms inside them must fit too.
        page.evaluate(
            "() => document.querySelectorAll('details').forEach((d) => { d.open = true; })"
        )
        page.wait_for_timeout(300)
        return page.evaluate(OVERFLOW_JS, WIDTH)
    finally:
        context.close()


def _check(browser, live_server, phone_data, role, url, ready, form=None) -> None:
    url = url.format(**{k: v for k, v in phone_data.items() if k != "users"})
    user = phone_data["users"][role] if role else None
    problems = []
    for language in LANGUAGES:
        fit = _measure(browser, live_server, user, url, ready, language, form)
        if fit["scrollWidth"] > min(fit["innerWidth"], WIDTH) or fit["count"]:
            lines = [
                f"  {item['element']} [{item['left']}..{item['right']} px, {item['width']} wide]"
                f"{' (its text spills out: long words?)' if item['spills'] else ''}"
                f"{' (overflow starts here)' if item['starts'] and not item['spills'] else ''}"
                f" {item['text']!r}"
                for item in fit["widest"]
            ]
            problems.append(
                f"{url}{' sent with errors' if form else ''} ({language}, as "
                f"{role or 'visitor'}): the document is "
                f"{fit['scrollWidth']} px wide on a {WIDTH} px screen (innerWidth "
                f"{fit['innerWidth']}); {fit['count']} elements pass the right edge, the "
                "widest:\n" + "\n".join(lines)
            )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "role,url,ready", [page[1:] for page in PAGES], ids=[page[0] for page in PAGES]
)
def test_the_page_fits_a_phone(live_server, phone_data, browser, role, url, ready):
    _check(browser, live_server, phone_data, role, url, ready)


@pytest.mark.parametrize(
    "role,url,form", [page[1:] for page in SUBMITTED], ids=[page[0] for page in SUBMITTED]
)
def test_a_form_with_errors_fits_a_phone(live_server, phone_data, browser, role, url, form):
    _check(browser, live_server, phone_data, role, url, form, form)
