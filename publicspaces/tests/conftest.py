"""Two neighbouring synthetic districts, "Norte" (N1) and "Sur" (S1), and users of every role.

Norte is grid cell (0, 1) and Sur cell (0, 0) of tests.geodata (0.01° ≈ 1.1 km squares
near Lima, region UTM 32718); they share the border at latitude -12.09.
"""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group
from django.contrib.gis.geos import Point, Polygon
from PIL import Image

from accounts.models import Role, StaffProfile
from neighborhoods.models import District
from tests.geodata import grid_cell

BORDER_LAT = -12.09


def inside_norte(dlon: float = 0.005, dlat: float = 0.005) -> Point:
    return Point(-77.10 + dlon, BORDER_LAT + dlat, srid=4326)


def inside_sur(dlon: float = 0.005, dlat: float = 0.005) -> Point:
    return Point(-77.10 + dlon, BORDER_LAT - dlat, srid=4326)


def square(lon: float, lat: float, half: float = 0.0005) -> Polygon:
    return Polygon.from_bbox((lon - half, lat - half, lon + half, lat + half))


@pytest.fixture
def districts(make_region):
    region = make_region(
        "pstest",
        {"N1": ("Norte", grid_cell(0, 1)), "S1": ("Sur", grid_cell(0, 0))},
        neighborhoods={"N1-a": ("Barrio Norte A", grid_cell(0, 1))},
    )
    return {
        "region": region,
        "norte": District.objects.get(region=region, code="N1"),
        "sur": District.objects.get(region=region, code="S1"),
    }


@pytest.fixture
def make_user(django_user_model):
    def make(name: str, role: str | None = None, district=None, **extra):
        user = django_user_model.objects.create_user(name, password="a-Long-pass-123", **extra)
        if role:
            user.groups.add(Group.objects.get(name=role))
        if district is not None:
            StaffProfile.objects.create(user=user, district=district)
        return user

    return make


@pytest.fixture
def users(districts, make_user):
    return {
        "norte": make_user("muni-norte", Role.MUNICIPAL, districts["norte"], is_staff=True),
        "sur": make_user("muni-sur", Role.MUNICIPAL, districts["sur"], is_staff=True),
        "program": make_user("program", Role.PROGRAM, is_staff=True),
        "planner": make_user("planner", Role.PLANNER, is_staff=True),
        "nobody": make_user("nobody"),
    }


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    # Autouse: publishing a recovery stores an "after" photo (see give_evidence).
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def jpeg_bytes(size=(64, 48), color=(200, 30, 30), exif=None) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", size, color)
    if exif is not None:
        image.save(out, format="JPEG", exif=exif)
    else:
        image.save(out, format="JPEG")
    return out.getvalue()


def give_evidence(user, project, on):
    """What a recovery needs before it is published: an audit of the space since the works
    started (on ``on``) and an "after" photo."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from publicspaces.services.photos import add_photo
    from publicspaces.services.spaces import AUDIT_ITEMS, record_audit

    record_audit(
        user=user, space=project.space, answers={item: 2 for item in AUDIT_ITEMS}, audited_on=on
    )
    add_photo(
        user=user,
        project=project,
        image=SimpleUploadedFile("after.jpg", jpeg_bytes(color=(30, 160, 60))),
        stage="after",
    )
