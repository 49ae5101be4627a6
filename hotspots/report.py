"""A hotspot run as one self-contained HTML file (folium): a map of the zones and cells
with a legend, then the parameters, summary, zones, timings, stability and validation
tables.

The file opens from disk with no network: folium's CDN scripts and stylesheets (Leaflet,
jQuery, Bootstrap, Font Awesome...) are dropped from every element, and the vendored
Leaflet of ``static/vendor`` is inlined, its images as data URIs. The only address left
is the base-map tile URL (``MAP_TILE_URL``), and only when one is configured.

The tables are also what the run page shows (:func:`run_tables`), so both read the same.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import folium
from branca.element import Element, MacroElement
from django.conf import settings
from django.contrib.gis.db.models.functions import AsGeoJSON
from django.contrib.staticfiles import finders
from django.db.models import F
from django.utils import formats
from django.utils.translation import gettext as _
from folium.template import Template

from hotspots import layers
from hotspots.engine.emerging import LEGEND
from hotspots.models import HotspotCell, HotspotRun, HotspotValidation
from incidents.models import Category

LEAFLET_DIR = "vendor/leaflet-1.9.4"
REPORT_PRECISION = 6  # decimal degrees in the report's GeoJSON (~0.1 m)
MAX_REPORT_CELLS = 20000

# Gi* confidence bins: colours shared with the planner map (static/js/maps/planner_map.js).
BIN_COLOURS = {
    3: "#b2182b",
    2: "#ef8a62",
    1: "#fddbc7",
    0: "#f7f7f7",
    -1: "#d1e5f0",
    -2: "#67a9cf",
    -3: "#2166ac",
}
# Emerging categories: hot reds, cold blues, darker = stronger pattern.
EMERGING_COLOURS = {
    1: "#fee5d9",
    2: "#fcbba1",
    3: "#fb6a4a",
    4: "#de2d26",
    5: "#fc9272",
    6: "#fdd0a2",
    7: "#e6550d",
    8: "#a63603",
    0: "#f0f0f0",
    -1: "#deebf7",
    -2: "#c6dbef",
    -3: "#6baed6",
    -4: "#2171b5",
    -5: "#9ecae1",
    -6: "#d0d1e6",
    -7: "#3182bd",
    -8: "#08519c",
}
DENSITY_RAMP = ["#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c"]
ZONE_COLOUR = "#5a1846"


def bin_labels() -> dict[int, str]:
    # "99 % c…" is not a format: tell xgettext, or msgfmt --check-format rejects "99 % de".
    return {
        # xgettext:no-python-format
        3: _("Hot spot, 99 % confidence"),
        # xgettext:no-python-format
        2: _("Hot spot, 95 % confidence"),
        # xgettext:no-python-format
        1: _("Hot spot, 90 % confidence"),
        0: _("Not significant"),
        # xgettext:no-python-format
        -1: _("Cold spot, 90 % confidence"),
        # xgettext:no-python-format
        -2: _("Cold spot, 95 % confidence"),
        # xgettext:no-python-format
        -3: _("Cold spot, 99 % confidence"),
    }


# --- tables shared by the report and the run page --------------------------------------


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    caption: str = ""


@dataclass(frozen=True)
class Pairs:
    """A table cell holding a short list of (label, value) texts, e.g. cells per
    confidence bin: both renderers draw it as a list, not as one string of JSON."""

    pairs: tuple[tuple[str, str], ...]

    def __str__(self) -> str:
        return "; ".join(f"{label}: {value}" for label, value in self.pairs)


def fmt(value, decimals: int = 2) -> str:
    """A value as the active language writes it; lists and dicts as compact JSON."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, int):
        return formats.number_format(value, use_l10n=True, force_grouping=True)
    if isinstance(value, float):
        if value != value:  # NaN
            return "—"
        if value and abs(value) < 10 ** (-decimals):
            return f"{value:.{decimals}g}"
        return formats.number_format(
            round(value, decimals), decimal_pos=decimals, use_l10n=True, force_grouping=True
        )
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return str(value)


def _percent(value) -> str:
    return "—" if value is None else fmt(100 * float(value), 1) + " %"


