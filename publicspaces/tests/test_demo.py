import pytest

from neighborhoods.demo import load_demo_boundaries
from publicspaces.demo import LIMA_DISTRICTS, STORIES, load_demo_spaces
from publicspaces.models import (
    Activity,
    ChangeRecord,
    Condition,
    ProjectPhoto,
    ProjectStatus,
    PublicSpace,
    RecoveryProject,
)

pytestmark = pytest.mark.django_db


def _state():
    return {
        "spaces": sorted(
            PublicSpace.objects.values_list(
                "external_id", "name", "kind", "condition", "recovered_on", "updated_at"
            )
        ),
        "projects": sorted(RecoveryProject.objects.values_list("id", "status", "updated_at")),
        "photos": sorted(ProjectPhoto.objects.values_list("id", "image")),
        "activities": Activity.objects.count(),
        "history": ChangeRecord.objects.count(),
    }


def test_demo_city_spaces_cover_every_status_and_load_once(media_root):
    for report in load_demo_boundaries():
        assert report.ok
    lines = load_demo_spaces()
    assert "demo spaces created" in lines[0]
    spaces = PublicSpace.objects.all()
    assert spaces.count() >= len(STORIES)
    assert all(s.is_demo for s in spaces)
    assert {p.status for p in RecoveryProject.objects.all()} == set(ProjectStatus.values)
    assert set(spaces.values_list("condition", flat=True)) == set(Condition.values)
    assert RecoveryProject.objects.filter(is_demo=False).count() == 0
    assert Activity.objects.exists() and not Activity.objects.filter(is_demo=False).exists()
    photos = ProjectPhoto.objects.all()
    assert {p.stage for p in photos} == {"before", "during", "after"}
    assert all((media_root / p.image.name).is_file() for p in photos)
    # Every demo space lies inside the district it was assigned to.
    for space in spaces.select_related("district"):
        assert space.district.geom.covers(space.geom), space.name

    before = _state()
    files = sorted(p.name for p in media_root.rglob("*.jpg"))
    again = load_demo_spaces()
    assert "nothing changed" in again[0]
    assert _state() == before
    assert sorted(p.name for p in media_root.rglob("*.jpg")) == files


def test_unknown_or_empty_regions_get_nothing():
    assert load_demo_spaces("nowhere") == []
    assert not PublicSpace.objects.exists()


@pytest.mark.open_data
def test_lima_safe_neighborhood_districts(shared_data, media_root):
    from opendata.packs import PACKS, load_pack

    result = load_pack(PACKS["lima"], shared_data, with_incidents=False)
    assert result.ok
    spaces = PublicSpace.objects.filter(region__code="lima")
    assert set(spaces.values_list("district__code", flat=True)) == set(LIMA_DISTRICTS)
    assert spaces.filter(condition__in=["recovered", "maintained"]).exists()


@pytest.mark.open_data
def test_cdmx_colonias(shared_data, media_root):
    from opendata.packs import PACKS, load_pack

    result = load_pack(PACKS["cdmx"], shared_data, with_incidents=False)
    assert result.ok
    spaces = PublicSpace.objects.filter(region__code="cdmx").select_related("district")
    assert spaces.count() >= 6
    assert {s.district.name for s in spaces} <= {
        "Iztapalapa",
        "Gustavo A. Madero",
        "Cuauhtémoc",
        "Venustiano Carranza",
    }
    assert all(s.neighborhood_id for s in spaces)
    assert any("public spaces (cdmx)" in line for line in result.lines())
