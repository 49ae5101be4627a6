import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.gis.geos import LineString, Point
from django.core.exceptions import ValidationError
from django.utils import translation

from publicspaces import selectors
from publicspaces.models import (
    Activity,
    ChangeRecord,
    Condition,
    Partner,
    ProjectStatus,
    PublicSpace,
    RecoveryProject,
    SpaceKind,
)
from publicspaces.services.activities import log_activity
from publicspaces.services.common import NotAllowed, OutOfScope, VersionConflict, save
from publicspaces.services.projects import (
    create_project,
    delete_project,
    get_or_create_partner,
    transition_project,
)
from publicspaces.services.spaces import (
    AUDIT_ITEMS,
    compute_condition_score,
    create_space,
    record_audit,
    update_space,
)
from publicspaces.tests.conftest import (
    BORDER_LAT,
    give_evidence,
    inside_norte,
    inside_sur,
    square,
)

pytestmark = pytest.mark.django_db

GOOD_AUDIT = {
    "lighting": 2,
    "cleanliness": 1,
    "furniture": 1,
    "vegetation": 2,
    "visibility": 2,
    "incivility": 0,
}


def _park(user, where=None, **kwargs):
    where = where or inside_norte()
    return create_space(
        user=user,
        name=kwargs.pop("name", "Parque Central"),
        kind=kwargs.pop("kind", SpaceKind.PARK),
        geom=square(where.x, where.y),
        **kwargs,
    )


def test_a_space_gets_its_district_and_neighborhood_from_its_geometry(users, districts):
    space = _park(users["program"])
    assert space.district == districts["norte"]
    assert space.region == districts["region"]
    assert space.neighborhood.code == "N1-a"
    assert space.responsible_municipality == "Norte"

    south = _park(users["program"], where=inside_sur(), name="Losa Sur")
    assert south.district == districts["sur"] and south.neighborhood is None


def test_municipal_user_creates_only_inside_their_district(users, districts):
    space = _park(users["norte"])
    assert space.district == districts["norte"]
    with pytest.raises(ValidationError) as refused:
        _park(users["norte"], where=inside_sur(), name="Ajeno")
    assert "Norte" in refused.value.message_dict["geom"][0]
    # A polygon straddling the border is refused too (only part of it is outside).
    with pytest.raises(ValidationError):
        create_space(
            user=users["norte"],
            name="Cruza",
            kind=SpaceKind.PARK,
            geom=square(-77.095, BORDER_LAT, half=0.002),
        )
    assert PublicSpace.objects.count() == 1


def test_a_point_a_metre_past_the_border_is_within_the_tolerance(users, settings):
    settings.PUBLICSPACES_SCOPE_TOLERANCE_M = 2.0
    # ~1.1 m south of the border (1e-5 degrees of latitude).
    lamp = create_space(
        user=users["norte"],
        name="Poste",
        kind=SpaceKind.LIGHTING_POINT,
        geom=Point(-77.095, BORDER_LAT - 0.00001, srid=4326),
    )
    assert lamp.district.code == "N1"
    settings.PUBLICSPACES_SCOPE_TOLERANCE_M = 0.5
    with pytest.raises(ValidationError):
        create_space(
            user=users["norte"],
            name="Poste 2",
            kind=SpaceKind.LIGHTING_POINT,
            geom=Point(-77.096, BORDER_LAT - 0.00001, srid=4326),
        )


def test_moving_a_space_out_of_the_district_is_refused_and_keeps_the_old_geometry(users):
    space = _park(users["norte"])
    old = space.geom.wkt
    south = inside_sur()
    with pytest.raises(ValidationError) as refused:
        update_space(user=users["norte"], space=space, changes={"geom": square(south.x, south.y)})
    assert "geom" in refused.value.message_dict
    space.refresh_from_db()
    assert space.geom.wkt == old
    assert not ChangeRecord.objects.filter(action=ChangeRecord.Action.UPDATED).exists()


def test_program_staff_may_move_a_space_to_another_district(users, districts):
    space = _park(users["program"])
    south = inside_sur()
    moved = update_space(
        user=users["program"], space=space, changes={"geom": square(south.x, south.y)}
    )
    assert moved.district == districts["sur"] and moved.version == 2


