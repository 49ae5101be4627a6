import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from hotspots import exports, selectors
from hotspots.engine import HotspotRefused
from hotspots.engine.gistar import ALPHAS
from hotspots.engine.grid import CONTIGUITY, DISTANCE_BAND, KINDS, ORIGINS
from hotspots.services.context import STEPS
from hotspots.services.params import (
    ANALYSIS_AREAS,
    GLOBAL_WINDOWS,
    STEP_KINDS,
    SUPPORTED_METHODS,
    Method,
)
from hotspots.services.runs import create_run, execute_run
from hotspots.services.validation import validate_run
from incidents.models import Category, Family
from neighborhoods.models import District, Neighborhood, Region

GRID_METHODS = {Method.GISTAR, Method.EMERGING}
# Methods on a grid of cells with a neighbour rule (forecast: for its Gi* candidate).
CELL_METHODS = GRID_METHODS | {Method.FORECAST}
# option dest -> (parameter, methods it applies to)
OPTION_PARAMS = {
    "grid": ("grid", CELL_METHODS),
    "cell_size": ("cell_size_m", CELL_METHODS | {Method.KDE}),
    "distance_band": ("distance_band_m", CELL_METHODS),
    "grid_origin": ("grid_origin", CELL_METHODS | {Method.KDE}),
    "analysis_area": ("analysis_area", CELL_METHODS | {Method.KDE}),
    "alpha": ("alpha", GRID_METHODS),
    "no_fdr": ("fdr", GRID_METHODS),
    "permutations": ("permutations", {Method.GISTAR}),
    "seed": ("seed", {Method.GISTAR}),
    "stability": ("stability", {Method.GISTAR}),
    "step": ("step", {Method.EMERGING}),
    "time_lag": ("time_lag", {Method.EMERGING}),
    "global_window": ("global_window", {Method.EMERGING}),
    "bandwidth": ("bandwidth_m", {Method.KDE}),
    "eps": ("eps_m", {Method.DBSCAN}),
    "min_points": ("min_points", {Method.DBSCAN}),
    "concave_ratio": ("concave_ratio", {Method.DBSCAN}),
    "coverage": ("coverage", {Method.FORECAST}),
    "holdout": ("holdout", {Method.FORECAST}),
    "half_lives": ("half_lives_days", {Method.FORECAST}),
    "max_zone_km2": ("max_zone_km2", {Method.GISTAR, Method.FORECAST}),
}


