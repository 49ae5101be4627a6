"""The self-hosted base map: the PMTiles archive written from features by PostGIS, served
whole or by byte range, and announced to map pages only when there is one."""

import gzip
from pathlib import Path

import mapbox_vector_tile
import pytest
from django.test import override_settings
from pmtiles.reader import MmapSource, Reader
from pmtiles.tile import Compression, TileType

from geo.basemap import basemap_config
from geo.pmtiles_archive import ArchiveFeature, tile_range, write_pmtiles

URL = "/basemap/tiles.pmtiles"
# A small square town near Lima: two streets, a block and a place name.
STREET = "LINESTRING(-77.05 -12.05, -77.03 -12.05)"
AVENUE = "LINESTRING(-77.04 -12.06, -77.04 -12.04)"
BLOCK = (
    "POLYGON((-77.045 -12.045, -77.042 -12.045, -77.042 -12.042, -77.045 -12.042, -77.045 -12.045))"
)
PLACE = "POINT(-77.041 -12.049)"


def _features():
    return [
        ArchiveFeature("roads", STREET, 12, {"kind": "minor_road", "name": "Calle Uno"}),
        ArchiveFeature("roads", AVENUE, 10, {"kind": "major_road", "name": "Av. Central"}),
        ArchiveFeature("buildings", BLOCK, 14, {"kind": "building"}),
        ArchiveFeature("places", PLACE, 10, {"kind": "neighbourhood", "name": "Santa Rosa"}),
    ]


@pytest.fixture
def archive(db, tmp_path) -> Path:
    path = tmp_path / "town.pmtiles"
    write_pmtiles(
        path=path,
        features=_features(),
        min_zoom=10,
        max_zoom=14,
        metadata={"name": "town", "attribution": "Town streets (test)"},
    )
    return path


def _tile(path: Path, z: int, lon: float, lat: float) -> dict:
    x, y, _, _ = tile_range((lon, lat, lon, lat), z)
    with path.open("rb") as handle:
        data = Reader(MmapSource(handle)).get(z, x, y)
    assert data is not None, f"no tile {z}/{x}/{y}"
    return mapbox_vector_tile.decode(gzip.decompress(data))


def test_archive_holds_each_layer_from_its_first_zoom(archive):
    with archive.open("rb") as handle:
        reader = Reader(MmapSource(handle))
        header, metadata = reader.header(), reader.metadata()
    assert header["tile_type"] == TileType.MVT
    assert header["tile_compression"] == Compression.GZIP
    assert (header["min_zoom"], header["max_zoom"]) == (10, 14)
    assert header["min_lon_e7"] == pytest.approx(-77.05e7, abs=10)
    assert header["max_lat_e7"] == pytest.approx(-12.04e7, abs=10)
    assert metadata["attribution"] == "Town streets (test)"
    assert {layer["id"] for layer in metadata["vector_layers"]} == {"roads", "buildings", "places"}

    low = _tile(archive, 10, -77.041, -12.049)
    assert {f["properties"]["name"] for f in low["roads"]["features"]} == {"Av. Central"}
    assert "buildings" not in low  # blocks start at zoom 14
    high = _tile(archive, 14, -77.0435, -12.0435)
    assert {f["properties"]["kind"] for f in high["buildings"]["features"]} == {"building"}
    names = {f["properties"].get("name") for f in high["roads"]["features"]}
    assert "Calle Uno" in names
    place = _tile(archive, 12, -77.041, -12.049)["places"]["features"][0]
    assert place["properties"] == {"kind": "neighbourhood", "name": "Santa Rosa"}


def test_archive_is_replaced_whole_and_readable_by_others(archive):
    assert oct(archive.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in archive.parent.iterdir()] == ["town.pmtiles"]


def test_an_archive_needs_features(db, tmp_path):
    with pytest.raises(ValueError):
        write_pmtiles(path=tmp_path / "x.pmtiles", features=[], min_zoom=0, max_zoom=1, metadata={})
    assert not (tmp_path / "x.pmtiles").exists()


def test_whole_archive_and_byte_ranges(client, archive):
    size = archive.stat().st_size
    body = archive.read_bytes()
    with override_settings(MAP_PMTILES=str(archive)):
        whole = client.get(URL)
        assert whole.status_code == 200
        assert b"".join(whole.streaming_content) == body
        assert whole["Accept-Ranges"] == "bytes"

        header = client.get(URL, HTTP_RANGE="bytes=0-126")
        assert header.status_code == 206
        assert header["Content-Range"] == f"bytes 0-126/{size}"
        assert b"".join(header.streaming_content) == body[:127]
        assert header["Content-Type"] == "application/vnd.pmtiles"

        tail = client.get(URL, HTTP_RANGE="bytes=-10")
        assert tail.status_code == 206
        assert b"".join(tail.streaming_content) == body[-10:]

        open_ended = client.get(URL, HTTP_RANGE=f"bytes={size - 5}-")
        assert b"".join(open_ended.streaming_content) == body[-5:]

        past_end = client.get(URL, HTTP_RANGE=f"bytes=100-{size * 2}")
        assert past_end["Content-Range"] == f"bytes 100-{size - 1}/{size}"

        unsatisfiable = client.get(URL, HTTP_RANGE=f"bytes={size}-")
        assert unsatisfiable.status_code == 416
        assert unsatisfiable["Content-Range"] == f"bytes */{size}"

        several = client.get(URL, HTTP_RANGE="bytes=0-1,5-6")  # served whole, as RFC 9110 allows
        assert several.status_code == 200

        etag = header["ETag"]
        assert client.get(URL, HTTP_IF_NONE_MATCH=etag).status_code == 304
        stale = client.get(URL, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"another"')
        assert stale.status_code == 200

        head = client.head(URL, HTTP_RANGE="bytes=0-9")
        assert head.status_code == 206 and head["Content-Length"] == "10"
        assert client.post(URL).status_code == 405


def test_no_archive_is_a_404_and_no_base_map(client, tmp_path):
    with override_settings(MAP_PMTILES="", MAP_DEMO_PMTILES=str(tmp_path / "none.pmtiles")):
        assert client.get(URL).status_code == 404
        assert basemap_config()["pmtilesUrl"] == ""


def test_pages_learn_the_archive_zooms_bounds_and_attribution(archive, tmp_path):
    with override_settings(MAP_PMTILES=str(archive), MAP_TILE_URL=""):
        config = basemap_config()
        assert config["pmtilesUrl"] == URL
        assert config["pmtilesMaxZoom"] == 14
        assert config["pmtilesBounds"] == pytest.approx([-77.05, -12.06, -77.03, -12.04])
        assert config["pmtilesAttribution"] == "Town streets (test)"
    with override_settings(MAP_PMTILES=str(archive), MAP_PMTILES_ATTRIBUTION="© Our extract"):
        assert basemap_config()["pmtilesAttribution"] == "© Our extract"
    # Raster tiles, when a deployment sets them, replace the vector base map.
    with override_settings(MAP_PMTILES=str(archive), MAP_TILE_URL="https://t.example/{z}/{x}/{y}"):
        assert basemap_config()["pmtilesUrl"] == ""
    # A file that is no archive: no base map, not a 500.
    broken = tmp_path / "broken.pmtiles"
    broken.write_bytes(b"not an archive")
    with override_settings(MAP_PMTILES=str(broken)):
        assert basemap_config()["pmtilesUrl"] == ""


def test_the_demo_archive_is_used_when_no_extract_is_set(archive):
    with override_settings(MAP_PMTILES="", MAP_DEMO_PMTILES=str(archive)):
        assert basemap_config()["pmtilesUrl"] == URL
