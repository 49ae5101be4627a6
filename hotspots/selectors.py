"""Reads of hotspot runs, cells and zones (views check the planner role).

:func:`cells_geojson` is the run's cell file: the same run inputs always give the same
bytes (cells in (i, j) order, fixed float formatting, no database ids or timestamps), so
two runs can be compared with ``cmp``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from django.contrib.gis.db.models.functions import AsGeoJSON
from django.db.models import F, QuerySet

from hotspots.models import HotspotCell, HotspotRun, HotspotZone

GEOJSON_PRECISION = 7  # decimal degrees: about 1 cm


def run_list(*, region=None, status: str | None = None) -> QuerySet:
    queryset = HotspotRun.objects.select_related("region", "created_by")
    if region is not None:
        queryset = queryset.filter(region=region)
    if status:
        queryset = queryset.filter(status=status)
    return queryset.order_by("-created_at", "-id")


def cell_list(run: HotspotRun, *, min_bin: int | None = None) -> QuerySet:
    queryset = HotspotCell.objects.filter(run=run)
    if min_bin is not None:
        queryset = queryset.filter(gi_bin__gte=min_bin)
    return queryset.order_by("i", "j")


def zone_list(run: HotspotRun) -> QuerySet:
    return HotspotZone.objects.filter(run=run).order_by("rank")


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


def _format_z(value: float) -> str:
    text = f"{value:.6f}"
    return "0.000000" if text == "-0.000000" else text


def _format_p(value: float) -> str:
    return format(value, ".6g")


def cells_geojson(run: HotspotRun, *, chunk_size: int = 5000) -> Iterator[bytes]:
    """The run's cells as a GeoJSON FeatureCollection, streamed in chunks of bytes.

    Properties: ``i``, ``j``, ``count``, ``gi_z`` (6 decimals), ``gi_p`` (6 significant
    digits), ``gi_bin``, ``zone`` (the zone's rank, or null). The run's parameters travel
    in a ``hotspot_run`` member.
    """
    head = json.dumps(run_record(run), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    yield f'{{"type":"FeatureCollection","hotspot_run":{head},"features":['.encode()
    rows = (
        cell_list(run)
        .annotate(geojson=AsGeoJSON("geom", precision=GEOJSON_PRECISION), zone_rank=F("zone__rank"))
        .values_list("i", "j", "count", "gi_z", "gi_p", "gi_bin", "zone_rank", "geojson")
        .iterator(chunk_size=chunk_size)
    )
    parts: list[str] = []
    first = True
    for i, j, count, z, p, gi_bin, zone, geometry in rows:
        parts.append(
            f'{"" if first else ","}{{"type":"Feature","geometry":{geometry},"properties":'
            f'{{"i":{i},"j":{j},"count":{count},"gi_z":{_format_z(z)},"gi_p":{_format_p(p)},'
            f'"gi_bin":{gi_bin},"zone":{"null" if zone is None else zone}}}}}'
        )
        first = False
        if len(parts) >= chunk_size:
            yield "".join(parts).encode()
            parts = []
    if parts:
        yield "".join(parts).encode()
    yield b"]}\n"


def write_cells_geojson(run: HotspotRun, path: Path) -> int:
    """Writes :func:`cells_geojson` to ``path``; returns the bytes written."""
    written = 0
    with Path(path).open("wb") as handle:
        for chunk in cells_geojson(run):
            handle.write(chunk)
            written += len(chunk)
    return written
