"""What every benchmark shares: the throwaway database, timing, memory, table and JSON output.

A benchmark module (listed in ``bench/__main__.py``) defines::

    NAME = "geojson_output"          # used by --only and for bench/results/NAME.json
    DESCRIPTION = "one line"
    DEFAULT_SCALE = 10_000           # its main size (features, rows, ...); --scale overrides
    UNIT = "features"                # what the scale counts, for the per-second column

    def run(ctx: BenchContext) -> BenchResult: ...

``run`` builds its data inside the bench database, measures its :class:`Method` list with
:func:`measure_methods`, checks the methods agree, and returns a :class:`BenchResult` whose rows
are shown as ratios against the baseline rows measured in the same run.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import platform
import signal
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
BENCH_DATABASE_NAME = "barrio_bench"


class BenchmarkError(Exception):
    """A benchmark could not run or its methods disagree: the numbers would mean nothing."""


@dataclass
class BenchContext:
    scale: int
    repeat: int = 3
    seed: int = 20240601
    log: Callable[[str], None] = print


@dataclass
class Measurement:
    """One method: best wall time of ``repeat`` runs after a warm-up, and its memory peak."""

    method: str
    baseline: bool
    items: int
    seconds: float  # best of the timed runs
    runs: list[float]
    peak_python_mb: float  # tracemalloc peak of a separate, untimed run
    output_bytes: int
    note: str = ""

    @property
    def per_second(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class BenchResult:
    name: str
    description: str
    scale: int
    unit: str
    measurements: list[Measurement]
    setup_seconds: float = 0.0
    checks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def baselines(self) -> list[Measurement]:
        return [m for m in self.measurements if m.baseline]

    def ratios(self) -> dict[str, dict[str, float]]:
        """``ratios[method][baseline]`` = baseline seconds / method seconds (>1: faster)."""
        return {
            m.method: {b.method: b.seconds / m.seconds for b in self.baselines}
            for m in self.measurements
        }

    def memory_ratios(self) -> dict[str, dict[str, float]]:
        """``[method][baseline]`` = baseline peak / method peak (>1: less memory)."""
        return {
            m.method: {
                b.method: (b.peak_python_mb / m.peak_python_mb if m.peak_python_mb else 0.0)
                for b in self.baselines
            }
            for m in self.measurements
        }


def _mb(n: int) -> float:
    return n / (1024 * 1024)


@dataclass
class Method:
    """One way of doing the benchmark's job; ``func`` returns its complete output."""

    name: str
    func: Callable[[], bytes]
    baseline: bool = False
    note: str = ""


