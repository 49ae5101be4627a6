"""The tables of a hotspot run (parameters, summary, zones, timings, stability, validations),
shared by the run page and the HTML report so that both read the same. Values are written
as the active language writes them (:func:`fmt`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from django.utils import formats
from django.utils.translation import gettext as _

from hotspots.engine.emerging import LEGEND
from hotspots.engine.step_size import FEWEST_CELLS, MEMORY, MIN_TREND_CELLS
from hotspots.models import HotspotRun, HotspotValidation
from hotspots.selectors import zone_list
from hotspots.styles import (
    bin_labels,
    candidate_label,
    language,
    param_labels,
    score_labels,
    summary_labels,
    timing_labels,
)
from incidents.models import Category


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    caption: str = ""
    # Indices of the columns holding numbers: both renderers right-align them, header
    # included, so that digits line up under their heading.
    numeric: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Pairs:
    """A table cell holding a short list of (label, value) texts, e.g. cells per
    confidence bin: both renderers draw it as a list, not as one string of JSON."""

    pairs: tuple[tuple[str, str], ...]

    def __str__(self) -> str:
        return "; ".join(f"{label}: {value}" for label, value in self.pairs)


def fmt(value, decimals: int = 2) -> str:
    """A value as the active language writes it; lists and dicts as compact JSON."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, int):
        return formats.number_format(value, use_l10n=True, force_grouping=True)
    if isinstance(value, float):
        if value != value:  # NaN
            return "—"
        if value and abs(value) < 10 ** (-decimals):
            return f"{value:.{decimals}g}"
        return formats.number_format(
            round(value, decimals), decimal_pos=decimals, use_l10n=True, force_grouping=True
        )
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return str(value)


def percent(value, *, fixed: bool = False) -> str:
    """A share as a percentage with one decimal; ``fixed``: one decimal even below 0.1 %
    (a column of them then lines up)."""
    if value is None:
        return "—"
    value = 100 * float(value)
    if fixed and value == value:
        return (
            formats.number_format(
                round(value, 1), decimal_pos=1, use_l10n=True, force_grouping=True
            )
            + " %"
        )
    return fmt(value, 1) + " %"


def density(value) -> str:
    """Incidents per km²: whole numbers from 10 on, one decimal below (a sparse zone of
    2.4 per km² is not 2, and not 0)."""
    if value is None or value != value:
        return "—"
    value = float(value)
    return fmt(value, 1 if abs(round(value, 1)) < 10 else 0)


_SHARE_KEYS = {"coverage", "area_share", "hit_rate", "share", "edge_coverage", "flagged_share"}
_RATIO_KEYS = {"pai", "pai_star", "pei"}
# Counts a report may hold as floats (validation scores): written as whole numbers.
_COUNT_KEYS = {
    "n_cells",
    "hits",
    "total",
    "incidents",
    "input_incidents",
    "cells",
    "hot_cells",
    "cold_cells",
    "clustered_incidents",
    "noise_incidents",
    "zones",
}


def _ordered(keys: Iterable[str], known: Mapping[str, str]) -> list[str]:
    keys = list(dict.fromkeys(keys))
    return [k for k in known if k in keys] + sorted(k for k in keys if k not in known)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(key: str, value) -> str:
    if key in _SHARE_KEYS and _is_number(value):
        return percent(value)
    if key in _RATIO_KEYS and _is_number(value):
        return fmt(float(value), 2)
    if key in _COUNT_KEYS and isinstance(value, float) and value == value:
        return fmt(round(value))
    return fmt(value)


def _bin_pairs(bins: Mapping) -> Pairs:
    labels = bin_labels()
    return Pairs(
        tuple(
            (labels[b], fmt(bins.get(str(b), bins.get(b, 0))))
            for b in (3, 2, 1, 0, -1, -2, -3)
            if str(b) in bins or b in bins
        )
    )


def _category_pairs(categories: Mapping) -> Pairs:
    lang = language()
    by_key = {entry["key"]: entry[lang] for entry in LEGEND.values()}
    return Pairs(tuple((by_key.get(k, k), fmt(v)) for k, v in categories.items() if v))


