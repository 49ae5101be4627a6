"""Importing public-space inventories (GeoJSON, GeoPackage, zipped Shapefile).

Files are read by ``geo.io.read_vector`` (driver allowlist, CRS rules, geometry repair
reported). Each feature becomes a space through ``services.spaces.create_space`` /
``update_space``, so the same rules apply as in the API: allowed geometry types, kind and
geometry matching, placement in a district (with ``--district``, inside that district). The
whole import is one transaction: by default one refused feature writes nothing and the
report names every refused feature by file and number; ``skip_bad`` writes the good ones.

Re-importing a file changes nothing: spaces are keyed by ``external_id``, from
``--source`` and the ``--id-field`` value, or (without an id column) a digest of the
feature's name, kind and geometry.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import shapely
from django.core.exceptions import ValidationError
from django.db import transaction

from common.reports import DRY_RUN_LINE, REFUSED_LINE, FeatureImportReport
from geo.io import VectorFileError, read_vector
from neighborhoods.models import District
from neighborhoods.text import cell_text, normalize_name
from publicspaces.geometry import from_shapely
from publicspaces.models import PublicSpace, SpaceKind
from publicspaces.scope import SpaceScope
from publicspaces.services.common import OutOfScope
from publicspaces.services.spaces import create_space, update_space


class SpaceImportError(Exception):
    """The import could not start (a file, a field or the district is wrong)."""


# Common names of each kind in inventories (Spanish and English), after normalisation
# (lower case, no accents, words joined by "_").
KIND_SYNONYMS = {
    "park": ["parque", "park", "parque_zonal", "area_verde", "green_area", "jardin"],
    "plaza": ["plaza", "plazuela", "square", "placita", "alameda"],
    "sports_field": [
        "losa",
        "losa_deportiva",
        "cancha",
        "cancha_deportiva",
        "campo_deportivo",
        "sports_field",
        "polideportivo",
        "complejo_deportivo",
    ],
    "playground": ["juegos_infantiles", "playground", "parque_infantil", "area_de_juegos"],
    "lighting_point": ["luminaria", "poste", "alumbrado", "punto_de_alumbrado", "street_light"],
    "lighting_stretch": ["tramo_de_alumbrado", "tramo_iluminado", "alumbrado_tramo"],
    "community_center": [
        "centro_comunal",
        "local_comunal",
        "casa_comunal",
        "community_center",
        "centro_comunitario",
    ],
    "vacant_lot": ["lote_baldio", "terreno_baldio", "baldio", "vacant_lot", "lote_vacio"],
    "market_surroundings": [
        "mercado",
        "entorno_de_mercado",
        "alrededores_de_mercado",
        "market",
        "market_surroundings",
    ],
    "other": ["otro", "other"],
}


def _normalise(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", normalize_name(value)).strip("_")


def _kind_lookup() -> dict[str, str]:
    lookup: dict[str, str] = {}
    for kind, label in SpaceKind.choices:
        lookup[_normalise(kind)] = kind
        lookup[_normalise(str(label))] = kind
    for kind, names in KIND_SYNONYMS.items():
        for name in names:
            lookup[_normalise(name)] = kind
    return lookup


@dataclass
class SpaceImportReport(FeatureImportReport):
    """Its repaired and refused features are lines naming the file and feature."""

    paths: list[str]
    dry_run: bool
    skip_bad: bool
    district: str = ""

    @property
    def written(self) -> bool:
        return not self.dry_run and (self.ok or self.skip_bad)

    def summary(self) -> str:
        where = f" in district {self.district}" if self.district else ""
        # Rolled back (dry run, or all-or-nothing with refusals): claim no creations.
        would = "" if self.written else "would be "
        return (
            f"public spaces from {', '.join(Path(p).name for p in self.paths)}{where}: "
            + self.counts(would=would)
        )

    def lines(self) -> list[str]:
        out = [self.summary()]
        out += self.feature_lines()
        if self.dry_run:
            out.append(DRY_RUN_LINE)
        elif self.refused and not self.skip_bad:
            out.append(REFUSED_LINE)
        elif self.refused:
            out.append("the refused features were skipped (--skip-bad); the others were written")
        return out


def _resolve_district(code: str, region: str | None) -> District:
    districts = District.objects.filter(code=code).select_related("region")
    if region:
        districts = districts.filter(region__code=region)
    found = list(districts[:2])
    if not found:
        raise SpaceImportError(
            f"no district with code {code!r}" + (f" in {region}" if region else "")
        )
    if len(found) > 1:
        raise SpaceImportError(f"district code {code!r} exists in several regions: add --region")
    return found[0]


def _single(geometry):
    """One-part multi-geometries (common in GeoPackage and Shapefile) as their only part."""
    if geometry.geom_type in ("MultiPoint", "MultiLineString") and len(geometry.geoms) == 1:
        return geometry.geoms[0]
    return geometry


def _digest(name: str, kind: str, geometry) -> str:
    payload = f"{name}|{kind}|".encode() + shapely.to_wkb(shapely.set_precision(geometry, 1e-7))
    return hashlib.sha256(payload).hexdigest()[:24]


def import_space_files(
    *,
    paths: Iterable[str | Path],
    name_field: str = "name",
    kind_field: str | None = "kind",
    default_kind: str | None = None,
    address_field: str | None = None,
    id_field: str | None = None,
    source: str = "import",
    district: str | None = None,
    region: str | None = None,
    crs: str | None = None,
    dry_run: bool = False,
    skip_bad: bool = False,
    is_demo: bool = False,
) -> SpaceImportReport:
    """Imports every feature of ``paths``; see the module docstring for the rules."""
    paths = [Path(p) for p in paths]
    report = SpaceImportReport(
        paths=[str(p) for p in paths], dry_run=dry_run, skip_bad=skip_bad, district=district or ""
    )
    kinds = _kind_lookup()
    if default_kind is not None and default_kind not in SpaceKind.values:
        raise SpaceImportError(
            f"--default-kind {default_kind!r} is not one of: {', '.join(SpaceKind.values)}"
        )
    within = None
    if district:
        within = SpaceScope(district_id=_resolve_district(district, region).pk)

    reads = []
    for path in paths:
        labels = [f for f in (id_field, name_field) if f]
        try:
            read = read_vector(path, crs=crs, label_fields=labels)
        except VectorFileError as exc:
            raise SpaceImportError(str(exc)) from None
        columns = set(read.frame.columns)
        for option, column in (
            ("--name-field", name_field),
            ("--kind-field", kind_field if default_kind is None else None),
            ("--address-field", address_field),
            ("--id-field", id_field),
        ):
            if column and column not in columns:
                raise SpaceImportError(
                    f"{path.name}: no column {column!r} ({option}); columns are: "
                    + ", ".join(sorted(c for c in columns if c != read.frame.geometry.name))
                )
        reads.append((path, read))

    seen: dict[str, str] = {}
    # (file, feature number, line): the reader's refusals come before the rows', so the
    # report is sorted at the end to read in file order.
    refusals: list[tuple[int, int, str]] = []
    with transaction.atomic():
        for file_index, (path, read) in enumerate(reads):
            refused_numbers = {p.feature for p in read.refused}
            refusals += [(file_index, p.feature, f"{path.name} {p}") for p in read.refused]
            report.repaired += [f"{path.name} {p}" for p in read.repaired]
            for number, row in read.frame.iterrows():
                if number in refused_numbers:
                    continue
                label = _label(row, id_field, name_field)
                where = f"{path.name} feature {number}" + (f" ({label})" if label else "")
                try:
                    key = _import_row(
                        row=row,
                        name_field=name_field,
                        kind_field=kind_field,
                        default_kind=default_kind,
                        address_field=address_field,
                        id_field=id_field,
                        source=source,
                        kinds=kinds,
                        within=within,
                        is_demo=is_demo,
                        seen=seen,
                        where=where,
                        report=report,
                    )
                    seen[key] = where
                except ValidationError as exc:
                    refusals.append((file_index, number, f"{where}: {_messages(exc)}"))
                except OutOfScope:
                    # --district, and the id is that of a space of another district.
                    refusals.append(
                        (
                            file_index,
                            number,
                            f"{where}: {id_field or 'feature'}: this id belongs to a space "
                            f"outside district {district}",
                        )
                    )
        report.refused = [line for *_, line in sorted(refusals, key=lambda r: (r[0], r[1]))]
        if dry_run or (report.refused and not skip_bad):
            transaction.set_rollback(True)
    return report


def _label(row, id_field, name_field) -> str:
    parts = []
    for column in (id_field, name_field):
        if column and cell_text(row.get(column)):
            parts.append(f"{column}={cell_text(row.get(column))}")
    return ", ".join(parts)


def _messages(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    return " ".join(exc.messages)


def _import_row(
    *,
    row,
    name_field,
    kind_field,
    default_kind,
    address_field,
    id_field,
    source,
    kinds,
    within,
    is_demo,
    seen,
    where,
    report,
) -> str:
    name = cell_text(row.get(name_field))
    if not name:
        raise ValidationError({name_field: ["no name"]})
    raw_kind = cell_text(row.get(kind_field)) if kind_field and kind_field in row else ""
    if raw_kind:
        kind = kinds.get(_normalise(raw_kind))
        if kind is None:
            raise ValidationError(
                {
                    kind_field: [
                        f"unknown kind {raw_kind!r}; use one of {', '.join(SpaceKind.values)} "
                        "(or their Spanish names)"
                    ]
                }
            )
    elif default_kind:
        kind = default_kind
    else:
        raise ValidationError({kind_field or "kind": ["no kind (give --default-kind)"]})
    geometry = _single(row.geometry)
    geom = from_shapely(geometry)
    address = cell_text(row.get(address_field)) if address_field else ""
    if id_field:
        ident = cell_text(row.get(id_field))
        if not ident:
            raise ValidationError({id_field: ["no id"]})
        if ident.endswith(".0") and ident[:-2].isdigit():
            ident = ident[:-2]
    else:
        ident = _digest(name, kind, geometry)
    key = f"{source}:{ident}"[:200]
    if key in seen:
        raise ValidationError({id_field or "feature": [f"same id as {seen[key]}"]})

    existing = PublicSpace.objects.filter(external_id=key).first()
    values = {"name": name, "kind": kind, "geom": geom, "address": address}
    # Each row in its own savepoint: with skip_bad, a refused row leaves no trace.
    with transaction.atomic():
        if existing is None:
            create_space(user=None, external_id=key, is_demo=is_demo, within=within, **values)
            report.created.append(where)
            return key
        changes = {
            k: v
            for k, v in values.items()
            if (
                not existing.geom.equals_exact(v, 1e-9)
                if k == "geom"
                else getattr(existing, k) != v
            )
        }
        if not changes:
            report.unchanged.append(where)
            return key
        update_space(user=None, space=existing, changes=changes, within=within)
        report.updated.append(where)
    return key
