"""The police planner's incident map. Like the public map, the page only carries settings
and translated labels; incidents, counts, boundaries and hotspot layers come from /api/v1/
(planners-only for incidents and hotspots), fetched by static/js/maps/planner_map.js."""

import re

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext

from accounts.roles import is_planner
from geo.basemap import basemap_config
from hotspots import styles as hotspot_styles
from hotspots.models import HotspotRun
from hotspots.services import params as hotspot_params
from incidents.models import LocationQuality, TimePrecision
from incidents.selectors import batch_extent
from maps.regions import region_choices, region_picker_config
from neighborhoods.models import Region
from neighborhoods.selectors import attribution_extents, attributions

# Server-side grid clusters below this zoom, raw incident points from it on.
POINTS_MIN_ZOOM = 15


def _api_urls() -> dict[str, str]:
    """Incident endpoints (planners only) and the public boundary endpoints."""
    return {
        "incidents": reverse("incident-geojson"),
        "clusters": reverse("incident-clusters"),
        "heat": reverse("incident-heat"),
        "stats": reverse("incident-stats"),
        "export": reverse("incident-export"),
        "categories": reverse("category-list"),
        "regions": reverse("region-list"),
        "districts": reverse("district-geojson"),
    }


def _hotspot_config() -> dict:
    """Methods the services run now, the parameters each takes (the panel shows only
    those), and the colours and legends shared with the HTML report."""
    defaults = getattr(hotspot_params, "METHOD_DEFAULTS", {})
    methods = [str(m) for m in hotspot_params.SUPPORTED_METHODS]
    bin_labels = hotspot_styles.bin_labels()
    return {
        "runsUrl": reverse("hotspot-run-list"),
        "methods": methods,
        "params": {m: sorted(defaults.get(m, {})) for m in methods},
        "binColours": {str(b): c for b, c in hotspot_styles.BIN_COLOURS.items()},
        "bins": [
            {"bin": b, "colour": hotspot_styles.BIN_COLOURS[b], "label": bin_labels[b]}
            for b in (3, 2, 1, 0, -1, -2, -3)
        ],
        "emerging": [
            {**entry, "colour": hotspot_styles.EMERGING_COLOURS.get(entry["code"], "#999999")}
            for entry in hotspot_styles.emerging_legend()
        ],
        "densityRamp": hotspot_styles.DENSITY_RAMP,
        "scoreRamp": hotspot_styles.SCORE_RAMP,
        "zoneColour": hotspot_styles.ZONE_COLOUR,
        "runPage": reverse("hotspots:run-detail", args=[0]),
        "pollMs": 1000,
    }


def _hotspot_labels() -> dict:
    return {
        "none": gettext("None"),
        "runOption": gettext("#%(id)s %(method)s, %(region)s, %(start)s – %(end)s"),
        "runInfo": gettext("Incidents: %(incidents)s · zones: %(zones)s"),
        "runPageLink": gettext("Open the run's page"),
        "binsTitle": gettext("Gi* hot and cold spots"),
        "densityTitle": gettext("Kernel density (incidents per km²)"),
        "emergingTitle": gettext("Emerging hot spots"),
        "forecastTitle": gettext("Forecast: flagged cells, by score"),
        "stepTitle": gettext("Hot and cold spots in %(step)s"),
        "wholePeriod": gettext("Whole period: pattern of each cell"),
        "zone": gettext("Zone %(rank)s"),
        "rank": gettext("Rank"),
        "incidents": gettext("Incidents"),
        "area": gettext("Area"),
        "density": gettext("Density"),
        "perKm2": gettext("%(value)s per km²"),
        "share": gettext("Share of the incidents"),
        "topCategories": gettext("Top categories"),
        "cells": gettext("Cells"),
        "cell": gettext("Cell"),
        "giZ": gettext("Gi* z-score"),
        "pattern": gettext("Pattern"),
        "score": gettext("Score"),
        "ranking": gettext("Ranking"),
        "zoneRank": gettext("Zone rank"),
        "loadError": gettext("The hotspot layers could not be loaded."),
        "truncated": gettext("Only part of the cells are drawn here: zoom in to see all."),
        "queued": gettext("Waiting for a worker to start the run…"),
        "running": gettext("Running… %(percent)s done."),
        "succeeded": gettext("Done: the layers of run #%(id)s are on the map."),
        "reused": gettext(
            "Run #%(id)s already analysed exactly this with the same incidents: its "
            "layers are on the map, nothing was computed again."
        ),
        "failed": gettext("The run failed: %(message)s"),
        "pollError": gettext("The progress could not be read; retrying…"),
        "submitError": gettext("The analysis could not be started:"),
        "needDates": gettext("Choose the period to analyse."),
        "noRuns": gettext("No hotspot run yet: start one below."),
    }


