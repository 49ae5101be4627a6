"""Merging the features of a boundary file that share a code (``load_boundaries --dissolve``).

Police and census files often publish one district as several features (an island, an
exclave, a district cut by a river), each carrying the district's code. Merged, they are
one multipolygon per code, unioned in EPSG:4326 (the storage CRS: the pieces touch or not
the same in any CRS) and made valid again, since a union can leave slivers.
"""

from __future__ import annotations

from dataclasses import dataclass

import shapely
from shapely.geometry.base import BaseGeometry

from neighborhoods.text import normalize_name


@dataclass
class Piece:
    number: int  # feature number in the file
    name: str
    population: int | None
    parent: object | None  # a District, or None
    geometry: BaseGeometry


@dataclass
class Merged:
    geometry: BaseGeometry
    name: str
    population: int | None
    parent: object | None
    notes: list[str]


def polygonal(geometry: BaseGeometry) -> BaseGeometry:
    """The polygons of ``geometry`` (make_valid may return lines or points beside them)."""
    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry
    polygons = [
        part
        for part in shapely.get_parts(geometry)
        if part.geom_type in ("Polygon", "MultiPolygon") and not part.is_empty
    ]
    return shapely.union_all(polygons)


def merge_pieces(label: str, pieces: list[Piece]) -> Merged:
    """One feature from ``pieces`` (in file order); ``label`` ("district 0101") begins its
    notes. The name and parent are the first piece's; a disagreement is noted. Populations
    that are all equal are the district's own, repeated on every piece; different ones are
    the pieces' and are added up."""
    first = pieces[0]
    notes = []
    names = list(dict.fromkeys(p.name for p in pieces))
    if len({normalize_name(n) for n in names}) > 1:
        notes.append(
            f"{label}: the merged features have different names ({'; '.join(names)}); "
            f"kept {first.name!r}, the first"
        )
    parents = list(dict.fromkeys(p.parent for p in pieces))
    if len(parents) > 1:
        listed = "; ".join(getattr(p, "code", None) or "none" for p in parents)
        notes.append(
            f"{label}: the merged features have different parent districts ({listed}); "
            "kept the first's"
        )
    known = [p.population for p in pieces if p.population is not None]
    population = None
    if known and len(set(known)) == 1 and len(known) == len(pieces):
        population = known[0]
    elif known:
        population = sum(known)
        notes.append(
            f"{label}: population {population} is the sum of the merged features' "
            f"({', '.join(str(p.population) if p.population is not None else '?' for p in pieces)})"
        )
    union = shapely.union_all([p.geometry for p in pieces])
    if not union.is_valid:
        union = shapely.make_valid(union)
    return Merged(polygonal(union), first.name, population, first.parent, notes)
