"""Security, privacy and robustness regressions found in the backend review (R1).

Each test names the hole it closes; those about scope also pin behaviour that was already
right, so that a later refactor cannot open it silently.
"""

import datetime as dt
import io
import json

import pytest
from django.contrib.gis.geos import LineString, MultiPolygon
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from PIL import Image
from shapely.geometry import box

from publicspaces import selectors
from publicspaces.geometry import parse_geojson_geometry
from publicspaces.models import Activity, ChangeRecord, ProjectPhoto, PublicSpace, RecoveryProject
from publicspaces.services.activities import log_activity, update_activity
from publicspaces.services.photos import add_photo
from publicspaces.services.projects import create_project, transition_project, update_project
from publicspaces.services.spaces import AUDIT_ITEMS, create_space, record_audit
from publicspaces.tests.conftest import (
    BORDER_LAT,
    give_evidence,
    inside_norte,
    inside_sur,
    jpeg_bytes,
    square,
)

pytestmark = pytest.mark.django_db

LIST = "/api/v1/public-spaces/"
PUBLIC = "/api/v1/public-spaces/public/"


def _body(response):
    if response.streaming:
        return json.loads(b"".join(response.streaming_content))
    return response.json()


def _json(geom) -> dict:
    return json.loads(geom.json)


@pytest.fixture
def spaces(users):
    return {
        "north": create_space(
            user=users["norte"],
            name="Parque Norte",
            kind="park",
            geom=square(inside_norte().x, inside_norte().y),
        ),
        "south": create_space(
            user=users["sur"],
            name="Plaza Sur",
            kind="plaza",
            geom=square(inside_sur().x, inside_sur().y),
        ),
    }


def _project(user, space, title="Obra"):
    return create_project(user=user, space=space, title=title, identified_on=dt.date(2025, 1, 10))


def _recover(user, project):
    for status, day in (
        ("planned", dt.date(2025, 2, 1)),
        ("in_works", dt.date(2025, 3, 1)),
        ("recovered", dt.date(2025, 6, 1)),
    ):
        if status == "recovered":
            give_evidence(user, project, day)
        project = transition_project(user=user, project=project, to_status=status, on=day)
    return project


# --- geometry input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "geometry",
    [
        # Integers too large for a float: math.isfinite raised OverflowError (HTTP 500).
        {"type": "Point", "coordinates": [10**400, 0]},
        {"type": "Point", "coordinates": [-77.09, -(10**400)]},
        # RFC 7946: rings are closed; shapely closed this one silently.
        {
            "type": "Polygon",
            "coordinates": [[[-77.096, -12.086], [-77.094, -12.086], [-77.094, -12.084]]],
        },
        {
            "type": "Polygon",
            "coordinates": [
                [[-77.096, -12.086], [-77.094, -12.086], [-77.094, -12.084], [-77.096, -12.084]]
            ],
        },
    ],
)
def test_hostile_geojson_is_a_validation_error(geometry):
    with pytest.raises(ValidationError):
        parse_geojson_geometry(geometry)
    with pytest.raises(ValidationError):
        parse_geojson_geometry(json.dumps(geometry))


def test_deeply_nested_geojson_text_is_a_validation_error():
    # json.loads raised RecursionError, which is not a ValueError.
    with pytest.raises(ValidationError):
        parse_geojson_geometry('{"type": "Point", "coordinates": ' + "[" * 100_000 + "]" * 100_000)


def test_hostile_json_bodies_are_400_not_500(client, users):
    client.force_login(users["norte"])
    huge = (
        '{"name": "x", "kind": "park", "geom": {"type": "Point", "coordinates": [%s, -12.085]}}'
        % ("9" * 400)
    )
    assert client.post(LIST, huge, content_type="application/json").status_code == 400
    nested = '{"name": "x", "kind": "park", "geom": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert client.post(LIST, nested, content_type="application/json").status_code == 400
    assert not PublicSpace.objects.exists()


# --- geographic scope -------------------------------------------------------------------------