def _planner_labels() -> dict:
    """Every string the planner script shows, translated for the active language."""
    return {
        "loading": gettext("Loading incidents…"),
        "loadError": gettext("The incidents could not be loaded. Try again later."),
        "boundaryError": gettext("The district boundaries could not be loaded."),
        "truncated": gettext(
            "Only the first %(limit)s incidents are drawn here: zoom in or narrow the filters."
        ),
        "noCategories": gettext("No category is selected: nothing to show."),
        "badDates": gettext("The start date is after the end date."),
        "total": gettext("%(count)s incidents in this view"),
        "totalOne": gettext("1 incident in this view"),
        "noIncidents": gettext("No incidents in this view."),
        "counting": gettext("Counting…"),
        "sensitive": gettext("sensitive"),
        "sensitiveHint": gettext("Sensitive category: never shown publicly."),
        "unclassified": gettext("Unclassified"),
        "families": {
            "crime": gettext("Crime"),
            "incivility": gettext("Incivility"),
        },
        "allInFamily": gettext("All: %(family)s"),
        "allDistricts": gettext("All districts"),
        "clusterTitle": gettext("%(count)s incidents here: click to zoom in"),
        "incident": gettext("Incident"),
        "when": gettext("When"),
        "precision": gettext("Time precision"),
        "source": gettext("Source"),
        "district": gettext("District"),
        "neighborhood": gettext("Neighborhood"),
        "locationQuality": gettext("Location"),
        "notAssigned": gettext("not assigned"),
        "range": gettext("from %(start)s to %(end)s"),
        "timePrecision": {value: str(label) for value, label in TimePrecision.choices},
        "locationQualities": {value: str(label) for value, label in LocationQuality.choices},
        "showFilters": gettext("Show filters"),
        "hideFilters": gettext("Hide filters"),
        "zoomIn": gettext("Zoom in"),
        "zoomOut": gettext("Zoom out"),
    }


def _batch_shown(request) -> tuple[dict | None, str]:
    """The import batch ``?batch=`` asks the map to show alone (its number, incident
    count and extent), and a message when it cannot be shown. Every planner sees every
    batch (as on the import pages), so being a planner is the permission."""
    raw = (request.GET.get("batch") or "").strip()
    if not raw:
        return None, ""
    if not re.fullmatch(r"[0-9]{1,10}", raw) or int(raw) >= 2**31:
        return None, gettext("There is no import batch “%(batch)s”: showing every incident.") % {
            "batch": raw[:20]
        }
    batch = batch_extent(int(raw))
    if batch is None:
        return None, gettext("There is no import batch “%(batch)s”: showing every incident.") % {
            "batch": int(raw)
        }
    batch["label"] = gettext("Batch %(number)s") % {"number": batch["id"]}
    batch["page"] = reverse("incidents:import-detail", args=[batch["id"]])
    return batch, ""


@login_required
def planner_map(request):
    if not is_planner(request.user):
        raise PermissionDenied
    batch, batch_error = _batch_shown(request)
    config = {
        **basemap_config(),
        **region_picker_config(request),
        "center": settings.MAP_DEFAULT_CENTER,
        "zoom": settings.MAP_DEFAULT_ZOOM,
        "pointsMinZoom": POINTS_MIN_ZOOM,
        "timeZone": settings.TIME_ZONE,
        "attributions": attributions(),
        "attributionExtents": attribution_extents(),
        "api": _api_urls(),
        "hotspots": _hotspot_config(),
        "batch": batch,
    }
    context = {
        "batch": batch,
        "batch_error": batch_error,
        "map_config": config,
        "map_labels": {**_planner_labels(), "hotspots": _hotspot_labels()},
        "hotspot_methods": [
            {"value": str(m), "label": HotspotRun.Method(m).label}
            for m in hotspot_params.SUPPORTED_METHODS
        ],
        "synthetic": Region.objects.filter(synthetic=True).exists(),
        "region_choices": region_choices(),
        "chosen_region": config["chosenRegion"],
        "points_min_zoom": POINTS_MIN_ZOOM,
    }
    return render(request, "maps/planner_map.html", context)
