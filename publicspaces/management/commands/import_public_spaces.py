from django.core.management.base import BaseCommand, CommandError

from common.reports import write_report
from publicspaces.importing import SpaceImportError, import_space_files
from publicspaces.models import SpaceKind


class Command(BaseCommand):
    help = (
        "Import a public-space inventory from GeoJSON, GeoPackage or zipped Shapefile files. "
        "All or nothing: any refused feature writes nothing (exit 1) unless --skip-bad; the "
        "report names refused features by file and number. Re-importing changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+")
        parser.add_argument("--district", help="district code: every space must lie inside it")
        parser.add_argument("--region", help="region code, when the district code is ambiguous")
        parser.add_argument("--name-field", default="name", help="column with the name")
        parser.add_argument("--kind-field", default="kind", help="column with the kind")
        parser.add_argument(
            "--default-kind", choices=SpaceKind.values, help="kind of features without one"
        )
        parser.add_argument("--address-field", help="column with the address")
        parser.add_argument(
            "--id-field", help="column with the inventory's own id (re-imports update by it)"
        )
        parser.add_argument(
            "--source", default="import", help="inventory name, prefixed to the ids"
        )
        parser.add_argument("--crs", help="CRS of a file that declares none, e.g. EPSG:32718")
        parser.add_argument("--dry-run", action="store_true", help="report, write nothing")
        parser.add_argument(
            "--skip-bad", action="store_true", help="write the good features, report the rest"
        )

    def handle(self, *args, **options):
        try:
            report = import_space_files(
                paths=options["paths"],
                name_field=options["name_field"],
                kind_field=options["kind_field"],
                default_kind=options["default_kind"],
                address_field=options["address_field"],
                id_field=options["id_field"],
                source=options["source"],
                district=options["district"],
                region=options["region"],
                crs=options["crs"],
                dry_run=options["dry_run"],
                skip_bad=options["skip_bad"],
            )
        except SpaceImportError as exc:
            raise CommandError(str(exc)) from None
        write_report(self, report)
        if not report.ok and not options["skip_bad"]:
            raise CommandError(report.refusal())
