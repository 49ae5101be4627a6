# ruff: noqa: F811  (pytest fixtures imported from hotspot_fixtures)
"""The folium HTML report: self-contained (no script or stylesheet from anywhere, the
vendored Leaflet inlined), with the zones, parameters, summary, stability and validation
tables, and every text from the data escaped."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.test import override_settings
from django.utils import translation

from hotspots.models import HotspotRun
from hotspots.report import render_report, write_report
from hotspots.tests.hotspot_fixtures import (  # noqa: F401  (fixtures)
    add_validation,
    copy_run,
    gistar_run,
    town,
)
from incidents.models import Category

pytestmark = pytest.mark.django_db

CSS_REMOTE = re.compile(r"""@import|url\(\s*["']?(?:https?:)?//""", re.IGNORECASE)


class _Assets(HTMLParser):
    """Every address an element of the page would load or link to (script/style text is
    not markup here, as in a browser)."""

    def __init__(self):
        super().__init__()
        self.addresses: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href", "data", "poster", "srcset") and value:
                self.addresses.append(value)
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


def remote(html: str) -> list[str]:
    """Addresses on other hosts that the page's elements or stylesheets refer to."""
    parser = _Assets()
    parser.feed(html)
    found = [a for a in parser.addresses if re.match(r"\s*(?:https?:)?//", a, re.IGNORECASE)]
    return found + [m for css in parser.styles for m in CSS_REMOTE.findall(css)]


TILE_URL = "https://tiles.example.org/{z}/{x}/{y}.png"


def report(run) -> str:
    with translation.override("en"):
        return render_report(run)


def test_the_report_needs_no_network(gistar_run):
    html = report(gistar_run)
    assert html.startswith("<!DOCTYPE html>")
    assert remote(html) == []
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", html)
    # None of folium's usual CDN hosts, whatever the attribute.
    for host in ("cdn.jsdelivr.net", "code.jquery.com", "cdnjs.cloudflare.com", "bootstrapcdn"):
        assert host not in html
    # The vendored Leaflet is inside, its images as data URIs; no tile layer without a URL.
    assert "Leaflet 1.9.4" in html or 'version = "1.9.4"' in html or '"1.9.4"' in html
    assert "url(data:image/png;base64," in html
    assert "L.tileLayer" not in html


def test_a_configured_tile_url_is_the_only_address(gistar_run):
    with override_settings(MAP_TILE_URL=TILE_URL, MAP_TILE_ATTRIBUTION="© Tiles & Co"):
        html = report(gistar_run)
    assert "L.tileLayer" in html
    assert TILE_URL in html
    assert remote(html) == []
    # Leaflet writes attributions as HTML: the setting arrives escaped (JSON-encoded here).
    assert '"attribution": "\\u00a9 Tiles \\u0026amp; Co"' in html


def test_the_report_holds_the_run(gistar_run):
    HotspotRun.objects.filter(pk=gistar_run.pk).update(
        stability={
            "reference": {"cell_size_m": 200.0, "hot_cells": 9, "hot_area_km2": 0.36},
            "rows": [
                {"factor": 0.5, "cell_size_m": 100.0, "hot_cells": 30, "jaccard": 0.61},
                {"factor": 2.0, "cell_size_m": 400.0, "hot_cells": 3, "jaccard": 0.42},
            ],
            "min_jaccard": 0.42,
            "mean_jaccard": 0.515,
        }
    )
    add_validation(gistar_run)
    html = report(gistar_run)
    assert f"Hotspot run #{gistar_run.pk}" in html
    # Zones: one table row each, with their figures.
    zones = list(gistar_run.zones.order_by("rank"))
    zone_table = html.split("<h2>Zones</h2>", 1)[1].split("</table>", 1)[0]
    assert zone_table.count("<tr>") == len(zones) + 1  # and the header
    for zone in zones:
        assert (
            f'<td class="num">{zone.rank}</td><td class="num">{zone.incident_count:,}</td>'
            in zone_table
        )
    assert "Robbery" in zone_table or "robbery" in zone_table.lower()
    # Parameters, summary and timings.
    assert "<td>Cell size (m)</td><td>200.00</td>" in html
    assert "<td>Grid</td><td>square</td>" in html
    assert f"<td>Incidents</td><td>{gistar_run.summary['incidents']:,}</td>" in html
    assert "Timings" in html and "Gi* and FDR" in html
    # Stability and the validation table with PAI for the zones and the naive baseline.
    stability = html.split("<h2>Stability across cell sizes</h2>", 1)[1].split("</table>", 1)[0]
    assert stability.count("<tr>") == 3
    assert (
        '<td class="num">0.50</td><td class="num">100.00</td><td class="num">30</td>'
        '<td class="num">0.61</td>'
    ) in stability
    assert "lowest Jaccard 0.420, mean 0.515" in html
    validation = html.split("Validation against 2024-07-01 – 2024-09-30", 1)[1]
    assert '<th scope="col" class="num">PAI</th>' in validation
    assert "<td>Hot zones</td>" in validation and '<td class="num">2.43</td>' in validation
    assert "<td>Naive: count over the run&#x27;s period</td>" in validation
    assert '<td class="num">1.25</td>' in validation
    # Counts stored as floats read as whole numbers.
    assert '<td class="num">30</td><td class="num">97</td><td class="num">300</td>' in validation
    # The map: the legend of the bins, the zones with their popups, the cells.
    assert "Hot spot, 99 % confidence" in html
    assert "Zone rank" in html
    assert html.count('"gi_bin"') >= gistar_run.cells.exclude(gi_bin=0).count()


def test_text_from_the_data_is_escaped(gistar_run):
    Category.objects.create(
        code="unclassified-x",
        name_es='<img src=x onerror="alert(1)">',
        name_en='<img src=x onerror="alert(1)">',
        family="crime",
        unclassified=True,
    )
    zone = gistar_run.zones.get(rank=1)
    zone.top_categories = [{"code": "unclassified-x", "count": 3}]
    zone.save()
    html = report(gistar_run)
    assert "<img src=x" not in html
    assert "&lt;img src=x" in html


def test_reports_of_other_methods_and_unvalidated_runs(gistar_run, tmp_path):
    run = copy_run(gistar_run, method="emerging", params={"steps": ["2024-01-01"]})
    cell = run.cells.order_by("i", "j").first()
    run.cells.filter(pk=cell.pk).update(emerging=3, step_bins=[2])
    path = tmp_path / "report.html"
    with translation.override("en"):
        write_report(run, path)
    html = path.read_text(encoding="utf-8")
    assert "Intensifying hot spot" in html  # the cell's category, in the legend
    assert "not been validated" in html
    assert remote(html) == []

    # In Spanish, the sentences written outside the tables are Spanish too.
    with translation.override("es"):
        write_report(run, path)
    spanish = path.read_text(encoding="utf-8")
    assert "<h2>Validación</h2>" in spanish
    assert "This run has not been validated" not in spanish
    with translation.override("es"):
        zones_legend = render_report(gistar_run)
    assert "Zona (celdas calientes unidas)" in zones_legend
    assert "merged hot cells" not in zones_legend

    kde = copy_run(gistar_run, method="kde")
    kde.cells.update(density=5.0)
    html = report(kde)
    assert "incidents per km" in html  # the legend of the density ramp
    assert '"density": 5.0' in html


def _rows(table) -> dict:
    return {row[0]: row[1] for row in table.rows}


def test_every_summary_item_has_a_label_and_a_readable_value(gistar_run):
    from hotspots.styles import bin_labels, summary_labels
    from hotspots.tables import Pairs, run_tables

    summary = gistar_run.summary
    assert {"method", "input_incidents", "bins"} <= set(summary)
    with translation.override("es"):
        labels = summary_labels()
        rows = _rows(run_tables(gistar_run)["summary"])
        # Every key the run stored is shown by its Spanish label, none as the raw key.
        assert set(summary) <= set(labels)
        assert set(rows) == {labels[k] for k in summary}
        assert rows[labels["method"]] == str(gistar_run.get_method_display())
        bins = rows[labels["bins"]]
        assert isinstance(bins, Pairs)
        names = bin_labels()
        assert [label for label, _count in bins.pairs] == [
            names[b] for b in (3, 2, 1, 0, -1, -2, -3)
        ]
        assert [int(count.replace(".", "").replace("\xa0", "")) for _l, count in bins.pairs] == [
            summary["bins"][str(b)] for b in (3, 2, 1, 0, -1, -2, -3)
        ]
    assert "{" not in str(bins)


def test_the_run_page_shows_the_bins_as_a_list_and_counts_as_integers(
    gistar_run, django_user_model
):
    from django.test import Client
    from django.urls import reverse

    from incidents.tests.factories import make_user

    add_validation(
        gistar_run,
        **{
            "version": 1,
            "columns": ["method", "n_cells", "hits", "total", "hit_rate", "pai", "pei"],
            "methods": [{"key": "zones", "label": "Hot zones"}],
            "rows": [
                {
                    "method": "zones",
                    "n_cells": 30,
                    "hits": 616.0,
                    "total": 1309.0,
                    "hit_rate": 0.4706,
                    "pai": 2.43125,
                    "pei": 0.5,
                }
            ],
        },
    )
    client = Client(HTTP_ACCEPT_LANGUAGE="es")
    client.force_login(make_user(django_user_model, "planner", username="tables-es"))
    html = client.get(reverse("hotspots:run-detail", args=[gistar_run.pk])).content.decode()
    summary = html.split('id="summary-table"', 1)[1].split("</table>", 1)[0]
    with translation.override("es"):
        from hotspots.styles import bin_labels

        hot99 = bin_labels()[3]
    assert '<ul class="table-pairs">' in summary and f"<li>{hot99}: " in summary
    assert "input_incidents" not in summary and "&quot;3&quot;" not in summary
    validation = html.split('<th scope="col" class="num">PAI</th>', 1)[1].split("</table>", 1)[0]
    assert '<td class="num">616</td>' in validation
    assert re.search(r'<td class="num">1[.\xa0 ]?309</td>', validation), validation
    assert '<td class="num">2,43</td>' in validation and '<td class="num">0,50</td>' in validation
    assert ",00" not in validation


def test_the_same_run_renders_the_same_report(gistar_run):
    add_validation(gistar_run)
    first, second = report(gistar_run), report(gistar_run)
    assert first == second
    # folium's ids were random hex: now the run's number and a counter.
    assert re.search(r"_[0-9a-f]{32}\b", first) is None
    assert f"map_run{gistar_run.pk}_" in first
