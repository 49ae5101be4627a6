"""The planner's upload form: the options of ``manage.py import_incidents``, same names."""

from django import forms
from django.utils.translation import gettext_lazy as _

from incidents.models import Family, IncidentSource, LocationQuality
from incidents.profiles import PROFILES
from incidents.services.batches import (
    ALLOWED_SUFFIXES,
    COLUMN_OPTIONS,
    option_errors,
    upload_errors,
)
from incidents.services.bounds import IncidentFileError, check_upload
from incidents.services.previews import LOCATION_ROLES, ROLES


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """One or more files, cleaned to a list."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ",".join(ALLOWED_SUFFIXES)}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if isinstance(data, list | tuple):
            if not data and self.required:
                raise forms.ValidationError(self.error_messages["required"], code="required")
            return [super(MultipleFileField, self).clean(item, initial) for item in data]
        cleaned = super().clean(data, initial)
        return [cleaned] if cleaned else []


def _column(label, help_text=""):
    return forms.CharField(label=label, help_text=help_text, required=False, max_length=200)


class ImportUploadForm(forms.Form):
    files = MultipleFileField(
        label=_("Files"),
        help_text=_("CSV, GeoJSON or GeoPackage; several files import as one batch."),
    )
    profile = forms.ChoiceField(
        label=_("Profile"),
        required=False,
        choices=[("", _("None: name the columns below"))]
        + [(name, f"{name} — {profile.description}") for name, profile in PROFILES.items()],
        help_text=_("A known data set layout: its columns, time zone and label rules."),
    )
    source = forms.CharField(
        label=_("Source"),
        required=False,
        max_length=80,
        help_text=_(
            "Who published the data, e.g. cdmx-fgj (lowercase, digits, hyphens). "
            "Empty with a profile: the profile's source."
        ),
        widget=forms.TextInput(attrs={"list": "known-sources", "autocomplete": "off"}),
    )
    lat = _column(_("Latitude column"), _("WGS84 degrees."))
    lon = _column(_("Longitude column"), _("WGS84 degrees."))
    x = _column(_("X column"), _("Projected coordinates: give the CRS too."))
    y = _column(_("Y column"))
    crs = forms.CharField(
        label=_("CRS"),
        required=False,
        max_length=200,
        help_text=_("Of the X/Y columns, or of a vector file without one, e.g. EPSG:32718."),
    )
    id = _column(_("Id column"), _("The source's own id, unique per source."))
    date = _column(_("Date column"), _("Date, or date and time."))
    time = _column(_("Time column"), _("When the time is not in the date column."))
    date_end = _column(
        _("Window end date column"),
        _(
            "When the source gives a time window (between a start and an end): the date, or "
            "date and time, it ends. A date alone ends with that day."
        ),
    )
    time_end = _column(
        _("Window end time column"),
        _("When the end time is not in the end date column (alone: on the start's day)."),
    )
    category = _column(_("Category column"), _("The source's own label for the incident."))
    label = forms.CharField(
        label=_("Label for every row"),
        required=False,
        max_length=300,
        help_text=_(
            "For a file of one offence without a category column: every row gets this "
            "source label. Not with a category column."
        ),
    )
    timezone = forms.CharField(
        label=_("Time zone"),
        required=False,
        max_length=64,
        help_text=_(
            "Of times written without an offset, e.g. America/Lima. Empty: the profile's, "
            "else the time zone of the region each row falls in."
        ),
    )
    family = forms.ChoiceField(
        label=_("Family"),
        required=False,
        choices=[("", _("From the profile or the source"))] + list(Family.choices),
        help_text=_("For labels no rule maps to a category."),
    )
    location_quality = forms.ChoiceField(
        label=_("Location quality"),
        required=False,
        choices=[("", _("From the profile (else exact)"))] + list(LocationQuality.choices),
    )
    skip_bad = forms.BooleanField(
        label=_("Skip bad rows"),
        required=False,
        help_text=_(
            "Write the good rows and keep the refused ones in the report. Otherwise any "
            "refused row writes nothing."
        ),
    )
    dry_run = forms.BooleanField(
        label=_("Dry run"),
        required=False,
        help_text=_("Check everything and report, but write nothing."),
    )

    column_fields = COLUMN_OPTIONS

    def known_sources(self) -> list[str]:
        return list(IncidentSource.objects.order_by("name").values_list("name", flat=True))

    def clean(self):
        cleaned = super().clean()
        already_wrong = set(self.errors)
        for field, messages in option_errors(cleaned).items():
            if field in already_wrong:
                continue
            for message in messages:
                self.add_error(field if field in self.fields else None, message)
        files = cleaned.get("files")
        if files:
            for message in upload_errors(files):
                self.add_error("files", message)
            if "files" not in self.errors:
                # Too many columns or too long a row: said here, before anything is saved
                # (the import job checks again, for uploads through the API).
                for upload in files:
                    try:
                        check_upload(upload)
                    except IncidentFileError as exc:
                        self.add_error("files", str(exc))
        return cleaned


class ImportPreviewForm(ImportUploadForm):
    """The second step: the options again, and for each role a choice among the file's
    columns ("none" for a role it does not have). The files are kept on the server."""

    files = None

    def __init__(self, *args, header: list[str], tables: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.tables = tables
        choices = [("", _("— none —"))] + [(name, name) for name in header]
        for role in ROLES:
            if not tables and role in LOCATION_ROLES:
                del self.fields[role]
                continue
            declared = self.fields[role]
            self.fields[role] = forms.ChoiceField(
                label=declared.label,
                help_text=declared.help_text,
                required=False,
                choices=choices,
            )

    def role_fields(self) -> list:
        return [self[role] for role in ROLES if role in self.fields]

    def clean(self):
        cleaned = super().clean()
        chosen: dict[str, str] = {}
        for role in ROLES:
            column = cleaned.get(role)
            if role not in self.fields or not column:
                continue
            if column in chosen:
                self.add_error(
                    role,
                    _("The column “%(column)s” is already chosen for “%(role)s”.")
                    % {"column": column, "role": self.fields[chosen[column]].label},
                )
            else:
                chosen[column] = role
        if not cleaned.get("date") and "date" not in self.errors:
            self.add_error("date", _("Choose the column with the date."))
        if self.tables and not any(cleaned.get(role) for role in LOCATION_ROLES):
            self.add_error(
                "lon", _("Choose the longitude and latitude columns, or the X and Y columns.")
            )
        profile = PROFILES.get(cleaned.get("profile") or "")
        has_label = cleaned.get("label") or (profile and profile.constant_label)
        if not cleaned.get("category") and not has_label and "category" not in self.errors:
            self.add_error(
                "category", _("Choose the category column, or give a label for every row.")
            )
        return cleaned
