"""The municipal pages (/municipality/): scope on every URL (photo files included), the
forms going through the services with their messages next to the fields, the project's
steps, photos, activities, the list filters and CSV export, and the language switch.

Districts and users come from publicspaces/tests/conftest.py: "Norte" and "Sur" share a
border; muni-norte edits Norte only.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone, translation

from publicspaces import forms
from publicspaces.models import Activity, ProjectStatus, PublicSpace
from publicspaces.services.activities import log_activity
from publicspaces.services.photos import add_photo
from publicspaces.services.projects import (
    allowed_transitions,
    create_project,
    get_or_create_partner,
    transition_project,
)
from publicspaces.services.spaces import (
    AUDIT_ITEMS,
    compute_condition_score,
    create_space,
    update_space,
)
from publicspaces.tests.conftest import inside_norte, inside_sur, jpeg_bytes, square

pytestmark = pytest.mark.django_db


def geojson(geom) -> str:
    return json.dumps({"type": geom.geom_type, "coordinates": json.loads(geom.json)["coordinates"]})


def polygon_json(lon: float, lat: float, half: float = 0.0005) -> str:
    ring = [
        [lon - half, lat - half],
        [lon + half, lat - half],
        [lon + half, lat + half],
        [lon - half, lat + half],
        [lon - half, lat - half],
    ]
    return json.dumps({"type": "Polygon", "coordinates": [ring]})


@pytest.fixture
def spaces(users):
    p = inside_norte()
    s = inside_sur()
    norte = create_space(
        user=None, name="Parque Norte", kind="park", geom=square(p.x, p.y), address="Av. 1"
    )
    norte_lamp = create_space(
        user=None, name="=HYPERLINK(1)", kind="lighting_point", geom=inside_norte(0.002, 0.002)
    )
    sur = create_space(user=None, name="Plaza Sur", kind="plaza", geom=square(s.x, s.y))
    sur_project = create_project(user=None, space=sur, title="Recuperar la plaza")
    return {"norte": norte, "norte_lamp": norte_lamp, "sur": sur, "sur_project": sur_project}


def logged(client, user):
    client.force_login(user)
    return client


# --- who gets in ------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_login_page(client, spaces):
    for url in (
        reverse("publicspaces:map"),
        reverse("publicspaces:list"),
        reverse("publicspaces:export"),
        reverse("publicspaces:detail", args=[spaces["norte"].pk]),
    ):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url
    response = client.post(reverse("publicspaces:create"), {"name": "x"})
    assert response.status_code == 302
    assert not PublicSpace.objects.filter(name="x").exists()


def test_a_user_without_a_public_space_role_is_refused(client, users, spaces):
    logged(client, users["nobody"])
    assert client.get(reverse("publicspaces:map")).status_code == 403
    assert client.get(reverse("publicspaces:detail", args=[spaces["norte"].pk])).status_code == 403


def test_the_municipal_map_shows_the_users_district(client, users, spaces):
    response = logged(client, users["norte"]).get(reverse("publicspaces:map"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="space-form"' in html
    config = response.context["map_config"]
    assert config["canEdit"] is True
    outline = config["districtOutline"]
    assert [f["properties"]["code"] for f in outline["features"]] == ["N1"]
    assert config["api"]["spaces"] == reverse("publicspace-list")
    # The legend lists every condition with its label.
    assert html.count('data-condition="') == 5


def test_municipal_users_see_their_district_only_in_the_list(client, users, spaces):
    response = logged(client, users["norte"]).get(reverse("publicspaces:list"))
    ids = {s.pk for s in response.context["page"].object_list}
    assert ids == {spaces["norte"].pk, spaces["norte_lamp"].pk}
    assert "Plaza Sur" not in response.content.decode()


def test_program_staff_see_every_district(client, users, spaces):
    response = logged(client, users["program"]).get(reverse("publicspaces:list"))
    assert {s.pk for s in response.context["page"].object_list} == {
        s.pk for s in (spaces["norte"], spaces["norte_lamp"], spaces["sur"])
    }
    assert (
        logged(client, users["program"])
        .get(reverse("publicspaces:detail", args=[spaces["sur"].pk]))
        .status_code
        == 200
    )


def test_every_url_of_another_districts_space_is_a_404(client, users, spaces, media_root):
    sur, project = spaces["sur"], spaces["sur_project"]
    photo = add_photo(
        user=None,
        project=project,
        image=SimpleUploadedFile("a.jpg", jpeg_bytes(), content_type="image/jpeg"),
        stage="before",
    )
    logged(client, users["norte"])
    assert client.get(reverse("publicspaces:detail", args=[sur.pk])).status_code == 404
    assert client.get(photo.image.url).status_code == 404
    posts = {
        reverse("publicspaces:edit", args=[sur.pk]): {
            "name": "Mine",
            "kind": "park",
            "condition": "degraded",
        },
        reverse("publicspaces:geometry", args=[sur.pk]): {
            "geometry": polygon_json(inside_norte().x, inside_norte().y),
            "version": sur.version,
        },
        reverse("publicspaces:audit", args=[sur.pk]): {i: "2" for i in AUDIT_ITEMS},
        reverse("publicspaces:project-create", args=[sur.pk]): {"title": "Mine"},
        reverse("publicspaces:activity-create", args=[sur.pk]): {
            "date": "2024-01-01",
            "kind": "sport",
            "participants": "3",
        },
        reverse("publicspaces:project-transition", args=[project.pk]): {
            f"t{project.pk}-to_status": "planned"
        },
        reverse("publicspaces:project-photo", args=[project.pk]): {
            f"ph{project.pk}-stage": "after",
            f"ph{project.pk}-image": SimpleUploadedFile("b.jpg", jpeg_bytes()),
        },
    }
    for url, data in posts.items():
        assert client.post(url, data).status_code == 404, url
    sur.refresh_from_db()
    project.refresh_from_db()
    assert (sur.name, sur.version, sur.condition_score) == ("Plaza Sur", 1, None)
    assert project.status == ProjectStatus.IDENTIFIED
    assert project.photos.count() == 1
    assert not Activity.objects.exists()
    assert sur.projects.count() == 1


def test_planners_read_but_get_no_forms_and_cannot_post(client, users, spaces):
    logged(client, users["planner"])
    response = client.get(reverse("publicspaces:detail", args=[spaces["norte"].pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Parque Norte" in html
    for form_id in ("geometry-form", "space-edit-form", "audit-form", "project-form"):
        assert f'id="{form_id}"' not in html
    assert 'id="space-form"' not in client.get(reverse("publicspaces:map")).content.decode()
    response = client.post(
        reverse("publicspaces:edit", args=[spaces["norte"].pk]),
        {"name": "Planner's", "kind": "park", "condition": "degraded"},
    )
    assert response.status_code == 403
    response = client.post(
        reverse("publicspaces:create"),
        {
            "name": "P",
            "kind": "park",
            "condition": "degraded",
            "geometry": polygon_json(inside_norte().x, inside_norte().y),
        },
    )
    assert response.status_code == 403
    assert not PublicSpace.objects.filter(name__in=["P", "Planner's"]).exists()


# --- adding and moving spaces -------------------------------------------------------------------


def test_a_space_drawn_in_the_district_is_created_and_redirects(client, users, districts):
    p = inside_norte()
    response = logged(client, users["norte"]).post(
        reverse("publicspaces:create"),
        {
            "name": "Parque Nuevo",
            "kind": "park",
            "address": "Jr. Los Olivos",
            "condition": "degraded",
            "notes": "",
            "geometry": polygon_json(p.x, p.y),
        },
    )
    space = PublicSpace.objects.get(name="Parque Nuevo")
    assert response.status_code == 302
    assert response["Location"] == reverse("publicspaces:detail", args=[space.pk])
    assert space.district == districts["norte"]
    assert space.created_by == users["norte"]
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert "Parque Nuevo" in page.content.decode()


def test_a_geometry_in_another_district_is_refused_with_the_message(client, users, districts):
    s = inside_sur()
    response = logged(client, users["norte"]).post(
        reverse("publicspaces:create"),
        {
            "name": "Intruso",
            "kind": "park",
            "condition": "degraded",
            "geometry": polygon_json(s.x, s.y),
        },
    )
    assert response.status_code == 400
    form = response.context["form"]
    [message] = form.errors["geometry"]
    assert "Norte" in message
    assert message in response.content.decode()
    # The refused drawing comes back to the map, to be fixed.
    assert response.context["map_config"]["drawnGeometry"] == polygon_json(s.x, s.y)
    assert not PublicSpace.objects.filter(name="Intruso").exists()


def test_form_errors_are_shown_next_to_their_fields(client, users, districts):
    response = logged(client, users["norte"]).post(
        reverse("publicspaces:create"),
        {"name": "", "kind": "castle", "condition": "degraded", "geometry": "{not json"},
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert set(errors) == {"name", "kind", "geometry"}
    html = response.content.decode()
    assert 'id="id_name_error"' in html and 'id="id_kind_error"' in html
    assert 'id="geometry-errors"' in html
    # A missing drawing says what to do.
    response = client.post(
        reverse("publicspaces:create"), {"name": "A", "kind": "park", "condition": "degraded"}
    )
    assert response.status_code == 400
    assert response.context["form"].errors["geometry"]
    assert PublicSpace.objects.count() == 0


def test_moving_a_shape_into_another_district_is_refused(client, users, spaces):
    space = spaces["norte"]
    before = space.geom.wkt
    s = inside_sur()
    logged(client, users["norte"])
    url = reverse("publicspaces:geometry", args=[space.pk])
    response = client.post(url, {"geometry": polygon_json(s.x, s.y), "version": space.version})
    assert response.status_code == 400
    [message] = response.context["geometry_form"].errors["geometry"]
    assert "Norte" in message and message in response.content.decode()
    space.refresh_from_db()
    assert space.geom.wkt == before
    # Inside the district the move is saved, and the page comes back to the shape.
    p = inside_norte(0.007, 0.007)
    response = client.post(url, {"geometry": polygon_json(p.x, p.y), "version": space.version})
    assert response.status_code == 302
    assert response["Location"].endswith("#shape")
    space.refresh_from_db()
    assert space.version == 2
    assert space.geom.centroid.distance(p) < 1e-9


def test_a_stale_version_is_refused(client, users, spaces):
    space = spaces["norte"]
    update_space(user=None, space=space, changes={"name": "Renamed"})
    p = inside_norte(0.007, 0.007)
    response = logged(client, users["norte"]).post(
        reverse("publicspaces:geometry", args=[space.pk]),
        {"geometry": polygon_json(p.x, p.y), "version": 1},
    )
    assert response.status_code == 400
    assert response.context["geometry_form"].non_field_errors()


def test_details_and_audit_are_saved(client, users, spaces):
    space = spaces["norte"]
    logged(client, users["norte"])
    response = client.post(
        reverse("publicspaces:edit", args=[space.pk]),
        {"name": "Parque Renovado", "kind": "park", "address": "", "condition": "degraded"},
    )
    assert response.status_code == 302
    answers = {
        "lighting": "2",
        "cleanliness": "1",
        "furniture": "1",
        "vegetation": "2",
        "visibility": "0",
        "incivility": "2",
    }
    response = client.post(reverse("publicspaces:audit", args=[space.pk]), answers)
    assert response.status_code == 302
    space.refresh_from_db()
    assert space.name == "Parque Renovado"
    assert space.condition_score == compute_condition_score({k: int(v) for k, v in answers.items()})
    history = client.get(reverse("publicspaces:detail", args=[space.pk])).context["history"]
    assert [row["record"].action for row in history][:2] == ["audited", "updated"]


# --- the recovery project, photos, activities ----------------------------------------------------


def _transition(client, project, status, date=""):
    return client.post(
        reverse("publicspaces:project-transition", args=[project.pk]),
        {f"t{project.pk}-to_status": status, f"t{project.pk}-date": date},
    )


def test_the_project_moves_step_by_step_with_only_the_allowed_buttons(
    client, users, spaces, media_root
):
    space = spaces["norte"]
    logged(client, users["norte"])
    response = client.post(
        reverse("publicspaces:project-create", args=[space.pk]),
        {
            "title": "Recuperar el parque",
            "identified_on": "2024-01-10",
            "partner_name": "Vecinos Unidos",
            "partner_kind": "community",
        },
    )
    assert response.status_code == 302
    project = space.projects.get()
    assert list(project.partners.values_list("name", flat=True)) == ["Vecinos Unidos"]

    def buttons():
        page = client.get(reverse("publicspaces:detail", args=[space.pk]))
        [block] = page.context["projects"]
        return [t["value"] for t in block["transitions"]]

    assert buttons() == list(allowed_transitions("identified"))
    # A step that skips one is refused, with the service's message.
    response = _transition(client, project, "recovered")
    assert response.status_code == 400
    assert "Identificado" in response.content.decode() or "Identified" in response.content.decode()
    project.refresh_from_db()
    assert project.status == "identified"

    assert _transition(client, project, "planned", "2024-02-01").status_code == 302
    assert buttons() == list(allowed_transitions("planned"))
    # A date before the previous step is refused next to the date.
    response = _transition(client, project, "in_works", "2024-01-15")
    assert response.status_code == 400
    [form] = [b["transition_form"] for b in response.context["projects"]]
    assert form.errors["date"]
    assert _transition(client, project, "in_works", "2024-03-01").status_code == 302
    space.refresh_from_db()
    assert space.condition == "in_recovery"

    response = client.post(
        reverse("publicspaces:project-photo", args=[project.pk]),
        {
            f"ph{project.pk}-stage": "during",
            f"ph{project.pk}-image": SimpleUploadedFile("obra.jpg", jpeg_bytes(), "image/jpeg"),
            f"ph{project.pk}-caption": "Obras",
        },
    )
    assert response.status_code == 302
    # "Recovered" publishes the space: the page says what is missing, and refuses.
    page = client.get(reverse("publicspaces:detail", args=[space.pk]))
    [block] = page.context["projects"]
    assert len(block["missing_evidence"]) == 2 and not block["may_waive"]
    assert f'name="t{project.pk}-evidence_waiver"' not in page.content.decode()
    response = _transition(client, project, "recovered", "2024-06-01")
    assert response.status_code == 400
    project.refresh_from_db()
    assert project.status == "in_works"
    answers = {item: "2" for item in AUDIT_ITEMS}
    audited = client.post(
        reverse("publicspaces:audit", args=[space.pk]), {**answers, "audited_on": "2024-05-30"}
    )
    assert audited.status_code == 302
    response = client.post(
        reverse("publicspaces:project-photo", args=[project.pk]),
        {
            f"ph{project.pk}-stage": "after",
            f"ph{project.pk}-image": SimpleUploadedFile("fin.jpg", jpeg_bytes(), "image/jpeg"),
        },
    )
    assert response.status_code == 302
    page = client.get(reverse("publicspaces:detail", args=[space.pk]))
    assert page.context["projects"][0]["missing_evidence"] == []
    assert _transition(client, project, "recovered", "2024-06-01").status_code == 302
    project.refresh_from_db()
    space.refresh_from_db()
    assert (project.status, project.recovered_on.isoformat()) == ("recovered", "2024-06-01")
    assert space.condition == "recovered"
    page = client.get(reverse("publicspaces:detail", args=[space.pk]))
    [block] = page.context["projects"]
    assert [s["date"].isoformat() if s["date"] else None for s in block["steps"]] == [
        "2024-01-10",
        "2024-02-01",
        "2024-03-01",
        "2024-06-01",
        None,
    ]
    assert [p.caption for p in block["photos"]] == ["Obras", ""]  # during, after


def test_a_file_that_is_not_an_image_is_refused_next_to_the_field(
    client, users, spaces, media_root
):
    project = create_project(user=None, space=spaces["norte"], title="P")
    response = logged(client, users["norte"]).post(
        reverse("publicspaces:project-photo", args=[project.pk]),
        {
            f"ph{project.pk}-stage": "before",
            f"ph{project.pk}-image": SimpleUploadedFile("x.jpg", b"not an image"),
        },
    )
    assert response.status_code == 400
    [block] = response.context["projects"]
    assert block["photo_form"].errors["image"]
    assert project.photos.count() == 0
    # The page's script puts the space page's URL (at the project) in the address bar, so
    # a reload does not send the form again.
    page_url = reverse("publicspaces:detail", args=[spaces["norte"].pk]) + f"#project-{project.pk}"
    assert response.context["page_url"] == page_url
    assert f'data-page-url="{page_url}"' in response.content.decode()


def test_photo_files_follow_the_scope_until_the_space_is_public(client, users, spaces, media_root):
    space = spaces["norte"]
    project = create_project(user=None, space=space, title="P")
    photo = add_photo(
        user=None,
        project=project,
        image=SimpleUploadedFile("a.jpg", jpeg_bytes(), content_type="image/jpeg"),
        stage="before",
    )
    url = photo.image.url
    assert url.startswith("/media/publicspaces/photos/")
    response = logged(client, users["norte"]).get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["Cache-Control"] == "private, no-store"
    assert b"".join(response.streaming_content)[:2] == b"\xff\xd8"
    client.logout()
    assert client.get(url).status_code == 404
    assert logged(client, users["sur"]).get(url).status_code == 404
    client.logout()
    # Recovered: on the public layer, so anyone may load it.
    for status in ("planned", "in_works", "recovered"):
        transition_project(
            user=None, project=project, to_status=status, evidence_waiver="Acta de entrega"
        )
    public_urls = [
        p["url"]
        for f in json.loads(b"".join(client.get(reverse("publicspace-public")).streaming_content))[
            "features"
        ]
        for p in f["properties"]["photos"]
    ]
    assert public_urls == [url]
    response = client.get(url)
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("public")
    # Nothing else under MEDIA_ROOT is reachable through the photo route.
    (media_root / "publicspaces" / "photos" / "stray.jpg").write_bytes(jpeg_bytes())
    assert client.get("/media/publicspaces/photos/stray.jpg").status_code == 404


def test_activities_are_logged_with_their_checks(client, users, spaces):
    space = spaces["norte"]
    url = reverse("publicspaces:activity-create", args=[space.pk])
    logged(client, users["norte"])
    response = client.post(
        url, {"date": "2024-05-01", "kind": "sport", "participants": "5", "children": "9"}
    )
    assert response.status_code == 400
    assert response.context["activity_form"].errors["participants"]
    response = client.post(
        url,
        {
            "date": "2024-05-01",
            "kind": "sport",
            "title": "Fulbito",
            "participants": "12",
            "children": "4",
            "youth": "8",
        },
    )
    assert response.status_code == 302
    assert response["Location"].endswith("#activities")
    activity = space.activities.get()
    assert (activity.title, activity.participants, activity.created_by) == (
        "Fulbito",
        12,
        users["norte"],
    )
    page = client.get(reverse("publicspaces:detail", args=[space.pk]))
    assert "Fulbito" in page.content.decode()


# --- the list and its CSV ---------------------------------------------------------------------------


def _csv(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def test_list_filters_and_csv_export_share_the_filter_and_the_scope(client, users, spaces):
    create_project(user=None, space=spaces["norte"], title="P")
    logged(client, users["norte"])
    list_url = reverse("publicspaces:list")
    export_url = reverse("publicspaces:export")
    filters = {
        "?kind=park": {"Parque Norte"},
        "?kind=lighting_point": {"=HYPERLINK(1)"},
        "?project_status=identified": {"Parque Norte"},
        "?project_status=none": {"=HYPERLINK(1)"},
        "?q=parque": {"Parque Norte"},
        "?condition=recovered": set(),
        "": {"Parque Norte", "=HYPERLINK(1)"},
    }
    for query, names in filters.items():
        page = client.get(list_url + query).context["page"]
        assert {s.name for s in page.object_list} == names, query
        rows = _csv(client.get(export_url + query))
        # Formula-like text is neutralised for spreadsheets.
        assert {r["name"].removeprefix("'") for r in rows} == names, query
    response = client.get(export_url)
    assert response["Content-Type"].startswith("text/csv")
    rows = {r["id"]: r for r in _csv(response)}
    park = rows[str(spaces["norte"].pk)]
    assert (park["kind"], park["district"], park["project_status"]) == (
        "park",
        "Norte",
        "identified",
    )
    assert abs(float(park["longitude"]) - spaces["norte"].geom.centroid.x) < 1e-6
    assert rows[str(spaces["norte_lamp"].pk)]["name"] == "'=HYPERLINK(1)"
    # Program staff export both districts.
    rows = _csv(logged(client, users["program"]).get(export_url))
    assert {r["district"] for r in rows} == {"Norte", "Sur"}


# --- languages --------------------------------------------------------------------------------


def test_pages_render_in_spanish_by_default_and_switch_to_english(client, users, spaces):
    logged(client, users["norte"])
    url = reverse("publicspaces:detail", args=[spaces["norte"].pk])
    response = client.get(url)
    html = response.content.decode()
    assert '<html lang="es">' in html
    assert 'name="language" value="en"' in html
    # Choice labels come through gettext: the model's Spanish translation when it exists.
    kind_label = response.context["space"].get_kind_display()
    assert kind_label in html
    response = client.post(reverse("set_language"), {"language": "en", "next": url})
    assert response.status_code == 302 and response["Location"] == url
    html = client.get(url).content.decode()
    assert '<html lang="en">' in html
    assert "Audit checklist" in html and "Recovery project" in html


# --- map layer settings --------------------------------------------------------------------------


def test_planner_layer_settings_are_for_readers_of_every_district(client, users):
    url = reverse("publicspaces:planner-layer")
    data = logged(client, users["planner"]).get(url).json()
    assert data["api"] == reverse("publicspace-incident-change")
    assert data["labels"]["distance"]
    assert logged(client, users["norte"]).get(url).status_code == 403


def test_an_oversized_photo_upload_on_the_page_is_refused_before_it_is_read(
    client, users, spaces, settings, media_root
):
    project = create_project(user=None, space=spaces["norte"], title="P")
    settings.PUBLICSPACES_PHOTO_MAX_BYTES = 1000
    response = logged(client, users["norte"]).post(
        reverse("publicspaces:project-photo", args=[project.pk]),
        data=b"x" * 200_000,
        content_type="multipart/form-data; boundary=zzz",
    )
    assert response.status_code == 413
    assert not project.photos.exists()


def test_date_fields_keep_their_value_on_spanish_pages(client, users, spaces):
    """<input type=date> only takes yyyy-mm-dd: the Spanish date format would empty it."""
    space = spaces["norte"]
    logged(client, users["norte"])
    answers = {item: "2" for item in AUDIT_ITEMS}
    response = client.post(
        reverse("publicspaces:audit", args=[space.pk]), {**answers, "audited_on": "2025-11-01"}
    )
    assert response.status_code == 302
    response = client.get(reverse("publicspaces:detail", args=[space.pk]))
    html = response.content.decode()
    assert '<html lang="es">' in html
    assert re.search(r'<input type="date" name="audited_on" value="2025-11-01"', html)
    assert "01/11/2025" not in html
    # Re-saving the form as the browser sends it keeps the date.
    client.post(
        reverse("publicspaces:audit", args=[space.pk]), {**answers, "audited_on": "2025-11-01"}
    )
    space.refresh_from_db()
    assert space.audited_on == datetime.date(2025, 11, 1)
    # Every date input of the page's forms is written the same way.
    for form_class, field in (
        (forms.ActivityForm, "date"),
        (forms.ProjectForm, "identified_on"),
        (forms.TransitionForm, "date"),
        (forms.PhotoForm, "taken_on"),
    ):
        with translation.override("es"):
            html = str(form_class(initial={field: datetime.date(2024, 2, 3)})[field])
        assert 'type="date"' in html and 'value="2024-02-03"' in html, form_class


# --- the history -----------------------------------------------------------------------------


def _history(client, space) -> list[dict]:
    return client.get(reverse("publicspaces:detail", args=[space.pk])).context["history"]


def _changes_of(row) -> dict:
    return {str(c["field"]): (c["old"], c["new"]) for c in row["changes"]}


def test_the_history_shows_names_shapes_and_each_change_once(client, users, spaces, districts):
    space = spaces["norte"]
    partner = get_or_create_partner(user=None, name="Vecinos Unidos", kind="community")
    project = create_project(
        user=None,
        space=space,
        title="Recuperar",
        identified_on=datetime.date(2024, 1, 10),
        partners=[partner.pk],
    )
    for status, day in (("planned", 1), ("in_works", 2), ("recovered", 3)):
        transition_project(
            user=None,
            project=project,
            to_status=status,
            on=datetime.date(2024, 2, day),
            evidence_waiver="Acta de entrega",
        )
    p = inside_norte(0.003, 0.003)
    update_space(user=None, space=space, changes={"geom": square(p.x, p.y)})
    logged(client, users["norte"])
    client.post(reverse("set_language"), {"language": "en"})
    rows = _history(client, space)
    html = client.get(reverse("publicspaces:detail", args=[space.pk])).content.decode()

    created = _changes_of(
        next(
            r
            for r in rows
            if r["record"].object_type == "publicspace" and r["record"].action == "created"
        )
    )
    assert created["District"] == (None, districts["norte"].name)
    assert created["Neighborhood"] == (None, "Barrio Norte A")
    assert created["Geometry"] == (None, "an area")
    moved = _changes_of(rows[0])
    assert moved == {"Geometry": (None, "shape changed")}
    history_html = html[html.index('<section id="history"') :]
    history_html = history_html[: history_html.index("</section>")]
    assert "coordinates" not in history_html and "(shape)" not in history_html
    assert f"District</span>: {districts['norte'].name}" in history_html

    project_created = _changes_of(
        next(
            r
            for r in rows
            if r["record"].object_type == "recoveryproject" and r["record"].action == "created"
        )
    )
    assert project_created["Partners"] == (None, "Vecinos Unidos")
    recovered = next(
        r
        for r in rows
        if r["record"].action == "transition"
        and r["record"].changes.get("status") == ["in_works", "recovered"]
    )
    labels = [str(c["field"]) for c in recovered["changes"]]
    assert labels.count("Recovered on") == 1
    assert _changes_of(recovered)["Recovered on"] == ("—", "2024-02-03")


def test_history_titles_follow_the_readers_language(client, users, spaces, media_root):
    space = spaces["norte"]
    project = create_project(user=None, space=space, title="Recuperar")
    with translation.override("en"):
        log_activity(
            user=None,
            space=space,
            date=datetime.date(2024, 2, 1),
            kind="workshop",
            participants=3,
            project=project,
        )
        add_photo(
            user=None,
            project=project,
            stage="before",
            image=SimpleUploadedFile("a.jpg", jpeg_bytes(), content_type="image/jpeg"),
        )
    # Stored in the writer's language...
    record_titles = {r.object_type: r.object_repr for r in space.changes.all()}
    assert record_titles["activity"] == "Workshop 2024-02-01"
    assert record_titles["projectphoto"] == "Recuperar — Before"
    # ...shown in the reader's.
    logged(client, users["norte"])
    rows = {r["record"].object_type: r for r in _history(client, space)}
    assert rows["activity"]["title"] == "Taller 2024-02-01"
    assert rows["projectphoto"]["title"] == "Recuperar — Antes"
    assert _changes_of(rows["activity"])["Proyecto"] == (None, "Recuperar")
    html = client.get(reverse("publicspaces:detail", args=[space.pk])).content.decode()
    assert "Taller 2024-02-01" in html and "Workshop 2024-02-01" not in html
    client.post(reverse("set_language"), {"language": "en"})
    rows = {r["record"].object_type: r for r in _history(client, space)}
    assert rows["activity"]["title"] == "Workshop 2024-02-01"


def test_the_activity_form_starts_on_the_regions_date(
    client, users, spaces, districts, settings, monkeypatch
):
    """At 22:00 in Lima the server (UTC) is already on the next day, which the services
    would refuse as a future date."""
    region = districts["region"]
    region.time_zone = "America/Lima"
    region.save()
    settings.TIME_ZONE = "UTC"
    logged(client, users["norte"])
    now = datetime.datetime(2025, 12, 1, 3, 0, tzinfo=datetime.UTC)
    monkeypatch.setattr(timezone, "now", lambda: now)
    response = client.get(reverse("publicspaces:detail", args=[spaces["norte"].pk]))
    form = response.context["activity_form"]
    assert str(form["date"].value()) == "2025-11-30"
    assert 'name="date" value="2025-11-30"' in response.content.decode()
