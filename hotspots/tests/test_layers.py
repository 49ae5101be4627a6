# ruff: noqa: F811  (pytest fixtures imported from hotspot_fixtures)
"""Vector tiles of a run's cells and zones: content, the minimum zoom of cell tiles and
the per-tile feature cap (most significant cells kept). Tiles are decoded with the
minimal reader of the incident tile tests and checked against the database."""

from __future__ import annotations

import math

import pytest
from django.test import override_settings
from django.urls import reverse

from hotspots import selectors
from hotspots.models import HotspotCell
from hotspots.tests.hotspot_fixtures import (  # noqa: F401  (fixtures)
    client_for,
    cluster_lonlat,
    copy_run,
    gistar_run,
    town,
)
from incidents.tests.test_tiles import decode_tile

pytestmark = pytest.mark.django_db


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def features(data: bytes, layer: str) -> list[dict]:
    return decode_tile(data)[layer]["features"]


def _tile(client, name, run, z, lon, lat):
    x, y = tile_of(lon, lat, z)
    return client.get(reverse(name, args=[run.pk, z, x, y]))


def test_cell_tiles_carry_the_cells_of_the_view(gistar_run, django_user_model):
    client = client_for(django_user_model, "planner")
    lon, lat = cluster_lonlat(0)
    response = _tile(client, "hotspot-cell-tile", gistar_run, 14, lon, lat)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.mapbox-vector-tile"
    assert response["Cache-Control"] == "private, no-store"
    cells = features(response.content, "cells")
    assert cells
    by_ij = {(c["properties"]["i"], c["properties"]["j"]): c["properties"] for c in cells}
    stored = {(c.i, c.j): c for c in gistar_run.cells.all()}
    for ij, props in by_ij.items():
        assert props["count"] == stored[ij].count
        assert props["gi_bin"] == stored[ij].gi_bin
    # The cluster's hottest cells are in its tile.
    assert max(p["gi_bin"] for p in by_ij.values()) == 3
    # Every cell whose centre lies in the tile is there (XYZ arithmetic, not PostGIS).
    x, y = tile_of(lon, lat, 14)
    inside = {
        ij for ij, cell in stored.items() if tile_of(*cell.geom.centroid.coords, 14) == (x, y)
    }
    assert inside and inside <= set(by_ij)


def test_zone_tiles_carry_the_zones(gistar_run, django_user_model):
    client = client_for(django_user_model, "planner")
    lon, lat = cluster_lonlat(1)
    response = _tile(client, "hotspot-zone-tile", gistar_run, 13, lon, lat)
    assert response.status_code == 200
    zones = features(response.content, "zones")
    ranks = {z["properties"]["rank"] for z in zones}
    assert ranks and ranks <= set(gistar_run.zones.values_list("rank", flat=True))
    for zone in zones:
        stored = gistar_run.zones.get(rank=zone["properties"]["rank"])
        assert zone["properties"]["incident_count"] == stored.incident_count
    # Far away: nothing (204).
    empty = client.get(reverse("hotspot-zone-tile", args=[gistar_run.pk, 13, 0, 0]))
    assert empty.status_code == 204


def test_cell_tiles_are_empty_below_the_minimum_zoom(gistar_run, django_user_model):
    client = client_for(django_user_model, "planner")
    lon, lat = cluster_lonlat(0)
    minimum = selectors.tile_min_zoom()
    below = _tile(client, "hotspot-cell-tile", gistar_run, minimum - 1, lon, lat)
    assert below.status_code == 204
    assert below["X-Hotspot-Min-Zoom"] == str(minimum)
    at = _tile(client, "hotspot-cell-tile", gistar_run, minimum, lon, lat)
    assert at.status_code == 200 and features(at.content, "cells")
    assert "X-Hotspot-Min-Zoom" not in at
    with override_settings(HOTSPOT_TILE_MIN_ZOOM=8):
        low = _tile(client, "hotspot-cell-tile", gistar_run, 9, lon, lat)
        assert low.status_code == 200
        # The whole 3 km town sits in one z9 tile (~78 km): every cell.
        assert len(features(low.content, "cells")) == gistar_run.cells.count()


