# ruff: noqa: F811  (pytest fixtures imported from test_refresh)
"""The public API against PostGIS, on test_refresh's fixture (one point repeated per
group, groups farther apart than a resolution-7 cell): what each endpoint answers, that
it answers published rows only, its errors, caching, rate limit and that it never reads
the incident table."""

from __future__ import annotations

import csv
import datetime as dt
import io

import h3
import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from incidents.models import Category, Incident
from incidents.tests.factories import build_incident, make_region, make_user
from public.services.refresh import refresh_public_tables
from public.tests.test_refresh import JAN, TODAY, region, utc  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db

ASSAULT = (-77.05, -12.00)  # 5 assaults in January: published
ASSAULT_SUPPRESSED = (-77.00, -12.00)  # 4 assaults in January: below k
BURGLARY = (-77.15, -12.00)  # 10 burglaries (extra care) in January: published


def cell(point, resolution=8):
    lon, lat = point
    return h3.latlng_to_cell(lat, lon, resolution)


def url(region, endpoint):
    return f"/api/v1/public/regions/{region.code}/{endpoint}"


@pytest.fixture(autouse=True)
def _no_throttle_history():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def published(region):
    """The fixture plus 5 graffiti (incivility) in the published assault cell, so that
    one cell holds two categories of two families; then the public tables."""
    Incident.objects.bulk_create(
        build_incident(*ASSAULT, category="graffiti", when=utc(2026, 1, 12, 12), region=region)
        for _ in range(5)
    )
    refresh_public_tables(region_code=region.code, today=TODAY)
    return region


def features_by_cell(response) -> dict:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/geo+json"
    body = response.json()
    assert body["type"] == "FeatureCollection"
    return {f["properties"]["h3"]: f for f in body["features"]}


def test_months(client, published):
    response = client.get(url(published, "months/"))
    assert response.status_code == 200
    body = response.json()
    assert body["region"] == published.code
    assert body["months"] == ["2025-12", "2026-01"]
    assert body["last_refresh"] is not None


def test_regions_list_the_newest_published_month(client, published):
    quiet = make_region("quiettown")
    response = client.get("/api/v1/public/regions/")
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("public, max-age=")
    assert response.has_header("ETag")
    by_code = {r["code"]: r for r in response.json()["regions"]}
    assert by_code[published.code]["last_month"] == "2026-01"
    assert by_code[quiet.code]["last_month"] is None
    assert set(by_code[published.code]) == {"code", "name", "synthetic", "bbox", "last_month"}


def test_months_of_a_region_never_refreshed_is_empty(client, db):
    other = make_region("quiettown")
    assert client.get(url(other, "months/")).json()["months"] == []


def test_categories(client, published):
    response = client.get(url(published, "categories/"), HTTP_ACCEPT_LANGUAGE="en")
    categories = response.json()["categories"]
    codes = [c["code"] for c in categories]
    assert set(codes) == {"assault", "burglary", "graffiti", "theft-person"}
    assault = next(c for c in categories if c["code"] == "assault")
    assert assault == {
        "code": "assault",
        "name": Category.objects.get(code="assault").name_en,
        "family": "crime",
    }
    assert not Category.objects.filter(code__in=codes, sensitive=True).exists()


def test_cells_sum_published_rows_only(client, published):
    features = features_by_cell(client.get(url(published, "cells/?month=2026-01&resolution=8")))
    # Assault 5 + graffiti 5 in one cell; burglary 10; theft-person 6 (Lima's January).
    assert features[cell(ASSAULT)]["properties"] == {
        "h3": cell(ASSAULT),
        "resolution": 8,
        "month": "2026-01",
        "count": 10,
    }
    assert features[cell(BURGLARY)]["properties"]["count"] == 10
    assert sorted(f["properties"]["count"] for f in features.values()) == [6, 10, 10]
    # The k-1 cells (4 assaults, 9 extra-care burglaries) and sensitive ones are absent.
    assert cell(ASSAULT_SUPPRESSED) not in features
    assert cell((-77.10, -12.00)) not in features
    assert cell((-77.00, -12.05)) not in features


def test_cell_geometry_is_the_h3_boundary_rounded(client, published):
    features = features_by_cell(client.get(url(published, "cells/?month=2026-01&resolution=9")))
    ring = features[cell(ASSAULT, 9)]["geometry"]["coordinates"][0]
    expected = [
        [round(lon, 6), round(lat, 6)] for lat, lon in h3.cell_to_boundary(cell(ASSAULT, 9))
    ]
    assert ring == [*expected, expected[0]]
    assert all(len(str(value).split(".")[-1]) <= 6 for point in ring for value in point)