def test_other_districts_and_other_roles_cannot_edit(users):
    space = _park(users["norte"])
    with pytest.raises(OutOfScope):
        update_space(user=users["sur"], space=space, changes={"name": "Mío"})
    with pytest.raises(OutOfScope):
        update_space(user=users["planner"], space=space, changes={"name": "x"})
    with pytest.raises(NotAllowed):
        _park(users["planner"])
    with pytest.raises(NotAllowed):
        _park(users["nobody"])
    space.refresh_from_db()
    assert space.name == "Parque Central"


def test_fields_the_user_may_not_set_are_refused(users, districts):
    space = _park(users["norte"])
    with pytest.raises(ValidationError) as refused:
        update_space(user=users["norte"], space=space, changes={"district": districts["sur"]})
    assert "district" in refused.value.message_dict


def test_lines_only_for_lighting_stretches(users):
    line = LineString((-77.099, -12.085), (-77.095, -12.085), srid=4326)
    with pytest.raises(ValidationError) as refused:
        create_space(user=users["norte"], name="L", kind=SpaceKind.PARK, geom=line)
    assert "geom" in refused.value.message_dict
    stretch = create_space(
        user=users["norte"], name="Jr. Luz", kind=SpaceKind.LIGHTING_STRETCH, geom=line
    )
    assert stretch.geom.geom_type == "LineString"


def test_version_conflict(users):
    space = _park(users["norte"])
    update_space(user=users["norte"], space=space, changes={"name": "A"})
    with pytest.raises(VersionConflict):
        update_space(user=users["norte"], space=space, changes={"name": "B"}, expected_version=1)


def test_audit_score(users):
    assert compute_condition_score(GOOD_AUDIT) == round(100 * 8 / 12)
    assert compute_condition_score(dict.fromkeys(AUDIT_ITEMS, 2)) == 100
    assert compute_condition_score(dict.fromkeys(AUDIT_ITEMS, 0)) == 0
    with pytest.raises(ValidationError):
        compute_condition_score({**GOOD_AUDIT, "lighting": 3})
    with pytest.raises(ValidationError):
        compute_condition_score({"lighting": 1})
    space = record_audit(user=users["norte"], space=_park(users["norte"]), answers=GOOD_AUDIT)
    assert space.condition_score == 67 and space.audit == GOOD_AUDIT


def _project(user, space, **kwargs):
    return create_project(
        user=user,
        space=space,
        title="Recuperación",
        identified_on=kwargs.pop("identified_on", dt.date(2025, 1, 10)),
        **kwargs,
    )


def test_project_lifecycle_updates_the_space(users):
    user = users["norte"]
    space = _park(user)
    partner = get_or_create_partner(user=user, name="ONG Verde", kind=Partner.Kind.NGO)
    project = _project(user, space, budget=Decimal("15000"), partners=[partner])
    for status, day, condition in [
        (ProjectStatus.PLANNED, dt.date(2025, 2, 1), Condition.DEGRADED),
        (ProjectStatus.IN_WORKS, dt.date(2025, 3, 1), Condition.IN_RECOVERY),
        (ProjectStatus.RECOVERED, dt.date(2025, 6, 1), Condition.RECOVERED),
        (ProjectStatus.MAINTAINED, dt.date(2025, 12, 1), Condition.MAINTAINED),
    ]:
        if status == ProjectStatus.RECOVERED:
            give_evidence(user, project, day)
        project = transition_project(user=user, project=project, to_status=status, on=day)
        space.refresh_from_db()
        assert project.status == status and space.condition == condition
    assert project.planned_on == dt.date(2025, 2, 1)
    assert project.recovered_on == dt.date(2025, 6, 1)
    assert space.recovered_on == dt.date(2025, 6, 1)
    assert list(project.partners.all()) == [partner]
    transitions = ChangeRecord.objects.filter(space=space, action="transition")
    assert transitions.count() == 4
    assert transitions.first().changes["status"] == ["recovered", "maintained"]
    assert "space" not in transitions.last().changes  # planned: the space is unchanged
    assert transitions.first().changes["space"]["condition"] == ["recovered", "maintained"]


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ([], ProjectStatus.IN_WORKS),
        ([], ProjectStatus.RECOVERED),
        ([ProjectStatus.PLANNED], ProjectStatus.MAINTAINED),
        ([ProjectStatus.PLANNED, ProjectStatus.IN_WORKS], ProjectStatus.PLANNED),
        ([ProjectStatus.CANCELLED], ProjectStatus.PLANNED),
    ],
)
def test_invalid_transitions_are_refused_naming_both_states(users, path, bad):
    user = users["norte"]
    project = _project(user, _park(user))
    for step in path:
        project = transition_project(
            user=user, project=project, to_status=step, on=dt.date(2025, 2, 1)
        )
    before = project.status
    with pytest.raises(ValidationError) as refused:
        transition_project(user=user, project=project, to_status=bad)
    message = refused.value.message_dict["status"][0]
    assert str(ProjectStatus(before).label) in message
    assert str(ProjectStatus(bad).label) in message
    project.refresh_from_db()
    assert project.status == before


