"""The issue's "done means", through the API, on the real Lima districts."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Role
from neighborhoods.models import District
from publicspaces.models import PublicSpace
from publicspaces.services.spaces import AUDIT_ITEMS
from publicspaces.tests.conftest import jpeg_bytes, square

pytestmark = [pytest.mark.django_db, pytest.mark.open_data]

COMAS, RIMAC = "150110", "150128"


def _body(response):
    if response.streaming:
        return json.loads(b"".join(response.streaming_content))
    return response.json()


def test_a_comas_user_recovers_a_park_and_cannot_touch_rimac(
    client, shared_data, media_root, make_user
):
    from opendata.packs import PACKS, load_pack

    assert load_pack(PACKS["lima"], shared_data, with_incidents=False).ok
    comas = District.objects.get(region__code="lima", code=COMAS)
    rimac = District.objects.get(region__code="lima", code=RIMAC)
    user = make_user("comas", Role.MUNICIPAL, comas, is_staff=True)
    client.force_login(user)
    inside = comas.geom.point_on_surface
    park = json.loads(square(inside.x, inside.y, half=0.0004).json)

    created = client.post(
        "/api/v1/public-spaces/",
        {"name": "Parque Señor de los Milagros", "kind": "park", "geom": park},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    space_id = created.json()["id"]
    project = client.post(
        "/api/v1/recovery-projects/",
        {"space": space_id, "title": "Recuperación", "identified_on": "2025-01-06"},
        content_type="application/json",
    ).json()
    url = f"/api/v1/recovery-projects/{project['id']}/"
    for status, day in [
        ("planned", "2025-02-03"),
        ("in_works", "2025-03-03"),
        ("recovered", "2025-06-02"),
    ]:
        if status == "in_works":
            before = client.post(
                f"{url}photos/",
                {"stage": "before", "image": SimpleUploadedFile("a.jpg", jpeg_bytes())},
            )
            assert before.status_code == 201
        if status == "recovered":
            # Not published on the works' word alone: an audit since the works started
            # and an "after" photo first.
            refused = client.post(
                f"{url}transition/",
                {"status": status, "date": day},
                content_type="application/json",
                headers={"accept-language": "en"},
            )
            assert refused.status_code == 400
            assert "audit" in " ".join(refused.json()["status"])
            assert "photo" in " ".join(refused.json()["status"])
            audited = client.post(
                f"/api/v1/public-spaces/{space_id}/audit/",
                {"answers": {item: 2 for item in AUDIT_ITEMS}, "audited_on": day},
                content_type="application/json",
            )
            assert audited.status_code == 200, audited.content
            after = client.post(
                f"{url}photos/",
                {
                    "stage": "after",
                    "image": SimpleUploadedFile("b.jpg", jpeg_bytes(color=(0, 150, 0))),
                },
            )
            assert after.status_code == 201
        step = client.post(
            f"{url}transition/", {"status": status, "date": day}, content_type="application/json"
        )
        assert step.status_code == 200, step.content
    activity = client.post(
        "/api/v1/activities/",
        {"space": space_id, "date": "2025-07-05", "kind": "cultural", "participants": 60},
        content_type="application/json",
    )
    assert activity.status_code == 201

    client.logout()
    public = _body(client.get("/api/v1/public-spaces/public/", {"region": "lima"}))
    mine = [
        f for f in public["features"] if f["properties"]["name"] == "Parque Señor de los Milagros"
    ]
    assert len(mine) == 1
    props = mine[0]["properties"]
    assert props["district"] == comas.name and props["activity_count"] == 1
    assert [p["stage"] for p in props["photos"]] == ["before", "after"]

    # Rímac: invisible and untouchable by any URL; no dragging the park into it.
    client.force_login(user)
    rimac_space = PublicSpace.objects.filter(district=rimac).first()
    assert rimac_space is not None  # a demo space of the pack
    for path in ("", "history/"):
        assert client.get(f"/api/v1/public-spaces/{rimac_space.pk}/{path}").status_code == 404
    listed = _body(client.get("/api/v1/public-spaces/"))["features"]
    assert {f["properties"]["district"] for f in listed} == {COMAS}
    r = rimac.geom.point_on_surface
    moved = client.patch(
        f"/api/v1/public-spaces/{space_id}/",
        {"geom": json.loads(square(r.x, r.y, half=0.0004).json)},
        content_type="application/json",
    )
    assert moved.status_code == 400 and comas.name in moved.json()["geom"][0]
    assert PublicSpace.objects.get(pk=space_id).district == comas
