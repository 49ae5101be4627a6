"""Loading the real public boundary sets in ../shared/data (read at run time, never copied).

Expected counts and feature numbers are derived from the files themselves; the few named
facts (Comas = 150110, the two null geometries of the INEI 2007 extract) are the ones
documented in the data sets' PROVENANCE.md and are checked against the files too.
"""

import json
import re
from io import StringIO

import geopandas as gpd
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient

from neighborhoods.models import BoundarySource, District, Neighborhood, Region
from neighborhoods.text import normalize_name

pytestmark = [pytest.mark.open_data, pytest.mark.django_db]

LIMA_IGN = "lima-districts/lima_callao_distritos_ign_detailed.geojson"
LIMA_INEI = "lima-districts/lima_callao_distritos_inei2007.geojson"
SANTIAGO = "chile-comunas/santiago_rm_comunas_bcn.geojson"
CDMX_ALCALDIAS = "cdmx-fgj-carpetas/cdmx_alcaldias.geojson"
CDMX_COLONIAS = "cdmx-fgj-carpetas/cdmx_colonias.geojson"
# A point in Comas (northern Lima), from the Safe Neighborhood target list.
COMAS = {"lat": -11.93272, "lon": -77.04106}


def _key(name: str) -> str:
    """A name ignoring accents, case and punctuation ("Arenal 3a. Seccion" is
    "Arenal 3a Sección")."""
    return " ".join(re.findall(r"[0-9a-z]+", normalize_name(name)))


def _features(path):
    return json.loads(path.read_text(encoding="utf-8"))["features"]


def _load_boundaries(path, **options):
    stdout, stderr = StringIO(), StringIO()
    call_command("load_boundaries", str(path), stdout=stdout, stderr=stderr, **options)
    return stdout.getvalue(), stderr.getvalue()


def _load_pack(pack, data_dir):
    stdout, stderr = StringIO(), StringIO()
    call_command(
        "load_open_data",
        pack,
        "--from",
        str(data_dir),
        "--boundaries-only",
        stdout=stdout,
        stderr=stderr,
    )
    return stdout.getvalue(), stderr.getvalue()


def _lookup(**point):
    response = APIClient().get(reverse("area-lookup"), point)
    assert response.status_code == 200
    return response.json()


def test_lima_ign_districts_load_and_the_lookup_finds_comas(shared_data):
    path = shared_data / LIMA_IGN
    features = _features(path)

    out, err = _load_boundaries(
        path, region="lima", level="district", code_field="ubigeo_derived", name_field="distrito"
    )

    assert err == ""
    assert f"{len(features)} created, 0 updated, 0 unchanged, 0 repaired, 0 refused" in out
    assert len(features) == 50
    region = Region.objects.get(code="lima")
    assert region.metric_srid == 32718
    assert District.objects.filter(region=region).count() == 50
    assert set(District.objects.values_list("code", flat=True)) == {
        f["properties"]["ubigeo_derived"] for f in features
    }
    # The region is the union of its districts. ST_Union recomputes shared vertices, so a
    # strict covers() can fail by floating-point noise: no district may stick out by more
    # than a square millimetre (1e-16 deg² ≈ 1e-6 m² here).
    for district in District.objects.filter(region=region):
        assert district.geom.difference(region.geom).area < 1e-16, district.code
    assert region.geom.area == pytest.approx(
        sum(d.geom.area for d in District.objects.filter(region=region)), rel=1e-6
    )

    areas = _lookup(**COMAS)
    districts = [a for a in areas if a["type"] == "district"]
    assert [(d["code"], d["name"].casefold()) for d in districts] == [("150110", "comas")]
    assert areas[0]["type"] == "region" and areas[0]["code"] == "lima"


def test_lima_inei2007_with_null_geometries_is_refused_and_loads_nothing(shared_data):
    path = shared_data / LIMA_INEI
    null = [
        (number, f["properties"]["ubigeo"], f["properties"]["NOMBDIST"])
        for number, f in enumerate(_features(path), start=1)
        if f["geometry"] is None
    ]
    # As documented in the data set's PROVENANCE.md.
    assert null == [(5, "070105", "LA PUNTA"), (43, "150137", "SANTA ANITA")]

    stdout, stderr = StringIO(), StringIO()
    with pytest.raises(CommandError) as exc:
        call_command(
            "load_boundaries",
            str(path),
            region="lima",
            level="district",
            code_field="ubigeo",
            name_field="NOMBDIST",
            stdout=stdout,
            stderr=stderr,
        )

    assert str(exc.value) == "2 feature(s) refused; nothing was written"
    err = stderr.getvalue()
    for number, code, name in null:
        assert (
            f"refused: feature {number} (ubigeo={code}, NOMBDIST={name}): geometry is null" in err
        )
    assert err.count("refused: feature") == 2
    assert not Region.objects.exists() and not District.objects.exists()


