"""Public spaces a municipality recovers (parks, plazas, lighting...), their recovery
projects with photos, the activities held in them, and the history of every change.

Writes go through ``publicspaces.services`` (scope checks, history, condition rules);
reads through ``publicspaces.selectors``. Geometries are stored in EPSG:4326: a point
(a lamp, a small plaza), a polygon (a park) or a line (a lighting stretch along a street).
"""

from django.conf import settings
from django.contrib.gis.db import models
from django.db.models import CharField, F, Func, Q
from django.db.models.functions import Coalesce
from django.db.models.lookups import In
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from geo.conf import STORAGE_SRID

# OGC type names (PostGIS ``GeometryType``) a space may have.
ALLOWED_GEOMETRY_TYPES = ("POINT", "POLYGON", "MULTIPOLYGON", "LINESTRING")


class GeometryTypeName(Func):
    """PostGIS ``GeometryType``: POINT, POLYGON... (used by the geometry-type CHECK)."""

    function = "GeometryType"
    output_field = CharField()


class SpaceKind(models.TextChoices):
    PARK = "park", _("Park")
    PLAZA = "plaza", _("Plaza")
    SPORTS_FIELD = "sports_field", _("Sports field")
    PLAYGROUND = "playground", _("Playground")
    LIGHTING_POINT = "lighting_point", _("Street-lighting point")
    LIGHTING_STRETCH = "lighting_stretch", _("Street-lighting stretch")
    COMMUNITY_CENTER = "community_center", _("Community center")
    VACANT_LOT = "vacant_lot", _("Vacant lot")
    MARKET_SURROUNDINGS = "market_surroundings", _("Market surroundings")
    OTHER = "other", _("Other public space")


class Condition(models.TextChoices):
    DEGRADED = "degraded", _("Degraded")
    IN_RECOVERY = "in_recovery", _("In recovery")
    RECOVERED = "recovered", _("Recovered")
    MAINTAINED = "maintained", _("Maintained")
    LOST_AGAIN = "lost_again", _("Lost again")


# Conditions shown on the public map.
PUBLIC_CONDITIONS = (Condition.RECOVERED, Condition.MAINTAINED)


