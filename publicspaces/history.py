"""The change history of a space as its page shows it. Change records keep what the
services wrote (field names, choice codes, ids, GeoJSON); the page shows verbose names,
choice labels and names in the reader's language, and says "shape changed" instead of a
vertex list.
"""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.utils import translation
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from neighborhoods.models import District, Neighborhood
from publicspaces import selectors
from publicspaces.models import (
    Activity,
    ChangeRecord,
    Partner,
    ProjectPhoto,
    PublicSpace,
    RecoveryProject,
)
from publicspaces.services.spaces import AUDIT_LABELS, AUDIT_MAX

HISTORY_LIMIT = 200


def _short(value, limit: int = 80) -> str:
    text = "—" if value in (None, "") else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Records keep ids for these fields (language- and rename-neutral); the page shows names.
_NAMED_FIELDS = {
    "district": (District, "name"),
    "neighborhood": (Neighborhood, "name"),
    "project": (RecoveryProject, "title"),
    "partners": (Partner, "name"),
}


_HISTORY_EXTRA_LABELS = {"size": gettext_lazy("Size (pixels)")}


def _shape_text(value: dict) -> str:
    kind = str(value.get("type", ""))
    if kind.endswith("Point"):
        return _("a point")
    if kind.endswith("LineString"):
        return _("a line")
    return _("an area")


class _HistoryNames:
    """The names behind the ids the records of one page keep, fetched once per model."""

    def __init__(self, records):
        wanted: dict[str, set[int]] = {f: set() for f in _NAMED_FIELDS}

        def collect(field, value):
            if field not in wanted:
                return
            values = value if isinstance(value, list) else [value]
            for item in values:
                if isinstance(item, list):
                    collect(field, item)
                elif isinstance(item, int) and not isinstance(item, bool):
                    wanted[field].add(item)

        for record in records:
            for field, value in (record.changes or {}).items():
                if field == "space" and isinstance(value, dict):
                    for sub, pair in value.items():
                        collect(sub, pair)
                else:
                    collect(field, value)
        self.names = {
            field: dict(model.objects.filter(pk__in=ids).values_list("pk", attr)) if ids else {}
            for field, ids in wanted.items()
            for model, attr in [_NAMED_FIELDS[field]]
        }

    def show(self, field: str, value):
        names = self.names.get(field)
        if names is not None:
            if isinstance(value, list):
                return ", ".join(str(self.show(field, v)) for v in value) or None
            if isinstance(value, int) and not isinstance(value, bool):
                # The object was deleted since: its id is all that is left.
                return names.get(value, f"#{value}")
        return value


def _change(model, name: str, old, new, *, names: _HistoryNames, created: bool = False) -> dict:
    """A changed field as the reader's language shows it: records keep field names, choice
    codes ("kind": "park") and ids; the page shows verbose names, choice labels, names."""
    try:
        field = model._meta.get_field(name)
    except (AttributeError, FieldDoesNotExist):
        label, choices = _HISTORY_EXTRA_LABELS.get(name, name), {}
    else:
        label = capfirst(getattr(field, "verbose_name", name))
        choices = {str(k): v for k, v in field.flatchoices} if field.choices else {}
    if any(isinstance(v, dict) and "coordinates" in v for v in (old, new)):
        # A vertex list says nothing to a reader: what kind of shape, and that it changed.
        if created:
            return {"field": label, "old": None, "new": _shape_text(new)}
        return {"field": label, "old": None, "new": _("shape changed")}

    def show(value):
        if name == "audit" and isinstance(value, dict):
            value = ", ".join(
                f"{AUDIT_LABELS.get(k, k)}: {v}/{AUDIT_MAX}" for k, v in value.items()
            )
        elif name == "size" and isinstance(value, list):
            value = " × ".join(str(v) for v in value)
        elif isinstance(value, str):
            value = choices.get(value, value)
        else:
            value = names.show(name, value)
        return _short(value)

    return {"field": label, "old": None if created else show(old), "new": show(new)}


def _labels_in_every_language(choices) -> dict[str, str]:
    """Choice label (in any of the site's languages) -> code."""
    found = {}
    for language, _name in settings.LANGUAGES:
        with translation.override(language):
            found.update({str(label): value for value, label in choices})
    return found


def _record_title(record: ChangeRecord) -> str:
    """The record's title in the reader's language. Titles of activities ("Workshop
    2024-02-01") and photos ("Project — Before") were stored in the writer's language:
    their choice label is read back to its code and shown in the reader's."""
    title = record.object_repr
    changes = record.changes or {}

    def code(key, choices, stored_label):
        value = changes.get(key)
        if isinstance(value, list) and value:
            value = value[-1]
        if isinstance(value, str) and value in dict(choices):
            return value
        return _labels_in_every_language(choices).get(stored_label)

    if record.object_type == "activity" and " " in title:
        label, date = title.rsplit(" ", 1)
        kind = code("kind", Activity.Kind.choices, label)
        if kind:
            return f"{Activity.Kind(kind).label} {date}"
    elif record.object_type == "projectphoto" and " — " in title:
        project, label = title.rsplit(" — ", 1)
        stage = code("stage", ProjectPhoto.Stage.choices, label)
        if stage:
            return f"{project} — {ProjectPhoto.Stage(stage).label}"
    return title


def history_rows(space: PublicSpace) -> list[dict]:
    """The space's latest changes (HISTORY_LIMIT at most), newest first, as its page shows
    them: each record with its title and its changed fields in the reader's language."""
    models_by_type = {
        m._meta.model_name: m for m in apps.get_app_config("publicspaces").get_models()
    }
    records = list(selectors.space_history(space)[:HISTORY_LIMIT])
    names = _HistoryNames(records)
    rows = []
    for record in records:
        model = models_by_type.get(record.object_type)
        # Creations and deletions keep the saved values, not [old, new] pairs.
        snapshot = record.action in (ChangeRecord.Action.CREATED, ChangeRecord.Action.DELETED)
        changes = []
        for field, value in (record.changes or {}).items():
            if isinstance(value, list) and len(value) == 2 and not snapshot:
                changes.append(_change(model, field, value[0], value[1], names=names))
            elif isinstance(value, dict) and field == "space":
                for sub, pair in value.items():
                    if isinstance(pair, list) and len(pair) == 2:
                        changes.append(_change(PublicSpace, sub, pair[0], pair[1], names=names))
            else:
                changes.append(_change(model, field, None, value, names=names, created=True))
        # A transition moves the project's and the space's date together: say it once.
        seen, unique = set(), []
        for change in changes:
            key = (str(change["field"]), change["old"], change["new"])
            if key not in seen:
                seen.add(key)
                unique.append(change)
        rows.append({"record": record, "title": _record_title(record), "changes": unique})
    return rows
