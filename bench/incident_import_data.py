"""The incident import bench's data, made in the parent process: the demo city's
boundaries, the source with its labels, and N seeded CSV rows clustered around hotspots
inside the city (see :mod:`bench.incident_import`)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from bench.common import BenchmarkError
from bench.points import clustered_points

SOURCE = "bench-synthetic"
TIMEZONE = "America/Lima"
COLUMNS = ["id", "date", "time", "category", "lat", "lon"]
HOTSPOTS = 60
HOTSPOT_SIGMA_M = 250.0
HOTSPOT_SHARE = 0.75
# Source labels as a Latin American export spells them, and the category each maps to.
LABELS = {
    "ROBO A TRANSEUNTE EN VIA PUBLICA CON VIOLENCIA": "robbery-person",
    "ROBO A TRANSEUNTE SIN VIOLENCIA": "theft-person",
    "ROBO A NEGOCIO SIN VIOLENCIA": "robbery-business",
    "ROBO DE VEHICULO DE SERVICIO PARTICULAR": "vehicle-theft",
    "ROBO A CASA HABITACION": "burglary",
    "LESIONES DOLOSAS": "assault",
    "VIOLENCIA FAMILIAR": "domestic-violence",
    "FRAUDE": "fraud",
    "AMENAZAS": "threats",
    "DAÑO EN PROPIEDAD AJENA": "criminal-damage",
    "NARCOMENUDEO": "drugs",
    "CONSUMO DE ALCOHOL EN VIA PUBLICA": "public-drinking",
}


def load_boundaries() -> tuple:
    """The demo city's districts and neighborhoods in the bench database; (region, outline)."""
    import shapely
    from django.db import connection

    from neighborhoods.demo import DEMO_REGION_CODE, build_demo_city, load_demo_boundaries
    from neighborhoods.models import Region

    reports = load_demo_boundaries()
    if not all(r.ok for r in reports):
        raise BenchmarkError(
            "the demo city boundaries were refused: " + "; ".join(reports[0].lines())
        )
    with connection.cursor() as cursor:
        for table in (
            "neighborhoods_district",
            "neighborhoods_neighborhood",
            "neighborhoods_areapart",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")  # noqa: S608 - constant names
    districts, _ = build_demo_city()
    outline = shapely.union_all(districts.frame.geometry.values)
    return Region.objects.get(code=DEMO_REGION_CODE), outline


def create_source_and_labels() -> None:
    """The source and its labels, mapped to categories, for every method alike."""
    from incidents.models import Category, IncidentSource, SourceLabel

    source, _ = IncidentSource.objects.get_or_create(name=SOURCE)
    categories = {c.code: c for c in Category.objects.filter(code__in=set(LABELS.values()))}
    missing = set(LABELS.values()) - set(categories)
    if missing:
        raise BenchmarkError(f"categories missing from the taxonomy: {sorted(missing)}")
    for label, code in LABELS.items():
        SourceLabel.objects.get_or_create(source=source, label=label, category=categories[code])


def generate_rows(n: int, rng: np.random.Generator, outline):
    """``n`` incident rows as text, sorted by time; points clustered inside ``outline``."""
    import pandas as pd
    import shapely

    min_x, min_y, max_x, max_y = outline.bounds
    shapely.prepare(outline)
    metres_lat = 110_574.0
    metres_lon = 111_320.0 * math.cos(math.radians((min_y + max_y) / 2))

    centres_lon, centres_lat = [], []
    while len(centres_lon) < HOTSPOTS:
        lon = rng.uniform(min_x, max_x, HOTSPOTS)
        lat = rng.uniform(min_y, max_y, HOTSPOTS)
        keep = shapely.contains_xy(outline, lon, lat)
        centres_lon += lon[keep].tolist()
        centres_lat += lat[keep].tolist()
    lon, lat = clustered_points(
        n,
        rng,
        outline,
        np.array(centres_lon[:HOTSPOTS]),
        np.array(centres_lat[:HOTSPOTS]),
        share=HOTSPOT_SHARE,
        sigma_m=HOTSPOT_SIGMA_M,
        metres_per_x=metres_lon,
        metres_per_y=metres_lat,
        decimals=6,
    )

    start = pd.Timestamp("2023-01-01").value // 10**9
    end = pd.Timestamp("2025-01-01").value // 10**9
    seconds = np.sort(rng.integers(start, end, n))
    when = pd.to_datetime(seconds, unit="s")
    labels = np.array(list(LABELS))
    label_weights = rng.dirichlet(np.full(len(labels), 2.0))
    frame = pd.DataFrame(
        {
            "id": [f"INC{i:07d}" for i in range(1, n + 1)],
            "date": when.strftime("%Y-%m-%d"),
            "time": when.strftime("%H:%M:%S"),
            "category": labels[rng.choice(len(labels), size=n, p=label_weights)],
            "lat": lat,
            "lon": lon,
        }
    )
    return frame


def write_csv(frame, path: Path) -> Path:
    frame.to_csv(path, index=False, columns=COLUMNS, float_format="%.6f")
    return path
