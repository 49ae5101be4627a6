"""The incident import bench's methods, each run in a child process of its own
(``python -m bench.incident_import --child METHOD --csv PATH --database NAME``, started by
the parent in :mod:`bench.incident_import`): ours, Django's ``bulk_create``, and what an
analyst writes with geopandas. :func:`child_main` times one run and prints a JSON line
with the time, the process's memory and what the run wrote."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from bench.incident_import_data import SOURCE, TIMEZONE

OURS = "barrio import_incidents"
BULK_CREATE = "django bulk_create + UPDATE"
ANALYST = "geopandas sjoin + execute_values"
ANALYST_TO_POSTGIS = "geopandas sjoin + to_postgis"

BULK_CREATE_BATCH = 5_000


def _bench_ids() -> tuple[int, int, dict[str, tuple[int, int]]]:
    from incidents.models import IncidentSource, SourceLabel
    from neighborhoods.demo import DEMO_REGION_CODE
    from neighborhoods.models import Region

    source = IncidentSource.objects.get(name=SOURCE)
    region = Region.objects.get(code=DEMO_REGION_CODE)
    labels = {sl.label: (sl.pk, sl.category_id) for sl in SourceLabel.objects.filter(source=source)}
    return source.pk, region.pk, labels


def method_ours(path: Path) -> dict:
    from incidents.services.imports import import_incidents
    from incidents.services.reading import ColumnMapping
    from incidents.services.request import ImportRequest

    result = import_incidents(
        request=ImportRequest(
            paths=[path],
            source=SOURCE,
            columns=ColumnMapping(
                id="id", date="date", time="time", category="category", lat="lat", lon="lon"
            ),
            timezone=TIMEZONE,
        )
    )
    return {
        "created": result.rows_created,
        "unchanged": result.rows_unchanged,
        "refused": result.rows_refused,
        "timings": result.timings,
        "indexes_rebuilt": result.indexes_rebuilt,
    }


def method_bulk_create(path: Path) -> dict:
    import csv
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from django.contrib.gis.geos import Point
    from django.db import transaction
    from django.db.models import OuterRef, Subquery

    from incidents.models import ImportBatch, Incident
    from neighborhoods.models import District, Neighborhood

    source_id, region_id, labels = _bench_ids()
    zone = ZoneInfo(TIMEZONE)
    created = 0
    with transaction.atomic():
        batch = ImportBatch.objects.create(source_id=source_id, status="running")
        objects = []
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                label_id, category_id = labels[row["category"]]
                objects.append(
                    Incident(
                        source_id=source_id,
                        external_id=row["id"],
                        point=Point(float(row["lon"]), float(row["lat"]), srid=4326),
                        occurred_at=datetime.fromisoformat(f"{row['date']}T{row['time']}").replace(
                            tzinfo=zone
                        ),
                        label_id=label_id,
                        category_id=category_id,
                        region_id=region_id,
                        batch=batch,
                    )
                )
                if len(objects) == BULK_CREATE_BATCH:
                    Incident.objects.bulk_create(objects)
                    created += len(objects)
                    objects = []
        Incident.objects.bulk_create(objects)
        created += len(objects)

        def first_area(model):
            return Subquery(
                model.objects.filter(region_id=region_id, geom__intersects=OuterRef("point"))
                .order_by("pk")
                .values("pk")[:1]
            )

        Incident.objects.filter(batch=batch).update(
            district=first_area(District), neighborhood=first_area(Neighborhood)
        )
    return {"created": created}


def _analyst_write(frame, table_columns, connection, use_to_postgis: bool) -> None:
    """``to_postgis`` when SQLAlchemy + GeoAlchemy2 are there, else WKB + execute_values."""
    if use_to_postgis:  # pragma: no cover - only with the optional packages
        import sqlalchemy

        settings = connection.settings_dict
        url = sqlalchemy.engine.URL.create(
            "postgresql+psycopg2",
            username=settings["USER"] or None,
            password=settings["PASSWORD"] or None,
            host=settings["HOST"] or None,
            port=int(settings["PORT"]) if settings["PORT"] else None,
            database=settings["NAME"],
        )
        engine = sqlalchemy.create_engine(url)
        frame.rename_geometry("point").to_postgis(
            "incidents_incident", engine, if_exists="append", index=False, chunksize=10_000
        )
        engine.dispose()
        return
    from psycopg2.extras import execute_values

    values = frame.drop(columns="geometry").assign(point=frame.geometry.to_wkb(hex=True))
    rows = list(values[table_columns].itertuples(index=False, name=None))
    with connection.cursor() as cursor:
        execute_values(
            cursor.cursor,
            f"INSERT INTO incidents_incident ({', '.join(table_columns)}) VALUES %s",  # noqa: S608
            rows,
            template="("
            + ", ".join(
                "ST_GeomFromWKB(decode(%s, 'hex'), 4326)" if c == "point" else "%s"
                for c in table_columns
            )
            + ")",
            page_size=10_000,
        )


def method_analyst(path: Path, use_to_postgis: bool = False) -> dict:
    import warnings

    import geopandas as gpd
    import pandas as pd
    from django.db import connection, transaction

    from incidents.models import ImportBatch

    source_id, region_id, labels = _bench_ids()
    frame = pd.read_csv(path, dtype={"id": str, "date": str, "time": str, "category": str})
    points = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs="EPSG:4326"
    )
    raw = connection.cursor().connection  # psycopg2's own connection
    with warnings.catch_warnings():  # pandas prefers SQLAlchemy, but takes a DBAPI connection
        warnings.simplefilter("ignore", UserWarning)
        areas = {
            table: gpd.read_postgis(
                f"SELECT id, geom FROM {table} WHERE region_id = %(region)s",  # noqa: S608
                raw,
                geom_col="geom",
                params={"region": region_id},
            )
            for table in ("neighborhoods_district", "neighborhoods_neighborhood")
        }

    def first_area(table):
        hits = gpd.sjoin(points, areas[table], how="inner", predicate="intersects")
        lowest = hits.groupby(level=0)["id"].min()  # a point on a border: lowest id, as ours
        found = lowest.reindex(points.index).to_numpy()
        ids = np.full(len(found), None, dtype=object)  # NULL where no area, never NaN
        present = ~np.isnan(found)
        ids[present] = found[present].astype(np.int64).tolist()
        return ids

    label = frame["category"].map(lambda v: labels[v])
    occurred = pd.to_datetime(frame["date"] + " " + frame["time"]).dt.tz_localize(TIMEZONE)
    with transaction.atomic():
        batch = ImportBatch.objects.create(source_id=source_id, status="running")
        table = gpd.GeoDataFrame(
            {
                "source_id": source_id,
                "external_id": frame["id"],
                "occurred_at": occurred,
                "time_precision": "exact",
                "label_id": label.map(lambda v: v[0]),
                "category_id": label.map(lambda v: v[1]),
                "region_id": region_id,
                "district_id": first_area("neighborhoods_district"),
                "neighborhood_id": first_area("neighborhoods_neighborhood"),
                "location_quality": "exact",
                "batch_id": batch.pk,
            },
            geometry=points.geometry,
            crs="EPSG:4326",
        )
        columns = [c for c in table.columns if c != "geometry"] + ["point"]
        _analyst_write(table, columns, connection, use_to_postgis)
    return {"created": len(table)}


def to_postgis_available() -> bool:
    try:
        import geoalchemy2  # noqa: F401
        import sqlalchemy  # noqa: F401
    except ImportError:
        return False
    return True


CHILD_METHODS = {
    OURS: method_ours,
    BULK_CREATE: method_bulk_create,
    ANALYST: method_analyst,
    ANALYST_TO_POSTGIS: lambda path: method_analyst(path, use_to_postgis=True),
}


def _memory_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process. Not ``ru_maxrss``: Linux carries the
    parent's peak over into a child started with fork and exec."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _agreement() -> dict:
    """What the run wrote, and how it differs from ``bench_truth`` (ours at N) if present."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(district_id), count(neighborhood_id), "
            "count(DISTINCT external_id) FROM incidents_incident"
        )
        rows, with_district, with_neighborhood, ids = cursor.fetchone()
        summary = {
            "rows": rows,
            "with_district": with_district,
            "with_neighborhood": with_neighborhood,
            "distinct_ids": ids,
        }
        cursor.execute("SELECT to_regclass('bench_truth') IS NOT NULL")
        if cursor.fetchone()[0]:
            cursor.execute(
                """
                SELECT count(t.external_id),
                       count(*) FILTER (WHERE t.external_id IS NOT NULL AND (
                         (i.district_id, i.neighborhood_id, i.region_id, i.label_id,
                          i.category_id, i.occurred_at)
                         IS DISTINCT FROM
                         (t.district_id, t.neighborhood_id, t.region_id, t.label_id,
                          t.category_id, t.occurred_at)
                         OR abs(ST_X(i.point) - ST_X(t.point)) > 1e-9
                         OR abs(ST_Y(i.point) - ST_Y(t.point)) > 1e-9))
                FROM incidents_incident i LEFT JOIN bench_truth t USING (external_id)
                """
            )
            summary["matched"], summary["differing"] = cursor.fetchone()
    return summary


def child_main(argv: list[str]) -> int:
    """One timed run in a fresh process; prints a JSON line with time, RSS and checks."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", required=True, choices=list(CHILD_METHODS))
    parser.add_argument("--csv", required=True, type=Path)
    parser.add_argument("--database", required=True)
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    settings.DEBUG = False
    settings.DATABASES["default"]["NAME"] = args.database
    connection.settings_dict["NAME"] = args.database
    connection.ensure_connection()
    rss_before = _memory_mb("VmRSS")
    start = time.perf_counter()
    output = CHILD_METHODS[args.child](args.csv)
    seconds = time.perf_counter() - start
    peak = _memory_mb("VmHWM")
    output.update(
        seconds=seconds, peak_rss_mb=peak, rss_before_mb=rss_before, agreement=_agreement()
    )
    connection.close()
    print(json.dumps(output))
    return 0
