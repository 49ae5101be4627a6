"""Role groups and what each may do. Applied after every migrate (idempotent)."""

from accounts.models import Role

# app_label.codename for each role; later apps add their own entries here.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.PLANNER: [
        "neighborhoods.view_region",
        "neighborhoods.view_district",
        "neighborhoods.view_neighborhood",
        "incidents.view_incident",
        "incidents.view_category",
        "incidents.view_incidentsource",
        "incidents.view_sourcelabel",
        "incidents.change_sourcelabel",
        "incidents.view_importbatch",
        "incidents.add_importbatch",
        "incidents.view_refusedrow",
    ],
    Role.MUNICIPAL: [
        "neighborhoods.view_district",
        "neighborhoods.view_neighborhood",
    ],
    Role.PROGRAM: [
        "neighborhoods.view_region",
        "neighborhoods.view_district",
        "neighborhoods.view_neighborhood",
        "neighborhoods.add_neighborhood",
        "neighborhoods.change_neighborhood",
    ],
}


def ensure_role_groups(**kwargs) -> None:
    from django.contrib.auth.models import Group, Permission

    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for dotted in perms:
            app_label, codename = dotted.split(".")
            permission = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if permission is not None:
                wanted.append(permission)
        group.permissions.set(wanted)


def user_has_role(user, role: str) -> bool:
    return user.is_authenticated and (user.is_superuser or user.groups.filter(name=role).exists())


def is_planner(user) -> bool:
    """Police planners (and superusers) may read raw incidents; nobody else."""
    return user_has_role(user, Role.PLANNER)
