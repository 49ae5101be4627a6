"""Reading vector files: CRS detection, reprojection to WGS84, explicit geometry repair;
and writing a GeoPackage (:func:`write_geopackage`).

Files are opened through pyogrio (GDAL bundled with the wheel) with a driver allowlist, so
a VRT or a remote URL disguised as a ``.geojson`` is refused. Rules:

* GeoJSON with no ``crs`` member is WGS84 (RFC 7946); any other file without a CRS is
  refused unless the caller names one.
* Null or empty geometries are refused with their feature numbers.
* Invalid geometries are repaired with ``make_valid`` and every repair is reported.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from geo.conf import STORAGE_SRID

ALLOWED_DRIVERS = {"GeoJSON", "GPKG", "ESRI Shapefile"}
_GEOJSON_SUFFIXES = {".geojson", ".json"}
_CRS_MEMBER = re.compile(rb'"crs"\s*:')
# pyogrio reads a zipped Shapefile through GDAL's /vsizip/ handler; only local archives.
_ZIP_MEMBER_LIMIT = 200


class VectorFileError(Exception):
    """The file cannot be read as asked; the message says why, for the user."""


@dataclass
class FeatureProblem:
    feature: int  # 1-based position in the file
    label: str  # identifying attributes, e.g. "ubigeo=150137, NOMBDIST=SANTA ANITA"
    reason: str

    def __str__(self) -> str:
        who = f"feature {self.feature}" + (f" ({self.label})" if self.label else "")
        return f"{who}: {self.reason}"


@dataclass
class VectorRead:
    frame: gpd.GeoDataFrame  # in EPSG:4326, index = 1-based feature number
    source_crs: str
    driver: str
    repaired: list[FeatureProblem] = field(default_factory=list)
    refused: list[FeatureProblem] = field(default_factory=list)


def parse_crs(value: str) -> CRS:
    try:
        return CRS.from_user_input(value)
    except CRSError as exc:
        raise VectorFileError(f"unknown CRS {value!r}: {exc}") from None


def _check_zip(path: Path) -> str:
    """Returns the GDAL path of the single Shapefile inside a local zip archive."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile:
        raise VectorFileError(f"{path.name} is not a valid zip archive") from None
    if len(members) > _ZIP_MEMBER_LIMIT:
        raise VectorFileError(
            f"{path.name} has {len(members)} members; at most {_ZIP_MEMBER_LIMIT}"
        )
    names = [m.filename for m in members]
    for name in names:
        if name.startswith(("/", "\\")) or ".." in Path(name).parts or ":" in name:
            raise VectorFileError(f"{path.name} contains an unsafe member name: {name!r}")
    shapefiles = [n for n in names if n.lower().endswith(".shp")]
    if len(shapefiles) != 1:
        raise VectorFileError(
            f"{path.name} must contain exactly one .shp file (found {len(shapefiles)})"
        )
    return f"/vsizip/{path.resolve()}/{shapefiles[0]}"


def _declares_crs(path: Path) -> bool:
    """Whether a GeoJSON file carries a (pre-RFC 7946) ``crs`` member before its features."""
    with path.open("rb") as handle:
        head = handle.read(65536)
    features_at = head.find(b'"features"')
    search_in = head if features_at < 0 else head[:features_at]
    return bool(_CRS_MEMBER.search(search_in))


def _label(row, label_fields: list[str]) -> str:
    parts = []
    for name in label_fields:
        if name in row and row[name] is not None and str(row[name]) != "nan":
            parts.append(f"{name}={row[name]}")
    return ", ".join(parts)


def _repair(geometry, polygonal: bool):
    repaired = shapely.make_valid(geometry)
    if polygonal:
        # make_valid may return a collection with stray lines or points; keep the area.
        parts = shapely.get_parts(repaired)
        polygons = [p for p in parts if p.geom_type in ("Polygon", "MultiPolygon")]
        repaired = shapely.union_all(polygons) if polygons else shapely.Polygon()
    return repaired


