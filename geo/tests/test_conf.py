import math

import pytest

from geo.conf import is_utm_srid, utm_srid_for


@pytest.mark.parametrize(
    ("place", "lon", "lat", "srid"),
    [
        ("Lima", -77.04, -12.05, 32718),
        ("Santiago", -70.65, -33.45, 32719),
        ("Ciudad de México", -99.13, 19.43, 32614),
    ],
)
def test_utm_srid_for_cities(place, lon, lat, srid):
    assert utm_srid_for(lon, lat) == srid, place


@pytest.mark.parametrize(
    ("lon", "lat", "srid"),
    [
        (-180.0, 10.0, 32601),  # first zone
        (180.0, 10.0, 32660),  # the antimeridian belongs to the last zone, not a 61st
        (-174.0, 10.0, 32602),  # zone edges open the next zone
        (0.0, 0.0, 32631),  # the equator counts as north
        (0.0, -0.000001, 32731),
        (3.0, 84.0, 32631),  # northern limit of UTM
        (3.0, -80.0, 32731),  # southern limit of UTM
    ],
)
def test_utm_srid_for_edges(lon, lat, srid):
    assert utm_srid_for(lon, lat) == srid
    assert is_utm_srid(srid)


@pytest.mark.parametrize(
    ("lon", "lat", "message"),
    [
        (-181.0, 0.0, "not a longitude/latitude pair"),
        (180.5, 0.0, "not a longitude/latitude pair"),
        (0.0, 90.5, "not a longitude/latitude pair"),
        (0.0, -91.0, "not a longitude/latitude pair"),
        (math.nan, 0.0, "not a longitude/latitude pair"),
        (0.0, math.nan, "not a longitude/latitude pair"),
        (math.inf, 0.0, "not a longitude/latitude pair"),
        (500000.0, 8660000.0, "not a longitude/latitude pair"),  # projected metres
        (0.0, 84.5, "outside the UTM system"),
        (0.0, -80.5, "outside the UTM system"),
    ],
)
def test_utm_srid_for_refuses_out_of_range(lon, lat, message):
    with pytest.raises(ValueError, match=message):
        utm_srid_for(lon, lat)


@pytest.mark.parametrize("srid", [32601, 32618, 32660, 32701, 32719, 32760])
def test_is_utm_srid_accepts_utm_zones(srid):
    assert is_utm_srid(srid)


@pytest.mark.parametrize("srid", [4326, 3857, 32600, 32661, 32700, 32761, 31983, 0])
def test_is_utm_srid_refuses_other_codes(srid):
    assert not is_utm_srid(srid)
