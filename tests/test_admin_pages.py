"""Every registered admin model, for every role that may enter the admin: the changelist,
the change (or read-only view) page and the add page answer 200 when the role may see
them and 403 when it may not, never a server error.

Planners hold view-only permissions on most models, so their change pages are the
read-only rendering of each admin form (issue 10, item 4: two of them raised KeyError).
"""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse
from PIL import Image

from accounts.models import Role, StaffProfile
from hotspots.models import HotspotRun, HotspotValidation, HotspotZone
from incidents.models import RefusedRow
from incidents.tests.factories import make_incident
from neighborhoods.models import BoundarySource, District, Neighborhood
from publicspaces.models import ChangeRecord
from publicspaces.services.activities import log_activity
from publicspaces.services.photos import add_photo
from publicspaces.services.projects import create_project, get_or_create_partner
from publicspaces.services.spaces import create_space
from tests.geodata import grid_cell

pytestmark = pytest.mark.django_db

ROLES = ["superuser", "planner", "municipal", "program"]
REGISTERED = sorted(admin.site._registry, key=lambda model: model._meta.label)


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (90, 140, 60)).save(out, format="JPEG")
    return out.getvalue()


def _square(lon: float, lat: float, half: float = 0.0005) -> Polygon:
    return Polygon.from_bbox((lon - half, lat - half, lon + half, lat + half))


