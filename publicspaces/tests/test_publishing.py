"""What a space needs before it shows as recovered on the public map, and the currency of
project amounts."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from neighborhoods.models import Region
from neighborhoods.regions import currency_for_time_zone
from publicspaces import selectors
from publicspaces.models import ChangeRecord, Condition, ProjectStatus, SpaceKind
from publicspaces.services.projects import create_project, transition_project, update_project
from publicspaces.services.spaces import AUDIT_ITEMS, create_space, record_audit, update_space
from publicspaces.tests.conftest import give_evidence, inside_norte, square

pytestmark = pytest.mark.django_db


def _space(user, name="Parque"):
    where = inside_norte()
    return create_space(user=user, name=name, kind=SpaceKind.PARK, geom=square(where.x, where.y))


def _in_works(user, space):
    project = create_project(
        user=user, space=space, title="Obra", identified_on=dt.date(2025, 1, 10)
    )
    for status, day in ((ProjectStatus.PLANNED, 1), (ProjectStatus.IN_WORKS, 2)):
        project = transition_project(
            user=user, project=project, to_status=status, on=dt.date(2025, 2, day)
        )
    return project


def _refusal(call) -> dict:
    with translation.override("en"), pytest.raises(ValidationError) as refused:
        call()
    return refused.value.message_dict


def test_recovered_needs_an_audit_after_the_works_and_an_after_photo(users):
    user = users["norte"]
    space = _space(user)
    project = _in_works(user, space)
    # An audit from before the works is no evidence of their result.
    record_audit(
        user=user,
        space=space,
        answers=dict.fromkeys(AUDIT_ITEMS, 2),
        audited_on=dt.date(2025, 1, 5),
    )
    move = lambda: transition_project(  # noqa: E731
        user=user, project=project, to_status=ProjectStatus.RECOVERED, on=dt.date(2025, 6, 1)
    )
    message = " ".join(_refusal(move)["status"])
    assert "2025-02-02 or later" in message and "“after” photo" in message
    space.refresh_from_db()
    assert space.condition == Condition.IN_RECOVERY
    assert not selectors.public_spaces().filter(pk=space.pk).exists()

    give_evidence(user, project, dt.date(2025, 5, 30))
    assert move().status == ProjectStatus.RECOVERED
    assert selectors.public_spaces().filter(pk=space.pk).exists()


def test_only_program_staff_publish_without_evidence_and_the_reason_is_kept(users):
    space = _space(users["norte"])
    project = _in_works(users["norte"], space)

    def publish(user, reason):
        return transition_project(
            user=user,
            project=project,
            to_status=ProjectStatus.RECOVERED,
            on=dt.date(2025, 6, 1),
            evidence_waiver=reason,
        )

    assert "evidence_waiver" in _refusal(lambda: publish(users["norte"], "Lo dice el alcalde"))
    project.refresh_from_db()
    assert project.status == ProjectStatus.IN_WORKS and project.evidence_waiver == ""

    done = publish(users["program"], "Acta de entrega firmada; fotos en el expediente 12")
    assert done.status == ProjectStatus.RECOVERED
    assert done.evidence_waived_by == users["program"]
    record = ChangeRecord.objects.filter(action="transition", object_id=done.pk).first()
    assert record.changes["evidence_waiver"] == [
        "",
        "Acta de entrega firmada; fotos en el expediente 12",
    ]


def test_people_cannot_set_a_public_condition_by_hand(users):
    user = users["norte"]
    for condition in (Condition.RECOVERED, Condition.MAINTAINED):
        assert "condition" in _refusal(
            lambda condition=condition: create_space(
                user=user,
                name="Atajo",
                kind=SpaceKind.PARK,
                geom=square(inside_norte().x, inside_norte().y),
                condition=condition,
            )
        )
    space = _space(user)
    assert "condition" in _refusal(
        lambda: update_space(user=user, space=space, changes={"condition": Condition.MAINTAINED})
    )
    space.refresh_from_db()
    assert space.condition == Condition.DEGRADED
    # Not public: still a choice of the person.
    update_space(user=user, space=space, changes={"condition": Condition.LOST_AGAIN})
    space.refresh_from_db()
    assert space.condition == Condition.LOST_AGAIN


def test_amounts_carry_the_regions_currency_or_a_valid_one(users, districts):
    user = users["norte"]
    region = districts["region"]
    assert region.currency == currency_for_time_zone(region.time_zone) == "PEN"
    project = create_project(
        user=user,
        space=_space(user),
        title="Obra",
        budget=Decimal("1500"),
        identified_on=dt.date(2025, 1, 10),
    )
    assert project.currency == "PEN"
    assert "currency" in _refusal(
        lambda: update_project(user=user, project=project, changes={"currency": "XYZ"})
    )
    assert update_project(user=user, project=project, changes={"currency": "usd"}).currency == "USD"

    Region.objects.filter(pk=region.pk).update(currency="", time_zone="UTC")
    other = _space(user, name="Plaza")
    refused = _refusal(
        lambda: create_project(user=user, space=other, title="Sin moneda", budget=Decimal("10"))
    )
    assert "has none" in refused["currency"][0]
    # No amount, no currency needed.
    assert create_project(user=user, space=other, title="Sin monto").currency == ""
