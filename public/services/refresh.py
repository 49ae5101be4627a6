"""Rebuilds the precomputed public tables (public.models) from the incident table.

Incidents are read only through ``incidents.selectors.monthly_points``, in chunks (the
memory held is the counts, one per cell, month and category, never the incidents), and
every rule comes from public/privacy.py: publishable categories only, months up to the
last published one only, counts below the category's k dropped. H3 cells are computed in
Python (``h3.latlng_to_cell`` of the incident point at each resolution), so each
resolution's cell is the one a third party computes for the same point.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import Counter

import h3
from django.db import transaction
from django.utils import timezone

from incidents.selectors import category_list, monthly_points
from neighborhoods.models import Region
from public import privacy
from public.models import PublicCellCount, PublicRefresh

WRITE_BATCH = 5000


class UnknownRegion(ValueError):
    """No region has the code asked for."""


def refresh_public_tables(*, region_code: str | None = None, today: dt.date | None = None) -> dict:
    """Rebuilds the public tables of the region ``region_code`` (every region without
    one), each in its own transaction, and returns ``{region code: rows written}``.
    ``today`` (a date; default: today in each region's time zone) sets the lag. Raises
    UnknownRegion for a code no region has."""
    regions = Region.objects.order_by("code")
    if region_code is not None:
        regions = regions.filter(code=region_code)
        if not regions.exists():
            raise UnknownRegion(region_code)
    return {
        code: _refresh_region(pk, today=today) for pk, code in regions.values_list("pk", "code")
    }


def _local_today(time_zone: str | None) -> dt.date:
    return timezone.localdate(timezone=zoneinfo.ZoneInfo(time_zone or "UTC"))


def _refresh_region(region_id: int, *, today: dt.date | None) -> int:
    with transaction.atomic():
        # One refresh of a region at a time: a second one waits, then rebuilds again.
        # (NO KEY: rows that reference the region, e.g. a new hotspot run, are not held up.)
        region = Region.objects.select_for_update(no_key=True).get(pk=region_id)
        time_zone = region.time_zone or "UTC"
        last_month = privacy.last_published_month(today or _local_today(time_zone))
        categories = {c.pk: c for c in category_list() if privacy.is_publishable_category(c)}
        counts = _count_cells(region, time_zone, last_month, categories)
        PublicCellCount.objects.filter(region=region).delete()
        rows = (
            PublicCellCount(
                region=region,
                resolution=resolution,
                cell=cell,
                month=month,
                category_id=category_id,
                family=categories[category_id].family,
                count=count,
            )
            for (resolution, cell, month, category_id), count in sorted(counts.items())
            if privacy.keep(count, categories[category_id])
        )
        written = 0
        batch: list[PublicCellCount] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= WRITE_BATCH:
                written += len(PublicCellCount.objects.bulk_create(batch))
                batch = []
        if batch:
            written += len(PublicCellCount.objects.bulk_create(batch))
        published = PublicCellCount.objects.filter(region=region).order_by("-month").first()
        PublicRefresh.objects.update_or_create(
            region=region,
            defaults={
                "finished_at": timezone.now(),
                "rows": written,
                "last_month": published.month if published else None,
            },
        )
    return written


def _count_cells(region, time_zone: str, last_month: dt.date, categories: dict) -> Counter:
    """``{(resolution, cell, month, category id): count}`` of the region's incidents of
    ``categories`` up to ``last_month`` included."""
    resolutions = privacy.resolutions()
    counts: Counter = Counter()
    for chunk in monthly_points(
        region_id=region.pk,
        time_zone=time_zone,
        until=privacy.add_months(last_month, 1),
        category_ids=sorted(categories),
    ):
        for lon, lat, month, category_id in chunk:
            if lon is None or lat is None:
                continue
            for resolution in resolutions:
                counts[
                    (resolution, h3.latlng_to_cell(lat, lon, resolution), month, category_id)
                ] += 1
    return counts
