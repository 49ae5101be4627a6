"""Program staff draw Safe Neighborhood barrios on the admin map."""

import pytest
from django.contrib.auth.models import Group
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.urls import reverse

from accounts.models import Role
from neighborhoods.models import District, Neighborhood, Region


@pytest.fixture
def lima_like_region(db):
    region = Region.objects.create(code="drawn", name="Drawn", metric_srid=32718)
    for code, box in {
        "W": (-77.10, -12.10, -77.05, -12.00),
        "E": (-77.05, -12.10, -77.00, -12.00),
    }.items():
        District.objects.create(
            region=region,
            code=code,
            name=f"District {code}",
            geom=MultiPolygon(Polygon.from_bbox(box), srid=4326),
        )
    return region


def _staff(django_user_model, name, role):
    user = django_user_model.objects.create_user(name, password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


def _form(region, code, wkt):
    return {
        "region": region.pk,
        "code": code,
        "name": f"Barrio {code}",
        "district": "",
        "population": "15000",
        "geom": f"SRID=4326;{wkt}",
    }


@pytest.mark.django_db
def test_program_staff_draw_a_barrio_and_its_district_is_found(
    client, django_user_model, lima_like_region
):
    client.force_login(_staff(django_user_model, "prog", Role.PROGRAM))
    polygon = "MULTIPOLYGON(((-77.04 -12.06, -77.02 -12.06, -77.02 -12.04, -77.04 -12.04, -77.04 -12.06)))"
    response = client.post(
        reverse("admin:neighborhoods_neighborhood_add"), _form(lima_like_region, "B1", polygon)
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    barrio = Neighborhood.objects.get(code="B1")
    assert barrio.drawn is True
    assert barrio.district.code == "E"
    assert barrio.geom.geom_type == "MultiPolygon"


@pytest.mark.django_db
def test_a_self_crossing_drawing_is_refused_with_a_message(
    client, django_user_model, lima_like_region
):
    client.force_login(_staff(django_user_model, "prog", Role.PROGRAM))
    bowtie = "MULTIPOLYGON(((-77.04 -12.06, -77.02 -12.04, -77.02 -12.06, -77.04 -12.04, -77.04 -12.06)))"
    response = client.post(
        reverse("admin:neighborhoods_neighborhood_add"), _form(lima_like_region, "B2", bowtie)
    )
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert not Neighborhood.objects.filter(code="B2").exists()


@pytest.mark.django_db
def test_municipal_staff_cannot_draw_neighborhoods(client, django_user_model, lima_like_region):
    client.force_login(_staff(django_user_model, "muni", Role.MUNICIPAL))
    assert client.get(reverse("admin:neighborhoods_neighborhood_add")).status_code == 403
    polygon = "MULTIPOLYGON(((-77.04 -12.06, -77.02 -12.06, -77.02 -12.04, -77.04 -12.04, -77.04 -12.06)))"
    response = client.post(
        reverse("admin:neighborhoods_neighborhood_add"), _form(lima_like_region, "B3", polygon)
    )
    assert response.status_code == 403
    assert not Neighborhood.objects.exists()
