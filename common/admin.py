"""Admin pieces every app uses."""


class ReadOnlyAdminMixin:
    """Records that services make (runs, imports): shown in the admin, never added or
    changed there."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ViewOnlyAdminMixin(ReadOnlyAdminMixin):
    """Read-only records that are not deleted by hand either (their service owns that)."""

    def has_delete_permission(self, request, obj=None):
        return False
