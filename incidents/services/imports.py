"""Incident import: validated chunks → COPY into a staging table → one INSERT that assigns
region, district and neighborhood with a spatial join and upserts by (source, external id).

One core serves the command, the web upload and the benchmarks. All or nothing by
default: any refused row rolls the whole import back and the report names every one.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from incidents.models import Category, ImportBatch, IncidentSource
from incidents.models import RefusedRow as RefusedRowModel
from incidents.profiles import PROFILES, Profile
from incidents.services.reading import (
    STAGING_COLUMNS,
    ChunkValidator,
    ColumnMapping,
    IncidentFileError,
    ReadOptions,
    RefusedRow,
    csv_header,
    read_csv_chunks,
    read_vector_points,
    sha256_of,
)

VECTOR_SUFFIXES = {".geojson", ".json", ".gpkg"}
UNCLASSIFIED_PREFIX = "unclassified-"
# Points this close to a region's outline but outside all its districts are kept (and
# counted as unassigned): published boundaries are generalised, and a point on a border
# street can fall a few metres outside every district.
REGION_TOLERANCE_M = getattr(settings, "INCIDENT_REGION_TOLERANCE_M", 500)

_LAT_NAMES = ("lat", "latitude", "latitud", "y_lat")
_LON_NAMES = ("lon", "lng", "long", "longitude", "longitud", "x_lon")


class ImportRefused(Exception):
    """Rows were refused and nothing was written; ``result`` lists them."""

    def __init__(self, result: ImportResult):
        super().__init__(f"{result.rows_refused} row(s) refused; nothing was written")
        self.result = result


@dataclass
class ImportRequest:
    paths: Sequence[Path]
    source: str
    profile: Profile | None = None
    columns: ColumnMapping = field(default_factory=ColumnMapping)
    timezone: str | None = None
    family: str | None = None
    location_quality: str | None = None
    skip_bad: bool = False
    dry_run: bool = False


@dataclass
class ImportResult:
    batch_id: int | None
    dry_run: bool
    status: str
    files: list[dict]
    rows_read: int = 0
    rows_created: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    rows_unassigned: int = 0
    refused: list[RefusedRow] = field(default_factory=list)
    unmapped_labels: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def rows_refused(self) -> int:
        return len(self.refused)

    def lines(self, *, limit: int = 200) -> list[str]:
        written = "would be written" if self.dry_run else "written"
        if self.status == ImportBatch.Status.FAILED:
            written = "NOT written"
        out = [
            f"{self.rows_read} rows read from {len(self.files)} file(s) in {self.duration_s:.1f} s: "
            f"{self.rows_created} created, {self.rows_updated} updated, {self.rows_unchanged} "
            f"unchanged ({written}), {self.rows_refused} refused, "
            f"{self.rows_unassigned} inside a region but outside all its districts"
        ]
        for label, count in sorted(self.unmapped_labels.items(), key=lambda kv: (-kv[1], kv[0])):
            out.append(f"unclassified label (map it to a category): {label!r} × {count}")
        for row in self.refused[:limit]:
            out.append(f"refused: {row.file_name} row {row.row_number}: {row.reason}")
        if self.rows_refused > limit:
            out.append(
                f"… and {self.rows_refused - limit} more refused rows (see the batch report)"
            )
        if self.status == ImportBatch.Status.FAILED:
            out.append(
                "nothing was written: fix the refused rows, or run again with --skip-bad to "
                "write the good rows and keep the refused ones in the batch report"
            )
        elif self.dry_run:
            out.append("dry run: nothing was written")
        return out


# --- column resolution -------------------------------------------------------------------


def _first_present(candidates: Sequence[str], header: list[str]) -> str | None:
    lowered = {h.lower(): h for h in header}
    for name in candidates:
        if name in header:
            return name
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None


def resolve_columns(request: ImportRequest, header: list[str], file_name: str) -> ColumnMapping:
    """Explicit options win over the profile; the profile over name guessing."""
    given = request.columns
    profile = request.profile
    mapping = ColumnMapping(crs=given.crs, constant_label=given.constant_label)
    for role in ("id", "date", "time", "category", "lat", "lon", "x", "y"):
        explicit = getattr(given, role)
        if explicit:
            if explicit not in header:
                raise IncidentFileError(
                    f"{file_name}: column {explicit!r} (--{role}) not found; columns are: "
                    + ", ".join(header)
                )
            setattr(mapping, role, explicit)
        elif profile is not None and role in ("id", "date", "time", "category", "lat", "lon"):
            setattr(mapping, role, _first_present(getattr(profile, role), header))
    if profile is not None and mapping.constant_label is None and mapping.category is None:
        mapping.constant_label = profile.constant_label
    if mapping.x or mapping.y:
        if not (mapping.x and mapping.y):
            raise IncidentFileError("--x and --y go together")
    elif not (mapping.lat and mapping.lon):
        mapping.lat = mapping.lat or _first_present(_LAT_NAMES, header)
        mapping.lon = mapping.lon or _first_present(_LON_NAMES, header)
        if not (mapping.lat and mapping.lon):
            projected = _first_present(("x", "easting", "x_coord"), header)
            hint = (
                f" It has projected columns ({projected!r}…): use --x/--y with --crs EPSG:XXXX."
                if projected
                else ""
            )
            raise IncidentFileError(
                f"{file_name}: no latitude/longitude columns found; name them with --lat/--lon "
                f"or --x/--y --crs.{hint} Columns are: " + ", ".join(header)
            )
    if not mapping.date:
        raise IncidentFileError(
            f"{file_name}: no date column; name it with --date. Columns are: " + ", ".join(header)
        )
    if not mapping.category and not mapping.constant_label:
        raise IncidentFileError(
            f"{file_name}: no category column; name it with --category. Columns are: "
            + ", ".join(header)
        )
    return mapping


# --- staging -----------------------------------------------------------------------------

_STAGING_DDL = """
CREATE TEMP TABLE incident_staging (
    file_no integer NOT NULL,
    row_no integer NOT NULL,
    external_id text NOT NULL,
    lon double precision NOT NULL,
    lat double precision NOT NULL,
    occurred_at timestamptz NOT NULL,
    occurred_until timestamptz,
    time_precision text NOT NULL,
    label text NOT NULL,
    k bigint GENERATED ALWAYS AS IDENTITY,
    point geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED
)
"""


def _copy_chunk(cursor, good: pd.DataFrame) -> None:
    if good.empty:
        return
    buffer = io.StringIO()
    frame = good[STAGING_COLUMNS].copy()
    for column in ("occurred_at", "occurred_until"):
        frame[column] = pd.to_datetime(frame[column], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S+00")
    frame.to_csv(buffer, header=False, index=False, na_rep="")
    buffer.seek(0)
    # COPY is the fastest way into PostgreSQL; the ORM has no COPY.
    cursor.copy_expert(
        "COPY incident_staging (" + ",".join(STAGING_COLUMNS) + ") FROM STDIN WITH (FORMAT csv)",
        buffer,
    )


def _stage_file(
    cursor, request, path, file_no, progress, done_bytes, total_bytes
) -> tuple[int, list]:
    refused: list[RefusedRow] = []
    rows = 0
    options_base = dict(
        timezone=request.timezone
        or (request.profile.timezone if request.profile else settings.TIME_ZONE),
        month_only=bool(request.profile and request.profile.month_only),
        placeholders=request.profile.placeholders if request.profile else (),
    )
    if path.suffix.lower() in VECTOR_SUFFIXES:
        table, refused = read_vector_points(path, request.columns.crs)
        columns = resolve_columns(
            ImportRequest(
                paths=[],
                source=request.source,
                profile=request.profile,
                columns=ColumnMapping(
                    **{
                        **request.columns.__dict__,
                        "lat": "__lat",
                        "lon": "__lon",
                        "x": None,
                        "y": None,
                        "crs": None,
                    }
                ),
            ),
            list(table.columns),
            path.name,
        )
        validator = ChunkValidator(ReadOptions(columns=columns, **options_base), file_no, path.name)
        chunk = validator.validate(table, table.index.to_numpy())
        _copy_chunk(cursor, chunk.good)
        refused.extend(chunk.refused)
        progress((done_bytes + path.stat().st_size) / total_bytes)
        return len(table) + len(refused) - len(chunk.refused), refused

    header = csv_header(path)
    columns = resolve_columns(request, header, path.name)
    validator = ChunkValidator(ReadOptions(columns=columns, **options_base), file_no, path.name)
    for frame, first_row, position in read_csv_chunks(path):
        row_numbers = np.arange(first_row, first_row + len(frame))
        chunk = validator.validate(frame, row_numbers)
        _copy_chunk(cursor, chunk.good)
        refused.extend(chunk.refused)
        rows += chunk.rows
        progress((done_bytes + position) / total_bytes)
    return rows, refused


def _refuse_duplicates(cursor, file_names: list[str]) -> list[RefusedRow]:
    # A window function over the staged rows: the ORM does not reach temp tables.
    cursor.execute(
        """
        WITH ranked AS (
          SELECT file_no, row_no, external_id,
                 row_number() OVER w AS n,
                 first_value(file_no) OVER w AS first_file,
                 first_value(row_no) OVER w AS first_row
          FROM incident_staging
          WINDOW w AS (PARTITION BY external_id ORDER BY file_no, row_no)
        )
        DELETE FROM incident_staging s USING ranked r
        WHERE r.n > 1 AND s.file_no = r.file_no AND s.row_no = r.row_no
        RETURNING s.file_no, s.row_no, s.external_id, r.first_file, r.first_row
        """
    )
    return [
        RefusedRow(
            file_names[file_no],
            row_no,
            f"duplicate id {external_id!r} (first at {file_names[first_file]} row {first_row})",
        )
        for file_no, row_no, external_id, first_file, first_row in cursor.fetchall()
    ]


def _map_labels(cursor, request: ImportRequest, source: IncidentSource) -> dict[str, int]:
    """Creates a SourceLabel for every new label (by the profile's rules, else an
    unclassified category of its own) and fills the temp table the INSERT joins."""
    from incidents.models import SourceLabel

    cursor.execute("SELECT label, count(*) FROM incident_staging GROUP BY label")
    counts = dict(cursor.fetchall())
    known = {
        sl.label: sl for sl in SourceLabel.objects.filter(source=source, label__in=list(counts))
    }
    categories = {c.code: c for c in Category.objects.filter(unclassified=False)}
    family = request.family or (
        request.profile.family if request.profile else source.default_family
    )
    for label in counts:
        if label in known:
            continue
        code = request.profile.category_for(label) if request.profile else None
        category = categories.get(code) if code else None
        if category is None:
            slug = slugify(f"{source.name} {label}")[:100] or "blank"
            category, _ = Category.objects.get_or_create(
                code=f"{UNCLASSIFIED_PREFIX}{slug}",
                defaults={
                    "name_es": f"Sin clasificar: {label or '(vacío)'}"[:200],
                    "name_en": f"Unclassified: {label or '(blank)'}"[:200],
                    "family": family,
                    "unclassified": True,
                },
            )
        known[label] = SourceLabel.objects.create(source=source, label=label, category=category)
    cursor.execute(
        "CREATE TEMP TABLE incident_labels (label text PRIMARY KEY, label_id bigint, category_id bigint)"
    )
    cursor.executemany(
        "INSERT INTO incident_labels VALUES (%s, %s, %s)",
        [(label, sl.pk, sl.category_id) for label, sl in known.items()],
    )
    unclassified = set(
        Category.objects.filter(
            unclassified=True, labels__source=source, labels__label__in=list(counts)
        ).values_list("labels__label", flat=True)
    )
    return {label: counts[label] for label in unclassified}


# One statement assigns areas and upserts. The spatial join runs once, at insert time,
# polygon-first: for each subdivided boundary piece (neighborhoods_areapart, at most 256
# vertices) the GiST index on the staged points finds the points inside it, so each
# piece's prepared geometry is reused across its points. Probing the pieces' index once
# per point instead is about twenty times slower. A point on a shared border belongs to
# the lowest area id, so the assignment is deterministic.
_INSERT_SQL = """
WITH in_district AS (
  SELECT s.k, min(p.area_id) AS district_id,
         (array_agg(p.region_id ORDER BY p.area_id))[1] AS region_id
  FROM neighborhoods_areapart p JOIN incident_staging s
    ON p.kind = 'district' AND ST_Intersects(p.geom, s.point)
  GROUP BY s.k
),
in_neighborhood AS (
  SELECT s.k, min(p.area_id) AS neighborhood_id,
         (array_agg(p.region_id ORDER BY p.area_id))[1] AS region_id
  FROM neighborhoods_areapart p JOIN incident_staging s
    ON p.kind = 'neighborhood' AND ST_Intersects(p.geom, s.point)
  GROUP BY s.k
),
assigned AS MATERIALIZED (
  SELECT s.*, d.district_id, n.neighborhood_id,
         COALESCE(d.region_id, n.region_id, (
           SELECT r.id FROM neighborhoods_region r
           WHERE r.geom IS NOT NULL
             AND s.point && ST_Expand(r.geom, %(tolerance_deg)s)
             AND ST_DWithin(s.point::geography, r.geom::geography, %(tolerance_m)s)
           ORDER BY r.id LIMIT 1)) AS region_id
  FROM incident_staging s
  LEFT JOIN in_district d ON d.k = s.k
  LEFT JOIN in_neighborhood n ON n.k = s.k
),
outside AS (
  INSERT INTO incident_outside (file_no, row_no)
  SELECT file_no, row_no FROM assigned WHERE region_id IS NULL
  RETURNING 1
),
upserted AS (
  INSERT INTO incidents_incident AS i (
    source_id, external_id, point, occurred_at, occurred_until, time_precision,
    label_id, category_id, region_id, district_id, neighborhood_id, location_quality, batch_id)
  SELECT %(source_id)s, a.external_id, a.point, a.occurred_at, a.occurred_until,
         a.time_precision, lb.label_id, lb.category_id, a.region_id, a.district_id,
         a.neighborhood_id, %(location_quality)s, %(batch_id)s
  FROM assigned a JOIN incident_labels lb ON lb.label = a.label
  WHERE a.region_id IS NOT NULL
  ON CONFLICT (source_id, external_id) DO UPDATE SET
    point = EXCLUDED.point, occurred_at = EXCLUDED.occurred_at,
    occurred_until = EXCLUDED.occurred_until, time_precision = EXCLUDED.time_precision,
    label_id = EXCLUDED.label_id, category_id = EXCLUDED.category_id,
    region_id = EXCLUDED.region_id, district_id = EXCLUDED.district_id,
    neighborhood_id = EXCLUDED.neighborhood_id, location_quality = EXCLUDED.location_quality,
    batch_id = EXCLUDED.batch_id
  WHERE (i.point, i.occurred_at, i.occurred_until, i.time_precision, i.label_id,
         i.category_id, i.region_id, i.district_id, i.neighborhood_id, i.location_quality)
        IS DISTINCT FROM
        (EXCLUDED.point, EXCLUDED.occurred_at, EXCLUDED.occurred_until,
         EXCLUDED.time_precision, EXCLUDED.label_id, EXCLUDED.category_id,
         EXCLUDED.region_id, EXCLUDED.district_id, EXCLUDED.neighborhood_id,
         EXCLUDED.location_quality)
  RETURNING (xmax = 0) AS inserted
)
SELECT
  (SELECT count(*) FROM upserted WHERE inserted),
  (SELECT count(*) FROM upserted WHERE NOT inserted),
  (SELECT count(*) FROM outside),
  (SELECT count(*) FROM assigned WHERE region_id IS NOT NULL AND district_id IS NULL),
  (SELECT count(*) FROM assigned WHERE region_id IS NOT NULL)
