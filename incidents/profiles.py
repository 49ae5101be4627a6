"""Column layouts of the real data sets Barrio knows, so each imports with one flag.

A profile names candidate columns for each role (the first one present in a file wins),
how to read dates, the source's time zone, its known placeholder locations, and rules that
map its labels to Barrio's categories. Labels no rule matches become "unclassified".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


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
        for pattern, code in self.label_rules:
            if re.search(pattern, label, flags=re.IGNORECASE):
                return code
        return None


# Order matters: the first matching rule wins (sensitive ones first).
CDMX_RULES = (
    (r"TRATA DE PERSONAS|LENOCINIO", "trafficking"),
    (r"VIOLENCIA FAMILIAR", "domestic-violence"),
    (r"MENOR|CORRUPCION DE MENORES|PORNOGRAF", "child-abuse"),
    (r"ABUSO SEXUAL|VIOLACION|ACOSO SEXUAL|HOSTIGAMIENTO SEXUAL|ESTUPRO|SEXUAL", "sexual-offence"),
    (r"FEMINICIDIO|HOMICIDIO", "homicide"),
    (r"SECUESTRO|EXTORSION|PRIVACION DE LA LIBERTAD", "extortion-kidnapping"),
    (r"LESIONES|RIÑA|GOLPES", "assault"),
    (r"ROBO DE VEHICULO|ROBO DE MOTOCICLETA", "vehicle-theft"),
    (
        r"AUTOPARTES|ROBO DE OBJETOS DEL INTERIOR DE UN VEHICULO|ROBO A TRANSPORTISTA",
        "theft-from-vehicle",
    ),
    (r"ROBO A PASAJERO|METRO|METROBUS|MICROBUS|TAXI|TRANSPORTE", "robbery-transport"),
    (r"ROBO A CASA HABITACION", "burglary"),
    (r"ROBO A NEGOCIO|ROBO A REPARTIDOR|ROBO A CUENTAHABIENTE", "robbery-business"),
    (r"ROBO A TRANSEUNTE.*CON VIOLENCIA", "robbery-person"),
    (r"ROBO A TRANSEUNTE|CELULAR", "theft-person"),
    (r"ROBO|ABUSO DE CONFIANZA", "other-theft"),
    (r"FRAUDE|USO DE DOCUMENTO FALSO|FALSIFICACION", "fraud"),
    (r"AMENAZAS", "threats"),
    (r"NARCOMENUDEO|DROGA|ESTUPEFACIENTE|CONTRA LA SALUD", "drugs"),
    (r"ARMA", "weapons"),
    (r"DAÑO EN PROPIEDAD|DANO EN PROPIEDAD", "criminal-damage"),
)

BOSTON_RULES = (
    (r"GRAFFITI", "graffiti"),
    (r"STREET LIGHT", "street-light-outage"),
    (r"ILLEGAL DUMPING", "illegal-dumping"),
    (r"LITTER|DUMPSTER|TRASH", "litter"),
    (r"ABANDONED VEHICLE", "abandoned-vehicle"),
    (r"ABANDONED BUILDING", "abandoned-building"),
    (r"NEEDLE", "drug-litter"),
    (r"RODENT", "vermin"),
    (r"UNSAFE", "unsafe-space"),
    (r"POSTING OF SIGNS", "illegal-posting"),
)

POLICE_UK_RULES = (
    (r"^ANTI-SOCIAL BEHAVIOUR$", "antisocial-behaviour"),
    (r"^VIOLENCE AND SEXUAL OFFENCES$", "assault"),
    (r"^BURGLARY$", "burglary"),
    (r"^ROBBERY$", "robbery-person"),
    (r"^VEHICLE CRIME$", "vehicle-theft"),
    (r"^THEFT FROM THE PERSON$", "theft-person"),
    (r"^CRIMINAL DAMAGE AND ARSON$", "criminal-damage"),
    (r"^DRUGS$", "drugs"),
    (r"^POSSESSION OF WEAPONS$", "weapons"),
    (r"^PUBLIC ORDER$", "public-order"),
    (r"SHOPLIFTING|BICYCLE THEFT|OTHER THEFT", "other-theft"),
)

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
        label_rules=CDMX_RULES,
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
        label_rules=BOSTON_RULES,
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
        label_rules=POLICE_UK_RULES,
    ),
}