class PublicSpace(models.Model):
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=30, choices=SpaceKind.choices)
    geom = models.GeometryField(
        _("geometry"),
        srid=STORAGE_SRID,
        help_text=_("A point, a polygon, or a line for a lighting stretch (WGS84)."),
    )
    address = models.CharField(_("address"), max_length=300, blank=True)
    # Assigned spatially by the services, never chosen by the user.
    region = models.ForeignKey(
        "neighborhoods.Region", on_delete=models.CASCADE, verbose_name=_("region")
    )
    district = models.ForeignKey(
        "neighborhoods.District",
        on_delete=models.RESTRICT,
        related_name="public_spaces",
        verbose_name=_("district"),
    )
    neighborhood = models.ForeignKey(
        "neighborhoods.Neighborhood",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="public_spaces",
        verbose_name=_("neighborhood"),
    )
    responsible_municipality = models.CharField(
        _("responsible municipality"),
        max_length=200,
        blank=True,
        help_text=_("Defaults to the district's municipality."),
    )
    condition = models.CharField(
        _("condition"), max_length=20, choices=Condition.choices, default=Condition.DEGRADED
    )
    # {"lighting": 0-2, "cleanliness": 0-2, ...}; see services.spaces.AUDIT_ITEMS.
    audit = models.JSONField(_("audit checklist"), default=dict, blank=True)
    audited_on = models.DateField(_("audited on"), null=True, blank=True)
    condition_score = models.PositiveSmallIntegerField(
        _("condition score"),
        null=True,
        blank=True,
        help_text=_("0-100, computed from the audit checklist."),
    )
    # Date the latest recovery project reached "recovered"; kept by the services.
    recovered_on = models.DateField(_("recovered on"), null=True, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    # Stable key of an imported or generated space, so re-imports update instead of copy.
    external_id = models.CharField(max_length=200, blank=True, verbose_name=_("external ID"))
    is_demo = models.BooleanField(
        _("demo data"), default=False, help_text=_("Generated demo data, not a real space.")
    )
    version = models.PositiveIntegerField(default=1, editable=False, verbose_name=_("version"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("public space")
        verbose_name_plural = _("public spaces")
        constraints = [
            models.CheckConstraint(
                condition=In(GeometryTypeName(F("geom")), list(ALLOWED_GEOMETRY_TYPES)),
                name="publicspace_geom_type",
            ),
            models.CheckConstraint(condition=Q(geom__isvalid=True), name="publicspace_geom_valid"),
            models.CheckConstraint(
                condition=Q(condition_score__isnull=True) | Q(condition_score__lte=100),
                name="publicspace_score_0_100",
            ),
            models.UniqueConstraint(
                fields=["external_id"],
                condition=~Q(external_id=""),
                name="publicspace_external_id_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["district", "condition"], name="publicspace_district_cond"),
            models.Index(fields=["region", "kind"], name="publicspace_region_kind"),
        ]

    def validate_constraints(self, exclude=None):
        # The geometry checks run in PostGIS on save; the services check the same rules
        # first with messages for people (publicspaces.geometry).
        super().validate_constraints(exclude={*(exclude or ()), "geom"})

    def __str__(self) -> str:
        return self.name


class Partner(models.Model):
    class Kind(models.TextChoices):
        PUBLIC = "public", _("Public sector")
        PRIVATE = "private", _("Private company")
        NGO = "ngo", _("NGO")
        COMMUNITY = "community", _("Community organization")

    name = models.CharField(_("name"), max_length=200, unique=True)
    kind = models.CharField(_("type"), max_length=20, choices=Kind.choices)

    class Meta:
        ordering = ["name"]
        verbose_name = _("partner")
        verbose_name_plural = _("partners")

    def __str__(self) -> str:
        return self.name


class ProjectStatus(models.TextChoices):
    IDENTIFIED = "identified", _("Identified")
    PLANNED = "planned", _("Planned")
    IN_WORKS = "in_works", _("In works")
    RECOVERED = "recovered", _("Recovered")
    MAINTAINED = "maintained", _("Maintained")
    CANCELLED = "cancelled", _("Cancelled")


# Statuses in which works are still to come: a space has at most one such project.
OPEN_STATUSES = (ProjectStatus.IDENTIFIED, ProjectStatus.PLANNED, ProjectStatus.IN_WORKS)


class RecoveryProject(models.Model):
    space = models.ForeignKey(
        PublicSpace, on_delete=models.CASCADE, related_name="projects", verbose_name=_("space")
    )
    title = models.CharField(_("title"), max_length=200)
    status = models.CharField(
        _("status"), max_length=20, choices=ProjectStatus.choices, default=ProjectStatus.IDENTIFIED
    )
    identified_on = models.DateField(_("identified on"))
    planned_on = models.DateField(_("planned on"), null=True, blank=True)
    works_started_on = models.DateField(_("works started on"), null=True, blank=True)
    recovered_on = models.DateField(_("recovered on"), null=True, blank=True)
    maintained_on = models.DateField(_("maintained since"), null=True, blank=True)
    cancelled_on = models.DateField(_("cancelled on"), null=True, blank=True)
    works_description = models.TextField(_("works"), blank=True)
    budget = models.DecimalField(
        _("budget"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    spent = models.DecimalField(_("spent"), max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(
        _("currency"), max_length=3, blank=True, help_text=_("ISO 4217 code, e.g. PEN, MXN.")
    )
    funding_source = models.CharField(_("funding source"), max_length=200, blank=True)
    partners = models.ManyToManyField(
        Partner, blank=True, related_name="projects", verbose_name=_("partners")
    )
    notes = models.TextField(_("notes"), blank=True)
    # A recovery is published (the space shows as recovered on the public map) with an
    # audit after the works and an "after" photo, or with a program user's reason instead.
    evidence_waiver = models.TextField(
        _("reason to publish without audit or photo"), blank=True, editable=False
    )
    evidence_waived_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("published without evidence by"),
    )
    is_demo = models.BooleanField(_("demo data"), default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        ordering = ["-identified_on", "-id"]
        verbose_name = _("recovery project")
        verbose_name_plural = _("recovery projects")
        constraints = [
            models.UniqueConstraint(
                fields=["space"],
                condition=Q(status__in=[s.value for s in OPEN_STATUSES]),
                name="recoveryproject_one_open_per_space",
                violation_error_message=_(
                    "This space already has a recovery project that is not finished."
                ),
            ),
            models.CheckConstraint(
                condition=Q(budget__isnull=True) | Q(budget__gte=0),
                name="recoveryproject_budget_positive",
            ),
            models.CheckConstraint(
                condition=Q(spent__isnull=True) | Q(spent__gte=0),
                name="recoveryproject_spent_positive",
            ),
            # Each step's date, when set, is not before the previous step's.
            models.CheckConstraint(
                condition=Q(planned_on__isnull=True) | Q(planned_on__gte=F("identified_on")),
                name="recoveryproject_planned_after_identified",
            ),
            models.CheckConstraint(
                condition=Q(works_started_on__isnull=True)
                | Q(works_started_on__gte=Coalesce(F("planned_on"), F("identified_on"))),
                name="recoveryproject_works_after_planned",
            ),
            models.CheckConstraint(
                condition=Q(recovered_on__isnull=True)
                | Q(
                    recovered_on__gte=Coalesce(
                        F("works_started_on"), F("planned_on"), F("identified_on")
                    )
                ),
                name="recoveryproject_recovered_after_works",
            ),
            models.CheckConstraint(
                condition=Q(maintained_on__isnull=True)
                | Q(maintained_on__gte=Coalesce(F("recovered_on"), F("identified_on"))),
                name="recoveryproject_maintained_after_recovered",
            ),
            # The status's own date is always recorded.
            models.CheckConstraint(
                condition=~Q(status=ProjectStatus.PLANNED) | Q(planned_on__isnull=False),
                name="recoveryproject_planned_has_date",
            ),
            models.CheckConstraint(
                condition=~Q(status=ProjectStatus.IN_WORKS) | Q(works_started_on__isnull=False),
                name="recoveryproject_in_works_has_date",
            ),
            models.CheckConstraint(
                condition=~Q(status=ProjectStatus.RECOVERED) | Q(recovered_on__isnull=False),
                name="recoveryproject_recovered_has_date",
            ),
            models.CheckConstraint(
                condition=~Q(status=ProjectStatus.MAINTAINED) | Q(maintained_on__isnull=False),
                name="recoveryproject_maintained_has_date",
            ),
            models.CheckConstraint(
                condition=~Q(status=ProjectStatus.CANCELLED) | Q(cancelled_on__isnull=False),
                name="recoveryproject_cancelled_has_date",
            ),
        ]
        indexes = [models.Index(fields=["space", "status"], name="recoveryproject_space_status")]

    def __str__(self) -> str:
        return self.title


def photo_upload_to(instance, filename: str) -> str:
    # The services name the file (a random token): the uploader's file name may carry
    # personal data and is never kept.
    return f"publicspaces/photos/{filename}"


class ProjectPhoto(models.Model):
    class Stage(models.TextChoices):
        BEFORE = "before", _("Before")
        DURING = "during", _("During the works")
        AFTER = "after", _("After")

    project = models.ForeignKey(
        RecoveryProject, on_delete=models.CASCADE, related_name="photos", verbose_name=_("project")
    )
    stage = models.CharField(_("stage"), max_length=10, choices=Stage.choices)
    # Re-encoded by the services: no EXIF (no GPS position, no camera serial) is kept.
    image = models.ImageField(
        _("image"), upload_to=photo_upload_to, width_field="width", height_field="height"
    )
    width = models.PositiveIntegerField(editable=False, default=0, verbose_name=_("width"))
    height = models.PositiveIntegerField(editable=False, default=0, verbose_name=_("height"))
    caption = models.CharField(_("caption"), max_length=300, blank=True)
    taken_on = models.DateField(_("taken on"), null=True, blank=True)
    is_demo = models.BooleanField(_("demo data"), default=False)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("uploaded by"),
    )
    uploaded_at = models.DateTimeField(auto_now_add=True, verbose_name=_("uploaded at"))

    class Meta:
        ordering = ["project", "stage", "id"]
        verbose_name = _("project photo")
        verbose_name_plural = _("project photos")
        indexes = [models.Index(fields=["project", "stage"], name="projectphoto_project_stage")]

    def __str__(self) -> str:
        return f"{self.project} — {self.get_stage_display()}"


class Activity(models.Model):
    class Kind(models.TextChoices):
        WORKSHOP = "workshop", _("Workshop")
        CULTURAL = "cultural", _("Cultural event")
        SPORT = "sport", _("Sport")
        CLEAN_UP = "clean_up", _("Clean-up")
        MEETING = "meeting", _("Community meeting")

    space = models.ForeignKey(
        PublicSpace, on_delete=models.CASCADE, related_name="activities", verbose_name=_("space")
    )
    project = models.ForeignKey(
        RecoveryProject,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="activities",
        verbose_name=_("project"),
    )
    date = models.DateField(_("date"))
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    title = models.CharField(_("title"), max_length=200, blank=True)
    organizer = models.CharField(_("organizer"), max_length=200, blank=True)
    participants = models.PositiveIntegerField(_("participants"), default=0)
    # Beneficiaries by age group, where known (blank = not counted).
    children = models.PositiveIntegerField(_("children (0-11)"), null=True, blank=True)
    youth = models.PositiveIntegerField(_("youth (12-29)"), null=True, blank=True)
    adults = models.PositiveIntegerField(_("adults (30-59)"), null=True, blank=True)
    older_adults = models.PositiveIntegerField(_("older adults (60+)"), null=True, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    is_demo = models.BooleanField(_("demo data"), default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        ordering = ["-date", "-id"]
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    participants__gte=Coalesce(F("children"), 0)
                    + Coalesce(F("youth"), 0)
                    + Coalesce(F("adults"), 0)
                    + Coalesce(F("older_adults"), 0)
                ),
                name="activity_age_groups_within_participants",
                violation_error_message=_(
                    "The age groups add up to more than the number of participants."
                ),
            ),
        ]
        indexes = [models.Index(fields=["space", "date"], name="activity_space_date")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.date}"


class ChangeRecord(models.Model):
    """One change to a space or to something of it: who, when, what (field by field)."""

    class Action(models.TextChoices):
        # A context: import pages use "Created"/"Updated" for counts of rows.
        CREATED = "created", pgettext_lazy("change record action", "Created")
        UPDATED = "updated", pgettext_lazy("change record action", "Updated")
        DELETED = "deleted", _("Deleted")
        TRANSITION = "transition", _("Status changed")
        AUDITED = "audited", _("Audited")

    # SET_NULL: the history of a deleted space stays readable by object type and id.
    space = models.ForeignKey(
        PublicSpace,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="changes",
        verbose_name=_("space"),
    )
    object_type = models.CharField(_("object type"), max_length=40)
    object_id = models.BigIntegerField(_("object id"))
    object_repr = models.CharField(_("object"), max_length=300, blank=True)
    action = models.CharField(_("action"), max_length=20, choices=Action.choices)
    # {"field": [old, new], ...} for updates; the saved values for creations.
    changes = models.JSONField(_("changes"), default=dict, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("user"),
    )
    # Kept when the account is deleted; empty for imports and generated demo data.
    username = models.CharField(_("user"), max_length=150, blank=True)
    at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("change record")
        verbose_name_plural = _("change records")
        indexes = [
            models.Index(fields=["space", "-at"], name="changerecord_space_at"),
            models.Index(fields=["object_type", "object_id"], name="changerecord_object"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.username or '-'} {self.action} {self.object_repr}"
