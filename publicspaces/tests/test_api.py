import datetime as dt
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import ExifTags, Image

from publicspaces.models import ChangeRecord, ProjectPhoto, PublicSpace, SpaceKind
from publicspaces.models import RecoveryProject as ProjectModel
from publicspaces.services.projects import create_project
from publicspaces.services.spaces import create_space
from publicspaces.tests.conftest import give_evidence, inside_norte, inside_sur, jpeg_bytes, square

pytestmark = pytest.mark.django_db

LIST = "/api/v1/public-spaces/"


def _geojson(geom) -> dict:
    return json.loads(geom.json)


def _body(response) -> dict:
    if response.streaming:
        return json.loads(b"".join(response.streaming_content))
    return response.json()


def _feature(name, where, kind="park"):
    return {
        "type": "Feature",
        "geometry": _geojson(square(where.x, where.y)),
        "properties": {"name": name, "kind": kind, "address": "Av. Siempre Viva 123"},
    }


@pytest.fixture
def spaces(users):
    north = create_space(
        user=users["norte"],
        name="Parque Norte",
        kind=SpaceKind.PARK,
        geom=square(inside_norte().x, inside_norte().y),
    )
    south = create_space(
        user=users["sur"],
        name="Plaza Sur",
        kind=SpaceKind.PLAZA,
        geom=square(inside_sur().x, inside_sur().y),
    )
    return {"north": north, "south": south}


def test_list_is_scoped_to_the_district(client, users, spaces):
    client.force_login(users["norte"])
    response = client.get(LIST)
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"
    names = [f["properties"]["name"] for f in _body(response)["features"]]
    assert names == ["Parque Norte"]
    client.force_login(users["program"])
    assert len(_body(client.get(LIST))["features"]) == 2


def test_anonymous_and_plain_users_are_refused(client, users, spaces):
    assert client.get(LIST).status_code in (401, 403)
    client.force_login(users["nobody"])
    assert client.get(LIST).status_code == 403
    assert client.get(f"{LIST}{spaces['north'].pk}/").status_code == 403


def test_another_districts_space_is_a_404_for_every_method(client, users, spaces):
    client.force_login(users["norte"])
    url = f"{LIST}{spaces['south'].pk}/"
    assert client.get(url).status_code == 404
    patch = client.patch(url, {"name": "Mía"}, content_type="application/json")
    assert patch.status_code == 404
    assert client.delete(url).status_code == 404
    assert client.get(f"{url}history/").status_code == 404
    spaces["south"].refresh_from_db()
    assert spaces["south"].name == "Plaza Sur"
    assert not ChangeRecord.objects.filter(user=users["norte"], space=spaces["south"]).exists()


def test_create_inside_the_district_with_a_feature(client, users):
    client.force_login(users["norte"])
    response = client.post(
        LIST,
        _feature("Losa Nueva", inside_norte(), "sports_field"),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    feature = response.json()
    assert feature["properties"]["district"]["code"] == "N1"
    assert feature["geometry"]["type"] == "Polygon"
    assert PublicSpace.objects.get(name="Losa Nueva").created_by == users["norte"]


def test_create_outside_the_district_is_a_400_on_geom(client, users):
    client.force_login(users["norte"])
    response = client.post(LIST, _feature("Ajena", inside_sur()), content_type="application/json")
    assert response.status_code == 400
    assert "Norte" in response.json()["geom"][0]
    assert not PublicSpace.objects.exists()


def test_moving_outside_is_a_400_and_keeps_the_geometry(client, users, spaces):
    client.force_login(users["norte"])
    space = spaces["north"]
    south = inside_sur()
    response = client.patch(
        f"{LIST}{space.pk}/",
        {"geom": _geojson(square(south.x, south.y))},
        content_type="application/json",
    )
    assert response.status_code == 400 and "geom" in response.json()
    before = space.geom.wkt
    space.refresh_from_db()
    assert space.geom.wkt == before


def test_mass_assignment_of_district_is_ignored(client, users, spaces, districts):
    client.force_login(users["norte"])
    response = client.patch(
        f"{LIST}{spaces['north'].pk}/",
        {"name": "Parque Norte 2", "district": districts["sur"].pk},
        content_type="application/json",
    )
    assert response.status_code == 200
    spaces["north"].refresh_from_db()
    assert spaces["north"].district == districts["norte"]


@pytest.mark.parametrize(
    "geometry",
    [
        {"type": "Point", "coordinates": ["-77.09", -12.08]},
        {"type": "Polygon", "coordinates": [[[-77.09, -12.08], [-77.08, -12.08]]]},
        {"type": "Point", "coordinates": [181, 10]},
        {"type": "Point", "coordinates": [-77.09, -12.08, 30]},
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},
        {"type": "GeometryCollection", "geometries": []},
        {"type": "Point", "coordinates": [-77.09, -12.08], "crs": {"type": "name"}},
        "/vsicurl/http://127.0.0.1/x",
        {"width": 1, "height": 1, "name": "r", "driver": "MEM"},
    ],
)
def test_bad_geometries_are_400_not_500(client, users, geometry):
    client.force_login(users["norte"])
    body = json.dumps({"name": "x", "kind": "park", "geom": geometry})
    response = client.post(LIST, body, content_type="application/json")
    assert response.status_code == 400
    assert "geom" in response.json()


