from django.core.management.base import BaseCommand, CommandError

from public.services.refresh import UnknownRegion, refresh_public_tables


class Command(BaseCommand):
    help = (
        "Rebuilds the public map's precomputed tables (H3 cell counts per month and public "
        "category, after the privacy rules of public/privacy.py) for one region or all."
    )

    def add_arguments(self, parser):
        parser.add_argument("--region", help="Code of the region (default: every region).")

    def handle(self, *args, region=None, **options):
        try:
            written = refresh_public_tables(region_code=region)
        except UnknownRegion as exc:
            raise CommandError(f"No region has the code {exc.args[0]!r}.") from exc
        if not written:
            self.stdout.write("No regions: nothing to refresh.")
        for code, rows in written.items():
            self.stdout.write(f"{code}: {rows} public rows written")