def summary_labels() -> dict[str, str]:
    return {
        "method": _("Method"),
        "incidents": _("Incidents"),
        "input_incidents": _("Incidents selected"),
        "cells": _("Cells"),
        "cells_with_incidents": _("Cells with incidents"),
        "cells_outside_area": _("Cells outside the area (incidents on its edge)"),
        "cell_size_m": _("Cell size (m)"),
        "cell_area_m2": _("Cell area (m²)"),
        "area_km2": _("Area (km²)"),
        "bins": _("Cells per confidence bin"),
        "hot_cells": _("Hot cells"),
        "cold_cells": _("Cold cells"),
        "hot_cells_without_fdr": _("Hot cells without FDR"),
        "cold_cells_without_fdr": _("Cold cells without FDR"),
        "edge_coverage": _("Share of a cell inside the area below which it is never cold"),
        "edge_cells": _("Cells mostly outside the area"),
        "cold_suppressed_at_edge": _("Cold cells not reported (mostly outside the area)"),
        "zones": _("Zones"),
        "p_value": _("p-value"),
        "steps": _("Time steps"),
        "step": _("Step length"),
        "incidents_per_step": _("Incidents per time step"),
        "categories": _("Cells per category"),
        "hot_pattern_cells": _("Cells with a hot spot pattern"),
        "cold_pattern_cells": _("Cells with a cold spot pattern"),
        "engine": _("Method settings"),
        "bandwidth_m": _("Bandwidth (m)"),
        "cells_zero_density_not_stored": _("Cells of zero density (not stored)"),
        "density_max_per_km2": _("Highest density (incidents per km²)"),
        "density_mean_per_km2": _("Mean density (incidents per km²)"),
        "eps_m": _("DBSCAN distance (m)"),
        "min_points": _("DBSCAN minimum points"),
        "clustered_incidents": _("Incidents in a cluster"),
        "noise_incidents": _("Incidents outside every cluster"),
        "zones_area_km2": _("Area of the zones (km²)"),
        "warnings": _("Warnings"),
        "stability": _("Stability across cell sizes"),
        "clusters": _("Clusters"),
        "noise": _("Points outside every cluster"),
    }


def param_labels() -> dict[str, str]:
    return {
        "grid": _("Grid"),
        "cell_size_m": _("Cell size (m)"),
        "cell_size_reason": _("Why this cell size"),
        "neighbour_rule": _("Neighbour rule"),
        "distance_band_m": _("Distance band (m)"),
        "alpha": _("Significance level (α)"),
        "fdr": _("False discovery rate correction"),
        "permutations": _("Permutations"),
        "seed": _("Random seed"),
        "eps_m": _("DBSCAN distance (m)"),
        "min_points": _("DBSCAN minimum points"),
        "bandwidth_m": _("Bandwidth (m)"),
        "bandwidth_reason": _("Why this bandwidth"),
        "step": _("Time step"),
        "steps": _("Time steps"),
    }


def timing_labels() -> dict[str, str]:
    return {
        "area": _("Analysis area"),
        "cell_size": _("Cell size"),
        "grid": _("Grid"),
        "count": _("Counting incidents"),
        "gistar": _("Gi* and FDR"),
        "zones": _("Zones"),
        "kde": _("Kernel density"),
        "dbscan": _("Density clustering"),
        "emerging": _("Emerging hot spots"),
        "stability": _("Stability"),
        "write": _("Writing the results"),
        "total": _("Total"),
    }


def score_labels() -> dict[str, str]:
    return {
        "label": _("Forecast"),
        "coverage": _("Coverage"),
        "n_cells": _("Cells"),
        "area": _("Area"),
        "area_share": _("Share of the area"),
        "hits": _("Incidents in it"),
        "total": _("Incidents in the period"),
        "hit_rate": _("Hit rate"),
        "pai": "PAI",
        "pai_star": "PAI*",
        "pei": "PEI",
    }


_SHARE_KEYS = {"coverage", "area_share", "hit_rate", "share", "edge_coverage"}
_RATIO_KEYS = {"pai", "pai_star", "pei"}
# Counts a report may hold as floats (validation scores): written as whole numbers.
_COUNT_KEYS = {
    "n_cells",
    "hits",
    "total",
    "incidents",
    "input_incidents",
    "cells",
    "hot_cells",
    "cold_cells",
    "clustered_incidents",
    "noise_incidents",
    "zones",
}


