"""Admin for the taxonomy, sources, label mapping, import batches and (read-only) incidents.

Raw incidents are police-only: only planners and superusers see them, and nobody edits or
bulk-deletes them here. Mapping a label to a category goes through ``map_label`` so the
incidents follow.
"""

import json

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.core.paginator import Paginator
from django.db.models import Count
from django.forms.models import BaseInlineFormSet
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.roles import is_planner
from common.admin import ViewOnlyAdminMixin
from geo.admin import OfflineGISModelAdmin
from incidents.models import (
    Category,
    ImportBatch,
    Incident,
    IncidentSource,
    RefusedRow,
    SourceLabel,
)
from incidents.services.batches import status_label
from incidents.services.labels import map_label

REFUSED_ROWS_PER_PAGE = 100
REFUSED_PAGE_PARAM = "refused_page"


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["code", "name_es", "name_en", "family", "sensitive", "unclassified"]
    list_filter = ["family", "sensitive", "unclassified"]
    search_fields = ["code", "name_es", "name_en"]


@admin.register(IncidentSource)
class IncidentSourceAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "licence", "default_family", "label_count"]
    search_fields = ["name", "description"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_labels=Count("labels"))

    @admin.display(description=_("labels"), ordering="_labels")
    def label_count(self, source):
        return source._labels


@admin.register(SourceLabel)
class SourceLabelAdmin(admin.ModelAdmin):
    list_display = ["label", "source", "category", "is_unclassified"]
    list_filter = ["source", "category__unclassified"]
    list_select_related = ["source", "category"]
    search_fields = ["label", "category__code", "category__name_es", "category__name_en"]

    def get_readonly_fields(self, request, obj=None):
        # The label text is what imports match on; only its category is edited.
        return ["source", "label"] if obj is not None else []

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "category":
            kwargs["queryset"] = Category.objects.filter(unclassified=False)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description=_("unclassified"), boolean=True, ordering="category__unclassified")
    def is_unclassified(self, label):
        return label.category.unclassified

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
            return
        if "category" in form.changed_data:
            result = map_label(label=obj, category=form.cleaned_data["category"])
            self.message_user(
                request,
                gettext("%(count)s incidents moved to %(category)s.")
                % {"count": result.incidents_updated, "category": obj.category},
                messages.SUCCESS,
            )


class PagedRefusedRowsFormSet(BaseInlineFormSet):
    """Shows one page of the refused rows; ``page`` is set per request by the inline."""

    page_number = 1

    def get_queryset(self):
        if not hasattr(self, "_paged_queryset"):
            paginator = Paginator(super().get_queryset(), REFUSED_ROWS_PER_PAGE)
            self.page = paginator.get_page(self.page_number)
            self._paged_queryset = list(self.page.object_list)
        return self._paged_queryset


class RefusedRowInline(ViewOnlyAdminMixin, admin.TabularInline):
    model = RefusedRow
    formset = PagedRefusedRowsFormSet
    fields = ["file_name", "row_number", "reason", "raw_values"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    template = "incidents/admin/refused_rows_inline.html"

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.page_number = request.GET.get(REFUSED_PAGE_PARAM) or 1
        formset.page_param = REFUSED_PAGE_PARAM
        return formset

    @admin.display(description=_("row as read"))
    def raw_values(self, row):
        return format_html(
            '<span style="font-family:monospace">{}</span>',
            ", ".join(f"{k}={v}" for k, v in (row.raw or {}).items())[:500],
        )


@admin.register(ImportBatch)
class ImportBatchAdmin(ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "source",
        "status_display",
        "progress_percent",
        "created_by",
        "started_at",
        "finished_at",
        "duration_s",
        *ImportBatch.ROW_COUNTS,
    ]
    list_filter = ["status", "source"]
    list_select_related = ["source", "created_by"]
    inlines = [RefusedRowInline]
    fieldsets = [
        (
            None,
            {"fields": ["source", "status_display", "progress_percent", "created_by", "skip_bad"]},
        ),
        (_("Counts"), {"fields": list(ImportBatch.ROW_COUNTS)}),
        (_("Timings"), {"fields": ["started_at", "finished_at", "duration_s", "step_timings"]}),
        (_("Files"), {"fields": ["files_table"]}),
        (_("Options and report"), {"fields": ["options_json", "report_json"]}),
    ]
    readonly_fields = flatten_fieldsets(fieldsets)

    @admin.display(description=_("status"), ordering="status")
    def status_display(self, batch):
        return status_label(batch.status)

    @admin.display(description=_("progress"), ordering="progress")
    def progress_percent(self, batch):
        return f"{round(100 * batch.progress)} %"

    @admin.display(description=_("time per step (s)"))
    def step_timings(self, batch):
        timings = (batch.report or {}).get("timings_s") or {}
        if not timings:
            return "—"
        return format_html_join(", ", "{}: {}", sorted(timings.items()))

    @admin.display(description=_("files"))
    def files_table(self, batch):
        if not batch.files:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            (
                (f.get("name", ""), f.get("bytes", ""), f.get("rows", ""), f.get("sha256", ""))
                for f in batch.files
            ),
        )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>SHA-256</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            gettext("file"),
            gettext("bytes"),
            gettext("rows"),
            rows,
        )

    @admin.display(description=_("options"))
    def options_json(self, batch):
        return _pretty_json(batch.options)

    @admin.display(description=_("report"))
    def report_json(self, batch):
        return _pretty_json(batch.report)


def _pretty_json(value) -> str:
    return format_html(
        '<pre style="white-space:pre-wrap;margin:0">{}</pre>',
        json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True),
    )


@admin.register(Incident)
class IncidentAdmin(ViewOnlyAdminMixin, OfflineGISModelAdmin):
    """Read-only, planners and superusers only."""

    list_display = [
        "external_id",
        "source",
        "category",
        "occurred_at",
        "time_precision",
        "district",
        "neighborhood",
        "location_quality",
        "batch_number",
    ]
    list_filter = ["source", "category", "district", "time_precision", "location_quality"]
    list_select_related = ["source", "category", "district", "neighborhood"]
    search_fields = ["external_id"]
    # Millions of rows: no "N total" count and no date hierarchy (both scan the table).
    show_full_result_count = False
    actions = None

    @admin.display(description=_("import batch"), ordering="batch")
    def batch_number(self, incident):
        return f"#{incident.batch_id}"

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_module_permission(self, request):
        return is_planner(request.user) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return is_planner(request.user) and super().has_view_permission(request, obj)
