import tempfile

from django.core.management.base import BaseCommand, CommandError

from demo.basemap import ensure_demo_basemap
from demo.hotspots import ensure_demo_runs
from hotspots.engine import HotspotRefused
from incidents.demo import load_demo_incidents
from neighborhoods.demo import load_demo_boundaries
from publicspaces.demo import load_demo_spaces


class Command(BaseCommand):
    help = (
        "Load the built-in synthetic demo city: fictional boundaries, two years of "
        "generated incidents and hotspot runs over them. Safe to repeat: a second run "
        "changes nothing."
    )

    def handle(self, *args, **options):
        for report in load_demo_boundaries():
            for line in report.lines():
                self.stdout.write(f"[demo] {line}")
            if not report.ok:
                raise CommandError("the demo city could not be loaded")
        self.stdout.write(f"[demo] {ensure_demo_basemap()}")
        for line in load_demo_spaces():
            self.stdout.write(f"[demo] {line}")
        with tempfile.TemporaryDirectory() as work_dir:
            result = load_demo_incidents(work_dir=work_dir)
        if result is None:
            self.stdout.write(
                "[demo] incidents: already loaded from the same file; nothing changed"
            )
        else:
            for line in result.lines(limit=10):
                if not line.startswith("unclassified label"):
                    self.stdout.write(f"[demo] incidents: {line}")
        try:
            lines = ensure_demo_runs()
        except HotspotRefused as exc:
            raise CommandError(f"the demo hotspot runs were refused: {exc}") from None
        for line in lines:
            self.stdout.write(f"[demo] {line}")
