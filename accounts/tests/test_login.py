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


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "landing"),
    [
        (Role.PLANNER, "planner-map"),
        (Role.MUNICIPAL, "publicspaces:map"),
        (Role.PROGRAM, "publicspaces:map"),
    ],
)
def test_signing_in_without_a_next_page_lands_on_the_roles_start_page(
    client, django_user_model, role, landing
):
    user = django_user_model.objects.create_user("ana", password="a-Long-pass-123")
    user.groups.add(Group.objects.get(name=role))
    signed_in = client.post(reverse("login"), {"username": "ana", "password": "a-Long-pass-123"})
    assert signed_in.status_code == 302
    home = client.get(signed_in["Location"])
    assert home.status_code == 302 and home["Location"] == reverse(landing)


@pytest.mark.django_db
def test_an_account_without_a_role_gets_a_page_that_says_so(client, django_user_model):
    django_user_model.objects.create_user("ana", password="a-Long-pass-123")
    client.post(reverse("login"), {"username": "ana", "password": "a-Long-pass-123"})
    page = client.get(reverse("accounts-home"))
    assert page.status_code == 403
    assert "no tiene un rol" in page.content.decode()


@pytest.mark.django_db
def test_a_forbidden_page_explains_itself_and_links_home(client, django_user_model):
    user = django_user_model.objects.create_user("ana", password="a-Long-pass-123")
    user.groups.add(Group.objects.get(name=Role.MUNICIPAL))
    client.force_login(user)
    page = client.get(reverse("planner-map"))
    assert page.status_code == 403
    html = page.content.decode()
    assert reverse("accounts-home") in html and 'lang="es"' in html
    assert "no es para su rol" in html
