from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from neighborhoods.open_data import PACKS, PackNotFound, available_packs, load_pack
from neighborhoods.services import BoundaryImportError


class Command(BaseCommand):
    help = (
        "Load a real public boundary pack (lima, santiago, cdmx) or every pack found (all) "
        "from a folder of downloaded files. Safe to repeat: a second run changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("pack", choices=[*PACKS, "all"])
        parser.add_argument("--from", dest="data_dir", required=True, help="folder to search")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, pack, data_dir, dry_run, **options):
        data_dir = Path(data_dir)
        if pack == "all":
            packs = available_packs(data_dir)
            if not packs:
                raise CommandError(
                    f"no boundary pack found under {data_dir}; known packs: "
                    + "; ".join(
                        f"{p.name} ({', '.join(layer.file_name for layer in p.layers)})"
                        for p in PACKS.values()
                    )
                )
        else:
            packs = [PACKS[pack]]
        failed = False
        for item in packs:
            try:
                reports = load_pack(item, data_dir, dry_run=dry_run)
            except (PackNotFound, BoundaryImportError) as exc:
                raise CommandError(str(exc)) from None
            for report in reports:
                for line in report.lines():
                    (self.stdout if report.ok else self.stderr).write(f"[{item.name}] {line}")
                failed |= not report.ok
        if failed:
            raise CommandError("some features were refused; that layer was not written")
