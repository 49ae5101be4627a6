"""What the import commands report: the base of a report on features imported by name
(boundaries, public spaces), the lines every import report ends with, and the writing of
a report to a command's output."""

from __future__ import annotations

from dataclasses import dataclass, field

DRY_RUN_LINE = "dry run: nothing was written"
REFUSED_LINE = "nothing was written: fix the refused features and run again"


@dataclass(kw_only=True)
class FeatureImportReport:
    """The features of an import: created, updated or unchanged (by name), repaired on the
    way or refused (each as its importer describes it)."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    repaired: list = field(default_factory=list)
    refused: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refused

    def counts(self, *, would: str = "") -> str:
        """How many of each, ``would`` ("would be ") before the writes that did not happen."""
        return (
            f"{len(self.created)} {would}created, {len(self.updated)} {would}updated, "
            f"{len(self.unchanged)} unchanged, {len(self.repaired)} repaired, "
            f"{len(self.refused)} refused"
        )

    def feature_lines(self) -> list[str]:
        """A line for each feature repaired, then for each feature refused."""
        return [f"repaired: {p}" for p in self.repaired] + [f"refused: {p}" for p in self.refused]

    def refusal(self) -> str:
        """What a command that writes nothing when features are refused ends with."""
        return f"{len(self.refused)} feature(s) refused; nothing was written"


def write_report(command, report, *, prefix: str = "") -> None:
    """The report's lines on the command's output, or on its error output when the report
    is not ``ok``."""
    stream = command.stdout if report.ok else command.stderr
    for line in report.lines():
        stream.write(prefix + line)
