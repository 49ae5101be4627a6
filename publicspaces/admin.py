"""Admin for public spaces, scoped like the API: a municipal user's lists hold only their
district, another district's object is a 404, and every save goes through the services
(the same geometry rule, transitions and history as the API).

Each form runs its service once inside a rolled-back transaction while it validates, so a
refusal appears on the form's field instead of as a server error; ``save_model`` then
runs it for real.
"""

from __future__ import annotations

import shapely
from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from geo.admin import OfflineGISModelAdmin
from publicspaces.forms import add_service_errors
from publicspaces.geometry import from_shapely
from publicspaces.models import (
    Activity,
    ChangeRecord,
    Partner,
    ProjectPhoto,
    ProjectStatus,
    PublicSpace,
    RecoveryProject,
)
from publicspaces.photos import clean_photo
from publicspaces.scope import scope_for
from publicspaces.services.activities import (
    ACTIVITY_FIELDS,
    delete_activity,
    log_activity,
    update_activity,
)
from publicspaces.services.common import NotAllowed, OutOfScope
from publicspaces.services.photos import add_photo, delete_photo
from publicspaces.services.projects import (
    allowed_transitions,
    create_project,
    delete_project,
    transition_project,
    update_project,
)
from publicspaces.services.spaces import SPACE_FIELDS, create_space, delete_space, update_space


class _DryRun(Exception):
    pass


class ServiceForm(forms.ModelForm):
    """A ModelForm whose ``apply(user)`` calls a service; ``clean`` tries it and rolls
    back, turning ValidationError into form errors."""

    request = None  # set per request by ScopedAdmin.get_form

    def apply(self, user):
        raise NotImplementedError

    def service_values(self, fields) -> dict:
        """The cleaned values of ``fields`` for the service: all of them for a new object,
        those the user changed for an existing one."""
        new = self.instance.pk is None
        return {f: self.cleaned_data[f] for f in fields if new or f in self.changed_data}

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            with transaction.atomic():
                self.apply(self.request.user)
                raise _DryRun
        except _DryRun:
            pass
        except ValidationError as exc:
            add_service_errors(self, exc)
        except (NotAllowed, OutOfScope) as exc:
            self.add_error(None, str(exc))
        return cleaned


class ScopedAdmin(admin.ModelAdmin):
    # Path from the model to the space's district, for the scope filter.
    district_path = "district"

    def get_queryset(self, request):
        return scope_for(request.user).visible(super().get_queryset(request), self.district_path)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            # Django would redirect to the index with "does not exist"; out of scope is
            # indistinguishable from missing, and both are a 404.
            raise Http404
        return obj

    def _district_id(self, obj):
        for part in self.district_path.split("__")[:-1]:
            obj = getattr(obj, part)
        return getattr(obj, f"{self.district_path.split('__')[-1]}_id")

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        if obj is None or not allowed:
            return allowed
        return scope_for(request.user).may_edit_district(self._district_id(obj))

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        if obj is None or not allowed:
            return allowed
        return scope_for(request.user).may_edit_district(self._district_id(obj))

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.request = request  # a new class per call: safe to set on it
        return form

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        scope = scope_for(request.user)
        if db_field.related_model is PublicSpace:
            kwargs["queryset"] = scope.editable(PublicSpace.objects.all())
        elif db_field.related_model is RecoveryProject:
            kwargs["queryset"] = scope.editable(RecoveryProject.objects.all(), "space__district")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        saved = form.apply(request.user)
        obj.__dict__.update(saved.__dict__)

    def save_related(self, request, form, formsets, change):
        # The services wrote the relations (partners) themselves.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


# --- spaces ------------------------------------------------------------------------------------


class PublicSpaceForm(ServiceForm):
    service_fields = SPACE_FIELDS

    class Meta:
        model = PublicSpace
        fields = list(SPACE_FIELDS)

    def clean_geom(self):
        geom = self.cleaned_data.get("geom")
        if geom is None:
            return geom
        return from_shapely(shapely.from_wkb(bytes(geom.wkb)))

    def apply(self, user):
        values = self.service_values(self.service_fields)
        if self.instance.pk is None:
            return create_space(user=user, **values)
        return update_space(user=user, space=self.instance, changes=values)


@admin.register(PublicSpace)
class PublicSpaceAdmin(ScopedAdmin, OfflineGISModelAdmin):
    form = PublicSpaceForm
    list_display = ["name", "kind", "condition", "condition_score", "district", "is_demo"]
    list_filter = ["kind", "condition", "is_demo", "region"]
    search_fields = ["name", "address"]
    list_select_related = ["district"]
    readonly_fields = [
        "region",
        "district",
        "neighborhood",
        "condition_score",
        "audit",
        "audited_on",
        "recovered_on",
        "is_demo",
        "version",
        "created_at",
        "updated_at",
    ]

    def delete_model(self, request, obj):
        delete_space(user=request.user, space=obj)


# --- projects ----------------------------------------------------------------------------------


RECOVERY_PROJECT_FORM_FIELDS = [
    "space",
    "title",
    "identified_on",
    "works_description",
    "budget",
    "spent",
    "currency",
    "funding_source",
    "partners",
    "notes",
]
ACTIVITY_FORM_FIELDS = ["space", *ACTIVITY_FIELDS]


