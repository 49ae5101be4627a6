import pytest
from django.core.management import CommandError, call_command
from django.utils import translation
from shapely.geometry import LineString, MultiPoint, Point, box

from publicspaces.models import ChangeRecord, PublicSpace

pytestmark = pytest.mark.django_db

N = (-77.095, -12.085)  # inside Norte
S = (-77.095, -12.095)  # inside Sur


def _square(lon, lat, half=0.0003):
    return box(lon - half, lat - half, lon + half, lat + half)


GOOD = [
    {"codigo": 1, "nombre": "Parque Los Olivos", "tipo": "Parque", "geometry": _square(*N)},
    {
        "codigo": 2,
        "nombre": "Losa Deportiva 2",
        "tipo": "losa deportiva",
        "geometry": _square(N[0] + 0.002, N[1]),
    },
    {"codigo": 3, "nombre": "Poste 14", "tipo": "lighting_point", "geometry": Point(*S)},
    {
        "codigo": 4,
        "nombre": "Jr. Las Flores",
        "tipo": "Tramo de alumbrado",
        "geometry": LineString([(S[0], S[1]), (S[0] + 0.002, S[1])]),
    },
    {
        "codigo": 5,
        "nombre": "Centro Comunal",
        "tipo": "Centro comunal",
        "geometry": MultiPoint([(N[0] + 0.001, N[1] + 0.001)]),
    },
]


def _run(path, *args):
    call_command(
        "import_public_spaces",
        str(path),
        "--name-field",
        "nombre",
        "--kind-field",
        "tipo",
        "--id-field",
        "codigo",
        "--source",
        "inv",
        *args,
    )


def test_a_good_file_is_imported_and_placed(districts, write_geojson):
    path = write_geojson(GOOD, name="inventario.geojson")
    _run(path)
    spaces = {s.name: s for s in PublicSpace.objects.select_related("district")}
    assert spaces["Parque Los Olivos"].kind == "park"
    assert spaces["Losa Deportiva 2"].kind == "sports_field"
    assert spaces["Poste 14"].district.code == "S1"
    assert spaces["Jr. Las Flores"].geom.geom_type == "LineString"
    assert spaces["Centro Comunal"].geom.geom_type == "Point"
    assert spaces["Parque Los Olivos"].external_id == "inv:1"
    assert ChangeRecord.objects.filter(action="created", username="").count() == 5

    # Again: nothing changes.
    before = list(PublicSpace.objects.order_by("id").values_list("id", "updated_at"))
    _run(path)
    assert list(PublicSpace.objects.order_by("id").values_list("id", "updated_at")) == before
    assert ChangeRecord.objects.count() == 5


def test_bad_rows_are_named_by_number_and_nothing_is_written(districts, write_geojson, capsys):
    rows = [
        *GOOD[:2],
        {"codigo": 6, "nombre": "", "tipo": "parque", "geometry": _square(N[0] - 0.002, N[1])},
        {"codigo": 7, "nombre": "Raro", "tipo": "helipuerto", "geometry": _square(*N)},
        {"codigo": 8, "nombre": "Lejos", "tipo": "parque", "geometry": _square(-70.0, -10.0)},
        {"codigo": 9, "nombre": "Sin forma", "tipo": "parque", "geometry": None},
        {
            "codigo": 10,
            "nombre": "Línea",
            "tipo": "parque",
            "geometry": LineString([(N[0], N[1]), (N[0] + 0.001, N[1])]),
        },
        {
            "codigo": 1,
            "nombre": "Repetido",
            "tipo": "parque",
            "geometry": _square(N[0], N[1] + 0.002),
        },
    ]
    path = write_geojson(rows, name="malo.geojson")
    with pytest.raises(CommandError, match="6 feature"), translation.override("en"):
        _run(path)
    err = capsys.readouterr().err
    for number, reason in [
        (3, "no name"),
        (4, "helipuerto"),
        (5, "outside every loaded district"),
        (6, "null"),
        (7, "line"),
        (8, "same id as malo.geojson feature 1"),
    ]:
        assert f"malo.geojson feature {number}" in err and reason in err, (number, err)
    refused = [line for line in err.splitlines() if line.startswith("refused:")]
    assert len(refused) == 6  # features 1 and 2 are good
    assert not PublicSpace.objects.exists()
    assert not ChangeRecord.objects.exists()


