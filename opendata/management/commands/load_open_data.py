from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from common.reports import write_report
from incidents.services.bounds import IncidentFileError
from neighborhoods.services import BoundaryImportError
from opendata.packs import PACKS, PackNotFound, available_packs, load_pack


class Command(BaseCommand):
    help = (
        "Load a real public data pack (boundaries and, where published, incidents) or every "
        "pack found (all) from a folder of downloaded files. Safe to repeat: a second run "
        "changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("pack", choices=[*PACKS, "all"])
        parser.add_argument("--from", dest="data_dir", required=True, help="folder to search")
        parser.add_argument(
            "--dry-run", action="store_true", help="boundaries only, nothing written"
        )
        parser.add_argument(
            "--boundaries-only", action="store_true", help="load the boundaries, not the incidents"
        )

    def handle(self, *args, pack, data_dir, dry_run, boundaries_only, **options):
        data_dir = Path(data_dir)
        if pack == "all":
            packs = available_packs(data_dir)
            if not packs:
                known = "; ".join(
                    f"{p.name} ({', '.join(layer.file_name for layer in p.layers)})"
                    for p in PACKS.values()
                )
                raise CommandError(f"no data pack found under {data_dir}; known packs: {known}")
        else:
            packs = [PACKS[pack]]
        failed = False
        for item in packs:
            try:
                result = load_pack(
                    item, data_dir, dry_run=dry_run, with_incidents=not boundaries_only
                )
            except (PackNotFound, BoundaryImportError, IncidentFileError) as exc:
                raise CommandError(str(exc)) from None
            write_report(self, result, prefix=f"[{item.name}] ")
            failed |= not result.ok
        if failed:
            raise CommandError("some features were refused; that layer was not written")