def test_a_multipolygon_with_one_part_outside_and_a_line_across_the_border_are_refused(users):
    north = inside_norte()
    parts = MultiPolygon(square(north.x, north.y), square(inside_sur().x, inside_sur().y))
    parts.srid = 4326
    with pytest.raises(ValidationError) as refused:
        create_space(user=users["norte"], name="Dos", kind="park", geom=parts)
    assert "geom" in refused.value.message_dict
    across = LineString((north.x, north.y), (north.x, BORDER_LAT - 0.001), srid=4326)
    with pytest.raises(ValidationError):
        create_space(user=users["norte"], name="Tramo", kind="lighting_stretch", geom=across)
    assert not PublicSpace.objects.exists()


def test_patch_with_only_a_geometry_cannot_move_a_space_out(client, users, spaces):
    client.force_login(users["norte"])
    north = spaces["north"]
    inside = inside_norte()
    straddling = MultiPolygon(square(inside.x, inside.y), square(inside_sur().x, inside_sur().y))
    response = client.patch(
        f"{LIST}{north.pk}/", {"geom": _json(straddling)}, content_type="application/json"
    )
    assert response.status_code == 400 and "geom" in response.json()
    north.refresh_from_db()
    assert north.geom.equals_exact(square(inside.x, inside.y), 1e-9)
    assert north.district.code == "N1" and north.version == 1


def test_foreign_ids_in_writes_are_refused(client, users, spaces):
    """An activity or a photo cannot be hung on another district's project, and a
    project cannot be opened on another district's space."""
    foreign = _project(users["sur"], spaces["south"], "Proyecto Sur")
    own = _project(users["norte"], spaces["north"], "Proyecto Norte")
    client.force_login(users["norte"])
    activity = client.post(
        "/api/v1/activities/",
        {"space": spaces["north"].pk, "project": foreign.pk, "date": "2025-07-01", "kind": "sport"},
        content_type="application/json",
    )
    assert activity.status_code == 400 and "project" in activity.json()
    # The refusal reads like a missing id: no hint that the foreign project exists.
    missing = client.post(
        "/api/v1/activities/",
        {"space": spaces["north"].pk, "project": 999_999, "date": "2025-07-01", "kind": "sport"},
        content_type="application/json",
    )
    assert missing.json()["project"] == [
        m.replace(f'"{foreign.pk}"', '"999999"') for m in activity.json()["project"]
    ]
    created = client.post(
        "/api/v1/activities/",
        {"space": spaces["north"].pk, "date": "2025-07-01", "kind": "sport"},
        content_type="application/json",
    ).json()
    patched = client.patch(
        f"/api/v1/activities/{created['id']}/",
        {"project": foreign.pk},
        content_type="application/json",
    )
    assert patched.status_code == 400
    opened = client.post(
        "/api/v1/recovery-projects/",
        {"space": spaces["south"].pk, "title": "Mío"},
        content_type="application/json",
    )
    assert opened.status_code == 400 and "space" in opened.json()
    photo = client.post(
        f"/api/v1/recovery-projects/{foreign.pk}/photos/",
        {"stage": "after", "image": SimpleUploadedFile("a.jpg", jpeg_bytes())},
    )
    assert photo.status_code == 404
    for url in (
        f"/api/v1/recovery-projects/{foreign.pk}/photos/",
        f"/api/v1/recovery-projects/?space={spaces['south'].pk}",
        f"/api/v1/activities/?space={spaces['south'].pk}",
    ):
        response = client.get(url)
        assert response.status_code in (200, 404)
        assert response.status_code == 404 or response.json() == []
    assert Activity.objects.filter(project=foreign).count() == 0
    assert RecoveryProject.objects.filter(space=spaces["south"]).count() == 1
    assert own.space_id == spaces["north"].pk


def test_admin_history_autocomplete_and_foreign_choices_are_scoped(client, users, spaces):
    foreign = _project(users["sur"], spaces["south"], "Proyecto Sur")
    client.force_login(users["norte"])
    for name, obj in (("publicspace", spaces["south"]), ("recoveryproject", foreign)):
        for view in ("change", "delete", "history"):
            url = reverse(f"admin:publicspaces_{name}_{view}", args=[obj.pk])
            assert client.get(url).status_code == 404, url
    auto = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "publicspaces", "model_name": "activity", "field_name": "space", "term": ""},
    )
    if auto.status_code == 200:
        names = [r["text"] for r in auto.json()["results"]]
        assert "Plaza Sur" not in names
    else:
        assert auto.status_code in (403, 404)
    add = client.get(reverse("admin:publicspaces_activity_add")).content.decode()
    assert "Plaza Sur" not in add and "Proyecto Sur" not in add
    history = client.get(reverse("admin:publicspaces_changerecord_changelist")).content.decode()
    assert "Plaza Sur" not in history and "Proyecto Sur" not in history


