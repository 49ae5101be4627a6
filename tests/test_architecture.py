"""House rules that import-linter cannot see: SQL in one app never names another app's
table (it calls that app's selector instead; ../shared/docs/architecture.md, rule 5)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from django.apps import apps
from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def _project_apps() -> dict[str, set[str]]:
    """Each project app's folder name and the tables its models own (Django's own tables
    and third-party ones are nobody's here)."""
    tables: dict[str, set[str]] = {}
    for config in apps.get_app_configs():
        path = Path(config.path)
        if path.parent != ROOT:
            continue
        owned = {model._meta.db_table for model in config.get_models(include_auto_created=True)}
        tables[path.name] = owned
    return tables


def _strings(source: str) -> list[tuple[int, str]]:
    """Every string constant of a module (f-string parts included) with its line."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append((node.lineno, node.value))
    return found


def test_no_app_names_another_apps_table_in_sql():
    owners = _project_apps()
    assert {"incidents", "neighborhoods", "hotspots", "publicspaces"} <= owners.keys()
    foreign = []
    for app in owners:
        others = {t: owner for owner, ts in owners.items() if owner != app for t in ts}
        pattern = re.compile(r"\b(" + "|".join(map(re.escape, sorted(others))) + r")\b")
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if {"tests", "migrations"} & set(relative.parts):
                continue
            for line, text in _strings(path.read_text(encoding="utf-8")):
                for table in pattern.findall(text):
                    foreign.append(f"{relative}:{line} names {table} ({others[table]})")
    assert foreign == [], "\n".join(foreign)
