"""Quick builders for incident tests: regions and areas, sources, labels, batches and
incidents with explicit WGS84 points. Categories come from the taxonomy migration."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable

from django.contrib.auth.models import Group
from django.contrib.gis.geos import MultiPolygon, Point, Polygon

from accounts.models import Role
from geo.conf import STORAGE_SRID, utm_srid_for
from incidents.models import (
    Category,
    ImportBatch,
    Incident,
    IncidentSource,
    LocationQuality,
    SourceLabel,
    TimePrecision,
)
from neighborhoods.models import District, Neighborhood, Region

_external_ids = itertools.count(1)

DEFAULT_WHEN = dt.datetime(2024, 3, 10, 12, 0, tzinfo=dt.UTC)


def make_user(django_user_model, role: str | None = None, *, superuser: bool = False, **extra):
    """A user in the group of ``role`` ("planner", "municipal", "program"), or a superuser."""
    name = extra.pop("username", None) or f"{role or ('admin' if superuser else 'nobody')}-user"
    if superuser:
        return django_user_model.objects.create_superuser(name, password="x", **extra)
    user = django_user_model.objects.create_user(name, password="x", **extra)
    if role:
        user.groups.add(Group.objects.get(name=Role(role)))
    return user


def area_geometry(bbox: tuple[float, float, float, float]) -> MultiPolygon:
    return MultiPolygon(Polygon.from_bbox(bbox), srid=STORAGE_SRID)


def make_region(code: str = "testcity", *, lon: float = -77.05, lat: float = -12.05) -> Region:
    region, _ = Region.objects.get_or_create(
        code=code, defaults={"name": code.title(), "metric_srid": utm_srid_for(lon, lat)}
    )
    return region


def make_district(region: Region, code: str, bbox, name: str | None = None) -> District:
    return District.objects.create(
        region=region, code=code, name=name or f"District {code}", geom=area_geometry(bbox)
    )


def make_neighborhood(
    region: Region, code: str, bbox, *, district: District | None = None, name: str | None = None
) -> Neighborhood:
    return Neighborhood.objects.create(
        region=region,
        district=district,
        code=code,
        name=name or f"Barrio {code}",
        geom=area_geometry(bbox),
    )


def make_source(name: str = "test-source") -> IncidentSource:
    source, _ = IncidentSource.objects.get_or_create(name=name)
    return source


def make_batch(source: IncidentSource) -> ImportBatch:
    return ImportBatch.objects.create(source=source, status=ImportBatch.Status.SUCCEEDED)


def make_label(source: IncidentSource, category: str | Category, label: str | None = None):
    category = category if isinstance(category, Category) else Category.objects.get(code=category)
    found, _ = SourceLabel.objects.get_or_create(
        source=source, label=label or category.code, defaults={"category": category}
    )
    return found


def _batch_for(source: IncidentSource) -> ImportBatch:
    return ImportBatch.objects.filter(source=source).first() or make_batch(source)


def build_incident(
    lon: float,
    lat: float,
    *,
    category: str = "assault",
    when: dt.datetime = DEFAULT_WHEN,
    until: dt.datetime | None = None,
    precision: str | None = None,
    source: IncidentSource | None = None,
    label: str | None = None,
    region: Region | None = None,
    district: District | None = None,
    neighborhood: Neighborhood | None = None,
    external_id: str | None = None,
    location_quality: str = LocationQuality.EXACT,
) -> Incident:
    """An unsaved incident (for bulk_create); see :func:`make_incident`."""
    source = source or make_source()
    source_label = make_label(source, category, label)
    region = region or (district.region if district else None) or make_region()
    if precision is None:
        precision = TimePrecision.EXACT if until is None else TimePrecision.RANGE
    return Incident(
        source=source,
        external_id=external_id or f"ext-{next(_external_ids)}",
        point=Point(lon, lat, srid=STORAGE_SRID),
        occurred_at=when,
        occurred_until=until,
        time_precision=precision,
        label=source_label,
        category_id=source_label.category_id,
        region=region,
        district=district,
        neighborhood=neighborhood,
        location_quality=location_quality,
        batch=_batch_for(source),
    )


def make_incident(lon: float, lat: float, **kwargs) -> Incident:
    """A saved incident at (lon, lat); category by code, source/region/batch created when
    not given. A window (``until``) defaults to a "range" time precision."""
    incident = build_incident(lon, lat, **kwargs)
    incident.save()
    return incident


def make_incidents(points: Iterable[tuple[float, float]], **kwargs) -> list[Incident]:
    """Many incidents sharing ``kwargs``, in one INSERT."""
    return Incident.objects.bulk_create([build_incident(lon, lat, **kwargs) for lon, lat in points])
