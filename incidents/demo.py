"""Seeded synthetic incidents for the demo city, with the structure real data has.

* Hotspots that persist, emerge and fade over the two demo years, each with its own mix
  of categories (robbery around a market, public drinking around a park...).
* A weekly and daily rhythm per category (street robbery in the evening, drinking on
  weekend nights, dumping in the early morning, domestic violence at home at night).
* Background noise over the whole city, a few sensitive-category records, some records
  known only to the day, and a handful of bad rows in the sample file (so the import
  report has something to say).

Everything is generated from the seed: the same seed gives the same file, so loading the
demo twice changes nothing. The dates are fixed (2024–2025) for the same reason.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from django.utils.translation import gettext_noop
from pyproj import Transformer

from geo.conf import STORAGE_SRID
from incidents.profiles import Profile
from neighborhoods.demo import DEMO_CENTER_LONLAT, DEMO_METRIC_SRID, build_demo_city

DEMO_SOURCE = "barrio-demo"
DEMO_SEED = 7_2024
PERIOD_START = pd.Timestamp("2024-01-01")
PERIOD_MONTHS = 24
DEMO_TIMEZONE = "America/Lima"

# label → (category code in the taxonomy, hourly profile name, weekday weights Mon..Sun)
LABELS: dict[str, tuple[str, str, tuple[float, ...]]] = {
    "ROBO A TRANSEUNTE CON VIOLENCIA": ("robbery-person", "evening", (1, 1, 1, 1.1, 1.3, 1.4, 1.0)),
    "HURTO DE CELULAR": ("theft-person", "day", (1.1, 1, 1, 1, 1.2, 1.3, 0.9)),
    "ROBO A NEGOCIO": ("robbery-business", "evening", (1, 1, 1, 1, 1.2, 1.2, 0.8)),
    "ROBO DE VEHICULO": ("vehicle-theft", "night", (1, 1, 1, 1, 1.2, 1.3, 1.1)),
    "ROBO A CASA HABITACION": ("burglary", "day", (1.2, 1.1, 1.1, 1.1, 1.1, 0.9, 0.8)),
    "LESIONES": ("assault", "night", (0.8, 0.8, 0.8, 0.9, 1.3, 1.7, 1.4)),
    "NARCOMENUDEO": ("drugs", "night", (1, 1, 1, 1, 1.2, 1.3, 1.1)),
    "VIOLENCIA FAMILIAR": ("domestic-violence", "night", (0.9, 0.9, 0.9, 0.9, 1.1, 1.4, 1.5)),
    "ABUSO SEXUAL": ("sexual-offence", "night", (1, 1, 1, 1, 1.1, 1.2, 1.1)),
    "CONSUMO DE ALCOHOL EN VIA PUBLICA": (
        "public-drinking",
        "night",
        (0.5, 0.5, 0.6, 0.8, 1.6, 2.2, 1.3),
    ),
    "GRAFITI": ("graffiti", "night", (1, 1, 1, 1, 1.1, 1.2, 1.0)),
    "ALUMBRADO PUBLICO APAGADO": ("street-light-outage", "flat", (1, 1, 1, 1, 1, 1, 1)),
    "ARROJO DE DESMONTE Y BASURA": (
        "illegal-dumping",
        "early",
        (1.1, 1.1, 1.1, 1.1, 1.1, 0.9, 0.7),
    ),
    "VEHICULO ABANDONADO": ("abandoned-vehicle", "day", (1.2, 1.1, 1.1, 1.1, 1.1, 0.7, 0.6)),
    "RUIDOS MOLESTOS": ("noise", "night", (0.6, 0.6, 0.7, 0.8, 1.5, 2.0, 1.2)),
}

HOURLY = {
    # relative weight of each hour 0..23
    "evening": np.array(
        [
            3,
            2,
            1.5,
            1,
            0.7,
            0.6,
            0.8,
            1.2,
            1.5,
            1.6,
            1.7,
            1.8,
            2,
            2,
            2,
            2.2,
            2.6,
            3.2,
            4,
            4.4,
            4.2,
            3.8,
            3.4,
            3.2,
        ]
    ),
    "day": np.array(
        [
            0.5,
            0.3,
            0.2,
            0.2,
            0.2,
            0.4,
            0.8,
            1.5,
            2.4,
            2.8,
            3,
            3,
            3,
            3,
            3,
            3,
            2.8,
            2.5,
            2.2,
            1.8,
            1.4,
            1.1,
            0.8,
            0.6,
        ]
    ),
    "night": np.array(
        [
            4,
            4,
            3.4,
            2.6,
            1.8,
            1,
            0.6,
            0.5,
            0.5,
            0.6,
            0.7,
            0.8,
            0.9,
            1,
            1,
            1.1,
            1.3,
            1.6,
            2,
            2.6,
            3.2,
            3.6,
            4,
            4.2,
        ]
    ),
    "early": np.array(
        [
            1,
            1.4,
            2,
            2.6,
            3,
            3.2,
            2.8,
            2,
            1.4,
            1,
            0.8,
            0.7,
            0.6,
            0.6,
            0.6,
            0.6,
            0.6,
            0.7,
            0.8,
            0.8,
            0.8,
            0.8,
            0.8,
            0.9,
        ]
    ),
    "flat": np.ones(24),
}


@dataclass(frozen=True)
class Hotspot:
    name: str
    # offset from the city centre, metres
    dx: float
    dy: float
    sigma_m: float
    per_month: float
    trend: str  # persistent | emerging | fading | seasonal
    mix: dict[str, float]


HOTSPOTS = [
    Hotspot(
        "Mercado central",
        -600,
        400,
        180,
        70,
        "persistent",
        {
            "ROBO A TRANSEUNTE CON VIOLENCIA": 4,
            "HURTO DE CELULAR": 5,
            "ROBO A NEGOCIO": 2,
            "LESIONES": 1,
        },
    ),
    Hotspot(
        "Paradero de buses",
        2300,
        -1200,
        150,
        45,
        "persistent",
        {"HURTO DE CELULAR": 4, "ROBO A TRANSEUNTE CON VIOLENCIA": 3, "NARCOMENUDEO": 1},
    ),
    Hotspot(
        "Parque de la loma",
        -2800,
        -2200,
        220,
        40,
        "emerging",
        {
            "CONSUMO DE ALCOHOL EN VIA PUBLICA": 5,
            "RUIDOS MOLESTOS": 2,
            "GRAFITI": 2,
            "LESIONES": 1,
            "NARCOMENUDEO": 2,
        },
    ),
    Hotspot(
        "Zona de discotecas",
        1200,
        2600,
        160,
        55,
        "persistent",
        {
            "LESIONES": 4,
            "CONSUMO DE ALCOHOL EN VIA PUBLICA": 4,
            "RUIDOS MOLESTOS": 3,
            "ROBO DE VEHICULO": 1,
        },
    ),
    Hotspot(
        "Antigua fábrica",
        4200,
        1500,
        260,
        35,
        "fading",
        {
            "ARROJO DE DESMONTE Y BASURA": 4,
            "VEHICULO ABANDONADO": 2,
            "ALUMBRADO PUBLICO APAGADO": 3,
            "GRAFITI": 2,
            "ROBO DE VEHICULO": 1,
        },
    ),
    Hotspot(
        "Pasaje sin luz",
        -4300,
        1800,
        140,
        25,
        "emerging",
        {"ALUMBRADO PUBLICO APAGADO": 3, "ROBO A TRANSEUNTE CON VIOLENCIA": 3, "GRAFITI": 1},
    ),
    Hotspot(
        "Barrio residencial alto",
        600,
        -4300,
        300,
        20,
        "seasonal",
        {"ROBO A CASA HABITACION": 5, "ROBO DE VEHICULO": 2},
    ),
]

BACKGROUND_PER_MONTH = 260
BACKGROUND_MIX = {
    "HURTO DE CELULAR": 3, "ROBO A TRANSEUNTE CON VIOLENCIA": 2, "ROBO A CASA HABITACION": 2,
    "ROBO DE VEHICULO": 1.5, "LESIONES": 1.5, "GRAFITI": 2, "ALUMBRADO PUBLICO APAGADO": 2,
    "ARROJO DE DESMONTE Y BASURA": 2, "VEHICULO ABANDONADO": 1, "RUIDOS MOLESTOS": 1.5,
    "VIOLENCIA FAMILIAR": 0.35, "ABUSO SEXUAL": 0.08,
}  # fmt: skip

DEMO_PROFILE = Profile(
    name="demo",
    source=DEMO_SOURCE,
    description="Ciudad Demo: incidentes sintéticos generados por Barrio",
    attribution=gettext_noop("Ciudad Demo: synthetic incidents generated by Barrio"),
    licence="CC0 (generated)",
    family="crime",
    timezone=DEMO_TIMEZONE,
    id=("id",),
    date=("fecha",),
    time=("hora",),
    category=("tipo",),
    lat=("lat",),
    lon=("lon",),
    label_rules=tuple((f"^{label}$", code) for label, (code, _h, _w) in LABELS.items()),
)


def _intensity(trend: str, month: int) -> float:
    t = month / (PERIOD_MONTHS - 1)
    if trend == "emerging":
        return 0.1 if t < 0.5 else 0.1 + 1.8 * (t - 0.5)
    if trend == "fading":
        return max(0.05, 1.3 - 1.4 * t)
    if trend == "seasonal":  # summer in the southern hemisphere: December to March
        calendar_month = (month % 12) + 1
        return 1.5 if calendar_month in (12, 1, 2, 3) else 0.6
    return 1.0


def _timestamps(rng, label: str, month: int, count: int) -> tuple[list[str], list[str]]:
    _code, hourly, weekday = LABELS[label]
    start = PERIOD_START + pd.DateOffset(months=month)
    days = pd.date_range(start, start + pd.DateOffset(months=1) - pd.Timedelta(days=1), freq="D")
    day_weights = np.array([weekday[d.weekday()] for d in days], dtype=float)
    chosen_days = days[rng.choice(len(days), size=count, p=day_weights / day_weights.sum())]
    profile = HOURLY[hourly]
    hours = rng.choice(24, size=count, p=profile / profile.sum())
    minutes = rng.integers(0, 60, size=count)
    dates = [d.strftime("%Y-%m-%d") for d in chosen_days]
    times = [f"{h:02d}:{m:02d}:00" for h, m in zip(hours, minutes, strict=True)]
    # One record in twenty is known only to the day (reported later, time unknown).
    for i in np.flatnonzero(rng.random(count) < 0.05):
        times[i] = ""
    return dates, times


def generate_demo_incidents(seed: int = DEMO_SEED) -> pd.DataFrame:
    """The demo incident table: id, fecha, hora, tipo, lat, lon (good rows only)."""
    rng = np.random.default_rng(seed)
    districts, _hoods = build_demo_city()
    to_metric = Transformer.from_crs(STORAGE_SRID, DEMO_METRIC_SRID, always_xy=True)
    to_lonlat = Transformer.from_crs(DEMO_METRIC_SRID, STORAGE_SRID, always_xy=True)
    city = shapely.union_all(districts.frame.geometry.values)
    city_metric = shapely.transform(
        city, lambda xy: np.column_stack(to_metric.transform(xy[:, 0], xy[:, 1]))
    )
    shapely.prepare(city_metric)
    cx, cy = to_metric.transform(*DEMO_CENTER_LONLAT)
    min_x, min_y, max_x, max_y = city_metric.bounds

    rows = []
    for month in range(PERIOD_MONTHS):
        batches = []
        for spot in HOTSPOTS:
            count = rng.poisson(spot.per_month * _intensity(spot.trend, month))
            xs = cx + spot.dx + rng.normal(0, spot.sigma_m, count)
            ys = cy + spot.dy + rng.normal(0, spot.sigma_m, count)
            batches.append((xs, ys, spot.mix))
        count = rng.poisson(BACKGROUND_PER_MONTH)
        batches.append(
            (rng.uniform(min_x, max_x, count), rng.uniform(min_y, max_y, count), BACKGROUND_MIX)
        )
        for xs, ys, mix in batches:
            inside = shapely.contains_xy(city_metric, xs, ys)
            xs, ys = xs[inside], ys[inside]
            labels = list(mix)
            weights = np.array([mix[label] for label in labels], dtype=float)
            picks = rng.choice(len(labels), size=len(xs), p=weights / weights.sum())
            lons, lats = to_lonlat.transform(xs, ys)
            for label_index in range(len(labels)):
                members = np.flatnonzero(picks == label_index)
                if not len(members):
                    continue
                dates, times = _timestamps(rng, labels[label_index], month, len(members))
                for j, i in enumerate(members):
                    rows.append(
                        (
                            dates[j],
                            times[j],
                            labels[label_index],
                            round(lats[i], 6),
                            round(lons[i], 6),
                        )
                    )
    rows.sort()
    frame = pd.DataFrame(rows, columns=["fecha", "hora", "tipo", "lat", "lon"])
    frame.insert(0, "id", [f"DEMO-{i:06d}" for i in range(1, len(frame) + 1)])
    return frame


# Rows a real export would also contain; the import refuses each with a reason.
BAD_ROWS = [
    {"id": "DEMO-BAD-1", "fecha": "2025-13-45", "hora": "10:00:00", "tipo": "GRAFITI", "lat": -13.2, "lon": -79.3},
    {"id": "DEMO-BAD-2", "fecha": "2025-03-01", "hora": "22:15:00", "tipo": "LESIONES", "lat": 0, "lon": 0},
    {"id": "DEMO-BAD-3", "fecha": "2025-06-14", "hora": "", "tipo": "HURTO DE CELULAR", "lat": "", "lon": ""},
]  # fmt: skip


def write_demo_csv(path: Path, *, seed: int = DEMO_SEED, with_bad_rows: bool = True) -> int:
    """Writes the sample import file; returns the number of data rows."""
    frame = generate_demo_incidents(seed)
    if with_bad_rows:
        bad = pd.DataFrame(BAD_ROWS)
        # Spread them through the file, as they would be in a real export.
        positions = [len(frame) // 4, len(frame) // 2, 3 * len(frame) // 4]
        parts, last = [], 0
        for position, (_, row) in zip(positions, bad.iterrows(), strict=True):
            parts += [frame.iloc[last:position], row.to_frame().T]
            last = position
        parts.append(frame.iloc[last:])
        frame = pd.concat(parts, ignore_index=True)
    frame.to_csv(path, index=False, quoting=csv.QUOTE_MINIMAL)
    return len(frame)


def load_demo_incidents(*, work_dir: Path):
    """Writes the sample file (with its bad rows) and imports it through the production
    import with --skip-bad, so the demo batch report shows what a refused row looks like.

    Returns None when this very file was imported already and its incidents are all there:
    loading the demo again then changes nothing, not even the list of import batches."""
    from incidents.models import ImportBatch, Incident
    from incidents.services.imports import import_incidents
    from incidents.services.reading import sha256_of
    from incidents.services.request import ImportRequest

    path = Path(work_dir) / "ciudad_demo_incidentes.csv"
    write_demo_csv(path)
    done = (
        ImportBatch.objects.filter(
            source__name=DEMO_SOURCE,
            status=ImportBatch.Status.SUCCEEDED,
            files__0__sha256=sha256_of(path),
        )
        .order_by("-pk")
        .first()
    )
    if done is not None:
        written = done.rows_created + done.rows_updated + done.rows_unchanged
        if Incident.objects.filter(source__name=DEMO_SOURCE).count() == written:
            return None
    return import_incidents(
        request=ImportRequest(paths=[path], source=DEMO_SOURCE, profile=DEMO_PROFILE, skip_bad=True)
    )