def test_cells_default_to_the_newest_month_and_resolution_8(client, published):
    features = features_by_cell(client.get(url(published, "cells/")))
    assert {f["properties"]["month"] for f in features.values()} == {"2026-01"}
    assert {f["properties"]["resolution"] for f in features.values()} == {8}


def test_category_and_family_filters(client, published):
    base = url(published, "cells/?month=2026-01&resolution=7")
    by_category = features_by_cell(client.get(base + "&category=assault"))
    assert {h: f["properties"]["count"] for h, f in by_category.items()} == {cell(ASSAULT, 7): 5}
    crime = features_by_cell(client.get(base + "&family=crime"))
    assert sorted(f["properties"]["count"] for f in crime.values()) == [5, 6, 10]
    incivility = features_by_cell(client.get(base + "&family=incivility"))
    assert {h: f["properties"]["count"] for h, f in incivility.items()} == {cell(ASSAULT, 7): 5}
    assert features_by_cell(client.get(base + "&category=assault&family=incivility")) == {}


def test_bbox_returns_whole_cells_by_their_centre(client, published):
    centre_lat, centre_lon = h3.cell_to_latlng(cell(ASSAULT, 7))
    # A box around the centre only, far smaller than the cell: the whole cell comes back.
    bbox = f"{centre_lon - 0.001},{centre_lat - 0.001},{centre_lon + 0.001},{centre_lat + 0.001}"
    features = features_by_cell(
        client.get(url(published, f"cells/?month=2026-01&resolution=7&bbox={bbox}"))
    )
    assert list(features) == [cell(ASSAULT, 7)]
    assert features[cell(ASSAULT, 7)]["properties"]["count"] == 10
    assert len(features[cell(ASSAULT, 7)]["geometry"]["coordinates"][0]) == 7
    # A box that holds part of the cell but not its centre: nothing, not a part of it.
    near = f"{centre_lon + 0.0005},{centre_lat + 0.0005},{centre_lon + 0.002},{centre_lat + 0.002}"
    assert h3.latlng_to_cell(centre_lat + 0.001, centre_lon + 0.001, 7) == cell(ASSAULT, 7)
    assert (
        features_by_cell(
            client.get(url(published, f"cells/?month=2026-01&resolution=7&bbox={near}"))
        )
        == {}
    )


@pytest.mark.parametrize("path", ["cells/?format=csv&", "cells.csv?"])
def test_cells_as_csv(client, published, path):
    response = client.get(url(published, path + "month=2026-01&resolution=8&family=crime"))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["h3", "resolution", "month", "category", "family", "count"]
    assert sorted(rows[1:]) == sorted(
        [
            [cell(ASSAULT), "8", "2026-01", "", "crime", "5"],
            [cell(BURGLARY), "8", "2026-01", "", "crime", "10"],
            [cell((-77.05, -12.10)), "8", "2026-01", "", "crime", "6"],
        ]
    )


