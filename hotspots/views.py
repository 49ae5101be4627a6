"""Planner pages for hotspot runs: the list, each run's live progress, parameters,
results, the week-hour table of its incidents and validations, a form to validate it
against a later period, and its HTML report and zones (GeoJSON, GeoPackage) as downloads.

Planners (and superusers) only: anybody else gets 403, anonymous visitors the login page.
"""

from __future__ import annotations

import datetime as dt
import math

from django import forms
from django.core.paginator import Paginator
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from geo.geojson import GEOJSON_MEDIA_TYPE
from geo.io import GEOPACKAGE_MEDIA_TYPE
from hotspots import exports, report, selectors
from hotspots.api.serializers import is_finished
from hotspots.engine import HotspotRefused
from hotspots.forms import RunFilterForm
from hotspots.models import HotspotRun
from hotspots.outcome import run_outcome
from hotspots.services.runs import fail_abandoned_runs
from hotspots.services.validation import validate_run
from hotspots.services.week_hours import HOURS, WeekHourTable, run_week_hours
from hotspots.tables import run_tables
from incidents.views import planner_required

RUNS_PER_PAGE = 50
POLL_INTERVAL_MS = 1000
# Shades of the week-hour table: 0 for an empty hour, then 1 … WEEK_HOUR_SHADES by the
# share of the busiest hour.
WEEK_HOUR_SHADES = 5