def _ordered(keys: Iterable[str], known: Mapping[str, str]) -> list[str]:
    keys = list(dict.fromkeys(keys))
    return [k for k in known if k in keys] + sorted(k for k in keys if k not in known)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(key: str, value) -> str:
    if key in _SHARE_KEYS and _is_number(value):
        return _percent(value)
    if key in _RATIO_KEYS and _is_number(value):
        return fmt(float(value), 2)
    if key in _COUNT_KEYS and isinstance(value, float) and value == value:
        return fmt(round(value))
    return fmt(value)


def _bin_pairs(bins: Mapping) -> Pairs:
    labels = bin_labels()
    return Pairs(
        tuple(
            (labels[b], fmt(bins.get(str(b), bins.get(b, 0))))
            for b in (3, 2, 1, 0, -1, -2, -3)
            if str(b) in bins or b in bins
        )
    )


def _category_pairs(categories: Mapping) -> Pairs:
    lang = layers.language()
    by_key = {entry["key"]: entry[lang] for entry in LEGEND.values()}
    return Pairs(tuple((by_key.get(k, k), fmt(v)) for k, v in categories.items() if v))


def _summary_value(run: HotspotRun, key: str, value):
    """A summary value as a reader wants it: bins and categories as lists, the method by
    its name, series of counts as numbers rather than JSON."""
    if key == "bins" and isinstance(value, Mapping):
        return _bin_pairs(value)
    if key == "categories" and isinstance(value, Mapping):
        return _category_pairs(value)
    if key == "engine" and isinstance(value, Mapping):
        return Pairs(tuple((str(k), fmt(v)) for k, v in value.items()))
    if key == "method" and value == run.method:
        return str(run.get_method_display())
    if key == "warnings" and isinstance(value, list):
        return "; ".join(str(v) for v in value) or "—"
    if isinstance(value, list) and all(_is_number(v) for v in value):
        return ", ".join(fmt(v) for v in value)
    return _cell(key, value)


def _records_table(title: str, records: list[Mapping], known: Mapping[str, str]) -> Table:
    keys = _ordered((k for r in records for k in r), known)
    return Table(
        title=title,
        columns=[known.get(k, k) for k in keys],
        rows=[[_cell(k, r.get(k)) for k in keys] for r in records],
    )


def _is_records(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(r, Mapping) for r in value)


def key_value_table(title: str, values: Mapping, known: Mapping[str, str]) -> Table:
    return Table(
        title=title,
        columns=[_("Item"), _("Value")],
        rows=[[known.get(k, k), _cell(k, values[k])] for k in _ordered(values, known)],
    )


def summary_table(run: HotspotRun) -> Table:
    values, known = run.summary or {}, summary_labels()
    return Table(
        title=_("Summary"),
        columns=[_("Item"), _("Value")],
        rows=[
            [known.get(k, k.replace("_", " ")), _summary_value(run, k, values[k])]
            for k in _ordered(values, known)
        ],
        # Runs from before the rule have no edge_cells and called edge cells cold.
        caption=(
            _(
                "Cells less than half inside the area are never called cold: few "
                "incidents there may only mean the cell lies mostly outside."
            )
            if "edge_cells" in values
            else ""
        ),
    )


def parameter_table(run: HotspotRun) -> Table:
    area = [d.code for d in run.districts.all()] + [n.code for n in run.neighborhoods.all()]
    rows = [
        [_("Region"), f"{run.region.name} ({run.region.code})"],
        [_("Area"), ", ".join(sorted(area)) or _("the whole region")],
        [_("Drawn polygon"), fmt(run.polygon is not None)],
        [_("Period"), f"{run.date_from.isoformat()} – {run.date_to.isoformat()}"],
        [_("Family"), run.get_family_display() if run.family else _("all")],
        [
            _("Categories"),
            ", ".join(sorted(c.code for c in run.categories.all())) or _("all"),
        ],
        [_("Method"), str(run.get_method_display())],
        [_("Metric CRS"), f"EPSG:{run.metric_srid}" if run.metric_srid else "—"],
    ]
    params = key_value_table("", run.params or {}, param_labels())
    return Table(
        title=_("Parameters"),
        columns=[_("Item"), _("Value")],
        rows=rows + params.rows + [[_("Software"), run.software_version or "—"]],
    )


def timings_table(run: HotspotRun) -> Table:
    known = timing_labels()
    timings = run.timings or {}
    return Table(
        title=_("Timings"),
        columns=[_("Step"), _("Seconds")],
        rows=[[known.get(k, k), fmt(timings[k], 3)] for k in _ordered(timings, known)],
    )


