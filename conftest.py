"""Fixtures and helpers shared by every app's tests (the root conftest reaches them all)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pytest
from shapely.geometry.base import BaseGeometry

from tests.geodata import feature_collection, vector_read

SHARED_DATA = Path(__file__).resolve().parent.parent / "shared" / "data"
SHARED_DATA_MISSING = "../shared/data not present: the real open data sets are needed for this test"


@pytest.fixture
def shared_data() -> Path:
    """The folder of real open data sets (read at run time, never copied)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(SHARED_DATA_MISSING)
    return SHARED_DATA


@pytest.fixture
def write_geojson(tmp_path) -> Callable[..., Path]:
    """Writes records as a GeoJSON file in tmp_path and returns its path."""

    def write(records: Iterable[Mapping], name: str = "boundaries.geojson", **kwargs) -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(feature_collection(records, **kwargs)), encoding="utf-8")
        return path

    return write


@pytest.fixture
def import_records(db) -> Callable:
    """Imports in-memory records (code, name, geometry, ...) through the service core
    ``import_boundary_frame`` and returns its report."""
    from neighborhoods.services import import_boundary_frame

    def run(region_code: str, records: Iterable[Mapping], *, level: str = "district", **kwargs):
        kwargs.setdefault("code_field", "code")
        kwargs.setdefault("name_field", "name")
        return import_boundary_frame(
            read=vector_read(records),
            path=f"{region_code}-{level}.geojson",
            region_code=region_code,
            level=level,
            **kwargs,
        )

    return run


@pytest.fixture
def make_region(import_records) -> Callable:
    """Builds a region with districts (and optionally neighborhoods) from shapely polygons.

    ``districts`` and ``neighborhoods`` map code -> (name, polygon); neighborhoods find
    their district spatially. Returns the saved Region.
    """
    from neighborhoods.models import Region

    def build(
        code: str = "testville",
        districts: Mapping[str, tuple[str, BaseGeometry]] | None = None,
        neighborhoods: Mapping[str, tuple[str, BaseGeometry]] | None = None,
        **kwargs,
    ):
        for level, items in (("district", districts), ("neighborhood", neighborhoods)):
            if not items:
                continue
            records = [{"code": c, "name": n, "geometry": g} for c, (n, g) in items.items()]
            report = import_records(code, records, level=level, **kwargs)
            assert report.ok, report.lines()
        return Region.objects.get(code=code)

    return build