def test_a_step_date_before_the_previous_one_or_in_the_future_is_refused(users):
    user = users["norte"]
    project = _project(user, _park(user))
    with pytest.raises(ValidationError) as refused:
        transition_project(user=user, project=project, to_status="planned", on=dt.date(2024, 1, 1))
    assert "date" in refused.value.message_dict
    with pytest.raises(ValidationError):
        transition_project(
            user=user,
            project=project,
            to_status="planned",
            on=dt.date.today() + dt.timedelta(days=5),
        )
    project.refresh_from_db()
    assert project.status == "identified" and project.planned_on is None


def test_cancelling_works_puts_the_space_back_to_degraded(users):
    user = users["norte"]
    space = _park(user)
    project = _project(user, space)
    for step in ("planned", "in_works"):
        project = transition_project(
            user=user, project=project, to_status=step, on=dt.date(2025, 2, 1)
        )
    transition_project(user=user, project=project, to_status="cancelled")
    space.refresh_from_db()
    assert space.condition == Condition.DEGRADED
    # A new project may start once the previous one is closed.
    assert _project(user, space).status == "identified"


def test_one_open_project_per_space(users):
    user = users["norte"]
    space = _park(user)
    _project(user, space)
    with pytest.raises(ValidationError):
        _project(user, space)
    assert RecoveryProject.objects.count() == 1


def test_a_constraint_caught_only_by_the_database_is_told_in_words_not_in_sql(users):
    """Two requests racing past the checks: the second is stopped by the database, and the
    user reads what went wrong, never the SQL error (table, key, values)."""
    user = users["norte"]
    space = _park(user)
    _project(user, space)
    racing = RecoveryProject(
        space=space, title="Otra", identified_on=dt.date(2025, 1, 11), created_by=user
    )

    with translation.override("en"), pytest.raises(ValidationError) as caught:
        save(racing)

    assert caught.value.messages == [
        "This space already has a recovery project that is not finished."
    ]
    assert RecoveryProject.objects.count() == 1

    overspent = RecoveryProject.objects.get()
    overspent.budget = Decimal("-1")
    with translation.override("en"), pytest.raises(ValidationError) as caught:
        save(overspent)
    (message,) = caught.value.messages
    assert message == "The data break a rule of the database (recoveryproject_budget_positive)."
    assert "DETAIL" not in message and "violates" not in message


def test_activity_age_groups_cannot_exceed_participants(users):
    user = users["norte"]
    space = _park(user)
    with pytest.raises(ValidationError) as refused:
        log_activity(
            user=user,
            space=space,
            date=dt.date(2025, 7, 1),
            kind=Activity.Kind.SPORT,
            participants=10,
            children=8,
            youth=5,
        )
    assert "participants" in refused.value.message_dict
    activity = log_activity(
        user=user,
        space=space,
        date=dt.date(2025, 7, 1),
        kind=Activity.Kind.SPORT,
        participants=20,
        children=8,
        youth=5,
    )
    assert activity.adults is None
    with pytest.raises(OutOfScope):
        log_activity(user=users["sur"], space=space, date=dt.date(2025, 7, 1), kind="sport")


def test_activity_project_must_be_of_the_same_space(users):
    user = users["norte"]
    a, b = _park(user, name="A"), _park(user, name="B", where=inside_norte(0.002, 0.002))
    project = _project(user, a)
    with pytest.raises(ValidationError) as refused:
        log_activity(user=user, space=b, project=project, date=dt.date(2025, 7, 1), kind="sport")
    assert "project" in refused.value.message_dict