# --- the public layer ---------------------------------------------------------------------------


def test_public_layer_shows_photos_of_finished_recoveries_only(client, users, spaces, media_root):
    """A recovered space with a new project still being planned: that project's photos
    (work in progress, not yet meant for publication) stay off the public map."""
    user = users["norte"]
    done = _recover(user, _project(user, spaces["north"]))
    add_photo(
        user=user, project=done, image=SimpleUploadedFile("a.jpg", jpeg_bytes()), stage="after"
    )
    transition_project(user=user, project=done, to_status="maintained", on=dt.date(2025, 8, 1))
    planned = _project(user, spaces["north"], "Segunda etapa")
    add_photo(
        user=user,
        project=planned,
        image=SimpleUploadedFile("b.jpg", jpeg_bytes(color=(1, 200, 1))),
        stage="before",
    )
    feature = _body(client.get(PUBLIC))["features"]
    assert len(feature) == 1
    photos = feature[0]["properties"]["photos"]
    assert [p["stage"] for p in photos] == ["after", "after"]  # the evidence and the one added
    public_ids = set(selectors.public_photos().values_list("id", flat=True))
    assert public_ids == set(ProjectPhoto.objects.filter(project=done).values_list("id", flat=True))
    assert all(map(selectors.photo_is_public, ProjectPhoto.objects.filter(project=done)))
    assert not selectors.photo_is_public(ProjectPhoto.objects.get(project=planned))


# --- dates and numbers --------------------------------------------------------------------------


def test_dates_in_the_future_are_refused(users, spaces, media_root):
    user = users["norte"]
    space = spaces["north"]
    future = dt.date.today() + dt.timedelta(days=40)
    with pytest.raises(ValidationError) as activity:
        log_activity(user=user, space=space, date=future, kind="sport", participants=3)
    assert "date" in activity.value.message_dict
    with pytest.raises(ValidationError) as audit:
        record_audit(
            user=user,
            space=space,
            answers=dict.fromkeys(AUDIT_ITEMS, 1),
            audited_on=future,
        )
    assert "audited_on" in audit.value.message_dict
    project = _project(user, space)
    with pytest.raises(ValidationError) as photo:
        add_photo(
            user=user,
            project=project,
            image=SimpleUploadedFile("a.jpg", jpeg_bytes()),
            stage="before",
            taken_on=future,
        )
    assert "taken_on" in photo.value.message_dict
    done = log_activity(
        user=user, space=space, date=dt.date(2025, 1, 1), kind="sport", participants=3
    )
    with pytest.raises(ValidationError):
        update_activity(user=user, activity=done, changes={"date": future})
    assert Activity.objects.get().date == dt.date(2025, 1, 1)
    assert not ProjectPhoto.objects.exists()
    space.refresh_from_db()
    assert space.audited_on is None


def test_creating_a_project_with_later_step_dates_is_a_400(client, users, spaces):
    """The serializer accepted planned_on etc. on POST and the service did not: a 500."""
    client.force_login(users["norte"])
    response = client.post(
        "/api/v1/recovery-projects/",
        {"space": spaces["north"].pk, "title": "Obra", "planned_on": "2025-02-01"},
        content_type="application/json",
    )
    assert response.status_code == 400 and "planned_on" in response.json()
    assert not RecoveryProject.objects.exists()