def test_non_finite_numbers_are_a_400(client, users):
    client.force_login(users["norte"])
    body = '{"name": "x", "kind": "park", "geom": {"type": "Point", "coordinates": [NaN, 1]}}'
    assert client.post(LIST, body, content_type="application/json").status_code == 400
    assert not PublicSpace.objects.exists()


def test_version_conflict_is_409(client, users, spaces):
    client.force_login(users["norte"])
    url = f"{LIST}{spaces['north'].pk}/"
    assert (
        client.patch(url, {"name": "A", "version": 1}, content_type="application/json").status_code
        == 200
    )
    stale = client.patch(url, {"name": "B", "version": 1}, content_type="application/json")
    assert stale.status_code == 409


def test_project_flow_with_photos_activity_and_history(client, users, spaces, media_root):
    client.force_login(users["norte"])
    space = spaces["north"]
    created = client.post(
        "/api/v1/recovery-projects/",
        {"space": space.pk, "title": "Recuperar", "identified_on": "2025-01-10", "budget": "1000"},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    project = created.json()
    assert project["allowed_transitions"] == ["planned", "cancelled"]
    url = f"/api/v1/recovery-projects/{project['id']}/"

    wrong = client.post(
        f"{url}transition/",
        {"status": "recovered"},
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="en",  # the message is checked in English
    )
    assert wrong.status_code == 400
    assert "Identified" in wrong.json()["status"][0] and "Recovered" in wrong.json()["status"][0]

    for status_, day in [("planned", "2025-02-01"), ("in_works", "2025-03-01")]:
        step = client.post(
            f"{url}transition/", {"status": status_, "date": day}, content_type="application/json"
        )
        assert step.status_code == 200, step.content

    upload = client.post(
        f"{url}photos/",
        {"stage": "before", "image": SimpleUploadedFile("casa-de-juan.jpg", jpeg_bytes())},
    )
    assert upload.status_code == 201, upload.content
    assert "casa-de-juan" not in upload.json()["url"]

    # A "before" photo is no evidence of a recovery: the audit and an "after" photo are.
    early = client.post(
        f"{url}transition/",
        {"status": "recovered", "date": "2025-06-01"},
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert early.status_code == 400
    assert early.json()["status"] == [
        "Before the space shows as recovered on the public map, the recovery needs: an audit "
        "of the space dated 2025-03-01 or later (the works started then); at least one "
        "“after” photo."
    ]
    assert client.get(f"{LIST}{space.pk}/").json()["properties"]["condition"] == "in_recovery"
    give_evidence(users["norte"], ProjectModel.objects.get(pk=project["id"]), dt.date(2025, 6, 1))
    done = client.post(
        f"{url}transition/",
        {"status": "recovered", "date": "2025-06-01"},
        content_type="application/json",
    )
    assert done.json()["status"] == "recovered"
    assert done.json()["currency"] == "PEN"  # the region's, for the budget given without one
    detail = client.get(f"{LIST}{space.pk}/").json()
    assert detail["properties"]["condition"] == "recovered"
    assert detail["properties"]["recovered_on"] == "2025-06-01"

    activity = client.post(
        "/api/v1/activities/",
        {
            "space": space.pk,
            "date": "2025-07-01",
            "kind": "sport",
            "participants": 30,
            "children": 10,
            "youth": 10,
            "organizer": "Club Juvenil",
        },
        content_type="application/json",
    )
    assert activity.status_code == 201, activity.content
    too_many = client.post(
        "/api/v1/activities/",
        {"space": space.pk, "date": "2025-07-01", "kind": "sport", "participants": 3, "adults": 5},
        content_type="application/json",
    )
    assert too_many.status_code == 400 and "participants" in too_many.json()

    history = client.get(f"{LIST}{space.pk}/history/").json()
    assert [h["action"] for h in history][:2] == ["created", "transition"]
    assert {h["object_type"] for h in history} == {
        "publicspace",
        "recoveryproject",
        "projectphoto",
        "activity",
    }
    assert all(h["username"] == "muni-norte" for h in history)


def test_activities_and_projects_of_another_district_are_hidden(client, users, spaces):
    project = create_project(
        user=users["sur"], space=spaces["south"], title="Sur", identified_on=dt.date(2025, 1, 1)
    )
    client.force_login(users["norte"])
    assert client.get(f"/api/v1/recovery-projects/{project.pk}/").status_code == 404
    assert client.get("/api/v1/recovery-projects/").json() == []
    refused = client.post(
        "/api/v1/activities/",
        {"space": spaces["south"].pk, "date": "2025-07-01", "kind": "sport"},
        content_type="application/json",
    )
    assert refused.status_code == 400 and "space" in refused.json()
    moved = client.post(
        f"/api/v1/recovery-projects/{project.pk}/transition/",
        {"status": "planned"},
        content_type="application/json",
    )
    assert moved.status_code == 404


def test_planner_reads_but_cannot_write(client, users, spaces):
    client.force_login(users["planner"])
    assert len(_body(client.get(LIST))["features"]) == 2
    response = client.post(LIST, _feature("P", inside_norte()), content_type="application/json")
    assert response.status_code == 403
    patch = client.patch(
        f"{LIST}{spaces['north'].pk}/", {"name": "x"}, content_type="application/json"
    )
    assert patch.status_code == 404


# --- photos --------------------------------------------------------------------------------


@pytest.fixture
def project(users, spaces):
    return create_project(
        user=users["norte"], space=spaces["north"], title="P", identified_on=dt.date(2025, 1, 1)
    )


def _upload(client, project, content, name="photo.jpg"):
    return client.post(
        f"/api/v1/recovery-projects/{project.pk}/photos/",
        {"stage": "after", "image": SimpleUploadedFile(name, content)},
    )


def test_a_file_that_is_not_an_image_is_refused(client, users, project, media_root):
    client.force_login(users["norte"])
    response = _upload(client, project, b"%PDF-1.4 not an image", "scan.jpg")
    assert response.status_code == 400 and "image" in response.json()
    gif = io.BytesIO()
    Image.new("RGB", (4, 4)).save(gif, format="GIF")
    assert _upload(client, project, gif.getvalue(), "a.gif").status_code == 400
    assert not ProjectPhoto.objects.exists()
    assert not media_root.exists() or not any(media_root.rglob("*.*"))


def test_size_and_dimension_limits(client, users, project, media_root, settings):
    client.force_login(users["norte"])
    settings.PUBLICSPACES_PHOTO_MAX_BYTES = 500
    big = _upload(client, project, jpeg_bytes(size=(400, 400), color=(1, 2, 3)) + b"\0" * 600)
    assert big.status_code == 400
    settings.PUBLICSPACES_PHOTO_MAX_BYTES = 10_000_000
    settings.PUBLICSPACES_PHOTO_MAX_DIMENSION = 100
    wide = _upload(client, project, jpeg_bytes(size=(300, 50)))
    assert wide.status_code == 400 and "300" in wide.json()["image"][0]


def test_exif_and_gps_are_removed(client, users, project, media_root):
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SecretCam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "S"
    gps[ExifTags.GPS.GPSLatitude] = (12.0, 5.0, 30.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (77.0, 3.0, 0.0)
    original = jpeg_bytes(size=(80, 60), exif=exif)
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(ExifTags.IFD.GPSInfo)

    client.force_login(users["norte"])
    response = _upload(client, project, original)
    assert response.status_code == 201, response.content
    photo = ProjectPhoto.objects.get()
    stored = photo.image.read()
    photo.image.close()
    assert b"SecretCam" not in stored
    stored_image = Image.open(io.BytesIO(stored))
    assert stored_image.format == "JPEG" and stored_image.size == (80, 60)
    assert not stored_image.getexif()
    assert not stored_image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert (photo.width, photo.height) == (80, 60)
