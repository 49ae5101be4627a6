import pytest
from django.contrib.auth.models import Group
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.urls import reverse

from accounts.models import Role, StaffProfile
from neighborhoods.models import District, Region


def _user_form(username, group_id, district_id=""):
    return {
        "username": username,
        "password1": "a-Long-pass-123",
        "password2": "a-Long-pass-123",
        "usable_password": "true",
        "staff_profile-TOTAL_FORMS": "1",
        "staff_profile-INITIAL_FORMS": "0",
        "staff_profile-MIN_NUM_FORMS": "0",
        "staff_profile-MAX_NUM_FORMS": "1",
        "staff_profile-0-district": district_id,
        "groups": [group_id],
    }


@pytest.mark.django_db
def test_municipal_user_needs_a_district(admin_client):
    region = Region.objects.create(code="adm", name="Adm", metric_srid=32718)
    square = MultiPolygon(Polygon.from_bbox((-77.1, -12.1, -77.0, -12.0)), srid=4326)
    district = District.objects.create(region=region, code="A1", name="A1", geom=square)
    municipal = Group.objects.get(name=Role.MUNICIPAL)
    url = reverse("admin:auth_user_add")

    refused = admin_client.post(url, _user_form("no-district", municipal.pk))
    assert refused.status_code == 200
    assert "Municipal staff must be linked to one district" in refused.content.decode() or (
        "El personal municipal" in refused.content.decode()
    )
    assert not StaffProfile.objects.exists()

    admin_client.post(url, _user_form("with-district", municipal.pk, district.pk))
    profile = StaffProfile.objects.get(user__username="with-district")
    assert profile.district == district
