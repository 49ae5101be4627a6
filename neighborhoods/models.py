"""Administrative and program boundaries: region > district > neighborhood."""

import zoneinfo

from django.contrib.gis.db import models
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from geo.conf import STORAGE_SRID, utm_srid_for
from geo.crs import MetricCRSError, check_metric_srid


class BoundarySource(models.Model):
    """Where a set of boundaries came from, and the attribution its licence asks for."""

    slug = models.SlugField(max_length=80, unique=True, verbose_name=_("slug"))
    name = models.CharField(max_length=200, verbose_name=_("name"))
    attribution = models.TextField(
        blank=True, help_text=_("Shown in the map's attribution."), verbose_name=_("attribution")
    )
    licence = models.CharField(max_length=200, blank=True, verbose_name=_("licence"))
    url = models.URLField(blank=True, verbose_name=_("URL"))
    synthetic = models.BooleanField(
        default=False,
        help_text=_("Generated demo data, not a real place."),
        verbose_name=_("synthetic"),
    )

    class Meta:
        verbose_name = _("boundary source")
        verbose_name_plural = _("boundary sources")

    def __str__(self) -> str:
        return self.name


class Region(models.Model):
    """A city or metro area, with the projected CRS its metric analysis runs in."""

    code = models.SlugField(max_length=40, unique=True, verbose_name=_("code"))
    name = models.CharField(max_length=200, verbose_name=_("name"))
    metric_srid = models.PositiveIntegerField(
        help_text=_(
            "EPSG code of the projected CRS, in metres, that distances, areas and grids are "
            "computed in (by default the UTM zone of the region's centre). Hotspot runs "
            "keep the CRS they were computed in."
        ),
        verbose_name=_("metric CRS (EPSG)"),
    )
    # Union of the region's districts, refreshed after every boundary load.
    geom = models.MultiPolygonField(
        srid=STORAGE_SRID, null=True, blank=True, verbose_name=_("geometry")
    )
    synthetic = models.BooleanField(default=False, verbose_name=_("synthetic"))
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        help_text=_(
            "IANA time zone of the region (e.g. America/Lima): days and months of "
            "its incidents are counted in it."
        ),
        verbose_name=_("time zone"),
    )
    # Amounts recorded in the region (public-space budgets) are in this currency unless
    # a project says otherwise.
    currency = models.CharField(
        max_length=3,
        blank=True,
        validators=[
            RegexValidator(r"^[A-Z]{3}$", _("Give an ISO 4217 currency code such as PEN or MXN."))
        ],
        help_text=_("ISO 4217 code of the region's currency (e.g. PEN, MXN, CLP)."),
        verbose_name=_("currency"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        ordering = ["name"]
        constraints = [
            # Any projected CRS in metres that PostGIS knows (geo.crs, checked in clean and
            # by load_boundaries); pyproj is not reachable from a CHECK.
            models.CheckConstraint(
                condition=Q(metric_srid__gt=0), name="region_metric_srid_positive"
            ),
            # NULL passes a CHECK, so a region without boundaries yet is fine.
            models.CheckConstraint(condition=Q(geom__isvalid=True), name="region_geom_valid"),
        ]
        verbose_name = _("region")
        verbose_name_plural = _("regions")

    def clean(self):
        super().clean()
        if self.metric_srid:
            example = {}
            if self.geom is not None and not self.geom.empty:
                centre = self.geom.centroid
                example["example"] = f"EPSG:{utm_srid_for(centre.x, centre.y)}"
            try:
                check_metric_srid(self.metric_srid, **example)
            except MetricCRSError as exc:
                raise ValidationError(
                    {"metric_srid": ValidationError(_(exc.template), params=exc.params)}
                ) from None
        if self.time_zone:
            try:
                zoneinfo.ZoneInfo(self.time_zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValidationError(
                    {
                        "time_zone": _(
                            "%(value)s is not an IANA time zone: use a name such as "
                            "America/Lima or Europe/London."
                        )
                        % {"value": self.time_zone}
                    }
                ) from None

    def validate_constraints(self, exclude=None):
        # Django evaluates the geometry check in Python too, and IsValid cannot take NULL.
        if self.geom is None:
            exclude = {*(exclude or ()), "geom"}
        super().validate_constraints(exclude=exclude)

    def __str__(self) -> str:
        return self.name


class Area(models.Model):
    """Fields shared by districts and neighborhoods."""

    region = models.ForeignKey(Region, on_delete=models.CASCADE, verbose_name=_("region"))
    code = models.CharField(max_length=120, verbose_name=_("code"))
    name = models.CharField(max_length=200, verbose_name=_("name"))
    geom = models.MultiPolygonField(srid=STORAGE_SRID, verbose_name=_("geometry"))
    population = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("population"))
    source = models.ForeignKey(
        BoundarySource, on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("source")
    )
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        abstract = True
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class District(Area):
    """Lima distrito, Santiago comuna, CDMX alcaldía."""

    class Meta(Area.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["region", "code"], name="district_code_unique_in_region"
            ),
            models.CheckConstraint(condition=Q(geom__isvalid=True), name="district_geom_valid"),
        ]
        indexes = [models.Index(fields=["region", "name"])]
        verbose_name = _("district")
        verbose_name_plural = _("districts")


class Neighborhood(Area):
    """CDMX colonia, or a Safe Neighborhood "barrio" drawn by program staff."""

    # RESTRICT: a district with neighborhoods cannot be deleted on its own, but deleting
    # the whole region removes both.
    district = models.ForeignKey(
        District,
        on_delete=models.RESTRICT,
        null=True,
        blank=True,
        related_name="neighborhoods",
        verbose_name=_("district"),
    )
    drawn = models.BooleanField(
        default=False,
        help_text=_("Drawn by program staff rather than loaded from a file."),
        verbose_name=_("drawn"),
    )

    class Meta(Area.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["region", "code"], name="neighborhood_code_unique_in_region"
            ),
            models.CheckConstraint(condition=Q(geom__isvalid=True), name="neighborhood_geom_valid"),
        ]
        indexes = [models.Index(fields=["region", "name"])]
        verbose_name = _("neighborhood")
        verbose_name_plural = _("neighborhoods")


class AreaPart(models.Model):
    """Districts and neighborhoods cut into pieces of at most 256 vertices (``ST_Subdivide``).

    Point-in-polygon tests against pieces are far faster than against a detailed
    alcaldía outline with thousands of vertices: incident imports assign areas with them.
    Rebuilt for a region after every boundary load (regions.refresh_area_parts).
    """

    class Kind(models.TextChoices):
        DISTRICT = "district", _("district")
        NEIGHBORHOOD = "neighborhood", _("neighborhood")

    region = models.ForeignKey(Region, on_delete=models.CASCADE, verbose_name=_("region"))
    kind = models.CharField(max_length=12, choices=Kind.choices, verbose_name=_("kind"))
    area_id = models.BigIntegerField(verbose_name=_("area ID"))
    geom = models.PolygonField(srid=STORAGE_SRID, verbose_name=_("geometry"))

    class Meta:
        indexes = [models.Index(fields=["kind", "area_id"])]
        verbose_name = _("area part")
        verbose_name_plural = _("area parts")