class ValidationForm(forms.Form):
    # <input type="date"> only takes ISO dates: the active language's format would leave it empty.
    eval_from = forms.DateField(
        label=gettext_lazy("From"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    eval_to = forms.DateField(
        label=gettext_lazy("To (included)"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def clean(self):
        data = super().clean()
        start, end = data.get("eval_from"), data.get("eval_to")
        if start and end and end < start:
            self.add_error("eval_to", _("The period ends before it starts."))
        return data


def _next_period(run: HotspotRun) -> dict:
    """The period right after the run's, as long as it (a first guess for the form)."""
    start = run.date_to + dt.timedelta(days=1)
    end = start + (run.date_to - run.date_from)
    return {"eval_from": start, "eval_to": min(end, max(start, dt.date.today()))}


def _progress_labels() -> dict[str, str]:
    """Every string the progress script shows, translated for the active language."""
    return {
        "queued": _("Waiting for a worker to start the run…"),
        # Filled in by static/js/job_progress.js.
        "running": _("Running…"),
        "runningPercent": _("Running… %(percent)s done."),
        "finished": _("Finished. Loading the results…"),
        "pollError": _("The progress could not be read; retrying…"),
    }


@never_cache
@planner_required
@require_GET
def run_list(request):
    fail_abandoned_runs()
    form = RunFilterForm(request.GET)
    filters = form.filters()
    show_superseded = form.show_superseded()
    runs = selectors.run_list(**filters, superseded=None if show_superseded else False)
    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    rows = [
        {
            "run": run,
            "finished": is_finished(run),
            "percent": round(100 * run.progress),
            "zones": (run.summary or {}).get("zones"),
            "incidents": (run.summary or {}).get("incidents"),
            "superseded_by": run.superseded_by,
        }
        for run in page
    ]
    query = request.GET.copy()
    query.pop("page", None)
    toggle = query.copy()
    if show_superseded:
        toggle.pop("superseded", None)
    else:
        toggle["superseded"] = "on"
    context = {
        "form": form,
        "page": page,
        "rows": rows,
        "query": query.urlencode(),
        "show_superseded": show_superseded,
        "superseded_count": selectors.run_list(**filters, superseded=True).count(),
        "toggle_query": toggle.urlencode(),
        "filtered": any(value for value in filters.values()),
    }
    return render(request, "hotspots/run_list.html", context)


def _shade(value: float, top: float) -> int:
    if value <= 0 or top <= 0:
        return 0
    return max(1, math.ceil(WEEK_HOUR_SHADES * value / top - 1e-9))


def _week_hours(table: WeekHourTable) -> dict:
    """The week-hour table as the page draws it: a row per weekday, a shade per hour."""
    top = table.maximum
    rows = [
        {
            "label": WEEKDAYS[day],
            "cells": [{"value": v, "shade": _shade(v, top)} for v in table.weights[day].tolist()],
            "total": float(table.weights[day].sum()),
        }
        for day in range(7)
    ]
    return {"table": table, "rows": rows, "hours": HOURS}


def _detail(request, run: HotspotRun, form: ValidationForm, status: int = 200):
    finished = is_finished(run)
    context = {
        "run": run,
        "outcome": run_outcome(run),
        "finished": finished,
        "percent": round(100 * run.progress),
        "tables": run_tables(run) if finished else None,
        "week_hours": _week_hours(run_week_hours(run=run)) if finished else None,
        "form": form,
        "can_validate": run.status == HotspotRun.Status.SUCCEEDED,
        "map_url": f"{reverse('planner-map')}?run={run.pk}",
        "progress_config": {
            "url": reverse("hotspot-run-detail", args=[run.pk]),
            "intervalMs": POLL_INTERVAL_MS,
            "bar": "run-progress",
            "text": "run-progress-text",
            "badge": "run-status",
        },
        "progress_labels": _progress_labels(),
    }
    return render(request, "hotspots/run_detail.html", context, status=status)


def _get_run(pk: int) -> HotspotRun:
    fail_abandoned_runs()
    return get_object_or_404(
        HotspotRun.objects.select_related("region", "created_by").prefetch_related(
            "districts", "neighborhoods", "categories", "validations"
        ),
        pk=pk,
    )


@never_cache
@planner_required
@require_GET
def run_detail(request, pk: int):
    run = _get_run(pk)
    return _detail(request, run, ValidationForm(initial=_next_period(run)))


@never_cache
@planner_required
@require_POST
def run_validate(request, pk: int):

    run = _get_run(pk)
    form = ValidationForm(request.POST)
    if form.is_valid():
        try:
            validate_run(
                run=run,
                eval_from=form.cleaned_data["eval_from"],
                eval_to=form.cleaned_data["eval_to"],
                user=request.user,
            )
        except HotspotRefused as exc:
            form.add_error(None, str(exc))
        else:
            return redirect(reverse("hotspots:run-detail", args=[run.pk]) + "#validations")
    return _detail(request, _get_run(pk), form, status=400)


@never_cache
@planner_required
@require_GET
def run_report(request, pk: int):
    run = _get_run(pk)
    response = HttpResponse(report.render_report(run), content_type="text/html; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="hotspot-run-{run.pk}.html"'
    return response


def _export_refused(request, run: HotspotRun):
    """A run without a result to download: 409, with a page that says why."""
    if run.status == HotspotRun.Status.FAILED:
        reason = _("This run failed and wrote no zones: there is nothing to download.")
    else:
        reason = _("This run has not finished yet: its zones can be downloaded once it has.")
    return render(
        request, "hotspots/export_refused.html", {"run": run, "reason": reason}, status=409
    )


@never_cache
@planner_required
@require_GET
def run_zones_geojson(request, pk: int):
    """The run's zones as GeoJSON (EPSG:4326), the byte-stable file of hotspots.exports."""
    run = _get_run(pk)
    if run.status != HotspotRun.Status.SUCCEEDED:
        return _export_refused(request, run)
    response = StreamingHttpResponse(exports.zones_geojson(run), content_type=GEOJSON_MEDIA_TYPE)
    response["Content-Disposition"] = f'attachment; filename="hotspot-run-{run.pk}-zones.geojson"'
    return response


@never_cache
@planner_required
@require_GET
def run_zones_geopackage(request, pk: int):
    """The run's zones as a GeoPackage (layer "zones", EPSG:4326)."""
    run = _get_run(pk)
    if run.status != HotspotRun.Status.SUCCEEDED:
        return _export_refused(request, run)
    return FileResponse(
        exports.zones_geopackage_file(run),
        as_attachment=True,
        filename=f"hotspot-run-{run.pk}-zones.gpkg",
        content_type=GEOPACKAGE_MEDIA_TYPE,
    )
