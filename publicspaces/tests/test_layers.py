"""The public layer (anyone) and the planner layer (incidents before/after recovery)."""

import datetime as dt
import json
import zoneinfo

import pytest
from django.contrib.gis.geos import Point
from django.core.files.uploadedfile import SimpleUploadedFile

from incidents.models import Category, ImportBatch, Incident, IncidentSource, SourceLabel
from publicspaces.models import SpaceKind
from publicspaces.services.activities import log_activity
from publicspaces.services.photos import add_photo
from publicspaces.services.projects import create_project, transition_project
from publicspaces.services.spaces import create_space
from publicspaces.tests.conftest import give_evidence, inside_norte, jpeg_bytes, square

pytestmark = pytest.mark.django_db

PUBLIC = "/api/v1/public-spaces/public/"
PLANNER = "/api/v1/public-spaces/incident-change/"
LIMA = zoneinfo.ZoneInfo("America/Lima")
PUBLIC_PROPERTIES = {
    "name",
    "kind",
    "condition",
    "district",
    "neighborhood",
    "recovered_on",
    "works_started_on",
    "maintained_on",
    "activity_count",
    "participant_total",
    "photos",
    "is_demo",
}


def _body(response):
    return json.loads(b"".join(response.streaming_content))


def _space(user, name, dlon, dlat=0.005, kind=SpaceKind.PARK):
    where = inside_norte(dlon, dlat)
    return create_space(
        user=user,
        name=name,
        kind=kind,
        geom=square(where.x, where.y, half=0.0002),
        address="Calle Privada 42",
        notes="llamar a Rosa 999-888-777",
    )


def _advance(user, space, until: str, recovered_on=dt.date(2025, 6, 1)):
    project = create_project(
        user=user, space=space, title="Obra", identified_on=dt.date(2025, 1, 10)
    )
    steps = [
        ("planned", dt.date(2025, 2, 1)),
        ("in_works", dt.date(2025, 3, 1)),
        ("recovered", recovered_on),
        ("maintained", dt.date(2025, 12, 15)),
    ]
    for status, day in steps:
        if status == "recovered":
            give_evidence(user, project, day)
        project = transition_project(user=user, project=project, to_status=status, on=day)
        if status == until:
            break
    return project


def test_public_layer_shows_only_recovered_and_maintained_without_personal_data(
    client, users, media_root
):
    user = users["norte"]
    degraded = _space(user, "Parque Degradado", 0.001)
    in_works = _space(user, "Parque en Obras", 0.003)
    recovered = _space(user, "Parque Recuperado", 0.005)
    maintained = _space(user, "Parque Mantenido", 0.007)
    _advance(user, in_works, "in_works")
    project = _advance(user, recovered, "recovered")
    _advance(user, maintained, "maintained")
    add_photo(
        user=user,
        project=project,
        image=SimpleUploadedFile("x.jpg", jpeg_bytes()),
        stage="after",
        caption="Foto de Rosa Pérez",
    )
    log_activity(
        user=user,
        space=recovered,
        date=dt.date(2025, 7, 1),
        kind="cultural",
        participants=40,
        organizer="Rosa Pérez",
        notes="teléfono 999-888-777",
    )
    assert degraded.condition == "degraded"

    response = client.get(PUBLIC)
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("public")
    features = _body(response)["features"]
    by_name = {f["properties"]["name"]: f for f in features}
    assert set(by_name) == {"Parque Recuperado", "Parque Mantenido"}
    for feature in features:
        assert set(feature["properties"]) == PUBLIC_PROPERTIES
    props = by_name["Parque Recuperado"]["properties"]
    assert props["activity_count"] == 1 and props["participant_total"] == 40
    assert props["recovered_on"] == "2025-06-01" and props["district"] == "Norte"
    # The photo that published the recovery (give_evidence) and the one added since.
    assert [p["stage"] for p in props["photos"]] == ["after", "after"]
    assert props["photos"][0]["url"].startswith("/media/publicspaces/photos/")
    assert by_name["Parque Mantenido"]["properties"]["maintained_on"] == "2025-12-15"
    text = json.dumps(features)
    for secret in ("Rosa", "999-888-777", "Calle Privada", "muni-norte"):
        assert secret not in text


# --- planner layer -----------------------------------------------------------------------

METRES_PER_DEGREE_LAT = 110_600  # at 12°S, close enough for offsets far from the limits


