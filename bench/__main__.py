"""``python -m bench [--only NAME] [--scale N] [--repeat N] [--list]``

Runs each selected benchmark in a fresh database of its own (``barrio_bench``, dropped
afterwards), prints a table of seconds, throughput, memory and speed-up ratios against
the baselines measured in the same run, and writes bench/results/NAME.json.
Exits non-zero when a benchmark fails, including when its methods disagree.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from pathlib import Path

# Benchmark modules, run in this order. A new benchmark is a module following the
# contract in bench/common.py, added here (e.g. "bench.incident_import", "bench.hotspots").
BENCHMARKS = [
    "bench.geojson_output",
    "bench.incident_import",
    "bench.hotspot_run",
    "bench.emerging_run",
]


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Barrio benchmarks: ratios against baselines measured in the same run.",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only this benchmark (repeatable, or comma-separated); see --list",
    )
    parser.add_argument(
        "--scale",
        type=_positive_int,
        metavar="N",
        help="size of each benchmark's data (features, rows...) instead of its default",
    )
    parser.add_argument(
        "--repeat",
        type=_positive_int,
        default=3,
        metavar="N",
        help="timed runs per method after the warm-up; the best counts (default 3)",
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    modules = [importlib.import_module(name) for name in BENCHMARKS]
    by_name = {m.NAME: m for m in modules}
    if args.list:
        for m in modules:
            print(f"{m.NAME:<20} {m.DESCRIPTION} (default scale {m.DEFAULT_SCALE:,} {m.UNIT})")
        return 0
    if args.only:
        wanted = [name.strip() for item in args.only for name in item.split(",") if name.strip()]
        unknown = [name for name in wanted if name not in by_name]
        if unknown:
            print(
                f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(by_name)}",
                file=sys.stderr,
            )
            return 2
        modules = [m for m in modules if m.NAME in wanted]

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    from django.conf import settings

    # With DEBUG on, every query would be kept in memory and skew the memory peaks.
    settings.DEBUG = False

    from bench.common import (
        BenchContext,
        BenchmarkError,
        bench_database,
        environment,
        format_table,
        write_results,
    )

    failed = []
    started = time.perf_counter()
    for module in modules:
        scale = args.scale or module.DEFAULT_SCALE
        print(f"\n== {module.NAME}: {module.DESCRIPTION} ({scale:,} {module.UNIT})")
        ctx = BenchContext(scale=scale, repeat=args.repeat)
        try:
            with bench_database():
                result = module.run(ctx)
                env = environment()
        except BenchmarkError as exc:
            print(f"FAILED {module.NAME}: {exc}", file=sys.stderr)
            failed.append(module.NAME)
            continue
        except Exception:
            traceback.print_exc()
            print(f"FAILED {module.NAME}: unexpected error (above)", file=sys.stderr)
            failed.append(module.NAME)
            continue
        print()
        print(format_table(result))
        print()
        for check in result.checks:
            print(f"  check: {check}")
        for note in result.notes:
            print(f"  note:  {note}")
        path = write_results(result, env)
        shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
        print(f"  results written to {shown}")
    print(
        f"\n{len(modules) - len(failed)} of {len(modules)} benchmark(s) ran in "
        f"{time.perf_counter() - started:.0f} s"
    )
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