def test_history_lists_every_change_with_who(users):
    user = users["norte"]
    space = _park(user)
    update_space(user=user, space=space, changes={"name": "Parque Nuevo"})
    project = _project(user, space)
    transition_project(user=user, project=project, to_status="planned", on=dt.date(2025, 2, 1))
    log_activity(user=user, space=space, date=dt.date(2025, 7, 1), kind="meeting")
    history = list(selectors.space_history(space))
    assert [(r.object_type, r.action) for r in reversed(history)] == [
        ("publicspace", "created"),
        ("publicspace", "updated"),
        ("recoveryproject", "created"),
        ("recoveryproject", "transition"),
        ("activity", "created"),
    ]
    assert all(r.username == "muni-norte" for r in history)
    assert history[3].changes["name"] == ["Parque Central", "Parque Nuevo"]


def test_scoped_querysets(users):
    north = _park(users["norte"])
    south = _park(users["sur"], where=inside_sur(), name="Sur")
    assert list(selectors.spaces_visible_to(users["norte"])) == [north]
    assert list(selectors.spaces_visible_to(users["sur"])) == [south]
    assert set(selectors.spaces_visible_to(users["program"])) == {north, south}
    assert set(selectors.spaces_visible_to(users["planner"])) == {north, south}
    assert not selectors.spaces_visible_to(users["nobody"]).exists()
    with pytest.raises(PublicSpace.DoesNotExist):
        selectors.get_visible_space(user=users["norte"], pk=south.pk)


def test_a_geometry_in_another_crs_is_stored_in_wgs84(users):
    point = inside_norte()
    point.transform(32718)
    space = create_space(user=users["norte"], name="UTM", kind=SpaceKind.LIGHTING_POINT, geom=point)
    space.refresh_from_db()
    assert space.geom.srid == 4326
    assert abs(space.geom.x - inside_norte().x) < 1e-7


def _recover(user, space, title, start: dt.date, to=ProjectStatus.RECOVERED):
    project = create_project(user=user, space=space, title=title, identified_on=start)
    path = [ProjectStatus.PLANNED, ProjectStatus.IN_WORKS, ProjectStatus.RECOVERED]
    if to == ProjectStatus.IN_WORKS:
        path = path[:2]
    for offset, status in enumerate(path, start=1):
        day = start + dt.timedelta(days=offset)
        if status == ProjectStatus.RECOVERED:
            give_evidence(user, project, day)
        project = transition_project(user=user, project=project, to_status=status, on=day)
    return project


def test_deleting_the_project_that_recovered_a_space_takes_the_space_back(users):
    user = users["norte"]
    space = _park(user)
    project = _recover(user, space, "Única", dt.date(2024, 1, 1))
    space.refresh_from_db()
    assert (space.condition, space.recovered_on) == (Condition.RECOVERED, dt.date(2024, 1, 4))
    version = space.version
    delete_project(user=user, project=project)
    space.refresh_from_db()
    # No project left to say it was recovered: degraded, with no date, off the public map.
    assert (space.condition, space.recovered_on) == (Condition.DEGRADED, None)
    assert space.version == version + 1
    assert not selectors.public_spaces().filter(pk=space.pk).exists()
    record = ChangeRecord.objects.filter(space=space, action="deleted").get()
    assert record.object_id == project.pk and record.object_type == "recoveryproject"
    assert record.changes["space"] == {
        "condition": ["recovered", "degraded"],
        "recovered_on": ["2024-01-04", None],
    }


def test_deleting_a_later_project_falls_back_to_the_earlier_one(users):
    user = users["norte"]
    space = _park(user)
    _recover(user, space, "Primera", dt.date(2023, 1, 1))
    second = _recover(user, space, "Segunda", dt.date(2024, 1, 1), to=ProjectStatus.IN_WORKS)
    space.refresh_from_db()
    assert (space.condition, space.recovered_on) == (Condition.IN_RECOVERY, dt.date(2023, 1, 4))
    delete_project(user=user, project=second)
    space.refresh_from_db()
    assert (space.condition, space.recovered_on) == (Condition.RECOVERED, dt.date(2023, 1, 4))


def test_deleting_a_project_keeps_a_condition_set_by_hand_since(users):
    user = users["norte"]
    space = _park(user)
    project = _recover(user, space, "Única", dt.date(2024, 1, 1))
    update_space(user=user, space=space, changes={"condition": Condition.LOST_AGAIN})
    delete_project(user=user, project=project)
    space.refresh_from_db()
    assert (space.condition, space.recovered_on) == (Condition.LOST_AGAIN, None)
    record = ChangeRecord.objects.filter(space=space, action="deleted").get()
    assert record.changes["space"] == {"recovered_on": ["2024-01-04", None]}
