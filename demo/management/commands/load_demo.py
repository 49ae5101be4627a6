import tempfile

from django.core.management.base import BaseCommand, CommandError

from incidents.demo import load_demo_incidents
from neighborhoods.demo import load_demo_boundaries


class Command(BaseCommand):
    help = (
        "Load the built-in synthetic demo city: fictional boundaries and two years of "
        "generated incidents. Safe to repeat: a second run changes nothing."
    )

    def handle(self, *args, **options):
        for report in load_demo_boundaries():
            for line in report.lines():
                self.stdout.write(f"[demo] {line}")
            if not report.ok:
                raise CommandError("the demo city could not be loaded")
        with tempfile.TemporaryDirectory() as work_dir:
            result = load_demo_incidents(work_dir=work_dir)
        if result is None:
            self.stdout.write(
                "[demo] incidents: already loaded from the same file; nothing changed"
            )
            return
        for line in result.lines(limit=10):
            if not line.startswith("unclassified label"):
                self.stdout.write(f"[demo] incidents: {line}")
