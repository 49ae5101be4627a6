"""A finished run's outcome in one sentence, in the reader's language, for the run page and
the report. The run stores an English message when it ends (the command prints it, and a
failed run's reason is only there); a succeeded run's is written again here from its
summary's numbers, so a Spanish page does not show an English sentence."""

from __future__ import annotations

from collections.abc import Mapping

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from hotspots.models import HotspotRun
from hotspots.styles import candidate_label
from hotspots.tables import fmt, percent

Method = HotspotRun.Method


def run_outcome(run: HotspotRun) -> str:
    """The sentence after the run's status: its summary for a succeeded run whose summary
    has the figures, else the stored message (a refusal, a failure, an older run)."""
    if run.status != HotspotRun.Status.SUCCEEDED or not isinstance(run.summary, Mapping):
        return run.message or ""
    try:
        return summary_sentence(run.summary)
    except (KeyError, TypeError, ValueError):  # a summary from before these figures
        return run.message or ""


def summary_sentence(summary: Mapping) -> str:
    method = summary.get("method", Method.GISTAR)
    if method == Method.DBSCAN:
        return _(
            "%(incidents)s incidents; %(zones)s cluster zone(s) at a distance of %(eps)s m "
            "and %(points)s points; %(noise)s incidents in no cluster"
        ) % {
            "incidents": fmt(int(summary["incidents"])),
            "zones": fmt(int(summary["zones"])),
            "eps": fmt(float(summary["eps_m"]), 0),
            "points": fmt(int(summary["min_points"])),
            "noise": fmt(int(summary["noise_incidents"])),
        }
    cells = _("%(incidents)s incidents in %(cells)s cells (%(size)s m)") % {
        "incidents": fmt(int(summary["incidents"])),
        "cells": fmt(int(summary["cells"])),
        "size": fmt(float(summary["cell_size_m"]), 0),
    }
    if method == Method.KDE:
        detail = _("kernel density with a %(bandwidth)s m bandwidth, peak %(peak)s incidents/km²")
        values = {
            "bandwidth": fmt(float(summary["bandwidth_m"]), 0),
            "peak": fmt(float(summary["density_max_per_km2"]), 0),
        }
    elif method == Method.FORECAST:
        detail = _(
            "forecast by %(ranking)s (best back-test PAI at %(coverage)s of the area): "
            "%(flagged)s cells in %(zones)s zone(s)"
        )
        values = {
            "ranking": candidate_label(dict(summary)) or summary["chosen_label"],
            "coverage": percent(summary["coverage"]),
            "flagged": fmt(int(summary["flagged_cells"])),
            "zones": fmt(int(summary["zones"])),
        }
    elif method == Method.EMERGING:
        steps = int(summary["steps"])
        if summary["step"] == "week":
            detail = ngettext(
                "over %(steps)s weekly step; %(hot)s cells with a hot spot pattern, %(cold)s "
                "with a cold one",
                "over %(steps)s weekly steps; %(hot)s cells with a hot spot pattern, %(cold)s "
                "with a cold one",
                steps,
            )
        else:
            detail = ngettext(
                "over %(steps)s monthly step; %(hot)s cells with a hot spot pattern, %(cold)s "
                "with a cold one",
                "over %(steps)s monthly steps; %(hot)s cells with a hot spot pattern, %(cold)s "
                "with a cold one",
                steps,
            )
        values = {
            "steps": fmt(steps),
            "hot": fmt(int(summary["hot_pattern_cells"])),
            "cold": fmt(int(summary["cold_pattern_cells"])),
        }
        return f"{cells} {detail % values}"
    else:
        detail = _("%(hot)s hot and %(cold)s cold significant cells; %(zones)s zone(s)")
        values = {
            "hot": fmt(int(summary["hot_cells"])),
            "cold": fmt(int(summary["cold_cells"])),
            "zones": fmt(int(summary["zones"])),
        }
    return f"{cells}; {detail % values}"
