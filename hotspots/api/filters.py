"""Query strings of the hotspot layer endpoints, parsed into a
:class:`hotspots.selectors.CellFilter`; a bad parameter is a :class:`CellFilterError`
naming every one (the views answer 400 with it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from geo.geojson import BBox
from hotspots.engine.emerging import LEGEND
from hotspots.selectors import BIN_RANGE, CellFilter


def _parse_int(params: Mapping, name: str, errors: dict, *, lo: int, hi: int) -> int | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        errors[name] = [f"{name} must be a whole number"]
        return None
    if not lo <= value <= hi:
        errors[name] = [f"{name} must be between {lo} and {hi}"]
        return None
    return value


def _parse_ints(params: Mapping, name: str, errors: dict, allowed: Iterable[int]) -> tuple:
    raw = (params.get(name) or "").strip()
    if not raw:
        return ()
    allowed = set(allowed)
    values: list[int] = []
    for item in raw.split(","):
        item = item.strip()
        try:
            value = int(item)
        except ValueError:
            errors[name] = [f"{name} must be comma-separated whole numbers"]
            return ()
        if value not in allowed:
            errors[name] = [f"{name}: {value} is not one of {', '.join(map(str, sorted(allowed)))}"]
            return ()
        if value not in values:
            values.append(value)
    return tuple(values)


def _parse_bool(params: Mapping, name: str, errors: dict) -> bool:
    raw = (params.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    errors[name] = [f"{name} must be true or false"]
    return False


def parse_cell_filter(params: Mapping, *, layer: str, bbox: BBox | None) -> CellFilter:
    """Query parameters → CellFilter; raises :class:`CellFilterError` naming every bad
    parameter."""
    errors: dict[str, list[str]] = {}
    lo, hi = BIN_RANGE.start, BIN_RANGE.stop - 1
    min_bin = _parse_int(params, "min_bin", errors, lo=lo, hi=hi)
    max_bin = _parse_int(params, "max_bin", errors, lo=lo, hi=hi)
    if min_bin is not None and max_bin is not None and min_bin > max_bin:
        errors["max_bin"] = ["max_bin must not be below min_bin"]
    bins = _parse_ints(params, "bins", errors, BIN_RANGE)
    significant = _parse_bool(params, "significant", errors)
    min_density = None
    raw_density = (params.get("min_density") or "").strip()
    if raw_density:
        try:
            min_density = float(raw_density)
        except ValueError:
            errors["min_density"] = ["min_density must be a number"]
        else:
            if not min_density >= 0 or min_density == float("inf"):
                errors["min_density"] = ["min_density must be a finite number ≥ 0"]
    emerging = _parse_ints(params, "category", errors, LEGEND)
    include_no_pattern = _parse_bool(params, "include_no_pattern", errors)
    if errors:
        raise CellFilterError(errors)
    return CellFilter(
        layer=layer,
        bbox=bbox,
        min_bin=min_bin,
        max_bin=max_bin,
        bins=bins,
        significant=significant,
        min_density=min_density,
        emerging=emerging,
        include_no_pattern=include_no_pattern,
    )


class CellFilterError(ValueError):
    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(errors)
        self.errors = errors
