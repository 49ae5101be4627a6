"""Who sees and edits which public spaces (the municipal scope, enforced on the server).

* Superusers and program staff: see and edit every space.
* Municipal staff: see and edit only the spaces of the one district of their StaffProfile
  (a municipal account without a district sees nothing). Another district's space does not
  exist for them: the API, the admin and the pages answer 404.
* Police planners: read every space (their map layer, the incidents around recovered
  spaces), edit none.
* Everyone else, anonymous visitors included: only the public layer
  (``selectors.public_spaces``).

A user with several roles gets the widest reading and the widest editing right of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from accounts.models import Role, StaffProfile


@dataclass(frozen=True)
class SpaceScope:
    view_all: bool = False
    edit_all: bool = False
    # The municipal user's district id (None when they have none, or are not municipal).
    district_id: int | None = None

    @property
    def can_edit(self) -> bool:
        return self.edit_all or self.district_id is not None

    @property
    def can_view(self) -> bool:
        return self.view_all or self.district_id is not None

    def visible(self, queryset: QuerySet, district_field: str = "district") -> QuerySet:
        """``queryset`` restricted to what this scope may read (``district_field`` is the
        path to the space's district, e.g. ``space__district`` for activities)."""
        if self.view_all:
            return queryset
        if self.district_id is not None:
            return queryset.filter(**{f"{district_field}_id": self.district_id})
        return queryset.none()

    def editable(self, queryset: QuerySet, district_field: str = "district") -> QuerySet:
        if self.edit_all:
            return queryset
        if self.district_id is not None:
            return queryset.filter(**{f"{district_field}_id": self.district_id})
        return queryset.none()

    def may_edit_district(self, district_id: int | None) -> bool:
        return self.edit_all or (self.district_id is not None and self.district_id == district_id)

    def may_view_district(self, district_id: int | None) -> bool:
        return self.view_all or (self.district_id is not None and self.district_id == district_id)


SYSTEM = SpaceScope(view_all=True, edit_all=True)


def scope_for(user) -> SpaceScope:
    """The scope of ``user``; ``None`` is the system itself (imports, the demo)."""
    if user is None:
        return SYSTEM
    if not user.is_authenticated or not user.is_active:
        return SpaceScope()
    if user.is_superuser:
        return SYSTEM
    roles = set(user.groups.values_list("name", flat=True))
    edit_all = Role.PROGRAM in roles
    view_all = edit_all or Role.PLANNER in roles
    district_id = None
    if Role.MUNICIPAL in roles and not edit_all:
        district_id = (
            StaffProfile.objects.filter(user=user).values_list("district_id", flat=True).first()
        )
    return SpaceScope(view_all=view_all, edit_all=edit_all, district_id=district_id)
