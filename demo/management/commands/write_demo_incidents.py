from pathlib import Path

from django.core.management.base import BaseCommand

from incidents.demo import DEMO_SOURCE, write_demo_csv


class Command(BaseCommand):
    help = (
        "Write the demo city's sample incident file (CSV with id, fecha, hora, tipo, lat, lon "
        "and three bad rows) to try the import yourself."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)

    def handle(self, *args, path, **options):
        rows = write_demo_csv(path)
        self.stdout.write(f"wrote {rows} rows to {path}")
        self.stdout.write(
            f"try: python manage.py import_incidents {path} --source {DEMO_SOURCE} "
            "--id id --date fecha --time hora --category tipo --lat lat --lon lon "
            "--timezone America/Lima"
        )
