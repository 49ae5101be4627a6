"""The IANA time zone of a place, offline (timezonefinder's bundled zone boundaries)."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _finder():
    # Imported and built once: reading the boundary index takes a moment.
    from timezonefinder import TimezoneFinder

    return TimezoneFinder()


def time_zone_at(lon: float, lat: float) -> str | None:
    """The land time zone at (lon, lat), e.g. ``America/Lima``; None at sea (where only the
    nautical Etc/GMT±N zones exist) or for coordinates that are not lon/lat."""
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        return None
    return _finder().timezone_at_land(lng=lon, lat=lat)
