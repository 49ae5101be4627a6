"""Open-data packs: the real public data sets Barrio knows how to load.

A pack is a city's boundaries and, where published, its incidents. The files are never
part of the repository (their licences belong to their publishers): a user downloads them
from the publishers named below, and ``load_open_data PACK --from DIR`` finds them
anywhere under DIR by file name. Loading a pack twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.utils.text import slugify

from geo.io import VectorFileError
from hotspots.services.runs import RunSpec
from incidents.reasons import summary_key
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
    # Builds the layer from other files when no boundary file is published
    # (file_name is then a glob of those files).
    derive: Callable | None = None


@dataclass(frozen=True)
class IncidentLayer:
    """Incident files of a pack, imported in one batch with a profile. Packs keep the
    good rows and list the refused ones in the batch report (--skip-bad): a published
    data set always has a few records without a usable place or date."""

    pattern: str  # glob for the file names, e.g. "cdmx_fgj_2022-*.csv"
    profile: str
    source: str | None = None  # defaults to the profile's source name


@dataclass(frozen=True)
class Pack:
    name: str
    region_code: str
    region_name: str
    source: SourceInfo
    download: str
    layers: list[Layer] = field(default_factory=list)
    incidents: list[IncidentLayer] = field(default_factory=list)
    time_zone: str = "UTC"
    # Hotspot runs computed once the incidents are in (hotspots.services.runs.RunSpec).
    hotspot_runs: list = field(default_factory=list)


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
        time_zone="America/Lima",
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
        time_zone="America/Santiago",
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
        time_zone="America/Mexico_City",
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
        incidents=[IncidentLayer("cdmx_fgj_2022-*.csv", profile="cdmx")],
        # The first nine months of 2022, validated against the last three. 150 m hexagons
        # (≈ 0.06 km², a few blocks): the automatic size (29 m, from the many incidents
        # recorded at nearly the same spot) gives 690,000 cells and 1,400 tiny zones.
        hotspot_runs=[
            RunSpec(
                dt.date(2022, 1, 1),
                dt.date(2022, 9, 30),
                params={"grid": "hex", "cell_size_m": 150.0},
                validate=(dt.date(2022, 10, 1), dt.date(2022, 12, 31)),
            )
        ],
    ),
    "boston": Pack(
        name="boston",
        region_code="boston",
        time_zone="America/New_York",
        region_name="Boston",
        source=SourceInfo(
            slug="boston-311-extent",
            name="Boston 311",
            attribution="Incivilidades: City of Boston 311 Service Requests (ODC PDDL), vía "
            "johnsliao/bostonservicemap. Límite aproximado derivado de los datos.",
            licence="ODC PDDL",
            url="https://data.boston.gov/",
        ),
        download="boston311_2015_*.csv: City of Boston 311 service requests of 2015 "
        "(Analyze Boston, data.boston.gov), one file per request type, as in "
        "johnsliao/bostonservicemap (cartoDB_data/)",
        layers=[
            Layer(
                "boston311_2015_*.csv",
                "district",
                code_field="code",
                name_field="name",
                # Proper names only: that the boundary is an approximate extent is said
                # in the attribution, and a name is shown as is in every language.
                derive=lambda paths: _extent_of_points(paths, code="boston", name="Boston"),
            )
        ],
        incidents=[IncidentLayer("boston311_2015_*.csv", profile="boston311")],
    ),
    "lancashire": Pack(
        name="lancashire",
        region_code="lancashire",
        time_zone="Europe/London",
        region_name="Lancashire",
        source=SourceInfo(
            slug="ons-lancashire",
            name="ONS Lancashire",
            attribution="Contains OS data © Crown copyright and database right; ONS boundaries "
            "(OGL v3.0); police.uk data (OGL v3.0)",
            licence="OGL v3.0",
            url="https://geoportal.statistics.gov.uk/",
        ),
        download="lancashire_districts.geojson, lancashire_wards.geojson and "
        "lancashire_asb_2022.csv: ONS local authority districts and wards, and data.police.uk "
        "anti-social behaviour of 2022, as in mpjashby/crimemappingdata",
        layers=[
            Layer(
                "lancashire_districts.geojson",
                "district",
                code_field="objectid",
                name_field="district",
            ),
            Layer(
                "lancashire_wards.geojson",
                "neighborhood",
                code_field="ward_code",
                name_field="ward_name",
            ),
        ],
        incidents=[IncidentLayer("lancashire_asb_2022.csv", profile="policeuk")],
    ),
    "northumbria": Pack(
        name="northumbria",
        region_code="northumbria",
        time_zone="Europe/London",
        region_name="Northumbria",
        source=SourceInfo(
            slug="ons-northumbria",
            name="ONS Northumbria",
            attribution="Contains OS data © Crown copyright and database right; ONS boundaries "
            "(OGL v3.0); police.uk data (OGL v3.0)",
            licence="OGL v3.0",
            url="https://geoportal.statistics.gov.uk/",
        ),
        download="northumbria_districts.geojson and northumbria_asb_2022.csv: ONS local "
        "authority districts and data.police.uk anti-social behaviour of 2022, as in "
        "mpjashby/crimemappingdata",
        layers=[
            Layer(
                "northumbria_districts.geojson",
                "district",
                code_field="objectid",
                name_field="district",
            ),
        ],
        incidents=[IncidentLayer("northumbria_asb_2022.csv", profile="policeuk")],
    ),
}


def _extent_of_points(paths: list[Path], *, code: str, name: str):
    """One district covering the data's points, for a city whose boundaries are not
    published with the data: a concave hull of the points, 300 m wide margin, computed
    in the UTM zone of the points. Its attribution says it is an approximate extent."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    from geo.conf import STORAGE_SRID, utm_srid_for
    from geo.io import VectorRead
    from incidents.services.bounds import sniff_csv
    from incidents.services.reading import csv_header

    points = []
    for path in paths:
        header = csv_header(path)
        lat = next(h for h in header if h.lower() in ("latitude", "lat", "latitud"))
        lon = next(h for h in header if h.lower() in ("longitude", "lon", "longitud"))
        encoding, delimiter = sniff_csv(path)
        frame = pd.read_csv(path, sep=delimiter, encoding=encoding, usecols=[lat, lon])
        frame = frame.apply(pd.to_numeric, errors="coerce").dropna()
        frame = frame[(frame[lat] != 0) & (frame[lon] != 0)]
        points.append(frame.rename(columns={lat: "lat", lon: "lon"}))
    table = pd.concat(points)
    metric = utm_srid_for(float(table["lon"].median()), float(table["lat"].median()))
    cloud = gpd.GeoSeries(gpd.points_from_xy(table["lon"], table["lat"]), crs=STORAGE_SRID)
    hull = shapely.concave_hull(shapely.MultiPoint(cloud.to_crs(metric).values), ratio=0.1)
    extent = gpd.GeoSeries([hull.buffer(300)], crs=metric).to_crs(STORAGE_SRID)
    frame = gpd.GeoDataFrame(
        {"code": [code], "name": [name]}, geometry=extent.values, crs=STORAGE_SRID
    )
    frame.index = [1]
    return VectorRead(frame=frame, source_crs=f"EPSG:{metric}", driver="derived")


