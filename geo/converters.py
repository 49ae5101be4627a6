"""``<tile:…>``, the path converter of every vector tile route
(``…/<tile:z>/<tile:x>/<tile:y>.mvt``).

A tile coordinate is at most 8 ASCII digits: the deepest zoom (``MAX_ZOOM`` = 24) has
2**24 = 16,777,216 tiles a side, so every real x and y fits, and a huge number (z = 2**40)
does not even match the route (404) — it never becomes a Python int that tile arithmetic
would raise 2 to. A number that fits but lies outside the pyramid (z = 25, x = 2**z) is the
view's to refuse with a 400 naming the field (:func:`geo.mvt.check_tile`).

Importing this module registers the converter; the URL modules with tile routes import it,
and Python imports a module once, so it is registered once.
"""

from __future__ import annotations

from django.urls import register_converter

TILE_CONVERTER = "tile"
TILE_COORDINATE_DIGITS = 8


class TileCoordinateConverter:
    regex = f"[0-9]{{1,{TILE_COORDINATE_DIGITS}}}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(TileCoordinateConverter, TILE_CONVERTER)