"""


def _drop_temp_tables(cursor) -> None:
    cursor.execute("DROP TABLE IF EXISTS incident_staging, incident_labels, incident_outside")


def get_or_create_source(request: ImportRequest) -> IncidentSource:
    profile = request.profile
    defaults = {}
    if profile is not None and profile.source == request.source:
        defaults = {
            "description": profile.description,
            "attribution": profile.attribution,
            "licence": profile.licence,
            "default_family": profile.family,
        }
    elif request.family:
        defaults = {"default_family": request.family}
    source, _ = IncidentSource.objects.get_or_create(name=request.source, defaults=defaults)
    return source


def import_incidents(
    *,
    request: ImportRequest,
    user=None,
    batch: ImportBatch | None = None,
    progress: Callable[[float], None] | None = None,
) -> ImportResult:
    """Imports the files of ``request``. Raises ImportRefused (nothing written) when rows
    are refused and ``skip_bad`` is off, IncidentFileError when a file cannot be used."""
    started = time.perf_counter()
    paths = [Path(p) for p in request.paths]
    for path in paths:
        if not path.is_file():
            raise IncidentFileError(f"{path}: no such file")
    files = [{"name": p.name, "sha256": sha256_of(p), "bytes": p.stat().st_size} for p in paths]
    total_bytes = sum(f["bytes"] for f in files) or 1
    source = get_or_create_source(request)
    location_quality = request.location_quality or (
        request.profile.location_quality if request.profile else "exact"
    )
    result = ImportResult(batch_id=None, dry_run=request.dry_run, status="running", files=files)
    timings = result.timings
    report_progress = progress or (lambda fraction: None)

    if batch is None and not request.dry_run:
        batch = ImportBatch.objects.create(
            source=source,
            created_by=user if getattr(user, "is_authenticated", False) else None,
            status=ImportBatch.Status.RUNNING,
            files=files,
            skip_bad=request.skip_bad,
            options=_options_record(request),
        )
    elif batch is not None:
        ImportBatch.objects.filter(pk=batch.pk).update(
            status=ImportBatch.Status.RUNNING, files=files, source=source
        )
    result.batch_id = batch.pk if batch else None

    def step(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 3)
        return now

    failed = False
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            mark = time.perf_counter()
            _drop_temp_tables(cursor)
            cursor.execute(_STAGING_DDL)
            cursor.execute("CREATE TEMP TABLE incident_outside (file_no integer, row_no integer)")
            done_bytes = 0
            file_names = [p.name for p in paths]
            for file_no, path in enumerate(paths):
                rows, refused = _stage_file(
                    cursor,
                    request,
                    path,
                    file_no,
                    lambda f: report_progress(0.8 * f),
                    done_bytes,
                    total_bytes,
                )
                result.rows_read += rows
                result.refused.extend(refused)
                files[file_no]["rows"] = rows
                done_bytes += path.stat().st_size
            mark = step("read_validate_copy", mark)

            # JIT compilation costs more than it saves on these statements.
            cursor.execute("SET LOCAL jit = off")
            cursor.execute("CREATE INDEX ON incident_staging USING gist (point)")
            cursor.execute("ANALYZE incident_staging")
            mark = step("index_staging", mark)
            result.refused.extend(_refuse_duplicates(cursor, file_names))
            result.unmapped_labels = _map_labels(cursor, request, source)
            mark = step("labels_duplicates", mark)

            tolerance_m = REGION_TOLERANCE_M
            cursor.execute(
                _INSERT_SQL,
                {
                    "source_id": source.pk,
                    "location_quality": location_quality,
                    "batch_id": batch.pk if batch else _dry_run_batch(source).pk,
                    "tolerance_m": tolerance_m,
                    # Bounding-box prefilter only: a degree is at least 0.9 km... here
                    # over-generous on purpose (1 degree of latitude ≈ 111 km).
                    "tolerance_deg": tolerance_m / 50_000.0,
                },
            )
            created, updated, outside, unassigned, kept = cursor.fetchone()
            mark = step("assign_insert", mark)
            if outside:
                cursor.execute(
                    "SELECT file_no, row_no FROM incident_outside ORDER BY file_no, row_no"
                )
                result.refused.extend(
                    RefusedRow(file_names[f], r, "outside every loaded region")
                    for f, r in cursor.fetchall()
                )
            result.rows_created, result.rows_updated = created, updated
            result.rows_unchanged = kept - created - updated
            result.rows_unassigned = unassigned
            result.refused.sort(key=lambda r: (file_names.index(r.file_name), r.row_number))
            _drop_temp_tables(cursor)
            failed = bool(result.refused) and not request.skip_bad
            if failed or request.dry_run:
                transaction.set_rollback(True)
            else:
                step("commit", mark)
    except Exception as exc:
        if batch is not None:
            _finish_batch(batch, result, started, error=str(exc))
        raise
    report_progress(1.0)

    if failed:
        result.rows_created = result.rows_updated = result.rows_unchanged = 0
        result.status = ImportBatch.Status.FAILED
    else:
        result.status = "dry-run" if request.dry_run else ImportBatch.Status.SUCCEEDED
    result.duration_s = round(time.perf_counter() - started, 3)
    if batch is not None:
        _finish_batch(batch, result, started)
    if failed:
        raise ImportRefused(result)
    return result


def _dry_run_batch(source: IncidentSource) -> ImportBatch:
    # Rolled back with the rest of a dry run; the FK needs a row to point at.
    return ImportBatch.objects.create(source=source, status=ImportBatch.Status.RUNNING)


def _options_record(request: ImportRequest) -> dict:
    return {
        "profile": request.profile.name if request.profile else None,
        "columns": {k: v for k, v in request.columns.__dict__.items() if v},
        "timezone": request.timezone,
        "family": request.family,
        "skip_bad": request.skip_bad,
    }


def _finish_batch(
    batch: ImportBatch, result: ImportResult, started: float, error: str = ""
) -> None:
    status = ImportBatch.Status.FAILED if error else result.status
    report = {
        "unmapped_labels": result.unmapped_labels,
        "timings_s": result.timings,
        "refused_reasons": _reason_counts(result.refused),
    }
    if error:
        report["error"] = error
    with transaction.atomic():
        ImportBatch.objects.filter(pk=batch.pk).update(
            status=status,
            finished_at=timezone.now(),
            rows_read=result.rows_read,
            rows_created=result.rows_created,
            rows_updated=result.rows_updated,
            rows_unchanged=result.rows_unchanged,
            rows_refused=result.rows_refused,
            rows_unassigned=result.rows_unassigned,
            duration_s=round(time.perf_counter() - started, 3),
            progress=1.0,
            report=report,
        )
        RefusedRowModel.objects.filter(batch=batch).delete()
        RefusedRowModel.objects.bulk_create(
            [
                RefusedRowModel(
                    batch=batch,
                    file_name=r.file_name,
                    row_number=r.row_number,
                    reason=r.reason[:500],
                    raw={k: (None if pd.isna(v) else str(v)) for k, v in r.raw.items()},
                )
                for r in result.refused
            ],
            batch_size=2000,
        )


def _reason_counts(refused: list[RefusedRow]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in refused:
        key = row.reason.split(":")[0].split(" '")[0]
        counts[key] = counts.get(key, 0) + 1
    return counts


def profile_named(name: str | None) -> Profile | None:
    if name is None:
        return None
    try:
        return PROFILES[name]
    except KeyError:
        raise IncidentFileError(
            f"unknown profile {name!r}; known profiles: {', '.join(PROFILES)}"
        ) from None
