"""Database constraints of the boundary models, checked by PostgreSQL itself."""

import pytest
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon, Polygon
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import RestrictedError
from django.utils import translation

from neighborhoods.models import District, Neighborhood, Region

pytestmark = pytest.mark.django_db

SQUARE = MultiPolygon(Polygon.from_bbox((-77.05, -12.06, -77.04, -12.05)), srid=4326)
BOW_TIE_WKT = (
    "MULTIPOLYGON(((-77.05 -12.06, -77.04 -12.05, -77.04 -12.06, -77.05 -12.05, -77.05 -12.06)))"
)


@pytest.fixture
def region():
    return Region.objects.create(code="lima", name="Lima", metric_srid=32718)


def _insert_sql(table: str, region_id: int, code: str, wkt: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (region_id, code, name, geom, updated_at"
            + (", drawn" if table == "neighborhoods_neighborhood" else "")
            + ") VALUES (%s, %s, %s, ST_GeomFromText(%s, 4326), now()"
            + (", false" if table == "neighborhoods_neighborhood" else "")
            + ")",
            [region_id, code, code, wkt],
        )


@pytest.mark.parametrize("table", ["neighborhoods_district", "neighborhoods_neighborhood"])
def test_invalid_geometry_inserted_with_raw_sql_is_refused(region, table):
    with pytest.raises(IntegrityError, match="geom_valid"), transaction.atomic():
        _insert_sql(table, region.pk, "bt", BOW_TIE_WKT)
    # The same statement with a valid geometry goes through.
    _insert_sql(table, region.pk, "ok", SQUARE.wkt)
    model = District if table == "neighborhoods_district" else Neighborhood
    assert list(model.objects.values_list("code", flat=True)) == ["ok"]


@pytest.mark.parametrize("model", [District, Neighborhood])
def test_invalid_geometry_saved_with_the_orm_is_refused(region, model):
    bow_tie = GEOSGeometry(BOW_TIE_WKT, srid=4326)
    assert not bow_tie.valid
    with pytest.raises(IntegrityError, match="geom_valid"), transaction.atomic():
        model.objects.create(region=region, code="bt", name="Bow tie", geom=bow_tie)
    assert not model.objects.exists()


def test_invalid_region_geometry_is_refused(region):
    region.geom = GEOSGeometry(BOW_TIE_WKT, srid=4326)
    with pytest.raises(IntegrityError, match="region_geom_valid"), transaction.atomic():
        region.save()
    region.refresh_from_db()
    assert region.geom is None


@pytest.mark.parametrize("model", [District, Neighborhood])
def test_duplicate_code_in_a_region_is_refused(region, model):
    model.objects.create(region=region, code="150110", name="Comas", geom=SQUARE)
    with pytest.raises(IntegrityError, match="code_unique_in_region"), transaction.atomic():
        model.objects.create(region=region, code="150110", name="Comas again", geom=SQUARE)
    assert model.objects.count() == 1


@pytest.mark.parametrize("model", [District, Neighborhood])
def test_same_code_in_two_regions_is_fine(region, model):
    other = Region.objects.create(code="other", name="Other", metric_srid=32718)
    model.objects.create(region=region, code="001", name="One", geom=SQUARE)
    model.objects.create(region=other, code="001", name="One elsewhere", geom=SQUARE)
    assert sorted(model.objects.values_list("region__code", "code")) == [
        ("lima", "001"),
        ("other", "001"),
    ]


@pytest.mark.parametrize("srid", [32601, 32618, 32660, 32701, 32719, 32760, 27700, 31983])
def test_region_metric_srid_accepts_projected_crs_in_metres(srid):
    # UTM zones, and others an analyst may reproduce a tool with (British National Grid,
    # SIRGAS 2000 / UTM 23S).
    region = Region(code=f"r{srid}", name="R", metric_srid=srid)
    region.full_clean()
    region.save()
    assert Region.objects.get(code=f"r{srid}").metric_srid == srid


@pytest.mark.parametrize("srid", [0, -32718])
def test_region_metric_srid_must_be_positive_in_the_database(srid):
    with pytest.raises(IntegrityError), transaction.atomic():
        Region.objects.create(code="bad", name="Bad", metric_srid=srid)
    assert not Region.objects.exists()


def test_the_database_takes_any_positive_srid_model_validation_checks_it():
    # The CHECK is a guard; which CRSs make sense is the model's (and the loader's) rule.
    Region.objects.create(code="raw", name="Raw", metric_srid=2263)
    assert Region.objects.filter(code="raw").exists()


@pytest.mark.parametrize(
    ("srid", "message"),
    [
        (4326, "EPSG:4326 (WGS 84) is a geographic CRS, in degrees"),
        (2263, "measures in us survey foot, not metres"),
        (999999, "EPSG:999999 is not a known coordinate reference system"),
    ],
)
@pytest.mark.parametrize("geom", [None, SQUARE], ids=["no-geom", "geom"])
def test_region_metric_srid_is_checked_by_model_validation(geom, srid, message):
    # full_clean is what the admin and model forms run; a new region has no geometry yet.
    with translation.override("en"):
        with pytest.raises(ValidationError) as exc:
            Region(code="bad", name="Bad", metric_srid=srid, geom=geom).full_clean()
        assert list(exc.value.message_dict) == ["metric_srid"]
        assert message in exc.value.message_dict["metric_srid"][0]
        # The UTM zone of the region's centre is suggested when the region has an outline.
        suggestion = "EPSG:32718" if geom is not None else "EPSG:326zz/327zz"
        assert srid == 999999 or suggestion in exc.value.message_dict["metric_srid"][0]
    Region(code="good", name="Good", metric_srid=32718, geom=geom).full_clean()


def test_a_crs_unknown_to_postgis_is_refused_by_model_validation():
    # MAGNA-SIRGAS / Medellin urban grid: projected, in metres, known to PROJ (pyproj) but
    # not shipped in this PostGIS's spatial_ref_sys.
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM spatial_ref_sys WHERE srid = 6257")
        assert cursor.fetchone()[0] == 0
    with translation.override("en"):
        with pytest.raises(ValidationError) as exc:
            Region(code="med", name="Medellín", metric_srid=6257).full_clean()
        assert "not in PostGIS's spatial_ref_sys" in exc.value.message_dict["metric_srid"][0]


def test_region_metric_srid_message_is_translated():
    with translation.override("es"), pytest.raises(ValidationError) as exc:
        Region(code="bad", name="Bad", metric_srid=4326).full_clean()
    message = exc.value.message_dict["metric_srid"][0]
    assert message.startswith("EPSG:4326 (WGS 84) es un CRS geográfico")


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../etc/passwd"])
def test_region_time_zone_is_checked_by_model_validation(zone):
    with pytest.raises(ValidationError) as exc:
        Region(code="bad", name="Bad", metric_srid=32718, time_zone=zone).full_clean()
    assert "time_zone" in exc.value.message_dict


def test_district_model_validation_checks_geometry(region):
    District(region=region, code="ok", name="Ok", geom=SQUARE).full_clean()
    bow_tie = GEOSGeometry(BOW_TIE_WKT, srid=4326)
    with pytest.raises(ValidationError, match="district_geom_valid"):
        District(region=region, code="bt", name="Bow tie", geom=bow_tie).full_clean()


def test_region_code_is_unique(region):
    with pytest.raises(IntegrityError), transaction.atomic():
        Region.objects.create(code="lima", name="Lima bis", metric_srid=32718)


def test_district_with_neighborhoods_cannot_be_deleted(region):
    district = District.objects.create(region=region, code="D", name="D", geom=SQUARE)
    Neighborhood.objects.create(region=region, district=district, code="N", name="N", geom=SQUARE)
    with pytest.raises(RestrictedError):
        district.delete()


def test_deleting_a_region_deletes_its_boundaries(region):
    district = District.objects.create(region=region, code="D", name="D", geom=SQUARE)
    Neighborhood.objects.create(region=region, district=district, code="N", name="N", geom=SQUARE)
    # Neighborhoods protect their district from deletion on its own, but deleting the
    # whole region (admin, demo reset) must remove its districts and neighborhoods together.
    region.delete()
    assert not District.objects.exists() and not Neighborhood.objects.exists()


def test_geometries_are_stored_in_wgs84(region):
    district = District.objects.create(region=region, code="D", name="D", geom=SQUARE)
    district.refresh_from_db()
    assert district.geom.srid == 4326
    assert district.geom.equals_exact(SQUARE, 1e-12)
    assert str(district) == "D (D)"