def test_santiago_comunas_load_in_utm_19s(shared_data):
    path = shared_data / SANTIAGO
    features = _features(path)

    out, _ = _load_boundaries(
        path, region="santiago", level="district", code_field="cod_comuna", name_field="Comuna"
    )

    assert len(features) == 52
    assert f"{len(features)} created" in out
    region = Region.objects.get(code="santiago")
    assert region.metric_srid == 32719
    stored = dict(District.objects.filter(region=region).values_list("code", "name"))
    # Numeric CUT codes are stored as whole numbers, not "13101.0".
    assert stored == {
        str(f["properties"]["cod_comuna"]): f["properties"]["Comuna"] for f in features
    }
    assert stored["13101"] == "Santiago"

    centre = District.objects.get(code="13101").geom.point_on_surface
    codes = [a["code"] for a in _lookup(lat=centre.y, lon=centre.x) if a["type"] == "district"]
    assert codes == ["13101"]


def test_lima_pack_titles_names_and_records_its_source(shared_data):
    out, err = _load_pack("lima", shared_data)

    assert err == ""
    assert "[lima] district boundaries of region lima" in out
    region = Region.objects.get(code="lima")
    assert (region.name, region.metric_srid) == ("Lima Metropolitana y Callao", 32718)
    comas = [a for a in _lookup(**COMAS) if a["type"] == "district"]
    assert [(a["code"], a["name"]) for a in comas] == [("150110", "Comas")]
    source = BoundarySource.objects.get(slug="lima-ign-distritos")
    assert "IGN" in source.attribution
    assert District.objects.filter(source=source).count() == 50


def test_cdmx_pack_loads_alcaldias_and_colonias_and_a_second_load_changes_nothing(shared_data):
    alcaldias = gpd.read_file(shared_data / CDMX_ALCALDIAS)
    colonias = gpd.read_file(shared_data / CDMX_COLONIAS)
    colonias["key"] = [
        (_key(a), _key(c)) for a, c in zip(colonias["alcaldia"], colonias["colonia"], strict=True)
    ]
    # The layer repeats some colonias under a second spelling (with and without accents or
    # a full stop), always with the very same polygon; the pack keeps one of each.
    twins = colonias[colonias.duplicated("key", keep=False)]
    for _pair, group in twins.groupby("key"):
        assert all(g.equals(group.geometry.iloc[0]) for g in group.geometry)
    distinct = colonias["key"].nunique()
    assert len(colonias) == 1651 and 0 < len(colonias) - distinct < 100

    out, err = _load_pack("cdmx", shared_data)

    assert err == ""
    region = Region.objects.get(code="cdmx")
    assert (region.name, region.metric_srid) == ("Ciudad de México", 32614)
    assert District.objects.filter(region=region).count() == len(alcaldias) == 16
    assert Neighborhood.objects.filter(region=region).count() == distinct
    assert f"{len(alcaldias)} created" in out and f"{distinct} created" in out
    assert f"{len(colonias) - distinct} note(s):" in out
    # Every colonia is attached to the alcaldía its file names (accent-insensitively).
    assert not Neighborhood.objects.filter(region=region, district__isnull=True).exists()
    stored = {
        (_key(district), _key(name))
        for name, district in Neighborhood.objects.filter(region=region).values_list(
            "name", "district__name"
        )
    }
    assert stored == set(colonias["key"])

    # A point inside one colonia names its alcaldía and the colonia.
    colonia = colonias.iloc[len(colonias) // 2]
    point = colonia.geometry.representative_point()
    areas = _lookup(lat=point.y, lon=point.x)
    district_names = [_key(a["name"]) for a in areas if a["type"] == "district"]
    hood_names = [_key(a["name"]) for a in areas if a["type"] == "neighborhood"]
    assert colonia["key"][0] in district_names
    assert colonia["key"][1] in hood_names
    assert areas[0]["code"] == "cdmx"

    before = {
        "districts": sorted(District.objects.values_list("code", "updated_at")),
        "neighborhoods": sorted(Neighborhood.objects.values_list("code", "updated_at")),
    }
    out, err = _load_pack("cdmx", shared_data)
    assert err == ""
    assert f"0 created, 0 updated, {len(alcaldias)} unchanged" in out
    assert f"0 created, 0 updated, {distinct} unchanged" in out
    assert before == {
        "districts": sorted(District.objects.values_list("code", "updated_at")),
        "neighborhoods": sorted(Neighborhood.objects.values_list("code", "updated_at")),
    }


def test_packs_name_their_regions_and_sources_in_no_language():
    """Region and source names are stored and shown as they are: proper names only, no
    English explanation (a Spanish page would show it as is)."""
    from opendata.packs import PACKS
    from tests.test_translations import english_sentences

    names = [(pack.region_name, pack.source.name) for pack in PACKS.values()]
    assert ("Boston", "Boston 311") in names
    assert english_sentences("".join(f"<p>{r}</p><p>{s}</p>" for r, s in names)) == []
