from django.core.management.base import BaseCommand, CommandError

from common.reports import write_report
from neighborhoods.services import LEVELS, BoundaryImportError, import_boundaries


class Command(BaseCommand):
    help = (
        "Load district or neighborhood boundaries from a GeoJSON, GeoPackage or zipped "
        "Shapefile into a region (created when missing), upserting by code, all or nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--region", required=True, help="region code, e.g. lima")
        parser.add_argument("--level", required=True, choices=LEVELS)
        parser.add_argument("--code-field", required=True)
        parser.add_argument("--name-field", required=True)
        parser.add_argument(
            "--parent-field",
            help="neighborhoods: field holding the district's code or name "
            "(without it the district is found spatially)",
        )
        parser.add_argument("--population-field")
        parser.add_argument("--region-name", help="name for a region created by this load")
        parser.add_argument("--crs", help="CRS of a file that has none, e.g. EPSG:32718")
        parser.add_argument(
            "--time-zone",
            "--timezone",
            dest="time_zone",
            help="IANA time zone of the region, e.g. America/Lima (default for a new region: "
            "the time zone of its location; UTC only where none is found, at sea)",
        )
        parser.add_argument(
            "--metric-crs",
            help="projected CRS in metres for the region's distances, areas and grids, e.g. "
            "EPSG:32718 or 32718 (default for a new region: the UTM zone of its centre)",
        )
        parser.add_argument(
            "--dissolve",
            action="store_true",
            help="merge the features that share a code into one (a district published in "
            "several pieces) instead of refusing the file",
        )
        parser.add_argument("--dry-run", action="store_true", help="report, write nothing")

    def handle(self, *args, **options):
        try:
            report = import_boundaries(
                path=options["path"],
                region_code=options["region"],
                level=options["level"],
                code_field=options["code_field"],
                name_field=options["name_field"],
                parent_field=options["parent_field"],
                population_field=options["population_field"],
                region_name=options["region_name"],
                crs=options["crs"],
                time_zone=options["time_zone"],
                metric_crs=options["metric_crs"],
                dissolve=options["dissolve"],
                dry_run=options["dry_run"],
            )
        except BoundaryImportError as exc:
            if exc.report is not None:
                for line in exc.report.lines():
                    self.stderr.write(line)
            raise CommandError(str(exc)) from None
        write_report(self, report)
        if not report.ok:
            raise CommandError(report.refusal())
