"""The public spaces on maps: the condition colours and legend, and the settings and labels,
in the active language, that the map scripts read (the municipal map and a space's map,
the public map's layer of recovered spaces, the planner map's layer of spaces with the
incidents around them).
"""

from __future__ import annotations

import json

from django.conf import settings
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from geo.basemap import basemap_config
from geo.geojson import feature_queryset
from neighborhoods.models import District
from neighborhoods.selectors import attribution_extents, attributions
from publicspaces import selectors
from publicspaces.models import PUBLIC_CONDITIONS, Condition, ProjectPhoto, ProjectStatus, SpaceKind

# Condition colours shared by the municipal map, its legend and the public layer.
CONDITION_COLOURS = {
    Condition.DEGRADED: "#c0392b",
    Condition.IN_RECOVERY: "#d68910",
    Condition.RECOVERED: "#1e8449",
    Condition.MAINTAINED: "#1f618d",
    Condition.LOST_AGAIN: "#6c3483",
}


def condition_legend() -> list[dict]:
    return [
        {"value": value, "label": str(label), "colour": CONDITION_COLOURS[value]}
        for value, label in Condition.choices
    ]


def choice_labels(choices) -> dict[str, str]:
    return {value: str(label) for value, label in choices}


def base_map_config() -> dict:
    return {
        **basemap_config(),
        "center": settings.MAP_DEFAULT_CENTER,
        "zoom": settings.MAP_DEFAULT_ZOOM,
        "attributions": attributions(),
        "attributionExtents": attribution_extents(),
        "conditionColours": {str(k): v for k, v in CONDITION_COLOURS.items()},
    }


def space_map_labels() -> dict:
    """Every string the municipal map scripts show, in the active language."""
    return {
        "zoomIn": _("Zoom in"),
        "zoomOut": _("Zoom out"),
        "loading": _("Loading the spaces…"),
        "loadError": _("The spaces could not be loaded. Try again later."),
        "noSpaces": _("No public space recorded here yet."),
        "openSpace": _("Open the space's page"),
        "demo": _("demo data"),
        "score": _("Condition score"),
        "activities": _("Activities"),
        "project": _("Project"),
        "drawHint": _("Draw the space with the tools on the map: a polygon, a line or a point."),
        "drawn": _("Shape drawn. Fill in the form and save."),
        "editing": _("Drag the vertices or the whole shape, then save."),
        "district": _("District"),
        "conditions": choice_labels(Condition.choices),
        "kinds": choice_labels(SpaceKind.choices),
        "statuses": choice_labels(ProjectStatus.choices),
        # Geoman's own buttons.
        "drawPolygon": _("Draw an area, corner by corner"),
        "drawRectangle": _("Draw a rectangular area"),
        "drawLine": _("Draw a line (street-lighting stretch)"),
        "drawMarker": _("Drop a point"),
        "removeDrawn": _("Remove the drawing"),
        # The short text shown next to each drawing button's icon (issue 13, item 10).
        "drawTools": {
            "drawPolygon": pgettext("drawing tool", "Polygon"),
            "drawPolyline": pgettext("drawing tool", "Line"),
            "drawMarker": pgettext("drawing tool", "Point"),
            "drawRectangle": pgettext("drawing tool", "Rectangle"),
        },
    }


def district_outlines(district_ids) -> dict:
    """The districts' borders as a FeatureCollection, simplified in PostGIS for a
    street-level zoom (geo.geojson builds each feature's JSON text)."""
    rows = feature_queryset(
        District.objects.filter(pk__in=list(district_ids)).order_by("id"),
        geom_field="geom",
        properties={"code": "code", "name": "name"},
        zoom=15,
    )
    return {"type": "FeatureCollection", "features": [json.loads(r[0]) for r in rows]}


def public_layer_config() -> dict:
    """Settings and labels of the public map's layer of recovered spaces
    (static/js/maps/public_map.js), in the active language."""
    return {
        "api": reverse("publicspace-public"),
        "colours": {str(c): CONDITION_COLOURS[c] for c in PUBLIC_CONDITIONS},
        "labels": {
            "layer": _("Recovered public spaces"),
            "kinds": choice_labels(SpaceKind.choices),
            "conditions": choice_labels(Condition.choices),
            "stages": choice_labels(ProjectPhoto.Stage.choices),
            "district": _("District"),
            "neighborhood": _("Neighborhood"),
            "worksStarted": _("Works started"),
            "recoveredOn": _("Recovered on"),
            "maintainedOn": _("Maintained since"),
            "activities": _("Activities held"),
            "participants": _("Participants"),
            "photo": _("Photo: %(stage)s"),
            "demo": _("demo data"),
            "loadError": _("The public spaces could not be loaded."),
        },
    }


def planner_layer_config() -> dict:
    """Settings and labels of the planner map's layer of spaces with the incidents around
    them (static/js/maps/planner/spaces.js), in the active language."""
    return {
        "api": reverse("publicspace-incident-change"),
        # The planner page does not link this app's stylesheet: the script adds it.
        "css": static("css/publicspaces.css"),
        "defaultDistance": selectors.DEFAULT_DISTANCE_M,
        "maxDistance": selectors.MAX_DISTANCE_M,
        "months": selectors.DEFAULT_WINDOW_MONTHS,
        "labels": {
            "title": _("Recovered spaces: incidents nearby"),
            "show": _("Show the recovered spaces"),
            "distance": _("Distance (m)"),
            "apply": _("Count"),
            "before": _("Incidents in the %(months)s months before recovery"),
            "after": _("Incidents in the %(months)s months after recovery"),
            "complete": _("The period after recovery is complete."),
            "incomplete": _("The period after recovery is not over yet: the count is partial."),
            "within": _("within %(distance)s m"),
            "recoveredOn": _("Recovered on"),
            "fewer": _("Fewer incidents after"),
            "more": _("More incidents after"),
            "same": _("No change"),
            "partial": _("Period after not complete"),
            "badDistance": _("Enter a distance between 10 and %(max)s metres."),
            "loadError": _("The spaces could not be loaded."),
            "countOne": _("1 recovered space"),
            "count": _("%(count)s recovered spaces"),
            "kinds": choice_labels(SpaceKind.choices),
            "demo": _("demo data"),
        },
    }
