"""Barrio's category taxonomy: two families, crime and incivility.

Sensitive categories (sexual offences, domestic violence, child abuse, trafficking) are
never shown publicly in any form. Applied by a data migration and kept in step by
``ensure_taxonomy`` (idempotent).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CategoryDef:
    code: str
    name_es: str
    name_en: str
    family: str
    sensitive: bool = False


CRIME, INCIVILITY = "crime", "incivility"

CATEGORIES: list[CategoryDef] = [
    CategoryDef("homicide", "Homicidio", "Homicide", CRIME),
    CategoryDef("assault", "Lesiones y agresiones", "Assault", CRIME),
    CategoryDef("robbery-person", "Robo a persona con violencia", "Robbery of a person", CRIME),
    CategoryDef("theft-person", "Robo a persona sin violencia", "Theft from a person", CRIME),
    CategoryDef("robbery-business", "Robo a negocio", "Robbery of a business", CRIME),
    CategoryDef("burglary", "Robo a casa habitación", "Burglary", CRIME),
    CategoryDef("vehicle-theft", "Robo de vehículo", "Vehicle theft", CRIME),
    CategoryDef(
        "theft-from-vehicle", "Robo de autopartes o en vehículo", "Theft from a vehicle", CRIME
    ),
    CategoryDef("robbery-transport", "Robo en transporte", "Robbery on public transport", CRIME),
    CategoryDef("other-theft", "Otros robos", "Other theft", CRIME),
    CategoryDef("fraud", "Fraude", "Fraud", CRIME),
    CategoryDef("threats", "Amenazas", "Threats", CRIME),
    CategoryDef("extortion-kidnapping", "Extorsión y secuestro", "Extortion and kidnapping", CRIME),
    CategoryDef("drugs", "Narcomenudeo y drogas", "Drugs", CRIME),
    CategoryDef("weapons", "Portación de armas", "Weapons", CRIME),
    CategoryDef("criminal-damage", "Daño en propiedad", "Criminal damage", CRIME),
    CategoryDef("public-order", "Desorden público", "Public order", CRIME),
    CategoryDef("other-crime", "Otros delitos", "Other crime", CRIME),
    CategoryDef("sexual-offence", "Delitos sexuales", "Sexual offences", CRIME, sensitive=True),
    CategoryDef(
        "domestic-violence", "Violencia familiar", "Domestic violence", CRIME, sensitive=True
    ),
    CategoryDef("child-abuse", "Abuso infantil", "Child abuse", CRIME, sensitive=True),
    CategoryDef("trafficking", "Trata de personas", "Human trafficking", CRIME, sensitive=True),
    CategoryDef("graffiti", "Grafiti", "Graffiti", INCIVILITY),
    CategoryDef("street-light-outage", "Alumbrado apagado", "Street-light outage", INCIVILITY),
    CategoryDef("illegal-dumping", "Basura y desmonte ilegal", "Illegal dumping", INCIVILITY),
    CategoryDef("litter", "Basura acumulada", "Litter and overflowing bins", INCIVILITY),
    CategoryDef("abandoned-vehicle", "Vehículo abandonado", "Abandoned vehicle", INCIVILITY),
    CategoryDef("abandoned-building", "Inmueble abandonado", "Abandoned building", INCIVILITY),
    CategoryDef(
        "public-drinking", "Consumo de alcohol en vía pública", "Public drinking", INCIVILITY
    ),
    CategoryDef("noise", "Ruido", "Noise", INCIVILITY),
    CategoryDef("drug-litter", "Jeringas en vía pública", "Discarded needles", INCIVILITY),
    CategoryDef("vermin", "Roedores y plagas", "Rodents and pests", INCIVILITY),
    CategoryDef(
        "unsafe-space", "Espacio inseguro o deteriorado", "Unsafe or run-down space", INCIVILITY
    ),
    CategoryDef("illegal-posting", "Propaganda ilegal", "Illegal posting", INCIVILITY),
    CategoryDef("antisocial-behaviour", "Conducta antisocial", "Anti-social behaviour", INCIVILITY),
]

BY_CODE = {c.code: c for c in CATEGORIES}


def ensure_taxonomy(category_model, *, overwrite: bool = True) -> None:
    """Every category of the taxonomy exists; ``overwrite`` also resets their names and
    flags to the taxonomy's (the data migration does; post_migrate only adds missing ones,
    e.g. after a test flush, and leaves edits alone)."""
    if not overwrite:
        existing = set(category_model.objects.values_list("code", flat=True))
        category_model.objects.bulk_create(
            [
                category_model(
                    code=item.code,
                    name_es=item.name_es,
                    name_en=item.name_en,
                    family=item.family,
                    sensitive=item.sensitive,
                    unclassified=False,
                )
                for item in CATEGORIES
                if item.code not in existing
            ]
        )
        return
    for item in CATEGORIES:
        category_model.objects.update_or_create(
            code=item.code,
            defaults={
                "name_es": item.name_es,
                "name_en": item.name_en,
                "family": item.family,
                "sensitive": item.sensitive,
                "unclassified": False,
            },
        )


def ensure_taxonomy_after_migrate(sender, apps=None, using="default", **kwargs) -> None:
    """post_migrate: a flushed database (TransactionTestCase, ``manage.py flush``) gets its
    categories back, as role groups do."""
    if sender.name != "incidents":
        return
    if apps is None:  # ``flush`` sends no migration state
        from django.apps import apps
    try:
        category_model = apps.get_model("incidents", "Category")
    except LookupError:  # migrated back before the incidents app
        return
    ensure_taxonomy(category_model, overwrite=False)