@pytest.fixture
def incident_factory(districts):
    region = districts["region"]
    region.time_zone = "America/Lima"
    region.save()
    source = IncidentSource.objects.create(name="ps-test")
    category = Category.objects.get(code="robbery-person")
    label = SourceLabel.objects.create(source=source, label="ROBO", category=category)
    batch = ImportBatch.objects.create(source=source, status=ImportBatch.Status.SUCCEEDED)
    counter = iter(range(10_000))

    def make(origin: Point, north_m: float, when: dt.datetime):
        point = Point(origin.x, origin.y + north_m / METRES_PER_DEGREE_LAT, srid=4326)
        return Incident.objects.create(
            source=source,
            external_id=f"i{next(counter)}",
            point=point,
            occurred_at=when,
            label=label,
            category=category,
            region=region,
            batch=batch,
        )

    return make


def _lima(*args):
    return dt.datetime(*args, tzinfo=LIMA)


def test_planner_layer_counts_incidents_before_and_after_recovery(client, users, incident_factory):
    space = create_space(
        user=users["program"],
        name="Plaza",
        kind=SpaceKind.PLAZA,
        geom=Point(-77.095, -12.085, srid=4326),
    )
    _advance(users["program"], space, "recovered", recovered_on=dt.date(2025, 6, 1))
    create_space(  # never recovered: not in the layer
        user=users["program"],
        name="Lote",
        kind="vacant_lot",
        geom=Point(-77.096, -12.086, srid=4326),
    )
    origin = space.geom
    # before: 2024-12-01 .. 2025-06-01 (local days); after: 2025-06-01 .. 2025-12-01
    incident_factory(origin, 50, _lima(2025, 3, 1, 12))  # before
    incident_factory(origin, 150, _lima(2025, 5, 31, 23, 30))  # before (UTC: June 1st)
    incident_factory(origin, 60, _lima(2024, 12, 1, 0, 30))  # before, first local day
    incident_factory(origin, -300, _lima(2025, 4, 1, 10))  # 300 m: only with distance 400
    incident_factory(origin, 70, _lima(2024, 11, 30, 23, 0))  # too early
    incident_factory(origin, 40, _lima(2025, 6, 1, 0, 30))  # after
    incident_factory(origin, -80, _lima(2025, 11, 30, 20))  # after
    incident_factory(origin, 90, _lima(2025, 12, 1, 0, 10))  # too late

    client.force_login(users["planner"])
    response = client.get(PLANNER)
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"
    (feature,) = _body(response)["features"]
    props = feature["properties"]
    assert (props["incidents_before"], props["incidents_after"]) == (3, 2)
    assert props["recovered_on"] == "2025-06-01" and props["distance_m"] == 200

    wider = _body(client.get(PLANNER, {"distance": 400}))["features"][0]["properties"]
    assert (wider["incidents_before"], wider["incidents_after"]) == (4, 2)
    narrow = _body(client.get(PLANNER, {"distance": 45}))["features"][0]["properties"]
    assert (narrow["incidents_before"], narrow["incidents_after"]) == (0, 1)
    longer = _body(client.get(PLANNER, {"months": 7}))["features"][0]["properties"]
    assert (longer["incidents_before"], longer["incidents_after"]) == (4, 3)


@pytest.mark.parametrize("who", ["anonymous", "norte", "program", "nobody"])
def test_planner_layer_is_for_planners_only(client, users, who):
    if who != "anonymous":
        client.force_login(users[who])
    assert client.get(PLANNER).status_code in (401, 403)


@pytest.mark.parametrize("params", [{"distance": "abc"}, {"distance": 5000}, {"months": 0}])
def test_planner_layer_parameters_are_checked(client, users, params):
    client.force_login(users["planner"])
    assert client.get(PLANNER, params).status_code == 400


@pytest.mark.parametrize(
    ("now_utc", "complete"),
    [
        # 03:00 UTC on Dec 1st is still Nov 30th in Lima: the window is not over there,
        # although the server's (UTC) date is already Dec 1st.
        (dt.datetime(2025, 12, 1, 3, 0, tzinfo=dt.UTC), False),
        (dt.datetime(2025, 12, 1, 6, 0, tzinfo=dt.UTC), True),
    ],
)
def test_after_complete_uses_the_regions_date(
    users, incident_factory, settings, monkeypatch, now_utc, complete
):
    from publicspaces import selectors

    settings.TIME_ZONE = "UTC"
    space = create_space(
        user=users["program"],
        name="Plaza",
        kind=SpaceKind.PLAZA,
        geom=Point(-77.095, -12.085, srid=4326),
    )
    _advance(users["program"], space, "recovered", recovered_on=dt.date(2025, 6, 1))
    monkeypatch.setattr(selectors.timezone, "now", lambda: now_utc)
    [row] = selectors.spaces_with_incident_counts(
        selectors.spaces_visible_to(users["planner"]), months=6
    )
    assert row.after_complete is complete