def read_vector(
    path: str | Path,
    *,
    crs: str | None = None,
    label_fields: list[str] | None = None,
    polygonal: bool = False,
) -> VectorRead:
    """Reads ``path`` into a WGS84 GeoDataFrame, reporting refused and repaired features."""
    path = Path(path)
    if not path.exists():
        raise VectorFileError(f"{path}: no such file")
    if not path.is_file():
        raise VectorFileError(f"{path}: not a file")
    gdal_path = _check_zip(path) if path.suffix.lower() == ".zip" else str(path)

    try:
        info = pyogrio.read_info(gdal_path)
    except Exception as exc:  # pyogrio raises several DataSourceError subclasses
        raise VectorFileError(f"{path.name}: cannot be read as a vector file ({exc})") from None
    driver = info.get("driver")
    if driver not in ALLOWED_DRIVERS:
        raise VectorFileError(
            f"{path.name}: format {driver!r} is not accepted "
            f"(GeoJSON, GeoPackage or zipped Shapefile)"
        )

    requested = parse_crs(crs) if crs else None
    declared = CRS.from_user_input(info["crs"]) if info.get("crs") else None
    if driver == "GeoJSON" and declared is not None and not _declares_crs(path):
        declared = None  # GDAL assumes WGS84; only a real `crs` member is a declaration
    if declared is not None and requested is not None and not declared.equals(requested):
        raise VectorFileError(
            f"{path.name} declares CRS {declared.to_string()} but {requested.to_string()} was "
            f"given; remove --crs or fix the file"
        )
    if requested is not None:
        source_crs = requested
    elif declared is not None:
        source_crs = declared
    elif driver == "GeoJSON":
        source_crs = CRS.from_epsg(STORAGE_SRID)  # RFC 7946: no crs member means WGS84
    else:
        raise VectorFileError(
            f"{path.name} has no coordinate reference system (no .prj / no SRS); "
            f"give it with --crs EPSG:XXXX"
        )

    try:
        frame = gpd.read_file(gdal_path, engine="pyogrio")
    except Exception as exc:
        raise VectorFileError(f"{path.name}: cannot be read ({exc})") from None
    frame = frame.set_crs(source_crs, allow_override=True)
    frame.index = range(1, len(frame) + 1)
    label_fields = label_fields or []
    result = VectorRead(frame=frame, source_crs=source_crs.to_string(), driver=driver)

    geometries = frame.geometry.values
    missing = shapely.is_missing(geometries) | shapely.is_empty(geometries)
    for number in frame.index[missing]:
        result.refused.append(
            FeatureProblem(number, _label(frame.loc[number], label_fields), "geometry is null")
        )
    present = ~missing
    if polygonal:
        kinds = shapely.get_type_id(geometries)
        # 3 Polygon, 6 MultiPolygon
        wrong = present & ~((kinds == 3) | (kinds == 6))
        for number in frame.index[wrong]:
            kind = frame.loc[number].geometry.geom_type
            result.refused.append(
                FeatureProblem(
                    number,
                    _label(frame.loc[number], label_fields),
                    f"geometry is a {kind}, a Polygon or MultiPolygon is needed",
                )
            )
        present &= ~wrong

    invalid = present & ~shapely.is_valid(geometries)
    for number in frame.index[invalid]:
        geometry = frame.loc[number].geometry
        reason = shapely.is_valid_reason(geometry)
        repaired = _repair(geometry, polygonal)
        if repaired.is_empty:
            result.refused.append(
                FeatureProblem(
                    number,
                    _label(frame.loc[number], label_fields),
                    f"invalid geometry ({reason}) with no area left after repair",
                )
            )
            continue
        frame.loc[number, frame.geometry.name] = repaired
        area_change = abs(repaired.area - geometry.area) if polygonal else 0.0
        result.repaired.append(
            FeatureProblem(
                number,
                _label(frame.loc[number], label_fields),
                f"repaired invalid geometry ({reason})"
                + (f"; area change {area_change:.3g} in source units" if polygonal else ""),
            )
        )

    if source_crs.to_epsg() != STORAGE_SRID:
        try:
            frame = frame.to_crs(epsg=STORAGE_SRID)
        except Exception as exc:
            raise VectorFileError(
                f"{path.name}: cannot reproject from {source_crs}: {exc}"
            ) from None
    else:
        frame = frame.set_crs(epsg=STORAGE_SRID, allow_override=True)

    usable = frame.geometry.values[~shapely.is_missing(frame.geometry.values)]
    if len(usable):
        min_x, min_y, max_x, max_y = shapely.total_bounds(usable)
        if min_x < -180 or max_x > 180 or min_y < -90 or max_y > 90:
            raise VectorFileError(
                f"{path.name}: coordinates reach ({min_x:.0f}, {min_y:.0f}) – "
                f"({max_x:.0f}, {max_y:.0f}), which are not longitudes/latitudes; "
                f"the file is in a projected CRS: give it with --crs EPSG:XXXX"
            )
    result.frame = frame
    return result


GEOPACKAGE_MEDIA_TYPE = "application/geopackage+sqlite3"


def write_geopackage(
    frame: gpd.GeoDataFrame,
    path: Path,
    *,
    layer: str,
    geometry_type: str,
    metadata: dict[str, str] | None = None,
) -> None:
    """Writes ``frame`` as the one layer of a new GeoPackage at ``path`` (through pyogrio,
    like the readers). ``geometry_type`` is given rather than guessed so that an empty frame
    still makes a layer of the right type, which GIS software opens as such; ``metadata``
    goes in the layer's metadata (GDAL's ``gpkg_metadata`` table)."""
    pyogrio.write_dataframe(
        frame,
        path,
        layer=layer,
        driver="GPKG",
        geometry_type=geometry_type,
        metadata=metadata,
    )