@pytest.mark.parametrize(
    "values",
    [{"budget": "-1"}, {"spent": "-0.01"}, {"budget": "NaN"}, {"budget": "Infinity"}],
)
def test_negative_or_non_finite_amounts_are_a_400(client, users, spaces, values):
    client.force_login(users["norte"])
    response = client.post(
        "/api/v1/recovery-projects/",
        {"space": spaces["north"].pk, "title": "Obra", **values},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert not RecoveryProject.objects.exists()


def test_a_failing_later_step_leaves_nothing_half_written(users, spaces):
    """The project row is saved before the partners are checked: the whole service
    must roll back, history included."""
    project = _project(users["norte"], spaces["north"])
    records = ChangeRecord.objects.count()
    with pytest.raises(ValidationError) as refused:
        update_project(
            user=users["norte"], project=project, changes={"title": "Nuevo", "partners": [999]}
        )
    assert "partners" in refused.value.message_dict
    project.refresh_from_db()
    assert project.title == "Obra" and ChangeRecord.objects.count() == records


# --- photos -----------------------------------------------------------------------------------


def _png(mode: str, size=(20, 10), **info) -> bytes:
    image = Image.new(mode, size)
    image.info.update(info)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_a_decompression_bomb_is_refused_before_decoding(users, spaces, media_root, settings):
    # 12 000 × 12 000 pixels in a few kilobytes.
    settings.PUBLICSPACES_PHOTO_MAX_DIMENSION = 20_000
    bomb = _png("1", size=(12_000, 12_000))
    assert len(bomb) < 100_000
    project = _project(users["norte"], spaces["north"])
    with pytest.raises(ValidationError):
        add_photo(
            user=users["norte"],
            project=project,
            image=SimpleUploadedFile("bomb.png", bomb),
            stage="before",
        )
    assert not ProjectPhoto.objects.exists()


def test_a_polyglot_is_stored_as_plain_pixels(users, spaces, media_root):
    """A JPEG with a script or a zip appended: only the re-encoded pixels are kept."""
    payload = b"<script>alert(1)</script>PK\x03\x04"
    project = _project(users["norte"], spaces["north"])
    photo = add_photo(
        user=users["norte"],
        project=project,
        image=SimpleUploadedFile("../../evil.html", jpeg_bytes() + payload),
        stage="before",
    )
    stored = photo.image.read()
    photo.image.close()
    assert payload not in stored and stored.startswith(b"\xff\xd8")
    assert photo.image.name.startswith("publicspaces/photos/")
    assert "evil" not in photo.image.name and photo.image.name.endswith(".jpg")


def test_png_text_and_icc_are_removed(users, spaces, media_root):
    image = Image.new("RGB", (30, 20), (10, 20, 30))
    from PIL import PngImagePlugin

    meta = PngImagePlugin.PngInfo()
    meta.add_text("Author", "Rosa Perez 999-888-777")
    meta.add_text("XML:com.adobe.xmp", "<x:xmpmeta>GPSLatitude 12,5.5S</x:xmpmeta>")
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=meta, icc_profile=b"\0" * 200)
    project = _project(users["norte"], spaces["north"])
    photo = add_photo(
        user=users["norte"],
        project=project,
        image=SimpleUploadedFile("a.png", out.getvalue()),
        stage="before",
    )
    stored = photo.image.read()
    photo.image.close()
    assert b"Rosa" not in stored and b"GPSLatitude" not in stored
    assert "icc_profile" not in Image.open(io.BytesIO(stored)).info


def test_an_oversized_upload_is_refused_before_it_is_read(
    client, users, spaces, media_root, settings
):
    """Django spools any multipart file to disk whatever its size: the API refuses a
    body larger than a photo can be from its Content-Length, before parsing it."""
    settings.PUBLICSPACES_PHOTO_MAX_BYTES = 1000
    project = _project(users["norte"], spaces["north"])
    client.force_login(users["norte"])
    response = client.post(
        f"/api/v1/recovery-projects/{project.pk}/photos/",
        {"stage": "after", "image": SimpleUploadedFile("a.jpg", b"\xff" * 200_000)},
    )
    assert response.status_code == 413 and "image" in response.json()
    assert not ProjectPhoto.objects.exists()


def test_a_large_jpeg_is_decoded_reduced_and_stored_at_the_stored_size(
    users, spaces, media_root, settings
):
    settings.PUBLICSPACES_PHOTO_STORED_MAX_SIDE = 500
    out = io.BytesIO()
    Image.new("RGB", (3000, 1000), (40, 90, 160)).save(out, format="JPEG")
    project = _project(users["norte"], spaces["north"])
    photo = add_photo(
        user=users["norte"],
        project=project,
        image=SimpleUploadedFile("big.jpg", out.getvalue()),
        stage="before",
    )
    assert (photo.width, photo.height) == (500, 167)
    stored = Image.open(photo.image.path)
    assert stored.size == (500, 167)
    assert (
        max(abs(a - b) for a, b in zip(stored.getpixel((250, 80)), (40, 90, 160), strict=True)) < 8
    )


