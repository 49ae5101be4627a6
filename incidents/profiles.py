"""Column layouts of the real data sets Barrio knows, so each imports with one flag.

A profile names candidate columns for each role (the first one present in a file wins;
a window's end too, for sources that give one), how to read dates, the source's time
zone, its known placeholder locations, and rules that map its labels to Barrio's
categories (``fixtures/label_rules/``, one file a profile).
Labels no rule matches become "unclassified".
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass, field

from config.env import FIXTURES_DIR
from incidents.taxonomy import BY_CODE


@dataclass(frozen=True)
class Placeholder:
    lon: float
    lat: float
    description: str
    tolerance_deg: float = 0.0001  # about 10 m


@dataclass(frozen=True)
class Profile:
    name: str
    source: str
    description: str
    attribution: str
    licence: str
    family: str
    timezone: str
    id: tuple[str, ...] = ()
    date: tuple[str, ...] = ()
    time: tuple[str, ...] = ()
    # The end of a time window ("between 18:00 Friday and 08:00 Monday"), when the source
    # gives one: occurred_until, the exclusive end (a date alone ends at the next midnight).
    date_end: tuple[str, ...] = ()
    time_end: tuple[str, ...] = ()
    category: tuple[str, ...] = ()
    lat: tuple[str, ...] = ()
    lon: tuple[str, ...] = ()
    # police.uk publishes months only.
    month_only: bool = False
    location_quality: str = "exact"
    constant_label: str | None = None
    placeholders: tuple[Placeholder, ...] = ()
    label_rules: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def category_for(self, label: str) -> str | None:
        folded = fold_label(label)
        for pattern, code in self.label_rules:
            if re.search(fold_label(pattern), folded, flags=re.IGNORECASE):
                return code
        return None


def fold_label(text: str) -> str:
    """``text`` without accents and with single spaces: publishers spell one offence
    "VIOLACIÓN" one year and "VIOLACION" the next, or with a doubled space, and a rule
    must catch every spelling (a sensitive label missed would be shown publicly)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


LABEL_RULES_DIR = FIXTURES_DIR / "label_rules"


def read_label_rules(name: str) -> tuple[tuple[str, str], ...]:
    """The (pattern, category code) rules of ``fixtures/label_rules/NAME.csv``, in file
    order: the first matching rule wins, so sensitive categories come first. A pattern that
    does not compile or a code outside the taxonomy refuses the file."""
    path = LABEL_RULES_DIR / f"{name}.csv"
    with path.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    rules = []
    for number, row in enumerate(rows, start=2):
        pattern, code = row["pattern"], row["category"]
        try:
            re.compile(fold_label(pattern))  # as category_for uses it
        except re.error as error:
            raise ValueError(f"{path.name} row {number}: {error}") from None
        if code not in BY_CODE:
            raise ValueError(f"{path.name} row {number}: no category {code!r} in the taxonomy")
        rules.append((pattern, code))
    return tuple(rules)


PROFILES: dict[str, Profile] = {
    "cdmx": Profile(
        name="cdmx",
        source="cdmx-fgj",
        description="Carpetas de investigación, Fiscalía General de Justicia de la CDMX",
        attribution="Delitos: Fiscalía General de Justicia de la CDMX, carpetas de "
        "investigación (CC BY 4.0), vía jjsantos01/delitos-colonias",
        licence="CC BY 4.0",
        family="crime",
        timezone="America/Mexico_City",
        id=("row_id", "id", "idCarpeta"),
        date=("fecha_hecho", "fecha_hechos"),
        time=("hora_hecho", "hora_hechos"),
        category=("delito",),
        lat=("latitud",),
        lon=("longitud",),
        label_rules=read_label_rules("cdmx"),
    ),
    "boston311": Profile(
        name="boston311",
        source="boston-311",
        description="City of Boston 311 service requests",
        attribution="Incivilidades: City of Boston 311 Service Requests (ODC PDDL), vía "
        "johnsliao/bostonservicemap",
        licence="ODC PDDL",
        family="incivility",
        timezone="America/New_York",
        id=("CASE_ENQUIRY_ID", "case_enquiry_id"),
        date=("OPEN_DT", "open_dt"),
        category=("TYPE", "type"),
        lat=("LATITUDE", "latitude"),
        lon=("LONGITUDE", "longitude"),
        placeholders=(Placeholder(-71.0587, 42.3594, "Boston 311 default point (City Hall)"),),
        label_rules=read_label_rules("boston311"),
    ),
    "policeuk": Profile(
        name="policeuk",
        source="police-uk",
        description="data.police.uk street-level crime and anti-social behaviour",
        attribution="Contains public sector information licensed under the Open Government "
        "Licence v3.0 (data.police.uk)",
        licence="OGL v3.0",
        family="incivility",
        timezone="Europe/London",
        id=("Crime ID",),
        date=("Month", "month"),
        category=("Crime type", "crime_type"),
        lat=("Latitude", "latitude"),
        lon=("Longitude", "longitude"),
        month_only=True,
        location_quality="snapped",
        constant_label="Anti-social behaviour",
        label_rules=read_label_rules("policeuk"),
    ),
}
