"""Writes for boundaries: file imports (one core for the command, packs and the demo)."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import shapely
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon
from django.db import IntegrityError, transaction
from django.utils import timezone

from common.reports import DRY_RUN_LINE, REFUSED_LINE, FeatureImportReport
from geo.conf import STORAGE_SRID
from geo.crs import MetricCRSError, check_metric_srid, parse_epsg
from geo.io import FeatureProblem, VectorFileError, VectorRead, read_vector
from neighborhoods import locate
from neighborhoods.dissolve import Piece, merge_pieces
from neighborhoods.models import BoundarySource, District, Neighborhood, Region
from neighborhoods.regions import (
    FALLBACK_TIME_ZONE,
    refresh_area_parts,
    refresh_region_geometry,
    settle_currency,
    settle_metric_crs,
    settle_time_zone,
    utm_example,
)
from neighborhoods.text import cell_text, normalize_name

LEVELS = ("district", "neighborhood")


class BoundaryImportError(Exception):
    """Raised when nothing was written; ``report`` says why (if rows were examined)."""

    def __init__(self, message: str, report: BoundaryImportReport | None = None):
        super().__init__(message)
        self.report = report


@dataclass
class SourceInfo:
    slug: str
    name: str
    attribution: str = ""
    licence: str = ""
    url: str = ""
    synthetic: bool = False


@dataclass
class BoundaryImportReport(FeatureImportReport):
    """Its repaired and refused features are FeatureProblems."""

    path: str
    region_code: str
    level: str
    dry_run: bool
    region_created: bool = False
    metric_srid: int | None = None
    metric_srid_given: bool = False
    # The region's time zone and where it came from: "option", "location" or "fallback".
    time_zone: str | None = None
    time_zone_source: str = ""
    # What a load changed in an existing region ("time zone UTC -> America/Lima").
    region_changes: list[str] = field(default_factory=list)
    dissolve: bool = False
    # code -> the numbers of the features merged into it (only codes with 2+ features).
    merged: dict[str, list[int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def written(self) -> bool:
        return self.ok and not self.dry_run

    def summary(self) -> str:
        return (
            f"{self.level} boundaries of region {self.region_code} from {Path(self.path).name}: "
            + self.counts()
        )

    def lines(self) -> list[str]:
        out = [self.summary()]
        was = "was" if self.written else "would be"
        if self.region_created:
            why = (
                "given by --metric-crs" if self.metric_srid_given else "the UTM zone of its centre"
            )
            out.append(
                f"region {self.region_code} {was} created "
                f"with metric CRS EPSG:{self.metric_srid} ({why})"
            )
            if self.time_zone_source == "option":
                out.append(f"time zone {self.time_zone}, given by --time-zone")
            elif self.time_zone_source == "location":
                out.append(f"time zone {self.time_zone}, from the region's location")
            elif self.time_zone_source == "fallback":
                out.append(
                    f"warning: no time zone found at the region's location (at sea?): time "
                    f"zone {self.time_zone}; give --time-zone to set the right one"
                )
        if self.region_changes:
            out.append(
                f"region {self.region_code} {was} updated: " + "; ".join(self.region_changes)
            )
        if self.merged:
            out += [
                f"{self.level} {code} merged from {len(numbers)} features "
                f"({', '.join(map(str, numbers))})"
                for code, numbers in self.merged.items()
            ]
        elif self.dissolve and self.ok:
            out.append("--dissolve: no two features share a code, nothing was merged")
        if self.notes:
            out.append(f"{len(self.notes)} note(s):")
            out += [f"note: {n}" for n in self.notes]
        out += self.feature_lines()
        if self.refused:
            out.append(REFUSED_LINE)
        elif self.dry_run:
            out.append(DRY_RUN_LINE)
        return out


def _to_multipolygon(geometry) -> MultiPolygon:
    geos = GEOSGeometry(memoryview(shapely.to_wkb(shapely.force_2d(geometry))), srid=STORAGE_SRID)
    if geos.geom_type == "Polygon":
        geos = MultiPolygon(geos, srid=STORAGE_SRID)
    return geos


def _code(value) -> str:
    """Codes read as numbers by pandas ("13101.0") are written back as whole numbers."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return cell_text(value)


def read_boundary_file(
    path: str | Path, *, crs: str | None = None, label_fields: Iterable[str] = ()
) -> VectorRead:
    return read_vector(path, crs=crs, label_fields=list(label_fields), polygonal=True)


def _require_fields(frame: gpd.GeoDataFrame, names: dict[str, str | None]) -> None:
    columns = [c for c in frame.columns if c != frame.geometry.name]
    for option, name in names.items():
        if name and name not in frame.columns:
            raise BoundaryImportError(
                f"{option} {name!r} is not a field of the file; its fields are: "
                + ", ".join(columns)
            )


def _parent_resolver(region: Region | None, parent_field: str | None):
    """Maps a parent value to a district by code, else by accent-insensitive name."""
    districts = list(District.objects.filter(region=region)) if region else []
    by_code = {d.code: d for d in districts}
    by_name: dict[str, District] = {}
    for d in districts:
        by_name.setdefault(normalize_name(d.name), d)

    def resolve(value) -> District | None:
        key = _code(value)
        return by_code.get(key) or by_name.get(normalize_name(key))

    return resolve, bool(districts)


