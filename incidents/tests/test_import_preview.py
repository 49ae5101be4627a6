"""The upload preview: the first rows of the file, a column per role preset to the guess,
and the import started with the columns chosen (tasks run inline in the test settings)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import Role
from incidents.models import ImportBatch, Incident
from incidents.services import previews
from tests.geodata import grid_cell

pytestmark = [pytest.mark.django_db]

# "fecha" is guessed as the date and "delito" as the category; "tipo" is not guessed.
CSV = (
    "folio,fecha,delito,tipo,latitud,longitud\n"
    "F1,2024-03-01 10:00,ROBO,Hurto,-12.095,-77.095\n"
    "F2,2024-03-02 22:30,ROBO,Hurto,-12.095,-77.085\n"
    "F3,2024-03-03,GRAFITI,Daños,-12.094,-77.094\n"
)
STEP_ONE = {"source": "test-src", "timezone": "America/Lima"}
CHOSEN = {
    "source": "test-src",
    "timezone": "America/Lima",
    "lon": "longitud",
    "lat": "latitud",
    "date": "fecha",
    "category": "delito",
    "id": "folio",
}


@pytest.fixture(autouse=True)
def uploads(settings, tmp_path):
    settings.INCIDENT_UPLOAD_ROOT = str(tmp_path / "uploads")
    return tmp_path / "uploads"


@pytest.fixture
def region(make_region):
    return make_region("testville", {"D1": ("Uno", grid_cell(0)), "D2": ("Dos", grid_cell(1))})


def _planner(django_user_model, name):
    user = django_user_model.objects.create_user(name, password="x")
    user.groups.add(Group.objects.get(name=Role.PLANNER))
    return user


@pytest.fixture
def planner_client(client, django_user_model):
    client.force_login(_planner(django_user_model, "planner"))
    client.cookies.load({"django_language": "en"})
    return client


def _csv(text: str = CSV, name: str = "incidents.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def _upload(client, text: str = CSV, **options):
    return client.post(
        reverse("incidents:import-new"), {**STEP_ONE, **options, "files": _csv(text)}
    )


def _previews_kept(uploads: Path) -> list[str]:
    folder = uploads / previews.PREVIEW_FOLDER
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _token(response) -> str:
    assert response.status_code == 302, response.content.decode()[:2000]
    return response["Location"].rstrip("/").rsplit("/", 1)[-1]


def test_the_upload_shows_the_first_rows_and_the_guessed_columns(planner_client, region, uploads):
    response = _upload(planner_client)
    token = _token(response)
    assert response["Location"] == reverse("incidents:import-preview", args=[token])
    assert not ImportBatch.objects.exists()  # nothing starts before the confirmation
    assert _previews_kept(uploads) == [token]

    page = planner_client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert "Check the columns before importing" in html
    for value in ("F1", "F3", "Hurto", "Daños", "-77.085", "folio", "tipo"):
        assert value in html, value
    initial = {name: page.context["form"][name].value() for name in previews.ROLES}
    assert initial == {
        "lon": "longitud",
        "lat": "latitud",
        "x": "",
        "y": "",
        "date": "fecha",
        "time": "",
        "date_end": "",
        "time_end": "",
        "category": "delito",
        "id": "",  # an id is never guessed
    }
    assert '<option value="longitud" selected>longitud</option>' in html
    assert page.context["form"]["timezone"].value() == "America/Lima"

    planner_client.cookies.load({"django_language": "es"})
    html = planner_client.get(response["Location"]).content.decode()
    assert "Revise las columnas antes de importar" in html
    assert "— ninguna —" in html


def test_the_import_uses_the_columns_chosen(planner_client, region, uploads):
    token = _token(_upload(planner_client))
    # The category read from "tipo", not the guessed "delito"; the ids from "folio".
    response = planner_client.post(
        reverse("incidents:import-preview", args=[token]), {**CHOSEN, "category": "tipo"}
    )
    batch = ImportBatch.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("incidents:import-detail", args=[batch.pk])
    assert batch.status == ImportBatch.Status.SUCCEEDED and batch.rows_created == 3
    assert batch.options["columns"] == {
        **{k: CHOSEN[k] for k in previews.ROLES if k in CHOSEN},
        "category": "tipo",
    }
    assert batch.options["exact_columns"] is True
    assert set(Incident.objects.values_list("label__label", flat=True)) == {"Hurto", "Daños"}
    assert set(Incident.objects.values_list("external_id", flat=True)) == {"F1", "F2", "F3"}
    assert _previews_kept(uploads) == []  # removed once the batch has its files
    # The same token cannot start a second import.
    again = planner_client.post(reverse("incidents:import-preview", args=[token]), CHOSEN)
    assert again.status_code == 400 and ImportBatch.objects.count() == 1


def test_none_is_not_guessed_again(planner_client, region):
    # "time" would be guessed; the planner says the file has no time column.
    text = "fecha,time,delito,latitud,longitud\n2024-03-01,nonsense,ROBO,-12.095,-77.095\n"
    token = _token(_upload(planner_client, text))
    page = planner_client.get(reverse("incidents:import-preview", args=[token]))
    assert page.context["form"]["time"].value() == "time"
    chosen = {k: v for k, v in CHOSEN.items() if k != "id"}
    planner_client.post(reverse("incidents:import-preview", args=[token]), {**chosen, "time": ""})
    batch = ImportBatch.objects.get()
    assert batch.status == ImportBatch.Status.SUCCEEDED, batch.report
    assert Incident.objects.get().time_precision == "day"


def test_a_column_chosen_twice_is_a_form_error(planner_client, region, uploads):
    token = _token(_upload(planner_client))
    response = planner_client.post(
        reverse("incidents:import-preview", args=[token]), {**CHOSEN, "id": "fecha"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["id"] == [
        "The column “fecha” is already chosen for “Date column”."
    ]
    assert "already chosen" in response.content.decode()
    assert not ImportBatch.objects.exists()
    assert _previews_kept(uploads) == [token]  # the planner can fix it and confirm


@pytest.mark.parametrize(
    ("missing", "field", "message"),
    [
        ("date", "date", "Choose the column with the date."),
        ("category", "category", "Choose the category column, or give a label for every row."),
        (
            "lon+lat",
            "lon",
            "Choose the longitude and latitude columns, or the X and Y columns.",
        ),
        ("lat", "lat", "Latitude and longitude columns go together."),
    ],
)
def test_a_required_role_left_empty_is_a_form_error(
    planner_client, region, missing, field, message
):
    token = _token(_upload(planner_client))
    posted = {**CHOSEN, **dict.fromkeys(missing.split("+"), "")}
    response = planner_client.post(reverse("incidents:import-preview", args=[token]), posted)
    assert response.status_code == 200
    assert message in response.context["form"].errors[field]
    assert message in response.content.decode()
    assert not ImportBatch.objects.exists()


def test_a_label_for_every_row_replaces_the_category(planner_client, region):
    token = _token(_upload(planner_client))
    posted = {**CHOSEN, "category": "", "label": "Robo"}
    planner_client.post(reverse("incidents:import-preview", args=[token]), posted)
    assert set(Incident.objects.values_list("label__label", flat=True)) == {"Robo"}


def test_a_column_the_file_does_not_have_is_refused(planner_client, region):
    token = _token(_upload(planner_client))
    response = planner_client.post(
        reverse("incidents:import-preview", args=[token]), {**CHOSEN, "id": "../../etc/passwd"}
    )
    assert response.status_code == 200
    assert "id" in response.context["form"].errors
    assert not ImportBatch.objects.exists()


@pytest.mark.parametrize(
    "text",
    [
        "a,b\n1,2\n1,2,3,4\n",  # a row with more fields than the header
        'a,"b\n1,2\n',  # a quote never closed
        "\x00\x01\x02\x03PK\x03\x04garbage",  # a binary file named .csv
        "\n\n\n",  # no header at all
    ],
)
def test_an_unreadable_file_is_a_form_error_and_nothing_is_kept(
    planner_client, region, uploads, text
):
    response = _upload(planner_client, text)
    assert response.status_code == 200
    errors = response.context["form"].errors["files"]
    assert errors and all("incidents.csv" in e for e in errors), errors
    assert "incidents.csv" in response.content.decode()
    assert _previews_kept(uploads) == []
    assert not ImportBatch.objects.exists()


def test_the_token_of_another_user_is_refused(
    planner_client, django_user_model, client, region, uploads
):
    token = _token(_upload(planner_client))
    from django.test import Client

    other = Client()
    other.force_login(_planner(django_user_model, "other"))
    other.cookies.load({"django_language": "en"})
    url = reverse("incidents:import-preview", args=[token])
    for response in (other.get(url), other.post(url, CHOSEN)):
        assert response.status_code == 400
        assert "belongs to somebody else" in response.content.decode()
    # Even with the token in their own session: the preview names who uploaded it.
    session = other.session
    session["import_previews"] = [token]
    session.save()
    assert other.post(url, CHOSEN).status_code == 400
    assert not ImportBatch.objects.exists()
    assert _previews_kept(uploads) == [token]  # still the owner's to confirm
    assert planner_client.post(url, CHOSEN).status_code == 302


@pytest.mark.parametrize("token", ["short", "A" * 31 + ".", "..%2F..%2Fetc"])
def test_a_malformed_token_is_refused(planner_client, token):
    response = planner_client.get(f"{reverse('incidents:import-new')}{token}/")
    assert response.status_code in (400, 404)


def test_a_preview_is_removed_after_a_day(planner_client, region, uploads):
    token = _token(_upload(planner_client))
    folder = uploads / previews.PREVIEW_FOLDER / token
    day_ago = time.time() - previews.PREVIEW_MAX_AGE_S - 60
    for path in (folder, folder / previews.META):
        os.utime(path, (day_ago, day_ago))
    response = planner_client.get(reverse("incidents:import-preview", args=[token]))
    assert response.status_code == 400
    assert _previews_kept(uploads) == []


def test_cancel_removes_the_preview(planner_client, region, uploads):
    token = _token(_upload(planner_client))
    response = planner_client.post(
        reverse("incidents:import-preview", args=[token]), {"cancel": "1"}
    )
    assert response.status_code == 302 and response["Location"] == reverse("incidents:import-new")
    assert _previews_kept(uploads) == []


def test_a_form_naming_columns_still_imports_at_once(planner_client, region, uploads):
    response = _upload(planner_client, **{k: v for k, v in CHOSEN.items() if k in previews.ROLES})
    batch = ImportBatch.objects.get()
    assert response.status_code == 302 and batch.rows_created == 3
    assert "exact_columns" not in batch.options
    assert _previews_kept(uploads) == []


def test_the_command_takes_exact_columns(region, tmp_path):
    from django.core.management import call_command

    path = tmp_path / "exact.csv"
    path.write_text(
        "fecha,time,delito,latitud,longitud\n2024-03-01,nonsense,ROBO,-12.095,-77.095\n"
    )
    call_command(
        "import_incidents", str(path), source="cli", date="fecha", category="delito",
        lat="latitud", lon="longitud", timezone="America/Lima", exact_columns=True, verbosity=0,
    )  # fmt: skip
    assert Incident.objects.get().time_precision == "day"
