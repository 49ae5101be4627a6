"""A run reproduces R's sfhotspot ``hotspot_gistar()`` cell for cell.

The recipe (README, "Reproducing sfhotspot"): square 500 m cells anchored at the analysis
area's corner (``grid_origin=area``), the area being the incidents' convex hull buffered by
half a cell (``analysis_area=points-hull``), queen neighbours with the cell itself
(``neighbour_rule=contiguity``, the Gi* star) and no FDR. The reference below is written
from sfhotspot's rule, not from our engine:

* ``create_grid``: ``hull = st_buffer(st_convex_hull(st_union(points)), cell_size / 2)``
  (sf's buffer: 30 segments per quarter circle); ``st_make_grid(hull, cellsize)``: squares
  from the hull's bounding-box lower-left corner, ``ceiling(width / cellsize)`` columns and
  ``ceiling(height / cellsize)`` rows; the cells that intersect the hull are kept;
* ``count_points_in_polygons``: points joined to the cells they intersect, zeros kept;
* ``gistar``: neighbours are the cells whose centroids are within ``cell_size × √2``
  (``spdep::dnearneigh``), the cell itself included (``include.self``), binary weights;
  ``spdep::localG`` z; p = 2·pnorm(−|z|), unadjusted (``p_adjust_method = "none"``).

Gi* is computed twice here: with Getis and Ord's formula in numpy and with PySAL's
``esda.G_Local(star=True)``.
"""

from __future__ import annotations

import datetime as dt
import io
import math

import numpy as np
import pytest
import shapely
from django.contrib.gis.db.models.functions import Transform
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from scipy import stats
from scipy.spatial.distance import cdist

from hotspots.engine import HotspotRefused
from hotspots.models import HotspotRun
from hotspots.services import runs
from hotspots.services.params import normalize_params
from hotspots.tests.hotspot_fixtures import client_for
from hotspots.tests.test_runs import add_incidents, metric_box
from incidents.models import Incident

pytestmark = pytest.mark.django_db

SRID = 32718
CELL = 500.0
# A corner on no multiple of the cell size, so that the two origins give different grids.
X0, Y0 = 281_137.3, 8_667_052.9
PERIOD = {"date_from": dt.date(2024, 1, 1), "date_to": dt.date(2024, 12, 31)}
SFHOTSPOT = {
    "grid": "square",
    "cell_size_m": CELL,
    "neighbour_rule": "contiguity",
    "fdr": False,
    "grid_origin": "area",
    "analysis_area": "points-hull",
    "stability": False,
}


@pytest.fixture
def field(make_region):
    """One 7 × 6 km district with 420 seeded incidents: a background over an irregular
    blob (so that the hull is no box) and two clusters."""
    region = make_region(
        "sfville", {"F1": ("Campo", metric_box(X0, Y0, X0 + 7000, Y0 + 6000, inset=1))}
    )
    district = region.district_set.get(code="F1")
    rng = np.random.default_rng(2024)
    angle = rng.uniform(0, 2 * math.pi, 300)
    radius = np.sqrt(rng.uniform(0, 1, 300))
    xs = [X0 + 3500 + 3000 * radius * np.cos(angle)]
    ys = [Y0 + 3000 + 2200 * radius * np.sin(angle) + 400 * np.cos(angle)]
    for cx, cy, n in ((2300.0, 2600.0, 80), (4700.0, 3900.0, 40)):
        xs.append(X0 + cx + rng.normal(0, 150, n))
        ys.append(Y0 + cy + rng.normal(0, 150, n))
    add_incidents(region, np.concatenate(xs), np.concatenate(ys), district=district)
    return region


def stored_points(region) -> np.ndarray:
    """The incidents' metric coordinates as PostGIS transforms them (the run's input)."""
    points = Incident.objects.filter(region=region).annotate(m=Transform("point", SRID))
    return np.array([(p.m.x, p.m.y) for p in points])


