"""Recorded crime and incivilities: the raw, police-only incident table and its imports.

Nothing here is ever published as is: the public map reads precomputed, suppressed
aggregates (a later app), never this table.
"""

from django.conf import settings
from django.contrib.gis.db import models
from django.contrib.postgres.indexes import BrinIndex, GistIndex
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from geo.conf import STORAGE_SRID
from incidents.reasons import render_reason


class Family(models.TextChoices):
    CRIME = "crime", _("Crime")
    INCIVILITY = "incivility", _("Incivility")


class Category(models.Model):
    """A category of the product's taxonomy, or an "unclassified" placeholder for a source
    label nobody has mapped yet (kept, never public until a planner maps it)."""

    code = models.SlugField(max_length=120, unique=True, verbose_name=_("code"))
    name_es = models.CharField(max_length=200, verbose_name=_("name in Spanish"))
    name_en = models.CharField(max_length=200, verbose_name=_("name in English"))
    family = models.CharField(max_length=20, choices=Family.choices, verbose_name=_("family"))
    sensitive = models.BooleanField(
        default=False,
        help_text=_("Sexual offences, domestic violence, child abuse, trafficking: never public."),
        verbose_name=_("sensitive"),
    )
    unclassified = models.BooleanField(default=False, verbose_name=_("unclassified"))
    extra_care = models.BooleanField(
        default=False,
        help_text=_("Published on the public map only from a higher minimum count."),
        verbose_name=_("extra care"),
    )

    class Meta:
        ordering = ["family", "code"]
        verbose_name_plural = _("categories")
        verbose_name = _("category")

    def __str__(self) -> str:
        return self.name_en if self.name_en == self.name_es else f"{self.name_es} / {self.name_en}"

    @property
    def publishable(self) -> bool:
        return not (self.sensitive or self.unclassified)


class IncidentSource(models.Model):
    """A data publisher or system incidents come from (e.g. "cdmx-fgj", "boston-311")."""

    name = models.SlugField(max_length=80, unique=True, verbose_name=_("name"))
    description = models.CharField(max_length=200, blank=True, verbose_name=_("description"))
    attribution = models.TextField(blank=True, verbose_name=_("attribution"))
    licence = models.CharField(max_length=200, blank=True, verbose_name=_("licence"))
    default_family = models.CharField(
        max_length=20,
        choices=Family.choices,
        default=Family.CRIME,
        verbose_name=_("default family"),
    )

    class Meta:
        verbose_name = _("incident source")
        verbose_name_plural = _("incident sources")

    def __str__(self) -> str:
        return self.name


class SourceLabel(models.Model):
    """Maps a source's own label (a CDMX `delito`, a Boston 311 type...) to a category."""

    source = models.ForeignKey(
        IncidentSource, on_delete=models.CASCADE, related_name="labels", verbose_name=_("source")
    )
    label = models.CharField(max_length=300, verbose_name=_("label"))
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, related_name="labels", verbose_name=_("category")
    )

    class Meta:
        ordering = ["source", "label"]
        constraints = [
            models.UniqueConstraint(fields=["source", "label"], name="source_label_unique")
        ]
        verbose_name = _("source label")
        verbose_name_plural = _("source labels")

    def __str__(self) -> str:
        return f"{self.source}: {self.label} → {self.category.code}"