class RecoveryProjectForm(ServiceForm):
    next_status = forms.ChoiceField(
        label=_("move to"),
        required=False,
        help_text=_("One step of the lifecycle; its date is the date below (today if empty)."),
    )
    step_date = forms.DateField(label=_("date of the step"), required=False)
    # Not "evidence_waiver": the model's field of that name is set by the service only.
    publish_reason = forms.CharField(
        label=_("reason to publish without audit or photo"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_(
            "Program staff only: moving to recovered needs an audit since the works started "
            "and an “after” photo, or this reason."
        ),
    )

    class Meta:
        model = RecoveryProject
        fields = RECOVERY_PROJECT_FORM_FIELDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A view-only user (a planner) gets the form with its model fields left out: the
        # admin shows them read-only, so only the fields present are adjusted.
        status = self.instance.status if self.instance.pk else ProjectStatus.IDENTIFIED
        if "next_status" in self.fields:
            self.fields["next_status"].choices = [("", "—")] + [
                (s, ProjectStatus(s).label) for s in allowed_transitions(status)
            ]
        if "identified_on" in self.fields:
            self.fields["identified_on"].required = False
        if self.instance.pk and "space" in self.fields:
            self.fields["space"].disabled = True

    def apply(self, user):
        data = self.cleaned_data
        values = self.service_values(f for f in RECOVERY_PROJECT_FORM_FIELDS if f != "space")
        if "partners" in values:
            values["partners"] = list(values["partners"])
        if self.instance.pk is None:
            project = create_project(user=user, space=data["space"], **values)
        else:
            project = update_project(user=user, project=self.instance, changes=values)
        if data.get("next_status"):
            project = transition_project(
                user=user,
                project=project,
                to_status=data["next_status"],
                on=data["step_date"],
                evidence_waiver=data.get("publish_reason") or "",
            )
        return project


class ProjectPhotoInline(admin.TabularInline):
    model = ProjectPhoto
    fields = ["stage", "image", "caption", "width", "height"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(RecoveryProject)
class RecoveryProjectAdmin(ScopedAdmin):
    form = RecoveryProjectForm
    district_path = "space__district"
    list_display = ["title", "space", "status", "identified_on", "recovered_on", "is_demo"]
    list_filter = ["status", "is_demo"]
    search_fields = ["title", "space__name"]
    list_select_related = ["space"]
    readonly_fields = [
        "status",
        "planned_on",
        "works_started_on",
        "recovered_on",
        "maintained_on",
        "cancelled_on",
        "is_demo",
    ]
    inlines = [ProjectPhotoInline]

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is not None and not self.has_change_permission(request, obj):
            # Read-only (a planner): no step can be taken, so the two form-only step
            # fields would only show as empty lines.
            fields = [f for f in fields if f not in ("next_status", "step_date", "publish_reason")]
        return fields

    def delete_model(self, request, obj):
        delete_project(user=request.user, project=obj)


class ProjectPhotoForm(ServiceForm):
    # A plain file field, as on the pages: the model's ImageField would have Pillow open
    # the upload first and call an image too large "not an image"; clean_photo says why.
    image = forms.FileField(
        label=_("image"),
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )

    class Meta:
        model = ProjectPhoto
        fields = ["project", "stage", "image", "caption", "taken_on"]

    def apply(self, user):
        data = self.cleaned_data
        if self.instance.pk is not None:
            raise ValidationError(_("A photo cannot be changed; delete it and upload another."))
        image = data["image"]
        image.seek(0)
        return add_photo(
            user=user,
            project=data["project"],
            image=image,
            stage=data["stage"],
            caption=data["caption"],
            taken_on=data["taken_on"],
        )

    def clean(self):
        # Pillow's check only: the dry run would write the file to storage.
        cleaned = forms.ModelForm.clean(self)
        if self.instance.pk is None and cleaned.get("image") is not None:
            try:
                clean_photo(cleaned["image"])
            except ValidationError as exc:
                self.add_error("image", exc.message_dict.get("image", exc.messages))
        return cleaned


@admin.register(ProjectPhoto)
class ProjectPhotoAdmin(ScopedAdmin):
    form = ProjectPhotoForm
    district_path = "project__space__district"
    list_display = ["project", "stage", "caption", "uploaded_at", "is_demo"]
    list_filter = ["stage", "is_demo"]
    list_select_related = ["project"]

    def get_readonly_fields(self, request, obj=None):
        return ["project", "stage", "image", "caption", "taken_on"] if obj else []

    def has_change_permission(self, request, obj=None):
        # Photos are replaced, not edited: the change view is read-only.
        return False if obj is not None else super().has_change_permission(request, obj)

    def delete_model(self, request, obj):
        delete_photo(user=request.user, photo=obj)


# --- activities, partners, history --------------------------------------------------------


class ActivityForm(ServiceForm):
    class Meta:
        model = Activity
        fields = ACTIVITY_FORM_FIELDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Absent from a view-only user's form (shown read-only instead).
        if self.instance.pk and "space" in self.fields:
            self.fields["space"].disabled = True

    def apply(self, user):
        values = self.service_values(f for f in ACTIVITY_FORM_FIELDS if f != "space")
        if self.instance.pk is None:
            return log_activity(user=user, space=self.cleaned_data["space"], **values)
        return update_activity(user=user, activity=self.instance, changes=values)


@admin.register(Activity)
class ActivityAdmin(ScopedAdmin):
    form = ActivityForm
    district_path = "space__district"
    list_display = ["space", "kind", "date", "participants", "is_demo"]
    list_filter = ["kind", "is_demo"]
    search_fields = ["space__name", "title", "organizer"]
    list_select_related = ["space"]

    def delete_model(self, request, obj):
        delete_activity(user=request.user, activity=obj)


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ["name", "kind"]
    list_filter = ["kind"]
    search_fields = ["name"]


@admin.register(ChangeRecord)
class ChangeRecordAdmin(ScopedAdmin):
    district_path = "space__district"
    list_display = ["at", "username", "action", "object_type", "object_repr", "space"]
    list_filter = ["action", "object_type"]
    search_fields = ["object_repr", "username", "space__name"]
    list_select_related = ["space"]
    readonly_fields = [
        "at",
        "username",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "space",
        "changes",
    ]
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