def stability_table(run: HotspotRun) -> Table | None:
    """The rows of ``run.stability`` (a list, or a dict holding ``rows``), the reference
    hot area and the lowest and mean Jaccard as the caption."""
    stability = run.stability or {}
    known = {
        "factor": _("Size factor"),
        "cell_size_m": _("Cell size (m)"),
        "cells": _("Cells"),
        "hot_cells": _("Hot cells"),
        "hot_area_km2": _("Hot area (km²)"),
        "jaccard": _("Jaccard (1 = same hot area)"),
        "error": _("Not computed because"),
    }
    title = _("Stability across cell sizes")
    if _is_records(stability):
        return _records_table(title, stability, known)
    if not isinstance(stability, Mapping) or not stability:
        return None
    rows = stability.get("rows")
    table = _records_table(title, rows, known) if _is_records(rows) else Table(title, [])
    notes = []
    reference = stability.get("reference")
    if isinstance(reference, Mapping):
        notes.append(
            _("This run: %(size)s m cells, %(hot)s hot cells, %(area)s km² hot")
            % {
                "size": fmt(reference.get("cell_size_m")),
                "hot": fmt(reference.get("hot_cells")),
                "area": fmt(reference.get("hot_area_km2"), 3),
            }
        )
    if stability.get("min_jaccard") is not None:
        notes.append(
            _("lowest Jaccard %(min)s, mean %(mean)s")
            % {
                "min": fmt(stability.get("min_jaccard"), 3),
                "mean": fmt(stability.get("mean_jaccard"), 3),
            }
        )
    table.caption = "; ".join(notes)
    return table


def _method_labels(report: Mapping) -> dict[str, str]:
    """The report's forecast names, translated (services stores them untranslated)."""
    labels = {}
    for entry in report.get("methods") or []:
        if isinstance(entry, Mapping) and entry.get("key"):
            labels[entry["key"]] = _(entry.get("label") or entry["key"])
    return labels


def validation_tables(validation: HotspotValidation) -> list[Table]:
    """The scores of a validation: one table of its ``rows`` (forecast × coverage) in the
    report's column order; older or hand-made reports with other lists of scores get one
    table per list."""
    report = validation.report or {}
    period = f"{validation.eval_from.isoformat()} – {validation.eval_to.isoformat()}"
    title = _("Validation against %(period)s") % {"period": period}
    known = {**score_labels(), "method": _("Forecast")}
    if isinstance(report, Mapping) and _is_records(report.get("rows")):
        methods = _method_labels(report)
        columns = [c for c in report.get("columns") or [] if isinstance(c, str)]
        keys = columns or _ordered((k for r in report["rows"] for k in r), known)
        rows = [
            [methods.get(r.get(k), r.get(k)) if k == "method" else _cell(k, r.get(k)) for k in keys]
            for r in report["rows"]
        ]
        notes = []
        evaluation = report.get("evaluation")
        if isinstance(evaluation, Mapping) and evaluation.get("incidents") is not None:
            notes.append(
                _("%(count)s incidents in the later period")
                % {"count": fmt(evaluation["incidents"])}
            )
        grid = report.get("grid")
        if isinstance(grid, Mapping) and grid.get("cells") is not None:
            notes.append(
                _("scored on %(cells)s cells of %(size)s m (%(area)s km²)")
                % {
                    "cells": fmt(grid["cells"]),
                    "size": fmt(grid.get("cell_size_m")),
                    "area": fmt(grid.get("area_km2"), 3),
                }
            )
        notes.extend(_(text) for text in (report.get("metrics") or {}).values())
        return [
            Table(
                title=title,
                columns=[known.get(k, k) for k in keys],
                rows=rows,
                caption="; ".join(notes),
            )
        ]
    tables: list[Table] = []
    scalars: dict = {}
    for key, value in report.items() if isinstance(report, Mapping) else ():
        if _is_records(value):
            tables.append(_records_table(f"{title}: {key.replace('_', ' ')}", value, known))
        else:
            scalars[key] = value
    if _is_records(report):
        tables.append(_records_table(title, report, known))
    if not tables:
        tables.append(Table(title=title, columns=[]))
    if scalars:
        tables[0].caption = "; ".join(
            f"{k.replace('_', ' ')}: {fmt(v)}" for k, v in scalars.items()
        )
    return tables


