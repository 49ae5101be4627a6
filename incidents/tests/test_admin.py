"""The incidents admin: pages load for superusers and planners, municipal staff are refused."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.models import Role
from incidents.admin import REFUSED_ROWS_PER_PAGE
from incidents.models import Category, ImportBatch, Incident, RefusedRow, SourceLabel
from incidents.services.imports import import_incidents
from incidents.services.reading import ColumnMapping
from incidents.services.request import ImportRequest
from tests.geodata import grid_cell

pytestmark = pytest.mark.django_db

CSV = (
    "id,date,category,lat,lon\n"
    "1,2024-03-01 10:00,PINTAS,-12.095,-77.095\n"
    "2,2024-03-02 10:00,PINTAS,-12.095,-77.085\n"
)


@pytest.fixture
def data(make_region, tmp_path):
    make_region("testville", {"D1": ("Uno", grid_cell(0)), "D2": ("Dos", grid_cell(1))})
    path = tmp_path / "admin.csv"
    path.write_text(CSV)
    result = import_incidents(
        request=ImportRequest(
            paths=[path],
            source="muni",
            columns=ColumnMapping(id="id", date="date", category="category"),
        )
    )
    batch = ImportBatch.objects.get(pk=result.batch_id)
    RefusedRow.objects.bulk_create(
        RefusedRow(batch=batch, file_name="admin.csv", row_number=n, reason=f"reason {n}")
        for n in range(2, 2 + REFUSED_ROWS_PER_PAGE + 5)
    )
    return {
        "batch": batch,
        "incident": Incident.objects.order_by("external_id").first(),
        "label": SourceLabel.objects.get(label="PINTAS"),
    }


def _pages(data):
    batch, incident, label = data["batch"], data["incident"], data["label"]
    return [
        reverse("admin:incidents_category_changelist"),
        reverse("admin:incidents_category_change", args=[label.category_id]),
        reverse("admin:incidents_incidentsource_changelist"),
        reverse("admin:incidents_incidentsource_change", args=[label.source_id]),
        reverse("admin:incidents_sourcelabel_changelist"),
        reverse("admin:incidents_sourcelabel_changelist") + "?category__unclassified__exact=1",
        reverse("admin:incidents_sourcelabel_changelist") + f"?source__id__exact={label.source_id}",
        reverse("admin:incidents_sourcelabel_change", args=[label.pk]),
        reverse("admin:incidents_importbatch_changelist"),
        reverse("admin:incidents_importbatch_change", args=[batch.pk]),
        reverse("admin:incidents_importbatch_change", args=[batch.pk]) + "?refused_page=2",
        reverse("admin:incidents_incident_changelist"),
        reverse("admin:incidents_incident_changelist")
        + f"?source__id__exact={incident.source_id}&category__id__exact={incident.category_id}"
        + f"&district__id__exact={incident.district_id}",
        reverse("admin:incidents_incident_change", args=[incident.pk]),
    ]


def _staff(django_user_model, name, role):
    user = django_user_model.objects.create_user(name, password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


def test_every_page_loads_for_a_superuser(admin_client, data):
    for url in _pages(data):
        response = admin_client.get(url)
        assert response.status_code == 200, url


def test_batch_page_shows_counts_files_and_pages_of_refused_rows(admin_client, data):
    batch = data["batch"]
    url = reverse("admin:incidents_importbatch_change", args=[batch.pk])
    html = admin_client.get(url).content.decode()
    assert batch.files[0]["sha256"] in html
    assert "reason 2<" in html and f"reason {REFUSED_ROWS_PER_PAGE + 1}<" in html
    assert f"reason {REFUSED_ROWS_PER_PAGE + 2}<" not in html
    assert 'id="refused-rows-pages"' in html
    second = admin_client.get(url + "?refused_page=2").content.decode()
    assert f"reason {REFUSED_ROWS_PER_PAGE + 2}<" in second and "reason 2<" not in second


def test_batches_and_incidents_are_read_only(admin_client, data):
    batch, incident = data["batch"], data["incident"]
    assert admin_client.get(reverse("admin:incidents_importbatch_add")).status_code == 403
    assert admin_client.get(reverse("admin:incidents_incident_add")).status_code == 403
    assert (
        admin_client.post(
            reverse("admin:incidents_incident_delete", args=[incident.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    changelist = admin_client.get(reverse("admin:incidents_incident_changelist")).content.decode()
    assert "delete_selected" not in changelist
    response = admin_client.post(
        reverse("admin:incidents_incident_changelist"),
        {"action": "delete_selected", "_selected_action": [incident.pk], "post": "yes"},
    )
    assert response.status_code in (200, 302, 403)
    assert Incident.objects.filter(pk=incident.pk).exists()
    assert ImportBatch.objects.filter(pk=batch.pk).exists()


def test_editing_a_label_category_maps_it(client, django_user_model, data):
    client.force_login(_staff(django_user_model, "planner", Role.PLANNER))
    label = data["label"]
    placeholder = label.category
    graffiti = Category.objects.get(code="graffiti")
    response = client.post(
        reverse("admin:incidents_sourcelabel_change", args=[label.pk]),
        {"category": graffiti.pk},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert SourceLabel.objects.get(pk=label.pk).category == graffiti
    assert set(Incident.objects.values_list("category__code", flat=True)) == {"graffiti"}
    assert not Category.objects.filter(pk=placeholder.pk).exists()


def test_a_label_cannot_be_mapped_to_an_unclassified_category(admin_client, data):
    label = data["label"]
    response = admin_client.post(
        reverse("admin:incidents_sourcelabel_change", args=[label.pk]),
        {"category": label.category_id},
    )
    assert response.status_code == 200 and "errorlist" in response.content.decode()


def test_planners_see_incidents_and_batches(client, django_user_model, data):
    client.force_login(_staff(django_user_model, "planner", Role.PLANNER))
    for url in _pages(data):
        if "/category/" in url and "change" in url:
            continue
        assert client.get(url).status_code == 200, url


def test_municipal_and_program_staff_are_refused(client, django_user_model, data):
    for role in (Role.MUNICIPAL, Role.PROGRAM):
        client.force_login(_staff(django_user_model, f"user-{role}", role))
        for url in _pages(data):
            assert client.get(url).status_code == 403, (role, url)
        index = client.get(reverse("admin:index")).content.decode()
        assert "/admin/incidents/" not in index


def test_incidents_stay_hidden_from_staff_given_the_view_permission(
    client, django_user_model, data
):
    """Raw incidents are for planners only, even if someone grants the permission."""
    from django.contrib.auth.models import Permission

    user = _staff(django_user_model, "muni", Role.MUNICIPAL)
    user.user_permissions.add(Permission.objects.get(codename="view_incident"))
    client.force_login(user)
    assert client.get(reverse("admin:incidents_incident_changelist")).status_code == 403
