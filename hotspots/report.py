"""A hotspot run as one self-contained HTML file (folium): a map of the zones and cells
with a legend, then the parameters, summary, zones, timings, stability and validation
tables.

The file opens from disk with no network: folium's CDN scripts and stylesheets (Leaflet,
jQuery, Bootstrap, Font Awesome...) are dropped from every element, and the vendored
Leaflet of ``static/vendor`` is inlined, its images as data URIs. The only address left
is the base-map tile URL (``MAP_TILE_URL``), and only when one is configured.

The tables are :mod:`hotspots.tables` (the run page shows the same), the colours and labels
:mod:`hotspots.styles`.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Mapping
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

from hotspots.engine.emerging import LEGEND
from hotspots.models import HotspotCell, HotspotRun
from hotspots.outcome import run_outcome
from hotspots.selectors import CellFilter, cell_queryset, zone_list
from hotspots.styles import (
    BIN_COLOURS,
    DENSITY_RAMP,
    EMERGING_COLOURS,
    SCORE_RAMP,
    ZONE_COLOUR,
    bin_labels,
    candidate_label,
    language,
)
from hotspots.tables import Pairs, Table, density, fmt, percent, run_tables, zone_rows

LEAFLET_DIR = "vendor/leaflet-1.9.4"
REPORT_PRECISION = 6  # decimal degrees in the report's GeoJSON (~0.1 m)
MAX_REPORT_CELLS = 20000


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
        queryset = cell_queryset(run, CellFilter(layer="kde")).filter(density__gt=0)
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
    if run.method == HotspotRun.Method.FORECAST:
        return _forecast_layer(run)
    if run.method == HotspotRun.Method.EMERGING:
        lang = language()
        queryset = cell_queryset(run, CellFilter(layer="emerging")).exclude(emerging=0)
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
    queryset = cell_queryset(run, CellFilter(significant=True))
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


def _forecast_layer(run: HotspotRun) -> tuple[list, str, list[tuple[str, str]]]:
    """A forecast's flagged cells on the planner map's score ramp, the legend giving each
    colour's score range (the ranking its back-test chose is named in the tooltip)."""
    queryset = cell_queryset(run, CellFilter(layer="forecast"))
    features = _features(
        queryset[:MAX_REPORT_CELLS], {"count": "count", "score": "score", "zone": F("zone__rank")}
    )
    scores = [f["properties"]["score"] for f in features]
    lowest, highest = min(scores, default=0.0), max(scores, default=0.0)
    spread = (highest - lowest) or 1.0
    ranking = candidate_label(run.summary or {})
    for feature in features:
        share = (feature["properties"]["score"] - lowest) / spread
        index = min(len(SCORE_RAMP) - 1, int(share * len(SCORE_RAMP)))
        feature["properties"]["colour"] = SCORE_RAMP[index]
        feature["properties"]["score"] = fmt(float(feature["properties"]["score"]), 3)
        feature["properties"]["ranking"] = html.escape(ranking)

    def score_at(fraction: float) -> str:
        return fmt(lowest + (highest - lowest) * fraction, 3)

    steps = len(SCORE_RAMP)
    legend = [
        (colour, f"{score_at(index / steps)} – {score_at((index + 1) / steps)}")
        for index, colour in enumerate(SCORE_RAMP)
    ]
    return features, "score", legend


def _zone_features(run: HotspotRun) -> list:
    rows = {z["rank"]: z for z in zone_rows(run)}
    features = _features(zone_list(run), {"rank": "rank"})
    for feature in features:
        zone = rows[feature["properties"]["rank"]]
        # Folium's popup writes these with innerHTML: every text is escaped here.
        feature["properties"] = {
            "rank": zone["rank"],
            "incidents": fmt(zone["incidents"]),
            "area": fmt(zone["area_km2"], 3) + " km²",
            "density": density(zone["density"]),
            "share": percent(zone["share"]),
            "top": html.escape(zone["top"] or "—"),
        }
    return features


def _legend_html(title: str, entries: list[tuple[str, str]]) -> str:
    items = "".join(
        f'<li><span class="swatch" style="background:{html.escape(colour)}"></span>'
        f"{html.escape(label)}</li>"
        for colour, label in entries
    )
    # Outside the f-string: xgettext does not look inside one, so the label was never
    # collected for translation and showed in English on Spanish reports.
    zone_label = _("Zone (merged hot cells)")
    zone = f'<li><span class="swatch swatch-zone"></span>{html.escape(zone_label)}</li>'
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
        extent = zone_list(run).values_list("geom", flat=True)
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
            for k in ("count", "gi_z", "gi_bin", "density", "pattern", "score", "ranking")
            if k in features[0]["properties"]
        ]
        aliases = {
            "count": _("Incidents"),
            "gi_z": _("Gi* z-score"),
            "gi_bin": _("Confidence bin"),
            "density": _("Incidents per km²"),
            "pattern": _("Pattern"),
            "score": _("Score"),
            "ranking": _("Ranking"),
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
    title = (
        _("Forecast: flagged cells, by score")
        if run.method == HotspotRun.Method.FORECAST
        else _("Legend")
    )
    fmap.add_child(LegendControl(_legend_html(title, legend)))
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
.report-body .table-scroll { max-width: 100%; overflow-x: auto; }
.report-head, .report-body h2, .report-body p, .report-body caption { overflow-wrap: anywhere; }
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
.report-body th.num, .report-body td.num { text-align: right;
  font-variant-numeric: tabular-nums; }
"""


def _table_html(table: Table | None) -> str:
    if table is None:
        return ""
    out = [f"<h2>{html.escape(table.title)}</h2>"] if table.title else []
    if not table.rows:
        empty = table.caption or _("Nothing to show.")
        out.append(f"<p>{html.escape(empty)}</p>")
        return "".join(out)
    out.append('<div class="table-scroll"><table>')
    if table.caption:
        out.append(f"<caption>{html.escape(table.caption)}</caption>")

    def cls(n: int) -> str:
        return ' class="num"' if n in table.numeric else ""

    if table.columns:
        out.append(
            "<thead><tr>"
            + "".join(
                f'<th scope="col"{cls(n)}>{html.escape(c)}</th>'
                for n, c in enumerate(table.columns)
            )
            + "</tr></thead>"
        )
    out.append("<tbody>")
    for row in table.rows:
        out.append(
            "<tr>"
            + "".join(f"<td{cls(n)}>{_value_html(v)}</td>" for n, v in enumerate(row))
            + "</tr>"
        )
    out.append("</tbody></table></div>")
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
        f"<p>{html.escape(run.get_status_display())}: {html.escape(run_outcome(run))}</p>",
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
    for key in ("summary", "backtest", "zones", "parameters", "timings", "stability"):
        parts.append(_table_html(tables[key]))
    if tables["validations"]:
        parts.extend(_table_html(t) for t in tables["validations"])
    else:
        # Outside the f-strings, so that xgettext collects them.
        heading = _("Validation")
        not_yet = _("This run has not been validated against a later period yet.")
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.append(f"<p>{html.escape(not_yet)}</p>")
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
    lang = html.escape(language())
    page = page.replace("<html>", f'<html lang="{lang}">', 1)
    page = page.replace("<body>", "<body>" + _head_html(run), 1)
    return page.replace("</body>", _body_html(run) + "</body>", 1)


def write_report(run: HotspotRun, path: Path | str) -> None:
    """Writes :func:`render_report` to ``path`` (UTF-8)."""
    Path(path).write_text(render_report(run), encoding="utf-8")
