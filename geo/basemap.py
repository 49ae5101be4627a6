"""The self-hosted base map: one PMTiles archive served by this server, drawn in the
browser by protomaps-leaflet.

A PMTiles archive is a single file of vector tiles that the browser reads with HTTP range
requests, so no tile server and no third party ever sees a visitor's address or view.
``MAP_PMTILES`` names a deployment's own extract (see the README: "Base map"); without
one, the demo city's generated street map (``MAP_DEMO_PMTILES``, written by
``load_demo``) is served when it exists; with neither, maps draw on a plain background.
``MAP_TILE_URL`` (raster tiles from a server of the deployment's choosing) stays for those
who want it, and wins when both are set.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_safe

PMTILES_CONTENT_TYPE = "application/vnd.pmtiles"
# An archive changes only when a deployment replaces it; the ETag (size and time) makes a
# replaced file a new one, and pmtiles.js restarts on an ETag that changed mid-read.
PMTILES_CACHE_CONTROL = "public, max-age=3600"
RANGE_CHUNK_BYTES = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def pmtiles_path() -> Path | None:
    """The archive this server serves, or None when there is none to serve."""
    for candidate in (settings.MAP_PMTILES, settings.MAP_DEMO_PMTILES):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def basemap_config() -> dict:
    """The base-map part of every map page's settings (the maps' JSON config)."""
    config = {
        "tileUrl": settings.MAP_TILE_URL,
        "tileAttribution": settings.MAP_TILE_ATTRIBUTION,
        "pmtilesUrl": "",
        # The (i) button that opens the credits on a small screen.
        "attributionLabel": gettext("Data sources"),
    }
    if settings.MAP_TILE_URL:
        return config
    path = pmtiles_path()
    if path is None:
        return config
    stat = path.stat()
    archive = archive_info(str(path), stat.st_size, stat.st_mtime_ns)
    if archive is None:
        return config
    attribution = archive.attribution
    if settings.MAP_PMTILES and Path(settings.MAP_PMTILES) == path:
        attribution = settings.MAP_PMTILES_ATTRIBUTION or attribution
    config.update(
        pmtilesUrl=reverse("basemap-pmtiles"),
        pmtilesAttribution=gettext(attribution) if attribution else "",
        pmtilesMaxZoom=archive.max_zoom,
        pmtilesBounds=list(archive.bounds),
    )
    return config


@dataclass(frozen=True)
class ArchiveInfo:
    max_zoom: int
    bounds: tuple[float, float, float, float]  # west, south, east, north
    attribution: str


@lru_cache(maxsize=8)
def archive_info(path: str, size: int, mtime_ns: int) -> ArchiveInfo | None:
    """What the browser must know of an archive before reading it: its deepest zoom (the
    layer over-zooms past it instead of asking for tiles that do not exist), its bounds
    (no request outside them) and the attribution its metadata carries. None when the file
    is no PMTiles archive. Cached per version of the file (size and time)."""
    from pmtiles.reader import MmapSource, Reader

    try:
        with open(path, "rb") as handle:
            reader = Reader(MmapSource(handle))
            header = reader.header()
            metadata = reader.metadata()
    except Exception:  # a truncated or foreign file: no base map rather than a 500
        return None
    bounds = tuple(
        header[key] / 1e7 for key in ("min_lon_e7", "min_lat_e7", "max_lon_e7", "max_lat_e7")
    )
    return ArchiveInfo(
        max_zoom=int(header["max_zoom"]),
        bounds=bounds,
        attribution=str(metadata.get("attribution", "")) if isinstance(metadata, dict) else "",
    )


def _etag(stat: os.stat_result) -> str:
    digest = hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:20]
    return f'"{digest}"'


def _byte_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """(first, last) of a single ``bytes=`` range, None for no usable range (serve the
    whole file, as RFC 9110 allows for several ranges or another unit), False when the
    range is not satisfiable."""
    match = _RANGE.match(header.strip())
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            return False
        return max(0, size - suffix), size - 1
    start = int(first)
    if start >= size:
        return False
    end = min(int(last), size - 1) if last else size - 1
    if end < start:
        return None
    return start, end


def _read_span(path: Path, start: int, length: int):
    with path.open("rb") as handle:
        handle.seek(start)
        left = length
        while left > 0:
            chunk = handle.read(min(RANGE_CHUNK_BYTES, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


@require_safe
def pmtiles_archive(request):
    """The base-map archive, whole or by byte range (206), for anyone: it holds streets and
    place names, nothing of Barrio's data."""
    path = pmtiles_path()
    if path is None:
        raise Http404("No base map is configured.")
    stat = path.stat()
    etag = _etag(stat)
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponse(status=304)
    else:
        wanted = _byte_range(request.headers.get("Range", ""), stat.st_size)
        if request.headers.get("If-Range") not in (None, etag):
            wanted = None  # the client holds another version: send this one whole
        if wanted is False:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{stat.st_size}"
        elif wanted is None:
            response = FileResponse(path.open("rb"), content_type=PMTILES_CONTENT_TYPE)
        else:
            start, end = wanted
            length = end - start + 1
            body = [] if request.method == "HEAD" else _read_span(path, start, length)
            response = StreamingHttpResponse(body, status=206, content_type=PMTILES_CONTENT_TYPE)
            response["Content-Range"] = f"bytes {start}-{end}/{stat.st_size}"
            response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = etag
    response["Cache-Control"] = PMTILES_CACHE_CONTROL
    return response
