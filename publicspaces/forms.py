"""Forms of the municipal pages (/municipality/). They only shape and type the input: every
rule (scope, the district border, transitions, dates, photos) is checked by
``publicspaces.services``, whose field messages come back onto these forms through
``add_service_errors``."""

from __future__ import annotations

from collections.abc import Mapping

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from publicspaces.geometry import parse_geojson_geometry
from publicspaces.models import (
    PUBLIC_CONDITIONS,
    Activity,
    Condition,
    Partner,
    ProjectPhoto,
    ProjectStatus,
    SpaceKind,
)
from publicspaces.services.spaces import AUDIT_ITEMS, AUDIT_LABELS


def date_widget() -> forms.DateInput:
    """<input type=date> only accepts yyyy-mm-dd: without a fixed format Django renders the
    active language's (01/11/2025 in Spanish) and the browser shows an empty field."""
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _blank(label):
    return [("", label)]


class _OwnIds:
    """Several forms share a space's page: each gets its own id namespace."""

    id_format = "id_%s"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", self.id_format)
        super().__init__(*args, **kwargs)


class SpaceForm(_OwnIds, forms.Form):
    """A space's own fields (the geometry has its own form)."""

    id_format = "space_%s"

    name = forms.CharField(label=_("Name"), max_length=200)
    kind = forms.ChoiceField(label=_("Kind"), choices=SpaceKind.choices)
    address = forms.CharField(label=_("Address"), max_length=300, required=False)
    condition = forms.ChoiceField(
        label=_("Condition"), choices=Condition.choices, initial=Condition.DEGRADED
    )
    notes = forms.CharField(
        label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, current_condition: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        # Recovered and maintained come from a recovery project (with its evidence), not
        # from this list; a space already in one of them keeps it as a choice.
        self.fields["condition"].choices = [
            (value, label)
            for value, label in Condition.choices
            if value not in PUBLIC_CONDITIONS or value == current_condition
        ]


def _clean_geometry(value: str):
    if not value:
        raise ValidationError(_("Draw the space on the map, or drop a point."))
    return parse_geojson_geometry(value)


class NewSpaceForm(SpaceForm):
    id_format = "id_%s"  # alone on the map page; its script reads id_geometry
    # GeoJSON geometry written by the map script (geoman's layer.toGeoJSON().geometry).
    geometry = forms.CharField(widget=forms.HiddenInput, required=False)

    def clean_geometry(self):
        return _clean_geometry(self.cleaned_data.get("geometry", ""))


class GeometryForm(forms.Form):
    geometry = forms.CharField(widget=forms.HiddenInput, required=False)
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)

    def clean_geometry(self):
        return _clean_geometry(self.cleaned_data.get("geometry", ""))


AUDIT_CHOICES = [("0", _("Bad")), ("1", _("Fair")), ("2", _("Good"))]
# For "incivility", 2 is the good answer: no signs.
INCIVILITY_CHOICES = [("0", _("Many signs")), ("1", _("Some signs")), ("2", _("No signs"))]


class AuditForm(_OwnIds, forms.Form):
    id_format = "audit_%s"
    audited_on = forms.DateField(label=_("Audited on"), required=False, widget=date_widget())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for item in AUDIT_ITEMS:
            self.fields[item] = forms.TypedChoiceField(
                label=AUDIT_LABELS.get(item, item),
                choices=_blank("—")
                + (INCIVILITY_CHOICES if item == "incivility" else AUDIT_CHOICES),
                coerce=int,
            )

    def answers(self) -> dict[str, int]:
        return {item: self.cleaned_data[item] for item in AUDIT_ITEMS}


class ProjectForm(_OwnIds, forms.Form):
    id_format = "project_%s"
    title = forms.CharField(label=_("Title"), max_length=200)
    identified_on = forms.DateField(label=_("Identified on"), required=False, widget=date_widget())
    works_description = forms.CharField(
        label=_("Works"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    budget = forms.DecimalField(label=_("Budget"), required=False, min_value=0, decimal_places=2)
    currency = forms.CharField(label=_("Currency (ISO code)"), max_length=3, required=False)
    funding_source = forms.CharField(label=_("Funding source"), max_length=200, required=False)
    partner_name = forms.CharField(label=_("Partner"), max_length=200, required=False)
    partner_kind = forms.ChoiceField(
        label=_("Partner type"),
        choices=_blank("—") + list(Partner.Kind.choices),
        required=False,
    )

    def clean(self):
        data = super().clean()
        if data.get("partner_name") and not data.get("partner_kind"):
            self.add_error("partner_kind", _("Choose the partner's type."))
        return data


class TransitionForm(forms.Form):
    to_status = forms.ChoiceField(choices=ProjectStatus.choices)
    date = forms.DateField(label=_("Date of the step"), required=False, widget=date_widget())
    note = forms.CharField(label=_("Note"), max_length=500, required=False)
    evidence_waiver = forms.CharField(
        label=_("Reason to publish without audit or “after” photo (program staff)"),
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class PhotoForm(forms.Form):
    stage = forms.ChoiceField(label=_("Stage"), choices=ProjectPhoto.Stage.choices)
    # A plain file field: the services validate and re-encode the image with Pillow.
    image = forms.FileField(
        label=_("Photo"),
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )
    caption = forms.CharField(label=_("Caption"), max_length=300, required=False)
    taken_on = forms.DateField(label=_("Taken on"), required=False, widget=date_widget())


class ActivityForm(_OwnIds, forms.Form):
    id_format = "activity_%s"
    date = forms.DateField(label=_("Date"), widget=date_widget())
    kind = forms.ChoiceField(label=_("Kind"), choices=Activity.Kind.choices)
    title = forms.CharField(label=_("Title"), max_length=200, required=False)
    organizer = forms.CharField(label=_("Organizer"), max_length=200, required=False)
    participants = forms.IntegerField(label=_("Participants"), min_value=0, initial=0)
    children = forms.IntegerField(label=_("Children (0-11)"), min_value=0, required=False)
    youth = forms.IntegerField(label=_("Youth (12-29)"), min_value=0, required=False)
    adults = forms.IntegerField(label=_("Adults (30-59)"), min_value=0, required=False)
    older_adults = forms.IntegerField(label=_("Older adults (60+)"), min_value=0, required=False)
    notes = forms.CharField(
        label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class SpaceFilterForm(forms.Form):
    """The list page's filters (GET); the CSV export reads the same ones."""

    q = forms.CharField(label=_("Search"), max_length=200, required=False)
    kind = forms.ChoiceField(
        label=_("Kind"), choices=_blank(_("All kinds")) + list(SpaceKind.choices), required=False
    )
    condition = forms.ChoiceField(
        label=_("Condition"),
        choices=_blank(_("All conditions")) + list(Condition.choices),
        required=False,
    )
    project_status = forms.ChoiceField(
        label=_("Project status"),
        choices=_blank(_("Any")) + [("none", _("No project"))] + list(ProjectStatus.choices),
        required=False,
    )


def add_service_errors(
    form: forms.Form, error: ValidationError, field_map: Mapping[str, str] | None = None
) -> None:
    """Puts a service's ValidationError on the form: each message next to its field
    (``field_map`` renames service fields, e.g. ``geom`` -> ``geometry``); messages about
    fields the form does not show go on top of the form."""
    field_map = dict(field_map or {})
    if not hasattr(error, "error_dict"):
        for message in error.messages:
            form.add_error(None, message)
        return
    for field, messages in error.message_dict.items():
        target = field_map.get(field, field)
        if target not in form.fields:
            target = None
        for message in messages:
            form.add_error(target, message)
