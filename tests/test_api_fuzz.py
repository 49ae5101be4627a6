# ruff: noqa: F811  (pytest fixtures imported from hotspot_fixtures)
"""The API against its own OpenAPI schema: schemathesis generates requests for every
operation (GET, POST, PATCH, DELETE; valid and invalid data) as an anonymous visitor and
as a police planner, sends them to the WSGI application, and checks that no answer is a
5xx and that each status code, content type, header and body is one the schema documents.

The database holds a small town with incidents, a finished hotspot run, a recovered public
space with a project, photo and activity, a partner and an import batch; half the
generated requests aim their path ids at those objects, the other half at whatever ids
schemathesis draws. Each request runs in a savepoint that is rolled back, so every request
sees the same data. Hotspot runs and imports are queued but never executed (stubbed).

Deterministic: Hypothesis is derandomized, without an example database or deadline, with
a few examples per operation and mode. ``BARRIO_FUZZ_EXAMPLES=300`` runs a longer
exploration by hand.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import traceback
from collections import Counter, defaultdict

import pytest
import schemathesis
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import got_request_exception, request_finished, request_started
from django.db import close_old_connections, transaction
from django.test import Client
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import Role
from hotspots.tests.hotspot_fixtures import (  # noqa: F401  (fixtures)
    PERIOD,
    cluster_lonlat,
    gistar_run,
    town,
)
from incidents.models import ImportBatch
from incidents.tests.factories import make_user
from public.services.refresh import refresh_public_tables
from publicspaces.models import Partner, ProjectStatus, SpaceKind
from publicspaces.services.activities import log_activity
from publicspaces.services.photos import add_photo
from publicspaces.services.projects import create_project, transition_project
from publicspaces.services.spaces import create_space
from publicspaces.tests.conftest import jpeg_bytes, square

pytestmark = pytest.mark.django_db

SCHEMA_URL = "/api/schema/?format=json"
MAX_EXAMPLES = int(os.environ.get("BARRIO_FUZZ_EXAMPLES", "10"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Any 32-character token works as both the CSRF cookie and the header that must match it.
CSRF_TOKEN = "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz"
TILE_ZOOM = 14


@pytest.fixture
def wsgi_app():
    """The project's WSGI application, called in this thread (so on the test's database
    transaction). As in Django's test client, a request does not close the connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def no_heavy_jobs(settings):
    """Hotspot runs and imports are queued but never run: django-tasks' dummy backend
    keeps what is enqueued (the test settings' immediate backend would run a whole
    analysis or import inline), as if no worker had picked the job up yet."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}


@pytest.fixture
def fuzz_data(gistar_run, django_user_model) -> dict[str, dict]:
    """What a request must say to name the seeded objects: path parameters per path
    prefix ("paths") and body fields per operation ("bodies")."""
    region = gistar_run.region
    program = make_user(django_user_model, Role.PROGRAM, username="fuzz-program", is_staff=True)
    lon, lat = cluster_lonlat(0)
    space = create_space(
        user=program, name="Parque Fuzz", kind=SpaceKind.PARK, geom=square(lon, lat)
    )
    create_space(
        user=program, name="Losa Fuzz", kind=SpaceKind.SPORTS_FIELD, geom=square(lon + 0.002, lat)
    )
    project = create_project(
        user=program, space=space, title="Recuperación", identified_on=dt.date(2023, 6, 1)
    )
    for step, on in (
        (ProjectStatus.PLANNED, dt.date(2023, 7, 1)),
        (ProjectStatus.IN_WORKS, dt.date(2023, 8, 1)),
        (ProjectStatus.RECOVERED, dt.date(2024, 2, 1)),
    ):
        project = transition_project(
            user=program,
            project=project,
            to_status=step,
            on=on,
            evidence_waiver="Acta de entrega (fuzz fixture)",
        )
    photo = add_photo(
        user=program,
        project=project,
        image=SimpleUploadedFile("after.jpg", jpeg_bytes()),
        stage="after",
    )
    activity = log_activity(
        user=program, space=space, date=dt.date(2024, 3, 1), kind="sport", participants=12
    )
    Partner.objects.create(name="Junta vecinal", kind="community")
    batch = ImportBatch.objects.filter(status=ImportBatch.Status.SUCCEEDED).first()
    # The public API's tables, from the town's incidents (all past the publication lag).
    refresh_public_tables(region_code=region.code)
    x, y = tile_for_point(lon, lat, TILE_ZOOM)
    tile = {"z": TILE_ZOOM, "x": x, "y": y}
    run_request = {
        "region": region.code,
        "districts": ["T1"],
        "neighborhoods": [],
        "categories": [],
        "polygon": None,
        **{name: str(value) for name, value in PERIOD.items()},
    }
    return {
        "paths": {
            "/api/v1/activities/{id}/": {"id": activity.pk},
            "/api/v1/hotspot-runs/{id}/": {"id": gistar_run.pk},
            "/api/v1/import-batches/{id}/": {"id": batch.pk},
            "/api/v1/project-photos/{id}/": {"id": photo.pk},
            "/api/v1/public-spaces/{id}/": {"id": space.pk},
            "/api/v1/public/regions/{code}/": {"code": region.code},
            "/api/v1/recovery-projects/{id}/": {"id": project.pk},
            "/api/v1/tiles/hotspots/{run}/": {"run": gistar_run.pk, **tile},
            "/api/v1/tiles/incidents/": tile,
        },
        "bodies": {
            "POST /api/v1/hotspot-runs/": run_request,
            "POST /api/v1/hotspot-runs/{id}/validations/": {
                "eval_from": "2024-07-01",
                "eval_to": "2024-09-30",
            },
            "POST /api/v1/activities/": {"space": space.pk},
            "POST /api/v1/recovery-projects/": {"space": space.pk},
        },
    }


def tile_for_point(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The web-mercator tile (x, y) holding a point at zoom z."""
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def aim_at_known(case, fuzz_data: dict) -> None:
    """Points the case's path ids (and the body fields that name objects) at the seeded
    objects."""
    for prefix, values in fuzz_data["paths"].items():
        if case.operation.path.startswith(prefix):
            for name, value in values.items():
                if name in case.path_parameters:
                    case.path_parameters[name] = value
    body = fuzz_data["bodies"].get(case.operation.label)
    if body and isinstance(case.body, dict):
        case.body.update(body)


