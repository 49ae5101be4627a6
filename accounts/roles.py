"""Role groups and what each may do. Applied after every migrate (idempotent)."""

from accounts.models import Role

# Municipal and program staff keep public spaces (scoped to a district for municipal staff
# by publicspaces.scope); planners read them.
_PUBLICSPACES_EDIT = [
    f"publicspaces.{action}_{model}"
    for model in ("publicspace", "recoveryproject", "projectphoto", "activity")
    for action in ("view", "add", "change", "delete")
] + ["publicspaces.view_partner", "publicspaces.add_partner", "publicspaces.view_changerecord"]
_PUBLICSPACES_READ = [
    f"publicspaces.view_{model}"
    for model in ("publicspace", "recoveryproject", "projectphoto", "activity", "partner")
]

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
        # Their runs in the admin too (read-only there; the pages and API run them).
        "hotspots.view_hotspotrun",
        "hotspots.view_hotspotzone",
        "hotspots.view_hotspotvalidation",
        *_PUBLICSPACES_READ,
    ],
    Role.MUNICIPAL: [
        "neighborhoods.view_district",
        "neighborhoods.view_neighborhood",
        *_PUBLICSPACES_EDIT,
    ],
    Role.PROGRAM: [
        "neighborhoods.view_region",
        "neighborhoods.view_district",
        "neighborhoods.view_neighborhood",
        "neighborhoods.add_neighborhood",
        "neighborhoods.change_neighborhood",
        *_PUBLICSPACES_EDIT,
    ],
}


def ensure_role_groups(**kwargs) -> None:
    from django.contrib.auth.models import Group, Permission

    # One query for every permission named: this runs after each migrate and test flush.
    named = {tuple(dotted.split(".")) for perms in ROLE_PERMISSIONS.values() for dotted in perms}
    known = {
        (p.content_type.app_label, p.codename): p
        for p in Permission.objects.filter(
            codename__in={codename for _, codename in named},
            content_type__app_label__in={app_label for app_label, _ in named},
        ).select_related("content_type")
    }
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = [known[key] for key in (tuple(d.split(".")) for d in perms) if key in known]
        group.permissions.set(wanted)


def user_has_role(user, role: str) -> bool:
    return user.is_authenticated and (user.is_superuser or user.groups.filter(name=role).exists())


def is_planner(user) -> bool:
    """Police planners (and superusers) may read raw incidents; nobody else."""
    return user_has_role(user, Role.PLANNER)