def sfhotspot_gistar(points: np.ndarray, cell_size: float) -> dict:
    """sfhotspot's hotspot_gistar() rule on metric points (see the module docstring):
    cells' lower-left corners, counts, Gi* z (numpy and esda) and p."""
    hull = shapely.MultiPoint(points).convex_hull.buffer(cell_size / 2, quad_segs=30)
    xmin, ymin, xmax, ymax = hull.bounds
    nx = math.ceil((xmax - xmin) / cell_size)
    ny = math.ceil((ymax - ymin) / cell_size)
    ii, jj = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    x0 = xmin + ii.ravel() * cell_size
    y0 = ymin + jj.ravel() * cell_size
    squares = shapely.box(x0, y0, x0 + cell_size, y0 + cell_size)
    keep = shapely.intersects(squares, hull)
    squares, x0, y0 = squares[keep], x0[keep], y0[keep]
    # st_join(points, cells): a point on a shared edge would count in both cells.
    tree = shapely.STRtree(shapely.points(points))
    cell_index, _point_index = tree.query(squares, predicate="intersects")
    counts = np.bincount(cell_index, minlength=len(squares)).astype(float)
    centroids = shapely.get_coordinates(shapely.centroid(squares))
    # dnearneigh(0, cell_size * sqrt(2)) + include.self, binary weights.
    w = (cdist(centroids, centroids) <= cell_size * math.sqrt(2) * (1 + 1e-9)).astype(float)
    n = len(counts)
    mean = counts.mean()
    s = math.sqrt((counts**2).sum() / n - mean**2)
    wi = w.sum(axis=1)
    s1i = (w**2).sum(axis=1)
    z = (w @ counts - mean * wi) / (s * np.sqrt((n * s1i - wi**2) / (n - 1)))

    import esda
    from libpysal.weights import W

    neighbours = {a: [b for b in np.flatnonzero(w[a]) if b != a] for a in range(n)}
    esda_z = esda.G_Local(
        counts, W(neighbours, silence_warnings=True), transform="B", star=True, permutations=0
    ).Zs
    return {
        "origin": (xmin, ymin),
        "corners": np.column_stack([x0, y0]),
        "counts": counts,
        "z": z,
        "esda_z": np.asarray(esda_z, dtype=float),
        "p": 2 * stats.norm.sf(np.abs(z)),
    }


def run_cells(run: HotspotRun) -> dict:
    """The run's stored cells: lower-left corner in the metric CRS, count, z, p."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT ST_XMin(g), ST_YMin(g), ST_XMax(g) - ST_XMin(g), count, gi_z, gi_p
            FROM (SELECT ST_Transform(geom, %s) AS g, count, gi_z, gi_p
                  FROM hotspots_hotspotcell WHERE run_id = %s) c
            """,
            [SRID, run.pk],
        )
        rows = np.array(cursor.fetchall(), dtype=float)
    return {
        "corners": rows[:, :2],
        "sides": rows[:, 2],
        "counts": rows[:, 3],
        "z": rows[:, 4],
        "p": rows[:, 5],
    }


def by_corner(corners: np.ndarray, origin) -> np.ndarray:
    """Order of cells by their (column, row) from ``origin``, checking they sit on it."""
    steps = (corners - np.asarray(origin)) / CELL
    # Cell corners are on the grid up to the WGS84 round trip of the stored polygons.
    assert np.abs(steps - np.round(steps)).max() < 1e-6
    col, row = np.round(steps).astype(int).T
    return np.lexsort((row, col))


def test_the_sfhotspot_recipe_reproduces_hotspot_gistar_cell_for_cell(field):
    out = io.StringIO()
    call_command(
        "run_hotspots",
        "--region=sfville",
        "--from=2024-01-01",
        "--to=2024-12-31",
        "--grid=square",
        "--cell-size=500",
        "--no-fdr",
        "--grid-origin=area",
        "--analysis-area=points-hull",
        "--no-stability",
        stdout=out,
    )
    run = HotspotRun.objects.get(region=field)
    assert run.status == HotspotRun.Status.SUCCEEDED, run.message
    assert run.metric_srid == SRID
    # Recorded on the run, with the corner the cells were anchored at.
    assert {k: run.params[k] for k in SFHOTSPOT if k != "stability"} == {
        k: v for k, v in SFHOTSPOT.items() if k != "stability"
    }
    assert "area: points-hull; cells anchored at area" in out.getvalue()

    expected = sfhotspot_gistar(stored_points(field), CELL)
    assert np.allclose(run.summary["grid_origin_m"], expected["origin"], rtol=0, atol=1e-6)
    got = run_cells(run)
    assert len(got["counts"]) == len(expected["counts"]) == run.summary["cells"]
    assert np.allclose(got["sides"], CELL, atol=1e-6)
    ours = by_corner(got["corners"], expected["origin"])
    theirs = by_corner(expected["corners"], expected["origin"])
    assert np.allclose(got["corners"][ours], expected["corners"][theirs], rtol=0, atol=1e-6)
    assert np.array_equal(got["counts"][ours], expected["counts"][theirs])
    assert expected["counts"].sum() == 420 and (expected["counts"] == 0).any()
    assert np.allclose(expected["z"], expected["esda_z"], rtol=0, atol=1e-9)
    assert np.allclose(got["z"][ours], expected["z"][theirs], rtol=0, atol=1e-9)
    assert np.allclose(got["p"][ours], expected["p"][theirs], rtol=0, atol=1e-12)
    # The planted clusters come out hot without FDR, as sfhotspot would flag them.
    assert (expected["p"][expected["z"] > 0] < 0.01).sum() >= 4


