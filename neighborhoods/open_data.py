"""Open-data boundary packs: the real public boundary sets Barrio knows how to load.

The files are never part of the repository (their licences belong to their publishers):
a user downloads them from the publishers below, and ``load_open_data PACK --from DIR``
finds them anywhere under DIR by file name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.utils.text import slugify

from geo.io import VectorFileError
from neighborhoods.services import (
    BoundaryImportError,
    BoundaryImportReport,
    SourceInfo,
    import_boundary_frame,
    read_boundary_file,
)
from neighborhoods.text import display_name


@dataclass(frozen=True)
class Layer:
    file_name: str
    level: str
    code_field: str
    name_field: str
    parent_field: str | None = None
    # Adds or rewrites columns before the import (e.g. a code the publisher lacks);
    # returns the frame and notes for the report about anything it dropped.
    prepare: Callable | None = None


@dataclass(frozen=True)
class Pack:
    name: str
    region_code: str
    region_name: str
    source: SourceInfo
    download: str
    layers: list[Layer] = field(default_factory=list)


def _titled_names(column: str):
    def prepare(frame):
        frame[column] = frame[column].map(display_name)
        return frame, []

    return prepare


def _cdmx_alcaldias(frame):
    # INEGI's geostatistical key: state 09 + three-digit municipality.
    frame["cvegeo"] = frame["municip"].map(lambda m: f"09{int(m):03d}")
    return frame, []


def _cdmx_colonias(frame):
    """The colonias layer repeats 62 polygons under a second spelling of the name without
    accents ("Ampliacion Jalalpa" beside "Ampliación Jalalpa", same geometry). Loading both
    would make every point there fall in two colonias, so the unaccented twin is dropped
    and named in the report. The layer has no code: alcaldía + colonia name is unique."""
    frame["code"] = [
        f"{slugify(a)}/{slugify(c)}"
        for a, c in zip(frame["alcaldia"], frame["colonia"], strict=True)
    ]
    notes, drop = [], []
    for _code, group in frame.groupby("code", sort=False):
        if len(group) < 2:
            continue
        # Keep the spelling with accents (more non-ASCII characters).
        ranked = sorted(
            group.index, key=lambda n: -sum(ord(ch) > 127 for ch in frame.at[n, "colonia"])
        )
        keep = ranked[0]
        for twin in ranked[1:]:
            if frame.at[twin, frame.geometry.name].equals(frame.at[keep, frame.geometry.name]):
                drop.append(twin)
                notes.append(
                    f"skipped feature {twin} ({frame.at[twin, 'colonia']!r}): same polygon as "
                    f"feature {keep} ({frame.at[keep, 'colonia']!r})"
                )
    return frame.drop(index=drop), notes


PACKS: dict[str, Pack] = {
    "lima": Pack(
        name="lima",
        region_code="lima",
        region_name="Lima Metropolitana y Callao",
        source=SourceInfo(
            slug="lima-ign-distritos",
            name="Distritos de Lima y Callao (IGN)",
            attribution="Distritos: Instituto Geográfico Nacional del Perú (IGN), "
            "vía joseluisq/peru-geojson-datasets (MIT/Apache-2.0)",
            licence="MIT OR Apache-2.0 (repository); IGN open data",
            url="https://github.com/joseluisq/peru-geojson-datasets",
        ),
        download="lima_callao_distritos_ign_detailed.geojson: IGN districts of Lima and Callao, "
        "from joseluisq/peru-geojson-datasets (lima_callao_distritos.geojson) with the INEI "
        "UBIGEO code added as ubigeo_derived; see the PROVENANCE.md that comes with it",
        layers=[
            Layer(
                "lima_callao_distritos_ign_detailed.geojson",
                "district",
                code_field="ubigeo_derived",
                name_field="distrito",
                prepare=_titled_names("distrito"),
            )
        ],
    ),
    "santiago": Pack(
        name="santiago",
        region_code="santiago",
        region_name="Región Metropolitana de Santiago",
        source=SourceInfo(
            slug="chile-bcn-comunas",
            name="Comunas de Chile (BCN)",
            attribution="Comunas: Biblioteca del Congreso Nacional de Chile (BCN), "
            "Mapas vectoriales",
            licence="BCN open data (CC BY 3.0 CL)",
            url="https://www.bcn.cl/siit/mapas_vectoriales",
        ),
        download="santiago_rm_comunas_bcn.geojson: the 52 comunas of the Región Metropolitana "
        "(codregion 13) from BCN's 'Mapas vectoriales' (Comunas), as in fcortes/Chile-GeoJSON",
        layers=[
            Layer(
                "santiago_rm_comunas_bcn.geojson",
                "district",
                code_field="cod_comuna",
                name_field="Comuna",
            )
        ],
    ),
    "cdmx": Pack(
        name="cdmx",
        region_code="cdmx",
        region_name="Ciudad de México",
        source=SourceInfo(
            slug="cdmx-alcaldias-colonias",
            name="Alcaldías y colonias de la Ciudad de México",
            attribution="Alcaldías y colonias: Gobierno de la Ciudad de México / FGJ CDMX "
            "(CC BY 4.0), vía mpjashby/crimemappingdata y jjsantos01/delitos-colonias",
            licence="CC BY 4.0",
            url="https://datos.cdmx.gob.mx/",
        ),
        download="cdmx_alcaldias.geojson (16 alcaldías) and cdmx_colonias.geojson (1,651 "
        "colonias) from the CDMX open-data portal (datos.cdmx.gob.mx), as republished by "
        "mpjashby/crimemappingdata and jjsantos01/delitos-colonias",
        layers=[
            Layer(
                "cdmx_alcaldias.geojson",
                "district",
                code_field="cvegeo",
                name_field="nomgeo",
                prepare=_cdmx_alcaldias,
            ),
            Layer(
                "cdmx_colonias.geojson",
                "neighborhood",
                code_field="code",
                name_field="colonia",
                parent_field="alcaldia",
                prepare=_cdmx_colonias,
            ),
        ],
    ),
}


class PackNotFound(Exception):
    pass


def find_pack_files(pack: Pack, data_dir: Path) -> dict[str, Path]:
    """Every layer file of the pack under ``data_dir``; raises when one is missing."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise PackNotFound(f"{data_dir} is not a folder")
    found: dict[str, Path] = {}
    for layer in pack.layers:
        matches = sorted(data_dir.rglob(layer.file_name))
        if not matches:
            raise PackNotFound(
                f"pack {pack.name}: {layer.file_name} not found under {data_dir}. "
                f"Download: {pack.download}"
            )
        found[layer.file_name] = matches[0]
    return found


def available_packs(data_dir: Path) -> list[Pack]:
    packs = []
    for pack in PACKS.values():
        try:
            find_pack_files(pack, data_dir)
        except PackNotFound:
            continue
        packs.append(pack)
    return packs


def load_pack(pack: Pack, data_dir: Path, *, dry_run: bool = False) -> list[BoundaryImportReport]:
    """Loads each layer of the pack in order (districts before their neighborhoods)."""
    files = find_pack_files(pack, data_dir)
    reports = []
    for layer in pack.layers:
        path = files[layer.file_name]
        try:
            read = read_boundary_file(path, label_fields=[layer.code_field, layer.name_field])
        except VectorFileError as exc:
            raise BoundaryImportError(str(exc)) from None
        notes: list[str] = []
        if layer.prepare is not None:
            read.frame, notes = layer.prepare(read.frame)
        report = import_boundary_frame(
            read=read,
            path=str(path),
            region_code=pack.region_code,
            level=layer.level,
            code_field=layer.code_field,
            name_field=layer.name_field,
            parent_field=layer.parent_field,
            region_name=pack.region_name,
            dry_run=dry_run,
            source=pack.source,
        )
        report.notes.extend(notes)
        reports.append(report)
        if not report.ok:
            break
    return reports