def category_names(codes: Iterable[str]) -> dict[str, str]:
    field_name = "name_en" if layers.language() == "en" else "name_es"
    return dict(Category.objects.filter(code__in=set(codes)).values_list("code", field_name))


def zone_rows(run: HotspotRun) -> list[dict]:
    zones = list(layers.zone_queryset(run))
    names = category_names(c.get("code") for z in zones for c in (z.top_categories or []))
    return [
        {
            "rank": z.rank,
            "incidents": z.incident_count,
            "cells": z.cell_count,
            "area_km2": z.area_m2 / 1e6,
            "density": z.density_per_km2,
            "share": z.share,
            "top": ", ".join(
                f"{names.get(c.get('code'), c.get('code'))} ({c.get('count')})"
                for c in (z.top_categories or [])[:5]
            ),
        }
        for z in zones
    ]


def zone_table(run: HotspotRun) -> Table:
    return Table(
        title=_("Zones"),
        columns=[
            _("Rank"),
            _("Incidents"),
            _("Cells"),
            _("Area (km²)"),
            _("Density (per km²)"),
            _("Share of the incidents"),
            _("Top categories"),
        ],
        rows=[
            [
                str(z["rank"]),
                fmt(z["incidents"]),
                fmt(z["cells"]),
                fmt(z["area_km2"], 3),
                fmt(z["density"], 1),
                _percent(z["share"]),
                z["top"] or "—",
            ]
            for z in zone_rows(run)
        ],
    )


def run_tables(run: HotspotRun) -> dict:
    return {
        "parameters": parameter_table(run),
        "summary": summary_table(run),
        "zones": zone_table(run),
        "timings": timings_table(run),
        "stability": stability_table(run),
        "validations": [t for v in run.validations.all() for t in validation_tables(v)],
    }


# --- the folium map ---------------------------------------------------------------------


def _static_text(name: str) -> str:
    path = finders.find(f"{LEAFLET_DIR}/{name}")
    if not path:
        raise FileNotFoundError(f"vendored {LEAFLET_DIR}/{name} is missing")
    return Path(path).read_text(encoding="utf-8")


@cache
def leaflet_assets() -> tuple[str, str]:
    """(leaflet.js, leaflet.css) with the stylesheet's images inlined as data URIs."""
    css = _static_text("leaflet.css")

    def inline(match: re.Match) -> str:
        path = finders.find(f"{LEAFLET_DIR}/{match.group(1)}")
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        return f"url(data:image/png;base64,{data})"

    css = re.sub(r"url\((images/[\w.-]+\.png)\)", inline, css)
    return _static_text("leaflet.js"), css


def _strip_cdn(element) -> None:
    """Empties every element's CDN list (on the instance: folium's lists are shared by
    the class) so that rendering adds no <script src> or <link href>."""
    if hasattr(element, "default_js"):
        element.default_js = []
        element.default_css = []
    for child in element._children.values():
        _strip_cdn(child)


_EXTERNAL_ASSET = re.compile(
    r"<script[^>]*\bsrc=[\"']?https?://[^>]*>\s*</script>|<link[^>]*\bhref=[\"']?https?://[^>]*>",
    re.IGNORECASE,
)


def _features(queryset, properties: Mapping[str, str | F], geom_field: str = "geom") -> list:
    rows = queryset.annotate(
        _geojson=AsGeoJSON(geom_field, precision=REPORT_PRECISION),
        **{f"_p_{k}": (F(v) if isinstance(v, str) else v) for k, v in properties.items()},
    ).values("_geojson", *(f"_p_{k}" for k in properties))
    return [
        {
            "type": "Feature",
            "geometry": json.loads(row["_geojson"]),
            "properties": {k: row[f"_p_{k}"] for k in properties},
        }
        for row in rows
    ]


