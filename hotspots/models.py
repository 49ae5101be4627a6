"""Hotspot runs and their results: grid cells with Getis-Ord Gi* and merged hot zones.

A run records everything needed to repeat it (area, period, categories, method, every
parameter with the random seed, software versions, the metric CRS used); the same inputs
give the same cells and zones. Results are written in one transaction at the end of a
run, so a failed run leaves no cells or zones behind.
"""

from django.conf import settings
from django.contrib.gis.db import models
from django.contrib.postgres.fields import ArrayField
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from geo.conf import STORAGE_SRID


class HotspotRun(models.Model):
    class Method(models.TextChoices):
        GISTAR = "gistar", _("Grid + Getis-Ord Gi*")
        # Recorded choices for the methods still to come; services refuse them until
        # they are implemented (hotspots.services.params.SUPPORTED_METHODS).
        DBSCAN = "dbscan", _("Density clustering (DBSCAN)")
        KDE = "kde", _("Kernel density")
        EMERGING = "emerging", _("Emerging hot spots")
        FORECAST = "forecast", _("Forecast (back-tested)")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed: nothing written")

    # --- area ---------------------------------------------------------------------------
    region = models.ForeignKey(
        "neighborhoods.Region", on_delete=models.CASCADE, verbose_name=_("region")
    )
    districts = models.ManyToManyField(
        "neighborhoods.District", blank=True, verbose_name=_("districts")
    )
    neighborhoods = models.ManyToManyField(
        "neighborhoods.Neighborhood", blank=True, verbose_name=_("neighborhoods")
    )
    polygon = models.MultiPolygonField(
        srid=STORAGE_SRID,
        null=True,
        blank=True,
        spatial_index=False,
        help_text=_("A drawn area; intersected with the region or the chosen areas."),
        verbose_name=_("polygon"),
    )
    # The analysis area as resolved when the run executed (boundaries may change later).
    area_geom = models.MultiPolygonField(
        srid=STORAGE_SRID,
        null=True,
        blank=True,
        spatial_index=False,
        verbose_name=_("area geometry"),
    )
    area_m2 = models.FloatField(null=True, blank=True, verbose_name=_("area (m²)"))
    # --- what ---------------------------------------------------------------------------
    date_from = models.DateField(verbose_name=_("date from"))
    date_to = models.DateField(help_text=_("Included."), verbose_name=_("date to"))
    family = models.CharField(
        max_length=20,
        blank=True,
        choices=[("crime", _("Crime")), ("incivility", _("Incivility"))],
        verbose_name=_("family"),
    )
    categories = models.ManyToManyField(
        "incidents.Category", blank=True, verbose_name=_("categories")
    )
    method = models.CharField(
        max_length=20, choices=Method.choices, default=Method.GISTAR, verbose_name=_("method")
    )
    # Every parameter of the method: grid kind, cell size (and why, when chosen
    # automatically), neighbour rule, alpha, fdr, permutations, seed...
    params = models.JSONField(default=dict, verbose_name=_("parameters"))
    metric_srid = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=_("EPSG code the grid and distances were computed in."),
        verbose_name=_("metric CRS (EPSG)"),
    )
    software_version = models.CharField(
        max_length=300, blank=True, verbose_name=_("software version")
    )
    # --- how it went --------------------------------------------------------------------
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.QUEUED, verbose_name=_("status")
    )
    message = models.TextField(blank=True, verbose_name=_("message"))
    progress = models.FloatField(default=0.0, verbose_name=_("progress"))
    timings = models.JSONField(
        default=dict, help_text=_("Seconds per step."), verbose_name=_("timings")
    )
    # Headline numbers for lists and the API: incidents, cells, significant cells, zones.
    summary = models.JSONField(default=dict, verbose_name=_("summary"))
    # Grid runs rerun at neighbouring cell sizes: [{"cell_size_m", "hot_cells", "jaccard"}...]
    # against this run's hot area, so a planner sees whether a zone depends on the size.
    stability = models.JSONField(default=dict, blank=True, verbose_name=_("stability"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    started_at = models.DateTimeField(null=True, blank=True, verbose_name=_("started at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["region", "-created_at"], name="hotspotrun_region_created"),
            models.Index(fields=["status"], name="hotspotrun_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(date_to__gte=models.F("date_from")), name="hotspotrun_period_ordered"
            ),
            models.CheckConstraint(
                condition=Q(progress__gte=0) & Q(progress__lte=1),
                name="hotspotrun_progress_fraction",
            ),
        ]
        verbose_name = _("hotspot run")
        verbose_name_plural = _("hotspot runs")

    def __str__(self) -> str:
        return f"#{self.pk} {self.method} {self.region_id} {self.date_from}–{self.date_to}"


class HotspotZone(models.Model):
    """Contiguous significant hot cells merged into one polygon."""

    run = models.ForeignKey(
        HotspotRun, on_delete=models.CASCADE, related_name="zones", verbose_name=_("run")
    )
    rank = models.PositiveIntegerField(help_text=_("1 = most incidents."), verbose_name=_("rank"))
    geom = models.MultiPolygonField(srid=STORAGE_SRID, verbose_name=_("geometry"))
    cell_count = models.PositiveIntegerField(verbose_name=_("cell count"))
    incident_count = models.PositiveIntegerField(verbose_name=_("incident count"))
    area_m2 = models.FloatField(verbose_name=_("area (m²)"))
    density_per_km2 = models.FloatField(verbose_name=_("density (per km²)"))
    share = models.FloatField(
        help_text=_("Share of the analysis area's incidents (0–1)."), verbose_name=_("share")
    )
    # [{"code": ..., "count": ...}, ...], most frequent first.
    top_categories = models.JSONField(default=list, verbose_name=_("top categories"))

    class Meta:
        ordering = ["run", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["run", "rank"], name="hotspotzone_rank_unique")
        ]
        verbose_name = _("hotspot zone")
        verbose_name_plural = _("hotspot zones")

    def __str__(self) -> str:
        return f"run {self.run_id} zone {self.rank}"


class HotspotCell(models.Model):
    """One grid cell of a run (zero-count cells included).

    Which value columns are filled depends on the run's method: Gi* runs fill ``gi_*``;
    KDE runs fill ``density``; emerging runs fill ``gi_*`` (of the last time step),
    ``emerging``, ``trend_*`` and the per-step arrays (whose dates are
    ``run.params["steps"]``); forecast runs fill ``score``.
    """

    run = models.ForeignKey(
        HotspotRun,
        on_delete=models.CASCADE,
        related_name="cells",
        db_index=False,
        verbose_name=_("run"),
    )
    # Cell indices on the run's grid, anchored at the metric CRS origin as PostGIS'
    # ST_SquareGrid / ST_HexagonGrid number them.
    i = models.IntegerField(verbose_name=_("column index"))
    j = models.IntegerField(verbose_name=_("row index"))
    # No spatial index: cells are always read run by run (the unique index below), and a
    # GiST index made writing a run's 40,000 cells 60 % slower.
    geom = models.PolygonField(srid=STORAGE_SRID, spatial_index=False, verbose_name=_("geometry"))
    count = models.PositiveIntegerField(verbose_name=_("count"))
    gi_z = models.FloatField(null=True, blank=True, verbose_name=_("Gi* z-score"))
    gi_p = models.FloatField(null=True, blank=True, verbose_name=_("Gi* p-value"))
    gi_bin = models.SmallIntegerField(
        null=True,
        blank=True,
        help_text=_("+3/+2/+1 hot at 99/95/90 %, negative cold, 0 not significant (after FDR)."),
        verbose_name=_("Gi* bin"),
    )
    density = models.FloatField(
        null=True,
        blank=True,
        help_text=_("Kernel density, incidents per km² (KDE runs)."),
        verbose_name=_("density"),
    )
    emerging = models.SmallIntegerField(
        null=True,
        blank=True,
        help_text=_("Emerging hot spot category (hotspots.engine.emerging.LEGEND); < 0 cold."),
        verbose_name=_("emerging"),
    )
    score = models.FloatField(
        null=True,
        blank=True,
        help_text=_("Forecast runs: the chosen ranking's score (higher = flagged first)."),
        verbose_name=_("score"),
    )
    trend_tau = models.FloatField(null=True, blank=True, verbose_name=_("trend tau"))
    trend_p = models.FloatField(null=True, blank=True, verbose_name=_("trend p-value"))
    # Aoristic weights per step: an incident's window split over the steps it overlaps
    # (whole numbers when every incident has an exact time).
    step_counts = ArrayField(models.FloatField(), null=True, blank=True)
    step_bins = ArrayField(models.SmallIntegerField(), null=True, blank=True)
    zone = models.ForeignKey(
        HotspotZone,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="cells",
        verbose_name=_("zone"),
    )

    class Meta:
        ordering = ["run", "i", "j"]
        constraints = [
            models.UniqueConstraint(fields=["run", "i", "j"], name="hotspotcell_ij_unique"),
            models.CheckConstraint(
                condition=Q(gi_bin__gte=-3) & Q(gi_bin__lte=3), name="hotspotcell_bin_range"
            ),
        ]
        indexes = [models.Index(fields=["run", "gi_bin"], name="hotspotcell_run_bin")]
        verbose_name = _("hotspot cell")
        verbose_name_plural = _("hotspot cells")

    def __str__(self) -> str:
        return f"run {self.run_id} cell ({self.i}, {self.j})"


class HotspotValidation(models.Model):
    """How well a run's zones (and top cells) predicted a later period's incidents.

    ``report`` holds hit rate, PAI and PEI at fixed area coverages (1 %, 5 %, 10 %) for the
    zones, the run's top cells and the naive "top cells by the count over the run's period" baseline.
    """

    run = models.ForeignKey(
        HotspotRun, on_delete=models.CASCADE, related_name="validations", verbose_name=_("run")
    )
    eval_from = models.DateField(verbose_name=_("evaluated from"))
    eval_to = models.DateField(help_text=_("Included."), verbose_name=_("evaluated to"))
    report = models.JSONField(default=dict, verbose_name=_("report"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        ordering = ["run", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "eval_from", "eval_to"], name="hotspotvalidation_period_unique"
            ),
            models.CheckConstraint(
                condition=Q(eval_to__gte=models.F("eval_from")),
                name="hotspotvalidation_period_ordered",
            ),
        ]
        verbose_name = _("hotspot validation")
        verbose_name_plural = _("hotspot validations")

    def __str__(self) -> str:
        return f"run {self.run_id} validated on {self.eval_from}–{self.eval_to}"
