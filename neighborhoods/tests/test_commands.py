"""load_boundaries (and load_open_data's error paths) through call_command."""

import warnings
from io import StringIO

import geopandas as gpd
import pytest
import shapely
from django.core.management import CommandError, call_command
from pyproj import Transformer

from neighborhoods.models import District, Neighborhood, Region
from tests.geodata import grid_cell

pytestmark = pytest.mark.django_db


def _records(n=3, **names):
    return [
        {
            "ubigeo": f"1501{i:02d}",
            "NOMBDIST": names.get(f"1501{i:02d}", f"DISTRITO {i}"),
            "geometry": grid_cell(i),
        }
        for i in range(1, n + 1)
    ]


def _load(path, **options):
    stdout, stderr = StringIO(), StringIO()
    options.setdefault("region", "lima")
    options.setdefault("level", "district")
    options.setdefault("code_field", "ubigeo")
    options.setdefault("name_field", "NOMBDIST")
    call_command("load_boundaries", str(path), stdout=stdout, stderr=stderr, **options)
    return stdout.getvalue(), stderr.getvalue()


def _load_fails(path, **options):
    stdout, stderr = StringIO(), StringIO()
    options.setdefault("region", "lima")
    options.setdefault("level", "district")
    options.setdefault("code_field", "ubigeo")
    options.setdefault("name_field", "NOMBDIST")
    with pytest.raises(CommandError) as exc:
        call_command("load_boundaries", str(path), stdout=stdout, stderr=stderr, **options)
    return str(exc.value), stdout.getvalue(), stderr.getvalue()


def test_load_creates_region_and_districts(write_geojson):
    out, err = _load(write_geojson(_records(3)), region_name="Lima Metropolitana")

    assert err == ""
    assert "district boundaries of region lima from boundaries.geojson: 3 created, 0 updated" in out
    assert "region lima was created with metric CRS EPSG:32718" in out
    region = Region.objects.get(code="lima")
    assert (region.name, region.metric_srid) == ("Lima Metropolitana", 32718)
    assert sorted(District.objects.values_list("code", "name")) == [
        ("150101", "DISTRITO 1"),
        ("150102", "DISTRITO 2"),
        ("150103", "DISTRITO 3"),
    ]


def test_second_run_reports_everything_unchanged(write_geojson):
    path = write_geojson(_records(3))
    _load(path)
    before = list(District.objects.values_list("code", "updated_at"))

    out, err = _load(path)

    assert err == ""
    assert "0 created, 0 updated, 3 unchanged, 0 repaired, 0 refused" in out
    assert not any(line.startswith("region lima") for line in out.splitlines())
    assert list(District.objects.values_list("code", "updated_at")) == before


def test_changed_name_is_reported_updated(write_geojson):
    _load(write_geojson(_records(3)))
    out, _ = _load(write_geojson(_records(3, **{"150102": "RENAMED"}), name="v2.geojson"))
    assert "0 created, 1 updated, 2 unchanged" in out
    assert District.objects.get(code="150102").name == "RENAMED"


def test_dry_run_writes_nothing(write_geojson):
    out, err = _load(write_geojson(_records(2)), dry_run=True)

    assert err == ""
    assert "2 created" in out
    assert "region lima would be created with metric CRS EPSG:32718" in out
    assert out.rstrip().endswith("dry run: nothing was written")
    assert not Region.objects.exists() and not District.objects.exists()


def test_null_geometry_refuses_the_whole_file(write_geojson):
    records = _records(4)
    records[1]["geometry"] = None

    message, out, err = _load_fails(write_geojson(records))

    assert message == "1 feature(s) refused; nothing was written"
    assert out == ""
    assert "refused: feature 2 (ubigeo=150102, NOMBDIST=DISTRITO 2): geometry is null" in err
    assert "nothing was written: fix the refused features and run again" in err
    assert not Region.objects.exists() and not District.objects.exists()


def test_missing_field_lists_the_fields_of_the_file(write_geojson):
    message, out, err = _load_fails(write_geojson(_records(2)), code_field="IDDIST")
    assert message == (
        "--code-field 'IDDIST' is not a field of the file; its fields are: ubigeo, NOMBDIST"
    )
    assert not Region.objects.exists()


def test_duplicate_code_names_both_features(write_geojson):
    records = _records(3)
    records[2]["ubigeo"] = "150101"

    message, _, err = _load_fails(write_geojson(records))

    assert message == "1 feature(s) refused; nothing was written"
    assert (
        "feature 3 (ubigeo=150101, NOMBDIST=DISTRITO 3): code 150101 already used by feature 1"
        in err
    )
    assert not District.objects.exists()


def test_missing_file_is_a_command_error(tmp_path):
    message, _, _ = _load_fails(tmp_path / "absent.geojson")
    assert "absent.geojson: no such file" in message


def test_unknown_level_is_refused_by_the_parser(write_geojson):
    with pytest.raises(CommandError, match="invalid choice: 'block'"):
        _load(write_geojson(_records(1)), level="block")


