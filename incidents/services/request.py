"""What an incident import is asked to do and what it reports: ImportRequest (the files, the
source, the profile and the column options) and ImportResult (the counts, the refused rows,
the report lines the command prints), and the resolution of a file's columns into the
roles the reading needs (explicit options, then the profile, then names guessed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.utils import translation
from django.utils.translation import gettext

from common.reports import DRY_RUN_LINE
from incidents.models import ImportBatch
from incidents.profiles import PROFILES, Profile
from incidents.services.bounds import IncidentFileError
from incidents.services.reading import ColumnMapping, RefusedRow
from incidents.services.zones import zone_lines

VECTOR_SUFFIXES = {".geojson", ".json", ".gpkg"}

_LAT_NAMES = ("lat", "latitude", "latitud", "y_lat")
_LON_NAMES = ("lon", "lng", "long", "longitude", "longitud", "x_lon")
# Without a profile, columns with these exact names (any case) play these roles. The id is
# never guessed: a column named "id" may be a row number that is not unique per source.
# Nor are a window's ends: a derived id includes them, so a guess would change ids.
_GUESSED_NAMES = {
    "date": ("date", "datetime", "occurred_at", "fecha"),
    "time": ("time", "hora"),
    "category": ("category", "type", "offense", "crime_type", "delito"),
}


@dataclass
class ImportRequest:
    paths: Sequence[Path]
    source: str
    profile: Profile | None = None
    columns: ColumnMapping = field(default_factory=ColumnMapping)
    timezone: str | None = None
    family: str | None = None
    location_quality: str | None = None
    skip_bad: bool = False
    dry_run: bool = False
    # Never set the table's indexes aside, however large the import (see
    # staging._set_indexes_aside).
    keep_indexes: bool = False
    # Only the columns given play a role: none is taken from the profile or guessed from
    # its name (a mapping chosen in the upload preview, where "none" means none).
    exact_columns: bool = False


@dataclass
class ImportResult:
    batch_id: int | None
    dry_run: bool
    status: str
    files: list[dict]
    rows_read: int = 0
    rows_created: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    rows_unassigned: int = 0
    refused: list[RefusedRow] = field(default_factory=list)
    unmapped_labels: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    duration_s: float = 0.0
    # The secondary indexes set aside during a bulk load and built again before the commit.
    indexes_rebuilt: list[str] = field(default_factory=list)
    # The time zone(s) naive times were read in, and where each came from (zones.zone_rule);
    # None until the files are read.
    time_zones: list[dict] | None = None
    # The label every row was given (--label), when the files have no category column.
    constant_label: str | None = None

    @property
    def rows_refused(self) -> int:
        return len(self.refused)

    def lines(self, *, limit: int = 200) -> list[str]:
        """The report as the commands print it, in English like its plain-text lines (the
        batch page translates the time-zone and label lines itself): under LANGUAGE_CODE
        es those came out in Spanish among English ones."""
        with translation.override("en"):
            return self._lines(limit)

    def _lines(self, limit: int) -> list[str]:
        written = "would be written" if self.dry_run else "written"
        if self.status == ImportBatch.Status.FAILED:
            written = "NOT written"
        out = [
            f"{self.rows_read} rows read from {len(self.files)} file(s) in {self.duration_s:.1f} s: "
            f"{self.rows_created} created, {self.rows_updated} updated, {self.rows_unchanged} "
            f"unchanged ({written}), {self.rows_refused} refused, "
            f"{self.rows_unassigned} inside a region but outside all its districts"
        ]
        if self.time_zones is not None:
            out.extend(zone_lines(self.time_zones))
        if self.constant_label is not None:
            out.append(
                gettext("every row has the label %(label)r (--label)")
                % {"label": self.constant_label}
            )
        if self.indexes_rebuilt:
            out.append(
                "more rows than the incident table held: its indexes were built once after "
                f"loading instead of row by row ({', '.join(self.indexes_rebuilt)})"
            )
        for label, count in sorted(self.unmapped_labels.items(), key=lambda kv: (-kv[1], kv[0])):
            out.append(f"unclassified label (map it to a category): {label!r} × {count}")
        for row in self.refused[:limit]:
            # Vector files are numbered by feature, CSV files by spreadsheet row.
            unit = "feature" if Path(row.file_name).suffix.lower() in VECTOR_SUFFIXES else "row"
            out.append(f"refused: {row.file_name} {unit} {row.row_number}: {row.reason}")
        if self.rows_refused > limit:
            out.append(
                f"… and {self.rows_refused - limit} more refused rows (see the batch report)"
            )
        if self.status == ImportBatch.Status.FAILED:
            out.append(
                "nothing was written: fix the refused rows, or run again with --skip-bad to "
                "write the good rows and keep the refused ones in the batch report"
            )
        elif self.dry_run:
            out.append(DRY_RUN_LINE)
        return out


# Column roles, in the order they are resolved; a profile names candidates for these.
_ROLES = ("id", "date", "time", "date_end", "time_end", "category", "lat", "lon", "x", "y")
_PROFILE_ROLES = ("id", "date", "time", "date_end", "time_end", "category", "lat", "lon")


def _first_present(candidates: Sequence[str], header: list[str]) -> str | None:
    lowered = {h.lower(): h for h in header}
    for name in candidates:
        if name in header:
            return name
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None


def guess_columns(header: list[str], profile: Profile | None = None) -> dict[str, str | None]:
    """Role -> the column the import would take for it without explicit options (the
    profile's, else one with a usual name), None where none would be; never raises."""
    guessed: dict[str, str | None] = dict.fromkeys(_ROLES)
    for role in _ROLES:
        if profile is not None and role in _PROFILE_ROLES:
            guessed[role] = _first_present(getattr(profile, role), header)
        elif profile is None and role in _GUESSED_NAMES:
            guessed[role] = _first_present(_GUESSED_NAMES[role], header)
    if not (guessed["lat"] and guessed["lon"]):
        guessed["lat"] = guessed["lat"] or _first_present(_LAT_NAMES, header)
        guessed["lon"] = guessed["lon"] or _first_present(_LON_NAMES, header)
    return guessed


def resolve_columns(request: ImportRequest, header: list[str], file_name: str) -> ColumnMapping:
    """Explicit options win over the profile; the profile over name guessing (neither
    with ``exact_columns``)."""
    given = request.columns
    profile = request.profile
    label = given.constant_label.strip() if given.constant_label is not None else None
    mapping = ColumnMapping(crs=given.crs, constant_label=label)
    if given.constant_label is not None and not 0 < len(given.constant_label.strip()) <= 300:
        raise IncidentFileError(gettext("--label must have 1 to 300 characters"))
    if given.constant_label is not None and given.category:
        raise IncidentFileError(
            gettext(
                "--label gives every row the same label and --category reads each row's "
                "label from a column: give one or the other"
            )
        )
    for role in _ROLES:
        explicit = getattr(given, role)
        if role == "category" and given.constant_label is not None:
            continue  # --label: no category column is looked for
        if explicit:
            if explicit not in header:
                raise IncidentFileError(
                    f"{file_name}: column {explicit!r} (--{role.replace('_', '-')}) not found; "
                    "columns are: " + ", ".join(header)
                )
            setattr(mapping, role, explicit)
        elif request.exact_columns:
            continue
        elif profile is not None and role in _PROFILE_ROLES:
            setattr(mapping, role, _first_present(getattr(profile, role), header))
        elif profile is None and role in _GUESSED_NAMES:
            setattr(mapping, role, _first_present(_GUESSED_NAMES[role], header))
    if profile is not None and mapping.constant_label is None and mapping.category is None:
        mapping.constant_label = profile.constant_label
    if mapping.x or mapping.y:
        if not (mapping.x and mapping.y):
            raise IncidentFileError("--x and --y go together")
    elif not (mapping.lat and mapping.lon):
        if request.exact_columns:
            raise IncidentFileError(
                f"{file_name}: no latitude/longitude columns given (--lat/--lon or --x/--y)"
            )
        mapping.lat = mapping.lat or _first_present(_LAT_NAMES, header)
        mapping.lon = mapping.lon or _first_present(_LON_NAMES, header)
        if not (mapping.lat and mapping.lon):
            projected = _first_present(("x", "easting", "x_coord"), header)
            hint = (
                f" It has projected columns ({projected!r}…): use --x/--y with --crs EPSG:XXXX."
                if projected
                else ""
            )
            raise IncidentFileError(
                f"{file_name}: no latitude/longitude columns found; name them with --lat/--lon "
                f"or --x/--y --crs.{hint} Columns are: " + ", ".join(header)
            )
    if not mapping.date:
        raise IncidentFileError(
            f"{file_name}: no date column; name it with --date. Columns are: " + ", ".join(header)
        )
    if (mapping.date_end or mapping.time_end) and profile is not None and profile.month_only:
        raise IncidentFileError(
            gettext(
                "%(file)s: profile %(profile)s gives months only; its rows have no time "
                "window to end (--date-end/--time-end)"
            )
            % {"file": file_name, "profile": profile.name}
        )
    if not mapping.category and not mapping.constant_label:
        raise IncidentFileError(
            f"{file_name}: no category column; name it with --category, or give every row "
            "one label with --label. Columns are: " + ", ".join(header)
        )
    return mapping


def profile_named(name: str | None) -> Profile | None:
    if name is None:
        return None
    try:
        return PROFILES[name]
    except KeyError:
        raise IncidentFileError(
            f"unknown profile {name!r}; known profiles: {', '.join(PROFILES)}"
        ) from None