@pytest.fixture
def world(make_region, django_user_model, settings, tmp_path):
    """At least one object of every registered model, all inside district N1 (the
    municipal user's), and one staff user per role."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    region = make_region(
        "admintown",
        {"N1": ("Norte", grid_cell(0, 1)), "S1": ("Sur", grid_cell(0, 0))},
        neighborhoods={"N1-a": ("Barrio Norte A", grid_cell(0, 1))},
    )
    norte = District.objects.get(region=region, code="N1")
    source = BoundarySource.objects.create(slug="ign", name="IGN", licence="CC BY 4.0")
    norte.source = source
    norte.save(update_fields=["source"])

    users = {"superuser": django_user_model.objects.create_superuser("root", password="x")}
    for role in (Role.PLANNER, Role.MUNICIPAL, Role.PROGRAM):
        user = django_user_model.objects.create_user(str(role), password="x", is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        users[str(role)] = user
    StaffProfile.objects.create(user=users["municipal"], district=norte)

    municipal = users["municipal"]
    where = Point(-77.095, -12.085, srid=4326)
    space = create_space(
        user=municipal, name="Parque Norte", kind="park", geom=_square(where.x, where.y)
    )
    partner = get_or_create_partner(user=municipal, name="Vecinos", kind="community")
    project = create_project(
        user=municipal,
        space=space,
        title="Obra",
        identified_on=dt.date(2025, 1, 2),
        partners=[partner],
    )
    photo = add_photo(
        user=municipal,
        project=project,
        image=SimpleUploadedFile("a.jpg", _jpeg()),
        stage="before",
        caption="antes",
    )
    activity = log_activity(
        user=municipal,
        space=space,
        project=project,
        date=dt.date(2025, 2, 1),
        kind="clean_up",
        participants=12,
        title="Minga",
    )

    incident = make_incident(-77.095, -12.085, region=region, district=norte)
    RefusedRow.objects.create(batch=incident.batch, file_name="a.csv", row_number=2, reason="x")

    area = MultiPolygon(Polygon.from_bbox((-77.10, -12.09, -77.09, -12.08)), srid=4326)
    run = HotspotRun.objects.create(
        region=region,
        date_from=dt.date(2024, 1, 1),
        date_to=dt.date(2024, 6, 30),
        status=HotspotRun.Status.SUCCEEDED,
        progress=1.0,
        metric_srid=region.metric_srid,
        area_geom=area,
        area_m2=1.2e6,
        created_by=users["planner"],
        summary={"zones": 1, "incidents": 1, "cells": 1},
    )
    run.districts.add(norte)
    zone = HotspotZone.objects.create(
        run=run,
        rank=1,
        geom=area,
        cell_count=1,
        incident_count=1,
        area_m2=1.2e6,
        density_per_km2=0.8,
        share=1.0,
        top_categories=[{"code": "assault", "count": 1}],
    )
    validation = HotspotValidation.objects.create(
        run=run, eval_from=dt.date(2024, 7, 1), eval_to=dt.date(2024, 9, 30), report={}
    )
    with override_settings(TASKS={"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}):
        from django_tasks_db.models import DBTaskResult

        from hotspots.tasks import execute_hotspot_run

        execute_hotspot_run.enqueue(run.pk)
        task = DBTaskResult.objects.get()

    objects = {
        "auth.Group": Group.objects.get(name=Role.PLANNER),
        "auth.User": users["planner"],
        "django_tasks_database.DBTaskResult": task,
        "neighborhoods.BoundarySource": source,
        "neighborhoods.Region": region,
        "neighborhoods.District": norte,
        "neighborhoods.Neighborhood": Neighborhood.objects.get(region=region, code="N1-a"),
        "incidents.Category": incident.category,
        "incidents.IncidentSource": incident.source,
        "incidents.SourceLabel": incident.label,
        "incidents.ImportBatch": incident.batch,
        "incidents.Incident": incident,
        "hotspots.HotspotRun": run,
        "hotspots.HotspotZone": zone,
        "hotspots.HotspotValidation": validation,
        "publicspaces.PublicSpace": space,
        "publicspaces.RecoveryProject": project,
        "publicspaces.ProjectPhoto": photo,
        "publicspaces.Activity": activity,
        "publicspaces.Partner": partner,
        "publicspaces.ChangeRecord": ChangeRecord.objects.filter(space=space).first(),
    }
    return users, objects


def _may(user, model, *actions) -> bool:
    opts = model._meta
    return any(user.has_perm(f"{opts.app_label}.{a}_{opts.model_name}") for a in actions)


def test_every_registered_model_has_an_object_here(world):
    _users, objects = world
    # A newly registered model must be given an object in ``world`` to be swept.
    assert sorted(objects) == [model._meta.label for model in REGISTERED]
    assert all(obj is not None and obj.pk is not None for obj in objects.values()), objects


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("model", REGISTERED, ids=lambda model: model._meta.label)
def test_admin_pages_answer_without_server_error(client, world, model, role):
    users, objects = world
    user = users[role]
    obj = objects[model._meta.label]
    opts = model._meta
    client.raise_request_exception = True  # a 500 fails the test with its traceback
    client.force_login(user)
    may_see = _may(user, model, "view", "change")

    changelist = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert changelist.status_code == (200 if may_see else 403)
    if may_see:
        assert changelist.context["cl"].result_count >= 1

    change = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
    assert change.status_code == (200 if may_see else 403)
    if may_see:
        assert change.context["original"].pk == obj.pk

    model_admin = admin.site._registry[model]
    request = changelist.wsgi_request
    add = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
    assert add.status_code == (200 if model_admin.has_add_permission(request) else 403)


@pytest.mark.parametrize(
    "model_name", ["publicspace", "recoveryproject", "projectphoto", "activity", "partner"]
)
def test_planners_read_public_space_records_in_the_admin(client, world, model_name):
    users, objects = world
    client.force_login(users["planner"])
    obj = next(o for o in objects.values() if o._meta.model_name == model_name)
    page = client.get(reverse(f"admin:publicspaces_{model_name}_change", args=[obj.pk]))
    assert page.status_code == 200
    # Read-only: no save button and no editable inputs for the model's fields.
    assert not page.context["has_change_permission"]
    assert 'name="_save"' not in page.content.decode()
    shown = [name for _, opts in page.context["adminform"].fieldsets for name in opts["fields"]]
    # A step cannot be taken read-only: its two form-only fields are not shown empty.
    assert "next_status" not in shown and "step_date" not in shown
    if model_name == "recoveryproject":
        assert "identified_on" in shown and "space" in shown
