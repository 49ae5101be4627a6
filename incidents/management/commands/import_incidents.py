import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.utils.translation import gettext as _

from incidents.models import Family, LocationQuality
from incidents.profiles import PROFILES
from incidents.services.bounds import IncidentFileError
from incidents.services.imports import ImportInterrupted, ImportRefused, import_incidents
from incidents.services.reading import ColumnMapping
from incidents.services.request import ImportRequest, profile_named


class Command(BaseCommand):
    help = (
        "Import incidents from CSV, GeoJSON or GeoPackage files. All or nothing: any refused "
        "row writes nothing (exit 1) unless --skip-bad. Re-importing the same file changes "
        "nothing. Row numbers count the CSV header as row 1, like a spreadsheet."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--source", required=True, help="source name, e.g. cdmx-fgj")
        parser.add_argument("--profile", choices=list(PROFILES), help="known data set layout")
        parser.add_argument("--lat", help="latitude column (WGS84)")
        parser.add_argument("--lon", help="longitude column (WGS84)")
        parser.add_argument("--x", help="projected X column (needs --crs)")
        parser.add_argument("--y", help="projected Y column (needs --crs)")
        parser.add_argument("--crs", help="CRS of --x/--y or of a vector file without one")
        parser.add_argument("--id", help="column with the source's own id (unique per source)")
        parser.add_argument("--date", help="date (or date-time) column")
        parser.add_argument("--time", help="time column, when separate from the date")
        parser.add_argument(
            "--date-end",
            help="column with the date (or date-time) a time window ends: the incident "
            "happened between the start and this (a date alone: the end of that day)",
        )
        parser.add_argument(
            "--time-end",
            help="column with the time a window ends, when separate from --date-end "
            "(without --date-end: on the day the window starts)",
        )
        parser.add_argument("--category", help="column with the source's label")
        parser.add_argument(
            "--label",
            help="the same source label for every row, for a file of one offence without a "
            "category column (not with --category)",
        )
        parser.add_argument(
            "--timezone",
            help="time zone of naive times, e.g. America/Lima (default: the profile's, else "
            "the time zone of the region each row falls in)",
        )
        parser.add_argument(
            "--exact-columns",
            action="store_true",
            help="only the columns given (--lat, --date, ...) play a role: none is taken "
            "from the profile or guessed from its name",
        )
        parser.add_argument("--family", choices=[f.value for f in Family])
        parser.add_argument("--location-quality", choices=[q.value for q in LocationQuality])
        parser.add_argument("--dry-run", action="store_true")
        parser.add_argument(
            "--keep-indexes",
            action="store_true",
            help="keep the incident table's indexes current row by row even when the import "
            "brings more rows than the table holds (slower, but readers of incidents never "
            "wait for it)",
        )
        parser.add_argument(
            "--skip-bad",
            action="store_true",
            help="write the good rows; keep refused ones with reasons in the batch report",
        )

    def handle(self, *args, **options):
        # Refusals speak the site's language (LANGUAGE_CODE); the report's lines are
        # English whoever prints them (ImportResult.lines).
        try:
            request = ImportRequest(
                paths=options["paths"],
                source=options["source"],
                profile=profile_named(options["profile"]),
                columns=ColumnMapping(
                    id=options["id"],
                    date=options["date"],
                    time=options["time"],
                    date_end=options["date_end"],
                    time_end=options["time_end"],
                    category=options["category"],
                    constant_label=options["label"],
                    lat=options["lat"],
                    lon=options["lon"],
                    x=options["x"],
                    y=options["y"],
                    crs=options["crs"],
                ),
                timezone=options["timezone"],
                family=options["family"],
                location_quality=options["location_quality"],
                skip_bad=options["skip_bad"],
                dry_run=options["dry_run"],
                keep_indexes=options["keep_indexes"],
                exact_columns=options["exact_columns"],
            )
            result = import_incidents(request=request, progress=self._progress_bar(options))
        except IncidentFileError as exc:
            raise CommandError(str(exc)) from None
        except ImportRefused as exc:
            self._close_bar()
            for line in exc.result.lines():
                self.stderr.write(line)
            raise CommandError(str(exc)) from None
        except ImportInterrupted as exc:
            # Lost database: a message, no traceback; the batch is failed or will be.
            self._close_bar()
            raise CommandError(str(exc)) from None
        except DatabaseError as exc:
            self._close_bar()
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            raise CommandError(
                _("The import stopped on a database error: %(error)s") % {"error": lines[0]}
            ) from None
        self._close_bar()
        for line in result.lines():
            self.stdout.write(line)
        if result.batch_id:
            self.stdout.write(f"import batch #{result.batch_id}")

    _bar = None

    def _progress_bar(self, options):
        # tqdm writes to the real stream: Django's OutputWrapper adds a newline per write.
        if options["verbosity"] == 0 or not sys.stderr.isatty():
            return None
        from tqdm import tqdm

        self._bar = tqdm(total=100, unit="%", file=sys.stderr, desc="import", leave=False)

        def update(fraction: float) -> None:
            self._bar.n = round(100 * fraction, 1)
            self._bar.refresh()

        return update

    def _close_bar(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