def _truncated_ihdr_png() -> bytes:
    data = bytearray(_png("RGB", size=(4, 4)))
    assert data[8:16] == b"\x00\x00\x00\rIHDR"
    data[11] = 5  # IHDR length 5 instead of 13: Pillow raises ValueError while opening
    return bytes(data)


def _jpeg_with_a_mistyped_exif_tag() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Cam"  # Make, ASCII
    exif[0x0112] = 6  # Orientation: rotate, so that the EXIF is rewritten on transposing
    data = jpeg_bytes(exif=exif)
    # Make (0x010F, ASCII) becomes ImageWidth (0x0100) still typed ASCII: Pillow's EXIF
    # writer then fails with struct.error inside ImageOps.exif_transpose.
    assert data.count(b"\x01\x0f\x00\x02") == 1
    return data.replace(b"\x01\x0f\x00\x02", b"\x01\x00\x00\x02")


def test_malformed_images_are_a_400_not_a_500(client, users, spaces, media_root):
    project = _project(users["norte"], spaces["north"])
    client.force_login(users["norte"])
    url = f"/api/v1/recovery-projects/{project.pk}/photos/"
    refused = client.post(
        url, {"stage": "after", "image": SimpleUploadedFile("a.png", _truncated_ihdr_png())}
    )
    assert refused.status_code == 400 and "image" in refused.json()
    assert not ProjectPhoto.objects.exists()
    # A readable picture whose EXIF is broken: kept, without the EXIF (and unrotated,
    # since the orientation tag cannot be trusted).
    kept = client.post(
        url,
        {"stage": "after", "image": SimpleUploadedFile("b.jpg", _jpeg_with_a_mistyped_exif_tag())},
    )
    assert kept.status_code == 201, kept.content
    photo = ProjectPhoto.objects.get()
    stored = photo.image.read()
    photo.image.close()
    assert b"Cam" not in stored and not Image.open(io.BytesIO(stored)).getexif()


# --- importer -----------------------------------------------------------------------------------


def test_import_of_a_key_that_belongs_to_another_district_is_a_row_error(
    districts, write_geojson, capsys
):
    """The importer crashed with OutOfScope when --district met an id already used by a
    space of another district (it must report the row and write nothing)."""
    south = box(-77.0955, -12.0955, -77.0945, -12.0945)
    north = box(-77.0955, -12.0855, -77.0945, -12.0845)
    call_command(
        "import_public_spaces",
        str(write_geojson([{"codigo": 1, "nombre": "Sur", "tipo": "parque", "geometry": south}])),
        "--name-field",
        "nombre",
        "--kind-field",
        "tipo",
        "--id-field",
        "codigo",
        "--source",
        "inv",
    )
    rows = [
        {"codigo": 2, "nombre": "Nuevo", "tipo": "parque", "geometry": north},
        {"codigo": 1, "nombre": "Robado", "tipo": "parque", "geometry": north},
    ]
    with pytest.raises(CommandError):
        call_command(
            "import_public_spaces",
            str(write_geojson(rows, name="second.geojson")),
            "--name-field",
            "nombre",
            "--kind-field",
            "tipo",
            "--id-field",
            "codigo",
            "--source",
            "inv",
            "--district",
            "N1",
        )
    err = capsys.readouterr().err
    assert "feature 2" in err and "codigo=1" in err
    assert list(PublicSpace.objects.values_list("name", "district__code")) == [("Sur", "S1")]
    assert ChangeRecord.objects.count() == 1


# --- demo -----------------------------------------------------------------------------------


def test_demo_photos_on_the_public_layer_are_reachable_and_labelled(client, media_root):
    """Demo photos were stored under publicspaces/demo/, a path the scoped photo view
    does not serve: every demo photo on the public map was a broken link."""
    from neighborhoods.demo import load_demo_boundaries
    from publicspaces.demo import load_demo_spaces

    for report in load_demo_boundaries():
        assert report.ok
    load_demo_spaces()
    features = _body(client.get(PUBLIC))["features"]
    photos = [p for f in features for p in f["properties"]["photos"]]
    assert features and photos
    assert all(f["properties"]["is_demo"] for f in features)
    for photo in photos:
        response = client.get(photo["url"])
        assert response.status_code == 200, photo["url"]
        assert response["Content-Type"] == "image/jpeg"
        b"".join(response.streaming_content)
