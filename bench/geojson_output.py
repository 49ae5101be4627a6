"""GeoJSON output of boundaries: our PostGIS-built, streamed FeatureCollection against the
two usual ways of writing one from Django.

Every method produces the complete JSON bytes of a FeatureCollection of all N
neighborhoods with properties code, name and district code (see bench/README.md):

* ``barrio (PostGIS, streamed)``: ``geo.geojson.feature_queryset`` +
  ``stream_feature_collection``, what the map endpoints send, joined into one bytes object;
* ``drf-gis`` (baseline): a ``GeoFeatureModelSerializer`` over
  ``Neighborhood.objects.select_related("district")`` rendered by DRF's ``JSONRenderer``;
* ``django serializer`` (baseline): ``django.core.serializers.serialize("geojson", ...)``.

The data are generated (seeded): N irregular hexagon-like polygons of 30 to 60 vertices on
a grid over about 30 x 30 km around lon -79.3, lat -13.2, built in EPSG:32717 and
transformed to EPSG:4326, in one region with six districts.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import shapely
from pyproj import Transformer

from bench.common import BenchContext, BenchmarkError, BenchResult, Method, measure_methods

NAME = "geojson_output"
DESCRIPTION = "GeoJSON FeatureCollection of all neighborhoods (code, name, district code)"
DEFAULT_SCALE = 10_000
UNIT = "features"

METRIC_SRID = 32717  # UTM 17S
CENTER_LONLAT = (-79.3, -13.2)
AREA_M = 30_000.0
DISTRICT_GRID = (3, 2)  # columns x rows of districts
GEOMETRY_SPOT_CHECKS = 12
COORDINATE_TOLERANCE = 1e-6  # degrees; ours is rounded to 6 decimals (precision_for_zoom)

OURS = "barrio (PostGIS, streamed)"
DRF_GIS = "drf-gis"
DJANGO = "django serializer"

# Accents and a quote, so every method pays for escaping as real names make it.
NAME_WORDS = [
    "San Martín",
    "Santa Rosa",
    "Villa María",
    "Señor de Luren",
    'Asentamiento "El Ñandú"',
    "Pueblo Nuevo",
    "Las Flores",
    "Alto Perú",
    "La Victoria",
    "José Olaya",
]


# --- data -------------------------------------------------------------------------


def generate_neighborhood_polygons(n: int, rng: np.random.Generator):
    """``n`` valid hexagon-like MultiPolygons (EPSG:4326, shapely) and their grid cells.

    Each polygon is star-shaped around its cell's centre (sorted angles, positive radii),
    so it is always simple; radii stay under half a cell, so neighbours do not overlap.
    Built as flat numpy arrays and one ``from_ragged_array`` call: no Python loop per vertex.
    """
    side = math.ceil(math.sqrt(n))
    step = AREA_M / side
    cell = np.arange(n)
    col, row = cell % side, cell // side
    to_metric = Transformer.from_crs(4326, METRIC_SRID, always_xy=True)
    to_lonlat = Transformer.from_crs(METRIC_SRID, 4326, always_xy=True)
    cx0, cy0 = to_metric.transform(*CENTER_LONLAT)
    centre_x = cx0 - AREA_M / 2 + (col + 0.5 + (row % 2) * 0.25) * step
    centre_y = cy0 - AREA_M / 2 + (row + 0.5) * step
    centre_x += rng.uniform(-0.02, 0.02, n) * step
    centre_y += rng.uniform(-0.02, 0.02, n) * step

    vertices = rng.integers(30, 61, n)  # 30 to 60 distinct vertices per ring
    rotation = rng.uniform(0, math.pi / 3, n)
    apothem = rng.uniform(0.34, 0.40, n) * step
    starts = np.concatenate([[0], np.cumsum(vertices)[:-1]])
    poly = np.repeat(cell, vertices)
    j = np.arange(vertices.sum()) - np.repeat(starts, vertices)
    k = vertices[poly]
    theta = rotation[poly] + 2 * math.pi * (j + rng.uniform(-0.3, 0.3, j.size)) / k
    # A hexagon's radius at angle theta, roughened by a few percent.
    sector = np.mod(theta - rotation[poly], math.pi / 3) - math.pi / 6
    radius = apothem[poly] / np.cos(sector) * (1 + rng.uniform(-0.05, 0.05, j.size))
    x = centre_x[poly] + radius * np.cos(theta)
    y = centre_y[poly] + radius * np.sin(theta)

    # Close each ring by repeating its first vertex.
    closed = vertices + 1
    closed_starts = np.concatenate([[0], np.cumsum(closed)[:-1]])
    position = np.arange(closed.sum()) - np.repeat(closed_starts, closed)
    source = np.repeat(starts, closed) + position % np.repeat(vertices, closed)
    lon, lat = to_lonlat.transform(x[source], y[source])
    coords = np.column_stack([lon, lat])
    ring_offsets = np.concatenate([[0], np.cumsum(closed)])
    one_each = np.arange(n + 1)
    geoms = shapely.from_ragged_array(
        shapely.GeometryType.MULTIPOLYGON, coords, (ring_offsets, one_each, one_each)
    )
    invalid = np.flatnonzero(~shapely.is_valid(geoms))
    if invalid.size:
        raise BenchmarkError(f"{invalid.size} generated polygons are invalid, e.g. #{invalid[0]}")
    district_index = (col * DISTRICT_GRID[0] // side) + DISTRICT_GRID[0] * (
        row * DISTRICT_GRID[1] // side
    )
    return geoms, district_index, (cx0, cy0)


def build_data(n: int, rng: np.random.Generator):
    """One region, six districts and ``n`` neighborhoods, bulk-inserted."""
    from django.contrib.gis.geos import GEOSGeometry
    from django.db import connection, transaction

    from neighborhoods.models import District, Neighborhood, Region

    geoms, district_index, (cx0, cy0) = generate_neighborhood_polygons(n, rng)
    to_lonlat = Transformer.from_crs(METRIC_SRID, 4326, always_xy=True)
    columns, rows = DISTRICT_GRID
    width, height = AREA_M / columns, AREA_M / rows

    def district_geom(c: int, r: int) -> GEOSGeometry:
        x0, y0 = cx0 - AREA_M / 2 + c * width, cy0 - AREA_M / 2 + r * height
        box = shapely.transform(
            shapely.segmentize(shapely.box(x0, y0, x0 + width, y0 + height), 500),
            lambda xy: np.column_stack(to_lonlat.transform(xy[:, 0], xy[:, 1])),
        )
        return GEOSGeometry(memoryview(shapely.to_wkb(shapely.MultiPolygon([box]))), srid=4326)

    with transaction.atomic():
        region = Region.objects.create(
            code="bench", name="Bench city", metric_srid=METRIC_SRID, synthetic=True
        )
        districts = District.objects.bulk_create(
            [
                District(
                    region=region,
                    code=f"D{r * columns + c + 1:02d}",
                    name=f"Distrito {r * columns + c + 1}",
                    geom=district_geom(c, r),
                )
                for r in range(rows)
                for c in range(columns)
            ]
        )
        words = rng.integers(0, len(NAME_WORDS), n)
        Neighborhood.objects.bulk_create(
            (
                Neighborhood(
                    region=region,
                    district=districts[district_index[i]],
                    code=f"N{i + 1:06d}",
                    name=f"{NAME_WORDS[words[i]]} {i + 1}",
                    geom=GEOSGeometry(memoryview(wkb), srid=4326),
                    population=10_000 + i % 10_000,
                )
                for i, wkb in enumerate(shapely.to_wkb(geoms))
            ),
            batch_size=1000,
        )
    with connection.cursor() as cursor:  # fresh planner statistics for every method
        cursor.execute("VACUUM ANALYZE neighborhoods_neighborhood")
        cursor.execute("VACUUM ANALYZE neighborhoods_district")
    coordinates_per_polygon = float(shapely.get_num_coordinates(geoms).mean())
    return region, districts, coordinates_per_polygon


# --- the three methods ------------------------------------------------------------


def _methods(n: int):
    """Each returns the complete JSON bytes of the FeatureCollection."""
    from django.core import serializers as django_serializers
    from django.db.models import F
    from rest_framework import serializers
    from rest_framework.renderers import JSONRenderer
    from rest_framework_gis.serializers import GeoFeatureModelSerializer

    from geo.geojson import feature_queryset, stream_feature_collection
    from neighborhoods.models import Neighborhood

    class NeighborhoodFeatureSerializer(GeoFeatureModelSerializer):
        district = serializers.SlugRelatedField(slug_field="code", read_only=True)

        class Meta:
            model = Neighborhood
            geo_field = "geom"
            fields = ("id", "code", "name", "district")

    def ours() -> bytes:
        rows = feature_queryset(
            Neighborhood.objects.all(),
            geom_field="geom",
            properties={"code": "code", "name": "name", "district": F("district__code")},
        )
        return b"".join(stream_feature_collection(rows, max_features=n))

    def drf_gis() -> bytes:
        queryset = Neighborhood.objects.select_related("district")
        return JSONRenderer().render(NeighborhoodFeatureSerializer(queryset, many=True).data)

    def django_serializer() -> bytes:
        return django_serializers.serialize(
            "geojson",
            Neighborhood.objects.all(),
            geometry_field="geom",
            fields=["code", "name", "district"],
        ).encode()

    return [
        Method(OURS, ours, note="coordinates rounded to 6 decimals in PostGIS"),
        Method(DRF_GIS, drf_gis, baseline=True, note="GeoFeatureModelSerializer + JSONRenderer"),
        Method(DJANGO, django_serializer, baseline=True, note="district is the district's id"),
    ]


# --- agreement --------------------------------------------------------------------


def _features_by_id(method: str, output: bytes, n: int) -> tuple[dict, dict]:
    try:
        collection = json.loads(output)
    except ValueError as exc:
        raise BenchmarkError(f"{method} did not produce valid JSON: {exc}") from None
    if collection.get("type") != "FeatureCollection":
        raise BenchmarkError(f"{method} did not produce a FeatureCollection")
    features = collection["features"]
    if len(features) != n:
        raise BenchmarkError(f"{method} produced {len(features)} features, expected {n}")
    by_id = {f["id"]: f for f in features}
    if len(by_id) != n:
        raise BenchmarkError(f"{method} produced duplicate feature ids")
    return collection, by_id


def _coordinates(feature: dict) -> np.ndarray:
    geometry = feature["geometry"]
    if geometry["type"] != "MultiPolygon":
        raise BenchmarkError(f"feature {feature['id']} is a {geometry['type']}")
    return np.array([xy for polygon in geometry["coordinates"] for ring in polygon for xy in ring])


def check_agreement(
    outputs: dict[str, bytes], n: int, rng: np.random.Generator, district_codes: dict
) -> list[str]:
    """Same features, same properties, same geometry (spot-checked): or no comparison."""
    collections, parsed = {}, {}
    for method, output in outputs.items():
        collections[method], parsed[method] = _features_by_id(method, output, n)
    reference = parsed[OURS]
    ours_tail = collections[OURS]
    if ours_tail.get("numberReturned") != n or ours_tail.get("truncated"):
        raise BenchmarkError(f"{OURS} reports {ours_tail.get('numberReturned')} / truncated")
    for method, features in parsed.items():
        if features.keys() != reference.keys():
            raise BenchmarkError(f"{method} has other feature ids than {OURS}")
    for fid, feature in reference.items():
        expected = feature["properties"]
        for method, features in parsed.items():
            props = dict(features[fid]["properties"])
            if method == DJANGO:  # Django writes the foreign key's value, not the code
                props["district"] = district_codes.get(props.get("district"))
            if props != expected:
                raise BenchmarkError(
                    f"feature {fid}: {method} properties {props} differ from {OURS} {expected}"
                )
    sample = rng.choice(sorted(reference), size=min(GEOMETRY_SPOT_CHECKS, n), replace=False)
    worst = 0.0
    for fid in sample.tolist():
        expected = _coordinates(reference[fid])
        for method, features in parsed.items():
            got = _coordinates(features[fid])
            if got.shape != expected.shape:
                raise BenchmarkError(
                    f"feature {fid}: {method} has {len(got)} vertices, {OURS} {len(expected)}"
                )
            difference = float(np.abs(got - expected).max())
            worst = max(worst, difference)
            if difference > COORDINATE_TOLERANCE:
                raise BenchmarkError(
                    f"feature {fid}: {method} geometry is {difference:.2e} degrees away"
                )
    return [
        f"all three methods return the same {n} feature ids",
        "code, name and district code agree for every feature",
        f"geometry of {len(sample)} random features agrees within {COORDINATE_TOLERANCE:g} "
        f"degrees (largest difference {worst:.1e})",
    ]


# --- entry point ------------------------------------------------------------------


def run(ctx: BenchContext) -> BenchResult:
    from neighborhoods.models import District

    n = ctx.scale
    rng = np.random.default_rng(ctx.seed)
    start = time.perf_counter()
    _, districts, coordinates = build_data(n, rng)
    setup_seconds = time.perf_counter() - start
    ctx.log(f"  generated and inserted {n:,} neighborhood polygons in {setup_seconds:.1f} s")

    measurements, outputs = measure_methods(_methods(n), items=n, repeat=ctx.repeat, log=ctx.log)
    district_codes = {d.pk: d.code for d in District.objects.all()}
    start = time.perf_counter()
    checks = check_agreement(outputs, n, rng, district_codes)
    ctx.log(f"  the three outputs agree (checked in {time.perf_counter() - start:.1f} s)")
    return BenchResult(
        name=NAME,
        description=DESCRIPTION,
        scale=n,
        unit=UNIT,
        measurements=measurements,
        setup_seconds=setup_seconds,
        checks=checks,
        notes=[
            f"{n:,} polygons of 30-60 vertices (about {coordinates:.0f} "
            f"coordinates each, ring closure included), {len(districts)} districts",
            f"{OURS}: coordinates rounded to 6 decimals (about 0.1 m) by PostGIS, as the "
            "map endpoints send them; the baselines write full precision, hence more bytes",
            f"{DJANGO}: writes the district's id (no natural key), so it skips the join "
            "the other two make",
            f"{OURS}: its peak is mostly the output held twice (the chunks and their "
            "join); the endpoint streams the chunks and never holds the whole document",
            "peak MB is the Python heap (tracemalloc); memory held by libpq, GEOS and "
            "GDAL in C is not counted",
        ],
    )