def test_skip_bad_writes_the_good_rows(districts, write_geojson):
    rows = [
        *GOOD[:2],
        {"codigo": 7, "nombre": "Raro", "tipo": "helipuerto", "geometry": _square(*N)},
    ]
    _run(write_geojson(rows), "--skip-bad")
    assert PublicSpace.objects.count() == 2


def test_district_option_refuses_spaces_of_other_districts(districts, write_geojson, capsys):
    path = write_geojson(GOOD)
    with pytest.raises(CommandError):
        _run(path, "--district", "N1")
    err = capsys.readouterr().err
    assert "feature 3" in err and "Norte" in err and "feature 4" in err
    assert "feature 1 " not in err
    assert not PublicSpace.objects.exists()
    _run(write_geojson([GOOD[0], GOOD[1], GOOD[4]]), "--district", "N1", "--region", "pstest")
    assert set(PublicSpace.objects.values_list("district__code", flat=True)) == {"N1"}


def test_dry_run_writes_nothing(districts, write_geojson, capsys):
    _run(write_geojson(GOOD), "--dry-run")
    assert "dry run" in capsys.readouterr().out
    assert not PublicSpace.objects.exists()


def test_file_level_errors(districts, write_geojson, tmp_path):
    with pytest.raises(CommandError, match="no column 'tipo'"):
        call_command(
            "import_public_spaces",
            str(write_geojson([{"name": "x", "geometry": Point(*N)}])),
            "--kind-field",
            "tipo",
        )
    bogus = tmp_path / "x.geojson"
    bogus.write_text("not json")
    with pytest.raises(CommandError):
        call_command("import_public_spaces", str(bogus))
    with pytest.raises(CommandError, match="no district"):
        _run(write_geojson(GOOD), "--district", "ZZ")


def test_geopackage_in_a_projected_crs(districts, tmp_path):
    import geopandas as gpd

    frame = gpd.GeoDataFrame(
        [{"nombre": r["nombre"], "tipo": r["tipo"], "codigo": r["codigo"]} for r in GOOD[:3]],
        geometry=[r["geometry"] for r in GOOD[:3]],
        crs="EPSG:4326",
    ).to_crs(32718)
    path = tmp_path / "inv.gpkg"
    frame.to_file(path, driver="GPKG", engine="pyogrio")
    _run(path)
    assert PublicSpace.objects.count() == 3
    park = PublicSpace.objects.get(name="Parque Los Olivos")
    assert abs(park.geom.centroid.x - N[0]) < 1e-6


def test_a_refused_file_reports_in_file_order_and_claims_no_creation(
    districts, write_geojson, capsys
):
    rows = [
        GOOD[0],
        {"codigo": 7, "nombre": "Raro", "tipo": "helipuerto", "geometry": _square(*N)},
        {"codigo": 9, "nombre": "Sin forma", "tipo": "parque", "geometry": None},
    ]
    with pytest.raises(CommandError), translation.override("en"):
        _run(write_geojson(rows, name="orden.geojson"))
    err = capsys.readouterr().err
    summary = err.splitlines()[0]
    assert "1 would be created" in summary and "2 refused" in summary
    assert " 1 created" not in summary
    refused = [line for line in err.splitlines() if line.startswith("refused:")]
    # The reader refuses feature 3 (no geometry) before the rows are tried; the report
    # still reads feature 2, then 3.
    assert [line.split(":")[1].strip() for line in refused] == [
        "orden.geojson feature 2 (codigo=7, nombre=Raro)",
        "orden.geojson feature 3 (codigo=9, nombre=Sin forma)",
    ]
    assert "nothing was written" in err


def test_the_summary_says_would_be_on_a_dry_run_and_created_when_written(
    districts, write_geojson, capsys
):
    path = write_geojson(GOOD[:2])
    _run(path, "--dry-run")
    out = capsys.readouterr().out
    assert "2 would be created" in out
    assert not PublicSpace.objects.exists()
    _run(path)
    out = capsys.readouterr().out
    assert "2 created" in out and "would be" not in out
    assert PublicSpace.objects.count() == 2
