import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.models import Role


@pytest.mark.django_db
def test_a_planner_without_admin_access_signs_in_and_reaches_the_planner_map(
    client, django_user_model
):
    planner = django_user_model.objects.create_user("ana", password="a-Long-pass-123")
    planner.groups.add(Group.objects.get(name=Role.PLANNER))
    redirect = client.get(reverse("planner-map"))
    assert redirect.status_code == 302
    assert redirect["Location"].startswith(reverse("login"))
    page = client.get(redirect["Location"])
    assert page.status_code == 200 and "Iniciar sesión" in page.content.decode()
    signed_in = client.post(
        reverse("login"),
        {"username": "ana", "password": "a-Long-pass-123", "next": reverse("planner-map")},
    )
    assert signed_in.status_code == 302 and signed_in["Location"] == reverse("planner-map")
    assert client.get(reverse("planner-map")).status_code == 200


@pytest.mark.django_db
def test_a_wrong_password_is_refused_in_both_languages(client, django_user_model):
    django_user_model.objects.create_user("ana", password="a-Long-pass-123")
    response = client.post(reverse("login"), {"username": "ana", "password": "nope"})
    assert response.status_code == 200
    assert "no coinciden" in response.content.decode()
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    response = client.post(reverse("login"), {"username": "ana", "password": "nope"})
    assert "do not match" in response.content.decode()
