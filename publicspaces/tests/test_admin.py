import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from publicspaces.models import ChangeRecord, ProjectPhoto, PublicSpace, RecoveryProject
from publicspaces.services.projects import create_project
from publicspaces.services.spaces import create_space
from publicspaces.tests.conftest import inside_norte, inside_sur, jpeg_bytes, square

pytestmark = pytest.mark.django_db


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


def _form(name, where, **extra):
    return {
        "name": name,
        "kind": "park",
        "geom": f"SRID=4326;{square(where.x, where.y).wkt}",
        "address": "",
        "responsible_municipality": "",
        "condition": "degraded",
        "notes": "",
        **extra,
    }


def test_changelist_is_scoped_to_the_district(client, users, spaces):
    client.force_login(users["norte"])
    page = client.get(reverse("admin:publicspaces_publicspace_changelist"))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Parque Norte" in text and "Plaza Sur" not in text
    client.force_login(users["program"])
    text = client.get(reverse("admin:publicspaces_publicspace_changelist")).content.decode()
    assert "Parque Norte" in text and "Plaza Sur" in text


def test_another_districts_change_view_is_a_404(client, users, spaces):
    client.force_login(users["norte"])
    south = spaces["south"].pk
    for name in ("change", "delete", "history"):
        url = reverse(f"admin:publicspaces_publicspace_{name}", args=[south])
        assert client.get(url).status_code == 404, name
    post = client.post(
        reverse("admin:publicspaces_publicspace_change", args=[south]), _form("Mía", inside_sur())
    )
    assert post.status_code == 404
    assert PublicSpace.objects.get(pk=south).name == "Plaza Sur"
    own = reverse("admin:publicspaces_publicspace_change", args=[spaces["north"].pk])
    assert client.get(own).status_code == 200


def test_add_outside_the_district_is_a_form_error(client, users, spaces):
    client.force_login(users["norte"])
    url = reverse("admin:publicspaces_publicspace_add")
    refused = client.post(url, _form("Ajeno", inside_sur(0.002)))
    assert refused.status_code == 200
    assert "Norte" in str(refused.context["adminform"].form.errors["geom"])
    assert not PublicSpace.objects.filter(name="Ajeno").exists()
    # The dry run left no history behind.
    assert not ChangeRecord.objects.filter(object_repr="Ajeno").exists()

    created = client.post(url, _form("Nuevo", inside_norte(0.002)))
    assert created.status_code == 302, created.content.decode()[:2000]
    space = PublicSpace.objects.get(name="Nuevo")
    assert space.district.code == "N1" and space.created_by == users["norte"]
    assert ChangeRecord.objects.filter(space=space, action="created").count() == 1


def test_moving_a_space_outside_in_the_admin_is_refused(client, users, spaces):
    client.force_login(users["norte"])
    space = spaces["north"]
    url = reverse("admin:publicspaces_publicspace_change", args=[space.pk])
    refused = client.post(url, _form("Parque Norte", inside_sur()))
    assert refused.status_code == 200 and "geom" in refused.context["adminform"].form.errors
    before = space.geom.wkt
    space.refresh_from_db()
    assert space.geom.wkt == before


def test_project_steps_in_the_admin(client, users, spaces):
    client.force_login(users["norte"])
    project = create_project(
        user=users["norte"], space=spaces["north"], title="Obra", identified_on=dt.date(2025, 1, 2)
    )
    url = reverse("admin:publicspaces_recoveryproject_change", args=[project.pk])
    form = {
        "title": "Obra",
        "identified_on": "2025-01-02",
        "works_description": "",
        "budget": "",
        "spent": "",
        "currency": "",
        "funding_source": "",
        "notes": "",
        "photos-TOTAL_FORMS": "0",
        "photos-INITIAL_FORMS": "0",
        "photos-MIN_NUM_FORMS": "0",
        "photos-MAX_NUM_FORMS": "1000",
    }
    wrong = client.post(url, {**form, "next_status": "recovered"})
    assert wrong.status_code == 200  # not one of the offered choices
    ok = client.post(url, {**form, "next_status": "planned", "step_date": "2025-02-01"})
    assert ok.status_code == 302, ok.content.decode()[:3000]
    project.refresh_from_db()
    assert project.status == "planned" and project.planned_on == dt.date(2025, 2, 1)

    other = create_project(
        user=users["sur"], space=spaces["south"], title="Sur", identified_on=dt.date(2025, 1, 2)
    )
    other_url = reverse("admin:publicspaces_recoveryproject_change", args=[other.pk])
    assert client.get(other_url).status_code == 404
    changelist = client.get(reverse("admin:publicspaces_recoveryproject_changelist"))
    assert "Sur" not in changelist.content.decode().split("result_list")[-1]
    assert RecoveryProject.objects.get(pk=other.pk).status == "identified"


def test_photo_upload_in_the_admin_is_validated(client, users, spaces, media_root):
    client.force_login(users["norte"])
    project = create_project(
        user=users["norte"], space=spaces["north"], title="Obra", identified_on=dt.date(2025, 1, 2)
    )
    url = reverse("admin:publicspaces_projectphoto_add")
    bad = client.post(
        url,
        {"project": project.pk, "stage": "before", "image": SimpleUploadedFile("a.jpg", b"nope")},
    )
    assert bad.status_code == 200 and "image" in bad.context["adminform"].form.errors
    good = client.post(
        url,
        {
            "project": project.pk,
            "stage": "before",
            "caption": "antes",
            "image": SimpleUploadedFile("a.jpg", jpeg_bytes()),
        },
    )
    assert good.status_code == 302, good.content.decode()[:2000]
    assert ProjectPhoto.objects.get().caption == "antes"
