"""The time zone of an import's naive times (written without an offset): the --timezone
option, else the profile's, else the time zone of the region each row falls in, never the
server's. The import report states the zone(s) used and where each came from.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.utils.formats import number_format
from django.utils.translation import gettext

from incidents.services.bounds import IncidentFileError
from neighborhoods.selectors import region_list

if TYPE_CHECKING:
    from incidents.services.request import ImportRequest


ZONE_FROM_OPTION = "option"
ZONE_FROM_PROFILE = "profile"
ZONE_FROM_REGION = "region"


def zone_rule(request: ImportRequest) -> tuple[str | None, str]:
    """(zone, where it comes from) for times written without an offset: the --timezone
    option, else the profile's, else (None) the time zone of the region each row falls in,
    never the server's. An unknown zone name refuses the import."""
    if request.timezone:
        zone, origin = request.timezone, ZONE_FROM_OPTION
    elif request.profile is not None:
        zone, origin = request.profile.timezone, ZONE_FROM_PROFILE
    else:
        return None, ZONE_FROM_REGION
    check_zone(zone)
    return zone, origin


def check_zone(zone: str, whose: str = "--timezone") -> None:
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise IncidentFileError(
            gettext("unknown time zone %(zone)r (%(whose)s); write it like America/Lima")
            % {"zone": zone, "whose": whose}
        ) from None


def zone_record(request: ImportRequest, rows_by_region: dict[str, tuple[str, int]]) -> list[dict]:
    """The report's time zones: one entry for an option's or a profile's zone, else one per
    region the rows fell in (``rows_by_region``: region code -> (zone, rows))."""
    zone, origin = zone_rule(request)
    if zone is not None:
        entry = {"zone": zone, "origin": origin}
        if origin == ZONE_FROM_PROFILE:
            entry["profile"] = request.profile.name
        return [entry]
    return [
        {"zone": zone, "origin": ZONE_FROM_REGION, "region": code, "rows": rows}
        for code, (zone, rows) in sorted(rows_by_region.items())
    ]


def zone_lines(time_zones: list[dict]) -> list[str]:
    """The report's lines on the time zones of naive times (also the batch page's)."""
    if not time_zones:
        return [
            gettext(
                "times without an offset are read in the time zone of the region each row "
                "falls in (no row fell in a region)"
            )
        ]
    return [zone_line(entry) for entry in time_zones]


def zone_line(entry: dict) -> str:
    origin = entry.get("origin")
    if origin == ZONE_FROM_OPTION:
        return gettext("times without an offset read in %(zone)s (--timezone)") % entry
    if origin == ZONE_FROM_PROFILE:
        return gettext("times without an offset read in %(zone)s (profile %(profile)s)") % entry
    return gettext(
        "times without an offset read in %(zone)s, the time zone of region %(region)s "
        "(%(rows)s rows)"
    ) % {**entry, "rows": number_format(entry.get("rows", 0), force_grouping=True)}


@dataclass
class ImportZones:
    """The time zone of naive times (see zone_rule) and, when it is each row's
    region's, the zone of every region and the rows read in each."""

    zone: str | None
    region_zones: dict[int, str] | None = None
    region_codes: dict[int, str] = field(default_factory=dict)
    rows_by_region: dict[int, int] = field(default_factory=dict)

    @classmethod
    def for_request(cls, request: ImportRequest) -> ImportZones:
        zone, _ = zone_rule(request)
        if zone is not None:
            return cls(zone=zone)
        regions = list(region_list().values_list("pk", "code", "time_zone"))
        for _, code, region_zone in regions:
            check_zone(region_zone, whose=gettext("region %(region)s") % {"region": code})
        return cls(
            zone=None,
            region_zones={pk: region_zone for pk, _, region_zone in regions},
            region_codes={pk: code for pk, code, _ in regions},
        )

    def count(self, chunk) -> None:
        for region, rows in chunk.rows_by_region.items():
            self.rows_by_region[region] = self.rows_by_region.get(region, 0) + rows

    def by_code(self) -> dict[str, tuple[str, int]]:
        return {
            self.region_codes[region]: (self.region_zones[region], rows)
            for region, rows in self.rows_by_region.items()
            if region in self.region_codes
        }
