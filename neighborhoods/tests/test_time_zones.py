"""load_boundaries gives a new region the time zone of its location (issue 12, item 2)."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from geo.timezones import time_zone_at
from neighborhoods.models import Region
from neighborhoods.regions import location_time_zone
from opendata.packs import PACKS
from tests.geodata import grid_cell

pytestmark = pytest.mark.django_db

# A point inside each city (the zone boundaries come from timezonefinder's data).
CITIES = {
    "lima": ((-77.05, -12.06), "America/Lima"),
    "cdmx": ((-99.15, 19.42), "America/Mexico_City"),
    "santiago": ((-70.66, -33.46), "America/Santiago"),
    "london": ((-0.13, 51.50), "Europe/London"),
    "boston": ((-71.07, 42.35), "America/New_York"),
}
# The South Pacific, 1,700 km off Chile: no land time zone.
AT_SEA = (-95.0, -30.0)


def _records(origin, n=2):
    return [
        {"code": f"D{i}", "name": f"District {i}", "geometry": grid_cell(i, origin=origin)}
        for i in range(n)
    ]


def _load(path, *, fails=False, **options):
    stdout, stderr = StringIO(), StringIO()
    options.setdefault("region", "city")
    options.setdefault("level", "district")
    options.setdefault("code_field", "code")
    options.setdefault("name_field", "name")
    if fails:
        with pytest.raises(CommandError) as exc:
            call_command("load_boundaries", str(path), stdout=stdout, stderr=stderr, **options)
        return str(exc.value), stdout.getvalue(), stderr.getvalue()
    call_command("load_boundaries", str(path), stdout=stdout, stderr=stderr, **options)
    return stdout.getvalue(), stderr.getvalue()


@pytest.mark.parametrize("city", list(CITIES))
def test_a_new_region_takes_the_time_zone_of_its_location(write_geojson, city):
    origin, zone = CITIES[city]

    out, err = _load(write_geojson(_records(origin)))

    assert err == ""
    assert Region.objects.get(code="city").time_zone == zone
    assert f"time zone {zone}, from the region's location" in out.splitlines()


def test_a_region_at_sea_falls_back_to_utc_with_a_warning(write_geojson):
    out, err = _load(write_geojson(_records(AT_SEA)))

    assert err == ""
    assert Region.objects.get(code="city").time_zone == "UTC"
    assert (
        "warning: no time zone found at the region's location (at sea?): time zone UTC; "
        "give --time-zone to set the right one"
    ) in out.splitlines()


@pytest.mark.parametrize("option", ["--time-zone", "--timezone"])
def test_an_explicit_time_zone_wins_and_a_disagreement_is_noted(write_geojson, option):
    origin, _zone = CITIES["lima"]
    stdout = StringIO()

    call_command(
        "load_boundaries", str(write_geojson(_records(origin))), "--region", "city",
        "--level", "district", "--code-field", "code", "--name-field", "name",
        option, "America/Bogota", stdout=stdout,
    )  # fmt: skip
    out = stdout.getvalue()

    assert Region.objects.get(code="city").time_zone == "America/Bogota"
    lines = out.splitlines()
    assert "time zone America/Bogota, given by --time-zone" in lines
    assert (
        "note: time zone America/Bogota was given, but the region's location is in America/Lima"
        in lines
    )


def test_an_explicit_time_zone_at_sea_is_taken_without_a_warning(write_geojson):
    out, _ = _load(write_geojson(_records(AT_SEA)), time_zone="Pacific/Easter")

    assert Region.objects.get(code="city").time_zone == "Pacific/Easter"
    assert "warning" not in out


@pytest.mark.parametrize("zone", ["Mars/Olympus", "America/Lima/Centro", "../../etc/passwd"])
def test_an_unknown_time_zone_is_refused_and_nothing_is_written(write_geojson, zone):
    message, _, _ = _load(write_geojson(_records(CITIES["lima"][0])), fails=True, time_zone=zone)

    assert message == f"unknown time zone {zone!r} (use an IANA name such as America/Lima)"
    assert not Region.objects.exists()


def test_changing_the_time_zone_of_an_existing_region_is_reported_as_a_change(write_geojson):
    path = write_geojson(_records(CITIES["lima"][0]))
    _load(path)

    out, _ = _load(path, time_zone="America/Bogota")

    lines = out.splitlines()
    assert lines[0].endswith("0 created, 0 updated, 2 unchanged, 0 repaired, 0 refused")
    assert "region city was updated: time zone America/Lima -> America/Bogota" in lines
    assert Region.objects.get(code="city").time_zone == "America/Bogota"

    out, _ = _load(path, time_zone="America/Bogota")
    assert "updated:" not in out  # the same zone again is no change


def test_a_dry_run_reports_the_time_zone_change_and_keeps_the_old_one(write_geojson):
    path = write_geojson(_records(CITIES["lima"][0]))
    _load(path)

    out, _ = _load(path, time_zone="America/Bogota", dry_run=True)

    assert "region city would be updated: time zone America/Lima -> America/Bogota" in out
    assert Region.objects.get(code="city").time_zone == "America/Lima"


def test_a_reload_keeps_the_region_time_zone_and_says_how_to_fix_a_utc_one(write_geojson):
    # A region created before load_boundaries looked at the location, left in UTC.
    path = write_geojson(_records(CITIES["cdmx"][0]))
    _load(path, time_zone="UTC")

    out, _ = _load(path)

    assert Region.objects.get(code="city").time_zone == "UTC"
    assert (
        "note: region city counts its days in UTC but lies in America/Mexico_City: give "
        "--time-zone America/Mexico_City to change it"
    ) in out.splitlines()


def test_the_location_is_a_point_inside_the_region_not_its_bounding_box_centre(write_geojson):
    # A district in Lima and one in Santiago: the centre of their bounding box is in the
    # Pacific, 1,000 km off the coast; a point inside the region is in one of the two cities.
    _load(write_geojson([
        {"code": "A", "name": "Lima", "geometry": grid_cell(0, origin=CITIES["lima"][0])},
        {"code": "B", "name": "Santiago", "geometry": grid_cell(0, origin=CITIES["santiago"][0])},
    ]))  # fmt: skip
    region = Region.objects.get(code="city")
    centre = region.geom.envelope.centroid
    assert time_zone_at(centre.x, centre.y) is None
    assert region.time_zone in ("America/Lima", "America/Santiago")


EXPECTED_PACK_ZONES = {
    "lima": "America/Lima",
    "santiago": "America/Santiago",
    "cdmx": "America/Mexico_City",
    "boston": "America/New_York",
    "lancashire": "Europe/London",
    "northumbria": "Europe/London",
}


def test_every_pack_declares_a_time_zone():
    assert {name: pack.time_zone for name, pack in PACKS.items()} == EXPECTED_PACK_ZONES


@pytest.mark.open_data
@pytest.mark.parametrize("pack", list(EXPECTED_PACK_ZONES))
def test_each_pack_region_lies_in_the_time_zone_it_declares(shared_data, pack):
    stdout, stderr = StringIO(), StringIO()
    call_command(
        "load_open_data", pack, "--from", str(shared_data), "--boundaries-only",
        stdout=stdout, stderr=stderr,
    )  # fmt: skip

    region = Region.objects.get(code=PACKS[pack].region_code)
    assert region.time_zone == EXPECTED_PACK_ZONES[pack]
    assert location_time_zone(region) == EXPECTED_PACK_ZONES[pack]
    assert "was given, but the region's location is in" not in stdout.getvalue()


def test_the_demo_city_lies_in_the_time_zone_its_seeded_data_is_written_in():
    # The demo's incidents are written with --timezone America/Lima
    # (demo/management/commands/write_demo_incidents.py); its region, off the Peruvian
    # coast, must count its days in the zone its location gives.
    from neighborhoods.demo import DEMO_REGION_CODE, load_demo_boundaries

    reports = load_demo_boundaries()

    assert all(r.ok for r in reports)
    region = Region.objects.get(code=DEMO_REGION_CODE)
    assert region.time_zone == "America/Lima" == location_time_zone(region)
    assert not any("was given, but" in note for r in reports for note in r.notes)