def _cells_layer(run: HotspotRun) -> tuple[list, str, list[tuple[str, str]]]:
    """(features, property to colour by, legend entries) for the run's own cell values."""
    has = HotspotCell.objects.filter(run=run)
    if run.method == HotspotRun.Method.KDE or (
        has.filter(density__isnull=False).exists() and not has.filter(gi_bin__isnull=False).exists()
    ):
        queryset = layers.cell_queryset(run, layers.CellFilter(layer="kde")).filter(density__gt=0)
        features = _features(queryset[:MAX_REPORT_CELLS], {"count": "count", "density": "density"})
        top = max((f["properties"]["density"] for f in features), default=0) or 1
        for feature in features:
            share = feature["properties"]["density"] / top
            index = min(len(DENSITY_RAMP) - 1, int(share * len(DENSITY_RAMP)))
            feature["properties"]["colour"] = DENSITY_RAMP[index]
            feature["properties"]["density"] = round(feature["properties"]["density"], 2)
        legend = [
            (DENSITY_RAMP[0], _("Low density")),
            (DENSITY_RAMP[-1], _("%(value)s incidents per km²") % {"value": fmt(top, 1)}),
        ]
        return features, "density", legend
    if run.method == HotspotRun.Method.EMERGING:
        lang = layers.language()
        queryset = layers.cell_queryset(run, layers.CellFilter(layer="emerging")).exclude(
            emerging=0
        )
        features = _features(
            queryset[:MAX_REPORT_CELLS], {"count": "count", "emerging": "emerging"}
        )
        present = sorted({f["properties"]["emerging"] for f in features}, key=lambda c: (-c,))
        for feature in features:
            code = feature["properties"]["emerging"]
            feature["properties"]["colour"] = EMERGING_COLOURS.get(code, "#999999")
            feature["properties"]["pattern"] = LEGEND.get(code, {}).get(lang, str(code))
        legend = [(EMERGING_COLOURS.get(c, "#999999"), LEGEND[c][lang]) for c in present]
        return features, "pattern", legend
    queryset = layers.cell_queryset(run, layers.CellFilter(significant=True))
    features = _features(
        queryset[:MAX_REPORT_CELLS],
        {"count": "count", "gi_z": "gi_z", "gi_bin": "gi_bin", "zone": F("zone__rank")},
    )
    for feature in features:
        feature["properties"]["colour"] = BIN_COLOURS.get(feature["properties"]["gi_bin"])
        feature["properties"]["gi_z"] = round(feature["properties"]["gi_z"] or 0.0, 3)
    labels = bin_labels()
    # Only the significant bins are drawn.
    legend = [(BIN_COLOURS[b], labels[b]) for b in (3, 2, 1, -1, -2, -3)]
    return features, "gi_z", legend


def _zone_features(run: HotspotRun) -> list:
    rows = {z["rank"]: z for z in zone_rows(run)}
    features = _features(layers.zone_queryset(run), {"rank": "rank"})
    for feature in features:
        zone = rows[feature["properties"]["rank"]]
        # Folium's popup writes these with innerHTML: every text is escaped here.
        feature["properties"] = {
            "rank": zone["rank"],
            "incidents": fmt(zone["incidents"]),
            "area": fmt(zone["area_km2"], 3) + " km²",
            "density": fmt(zone["density"], 1),
            "share": _percent(zone["share"]),
            "top": html.escape(zone["top"] or "—"),
        }
    return features


def _legend_html(title: str, entries: list[tuple[str, str]]) -> str:
    items = "".join(
        f'<li><span class="swatch" style="background:{html.escape(colour)}"></span>'
        f"{html.escape(label)}</li>"
        for colour, label in entries
    )
    zone = (
        f'<li><span class="swatch swatch-zone"></span>{html.escape(_("Zone (merged hot cells)"))}'
        "</li>"
    )
    return (
        f'<div class="report-legend" role="note"><strong>{html.escape(title)}</strong>'
        f"<ul>{items}{zone}</ul></div>"
    )


