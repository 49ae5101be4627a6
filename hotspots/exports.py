"""A hotspot run's result as a file: the same run inputs always give the same bytes (cells
in (i, j) order, fixed float formatting, no database ids or timestamps), so that two runs
can be compared with ``cmp``. :func:`cells_geojson` is the grid methods' cells,
:func:`zones_geojson` the zones (the only result of DBSCAN runs). :func:`write_zones_geopackage`
writes the zones with the same attributes as a GeoPackage (whose bytes hold the time it was
written, so not byte-stable) for GIS software.

The features are written here rather than by :mod:`geo.geojson`: PostgreSQL's JSON builders
order keys their own way and print floats at full precision, and these files' bytes (6
decimals for z-scores and areas, 6 significant digits for p-values and densities, the
emerging category by its key) are what ``run_hotspots --output`` has always written.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import geopandas as gpd
import pandas as pd
import shapely
from django.contrib.gis.db.models.functions import AsGeoJSON, AsWKB
from django.db.models import F

from geo.conf import STORAGE_SRID
from geo.io import write_geopackage
from hotspots.engine.emerging import LEGEND
from hotspots.models import HotspotRun
from hotspots.selectors import cell_list, zone_list

GEOJSON_PRECISION = 7  # decimal degrees: about 1 cm


def run_record(run: HotspotRun) -> dict:
    """What the run was asked and how it was computed: no ids, no clock times."""
    return {
        "region": run.region.code,
        "districts": sorted(run.districts.values_list("code", flat=True)),
        "neighborhoods": sorted(run.neighborhoods.values_list("code", flat=True)),
        "polygon": run.polygon is not None,
        "date_from": run.date_from.isoformat(),
        "date_to": run.date_to.isoformat(),
        "family": run.family or None,
        "categories": sorted(run.categories.values_list("code", flat=True)),
        "method": run.method,
        "params": run.params,
        "metric_srid": run.metric_srid,
        "software_version": run.software_version,
        "summary": run.summary,
    }


def _format_z(value: float | None) -> str:
    if value is None:
        return "null"
    text = f"{value:.6f}"
    return "0.000000" if text == "-0.000000" else text


def _format_p(value: float | None) -> str:
    return "null" if value is None else format(value, ".6g")


def _format_int(value: int | None) -> str:
    return "null" if value is None else str(value)


def _format_ints(values: list[int] | None) -> str:
    return "null" if values is None else "[" + ",".join(map(str, values)) + "]"


def _format_weights(values: list[float] | None) -> str:
    """Aoristic weights: whole ones as integers (exact times), others to 6 decimals."""
    if values is None:
        return "null"
    parts = []
    for value in values:
        value = round(float(value), 6)
        parts.append(str(int(value)) if value.is_integer() else repr(value))
    return "[" + ",".join(parts) + "]"


def cells_geojson(run: HotspotRun, *, chunk_size: int = 5000) -> Iterator[bytes]:
    """The run's cells as a GeoJSON FeatureCollection, streamed in chunks of bytes.

    Properties of every run: ``i``, ``j``, ``count``, ``gi_z`` (6 decimals), ``gi_p`` (6
    significant digits), ``gi_bin``, ``zone`` (the zone's rank), null where the method has
    no such value. KDE runs add ``density`` (incidents/km², 6 significant digits);
    emerging runs add ``emerging`` (the category key of engine.emerging.LEGEND),
    ``trend_tau``, ``trend_p`` and the per-step ``step_counts`` and ``step_bins`` (the
    steps' first days are in ``hotspot_run.params.steps``; gi_* are the last step's). The
    run's parameters travel in a ``hotspot_run`` member.
    """
    head = json.dumps(run_record(run), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    yield f'{{"type":"FeatureCollection","hotspot_run":{head},"features":['.encode()
    kde = run.method == HotspotRun.Method.KDE
    emerging = run.method == HotspotRun.Method.EMERGING
    columns = ["i", "j", "count", "gi_z", "gi_p", "gi_bin", "zone_rank", "geojson"]
    if kde:
        columns.append("density")
    if emerging:
        columns += ["emerging", "trend_tau", "trend_p", "step_counts", "step_bins"]
    rows = (
        cell_list(run)
        .annotate(geojson=AsGeoJSON("geom", precision=GEOJSON_PRECISION), zone_rank=F("zone__rank"))
        .values_list(*columns)
        .iterator(chunk_size=chunk_size)
    )
    parts: list[str] = []
    first = True
    for row in rows:
        i, j, count, z, p, gi_bin, zone, geometry = row[:8]
        extra = ""
        if kde:
            extra = f',"density":{_format_p(row[8])}'
        if emerging:
            category, tau, trend_p, step_counts, step_bins = row[8:]
            key = "null" if category is None else f'"{LEGEND[category]["key"]}"'
            extra = (
                f',"emerging":{key},"trend_tau":{_format_z(tau)},"trend_p":{_format_p(trend_p)}'
                f',"step_counts":{_format_weights(step_counts)},"step_bins":{_format_ints(step_bins)}'
            )
        parts.append(
            f'{"" if first else ","}{{"type":"Feature","geometry":{geometry},"properties":'
            f'{{"i":{i},"j":{j},"count":{count},"gi_z":{_format_z(z)},"gi_p":{_format_p(p)},'
            f'"gi_bin":{_format_int(gi_bin)},"zone":{_format_int(zone)}{extra}}}}}'
        )
        first = False
        if len(parts) >= chunk_size:
            yield "".join(parts).encode()
            parts = []
    if parts:
        yield "".join(parts).encode()
    yield b"]}\n"


def _format_float(value: float) -> str:
    text = f"{value:.6f}"
    return "0.000000" if text == "-0.000000" else text


def zones_geojson(run: HotspotRun) -> Iterator[bytes]:
    """The run's zones as a GeoJSON FeatureCollection, with the same run record and
    byte-for-byte reproducibility as :func:`cells_geojson` (zones in rank order).

    Properties: ``rank``, ``incident_count``, ``cell_count`` (0 for DBSCAN, which has no
    grid), ``area_m2`` and ``density_per_km2`` (6 decimals), ``share`` (6 significant
    digits) and ``top_categories`` ([{"code", "count"}], most frequent first).
    """
    head = json.dumps(run_record(run), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    yield f'{{"type":"FeatureCollection","hotspot_run":{head},"features":['.encode()
    rows = (
        zone_list(run)
        .annotate(geojson=AsGeoJSON("geom", precision=GEOJSON_PRECISION))
        .values_list(
            "rank",
            "incident_count",
            "cell_count",
            "area_m2",
            "density_per_km2",
            "share",
            "top_categories",
            "geojson",
        )
    )
    features = []
    for rank, incidents, cells, area, density, share, top, geometry in rows:
        top_json = json.dumps(top, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        features.append(
            f'{{"type":"Feature","geometry":{geometry},"properties":{{"rank":{rank},'
            f'"incident_count":{incidents},"cell_count":{cells},'
            f'"area_m2":{_format_float(area)},"density_per_km2":{_format_float(density)},'
            f'"share":{_format_p(share)},"top_categories":{top_json}}}}}'
        )
    yield ",".join(features).encode()
    yield b"]}\n"


ZONE_LAYER = "zones"
# The GeoPackage's columns and their types, in the GeoJSON properties' order.
ZONE_COLUMNS = {
    "rank": "int64",
    "incident_count": "int64",
    "cell_count": "int64",
    "area_m2": "float64",
    "density_per_km2": "float64",
    "share": "float64",
    "top_categories": "object",  # JSON text: [{"code", "count"}], most frequent first
}


def zones_frame(run: HotspotRun) -> gpd.GeoDataFrame:
    """The run's zones in rank order as a GeoDataFrame in EPSG:4326, with the properties
    of :func:`zones_geojson` (``top_categories`` as JSON text); no rows when it has none."""
    rows = list(
        zone_list(run)
        .annotate(wkb=AsWKB("geom"))
        .values_list(*[c for c in ZONE_COLUMNS if c != "top_categories"], "top_categories", "wkb")
    )
    columns = {}
    for index, (name, dtype) in enumerate(ZONE_COLUMNS.items()):
        values = [row[index] for row in rows]
        if name == "top_categories":
            values = [
                json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                for v in values
            ]
        columns[name] = pd.Series(values, dtype=dtype)
    geometry = gpd.GeoSeries(
        shapely.from_wkb([bytes(row[-1]) for row in rows]), crs=f"EPSG:{STORAGE_SRID}"
    )
    return gpd.GeoDataFrame(columns, geometry=geometry)


def write_zones_geopackage(run: HotspotRun, path: Path) -> None:
    """The run's zones (:func:`zones_frame`) as the layer "zones" of a GeoPackage at
    ``path``; the run record of :func:`zones_geojson` is the layer's ``hotspot_run``
    metadata."""
    record = json.dumps(run_record(run), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    write_geopackage(
        zones_frame(run),
        Path(path),
        layer=ZONE_LAYER,
        geometry_type="MultiPolygon",
        metadata={"hotspot_run": record},
    )


def zones_geopackage_file(run: HotspotRun) -> BinaryIO:
    """The run's zones as a GeoPackage written to a temporary file, returned open for
    reading; the file is already deleted (the open handle keeps it until closed), so a
    download streams it without leaving it behind."""
    with tempfile.TemporaryDirectory(prefix="barrio-zones-") as folder:
        path = Path(folder) / f"hotspot-run-{run.pk}-zones.gpkg"
        write_zones_geopackage(run, path)
        return path.open("rb")


def output_kind(run: HotspotRun) -> str:
    """What a run's output file holds: ``"zones"`` for DBSCAN (it draws clusters, no
    grid), ``"cells"`` for the grid methods (their cells carry their zone's rank)."""
    return "zones" if run.method == HotspotRun.Method.DBSCAN else "cells"


def write_run_geojson(run: HotspotRun, path: Path) -> int:
    """Writes the run's result (:func:`output_kind`) to ``path``; returns the bytes written."""
    chunks = zones_geojson(run) if output_kind(run) == "zones" else cells_geojson(run)
    written = 0
    with Path(path).open("wb") as handle:
        for chunk in chunks:
            handle.write(chunk)
            written += len(chunk)
    return written