def p_value_text(value: str) -> str:
    """The stored (English) description of how the p-values were found, in the reader's
    language; an unknown one as it is."""
    if value == "normal approximation, two-sided":
        return _("normal approximation, two-sided")
    if found := re.fullmatch(r"conditional permutations \((\d+)\), two-sided", value):
        return _("conditional permutations (%(n)s), two-sided") % {"n": fmt(int(found[1]))}
    return value


def _summary_value(run: HotspotRun, key: str, value):
    """A summary value as a reader wants it: bins and categories as lists, the method by
    its name, series of counts as numbers rather than JSON."""
    if key == "bins" and isinstance(value, Mapping):
        return _bin_pairs(value)
    if key == "categories" and isinstance(value, Mapping):
        return _category_pairs(value)
    if key == "engine" and isinstance(value, Mapping):
        return Pairs(tuple((str(k), fmt(v)) for k, v in value.items()))
    if key == "time_weighting" and value == "aoristic":
        return _("aoristic: each incident's weight is split over the steps its time window covers")
    if key == "p_value" and isinstance(value, str):
        return p_value_text(value)
    if key == "zone_rule" and isinstance(value, Mapping):
        return zone_rule_text(value)
    if key in ("chosen", "chosen_label") and run.summary:
        return candidate_label(dict(run.summary)) or _cell(key, value)
    if key == "method" and value == run.method:
        return str(run.get_method_display())
    if key == "warnings" and isinstance(value, list):
        return "; ".join(str(v) for v in value) or "—"
    if isinstance(value, list) and all(_is_number(v) for v in value):
        return ", ".join(fmt(v) for v in value)
    return _cell(key, value)


def _numbers(values: list) -> bool:
    """A column of numbers (blanks allowed)."""
    given = [v for v in values if v is not None]
    return bool(given) and all(_is_number(v) for v in given)


def _score_cell(key: str, value) -> str:
    """A validation score with the same decimals all down its column."""
    if key in _SHARE_KEYS and _is_number(value):
        return percent(value, fixed=True)
    return _cell(key, value)


def _records_table(title: str, records: list[Mapping], known: Mapping[str, str]) -> Table:
    keys = _ordered((k for r in records for k in r), known)
    rows = [[_cell(k, r.get(k)) for k in keys] for r in records]
    return Table(
        title=title,
        columns=[known.get(k, k) for k in keys],
        rows=rows,
        numeric=frozenset(n for n, k in enumerate(keys) if _numbers([r.get(k) for r in records])),
    )


def _is_records(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(r, Mapping) for r in value)


def key_value_table(title: str, values: Mapping, known: Mapping[str, str]) -> Table:
    return Table(
        title=title,
        columns=[_("Item"), _("Value")],
        rows=[[known.get(k, k), _cell(k, values[k])] for k in _ordered(values, known)],
    )


def summary_table(run: HotspotRun) -> Table:
    values, known = run.summary or {}, summary_labels()
    return Table(
        title=_("Summary"),
        columns=[_("Item"), _("Value")],
        rows=[
            [known.get(k, k.replace("_", " ")), _summary_value(run, k, values[k])]
            for k in _ordered(values, known)
            if k != "backtest"  # its own table: backtest_table
        ],
        # Runs from before the rule have no edge_cells and called edge cells cold.
        caption=(
            _(
                "Cells less than half inside the area are never called cold: few "
                "incidents there may only mean the cell lies mostly outside."
            )
            if "edge_cells" in values
            else ""
        ),
    )


