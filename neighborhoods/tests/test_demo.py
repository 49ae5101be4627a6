"""The built-in synthetic demo city."""

import pytest
from django.core.management import call_command

from neighborhoods.demo import DEMO_METRIC_SRID, DEMO_REGION_CODE, build_demo_city
from neighborhoods.models import BoundarySource, District, Neighborhood, Region


def test_demo_city_is_reproducible_and_tiles_its_districts():
    districts_a, hoods_a = build_demo_city()
    districts_b, hoods_b = build_demo_city()
    assert (
        districts_a.frame.geometry.to_wkb().tolist() == districts_b.frame.geometry.to_wkb().tolist()
    )
    assert hoods_a.frame.geometry.to_wkb().tolist() == hoods_b.frame.geometry.to_wkb().tolist()
    metric_districts = districts_a.frame.to_crs(DEMO_METRIC_SRID)
    metric_hoods = hoods_a.frame.to_crs(DEMO_METRIC_SRID)
    assert metric_districts.is_valid.all() and metric_hoods.is_valid.all()
    # Neighborhoods partition their district: same total area, within a square metre per km².
    for code, district in zip(districts_a.frame["code"], metric_districts.geometry, strict=True):
        parts = metric_hoods[hoods_a.frame["district_code"] == code]
        assert len(parts) >= 5
        assert abs(parts.area.sum() - district.area) / district.area < 1e-4
    # Barrios of 10-20 thousand inhabitants (the Safe Neighborhood scale).
    assert hoods_a.frame["population"].between(10_000, 20_000).all()


@pytest.mark.django_db
def test_load_demo_twice_changes_nothing_and_is_labelled_synthetic(capsys):
    call_command("load_demo")
    first = capsys.readouterr().out
    region = Region.objects.get(code=DEMO_REGION_CODE)
    assert region.synthetic and region.metric_srid == DEMO_METRIC_SRID
    assert BoundarySource.objects.get(slug="barrio-demo").synthetic
    snapshot = {
        (n.code, n.name, n.district.code, n.geom.ewkt, n.updated_at)
        for n in Neighborhood.objects.select_related("district")
    }
    assert District.objects.filter(region=region).count() == 7
    assert "created" in first

    call_command("load_demo")
    second = capsys.readouterr().out
    assert "0 created, 0 updated" in second
    assert snapshot == {
        (n.code, n.name, n.district.code, n.geom.ewkt, n.updated_at)
        for n in Neighborhood.objects.select_related("district")
    }


@pytest.mark.django_db
def test_demo_lookup_names_its_synthetic_region(client):
    call_command("load_demo")
    hood = Neighborhood.objects.select_related("district").order_by("code").first()
    point = hood.geom.point_on_surface
    areas = client.get("/api/v1/areas/lookup/", {"lat": point.y, "lon": point.x}).json()
    assert [a["type"] for a in areas] == ["region", "district", "neighborhood"]
    assert areas[0]["synthetic"] is True
    assert areas[1]["code"] == hood.district.code
    assert areas[2]["code"] == hood.code


@pytest.mark.django_db
def test_loading_the_demo_again_adds_no_import_batch(capsys):
    from incidents.models import ImportBatch, Incident

    call_command("load_demo")
    batches, incidents = ImportBatch.objects.count(), Incident.objects.count()
    assert incidents > 0
    call_command("load_demo")
    assert "nothing changed" in capsys.readouterr().out
    assert (ImportBatch.objects.count(), Incident.objects.count()) == (batches, incidents)
    # With incidents missing, loading the demo imports them again.
    Incident.objects.filter(pk=Incident.objects.order_by("pk").first().pk).delete()
    call_command("load_demo")
    assert Incident.objects.count() == incidents


@pytest.mark.django_db
def test_each_source_is_credited_with_the_extent_it_drew():
    from neighborhoods.demo import load_demo_boundaries
    from neighborhoods.models import District, Neighborhood
    from neighborhoods.selectors import attribution_extents

    load_demo_boundaries()
    (credit,) = attribution_extents()
    assert "sintéticos" in credit["text"]
    west, south, east, north = credit["bbox"]
    for model in (District, Neighborhood):
        for geom in model.objects.filter(region__code="demo").values_list("geom", flat=True):
            x0, y0, x1, y1 = geom.extent
            assert west <= x0 + 1e-6 and south <= y0 + 1e-6
            assert east >= x1 - 1e-6 and north >= y1 - 1e-6
