"""The database keeps the rules even when the services are bypassed."""

import datetime as dt

import pytest
from django.contrib.gis.geos import GeometryCollection, LineString, MultiLineString, Point, Polygon
from django.db import IntegrityError, transaction

from publicspaces.models import Activity, PublicSpace, RecoveryProject
from publicspaces.tests.conftest import inside_norte, square

pytestmark = pytest.mark.django_db


@pytest.fixture
def place(districts):
    return {"region": districts["region"], "district": districts["norte"]}


def _space(place, geom, **kwargs):
    return PublicSpace.objects.create(name="x", kind="park", geom=geom, **place, **kwargs)


def _refused(create):
    with pytest.raises(IntegrityError), transaction.atomic():
        create()


def test_geometry_types_and_validity(place):
    p = inside_norte()
    for geom in (
        Point(p.x, p.y, srid=4326),
        square(p.x, p.y),
        LineString((p.x, p.y), (p.x + 0.001, p.y), srid=4326),
    ):
        geom.srid = 4326
        assert _space(place, geom).pk
    bowtie = Polygon(((0, 0), (1, 1), (1, 0), (0, 1), (0, 0)), srid=4326)
    multiline = MultiLineString(LineString((0, 0), (1, 1)), srid=4326)
    collection = GeometryCollection(Point(0, 0), srid=4326)
    for geom in (bowtie, multiline, collection):
        _refused(lambda geom=geom: _space(place, geom))


def test_score_range(place):
    geom = square(inside_norte().x, inside_norte().y)
    geom.srid = 4326
    _refused(lambda: _space(place, geom, condition_score=101))


def test_project_rules(place):
    geom = square(inside_norte().x, inside_norte().y)
    geom.srid = 4326
    space = _space(place, geom)
    day = dt.date(2025, 1, 1)
    RecoveryProject.objects.create(space=space, title="a", identified_on=day)
    # A second open project on the same space.
    _refused(lambda: RecoveryProject.objects.create(space=space, title="b", identified_on=day))
    closed = dict(space=space, title="c", identified_on=day)
    # A status without its date, a step before the previous one, a negative amount.
    _refused(lambda: RecoveryProject.objects.create(**closed, status="cancelled"))
    _refused(
        lambda: RecoveryProject.objects.create(
            **closed, status="cancelled", cancelled_on=day, planned_on=day - dt.timedelta(days=1)
        )
    )
    _refused(
        lambda: RecoveryProject.objects.create(
            **closed, status="cancelled", cancelled_on=day, budget=-1
        )
    )
    assert RecoveryProject.objects.create(**closed, status="cancelled", cancelled_on=day).pk


def test_activity_age_groups(place):
    geom = square(inside_norte().x, inside_norte().y)
    geom.srid = 4326
    space = _space(place, geom)
    day = dt.date(2025, 1, 1)
    _refused(
        lambda: Activity.objects.create(
            space=space, date=day, kind="sport", participants=5, children=3, older_adults=3
        )
    )
    assert Activity.objects.create(space=space, date=day, kind="sport", participants=6, children=3)