def parameter_table(run: HotspotRun) -> Table:
    area = [d.code for d in run.districts.all()] + [n.code for n in run.neighborhoods.all()]
    rows = [
        [_("Region"), f"{run.region.name} ({run.region.code})"],
        [_("Area"), ", ".join(sorted(area)) or _("the whole region")],
        [_("Drawn polygon"), fmt(run.polygon is not None)],
        [_("Period"), f"{run.date_from.isoformat()} – {run.date_to.isoformat()}"],
        [_("Family"), run.get_family_display() if run.family else _("all")],
        [
            _("Categories"),
            ", ".join(sorted(c.code for c in run.categories.all())) or _("all"),
        ],
        [_("Method"), str(run.get_method_display())],
        [_("Metric CRS"), f"EPSG:{run.metric_srid}" if run.metric_srid else "—"],
    ]
    values = dict(run.params or {})
    rule = values.pop("cell_size_rule", None)
    if isinstance(rule, Mapping) and rule.get("rule") == "emerging_steps":
        values["cell_size_reason"] = step_size_reason(rule)
    params = key_value_table("", values, param_labels())
    return Table(
        title=_("Parameters"),
        columns=[_("Item"), _("Value")],
        rows=rows + params.rows + [[_("Software"), run.software_version or "—"]],
    )


def step_size_reason(rule: Mapping) -> str:
    """An emerging run's automatic cell size explained in the reader's language, from
    the rule's codes and numbers (:mod:`hotspots.engine.step_size`)."""
    values = {
        "steps": fmt(int(rule["steps"])),
        "size": fmt(float(rule["size_m"]), 0),
        "cells": fmt(int(rule["occupied_cells"])),
        "mean": fmt(float(rule["mean_per_step"])),
        "target": fmt(float(rule["min_per_step"]), 1),
        "base_mean": fmt(float(rule["base_mean_per_step"]), 3),
        "base": fmt(float(rule["base_size_m"]), 0),
        "max_bins": fmt(int(rule["max_bins"])),
        "fewest": fmt(MIN_TREND_CELLS),
    }
    steps = (
        _("%(steps)s weekly steps") if rule.get("step") == "week" else _("%(steps)s monthly steps")
    ) % values
    text = _(
        "%(steps)s; at %(size)s m each occupied cell (%(cells)s) has on average %(mean)s "
        "incidents per step (target at least %(target)s; %(base_mean)s at the Optimized Hot "
        "Spot Analysis size, %(base)s m)"
    ) % {**values, "steps": steps}
    if rule.get("limit") == MEMORY:
        text += _("; enlarged so that cells × steps stay within %(max_bins)s") % values
    elif rule.get("limit") == FEWEST_CELLS:
        text += _("; not reached: larger cells would leave fewer than %(fewest)s cells") % values
    return text


def zone_rule_text(rule: Mapping) -> str:
    """How a cell run cut its large zones (:mod:`hotspots.services.zoning`), in the
    reader's language from the rule's code and numbers."""
    if rule.get("rule") != "split_at_peaks":
        return fmt(dict(rule))
    # Whole phrases, not "of %(score)s": Spanish contracts "de el" to "del".
    if rule.get("score") == "gi_z":
        maxima = _("the local maxima of Gi* z")
    else:
        maxima = _("the local maxima of the forecast's ranking")
    return _(
        "contiguous cells form a zone; a zone larger than %(max)s km² is cut at "
        "%(maxima)s (%(peaks)s found), its parts rejoined across their highest "
        "saddles while they fit, then halved until each part fits"
    ) % {
        "max": fmt(float(rule.get("max_zone_km2", 0)), 2),
        "maxima": maxima,
        "peaks": fmt(int(rule.get("peaks", 0))),
    }


def timings_table(run: HotspotRun) -> Table:
    known = timing_labels()
    timings = run.timings or {}
    return Table(
        title=_("Timings"),
        columns=[_("Step"), _("Seconds")],
        rows=[[known.get(k, k), fmt(timings[k], 3)] for k in _ordered(timings, known)],
        numeric=frozenset({1}),
    )


