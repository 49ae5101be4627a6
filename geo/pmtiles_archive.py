"""Writes a PMTiles archive of vector tiles from features given in EPSG:4326.

PostGIS cuts and encodes the tiles (``ST_AsMVTGeom``/``ST_AsMVT``, as for every other tile
Barrio serves); the PyPI ``pmtiles`` writer lays them out in the archive. Used for the
demo city's street map (``demo.basemap``), small enough (a few thousand tiles) to be
written in one pass.
"""

from __future__ import annotations

import gzip
import math
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connection, transaction
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer

from geo.conf import STORAGE_SRID, WEB_MERCATOR_SRID

# The attributes the Protomaps basemap schema reads (kind, kind_detail, name, min_zoom,
# population_rank, sort_rank); a feature leaves the others empty and ST_AsMVT omits them.
ATTRIBUTES = ("kind", "kind_detail", "name", "min_zoom", "population_rank", "sort_rank")
TILE_EXTENT = 4096
TILE_BUFFER = 64


@dataclass(frozen=True)
class ArchiveFeature:
    layer: str
    wkt: str  # EPSG:4326
    from_zoom: int  # the first zoom whose tiles carry it
    attributes: dict[str, str | int] = field(default_factory=dict)


def tile_range(bounds: tuple[float, float, float, float], zoom: int) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 (inclusive) of the XYZ tiles covering west, south, east, north."""
    west, south, east, north = bounds
    n = 2**zoom

    def x_of(lon: float) -> int:
        return min(n - 1, max(0, int((lon + 180.0) / 360.0 * n)))

    def y_of(lat: float) -> int:
        lat_rad = math.radians(max(-85.0511, min(85.0511, lat)))
        y = (1.0 - math.asinh(math.tan(lat_rad)) / math.pi) / 2.0 * n
        return min(n - 1, max(0, int(y)))

    return x_of(west), y_of(north), x_of(east), y_of(south)


# Raw SQL: the ORM has no way to say "one MVT per tile of a generated range, one layer per
# name, concatenated" (ST_AsMVT over a lateral join on ST_TileEnvelope).
_TILES_SQL = """
SELECT t.x, t.y, string_agg(m.mvt, ''::bytea ORDER BY m.layer) AS mvt
FROM generate_series(%(x0)s, %(x1)s) AS t_x(x)
CROSS JOIN generate_series(%(y0)s, %(y1)s) AS t_y(y)
CROSS JOIN LATERAL (SELECT t_x.x, t_y.y, ST_TileEnvelope(%(z)s, t_x.x, t_y.y) AS envelope) t
CROSS JOIN LATERAL (
    SELECT l.layer, (
        SELECT ST_AsMVT(q, l.layer, {extent}, 'geom')
        FROM (
            SELECT {attributes},
                   ST_AsMVTGeom(f.geom, t.envelope, {extent}, {buffer}, true) AS geom
            FROM pmtiles_features f
            WHERE f.layer = l.layer AND f.from_zoom <= %(z)s
              AND f.geom && ST_Expand(t.envelope, (ST_XMax(t.envelope) - ST_XMin(t.envelope)) * {buffer} / {extent})
        ) q
        WHERE q.geom IS NOT NULL
    ) AS mvt
    FROM unnest(%(layers)s::text[]) AS l(layer)
) m
WHERE m.mvt IS NOT NULL AND length(m.mvt) > 0
GROUP BY t.x, t.y
"""


def write_pmtiles(
    *,
    path: Path,
    features: Iterable[ArchiveFeature],
    min_zoom: int,
    max_zoom: int,
    metadata: dict,
) -> int:
    """Writes the archive (replacing ``path`` at once when done: a reader never sees half
    of it) and returns the number of tiles written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = ", ".join(f"{name} {_sql_type(name)}" for name in ATTRIBUTES)
    tiles: list[tuple[int, bytes]] = []
    with transaction.atomic(), connection.cursor() as cursor:
        # Dropped at the end too: inside an outer transaction ON COMMIT comes too late.
        cursor.execute("DROP TABLE IF EXISTS pmtiles_features")
        cursor.execute(
            f"CREATE TEMP TABLE pmtiles_features (layer text, from_zoom int, {columns},"
            f" geom geometry(Geometry, {WEB_MERCATOR_SRID})) ON COMMIT DROP"
        )
        features = list(features)
        columns = [
            [f.layer for f in features],
            [f.from_zoom for f in features],
            *([f.attributes.get(name) for f in features] for name in ATTRIBUTES),
            [f.wkt for f in features],
        ]
        types = ["text", "int", *(_sql_type(name) for name in ATTRIBUTES), "text"]
        arrays = ", ".join(f"%s::{t}[]" for t in types)
        names = ", ".join(["layer", "from_zoom", *ATTRIBUTES, "wkt"])
        # One statement for every feature (arrays unnested), not one round trip each.
        cursor.execute(
            f"INSERT INTO pmtiles_features SELECT layer, from_zoom, {', '.join(ATTRIBUTES)},"
            f" ST_Transform(ST_GeomFromText(wkt, {STORAGE_SRID}), {WEB_MERCATOR_SRID})"
            f" FROM unnest({arrays}) AS u({names})",
            columns,
        )
        cursor.execute("CREATE INDEX ON pmtiles_features USING gist (geom)")
        cursor.execute("ANALYZE pmtiles_features")
        cursor.execute(
            "SELECT array_agg(DISTINCT layer ORDER BY layer),"
            " ST_Extent(ST_Transform(geom, %s)) FROM pmtiles_features",
            [STORAGE_SRID],
        )
        layers, extent = cursor.fetchone()
        if not layers:
            raise ValueError("An archive needs at least one feature.")
        bounds = _box(extent)
        sql = _TILES_SQL.format(
            extent=TILE_EXTENT,
            buffer=TILE_BUFFER,
            attributes=", ".join(f"f.{name}" for name in ATTRIBUTES),
        )
        for zoom in range(min_zoom, max_zoom + 1):
            x0, y0, x1, y1 = tile_range(bounds, zoom)
            cursor.execute(
                sql, {"z": zoom, "x0": x0, "x1": x1, "y0": y0, "y1": y1, "layers": layers}
            )
            for x, y, mvt in cursor.fetchall():
                tiles.append((zxy_to_tileid(zoom, x, y), gzip.compress(bytes(mvt), mtime=0)))
        cursor.execute("DROP TABLE pmtiles_features")
    tiles.sort()
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".pmtiles-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            writer = Writer(out)
            for tile_id, data in tiles:
                writer.write_tile(tile_id, data)
            west, south, east, north = bounds
            writer.finalize(
                {
                    "tile_type": TileType.MVT,
                    "tile_compression": Compression.GZIP,
                    "min_lon_e7": int(west * 1e7),
                    "min_lat_e7": int(south * 1e7),
                    "max_lon_e7": int(east * 1e7),
                    "max_lat_e7": int(north * 1e7),
                    "center_zoom": min_zoom + 2,
                    "center_lon_e7": int((west + east) / 2 * 1e7),
                    "center_lat_e7": int((south + north) / 2 * 1e7),
                },
                {
                    **metadata,
                    "vector_layers": [
                        {"id": name, "fields": {a: "String" for a in ATTRIBUTES}} for name in layers
                    ],
                },
            )
        os.chmod(temporary, 0o644)  # mkstemp's file is its owner's alone; the server reads it
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return len(tiles)


def read_metadata(path: Path) -> dict | None:
    """An archive's metadata, None when ``path`` is no readable PMTiles archive."""
    from pmtiles.reader import MmapSource, Reader

    try:
        with path.open("rb") as handle:
            metadata = Reader(MmapSource(handle)).metadata()
    except Exception:  # missing, empty, truncated or foreign: the caller rewrites it
        return None
    return metadata if isinstance(metadata, dict) else None


def _sql_type(attribute: str) -> str:
    return "int" if attribute in ("min_zoom", "population_rank", "sort_rank") else "text"


def _box(extent: str) -> tuple[float, float, float, float]:
    # ST_Extent's text: BOX(west south,east north)
    inner = extent[extent.index("(") + 1 : extent.index(")")]
    low, high = inner.split(",")
    west, south = (float(v) for v in low.split())
    east, north = (float(v) for v in high.split())
    return west, south, east, north