def test_the_default_grid_stays_on_the_crs_origin(field):
    params = {**SFHOTSPOT, "grid_origin": "crs"}
    run = runs.execute_run(run=runs.create_run(region=field, params=params, **PERIOD))
    assert run.status == HotspotRun.Status.SUCCEEDED, run.message
    assert run.summary["grid_origin_m"] == [0.0, 0.0]
    got = run_cells(run)
    by_corner(got["corners"], (0.0, 0.0))  # multiples of 500 m from the CRS origin
    # Over the boundary (the default area) the cells cover the whole district instead.
    whole = runs.execute_run(
        run=runs.create_run(region=field, params={**params, "analysis_area": "boundary"}, **PERIOD)
    )
    assert whole.params["analysis_area"] == "boundary"
    assert whole.summary["area_km2"] == pytest.approx(7 * 6, rel=0.01)
    assert whole.summary["cells"] > run.summary["cells"]


def test_area_origin_and_hull_for_kde(field):
    kde = runs.execute_run(
        run=runs.create_run(
            region=field,
            method="kde",
            params={"cell_size_m": CELL, "grid_origin": "area", "analysis_area": "points-hull"},
            **PERIOD,
        )
    )
    assert kde.status == HotspotRun.Status.SUCCEEDED, kde.message
    points = stored_points(field)
    hull = shapely.MultiPoint(points).convex_hull.buffer(CELL / 2, quad_segs=30)
    assert np.allclose(kde.summary["grid_origin_m"], hull.bounds[:2], atol=1e-6)
    assert kde.area_m2 == pytest.approx(hull.area, rel=1e-6)
    corners = run_cells(kde)["corners"]
    by_corner(corners, hull.bounds[:2])
    # Every incident's cell is stored, with its density there.
    assert kde.summary["incidents"] == len(points)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"grid_origin": "centre"}, "grid_origin must be one of crs, area"),
        ({"analysis_area": "hull"}, "analysis_area must be one of boundary, points-hull"),
    ],
)
def test_bad_origin_or_area_is_refused(field, django_user_model, params, message):
    with pytest.raises(HotspotRefused, match=message):
        normalize_params(params, "gistar")
    with pytest.raises(HotspotRefused, match="unknown parameter"):
        normalize_params(params, "dbscan")  # no grid: the options do not apply
    client = client_for(django_user_model, "planner")
    response = client.post(
        reverse("hotspot-run-list"),
        {"region": "sfville", "date_from": "2024-01-01", "date_to": "2024-06-30", "params": params},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {"params": [message]}
    option = "--grid-origin=centre" if "grid_origin" in params else "--analysis-area=hull"
    with pytest.raises(CommandError, match="invalid choice"):
        call_command(
            "run_hotspots", "--region=sfville", "--from=2024-01-01", "--to=2024-06-30", option
        )
    with pytest.raises(CommandError, match="does not apply to --method dbscan"):
        call_command(
            "run_hotspots",
            "--region=sfville",
            "--from=2024-01-01",
            "--to=2024-06-30",
            "--method=dbscan",
            "--grid-origin=area",
        )
    assert not HotspotRun.objects.exists()


def test_the_planner_form_offers_the_origin_and_the_area(client, django_user_model):
    import json

    from incidents.tests.factories import make_user

    client.force_login(make_user(django_user_model, "planner", username="planner-sf"))
    for lang, label in (("en", "Grid anchored at"), ("es", "Cuadrícula anclada en")):
        html = client.get(reverse("planner-map"), HTTP_ACCEPT_LANGUAGE=lang).content.decode()
        assert label in html, lang
    assert 'name="grid_origin"' in html and '<option value="points-hull">' in html
    config = json.loads(html.split('id="planner-config" type="application/json">')[1].split("<")[0])
    params = config["hotspots"]["params"]
    for method in ("gistar", "emerging", "forecast", "kde"):
        assert {"grid_origin", "analysis_area"} <= set(params[method]), method
    assert not {"grid_origin", "analysis_area"} & set(params["dbscan"])


def test_hexagons_anchored_at_the_area_hold_their_own_incidents(field):
    params = {**SFHOTSPOT, "grid": "hex", "cell_size_m": 300.0, "analysis_area": "boundary"}
    run = runs.execute_run(run=runs.create_run(region=field, params=params, **PERIOD))
    assert run.status == HotspotRun.Status.SUCCEEDED, run.message
    x0, y0 = run.summary["grid_origin_m"]
    assert (x0, y0) == pytest.approx((X0 + 1, Y0 + 1), abs=0.01)  # the district's corner
    # Each cell's count is the incidents its stored polygon holds (counted by arithmetic,
    # drawn by ST_Hexagon at the same origin).
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.count, (SELECT count(*) FROM incidents_incident i
                             WHERE i.region_id = %s AND ST_Intersects(c.geom, i.point))
            FROM hotspots_hotspotcell c WHERE c.run_id = %s
            """,
            [field.pk, run.pk],
        )
        rows = cursor.fetchall()
    assert sum(n for n, _ in rows) == 420
    assert all(n == inside for n, inside in rows)
