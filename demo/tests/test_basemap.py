"""The demo city's generated street map: seeded, inside the city, named, labelled
synthetic, and written once."""

import shapely
from django.test import override_settings
from django.utils import translation

from demo.basemap import ATTRIBUTION, GENERATOR, demo_basemap_features, ensure_demo_basemap
from geo.basemap import basemap_config
from geo.pmtiles_archive import read_metadata
from neighborhoods.demo import build_demo_city


def test_same_seed_same_streets_and_other_seed_others():
    first = demo_basemap_features()
    assert first == demo_basemap_features()
    assert first != demo_basemap_features(seed=1)


def test_streets_blocks_and_names_belong_to_the_city():
    features = demo_basemap_features()
    districts, neighborhoods = build_demo_city()
    city = shapely.union_all(districts.frame.geometry.values)
    by_layer: dict[str, list] = {}
    for feature in features:
        by_layer.setdefault(feature.layer, []).append(feature)

    blocks = [shapely.from_wkt(f.wkt) for f in by_layer["buildings"]]
    assert len(blocks) > 1000
    # Blocks lie in the city (to the centimetre the demo's boundaries are rounded to).
    assert all(city.buffer(1e-6).covers(block) for block in blocks[::50])
    streets = [f for f in by_layer["roads"] if f.attributes["kind"] != "highway"]
    assert {f.attributes["kind"] for f in streets} == {"minor_road", "major_road"}
    assert all(f.attributes["name"] for f in streets)
    assert any(f.attributes["kind"] == "park" for f in by_layer["landuse"])

    places = {f.attributes["name"]: f.attributes["kind"] for f in by_layer["places"]}
    for name in districts.frame["name"]:
        assert places[name] == "locality"
    for name in neighborhoods.frame["name"]:
        assert places[name] == "neighbourhood"

    sea = [f for f in by_layer["water"] if f.attributes.get("name")]
    assert sea and not city.intersects(shapely.from_wkt(sea[0].wkt))


def test_written_once_labelled_synthetic(db, tmp_path):
    path = tmp_path / "basemap" / "demo.pmtiles"
    with override_settings(MAP_DEMO_PMTILES=str(path)):
        assert "tiles of generated streets written" in ensure_demo_basemap()
        written = path.stat().st_mtime_ns
        assert "already written" in ensure_demo_basemap()
        assert path.stat().st_mtime_ns == written
        metadata = read_metadata(path)
        assert metadata["generator"] == GENERATOR and metadata["synthetic"] is True
        # Stored as a msgid, credited in the reader's language.
        assert metadata["attribution"] == ATTRIBUTION
        with translation.override("es"):
            assert "sintéticas" in basemap_config()["pmtilesAttribution"]
        with translation.override("en"):
            assert "synthetic" in basemap_config()["pmtilesAttribution"]
        # An archive of another generator version (or a broken file) is written again.
        path.write_bytes(b"broken")
        assert "written to" in ensure_demo_basemap()
        assert read_metadata(path)["generator"] == GENERATOR