@pytest.fixture
def gpkg_without_crs(tmp_path):
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32718", always_xy=True)
    frame = gpd.GeoDataFrame(
        {"ubigeo": ["150101", "150102"], "NOMBDIST": ["UNO", "DOS"]},
        geometry=[
            shapely.transform(grid_cell(i), to_utm.transform, interleaved=False) for i in (1, 2)
        ],
        crs=None,
    )
    path = tmp_path / "sin_crs.gpkg"
    with warnings.catch_warnings():  # pyogrio warns that the file will have no CRS: the point
        warnings.simplefilter("ignore", UserWarning)
        frame.to_file(path, driver="GPKG")
    return path


def test_file_without_crs_needs_the_crs_option(gpkg_without_crs):
    message, _, _ = _load_fails(gpkg_without_crs)
    assert "sin_crs.gpkg has no coordinate reference system" in message
    assert "--crs EPSG:XXXX" in message
    assert not Region.objects.exists()

    out, _ = _load(gpkg_without_crs, crs="EPSG:32718")
    assert "2 created" in out
    assert Region.objects.get(code="lima").metric_srid == 32718
    extent = District.objects.get(code="150102").geom.extent
    assert extent == pytest.approx(grid_cell(2).bounds, abs=1e-6)


def test_crs_option_conflicting_with_the_file_is_refused(write_geojson):
    path = write_geojson(_records(1), crs="urn:ogc:def:crs:OGC:1.3:CRS84")
    message, _, _ = _load_fails(path, crs="EPSG:32718")
    assert "declares CRS" in message and "remove --crs or fix the file" in message


# --- neighborhoods ------------------------------------------------------------------------

CDMX = (-99.20, 19.40)


@pytest.fixture
def alcaldias(make_region):
    return make_region(
        "cdmx",
        districts={
            "09010": ("Álvaro Obregón", grid_cell(0, origin=CDMX)),
            "09003": ("Coyoacán", grid_cell(1, origin=CDMX)),
        },
    )


def _colonias(**parents):
    return [
        {
            "cve": f"C{i}",
            "colonia": f"Colonia {i}",
            "alcaldia": parent,
            "geometry": grid_cell(i, origin=CDMX, size=0.005),
        }
        for i, parent in enumerate(parents.values())
    ]


def _load_colonias(path, **options):
    return _load(
        path, region="cdmx", level="neighborhood", code_field="cve", name_field="colonia", **options
    )


def test_neighborhoods_with_parent_field_by_code_or_accent_insensitive_name(
    alcaldias, write_geojson
):
    path = write_geojson(_colonias(a="ALVARO OBREGON", b="Alvaro Obregon", c="09003", d="coyoacan"))

    out, err = _load_colonias(path, parent_field="alcaldia")

    assert err == "" and "4 created" in out
    assert dict(Neighborhood.objects.values_list("code", "district__name")) == {
        "C0": "Álvaro Obregón",
        "C1": "Álvaro Obregón",
        "C2": "Coyoacán",
        "C3": "Coyoacán",
    }


def test_unknown_parent_is_refused(alcaldias, write_geojson):
    path = write_geojson(_colonias(a="Álvaro Obregón", b="Tlalpan"))

    message, _, err = _load_fails(
        path,
        region="cdmx",
        level="neighborhood",
        code_field="cve",
        name_field="colonia",
        parent_field="alcaldia",
    )

    assert message == "1 feature(s) refused; nothing was written"
    assert (
        "refused: feature 2 (cve=C1, colonia=Colonia 1): "
        "parent district 'Tlalpan' not found in region cdmx"
    ) in err
    assert not Neighborhood.objects.exists()


def test_neighborhoods_without_parent_field_are_placed_spatially(alcaldias, write_geojson):
    # 0.005° cells 0 and 1 lie in the first 0.01° district, 2 and 3 in the second.
    out, _ = _load_colonias(write_geojson(_colonias(a="", b="", c="", d="")))

    assert "4 created" in out
    assert dict(Neighborhood.objects.values_list("code", "district__code")) == {
        "C0": "09010",
        "C1": "09010",
        "C2": "09003",
        "C3": "09003",
    }


# --- load_open_data: errors that need no data -------------------------------------------


def test_load_open_data_names_the_missing_file_and_where_to_get_it(tmp_path):
    with pytest.raises(CommandError) as exc:
        call_command("load_open_data", "lima", "--from", str(tmp_path), stdout=StringIO())
    message = str(exc.value)
    assert "lima_callao_distritos_ign_detailed.geojson not found under" in message
    assert "Download:" in message
    assert not Region.objects.exists()


def test_load_open_data_all_with_no_pack_lists_the_known_packs(tmp_path):
    with pytest.raises(CommandError) as exc:
        call_command("load_open_data", "all", "--from", str(tmp_path), stdout=StringIO())
    message = str(exc.value)
    assert "no data pack found" in message
    for pack in ("lima", "santiago", "cdmx"):
        assert pack in message


def test_load_open_data_needs_a_folder(tmp_path):
    with pytest.raises(CommandError, match="is not a folder"):
        call_command(
            "load_open_data", "lima", "--from", str(tmp_path / "nowhere"), stdout=StringIO()
        )
