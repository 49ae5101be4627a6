# ruff: noqa: F811  (pytest fixtures imported from hotspot_fixtures)
"""Public hotspot zones (issue 14): the latest finished whole-region run of a method whose
zones are cells, its zones redrawn from their cells (buffered and simplified in the metric
CRS), with no vertex near any incident of the region and no count but the cell count."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import shapely
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pyproj import Transformer

from hotspots import selectors
from hotspots.models import HotspotRun
from hotspots.services import runs
from hotspots.tests.hotspot_fixtures import (  # noqa: F401  (fixtures)
    CELL,
    PERIOD,
    SRID,
    copy_run,
    gistar_run,
    town,
)
from incidents.models import Category, Incident

pytestmark = pytest.mark.django_db

_to_metric = Transformer.from_crs(4326, SRID, always_xy=True)


@pytest.fixture
def region_run(town):
    """The town analysed over the whole region (no district chosen), square 200 m cells."""
    run = runs.create_run(region=town, params={"grid": "square", "cell_size_m": CELL}, **PERIOD)
    run = runs.execute_run(run=run)
    assert run.status == HotspotRun.Status.SUCCEEDED, run.message
    assert not run.districts.exists() and run.polygon is None
    assert run.zones.count() >= 2
    return run


def finished(run: HotspotRun, when: dt.datetime, **fields) -> HotspotRun:
    HotspotRun.objects.filter(pk=run.pk).update(finished_at=when, **fields)
    run.refresh_from_db()
    return run


def incident_points_metric(region) -> np.ndarray:
    lonlat = np.array(
        [(p.x, p.y) for p in Incident.objects.filter(region=region).values_list("point", flat=True)]
    )
    x, y = _to_metric.transform(lonlat[:, 0], lonlat[:, 1])
    return np.column_stack([x, y])


def test_the_latest_finished_whole_region_run_is_chosen(region_run, gistar_run):
    now = timezone.now()
    region_run = finished(region_run, now - dt.timedelta(days=1))
    older = finished(copy_run(region_run, method="gistar"), now - dt.timedelta(days=5))
    # Newer, but not public: a district-limited run, a failed one, a DBSCAN run (zones are
    # hulls of points), a KDE run (no zones), a run of a sensitive category.
    finished(gistar_run, now)
    assert gistar_run.districts.exists()
    finished(copy_run(region_run, method="gistar"), now, status=HotspotRun.Status.FAILED)
    finished(copy_run(region_run, method="dbscan"), now)
    finished(copy_run(region_run, method="kde"), now)
    sensitive = finished(copy_run(region_run, method="gistar"), now)
    sensitive.categories.set(
        [Category.objects.create(code="test-dv", name_es="VF", name_en="DV", sensitive=True)]
    )
    # A queued run never finished.
    HotspotRun.objects.create(region=region_run.region, **PERIOD)

    assert selectors.latest_public_run(region_run.region.code) == region_run
    assert older != region_run
    # A newer finished whole-region run takes over.
    newer = finished(copy_run(region_run, method="forecast"), now + dt.timedelta(hours=1))
    assert selectors.latest_public_run(region_run.region.code) == newer


def test_zones_are_generalized_from_their_cells(region_run):
    groups = selectors.zone_cell_groups(region_run)
    zones = list(region_run.zones.order_by("rank"))
    assert [len(g) for g in groups] == [z.cell_count for z in zones]

    with CaptureQueriesContext(connection) as queries:
        public = selectors.public_zones(region_run.region.code)
    assert not any(Incident._meta.db_table in q["sql"] for q in queries.captured_queries)

    assert [z["rank"] for z in public] == [z.rank for z in zones]
    points = incident_points_metric(region_run.region)
    for zone, cells in zip(public, groups, strict=True):
        assert set(zone) == {
            "rank",
            "geometry",
            "cell_count",
            "run_id",
            "method",
            "date_from",
            "date_to",
            "buffer_m",
            "tolerance_m",
        }
        assert zone["run_id"] == region_run.pk and zone["method"] == "gistar"
        assert zone["date_from"] == "2024-01-01" and zone["date_to"] == "2024-06-30"
        assert zone["buffer_m"] == 50.0 and zone["tolerance_m"] == 25.0
        assert zone["cell_count"] is None or zone["cell_count"] >= 5
        outline = shapely.geometry.shape(zone["geometry"])
        assert outline.geom_type == "MultiPolygon" and outline.is_valid
        # Every cell of the zone is inside its public outline.
        assert all(outline.covers(c) for c in cells)
        # No vertex within 1 m of any incident of the region (inside the zone or not).
        vertices = shapely.get_coordinates(outline)
        x, y = _to_metric.transform(vertices[:, 0], vertices[:, 1])
        d = np.hypot(x[:, None] - points[None, :, 0], y[:, None] - points[None, :, 1])
        assert d.min() > 1.0
        # Not the zone's stored geometry: fewer vertices than the cells' union.
        assert len(vertices) < shapely.get_num_coordinates(shapely.union_all(cells))


def test_small_zones_keep_their_outline_but_not_their_cell_count(region_run, settings):
    settings.PUBLIC_ZONE_MIN_CELL_COUNT = 10_000
    public = selectors.public_zones(region_run.region.code, buffer_m=30, tolerance_m=10)
    assert public and all(z["cell_count"] is None for z in public)
    assert all(z["buffer_m"] == 30 and z["tolerance_m"] == 10 for z in public)


def test_a_region_without_a_public_run_has_no_zones(gistar_run):
    # gistar_run is limited to a district: not a public run.
    assert selectors.public_zones(gistar_run.region.code) == []
    assert selectors.latest_public_run(gistar_run.region.code) is None
    assert selectors.public_zones("no-such-region") == []