def test_zones_of_a_region_without_runs(client, published):
    response = client.get(url(published, "zones/"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/geo+json"
    assert response.json() == {
        "type": "FeatureCollection",
        "region": published.code,
        "features": [],
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("month=2026-13", "month"),
        ("month=january", "month"),
        ("month=2026-02", "month"),  # inside the lag: not published
        ("resolution=6", "resolution"),
        ("resolution=x", "resolution"),
        ("category=sexual-offence", "category"),
        ("category=nothing", "category"),
        ("family=other", "family"),
        ("bbox=1,2,3", "bbox"),
        ("bbox=a,b,c,d", "bbox"),
        ("bbox=3,3,1,1", "bbox"),
        ("format=xml", "format"),
    ],
)
def test_bad_parameters_are_400_with_the_field(client, published, query, field):
    response = client.get(url(published, f"cells/?{query}"))
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert list(response.json()) == [field]
    assert isinstance(response.json()[field][0], str)


def test_every_bad_field_at_once(client, published):
    response = client.get(url(published, "cells/?month=x&resolution=1&bbox=1"))
    assert response.status_code == 400
    assert set(response.json()) == {"month", "resolution", "bbox"}


def test_no_month_published_yet_is_400(client, db):
    other = make_region("quiettown")
    response = client.get(url(other, "cells/"))
    assert response.status_code == 400
    assert "month" in response.json()


@pytest.mark.parametrize("endpoint", ["months/", "categories/", "cells/", "cells.csv", "zones/"])
def test_unknown_region_is_a_json_404(client, db, endpoint):
    response = client.get(f"/api/v1/public/regions/nowhere/{endpoint}")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "detail" in response.json()


@pytest.mark.parametrize(
    "endpoint", ["months/", "categories/", "cells/?month=2026-01", "cells.csv", "zones/"]
)
def test_public_cache_headers_etag_and_304(client, published, settings, endpoint):
    settings.PUBLIC_MAX_AGE = 120
    response = client.get(url(published, endpoint))
    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=120"
    etag = response["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert "Cookie" not in response.get("Vary", "")
    assert not response.cookies
    again = client.get(url(published, endpoint), HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert again["Cache-Control"] == "public, max-age=120"
    stale = client.get(url(published, endpoint), HTTP_IF_NONE_MATCH='"something-else"')
    assert stale.status_code == 200
    assert stale.content == response.content


def test_the_etag_changes_with_the_data(client, published):
    first = client.get(url(published, "cells/?month=2026-01"))
    Incident.objects.bulk_create(
        build_incident(*ASSAULT, when=utc(2026, 1, 12, 12), region=published) for _ in range(2)
    )
    refresh_public_tables(region_code=published.code, today=TODAY)
    second = client.get(url(published, "cells/?month=2026-01"), HTTP_IF_NONE_MATCH=first["ETag"])
    assert second.status_code == 200
    assert second["ETag"] != first["ETag"]


@pytest.mark.parametrize(
    "endpoint", ["months/", "categories/", "cells/?month=2026-01", "cells.csv", "zones/"]
)
def test_identical_bytes_for_anonymous_and_planner(client, published, django_user_model, endpoint):
    anonymous = client.get(url(published, endpoint))
    planner = make_user(django_user_model, Role.PLANNER)
    client.force_login(planner)
    signed_in = client.get(url(published, endpoint))
    assert signed_in.status_code == anonymous.status_code == 200
    assert signed_in.content == anonymous.content
    assert signed_in["ETag"] == anonymous["ETag"]
    assert signed_in["Cache-Control"] == anonymous["Cache-Control"]
    assert "Cookie" not in signed_in.get("Vary", "")
    assert not signed_in.cookies


def test_rate_limit_is_429_with_retry_after(client, published, settings):
    settings.PUBLIC_API_RATE = "3/minute"
    for _ in range(3):
        assert client.get(url(published, "months/")).status_code == 200
    response = client.get(url(published, "cells/"))
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response["Content-Type"] == "application/json"
    assert "detail" in response.json()
    assert response["Cache-Control"] == "no-store"
    # Another client (address) is not held up.
    assert client.get(url(published, "months/"), REMOTE_ADDR="10.0.0.2").status_code == 200


def test_forwarded_for_does_not_escape_the_rate_limit(client, published, settings):
    settings.PUBLIC_API_RATE = "2/minute"
    for n in range(2):
        client.get(url(published, "months/"), HTTP_X_FORWARDED_FOR=f"10.9.9.{n}")
    response = client.get(url(published, "months/"), HTTP_X_FORWARDED_FOR="10.9.9.7")
    assert response.status_code == 429


def test_public_endpoints_never_read_the_incident_table(client, published):
    with CaptureQueriesContext(connection) as queries:
        for endpoint in [
            "months/",
            "categories/",
            "cells/?month=2026-01&resolution=7",
            "cells/?month=2025-12&family=incivility&bbox=-78,-13,-76,-11",
            "cells.csv?month=2026-01&category=assault",
            "zones/",
        ]:
            assert client.get(url(published, endpoint)).status_code == 200, endpoint
    assert queries.captured_queries
    assert not [q["sql"] for q in queries.captured_queries if "incidents_incident" in q["sql"]]


def test_month_boundaries_follow_the_table(client, published):
    # December holds only graffiti (7): the family filter gives it, crime gives nothing.
    base = url(published, "cells/?month=2025-12&resolution=8")
    assert [f["properties"]["count"] for f in features_by_cell(client.get(base)).values()] == [7]
    assert features_by_cell(client.get(base + "&family=crime")) == {}
    assert JAN == dt.date(2026, 1, 1)