class PackNotFound(Exception):
    pass


def _matches(data_dir: Path, pattern: str) -> list[Path]:
    return sorted(p for p in data_dir.rglob(pattern) if p.is_file())


def find_pack_files(
    pack: Pack, data_dir: Path, *, with_incidents: bool = True
) -> dict[str, list[Path]]:
    """The files of every layer of the pack under ``data_dir``; raises when one is missing."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise PackNotFound(f"{data_dir} is not a folder")
    found: dict[str, list[Path]] = {}
    patterns = [layer.file_name for layer in pack.layers]
    patterns += [layer.pattern for layer in pack.incidents if with_incidents]
    for pattern in patterns:
        matches = _matches(data_dir, pattern)
        if not matches:
            raise PackNotFound(
                f"pack {pack.name}: {pattern} not found under {data_dir}. Download: {pack.download}"
            )
        found[pattern] = matches
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


@dataclass
class PackResult:
    boundaries: list[BoundaryImportReport] = field(default_factory=list)
    incidents: list = field(default_factory=list)  # incidents ImportResult objects
    hotspots: list[str] = field(default_factory=list)  # report lines of the hotspot runs
    public_spaces: list[str] = field(default_factory=list)  # demo spaces (publicspaces.demo)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.boundaries)

    def lines(self) -> list[str]:
        out = []
        for report in self.boundaries:
            out += report.lines()
        for result in self.incidents:
            out += [
                f"incidents: {line}"
                for line in result.lines(limit=5)
                if not line.startswith("unclassified label")
            ]
            reasons: dict[str, int] = {}
            for row in result.refused:
                reason = summary_key(row.reason)
                reasons[reason] = reasons.get(reason, 0) + 1
            for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
                out.append(f"incidents: refused × {count}: {reason}")
            if result.unmapped_labels:
                out.append(
                    f"incidents: {len(result.unmapped_labels)} source labels are not mapped to "
                    f"a category yet (kept as unclassified, never public); map them in the admin"
                )
        out += self.public_spaces
        out += self.hotspots
        return out


def load_pack(
    pack: Pack, data_dir: Path, *, dry_run: bool = False, with_incidents: bool = True
) -> PackResult:
    """Loads the pack's boundaries in order (districts before their neighborhoods), then
    its incidents."""
    files = find_pack_files(pack, data_dir, with_incidents=with_incidents)
    result = PackResult()
    for layer in pack.layers:
        paths = files[layer.file_name]
        try:
            if layer.derive is not None:
                read = layer.derive(paths)
            else:
                read = read_boundary_file(
                    paths[0], label_fields=[layer.code_field, layer.name_field]
                )
        except VectorFileError as exc:
            raise BoundaryImportError(str(exc)) from None
        notes: list[str] = []
        if layer.prepare is not None:
            read.frame, notes = layer.prepare(read.frame)
        report = import_boundary_frame(
            read=read,
            path=str(paths[0]) if layer.derive is None else f"{layer.file_name} (derived)",
            region_code=pack.region_code,
            level=layer.level,
            code_field=layer.code_field,
            name_field=layer.name_field,
            parent_field=layer.parent_field,
            region_name=pack.region_name,
            dry_run=dry_run,
            source=pack.source,
            time_zone=pack.time_zone,
        )
        report.notes.extend(notes)
        result.boundaries.append(report)
        if not report.ok:
            return result
    if not dry_run:
        from publicspaces.demo import load_demo_spaces

        result.public_spaces = load_demo_spaces(pack.region_code)
    if dry_run or not with_incidents:
        return result
    from incidents.services.imports import import_incidents
    from incidents.services.request import ImportRequest, profile_named

    for layer in pack.incidents:
        profile = profile_named(layer.profile)
        result.incidents.append(
            import_incidents(
                request=ImportRequest(
                    paths=files[layer.pattern],
                    source=layer.source or profile.source,
                    profile=profile,
                    skip_bad=True,
                )
            )
        )
    result.hotspots = _hotspot_runs(pack)
    return result


def _hotspot_runs(pack: Pack) -> list[str]:
    """Computes the pack's hotspot runs (none again when nothing changed); report lines.
    A refused run (too few incidents...) is reported, not an error of the pack."""
    from hotspots.engine import HotspotRefused
    from hotspots.services.runs import ensure_spec_run, spec_run_lines
    from neighborhoods.models import Region

    region = Region.objects.get(code=pack.region_code)
    lines = []
    for spec in pack.hotspot_runs:
        try:
            lines += spec_run_lines(*ensure_spec_run(region=region, spec=spec))
        except HotspotRefused as exc:
            lines.append(f"hotspot run {spec.date_from} to {spec.date_to} refused: {exc}")
    return lines