def stability_table(run: HotspotRun) -> Table | None:
    """The rows of ``run.stability`` (a list, or a dict holding ``rows``), the reference
    hot area and the lowest and mean Jaccard as the caption."""
    stability = run.stability or {}
    known = {
        "factor": _("Size factor"),
        "cell_size_m": _("Cell size (m)"),
        "cells": _("Cells"),
        "hot_cells": _("Hot cells"),
        "hot_area_km2": _("Hot area (km²)"),
        "jaccard": _("Jaccard (1 = same hot area)"),
        "error": _("Not computed because"),
    }
    title = _("Stability across cell sizes")
    if _is_records(stability):
        return _records_table(title, stability, known)
    if not isinstance(stability, Mapping) or not stability:
        return None
    rows = stability.get("rows")
    table = _records_table(title, rows, known) if _is_records(rows) else Table(title, [])
    notes = []
    reference = stability.get("reference")
    if isinstance(reference, Mapping):
        notes.append(
            _("This run: %(size)s m cells, %(hot)s hot cells, %(area)s km² hot")
            % {
                "size": fmt(reference.get("cell_size_m")),
                "hot": fmt(reference.get("hot_cells")),
                "area": fmt(reference.get("hot_area_km2"), 3),
            }
        )
    if stability.get("min_jaccard") is not None:
        notes.append(
            _("lowest Jaccard %(min)s, mean %(mean)s")
            % {
                "min": fmt(stability.get("min_jaccard"), 3),
                "mean": fmt(stability.get("mean_jaccard"), 3),
            }
        )
    table.caption = "; ".join(notes)
    return table


# Names stored by earlier versions, read as today's (the naive baseline always counted
# the run's whole period; "last period" misled).
_RENAMED_METHODS = {"Naive: last period's count": "Naive: count over the run's period"}


def _method_labels(report: Mapping) -> dict[str, str]:
    """The report's forecast names, translated (services stores them untranslated)."""
    labels = {}
    for entry in report.get("methods") or []:
        if isinstance(entry, Mapping) and entry.get("key"):
            label = entry.get("label") or entry["key"]
            labels[entry["key"]] = _(_RENAMED_METHODS.get(label, label))
    return labels


def validation_tables(validation: HotspotValidation) -> list[Table]:
    """The scores of a validation: one table of its ``rows`` (forecast × coverage) in the
    report's column order; older or hand-made reports with other lists of scores get one
    table per list."""
    report = validation.report or {}
    period = f"{validation.eval_from.isoformat()} – {validation.eval_to.isoformat()}"
    title = _("Validation against %(period)s") % {"period": period}
    known = {**score_labels(), "method": _("Forecast")}
    if isinstance(report, Mapping) and _is_records(report.get("rows")):
        methods = _method_labels(report)
        columns = [c for c in report.get("columns") or [] if isinstance(c, str)]
        keys = columns or _ordered((k for r in report["rows"] for k in r), known)
        rows = [
            [
                methods.get(r.get(k), r.get(k)) if k == "method" else _score_cell(k, r.get(k))
                for k in keys
            ]
            for r in report["rows"]
        ]
        notes = []
        evaluation = report.get("evaluation")
        if isinstance(evaluation, Mapping) and evaluation.get("incidents") is not None:
            notes.append(
                _("%(count)s incidents in the later period")
                % {"count": fmt(evaluation["incidents"])}
            )
        grid = report.get("grid")
        if isinstance(grid, Mapping) and grid.get("cells") is not None:
            notes.append(
                _("scored on %(cells)s cells of %(size)s m (%(area)s km²)")
                % {
                    "cells": fmt(grid["cells"]),
                    "size": fmt(grid.get("cell_size_m")),
                    "area": fmt(grid.get("area_km2"), 3),
                }
            )
        notes.extend(_(text) for text in (report.get("metrics") or {}).values())
        return [
            Table(
                title=title,
                columns=[known.get(k, k) for k in keys],
                rows=rows,
                caption="; ".join(notes),
                numeric=frozenset(n for n, k in enumerate(keys) if k not in ("method", "label")),
            )
        ]
    tables: list[Table] = []
    scalars: dict = {}
    for key, value in report.items() if isinstance(report, Mapping) else ():
        if _is_records(value):
            tables.append(_records_table(f"{title}: {key.replace('_', ' ')}", value, known))
        else:
            scalars[key] = value
    if _is_records(report):
        tables.append(_records_table(title, report, known))
    if not tables:
        tables.append(Table(title=title, columns=[]))
    if scalars:
        tables[0].caption = "; ".join(
            f"{k.replace('_', ' ')}: {fmt(v)}" for k, v in scalars.items()
        )
    return tables


