from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    """Each role is a Django group of the same name (created by a migration)."""

    PLANNER = "planner", _("Police planner")
    MUNICIPAL = "municipal", _("Municipal staff")
    PROGRAM = "program", _("Program staff")


class StaffProfile(models.Model):
    """Links a municipal user to the one district they work in."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="staff_profile",
        verbose_name=_("user"),
    )
    district = models.ForeignKey(
        "neighborhoods.District",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        help_text=_("Required for municipal staff: they see and edit only this district."),
        verbose_name=_("district"),
    )
    # A region code, not a key: a region reloaded or removed leaves a stale choice that
    # the maps ignore, never a failed delete.
    map_region = models.CharField(
        max_length=40,
        blank=True,
        help_text=_("The region this user's maps open on (chosen with the map's region picker)."),
        verbose_name=_("map region"),
    )

    class Meta:
        verbose_name = _("staff profile")
        verbose_name_plural = _("staff profiles")

    def __str__(self) -> str:
        return f"{self.user} — {self.district or '-'}"