def import_boundaries(
    *,
    path: str | Path,
    region_code: str,
    level: str,
    code_field: str,
    name_field: str,
    parent_field: str | None = None,
    population_field: str | None = None,
    region_name: str | None = None,
    crs: str | None = None,
    dry_run: bool = False,
    source: SourceInfo | None = None,
    synthetic: bool = False,
    time_zone: str | None = None,
    metric_crs: str | int | None = None,
    dissolve: bool = False,
) -> BoundaryImportReport:
    """Reads a boundary file and upserts it; see :func:`import_boundary_frame`."""
    label_fields = [f for f in (code_field, name_field) if f]
    try:
        read = read_boundary_file(path, crs=crs, label_fields=label_fields)
    except VectorFileError as exc:
        raise BoundaryImportError(str(exc)) from None
    return import_boundary_frame(
        read=read,
        path=str(path),
        region_code=region_code,
        level=level,
        code_field=code_field,
        name_field=name_field,
        parent_field=parent_field,
        population_field=population_field,
        region_name=region_name,
        dry_run=dry_run,
        source=source,
        synthetic=synthetic,
        time_zone=time_zone,
        metric_crs=metric_crs,
        dissolve=dissolve,
    )


def import_boundary_frame(
    *,
    read: VectorRead,
    path: str,
    region_code: str,
    level: str,
    code_field: str,
    name_field: str,
    parent_field: str | None = None,
    population_field: str | None = None,
    region_name: str | None = None,
    dry_run: bool = False,
    source: SourceInfo | None = None,
    synthetic: bool = False,
    time_zone: str | None = None,
    metric_crs: str | int | None = None,
    dissolve: bool = False,
) -> BoundaryImportReport:
    """Upserts districts or neighborhoods of a region by code, all or nothing.

    The region is created when missing, its metric CRS being ``metric_crs`` (a projected
    CRS in metres) or else the UTM zone of the data's centre, its time zone ``time_zone``
    or else the one at its location. Any refused feature (null geometry, missing code or
    name, duplicate code unless ``dissolve`` merges them, unknown parent) means nothing is
    written; the report lists every one of them.
    """
    if level not in LEVELS:
        raise BoundaryImportError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    if time_zone:
        try:
            zoneinfo.ZoneInfo(time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise BoundaryImportError(
                f"unknown time zone {time_zone!r} (use an IANA name such as America/Lima)"
            ) from None
    metric_srid = None
    if metric_crs is not None and str(metric_crs).strip():
        try:
            metric_srid = check_metric_srid(parse_epsg(metric_crs), **utm_example(read.frame))
        except MetricCRSError as exc:
            raise BoundaryImportError(f"--metric-crs: {exc}") from None
    frame = read.frame
    _require_fields(
        frame,
        {
            "--code-field": code_field,
            "--name-field": name_field,
            "--parent-field": parent_field,
            "--population-field": population_field,
        },
    )
    report = BoundaryImportReport(
        path=path,
        region_code=region_code,
        level=level,
        dry_run=dry_run,
        repaired=list(read.repaired),
        refused=list(read.refused),
        dissolve=dissolve,
    )
    refused_numbers = {p.feature for p in read.refused}
    region = Region.objects.filter(code=region_code).first()

    rows: dict[int, dict] = {}
    first_seen: dict[str, int] = {}
    pieces: dict[int, list[Piece]] = {}
    resolve_parent, has_districts = _parent_resolver(region, parent_field)
    for number, record in frame.iterrows():
        if number in refused_numbers:
            continue
        code = _code(record[code_field])
        name = cell_text(record[name_field])
        label = f"{code_field}={code or '?'}, {name_field}={name or '?'}"
        problems = []
        if not code:
            problems.append(f"no code in field {code_field!r}")
        if not name:
            problems.append(f"no name in field {name_field!r}")
        if code and code in first_seen and not dissolve:
            problems.append(
                f"code {code} already used by feature {first_seen[code]} "
                "(give --dissolve to merge the features that share a code)"
            )
        population = None
        if population_field and cell_text(record[population_field]):
            try:
                population = int(float(record[population_field]))
                if population < 0:
                    raise ValueError
            except ValueError:
                problems.append(f"population {record[population_field]!r} is not a whole number")
        parent = None
        if level == "neighborhood" and parent_field:
            parent_value = cell_text(record[parent_field])
            parent = resolve_parent(parent_value) if parent_value else None
            if parent_value and parent is None:
                where = (
                    f"region {region_code}"
                    if has_districts
                    else f"region {region_code} (it has no districts yet)"
                )
                problems.append(f"parent district {parent_value!r} not found in {where}")
        if problems:
            report.refused.append(FeatureProblem(number, label, "; ".join(problems)))
            continue
        piece = Piece(number, name, population, parent, record.geometry)
        if code in first_seen:  # only with dissolve: merged below
            pieces[first_seen[code]].append(piece)
            continue
        first_seen[code] = number
        pieces[number] = [piece]
        rows[number] = {"code": code, "name": name, "population": population, "parent": parent}
    for number, row in rows.items():
        parts = pieces[number]
        geometry = parts[0].geometry
        if len(parts) > 1:
            merged = merge_pieces(f"{level} {row['code']}", parts)
            row.update(name=merged.name, population=merged.population, parent=merged.parent)
            geometry = merged.geometry
            report.merged[row["code"]] = [p.number for p in parts]
            report.notes += merged.notes
        row["geom"] = _to_multipolygon(geometry)

    settle_metric_crs(region, report, frame, metric_srid)

    report.refused.sort(key=lambda p: p.feature)
    if not report.ok:
        return report
    if report.metric_srid is None:
        raise BoundaryImportError(f"{Path(path).name} has no features to import", report)

    model = District if level == "district" else Neighborhood
    try:
        _write(
            region=region,
            report=report,
            rows=rows,
            model=model,
            level=level,
            region_code=region_code,
            region_name=region_name,
            source=source,
            parent_field=parent_field,
            synthetic=synthetic,
            time_zone=time_zone,
        )
    except IntegrityError as exc:
        raise BoundaryImportError(f"the database refused the boundaries: {exc}", report) from None
    return report


def _differs(current, name: str, value) -> bool:
    """Compares foreign keys by id, so checking a row never loads its related objects."""
    if name in ("source", "district"):
        return getattr(current, f"{name}_id") != (value.pk if value is not None else None)
    return getattr(current, name) != value


def _write(
    *,
    region,
    report,
    rows,
    model,
    level,
    region_code,
    region_name,
    source,
    parent_field,
    synthetic,
    time_zone,
):
    with transaction.atomic():
        if region is None:
            # Its time zone is set from its location once its outline exists (below).
            region = Region.objects.create(
                code=region_code,
                name=region_name or region_code,
                metric_srid=report.metric_srid,
                synthetic=synthetic,
                time_zone=time_zone or FALLBACK_TIME_ZONE,
            )
        else:
            changed = {}
            if region_name and region.name != region_name:
                changed["name"] = region_name
                report.region_changes.append(f"name {region.name!r} -> {region_name!r}")
            if time_zone and region.time_zone != time_zone:
                changed["time_zone"] = time_zone
                report.region_changes.append(f"time zone {region.time_zone} -> {time_zone}")
            if report.metric_srid != region.metric_srid:
                changed["metric_srid"] = report.metric_srid
            if changed:
                Region.objects.filter(pk=region.pk).update(**changed)
        source_obj = None
        if source is not None:
            source_obj, _ = BoundarySource.objects.update_or_create(
                slug=source.slug,
                defaults={
                    "name": source.name,
                    "attribution": source.attribution,
                    "licence": source.licence,
                    "url": source.url,
                    "synthetic": source.synthetic,
                },
            )
        if level == "neighborhood" and not parent_field:
            parents = locate.districts_covering(region, {n: r["geom"] for n, r in rows.items()})
            for number, row in rows.items():
                row["parent"] = parents.get(number)

        existing = {obj.code: obj for obj in model.objects.filter(region=region)}
        now = timezone.now()
        to_create, to_update = [], []
        for row in rows.values():
            values = {
                "name": row["name"],
                "population": row["population"],
                "geom": row["geom"],
                "source": source_obj,
            }
            if level == "neighborhood":
                values["district"] = row["parent"]
            current = existing.get(row["code"])
            if current is None:
                to_create.append(model(region=region, code=row["code"], **values))
                report.created.append(row["code"])
                continue
            changed = [
                name
                for name, value in values.items()
                if _differs(current, name, value) and not (name == "source" and source_obj is None)
            ]
            if not changed:
                report.unchanged.append(row["code"])
                continue
            for name in changed:
                setattr(current, name, values[name])
            current.updated_at = now
            to_update.append(current)
            report.updated.append(row["code"])
        model.objects.bulk_create(to_create, batch_size=500)
        if to_update:
            model.objects.bulk_update(
                to_update,
                ["name", "population", "geom", "source", "updated_at"]
                + (["district"] if level == "neighborhood" else []),
                batch_size=500,
            )
        if to_create or to_update or report.region_created:
            refresh_region_geometry(region)
            refresh_area_parts(region)
        settle_time_zone(region, report, time_zone)
        settle_currency(region, report)
        if report.dry_run:
            transaction.set_rollback(True)


@transaction.atomic
def save_drawn_neighborhood(*, neighborhood: Neighborhood) -> Neighborhood:
    """Saves a neighborhood drawn on the map: marks it as drawn, finds its district when
    none was chosen, and refreshes the region's outline."""
    neighborhood.drawn = True
    if neighborhood.district_id is None:
        neighborhood.district = locate.district_for_geometry(
            region=neighborhood.region, geom=neighborhood.geom
        )
    neighborhood.full_clean()
    neighborhood.save()
    if not District.objects.filter(region=neighborhood.region).exists():
        refresh_region_geometry(neighborhood.region)
    refresh_area_parts(neighborhood.region)
    return neighborhood
