import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from hotspots import selectors, services
from hotspots.engine import HotspotRefused
from hotspots.engine.gistar import ALPHAS
from hotspots.engine.grid import CONTIGUITY, DISTANCE_BAND, KINDS
from incidents.models import Category, Family
from neighborhoods.models import District, Neighborhood, Region


def _date(raw: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise CommandError(f"not a date (YYYY-MM-DD): {raw}") from None


class Command(BaseCommand):
    help = (
        "Run a hotspot analysis synchronously (grid + Getis-Ord Gi* with FDR, hot zones), "
        "print its summary and optionally write the cells as GeoJSON. The same command "
        "twice writes byte-identical files."
    )

    def add_arguments(self, parser):
        parser.add_argument("--region", required=True, help="region code, e.g. demo")
        parser.add_argument("--district", action="append", default=[], metavar="CODE")
        parser.add_argument("--neighborhood", action="append", default=[], metavar="CODE")
        parser.add_argument("--from", dest="date_from", required=True, type=_date)
        parser.add_argument("--to", dest="date_to", required=True, type=_date, help="included")
        parser.add_argument("--family", choices=Family.values)
        parser.add_argument("--category", action="append", default=[], metavar="CODE")
        parser.add_argument(
            "--method", choices=[str(m) for m in services.SUPPORTED_METHODS], default="gistar"
        )
        parser.add_argument("--grid", choices=KINDS, default=services.DEFAULT_PARAMS["grid"])
        parser.add_argument(
            "--cell-size",
            type=float,
            metavar="METRES",
            help="square side or hexagon edge; default: chosen like Optimized Hot Spot Analysis",
        )
        parser.add_argument(
            "--distance-band",
            type=float,
            metavar="METRES",
            help="neighbours: cells whose centres are within this distance (default: touching cells)",
        )
        parser.add_argument(
            "--alpha",
            type=float,
            choices=ALPHAS,
            default=services.DEFAULT_PARAMS["alpha"],
            help="confidence of the hot/cold cells counted and merged into zones",
        )
        parser.add_argument("--no-fdr", action="store_true", help="bins without FDR correction")
        parser.add_argument("--permutations", type=int, default=0, metavar="N")
        parser.add_argument("--seed", type=int, default=services.DEFAULT_SEED, metavar="N")
        parser.add_argument("--output", type=Path, metavar="cells.geojson")

    def handle(self, *args, **options):
        region = Region.objects.filter(code=options["region"]).first()
        if region is None:
            raise CommandError(f"unknown region {options['region']!r}")
        districts = self._areas(District, region, options["district"])
        neighborhoods = self._areas(Neighborhood, region, options["neighborhood"])
        categories = list(Category.objects.filter(code__in=options["category"]))
        missing = sorted(set(options["category"]) - {c.code for c in categories})
        if missing:
            raise CommandError(f"unknown category code(s): {', '.join(missing)}")
        params = {
            "grid": options["grid"],
            "cell_size_m": options["cell_size"],
            "neighbour_rule": DISTANCE_BAND if options["distance_band"] else CONTIGUITY,
            "distance_band_m": options["distance_band"],
            "alpha": options["alpha"],
            "fdr": not options["no_fdr"],
            "permutations": options["permutations"],
            "seed": options["seed"],
        }
        try:
            run = services.create_run(
                region=region,
                date_from=options["date_from"],
                date_to=options["date_to"],
                districts=districts,
                neighborhoods=neighborhoods,
                family=options["family"] or "",
                categories=categories,
                method=options["method"],
                params=params,
            )
            self.stdout.write(
                f"hotspot run #{run.pk}: {region.code}, {run.date_from} to {run.date_to}"
            )
            run = services.execute_run(run=run, progress=self._progress)
        except HotspotRefused as exc:
            raise CommandError(f"refused: {exc}") from None
        self._print_summary(run)
        if options["output"]:
            written = selectors.write_cells_geojson(run, options["output"])
            self.stdout.write(f"cells written to {options['output']} ({written:,} bytes)")

    def _areas(self, model, region, codes):
        found = list(model.objects.filter(region=region, code__in=codes))
        missing = sorted(set(codes) - {a.code for a in found})
        if missing:
            raise CommandError(
                f"unknown {model._meta.verbose_name} code(s) in {region.code}: {', '.join(missing)}"
            )
        return found

    def _progress(self, fraction: float, step: str) -> None:
        self.stdout.write(f"  {fraction:4.0%} {step}")

    def _print_summary(self, run) -> None:
        s, p = run.summary, run.params
        out = self.stdout.write
        out(f"succeeded: {run.message}")
        cell = f"{p['grid']} cells of {p['cell_size_m']:g} m"
        if p.get("cell_size_reason"):
            cell += f" (automatic: {p['cell_size_reason']})"
        out(f"  grid: {cell}; {s['cells']:,} cells over {s['area_km2']:.2f} km², "
            f"{s['cells_with_incidents']:,} with incidents")  # fmt: skip
        rule = (
            f"distance band {p['distance_band_m']:g} m"
            if p["neighbour_rule"] == DISTANCE_BAND
            else "touching cells + itself"
        )
        out(f"  Gi*: neighbours {rule}; p-values {s['p_value']}; alpha {p['alpha']:g}; "
            f"FDR {'on' if p['fdr'] else 'off'}")  # fmt: skip
        out(f"  significant cells: {s['hot_cells']} hot, {s['cold_cells']} cold "
            f"(without FDR: {s['hot_cells_without_fdr']} hot, {s['cold_cells_without_fdr']} cold); "
            f"bins {s['bins']}")  # fmt: skip
        order = {step: n for n, step in enumerate(services.STEPS)}
        timings = ", ".join(
            f"{k} {v:.2f}s"
            for k, v in sorted(run.timings.items(), key=lambda kv: order.get(kv[0], 99))
        )
        out(f"  timings: {timings}")
        zones = list(selectors.zone_list(run))
        out(f"  zones: {len(zones)}")
        for zone in zones:
            centre = zone.geom.centroid
            top = ", ".join(f"{c['code']} {c['count']}" for c in zone.top_categories[:3])
            out(
                f"  #{zone.rank:<3} {zone.incident_count:>6,} incidents  {zone.cell_count:>4} cells  "
                f"{zone.area_m2 / 1e6:7.3f} km²  {zone.density_per_km2:>9,.0f}/km²  "
                f"{zone.share:6.1%}  at {centre.y:.5f}, {centre.x:.5f}  [{top}]"
            )
