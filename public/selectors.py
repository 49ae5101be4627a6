"""Reads of the public tables (public.models): the only data the public API serves.

Nothing here reads the incident table: the rows were made by public.services.refresh
through public/privacy.py (publishable categories, k, the lag), and every count returned
is a sum of published rows only, so a total never reveals a suppressed cell by
subtraction. A bbox selects whole precomputed cells (by their centre), never a part of one.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

import h3
from django.db.models import F

from geo.geojson import BBox
from incidents.selectors import name_field
from neighborhoods.selectors import region_list, region_summaries
from public.models import PublicCellCount, PublicRefresh


@dataclass(frozen=True)
class CellCount:
    cell: str  # the H3 index, as its hexadecimal string
    resolution: int
    month: dt.date
    count: int


def regions() -> list[dict]:
    """Every region (code, name, synthetic, extent) with the newest month its public tables
    publish (None: never refreshed, or nothing published yet)."""
    newest = dict(
        PublicRefresh.objects.filter(last_month__isnull=False).values_list(
            "region__code", "last_month"
        )
    )
    return [
        {
            "code": summary["code"],
            "name": summary["name"],
            "synthetic": summary["synthetic"],
            "bbox": summary["bbox"],
            "last_month": newest.get(summary["code"]),
        }
        for summary in region_summaries()
    ]


def region_exists(region_code: str) -> bool:
    return region_list().filter(code=region_code).exists()


def last_refresh(region_code: str) -> PublicRefresh | None:
    """When the region's public tables were last rebuilt (None: never)."""
    return PublicRefresh.objects.filter(region__code=region_code).first()


def months(region_code: str) -> list[dt.date]:
    """The months (their first day) the region has published rows for, oldest first."""
    return list(
        PublicCellCount.objects.filter(region__code=region_code)
        .order_by("month")
        .values_list("month", flat=True)
        .distinct()
    )


def categories(region_code: str) -> list[dict]:
    """The public categories the region has published rows for: ``code``, ``name`` (in
    the active language) and ``family``, by family then code."""
    return list(
        PublicCellCount.objects.filter(region__code=region_code)
        .order_by("family", "category__code")
        .values("family", code=F("category__code"), name=F(name_field("category__")))
        .distinct()
    )


def cells(
    region_code: str,
    *,
    month: dt.date,
    resolution: int,
    category: str | None = None,
    family: str | None = None,
    bbox: BBox | None = None,
) -> list[CellCount]:
    """Per H3 cell of ``resolution``, the sum of the region's published counts of
    ``month`` over the chosen categories (``category`` and/or ``family``; every public
    category without either), by cell id. With ``bbox``, only the cells whose centre is
    inside it, whole. The rows of one region, month and resolution are bounded (one per
    cell and category), so the sum and the bbox are done here in Python."""
    rows = PublicCellCount.objects.filter(
        region__code=region_code, month=month, resolution=resolution
    )
    if category:
        rows = rows.filter(category__code=category)
    if family:
        rows = rows.filter(family=family)
    totals: dict[str, int] = defaultdict(int)
    for cell, count in rows.order_by().values_list("cell", "count").iterator(chunk_size=5000):
        totals[cell] += count
    result = []
    for cell in sorted(totals):
        if bbox is not None:
            lat, lon = h3.cell_to_latlng(cell)
            if not (bbox.min_lon <= lon <= bbox.max_lon and bbox.min_lat <= lat <= bbox.max_lat):
                continue
        result.append(CellCount(cell, resolution, month, totals[cell]))
    return result