class ImportBatch(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed: nothing written")

    source = models.ForeignKey(IncidentSource, on_delete=models.PROTECT, verbose_name=_("source"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        verbose_name=_("created by"),
    )
    started_at = models.DateTimeField(auto_now_add=True, verbose_name=_("started at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.QUEUED, verbose_name=_("status")
    )
    # [{"name": ..., "sha256": ..., "rows": ...}, ...]
    files = models.JSONField(default=list, verbose_name=_("files"))
    options = models.JSONField(
        default=dict, help_text=_("Profile and column options used."), verbose_name=_("options")
    )
    skip_bad = models.BooleanField(default=False, verbose_name=_("skip bad rows"))
    rows_read = models.PositiveIntegerField(default=0, verbose_name=_("rows read"))
    rows_created = models.PositiveIntegerField(default=0, verbose_name=_("rows created"))
    rows_updated = models.PositiveIntegerField(default=0, verbose_name=_("rows updated"))
    rows_unchanged = models.PositiveIntegerField(default=0, verbose_name=_("rows unchanged"))
    rows_refused = models.PositiveIntegerField(default=0, verbose_name=_("rows refused"))
    rows_unassigned = models.PositiveIntegerField(
        default=0,
        help_text=_("Kept inside a region but outside all of its districts."),
        verbose_name=_("rows unassigned"),
    )
    duration_s = models.FloatField(null=True, blank=True, verbose_name=_("duration (s)"))
    progress = models.FloatField(default=0.0, verbose_name=_("progress"))
    # Summary for people: unmapped labels, timings per step, error message.
    report = models.JSONField(default=dict, verbose_name=_("report"))

    # The row counts, in the order the admin and the API show them.
    ROW_COUNTS = (
        "rows_read",
        "rows_created",
        "rows_updated",
        "rows_unchanged",
        "rows_refused",
        "rows_unassigned",
    )

    class Meta:
        ordering = ["-started_at"]
        verbose_name_plural = _("import batches")
        verbose_name = _("import batch")

    def __str__(self) -> str:
        return f"#{self.pk} {self.source} {self.status}"


class RefusedRow(models.Model):
    batch = models.ForeignKey(
        ImportBatch, on_delete=models.CASCADE, related_name="refused_rows", verbose_name=_("batch")
    )
    file_name = models.CharField(max_length=300, verbose_name=_("file name"))
    row_number = models.PositiveIntegerField(
        help_text=_("Spreadsheet numbering: header is row 1."), verbose_name=_("row number")
    )
    # The English sentence, as written when the row was refused (rows refused before
    # reasons had codes have only this); shown through ``reason_text``.
    reason = models.CharField(max_length=500, verbose_name=_("reason"))
    # incidents.reasons: the sentence is written again in the reader's language.
    reason_code = models.CharField(
        max_length=40, blank=True, default="", verbose_name=_("reason code")
    )
    reason_params = models.JSONField(default=dict, blank=True, verbose_name=_("reason parameters"))
    raw = models.JSONField(default=dict, verbose_name=_("raw values"))

    # What pages and the API read of a row (``.only(*SHOWN_FIELDS)``).
    SHOWN_FIELDS = ("file_name", "row_number", "reason", "reason_code", "reason_params")

    class Meta:
        ordering = ["batch", "file_name", "row_number"]
        verbose_name = _("refused row")
        verbose_name_plural = _("refused rows")

    @property
    def reason_text(self) -> str:
        """Why the row was refused, in the active language."""
        return render_reason(self.reason_code, self.reason_params, self.reason)


class TimePrecision(models.TextChoices):
    EXACT = "exact", _("Exact time")
    DAY = "day", _("Day only")
    MONTH = "month", _("Month only")
    RANGE = "range", _("Time range")


class LocationQuality(models.TextChoices):
    EXACT = "exact", _("Exact")
    ROUNDED = "rounded", _("Rounded")
    SNAPPED = "snapped", _("Snapped to an anonymised point")
    GEOCODED = "geocoded", _("Geocoded from an address")
    PLACEHOLDER = "placeholder", _("Placeholder location")


class Incident(models.Model):
    # The references below have no per-row FOREIGN KEY constraints: PostgreSQL checks
    # those one row and key at a time, which was 60 % of a million-row import. Migration
    # 0003 enforces the same integrity once per statement instead (triggers
    # ``incident_refs_*`` lock and check the distinct referenced ids of each statement's
    # rows; delete triggers on the referenced tables refuse to orphan an incident), and
    # Django's on_delete still runs in the ORM. Category, district and neighborhood have
    # no btree index of their own either: reads of incidents are already narrowed by
    # region and time, bbox or id, and each index cost ~1 s per million imported rows.
    source = models.ForeignKey(
        IncidentSource,
        on_delete=models.PROTECT,
        db_index=False,
        db_constraint=False,
        verbose_name=_("source"),
    )
    # Byte order ("C"): ids are codes, not words, and every import probes the unique
    # (source, external id) index once per row; a language collation costs ~7 % of it.
    external_id = models.CharField(max_length=120, db_collation="C", verbose_name=_("external ID"))
    point = models.PointField(srid=STORAGE_SRID, spatial_index=False, verbose_name=_("point"))
    # When only a day, a month or a range is known, occurred_at is the start of that
    # window and occurred_until its (exclusive) end.
    occurred_at = models.DateTimeField(verbose_name=_("occurred at"))
    occurred_until = models.DateTimeField(null=True, blank=True, verbose_name=_("occurred until"))
    time_precision = models.CharField(
        max_length=10,
        choices=TimePrecision.choices,
        default=TimePrecision.EXACT,
        verbose_name=_("time precision"),
    )
    label = models.ForeignKey(
        SourceLabel,
        on_delete=models.PROTECT,
        db_index=False,
        db_constraint=False,
        verbose_name=_("label"),
    )
    # Denormalised from label.category so that filters need no join; kept in step by
    # incidents.services.labels.map_label.
    category = models.ForeignKey(
        Category,
        on_delete=models.PROTECT,
        db_index=False,
        db_constraint=False,
        verbose_name=_("category"),
    )
    region = models.ForeignKey(
        "neighborhoods.Region",
        on_delete=models.CASCADE,
        db_index=False,
        db_constraint=False,
        verbose_name=_("region"),
    )
    district = models.ForeignKey(
        "neighborhoods.District",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_index=False,
        db_constraint=False,
        verbose_name=_("district"),
    )
    neighborhood = models.ForeignKey(
        "neighborhoods.Neighborhood",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_index=False,
        db_constraint=False,
        verbose_name=_("neighborhood"),
    )
    location_quality = models.CharField(
        max_length=12,
        choices=LocationQuality.choices,
        default=LocationQuality.EXACT,
        verbose_name=_("location quality"),
    )
    batch = models.ForeignKey(
        ImportBatch,
        on_delete=models.PROTECT,
        db_index=False,
        db_constraint=False,
        verbose_name=_("batch"),
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"], name="incident_external_id_unique_per_source"
            ),
            models.CheckConstraint(
                condition=Q(occurred_until__isnull=True)
                | Q(occurred_until__gt=models.F("occurred_at")),
                name="incident_window_ordered",
            ),
        ]
        indexes = [
            GistIndex(fields=["point"], name="incident_point_gist"),
            # Imports arrive roughly in time order, so a BRIN index is small and cheap to
            # keep current on million-row loads.
            BrinIndex(fields=["occurred_at"], name="incident_occurred_brin"),
            models.Index(fields=["region", "occurred_at"], name="incident_region_time"),
        ]
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")

    def __str__(self) -> str:
        return f"{self.source_id}:{self.external_id}"
