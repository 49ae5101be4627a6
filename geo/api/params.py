"""Query-string parameters every map endpoint reads, as DRF validation errors (400 with
the field's message)."""

from __future__ import annotations

from rest_framework.exceptions import ValidationError

from geo.geojson import BBox, GeoJSONParameterError, parse_bbox, parse_zoom


def map_params(params) -> tuple[BBox | None, int | None]:
    """``bbox`` and ``zoom`` of a query string (each None when absent)."""
    try:
        return parse_bbox(params.get("bbox")), parse_zoom(params.get("zoom"))
    except GeoJSONParameterError as exc:
        raise ValidationError({exc.field: [exc.message]}) from None
