"""Hotspot runs in the admin: read-only records (runs are made by the service, from the map,
the API or ``run_hotspots``), with their zones and validations. Cells are not listed: a
run has tens of thousands; the API and the report show them."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from common.admin import ReadOnlyAdminMixin
from geo.admin import OfflineGISModelAdmin
from hotspots.models import HotspotRun, HotspotValidation, HotspotZone


class HotspotZoneInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = HotspotZone
    fields = [
        "rank",
        "incident_count",
        "cell_count",
        "area_m2",
        "density_per_km2",
        "share",
        "top_categories",
    ]
    readonly_fields = fields
    extra = 0
    show_change_link = True


class HotspotValidationInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = HotspotValidation
    fields = ["eval_from", "eval_to", "created_by", "created_at"]
    readonly_fields = fields
    extra = 0
    show_change_link = True


@admin.register(HotspotRun)
class HotspotRunAdmin(ReadOnlyAdminMixin, OfflineGISModelAdmin):
    list_display = [
        "id",
        "region",
        "method",
        "date_from",
        "date_to",
        "status",
        "zone_count",
        "created_by",
        "created_at",
    ]
    list_filter = ["status", "method", "region"]
    date_hierarchy = "created_at"
    list_select_related = ["region", "created_by"]
    exclude = ["area_geom"]  # large; the report and the map show it
    readonly_fields = ["page"]
    inlines = [HotspotZoneInline, HotspotValidationInline]

    @admin.display(description=_("zones"))
    def zone_count(self, run):
        return (run.summary or {}).get("zones", "—")

    @admin.display(description=_("run page"))
    def page(self, run):
        return format_html(
            '<a href="{}">{}</a>', reverse("hotspots:run-detail", args=[run.pk]), _("Open")
        )


@admin.register(HotspotZone)
class HotspotZoneAdmin(ReadOnlyAdminMixin, OfflineGISModelAdmin):
    list_display = ["run", "rank", "incident_count", "area_m2", "share"]
    list_select_related = ["run"]
    list_filter = ["run__region"]


@admin.register(HotspotValidation)
class HotspotValidationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["run", "eval_from", "eval_to", "created_by", "created_at"]
    list_select_related = ["run", "created_by"]