def category_names(codes: Iterable[str]) -> dict[str, str]:
    field_name = "name_en" if language() == "en" else "name_es"
    return dict(Category.objects.filter(code__in=set(codes)).values_list("code", field_name))


def zone_rows(run: HotspotRun) -> list[dict]:
    zones = list(zone_list(run))
    names = category_names(c.get("code") for z in zones for c in (z.top_categories or []))
    return [
        {
            "rank": z.rank,
            "incidents": z.incident_count,
            "cells": z.cell_count,
            "area_km2": z.area_m2 / 1e6,
            "density": z.density_per_km2,
            "share": z.share,
            "top": ", ".join(
                f"{names.get(c.get('code'), c.get('code'))} ({c.get('count')})"
                for c in (z.top_categories or [])[:5]
            ),
        }
        for z in zones
    ]


def zone_table(run: HotspotRun) -> Table:
    # A DBSCAN zone is a hull around its clustered incidents: it has no cells to count.
    cells = run.method != HotspotRun.Method.DBSCAN
    columns = [_("Rank"), _("Incidents")]
    columns += [_("Cells")] if cells else []
    columns += [_("Area (km²)"), _("Density (per km²)"), _("Share of the incidents")]
    return Table(
        title=_("Zones"),
        columns=[*columns, _("Top categories")],
        rows=[
            [
                str(z["rank"]),
                fmt(z["incidents"]),
                *([fmt(z["cells"])] if cells else []),
                fmt(z["area_km2"], 3),
                density(z["density"]),
                percent(z["share"]),
                z["top"] or "—",
            ]
            for z in zone_rows(run)
        ],
        numeric=frozenset(range(len(columns))),
    )


def backtest_table(run: HotspotRun) -> Table | None:
    """A forecast run's candidates with their back-test scores, the chosen one marked."""
    backtest = (run.summary or {}).get("backtest")
    if not isinstance(backtest, Mapping) or not _is_records(backtest.get("rows")):
        return None
    labels = {
        "count": _("Period count"),
        "decay": _("Time-decayed count, half-life %(days)s days"),
        "gistar": _("Getis-Ord Gi* z"),
        "kde": _("Kernel density"),
    }
    rows = []
    for r in backtest["rows"]:
        label = labels.get(r.get("kind"), r.get("key"))
        if r.get("kind") == "decay":
            label = label % {"days": fmt(r.get("half_life_days"), 0)}
        rows.append(
            [
                label,
                _("chosen") if r.get("chosen") else "",
                _cell("hits", r.get("hits")),
                _cell("hit_rate", r.get("hit_rate")),
                _cell("pai", r.get("pai")),
                _cell("pei", r.get("pei")),
            ]
        )
    return Table(
        title=_("Back-test of the candidate forecasts"),
        columns=[_("Candidate"), _("Chosen"), _("Hits"), _("Hit rate"), _("PAI"), _("PEI")],
        rows=rows,
        numeric=frozenset({2, 3, 4, 5}),
        caption=_(
            "Each candidate ranked the cells from %(fit_from)s – %(fit_to)s and flagged the top "
            "%(coverage)s of the area; scored on the %(incidents)s incidents of %(test_from)s – "
            "%(test_to)s. The highest PAI is chosen (equal hits: the simpler candidate, period "
            "count first), then refitted on the whole period."
        )
        % {
            "fit_from": backtest.get("fit_from"),
            "fit_to": backtest.get("fit_to"),
            "test_from": backtest.get("test_from"),
            "test_to": backtest.get("test_to"),
            "coverage": percent(backtest.get("coverage")),
            "incidents": fmt(backtest.get("test_incidents")),
        },
    )


def run_tables(run: HotspotRun) -> dict:
    return {
        "backtest": backtest_table(run),
        "parameters": parameter_table(run),
        "summary": summary_table(run),
        "zones": zone_table(run),
        "timings": timings_table(run),
        "stability": stability_table(run),
        "validations": [t for v in run.validations.all() for t in validation_tables(v)],
    }
