from django.core.management.base import BaseCommand, CommandError

from neighborhoods.demo import DEMO_REGION_CODE, DEMO_REGION_NAME, build_demo_city
from neighborhoods.services import SourceInfo, import_boundary_frame

DEMO_SOURCE = SourceInfo(
    slug="barrio-demo",
    name="Ciudad Demo",
    attribution="Ciudad Demo: datos sintéticos generados por Barrio / synthetic demo data",
    licence="CC0 (generated)",
    synthetic=True,
)


class Command(BaseCommand):
    help = "Load the built-in synthetic demo city (fictional boundaries). Safe to repeat."

    def handle(self, *args, **options):
        districts, neighborhoods = build_demo_city()
        for read, level, parent in (
            (districts, "district", None),
            (neighborhoods, "neighborhood", "district_code"),
        ):
            report = import_boundary_frame(
                read=read,
                path="demo city (generated)",
                region_code=DEMO_REGION_CODE,
                level=level,
                code_field="code",
                name_field="name",
                parent_field=parent,
                population_field="population",
                region_name=DEMO_REGION_NAME,
                source=DEMO_SOURCE,
                synthetic=True,
            )
            for line in report.lines():
                self.stdout.write(f"[demo] {line}")
            if not report.ok:
                raise CommandError("the demo city could not be loaded")
