"""Planner pages for incident imports: the batches, an upload form with the options of
``manage.py import_incidents``, and each batch's live progress and full report.

Planners (and superusers) only: anybody else gets 403, anonymous visitors the login page.
"""

from functools import wraps
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from accounts.roles import is_planner
from incidents.forms import ImportPreviewForm, ImportUploadForm
from incidents.models import ImportBatch, RefusedRow
from incidents.reasons import render_summary
from incidents.services.batches import (
    COLUMN_OPTIONS,
    fail_abandoned_batches,
    is_finished,
    max_upload_bytes,
    start_web_import,
    status_label,
)
from incidents.services.bounds import IncidentFileError
from incidents.services.previews import (
    PREVIEW_ROWS,
    PreviewNotFound,
    discard_preview,
    guessed_mapping,
    load_preview,
    names_a_column,
    preview_tables,
    stage_preview,
    start_preview_import,
    sweep_previews,
)
from incidents.services.zones import zone_lines

BATCHES_PER_PAGE = 50
REFUSED_PER_PAGE = 200
POLL_INTERVAL_MS = 1000
PREVIEW_SESSION_KEY = "import_previews"
PREVIEWS_PER_SESSION = 10


def planner_required(view):
    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not is_planner(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


def _timing_labels() -> dict[str, str]:
    return {
        "read_validate_copy": _("Read, check and stage the rows"),
        "database_busy": _("Database writing, while the rows were read"),
        "insert": _("Writing left after the last row was read"),
        "duplicates": _("Labels and duplicate ids"),
        "index_rebuild": _("Build the indexes again (bulk load)"),
        "commit": _("Commit"),
    }


def _progress_labels() -> dict[str, str]:
    """Every string the progress script shows, translated for the active language."""
    return {
        "queued": _("Waiting for a worker to start the import…"),
        # "%(seconds)s" is replaced by the script.
        "running": _("Importing… %(seconds)s s so far."),
        "runningPercent": _("Importing… %(percent)s done, %(seconds)s s so far."),
        "finished": _("Finished. Loading the report…"),
        "pollError": _("The progress could not be read; retrying…"),
    }


def progress_payload(batch: ImportBatch) -> dict:
    finished = is_finished(batch)
    end = batch.finished_at or timezone.now()
    return {
        "id": batch.pk,
        "status": batch.status,
        "status_label": status_label(batch.status),
        "finished": finished,
        "progress": round(batch.progress, 4),
        "elapsed_s": max(0, round((end - batch.started_at).total_seconds())),
        "rows_read": batch.rows_read,
        "rows_refused": batch.rows_refused,
    }


@require_GET
@planner_required
def import_list(request):
    fail_abandoned_batches()
    batches = ImportBatch.objects.select_related("source", "created_by").order_by("-pk")
    page = Paginator(batches, BATCHES_PER_PAGE).get_page(request.GET.get("page"))
    rows = [
        {
            "batch": batch,
            "status_label": status_label(batch.status),
            "finished": is_finished(batch),
            "percent": round(100 * batch.progress),
            "file_names": ", ".join(f.get("name", "") for f in batch.files),
        }
        for batch in page
    ]
    return render(request, "incidents/import_list.html", {"page": page, "rows": rows})


def _new_page(request, form, *, status: int = 200, page_error: str = ""):
    context = {
        "form": form,
        "page_error": page_error,
        "column_fields": [form[name] for name in COLUMN_OPTIONS],
        "max_megabytes": round(max_upload_bytes() / (1024 * 1024)),
    }
    return render(request, "incidents/import_new.html", context, status=status)


def _add_errors(form, exc: ValidationError) -> None:
    for field, messages in exc.message_dict.items():
        for message in messages:
            form.add_error(field if field in form.fields else None, message)


def _session_previews(request) -> list[str]:
    return [t for t in request.session.get(PREVIEW_SESSION_KEY, []) if isinstance(t, str)]


def _forget_preview(request, token: str) -> None:
    request.session[PREVIEW_SESSION_KEY] = [t for t in _session_previews(request) if t != token]


@require_http_methods(["GET", "POST"])
@planner_required
def import_new(request):
    """Step one: the files and options. A form that names a column starts the import at
    once (as the API does); otherwise the files are kept and the preview comes next."""
    if request.method == "POST":
        form = ImportUploadForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                if names_a_column(form.cleaned_data):
                    batch = start_web_import(
                        user=request.user,
                        uploaded_files=form.cleaned_data["files"],
                        options=form.cleaned_data,
                    )
                else:
                    staged = stage_preview(
                        user=request.user,
                        uploaded_files=form.cleaned_data["files"],
                        options=form.cleaned_data,
                    )
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                if names_a_column(form.cleaned_data):
                    return redirect("incidents:import-detail", pk=batch.pk)
                kept = _session_previews(request)[-(PREVIEWS_PER_SESSION - 1) :]
                request.session[PREVIEW_SESSION_KEY] = [*kept, staged.token]
                return redirect("incidents:import-preview", token=staged.token)
    else:
        form = ImportUploadForm()
    return _new_page(request, form)


def _preview_gone(request):
    message = _(
        "This preview cannot be found: it has expired, was already imported, or belongs "
        "to somebody else. Upload the file again."
    )
    return _new_page(request, ImportUploadForm(), status=400, page_error=message)


@require_http_methods(["GET", "POST"])
@never_cache
@planner_required
def import_preview(request, token: str):
    """Step two: the first rows of the files kept, a column for each role (preset to the
    one the import would guess), the options again; confirming starts the import."""
    sweep_previews()
    if token not in _session_previews(request):
        return _preview_gone(request)
    try:
        staged = load_preview(user=request.user, token=token)
    except PreviewNotFound:
        _forget_preview(request, token)
        return _preview_gone(request)
    if request.method == "POST" and "cancel" in request.POST:
        discard_preview(token=token)
        _forget_preview(request, token)
        return redirect("incidents:import-new")
    try:
        tables = preview_tables(staged=staged)
    except IncidentFileError as exc:
        discard_preview(token=token)
        _forget_preview(request, token)
        return _new_page(request, ImportUploadForm(), status=400, page_error=str(exc))
    header = tables[0].header
    form_kwargs = {"header": header, "tables": staged.tables}
    if request.method == "POST":
        form = ImportPreviewForm(request.POST, **form_kwargs)
        if form.is_valid():
            try:
                batch = start_preview_import(
                    user=request.user, staged=staged, options=form.cleaned_data
                )
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                _forget_preview(request, token)
                return redirect("incidents:import-detail", pk=batch.pk)
    else:
        initial = {
            **{k: v for k, v in staged.options.items() if v is not None},
            **guessed_mapping(staged=staged, header=header),
        }
        form = ImportPreviewForm(initial=initial, **form_kwargs)
    context = {
        "form": form,
        "tables": tables,
        "header": header,
        "token": token,
        "preview_rows": PREVIEW_ROWS,
    }
    return render(request, "incidents/import_preview.html", context)


def _admin_labels_url(batch: ImportBatch) -> str:
    try:
        url = reverse("admin:incidents_sourcelabel_changelist")
    except NoReverseMatch:
        return ""
    return f"{url}?source__id__exact={batch.source_id}&category__unclassified__exact=1"


def _batch_map_url(batch: ImportBatch) -> str:
    """The planner map showing this batch's incidents alone, once it has written some."""
    if batch.status != ImportBatch.Status.SUCCEEDED or not (
        batch.rows_created or batch.rows_updated
    ):
        return ""
    try:
        url = reverse("planner-map")
    except NoReverseMatch:
        return ""
    return f"{url}?{urlencode({'batch': batch.pk})}"


@require_GET
@never_cache
@planner_required
def import_detail(request, pk: int):
    fail_abandoned_batches()
    batch = get_object_or_404(ImportBatch.objects.select_related("source", "created_by"), pk=pk)
    refused = Paginator(batch.refused_rows.only(*RefusedRow.SHOWN_FIELDS), REFUSED_PER_PAGE)
    refused_page = refused.get_page(request.GET.get("page"))
    report = batch.report or {}
    timing_labels = _timing_labels()
    options = batch.options or {}
    context = {
        "batch": batch,
        "status_label": status_label(batch.status),
        "finished": is_finished(batch),
        "percent": round(100 * batch.progress),
        "payload": progress_payload(batch),
        "options": options,
        "columns": sorted((options.get("columns") or {}).items()),
        # In pipeline order (jsonb keeps keys in its own order).
        "timings": [
            (timing_labels.get(name, name), seconds)
            for name, seconds in sorted(
                (report.get("timings_s") or {}).items(),
                key=lambda kv: (
                    list(timing_labels).index(kv[0])
                    if kv[0] in timing_labels
                    else len(timing_labels)
                ),
            )
        ],
        "indexes_rebuilt": ", ".join(report.get("indexes_rebuilt") or []),
        # The zone(s) naive times were read in and why (batches finished before the
        # report said so show the option alone).
        "time_zone_lines": (zone_lines(report["time_zones"]) if "time_zones" in report else []),
        "unmapped_labels": sorted(
            (report.get("unmapped_labels") or {}).items(), key=lambda kv: (-kv[1], kv[0])
        ),
        "refused_reasons": sorted(
            (
                (render_summary(key), count)
                for key, count in (report.get("refused_reasons") or {}).items()
            ),
            key=lambda kv: (-kv[1], kv[0]),
        ),
        "error": report.get("error", ""),
        "refused_page": refused_page,
        "labels_admin_url": _admin_labels_url(batch),
        "map_url": _batch_map_url(batch),
        "progress_config": {
            "url": reverse("incidents:import-progress", args=[batch.pk]),
            "intervalMs": POLL_INTERVAL_MS,
            "bar": "batch-progress",
            "text": "batch-progress-text",
            "badge": "batch-status",
        },
        "progress_labels": _progress_labels(),
    }
    return render(request, "incidents/import_detail.html", context)


@require_GET
@never_cache
@planner_required
def import_progress(request, pk: int):
    fail_abandoned_batches()
    batch = get_object_or_404(ImportBatch, pk=pk)
    return JsonResponse(progress_payload(batch))