def test_cell_tiles_keep_the_most_significant_cells_under_the_cap(gistar_run, django_user_model):
    client = client_for(django_user_model, "planner")
    lon, lat = cluster_lonlat(0)
    hot3 = gistar_run.cells.filter(gi_bin__in=[3, -3]).count()
    assert hot3 > 4
    with override_settings(HOTSPOT_TILE_MIN_ZOOM=8, HOTSPOT_TILE_MAX_FEATURES=4):
        response = _tile(client, "hotspot-cell-tile", gistar_run, 9, lon, lat)
        assert response.status_code == 200
        assert response["X-Hotspot-Truncated"] == "true"
        cells = features(response.content, "cells")
        assert len(cells) == 4
        assert all(abs(c["properties"]["gi_bin"]) == 3 for c in cells)
    with override_settings(HOTSPOT_TILE_MIN_ZOOM=8, HOTSPOT_TILE_MAX_FEATURES=100000):
        response = _tile(client, "hotspot-cell-tile", gistar_run, 9, lon, lat)
        assert "X-Hotspot-Truncated" not in response


def test_tiles_of_other_methods_carry_their_values(gistar_run, django_user_model):
    run = copy_run(gistar_run, method="kde")
    densest = run.cells.order_by("-count", "i", "j").first()
    HotspotCell.objects.filter(run=run).update(density=1.0)
    HotspotCell.objects.filter(pk=densest.pk).update(density=999.0)
    client = client_for(django_user_model, "planner")
    with override_settings(HOTSPOT_TILE_MIN_ZOOM=8, HOTSPOT_TILE_MAX_FEATURES=1):
        response = _tile(client, "hotspot-cell-tile", run, 9, *cluster_lonlat(0))
    (cell,) = features(response.content, "cells")
    assert (cell["properties"]["i"], cell["properties"]["j"]) == (densest.i, densest.j)
    assert cell["properties"]["density"] == 999.0
    assert "gi_bin" not in cell["properties"]  # null values are left out


def test_bad_tile_addresses_are_400(gistar_run, django_user_model):
    client = client_for(django_user_model, "planner")
    for name in ("hotspot-cell-tile", "hotspot-zone-tile"):
        for z, x, y in [(30, 0, 0), (3, 8, 0), (3, 0, 9)]:
            response = client.get(reverse(name, args=[gistar_run.pk, z, x, y]))
            assert response.status_code == 400, (name, z, x, y)
        missing = client.get(reverse(name, args=[gistar_run.pk + 99, 14, 0, 0]))
        assert missing.status_code == 404


def _tile_path(name, run, z, x, y) -> str:
    """The tile URL written out, not reversed: the route refuses to build some of these."""
    return reverse(name, args=[run.pk, 0, 0, 0]).replace("/0/0/0.mvt", f"/{z}/{x}/{y}.mvt")


def test_tile_coordinates_too_long_for_any_tile_match_no_route(gistar_run, django_user_model):
    client = client_for(django_user_model, "planner")
    for name in ("hotspot-cell-tile", "hotspot-zone-tile"):
        for z, x, y in [(2**40, 0, 0), (2**31, 0, 0), (14, 2**40, 0), (14, 0, 10**30)]:
            response = client.get(_tile_path(name, gistar_run, z, x, y))
            assert response.status_code == 404, (name, z, x, y)


def test_tile_coordinates_that_fit_the_route_but_not_the_pyramid_are_400(
    gistar_run, django_user_model
):
    client = client_for(django_user_model, "planner")
    for name in ("hotspot-cell-tile", "hotspot-zone-tile"):
        for z, x, y, field in [(2000, 0, 0, "z"), (99999999, 0, 0, "z"), (24, 2**24, 0, "x")]:
            response = client.get(_tile_path(name, gistar_run, z, x, y))
            assert response.status_code == 400, (name, z, x, y)
            assert field in response.json(), (name, z, x, y)