class LegendControl(MacroElement):
    """The legend as a Leaflet control in the map's corner (its HTML is built escaped by
    :func:`_legend_html`; the template JSON-encodes it into the script)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.control({position: "bottomleft"});
            {{ this.get_name() }}.onAdd = function () {
                var box = L.DomUtil.create("div", "report-legend");
                box.innerHTML = {{ this.html|tojson }};
                return box;
            };
            {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, html_text: str):
        super().__init__()
        self._name = "LegendControl"
        self.html = html_text


def build_map(run: HotspotRun) -> folium.Map:
    bounds = run.area_geom.extent if run.area_geom is not None else None
    if bounds is None:
        extent = layers.zone_queryset(run).values_list("geom", flat=True)
        bounds = next((g.extent for g in extent), None)
    center = [(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2] if bounds else [0, 0]
    fmap = folium.Map(location=center, zoom_start=12, tiles=None, control_scale=True, height="65vh")
    if settings.MAP_TILE_URL:
        folium.TileLayer(
            tiles=settings.MAP_TILE_URL,
            attr=html.escape(settings.MAP_TILE_ATTRIBUTION or " "),
            name=_("Base map"),
            control=False,
        ).add_to(fmap)
    if run.area_geom is not None:
        folium.GeoJson(
            json.loads(run.area_geom.geojson),
            name=_("Analysis area"),
            style_function=lambda f: {"color": "#444444", "weight": 2, "fill": False},
        ).add_to(fmap)

    features, _key, legend = _cells_layer(run)
    if features:
        tooltip_fields = [
            k
            for k in ("count", "gi_z", "gi_bin", "density", "pattern")
            if k in features[0]["properties"]
        ]
        aliases = {
            "count": _("Incidents"),
            "gi_z": _("Gi* z-score"),
            "gi_bin": _("Confidence bin"),
            "density": _("Incidents per km²"),
            "pattern": _("Pattern"),
        }
        folium.GeoJson(
            {"type": "FeatureCollection", "features": features},
            name=_("Cells"),
            style_function=lambda f: {
                "color": f["properties"]["colour"],
                "weight": 0.5,
                "fillColor": f["properties"]["colour"],
                "fillOpacity": 0.7,
            },
            tooltip=folium.GeoJsonTooltip(
                fields=tooltip_fields, aliases=[html.escape(aliases[k]) for k in tooltip_fields]
            ),
        ).add_to(fmap)

    zones = _zone_features(run)
    if zones:
        fields = ["rank", "incidents", "area", "density", "share", "top"]
        aliases = [
            _("Zone rank"),
            _("Incidents"),
            _("Area"),
            _("Density (per km²)"),
            _("Share of the incidents"),
            _("Top categories"),
        ]
        folium.GeoJson(
            {"type": "FeatureCollection", "features": zones},
            name=_("Zones"),
            style_function=lambda f: {
                "color": ZONE_COLOUR,
                "weight": 2,
                "fillColor": ZONE_COLOUR,
                "fillOpacity": 0.08,
            },
            popup=folium.GeoJsonPopup(fields=fields, aliases=[html.escape(a) for a in aliases]),
        ).add_to(fmap)

    if bounds:
        fmap.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    folium.LayerControl(collapsed=False).add_to(fmap)
    fmap.add_child(LegendControl(_legend_html(_("Legend"), legend)))
    return fmap


# --- the page ---------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; color: #1d2430; }
.report-head, .report-body { max-width: 72rem; margin: 0 auto; padding: 0.5rem 1rem; }
.report-head h1 { font-size: 1.4rem; margin: 0.5rem 0 0.25rem; }
.report-head p { margin: 0.2rem 0; }
.report-synthetic { background: #fff4d6; border: 1px solid #e5c36b; padding: 0.3rem 0.6rem; }
.report-body h2 { font-size: 1.1rem; margin: 1.5rem 0 0.4rem; }
.report-body table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
.report-body th, .report-body td { border-bottom: 1px solid #d5dae1; padding: 0.3rem 0.5rem;
  text-align: left; vertical-align: top; }
.report-body th { background: #f3f5f8; }
.report-body caption { caption-side: bottom; text-align: left; color: #4a5566;
  padding-top: 0.3rem; }
.report-legend { background: rgba(255,255,255,0.95); padding: 0.4rem 0.6rem;
  font-size: 0.8rem; max-width: 16rem; }
.report-legend ul { list-style: none; margin: 0.3rem 0 0; padding: 0; }
.report-legend li { display: flex; align-items: center; gap: 0.4rem; margin: 0.1rem 0; }
.report-legend .swatch { display: inline-block; width: 1rem; height: 0.8rem;
  border: 1px solid #888; }
.report-legend .swatch-zone { border: 2px solid #5a1846; background: transparent; }
.folium-map { border-top: 1px solid #d5dae1; border-bottom: 1px solid #d5dae1; }
.table-pairs { list-style: none; margin: 0; padding: 0; }
"""