def session_for(user) -> dict[str, str]:
    client = Client()
    client.force_login(user)
    return {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}


def fuzz(
    schema, *, cookies: dict, fuzz_data: dict, max_examples: int, checks=tuple(CHECKS)
) -> tuple[list[str], dict[str, Counter]]:
    """Runs every operation of ``schema`` in both generation modes; returns one line per
    distinct failure (operation, check, status) with a request that reproduces it, and
    the status codes answered per operation."""
    tracebacks: list[str] = []
    found: dict[tuple, str] = {}
    statuses: dict[str, Counter] = defaultdict(Counter)

    def capture(sender, request=None, **kwargs):
        tracebacks.append(traceback.format_exc())

    def call(case):
        del tracebacks[:]
        with transaction.atomic():
            response = case.call(
                cookies={**cookies, "csrftoken": CSRF_TOKEN}, headers={"X-CSRFToken": CSRF_TOKEN}
            )
            transaction.set_rollback(True)
        return response

    def record(operation, mode, case, response, group: FailureGroup):
        for failure in group.exceptions:
            key = (operation.label, failure.title, response.status_code)
            if key in found:
                continue
            error = f"\n    {tracebacks[-1].strip().splitlines()[-1]}" if tracebacks else ""
            found[key] = (
                f"{operation.label} [{mode.value}] {failure.title} "
                f"(status {response.status_code}): {failure.message[:300]}\n"
                f"    {case.as_curl_command()}{error}"
            )

    def fuzz_operation(operation, mode):
        strategy = st.tuples(operation.as_strategy(generation_mode=mode), st.booleans())

        @hypothesis_settings(
            max_examples=max_examples,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(strategy)
        def run(drawn):
            case, aim = drawn
            if aim:
                aim_at_known(case, fuzz_data)
            response = call(case)
            statuses[operation.label][response.status_code] += 1
            try:
                case.validate_response(response, checks=list(checks))
            except FailureGroup as group:
                record(operation, mode, case, response, group)

        try:
            run()
        except Unsatisfiable:
            # Negative mode on an operation with nothing to make invalid (no parameter,
            # no body): there is no such request to send.
            if mode is not GenerationMode.NEGATIVE:
                raise

    got_request_exception.connect(capture)
    try:
        for result in schema.get_all_operations():
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                fuzz_operation(result.ok(), mode)
    finally:
        got_request_exception.disconnect(capture)
    return sorted(found.values()), statuses


# Operations each role must have had a success from: the run reached the seeded objects
# and the planner's POST queued a hotspot run, rather than every request being refused.
REACHED = {
    "anonymous": ["GET /api/v1/districts/", "GET /api/v1/public-spaces/public/"],
    Role.PLANNER.value: [
        "GET /api/v1/hotspot-runs/{id}/",
        "GET /api/v1/tiles/hotspots/{run}/cells/{z}/{x}/{y}.mvt",
        "GET /api/v1/public-spaces/{id}/",
        "GET /api/v1/project-photos/{id}/",
        "GET /api/v1/import-batches/{id}/",
        "POST /api/v1/hotspot-runs/",
    ],
}


@pytest.mark.parametrize("role", ["anonymous", Role.PLANNER.value])
def test_the_api_answers_as_its_schema_says(
    role, wsgi_app, fuzz_data, no_heavy_jobs, django_user_model
):
    schema = schemathesis.openapi.from_wsgi(SCHEMA_URL, wsgi_app)
    cookies = {}
    if role != "anonymous":
        user = make_user(django_user_model, role, username=f"fuzz-{role}", is_staff=True)
        cookies = session_for(user)
    failures, statuses = fuzz(
        schema, cookies=cookies, fuzz_data=fuzz_data, max_examples=MAX_EXAMPLES
    )
    assert not failures, f"{len(failures)} failure(s):\n" + "\n".join(failures)
    succeeded = {label for label, counts in statuses.items() if any(200 <= c < 300 for c in counts)}
    assert set(REACHED[role]) <= succeeded, sorted(statuses.items())