def _traced_peak(func: Callable[[], bytes]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def python_memory_peaks(
    methods: list[Method], log: Callable[[str], None] = print
) -> dict[str, int]:
    """tracemalloc peak (bytes) of one run of each method, each in a forked child, all at once.

    Tracing slows allocation-heavy code three- or fourfold, so it never overlaps a timed
    run; running the methods side by side in their own processes keeps that cost to the
    slowest one instead of the sum (the peak does not depend on speed). The children open
    their own database connections; these runs also warm PostgreSQL's buffer cache.
    """
    if not hasattr(os, "fork"):
        return {m.name: _traced_peak(m.func) for m in methods}
    from django.db import connections

    connections.close_all()  # never share a socket with a child; Django reconnects lazily
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.perf_counter()
    children: dict[str, tuple[int, int]] = {}
    try:
        for method in methods:
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:  # child: report through the pipe, never return into the runner
                status = 1
                try:
                    os.close(read_fd)
                    try:
                        message = {"peak": _traced_peak(method.func)}
                        status = 0
                    except BaseException as exc:
                        message = {"error": f"{type(exc).__name__}: {exc}"}
                    connections.close_all()
                    with os.fdopen(write_fd, "w") as pipe:
                        json.dump(message, pipe)
                finally:
                    os._exit(status)
            os.close(write_fd)
            children[method.name] = (pid, read_fd)
        peaks: dict[str, int] = {}
        errors = []
        for name, (pid, read_fd) in list(children.items()):
            with os.fdopen(read_fd) as pipe:
                text = pipe.read()
            os.waitpid(pid, 0)
            del children[name]
            try:
                message = json.loads(text)
            except ValueError:
                message = {"error": "the process died without a result"}
            if "error" in message:
                errors.append(f"{name}: {message['error']}")
            else:
                peaks[name] = message["peak"]
    finally:
        for pid, read_fd in children.values():  # interrupted: stop the children we started
            with contextlib.suppress(OSError):
                os.close(read_fd)
                os.kill(pid, signal.SIGTERM)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    if errors:
        raise BenchmarkError("memory run failed: " + "; ".join(errors))
    log(
        f"  memory peaks traced, {len(methods)} methods side by side, in "
        f"{time.perf_counter() - start:.1f} s"
    )
    return peaks


def measure_methods(
    methods: list[Method],
    *,
    items: int,
    repeat: int,
    log: Callable[[str], None] = print,
) -> tuple[list[Measurement], dict[str, bytes]]:
    """Memory peaks first (:func:`python_memory_peaks`, which is also the warm-up: imports,
    query plans, PostgreSQL's buffer cache), then ``repeat`` timed runs of each method in
    this process, one method after the other. The best run counts: the others only add
    noise from the machine. The garbage collector stays on (a server runs with it) but is
    emptied before each run. Returns the measurements and each method's last output, for
    the benchmark's agreement checks.
    """
    peaks = python_memory_peaks(methods, log)
    measurements, outputs = [], {}
    for method in methods:
        runs: list[float] = []
        output = b""
        for _ in range(repeat):
            output = b""
            gc.collect()
            start = time.perf_counter()
            output = method.func()
            runs.append(time.perf_counter() - start)
        result = Measurement(
            method=method.name,
            baseline=method.baseline,
            items=items,
            seconds=min(runs),
            runs=runs,
            peak_python_mb=_mb(peaks[method.name]),
            output_bytes=len(output),
            note=method.note,
        )
        log(
            f"  {method.name}: best {result.seconds:.3f} s of "
            f"{', '.join(f'{r:.3f}' for r in runs)}; peak {result.peak_python_mb:.1f} MB"
        )
        measurements.append(result)
        outputs[method.name] = output
    return measurements, outputs


@contextlib.contextmanager
def bench_database(log: Callable[[str], None] = print) -> Iterator[str]:
    """A fresh, migrated database of its own, dropped afterwards whatever happens.

    The developer's database is never written: Django's test-database machinery creates
    ``barrio_bench`` on the same server (dropping a leftover one from an interrupted run).
    """
    from django.conf import settings
    from django.db import connection

    # In place, so the defaults Django fills into TEST (MIGRATE, CHARSET...) survive.
    for conf in (settings.DATABASES["default"], connection.settings_dict):
        conf.setdefault("TEST", {})["NAME"] = BENCH_DATABASE_NAME
    old_name = connection.settings_dict["NAME"]
    start = time.perf_counter()
    name = connection.creation.create_test_db(
        verbosity=0, autoclobber=True, serialize=False, keepdb=False
    )
    log(f"database {name} created and migrated in {time.perf_counter() - start:.1f} s")
    try:
        yield name
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)
        log(f"database {name} dropped")


def environment() -> dict[str, str]:
    """Versions and machine, stored with the results: ratios only compare within a run."""
    import django
    from django.db import connection

    info = {
        "python": platform.python_version(),
        "django": django.get_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "system": platform.platform(terse=True),
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT split_part(version(), ' ', 2), postgis_lib_version()")
        info["postgresql"], info["postgis"] = cursor.fetchone()
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=BENCH_DIR,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    return info


def format_table(result: BenchResult) -> str:
    """Seconds, throughput, memory, and one speed-up column per baseline."""
    ratios = result.ratios()
    headers = ["method", "seconds", f"{result.unit}/s", "peak MB", "output MB"]
    headers += [f"vs {b.method}" for b in result.baselines]
    rows = []
    for m in result.measurements:
        row = [
            m.method + (" (baseline)" if m.baseline else ""),
            f"{m.seconds:.3f}",
            f"{m.per_second:,.0f}",
            f"{m.peak_python_mb:.1f}",
            f"{_mb(m.output_bytes):.1f}",
        ]
        row += [f"{ratios[m.method][b.method]:.2f}x" for b in result.baselines]
        rows.append(row)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out)


def write_results(result: BenchResult, env: dict[str, str]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{result.name}.json"
    data = {
        "benchmark": result.name,
        "description": result.description,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "scale": result.scale,
        "unit": result.unit,
        "setup_seconds": round(result.setup_seconds, 3),
        "environment": env,
        "methods": [
            {**asdict(m), "per_second": m.per_second, "output_mb": _mb(m.output_bytes)}
            for m in result.measurements
        ],
        "speedup": result.ratios(),
        "memory_ratio": result.memory_ratios(),
        "checks": result.checks,
        "notes": result.notes,
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