def _table_html(table: Table | None) -> str:
    if table is None:
        return ""
    out = [f"<h2>{html.escape(table.title)}</h2>"] if table.title else []
    if not table.rows:
        out.append(f"<p>{html.escape(table.caption or _('Nothing to show.'))}</p>")
        return "".join(out)
    out.append("<table>")
    if table.caption:
        out.append(f"<caption>{html.escape(table.caption)}</caption>")
    if table.columns:
        out.append(
            "<thead><tr>"
            + "".join(f'<th scope="col">{html.escape(c)}</th>' for c in table.columns)
            + "</tr></thead>"
        )
    out.append("<tbody>")
    for row in table.rows:
        out.append("<tr>" + "".join(f"<td>{_value_html(v)}</td>" for v in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _value_html(value) -> str:
    if isinstance(value, Pairs):
        items = "".join(
            f"<li>{html.escape(label)}: {html.escape(text)}</li>" for label, text in value.pairs
        )
        return f'<ul class="table-pairs">{items}</ul>'
    return html.escape(str(value))


def _head_html(run: HotspotRun) -> str:
    title = _("Hotspot run #%(id)s: %(method)s") % {
        "id": run.pk,
        "method": run.get_method_display(),
    }
    period = _("%(region)s, %(start)s to %(end)s") % {
        "region": run.region.name,
        "start": run.date_from.isoformat(),
        "end": run.date_to.isoformat(),
    }
    parts = [
        '<header class="report-head">',
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{html.escape(period)}</p>",
        f"<p>{html.escape(run.get_status_display())}: {html.escape(run.message or '')}</p>",
    ]
    if run.region.synthetic:
        parts.append(
            '<p class="report-synthetic">'
            + html.escape(_("Synthetic demo data: this city and its incidents are generated."))
            + "</p>"
        )
    parts.append("</header>")
    return "".join(parts)


def _body_html(run: HotspotRun) -> str:
    tables = run_tables(run)
    parts = ['<section class="report-body">']
    for key in ("summary", "zones", "parameters", "timings", "stability"):
        parts.append(_table_html(tables[key]))
    if tables["validations"]:
        parts.extend(_table_html(t) for t in tables["validations"])
    else:
        parts.append(f"<h2>{html.escape(_('Validation'))}</h2>")
        parts.append(
            f"<p>{html.escape(_('This run has not been validated against a later period yet.'))}</p>"
        )
    generated = _("Created by %(user)s on %(when)s.") % {
        "user": run.created_by.get_username() if run.created_by else "—",
        "when": formats.date_format(run.created_at, "DATETIME_FORMAT"),
    }
    parts.append(f"<p>{html.escape(generated)}</p></section>")
    return "".join(parts)


def _number_elements(root, prefix: str) -> None:
    """Replaces the random ids folium gives its elements (they name the page's script
    variables and divs) by ``prefix`` and a counter in tree order, so that the same run
    always renders the same bytes."""
    counter = 0
    stack = [root]
    while stack:
        element = stack.pop(0)
        element._id = f"{prefix}{counter}"
        counter += 1
        stack.extend(element._children.values())


def render_report(run: HotspotRun) -> str:
    """The run's report as one HTML document that needs no network (see the module)."""
    run = HotspotRun.objects.select_related("region", "created_by").get(pk=run.pk)
    fmap = build_map(run)
    figure = fmap.get_root()
    _strip_cdn(figure)
    script, css = leaflet_assets()
    figure.header.add_child(Element(f"<style>{css}</style>"), name="leaflet_css", index=0)
    figure.header.add_child(Element(f"<style>{_STYLE}</style>"), name="report_css")
    figure.header.add_child(Element(f"<script>{script}</script>"), name="leaflet_js", index=1)
    title = html.escape(_("Hotspot run #%(id)s") % {"id": run.pk})
    figure.header.add_child(Element(f"<title>{title}</title>"), name="title", index=0)
    _number_elements(figure, f"run{run.pk}_")
    page = figure.render()
    # Belt and braces: whatever folium or a plugin added anyway never leaves the file.
    page = _EXTERNAL_ASSET.sub("", page)
    lang = html.escape(layers.language())
    page = page.replace("<html>", f'<html lang="{lang}">', 1)
    page = page.replace("<body>", "<body>" + _head_html(run), 1)
    return page.replace("</body>", _body_html(run) + "</body>", 1)


def write_report(run: HotspotRun, path: Path | str) -> None:
    """Writes :func:`render_report` to ``path`` (UTF-8)."""
    Path(path).write_text(render_report(run), encoding="utf-8")