def _half_lives(raw: str) -> list[float]:
    try:
        return [float(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise CommandError(f"not a list of days (e.g. 14,30,90): {raw}") from None


def _date(raw: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise CommandError(f"not a date (YYYY-MM-DD): {raw}") from None


def _option(dest: str) -> str:
    return "--" + dest.replace("_", "-")


class Command(BaseCommand):
    help = (
        "Run a hotspot analysis synchronously (grid + Getis-Ord Gi* with FDR and hot zones, "
        "DBSCAN clusters, kernel density or emerging hot spots), print its summary and "
        "optionally validate it against a later period, write its result as GeoJSON (cells, "
        "or zones for dbscan) and an HTML report. The same command twice writes "
        "byte-identical GeoJSON files."
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
            "--method", choices=[str(m) for m in SUPPORTED_METHODS], default="gistar"
        )
        grid = parser.add_argument_group("grid methods (gistar, emerging; --cell-size also kde)")
        grid.add_argument("--grid", choices=KINDS, help="default hex")
        grid.add_argument(
            "--cell-size",
            type=float,
            metavar="METRES",
            help="square side or hexagon edge; default: chosen like Optimized Hot Spot Analysis "
            "(kde: the area's shorter side / 250)",
        )
        grid.add_argument(
            "--grid-origin",
            choices=ORIGINS,
            help="where cells are anchored: crs, at multiples of the cell size from the metric "
            "CRS origin (default; runs share cells), or area, at the lower-left corner of the "
            "analysis area's bounding box (as sf::st_make_grid and sfhotspot do)",
        )
        grid.add_argument(
            "--analysis-area",
            choices=ANALYSIS_AREAS,
            help="boundary: the districts/neighbourhoods chosen, else the region (default); "
            "points-hull: the convex hull of the incidents buffered by half a cell "
            "(sfhotspot's grid)",
        )
        grid.add_argument(
            "--distance-band",
            type=float,
            metavar="METRES",
            help="neighbours: cells whose centres are within this distance (default: touching cells)",
        )
        grid.add_argument(
            "--alpha",
            type=float,
            choices=ALPHAS,
            help="confidence of the hot/cold cells counted and merged into zones (default 0.05)",
        )
        grid.add_argument("--no-fdr", action="store_true", help="bins without FDR correction")
        grid.add_argument(
            "--max-zone-km2",
            type=float,
            metavar="KM2",
            help="gistar, forecast: a merged zone larger than this is split at its local "
            "maxima, then by area, into parts at most this large (default 1)",
        )
        gistar = parser.add_argument_group("gistar")
        gistar.add_argument("--permutations", type=int, metavar="N")
        gistar.add_argument("--seed", type=int, metavar="N")
        gistar.add_argument(
            "--stability",
            action="store_true",
            default=None,
            help="rerun Gi* at 0.5, 0.75, 1.5 and 2 × the cell size and print how much of the "
            "hot area persists (on by default)",
        )
        gistar.add_argument(
            "--no-stability", dest="stability", action="store_false", help="skip the stability"
        )
        emerging = parser.add_argument_group("emerging")
        emerging.add_argument("--step", choices=STEP_KINDS, help="default month")
        emerging.add_argument("--time-lag", type=int, metavar="STEPS", help="default 1")
        emerging.add_argument("--global-window", choices=GLOBAL_WINDOWS)
        kde = parser.add_argument_group("kde")
        kde.add_argument(
            "--bandwidth", type=float, metavar="METRES", help="default: ArcGIS' search radius rule"
        )
        dbscan = parser.add_argument_group("dbscan")
        dbscan.add_argument("--eps", type=float, metavar="METRES", help="default 100")
        dbscan.add_argument(
            "--min-points", type=int, metavar="N", help="default: above spatial randomness"
        )
        dbscan.add_argument(
            "--concave-ratio", type=float, metavar="R", help="hull concavity, 1 = convex"
        )
        forecast = parser.add_argument_group("forecast")
        forecast.add_argument(
            "--coverage",
            type=float,
            metavar="SHARE",
            help="share of the area to flag; candidates are compared by PAI there (default 0.05)",
        )
        forecast.add_argument(
            "--holdout",
            type=float,
            metavar="SHARE",
            help="share of the period's last days held out for the back-test (default 0.25)",
        )
        forecast.add_argument(
            "--half-lives",
            type=_half_lives,
            metavar="DAYS,...",
            help="half-lives of the time-decayed candidates (default 14,30,90)",
        )
        out = parser.add_argument_group("validation and output")
        out.add_argument(
            "--validate-from", type=_date, metavar="DATE", help="score against a later period"
        )
        out.add_argument("--validate-to", type=_date, metavar="DATE", help="included")
        out.add_argument(
            "--output",
            type=Path,
            metavar="result.geojson",
            help="the run's result as a GeoJSON FeatureCollection, byte-identical for the "
            "same inputs: the grid cells (with their zone's rank) for gistar, emerging and "
            "kde; the cluster zones with their figures for dbscan, which has no cells",
        )
        out.add_argument("--report", type=Path, metavar="report.html", help="HTML report")

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
        method = options["method"]
        params = self._params(method, options)
        validate = (options["validate_from"], options["validate_to"])
        if any(validate) and not all(validate):
            raise CommandError("--validate-from and --validate-to go together")
        try:
            run = create_run(
                region=region,
                date_from=options["date_from"],
                date_to=options["date_to"],
                districts=districts,
                neighborhoods=neighborhoods,
                family=options["family"] or "",
                categories=categories,
                method=method,
                params=params,
            )
            self.stdout.write(
                f"hotspot run #{run.pk} ({method}): {region.code}, {run.date_from} to {run.date_to}"
            )
            run = execute_run(run=run, progress=self._progress)
            self._print_summary(run)
            if all(validate):
                validation = validate_run(run=run, eval_from=validate[0], eval_to=validate[1])
                self._print_validation(validation.report)
        except HotspotRefused as exc:
            raise CommandError(f"refused: {exc}") from None
        if options["output"]:
            written = exports.write_run_geojson(run, options["output"])
            kind = exports.output_kind(run)
            self.stdout.write(f"{kind} written to {options['output']} ({written:,} bytes)")
        if options["report"]:
            from hotspots.report import write_report  # folium: only when a report is asked

            write_report(run, options["report"])
            self.stdout.write(f"report written to {options['report']}")

    def _params(self, method: str, options) -> dict:
        params = {}
        for dest, (name, methods) in OPTION_PARAMS.items():
            value = options[dest]
            if value is None or (dest == "no_fdr" and not value):
                continue
            if method not in methods:
                raise CommandError(
                    f"{_option(dest)} does not apply to --method {method} "
                    f"(only {', '.join(sorted(methods))})"
                )
            params[name] = (not value) if dest == "no_fdr" else value
        if "distance_band_m" in params:
            params["neighbour_rule"] = DISTANCE_BAND
        elif method in CELL_METHODS:
            params["neighbour_rule"] = CONTIGUITY
        return params

    def _areas(self, model, region, codes):
        found = list(model.objects.filter(region=region, code__in=codes))
        missing = sorted(set(codes) - {a.code for a in found})
        if missing:
            raise CommandError(
                f"unknown {model._meta.model_name} code(s) in {region.code}: {', '.join(missing)}"
            )
        return found

    def _progress(self, fraction: float, step: str) -> None:
        self.stdout.write(f"  {fraction:4.0%} {step}")

    def _print_summary(self, run) -> None:
        s, p = run.summary, run.params
        out = self.stdout.write
        out(f"succeeded: {run.message}")
        if "cell_size_m" in p and "cells" in s:
            kind = p.get("grid", "square")
            cell = f"{kind} cells of {p['cell_size_m']:g} m"
            if p.get("cell_size_reason"):
                cell += f" (automatic: {p['cell_size_reason']})"
            out(f"  grid: {cell}; {s['cells']:,} cells over {s['area_km2']:.2f} km², "
                f"{s['cells_with_incidents']:,} with incidents")  # fmt: skip
            if "grid_origin" in p:
                x0, y0 = s.get("grid_origin_m") or (0.0, 0.0)
                out(f"  area: {p['analysis_area']}; cells anchored at {p['grid_origin']} "
                    f"({x0:.3f}, {y0:.3f}) in EPSG:{run.metric_srid}")  # fmt: skip
        if run.method in GRID_METHODS:
            rule = (
                f"distance band {p['distance_band_m']:g} m"
                if p["neighbour_rule"] == DISTANCE_BAND
                else "touching cells + itself"
            )
            p_value = s.get("p_value", "normal approximation, two-sided")
            out(f"  Gi*: neighbours {rule}; p-values {p_value}; alpha {p['alpha']:g}; "
                f"FDR {'on' if p['fdr'] else 'off'}")  # fmt: skip
        if run.method == Method.GISTAR:
            out(f"  significant cells: {s['hot_cells']} hot, {s['cold_cells']} cold "
                f"(without FDR: {s['hot_cells_without_fdr']} hot, "
                f"{s['cold_cells_without_fdr']} cold); bins {s['bins']}")  # fmt: skip
        elif run.method == Method.EMERGING:
            out(f"  {s['steps']} {s['step']} steps from {p['steps'][0]}; time lag "
                f"{p['time_lag']}; global window {p['global_window']}")  # fmt: skip
            for key, count in s["categories"].items():
                if count:
                    out(f"    {count:>7,}  {key}")
        elif run.method == Method.KDE:
            rule = p.get("bandwidth_rule", {}).get("formula")
            out(f"  bandwidth {p['bandwidth_m']:g} m" + (f" (automatic: {rule})" if rule else ""))
            out(f"  {s['cells_zero_density_not_stored']:,} cells of zero density not stored")
        elif run.method == Method.FORECAST:
            b = s["backtest"]
            out(f"  back-test: fitted {b['fit_from']} to {b['fit_to']} "
                f"({b['fit_incidents']:,} incidents), scored on {b['test_from']} to "
                f"{b['test_to']} ({b['test_incidents']:,}) at {b['coverage']:.1%} of the area")  # fmt: skip
            out(f"    {'candidate':<12} {'hits':>7} {'hit rate':>8} {'PAI':>7} {'PEI':>6}")
            for row in b["rows"]:
                if row.get("pai") is None:
                    out(f"    {row['key']:<12} not computed: {row.get('reason', '')}")
                    continue
                out(f"    {row['key']:<12} {row['hits']:>7,.0f} {row['hit_rate']:>8.1%} "
                    f"{row['pai']:>7.2f} {_fmt(row['pei'], '.2f'):>6}"
                    + ("  <- chosen" if row["chosen"] else ""))  # fmt: skip
        elif run.method == Method.DBSCAN:
            reason = p.get("min_points_reason")
            out(f"  eps {p['eps_m']:g} m, min_points {p['min_points']}"
                + (f" (automatic: {reason})" if reason else ""))  # fmt: skip
            for warning in s.get("warnings", []):
                out(f"  warning: {warning}")
        order = {step: n for n, step in enumerate(STEPS)}
        timings = ", ".join(
            f"{k} {v:.2f}s"
            for k, v in sorted(run.timings.items(), key=lambda kv: order.get(kv[0], 99))
        )
        out(f"  timings: {timings}")
        zones = list(selectors.zone_list(run))
        if run.method in (Method.GISTAR, Method.DBSCAN, Method.FORECAST):
            out(f"  zones: {len(zones)}")
        rule = s.get("zone_rule")
        if isinstance(rule, dict):
            out(f"  zones larger than {rule['max_zone_km2']:g} km² split at the local maxima "
                f"of {rule['score']}: {s['zones_split']} of {s['zones_merged']} merged zones "
                f"split")  # fmt: skip
        for zone in zones[:20]:
            centre = zone.geom.centroid
            top = ", ".join(f"{c['code']} {c['count']}" for c in zone.top_categories[:3])
            # A DBSCAN zone is a hull around its incidents: it has no cells.
            cells = "" if run.method == Method.DBSCAN else f"  {zone.cell_count:>4} cells"
            density = zone.density_per_km2
            out(
                f"  #{zone.rank:<3} {zone.incident_count:>6,} incidents{cells}  "
                f"{zone.area_m2 / 1e6:7.3f} km²  "
                f"{density:>9,.{1 if density < 10 else 0}f}/km²  "
                f"{zone.share:6.1%}  at {centre.y:.5f}, {centre.x:.5f}  [{top}]"
            )
        if len(zones) > 20:
            out(f"  ... and {len(zones) - 20} more zones")
        if run.stability:
            self._print_stability(run.stability)

    def _print_stability(self, table) -> None:
        out = self.stdout.write
        ref = table["reference"]
        out(f"  stability of the hot area ({ref['hot_cells']} hot cells of "
            f"{ref['cell_size_m']:g} m, {ref['hot_area_km2']:.3f} km²):")  # fmt: skip
        for row in table["rows"]:
            if row["jaccard"] is None:
                out(
                    f"    × {row['factor']:<4g} {row['cell_size_m']:>8g} m  skipped: {row['error']}"
                )
            else:
                out(f"    × {row['factor']:<4g} {row['cell_size_m']:>8g} m  "
                    f"{row['hot_cells']:>6,} hot cells  {row['hot_area_km2']:8.3f} km²  "
                    f"Jaccard {row['jaccard']:.3f}")  # fmt: skip

    def _print_validation(self, report) -> None:
        out = self.stdout.write
        ev, grid = report["evaluation"], report["grid"]
        out(f"validation against {ev['date_from']} to {ev['date_to']}: {ev['incidents']:,} "
            f"incidents, on {grid['cells']:,} {grid['kind']} cells of {grid['cell_size_m']:g} m")  # fmt: skip
        labels = {m["key"]: m["label"] for m in report["methods"]}
        # As wide as the longest label, so every row's numbers stay under their heading.
        width = max([30, *(len(labels[row["method"]]) for row in report["rows"])])
        out(f"  {'':<{width}} {'coverage':>8} {'area':>7} {'hit rate':>8} {'PAI':>7} {'PEI':>6}")
        for row in report["rows"]:
            coverage = "" if row["coverage"] is None else f"{row['coverage']:.0%}"
            out(
                f"  {labels[row['method']]:<{width}} {coverage:>8} {row['area_share']:>7.2%} "
                f"{_fmt(row['hit_rate'], '.1%'):>8} {_fmt(row['pai'], '.2f'):>7} "
                f"{_fmt(row['pei'], '.2f'):>6}"
            )


def _fmt(value, spec: str) -> str:
    return "—" if value is None else format(value, spec)
