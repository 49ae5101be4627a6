"""Reads of hotspot runs, cells and zones (views check the planner role), and the map
layers of a run, built in PostGIS: cells (Gi* bins, kernel density, emerging categories,
a forecast's flagged cells) and zones, for GeoJSON FeatureCollections and vector tiles.

GeoJSON goes through :func:`geo.geojson.feature_collection_response` and tiles through
:func:`geo.mvt.tile_bytes`, so no feature is assembled in Python. Cell tiles have a minimum
zoom and every tile a feature cap: a whole-metro run has tens of thousands of cells, which a
tile at zoom 6 would otherwise carry all at once. The byte-stable result files are
:mod:`hotspots.exports`; the query-string parsing of the layer endpoints is
:mod:`hotspots.api.filters`. The public map's zones (:func:`public_zones`, issue 14) are
redrawn from a whole-region run's cells by :mod:`geo.generalize`, never from incidents.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import shapely
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.gis.db.models.functions import AsWKB
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import (
    BinaryField,
    Case,
    CharField,
    Expression,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Abs, Coalesce

from geo.generalize import generalize_polygons
from geo.geojson import BBox
from geo.mvt import capped_tile_bytes, check_tile
from hotspots.engine.emerging import LEGEND
from hotspots.models import HotspotCell, HotspotRun, HotspotZone
from hotspots.styles import candidate_label, emerging_legend, language

# Which cell values a layer reads; "gistar" is the default (every grid method has Gi*).
CELL_LAYERS = ("gistar", "kde", "emerging", "forecast")
BIN_RANGE = range(-3, 4)
TILE_LAYER_CELLS = "cells"
TILE_LAYER_ZONES = "zones"


def run_list(
    *,
    region=None,
    status: str | None = None,
    method: str | None = None,
    author=None,
    superseded: bool | None = None,
) -> QuerySet:
    """Runs, newest first, each annotated with ``superseded_by`` (:func:`with_superseded_by`).

    ``superseded`` False keeps only the runs nothing supersedes, True only the superseded
    ones, None both."""
    queryset = HotspotRun.objects.select_related("region", "created_by")
    if region is not None:
        queryset = queryset.filter(region=region)
    if status:
        queryset = queryset.filter(status=status)
    if method:
        queryset = queryset.filter(method=method)
    if author is not None:
        queryset = queryset.filter(created_by=author)
    queryset = with_superseded_by(queryset)
    if superseded is not None:
        queryset = queryset.filter(superseded_by__isnull=not superseded)
    return queryset.order_by("-created_at", "-id")


def run_authors() -> QuerySet:
    """The users who started at least one run, by username (the run list's author filter)."""
    return (
        get_user_model()
        .objects.filter(pk__in=HotspotRun.objects.values("created_by"))
        .order_by(get_user_model().USERNAME_FIELD)
    )


def _with_area_keys(queryset: QuerySet) -> QuerySet:
    """Annotates what a run analysed besides its region: its districts and neighborhoods
    (sorted id arrays, empty when none) and its drawn polygon (WKB, empty when none), so
    that two runs over the same area compare equal column by column."""
    through_d = HotspotRun.districts.through.objects.filter(hotspotrun_id=OuterRef("pk"))
    through_n = HotspotRun.neighborhoods.through.objects.filter(hotspotrun_id=OuterRef("pk"))
    return queryset.annotate(
        district_key=ArraySubquery(through_d.order_by("district_id").values("district_id")),
        neighborhood_key=ArraySubquery(
            through_n.order_by("neighborhood_id").values("neighborhood_id")
        ),
        polygon_key=Coalesce(AsWKB("polygon"), Value(b"", output_field=BinaryField())),
    )


def with_superseded_by(queryset: QuerySet) -> QuerySet:
    """Annotates each run with ``superseded_by``: the id of the newest SUCCEEDED run created
    after it with the same method, region, districts, neighborhoods, drawn polygon and
    period (its result replaces this one's), or None. Categories and parameters are not
    compared: a planner who reruns the same area and period is taken to mean the new run.
    A failed run supersedes nothing (it wrote no result)."""
    later = (
        _with_area_keys(
            HotspotRun.objects.filter(
                status=HotspotRun.Status.SUCCEEDED,
                method=OuterRef("method"),
                region=OuterRef("region_id"),
                date_from=OuterRef("date_from"),
                date_to=OuterRef("date_to"),
            ).filter(
                Q(created_at__gt=OuterRef("created_at"))
                | Q(created_at=OuterRef("created_at"), pk__gt=OuterRef("pk"))
            )
        )
        .filter(
            district_key=OuterRef("district_key"),
            neighborhood_key=OuterRef("neighborhood_key"),
            polygon_key=OuterRef("polygon_key"),
        )
        .order_by("-created_at", "-id")
        .values("pk")[:1]
    )
    return _with_area_keys(queryset).annotate(superseded_by=Subquery(later))


def cell_list(run: HotspotRun, *, min_bin: int | None = None) -> QuerySet:
    queryset = HotspotCell.objects.filter(run=run)
    if min_bin is not None:
        queryset = queryset.filter(gi_bin__gte=min_bin)
    return queryset.order_by("i", "j")


def zone_list(run: HotspotRun, *, bbox: BBox | None = None) -> QuerySet:
    """The run's zones in rank order (within ``bbox``)."""
    queryset = HotspotZone.objects.filter(run=run)
    if bbox is not None:
        queryset = queryset.filter(geom__bboverlaps=bbox.as_geometry())
    return queryset.order_by("rank")


# --- map layers ------------------------------------------------------------------------


def tile_min_zoom() -> int:
    """Cell tiles are empty below this zoom (``HOTSPOT_TILE_MIN_ZOOM``, default 10): at
    zoom 10 a tile is ~40 km wide, about the size of a district."""
    return int(getattr(settings, "HOTSPOT_TILE_MIN_ZOOM", 10))


def tile_max_features() -> int:
    """Features per tile (``HOTSPOT_TILE_MAX_FEATURES``, default 10000); the most
    significant cells are kept when a tile holds more."""
    return int(getattr(settings, "HOTSPOT_TILE_MAX_FEATURES", 10000))


def max_features() -> int:
    """Features per GeoJSON response: the project-wide ``GEOJSON_MAX_FEATURES``."""
    return int(settings.GEOJSON_MAX_FEATURES)


def _legend_case(field: str, member: str, output) -> Expression:
    return Case(
        *[When(**{field: code}, then=Value(entry[member])) for code, entry in LEGEND.items()],
        default=Value(None),
        output_field=output,
    )


@dataclass(frozen=True)
class CellFilter:
    """What to read of a run's cells; every field optional."""

    layer: str = "gistar"
    bbox: BBox | None = None
    min_bin: int | None = None
    max_bin: int | None = None
    bins: tuple[int, ...] = ()
    significant: bool = False
    min_density: float | None = None
    emerging: tuple[int, ...] = ()  # category codes
    include_no_pattern: bool = False


def cell_queryset(run: HotspotRun, spec: CellFilter = CellFilter()) -> QuerySet:
    """The run's cells for a layer, most significant first (ties in grid order), so that a
    capped response keeps what matters."""
    queryset = HotspotCell.objects.filter(run=run)
    if spec.bbox is not None:
        queryset = queryset.filter(geom__bboverlaps=spec.bbox.as_geometry())
    if spec.layer == "kde":
        queryset = queryset.filter(density__isnull=False)
        if spec.min_density is not None:
            queryset = queryset.filter(density__gte=spec.min_density)
        order = [F("density").desc(nulls_last=True)]
    elif spec.layer == "forecast":
        # The cells the forecast flagged: every one of them is in a zone (the zones are
        # the flagged cells merged), every other cell only has a score.
        queryset = queryset.filter(zone__isnull=False, score__isnull=False)
        order = [F("score").desc()]
    elif spec.layer == "emerging":
        queryset = queryset.filter(emerging__isnull=False)
        if spec.emerging:
            queryset = queryset.filter(emerging__in=spec.emerging)
        elif not spec.include_no_pattern:
            # A cell without a pattern may still have hot or cold steps: the time slider
            # shows them, so they stay in.
            queryset = queryset.filter(
                ~Q(emerging=0) | Q(step_bins__overlap=[b for b in BIN_RANGE if b])
            )
        order = [Abs("emerging").desc(), Abs(Coalesce("gi_bin", 0)).desc()]
    else:
        queryset = queryset.filter(gi_bin__isnull=False)
        if spec.min_bin is not None:
            queryset = queryset.filter(gi_bin__gte=spec.min_bin)
        if spec.max_bin is not None:
            queryset = queryset.filter(gi_bin__lte=spec.max_bin)
        if spec.bins:
            queryset = queryset.filter(gi_bin__in=spec.bins)
        if spec.significant:
            queryset = queryset.exclude(gi_bin=0)
        order = [Abs("gi_bin").desc(), Abs("gi_z").desc(nulls_last=True)]
    return queryset.order_by(*order, "i", "j")


def cell_properties(layer: str, lang: str | None = None) -> dict[str, str | Expression]:
    """Feature properties of a cell layer (GeoJSON); every layer names the cell and its
    count, the layer's own values follow."""
    base: dict[str, str | Expression] = {"i": "i", "j": "j", "count": "count"}
    if layer == "kde":
        return {**base, "density": "density"}
    if layer == "forecast":
        return {**base, "score": "score", "zone": F("zone__rank")}
    if layer == "emerging":
        lang = lang or language()
        return {
            **base,
            "emerging": "emerging",
            "emerging_key": _legend_case("emerging", "key", CharField()),
            "emerging_label": _legend_case("emerging", lang, CharField()),
            "trend_tau": "trend_tau",
            "trend_p": "trend_p",
            "gi_bin": "gi_bin",
            "step_counts": "step_counts",
            "step_bins": "step_bins",
        }
    return {
        **base,
        "gi_z": "gi_z",
        "gi_p": "gi_p",
        "gi_bin": "gi_bin",
        "zone": F("zone__rank"),
    }


ZONE_PROPERTIES: dict[str, str] = {
    "rank": "rank",
    "cell_count": "cell_count",
    "incident_count": "incident_count",
    "area_m2": "area_m2",
    "density_per_km2": "density_per_km2",
    "share": "share",
    "top_categories": "top_categories",
}


def layer_members(run: HotspotRun, layer: str) -> dict:
    """What a client needs beside the features: the run, its method and, per layer, the
    time steps and the legend."""
    members: dict = {"run": run.pk, "method": run.method, "layer": layer}
    if layer == "emerging":
        members["steps"] = list((run.params or {}).get("steps") or [])
        members["legend"] = emerging_legend()
    elif layer == "kde":
        # The whole run's maximum, so that colours do not change as the map pans.
        members["max_density"] = HotspotCell.objects.filter(run=run).aggregate(top=Max("density"))[
            "top"
        ]
    elif layer == "forecast":
        # The flagged cells' score range over the whole run (steady colours as the map
        # pans), and the candidate ranking the back-test chose, which the scores are of.
        members.update(
            HotspotCell.objects.filter(run=run, zone__isnull=False).aggregate(
                min_score=Min("score"), max_score=Max("score")
            )
        )
        summary = run.summary or {}
        members["chosen"] = summary.get("chosen")
        members["chosen_label"] = candidate_label(summary)
    return members


# --- vector tiles -------------------------------------------------------------------------

TILE_CELL_PROPERTIES: dict[str, str | Expression] = {
    "i": "i",
    "j": "j",
    "count": "count",
    "gi_z": "gi_z",
    "gi_bin": "gi_bin",
    "zone": F("zone__rank"),
    "density": "density",
    "emerging": "emerging",
    "score": "score",
}
TILE_ZONE_PROPERTIES: dict[str, str] = {
    k: v for k, v in ZONE_PROPERTIES.items() if k != "top_categories"
}


@dataclass(frozen=True)
class Tile:
    data: bytes
    truncated: bool = False
    below_min_zoom: bool = False


def _capped_tile(queryset: QuerySet, *, properties, z: int, x: int, y: int, layer: str) -> Tile:
    """The tile of ``queryset`` (ordered by priority) with at most tile_max_features()."""
    data, truncated = capped_tile_bytes(
        queryset,
        max_features=tile_max_features(),
        geom_field="geom",
        properties=properties,
        z=z,
        x=x,
        y=y,
        layer=layer,
    )
    return Tile(data=data, truncated=truncated)


def cell_tile(run: HotspotRun, z: int, x: int, y: int) -> Tile:
    """The run's cells, every layer's values in one MVT layer ``cells`` (a forecast run's:
    its flagged cells only, highest score first); empty below :func:`tile_min_zoom`.
    Raises GeoJSONParameterError for an address outside the pyramid."""
    check_tile(z, x, y)
    if z < tile_min_zoom():
        return Tile(data=b"", below_min_zoom=True)
    if run.method == HotspotRun.Method.FORECAST:
        queryset = cell_queryset(run, CellFilter(layer="forecast"))
    else:
        # Whatever the method filled, the most notable cells first: Gi* bin, emerging
        # pattern, then density.
        queryset = HotspotCell.objects.filter(run=run).order_by(
            Abs(Coalesce("gi_bin", 0)).desc(),
            Abs(Coalesce("emerging", 0)).desc(),
            F("density").desc(nulls_last=True),
            "i",
            "j",
        )
    return _capped_tile(
        queryset,
        properties=TILE_CELL_PROPERTIES,
        z=z,
        x=x,
        y=y,
        layer=TILE_LAYER_CELLS,
    )


def zone_tile(run: HotspotRun, z: int, x: int, y: int) -> Tile:
    check_tile(z, x, y)
    return _capped_tile(
        zone_list(run),
        properties=TILE_ZONE_PROPERTIES,
        z=z,
        x=x,
        y=y,
        layer=TILE_LAYER_ZONES,
    )


# --- public zones (issue 14) -----------------------------------------------------------

# The methods whose zones are unions of the run's grid cells (each cell row carries its
# zone): their zones can be redrawn from cells alone. DBSCAN zones are concave hulls of
# incident points, so they are never public; KDE and emerging runs have no zones.
ZONE_CELL_METHODS = (HotspotRun.Method.GISTAR, HotspotRun.Method.FORECAST)


def public_zone_buffer_m() -> float:
    """How far a public zone's outline lies outside its cells (``PUBLIC_ZONE_BUFFER_M``,
    default 50 m): no vertex of the outline is nearer than that to a point in a cell."""
    return float(getattr(settings, "PUBLIC_ZONE_BUFFER_M", 50.0))


def public_zone_tolerance_m() -> float:
    """The simplification tolerance of a public zone's outline (``PUBLIC_ZONE_TOLERANCE_M``,
    default 25 m; below the buffer, so the outline still covers the cells)."""
    return float(getattr(settings, "PUBLIC_ZONE_TOLERANCE_M", 25.0))


def public_zone_min_cell_count() -> int:
    """A zone's cell count is published only from this many cells up
    (``PUBLIC_ZONE_MIN_CELL_COUNT``, default 5, the public minimum count k); a smaller
    zone is drawn with ``cell_count`` None."""
    return int(getattr(settings, "PUBLIC_ZONE_MIN_CELL_COUNT", 5))


def latest_public_run(region_code: str) -> HotspotRun | None:
    """The region's latest SUCCEEDED run (by ``finished_at``) over the whole region (no
    districts, neighborhoods or drawn polygon) of a method whose zones are made of cells
    (:data:`ZONE_CELL_METHODS`), none of whose chosen categories is sensitive or
    unclassified; None when there is none."""
    return (
        HotspotRun.objects.filter(
            region__code=region_code,
            status=HotspotRun.Status.SUCCEEDED,
            method__in=ZONE_CELL_METHODS,
            finished_at__isnull=False,
            polygon__isnull=True,
            districts__isnull=True,
            neighborhoods__isnull=True,
        )
        .exclude(Q(categories__sensitive=True) | Q(categories__unclassified=True))
        .select_related("region")
        .order_by("-finished_at", "-id")
        .first()
    )


def zone_cell_groups(run: HotspotRun) -> list[list]:
    """The geometries (shapely polygons, EPSG:4326) of each zone's cells, one list per zone
    in rank order (empty for a zone without cells). Reads cell geometries only: no counts,
    no incident."""
    zone_ids = list(
        HotspotZone.objects.filter(run=run).order_by("rank").values_list("pk", flat=True)
    )
    groups: dict[int, list] = {pk: [] for pk in zone_ids}
    rows = (
        HotspotCell.objects.filter(run=run, zone__isnull=False)
        .order_by("zone_id", "i", "j")
        .values_list("zone_id", AsWKB("geom"))
    )
    for zone_id, wkb in rows:
        groups[zone_id].append(shapely.from_wkb(bytes(wkb)))
    return [groups[pk] for pk in zone_ids]


def public_zones(
    region_code: str, *, buffer_m: float | None = None, tolerance_m: float | None = None
) -> list[dict]:
    """The public hotspot zones of a region: those of :func:`latest_public_run`, each
    outline generalized from its cells (:func:`geo.generalize.generalize_polygons`: a
    buffer and a simplification in the run's metric CRS, never a hull or an incident's
    coordinate), in rank order; an empty list when the region has no such run.

    Each zone: ``rank``, ``geometry`` (a GeoJSON MultiPolygon dict), ``cell_count`` (None
    below :func:`public_zone_min_cell_count`), and the run's ``run_id``, ``method``,
    ``date_from``/``date_to`` (ISO dates), ``buffer_m`` and ``tolerance_m``. No incident
    count and no coordinate of an incident; zones whose outline is empty are left out."""
    run = latest_public_run(region_code)
    if run is None:
        return []
    buffer_m = public_zone_buffer_m() if buffer_m is None else float(buffer_m)
    tolerance_m = public_zone_tolerance_m() if tolerance_m is None else float(tolerance_m)
    zones = list(
        HotspotZone.objects.filter(run=run).order_by("rank").values_list("rank", "cell_count")
    )
    outlines = generalize_polygons(
        zone_cell_groups(run),
        metric_srid=run.metric_srid or run.region.metric_srid,
        buffer_m=buffer_m,
        tolerance_m=tolerance_m,
    )
    minimum = public_zone_min_cell_count()
    return [
        {
            "rank": rank,
            "geometry": json.loads(shapely.to_geojson(outline)),
            "cell_count": cell_count if cell_count >= minimum else None,
            "run_id": run.pk,
            "method": run.method,
            "date_from": run.date_from.isoformat(),
            "date_to": run.date_to.isoformat(),
            "buffer_m": buffer_m,
            "tolerance_m": tolerance_m,
        }
        for (rank, cell_count), outline in zip(zones, outlines, strict=True)
        if not outline.is_empty
    ]
