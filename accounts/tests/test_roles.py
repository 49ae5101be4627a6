import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from accounts.models import Role
from accounts.roles import ROLE_PERMISSIONS, ensure_role_groups, user_has_role


@pytest.mark.django_db
def test_every_role_has_a_group_with_its_permissions():
    for role, perms in ROLE_PERMISSIONS.items():
        group = Group.objects.get(name=role)
        granted = {
            f"{p.content_type.app_label}.{p.codename}"
            for p in group.permissions.select_related("content_type")
        }
        assert granted == set(perms)


@pytest.mark.django_db
def test_role_groups_are_idempotent():
    ensure_role_groups()
    call_command("migrate", verbosity=0)
    assert Group.objects.filter(name__in=[r.value for r in Role]).count() == len(Role)


@pytest.mark.django_db
def test_only_program_staff_may_edit_neighborhoods(django_user_model):
    program = django_user_model.objects.create_user("prog", password="x", is_staff=True)
    program.groups.add(Group.objects.get(name=Role.PROGRAM))
    municipal = django_user_model.objects.create_user("muni", password="x", is_staff=True)
    municipal.groups.add(Group.objects.get(name=Role.MUNICIPAL))
    assert program.has_perm("neighborhoods.change_neighborhood")
    assert not municipal.has_perm("neighborhoods.change_neighborhood")
    assert not municipal.has_perm("neighborhoods.change_district")
    assert user_has_role(program, Role.PROGRAM)
    assert not user_has_role(municipal, Role.PROGRAM)


@pytest.mark.django_db
def test_planners_read_hotspot_runs_in_the_admin_and_cannot_change_them(client, django_user_model):
    from django.urls import reverse

    planner = django_user_model.objects.create_user("plan", password="x", is_staff=True)
    planner.groups.add(Group.objects.get(name=Role.PLANNER))
    municipal = django_user_model.objects.create_user("muni", password="x", is_staff=True)
    municipal.groups.add(Group.objects.get(name=Role.MUNICIPAL))
    runs = reverse("admin:hotspots_hotspotrun_changelist")

    client.force_login(planner)
    assert client.get(runs).status_code == 200
    assert client.get(reverse("admin:hotspots_hotspotrun_add")).status_code == 403
    assert not planner.has_perm("hotspots.delete_hotspotrun")
    client.force_login(municipal)
    assert client.get(runs).status_code == 403
