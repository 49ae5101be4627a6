"""The precomputed public tables: the only data the public map and API read.

They hold counts per H3 cell, month and public category that have passed
public/privacy.py (no sensitive or unclassified category, no count below k, no month
inside the lag), and nothing else: no incident id, no coordinate, no day.
public.services.refresh rebuilds them from incidents.selectors.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from incidents.models import Category, Family


class PublicCellCount(models.Model):
    region = models.ForeignKey(
        "neighborhoods.Region", on_delete=models.CASCADE, verbose_name=_("region")
    )
    # An H3 index as its hexadecimal string (e.g. "8928308280fffff").
    cell = models.CharField(max_length=16, db_collation="C", verbose_name=_("H3 cell"))
    resolution = models.PositiveSmallIntegerField(verbose_name=_("H3 resolution"))
    # The first day of the month, in the region's time zone.
    month = models.DateField(verbose_name=_("month"))
    category = models.ForeignKey(
        Category,
        on_delete=models.CASCADE,
        limit_choices_to={"sensitive": False, "unclassified": False},
        verbose_name=_("category"),
    )
    family = models.CharField(max_length=20, choices=Family.choices, verbose_name=_("family"))
    count = models.PositiveIntegerField(verbose_name=_("count"))

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["region", "resolution", "cell", "month", "category"],
                name="public_cell_count_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["region", "resolution", "month"], name="public_cell_region_month"),
        ]
        verbose_name = _("public cell count")
        verbose_name_plural = _("public cell counts")

    def __str__(self) -> str:
        return f"{self.cell} {self.month:%Y-%m} {self.category_id}: {self.count}"


class PublicRefresh(models.Model):
    """When a region's public tables were last rebuilt, and how many rows they got."""

    region = models.OneToOneField(
        "neighborhoods.Region",
        on_delete=models.CASCADE,
        related_name="public_refresh",
        verbose_name=_("region"),
    )
    finished_at = models.DateTimeField(verbose_name=_("finished at"))
    rows = models.PositiveIntegerField(verbose_name=_("rows"))
    # The newest month published at that refresh (None: nothing was old enough yet).
    last_month = models.DateField(null=True, blank=True, verbose_name=_("newest month"))

    class Meta:
        verbose_name = _("public tables refresh")
        verbose_name_plural = _("public tables refreshes")

    def __str__(self) -> str:
        return f"{self.region_id}: {self.rows} rows at {self.finished_at:%Y-%m-%d %H:%M}"
