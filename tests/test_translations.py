"""Every user-visible string has a Spanish translation, and the pages show it.

Neighbors and municipal staff read Spanish: a string added to the code without a
translation would show up in English. The catalogue checks parse the .po files with a small
parser (no extra dependency); the coverage check re-runs makemessages on the source into a
temporary copy of the catalogues, so a string wrapped in gettext but never collected fails
too; the page checks render the pages in Spanish and look for any English msgid left in them.
"""

from __future__ import annotations

import ast
import datetime as dt
import gettext
import html
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse

from publicspaces.services.activities import log_activity
from publicspaces.services.projects import create_project
from publicspaces.services.spaces import AUDIT_ITEMS, create_space
from publicspaces.tests.conftest import (  # noqa: F401 (fixtures)
    districts,
    inside_norte,
    make_user,
    square,
    users,
)

LOCALE = Path(settings.BASE_DIR) / "locale"
# The same folders the catalogues are built without (see the Makefile's compilemessages).
IGNORE = (".venv/*", ".pgdata/*", "node_modules/*", "static/vendor/*", "bench/results/*")
IGNORE += ("var/*", "media/*", "staticfiles/*")


@dataclass
class Entry:
    msgid: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    line: int = 0

    @property
    def translated(self) -> bool:
        return bool(self.msgstr) and all(self.msgstr.values())

    def __str__(self) -> str:
        context = f"[{self.msgctxt}] " if self.msgctxt is not None else ""
        return f"line {self.line}: {context}{self.msgid!r}"


def parse_po(path: Path) -> list[Entry]:
    """The active entries of a .po file (the header and obsolete "#~" entries left out)."""
    entries: list[Entry] = []
    entry = Entry()
    target: tuple[str, int | None] | None = None

    def finish():
        nonlocal entry, target
        if entry.msgid or entry.msgstr:
            if entry.msgid:
                entries.append(entry)
        entry, target = Entry(), None

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            finish()
        elif line.startswith("#,"):
            if entry.msgid or entry.msgstr:
                finish()
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            if target is None:
                raise ValueError(f"{path}:{number}: a continuation line without a keyword")
            text = ast.literal_eval(line)
            keyword, index = target
            if keyword == "msgstr":
                entry.msgstr[index] += text
            else:
                setattr(entry, keyword, getattr(entry, keyword) + text)
        else:
            keyword, _, value = line.partition(" ")
            text = ast.literal_eval(value)
            if keyword in ("msgctxt", "msgid") and (entry.msgid or entry.msgstr):
                finish()
            if keyword.startswith("msgstr"):
                index = int(keyword[7:-1]) if keyword != "msgstr" else 0
                entry.msgstr[index] = text
                target = ("msgstr", index)
            elif keyword in ("msgctxt", "msgid", "msgid_plural"):
                setattr(entry, keyword, text)
                entry.line = entry.line or number
                target = (keyword, None)
            else:
                raise ValueError(f"{path}:{number}: unknown keyword {keyword!r}")
    finish()
    return entries


def problems(entries: list[Entry], *, need_translation: bool) -> list[str]:
    found = [f"fuzzy, {e}" for e in entries if "fuzzy" in e.flags]
    if need_translation:
        found += [f"untranslated, {e}" for e in entries if not e.translated]
    return found


def catalogue(language: str) -> Path:
    return LOCALE / language / "LC_MESSAGES" / "django.po"


# --- the committed catalogues ----------------------------------------------------------------


def test_spanish_catalogue_has_no_untranslated_or_fuzzy_entry():
    entries = parse_po(catalogue("es"))
    assert len(entries) > 100  # the parser read the catalogue, not an empty file
    assert problems(entries, need_translation=True) == []


def test_english_catalogue_has_no_fuzzy_entry():
    # English msgstr stay empty: the msgid is the English text. A fuzzy one would be a
    # guess from a similar string, which Django would ignore now but is a trap later.
    entries = parse_po(catalogue("en"))
    assert len(entries) > 100
    assert problems(entries, need_translation=False) == []


def test_compiled_spanish_catalogue_matches_the_po():
    """Forgetting compilemessages would ship the old translations."""
    with (LOCALE / "es" / "LC_MESSAGES" / "django.mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    stale = []
    for entry in parse_po(catalogue("es")):
        if entry.msgid_plural is not None:
            got = compiled.ngettext(entry.msgid, entry.msgid_plural, 1)
        elif entry.msgctxt is not None:
            got = compiled.pgettext(entry.msgctxt, entry.msgid)
        else:
            got = compiled.gettext(entry.msgid)
        if got != entry.msgstr[0]:
            stale.append(str(entry))
    assert stale == []


def test_spanish_plurals_have_every_form_the_header_declares():
    """msgfmt --check refuses a catalogue whose plural entries have fewer forms than its
    Plural-Forms header (Django's Spanish rule has three: one, millions, other)."""
    declared = int(re.search(r"nplurals=(\d+)", catalogue("es").read_text()).group(1))
    plurals = [e for e in parse_po(catalogue("es")) if e.msgid_plural is not None]
    assert plurals  # the catalogue has plural entries to check
    short = [str(e) for e in plurals if sorted(e.msgstr) != list(range(declared))]
    assert short == []


def test_parser_reads_plurals_contexts_flags_and_continuations(tmp_path):
    po = tmp_path / "django.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Language: es\\n"\n\n'
        '#: a.py:1\n#, fuzzy, python-format\n#| msgid "old"\nmsgid "%(n)s a"\nmsgstr "%(n)s b"\n\n'
        'msgctxt "ctx"\nmsgid ""\n"long "\n"text"\nmsgstr ""\n\n'
        'msgid "one"\nmsgid_plural "many"\nmsgstr[0] "uno"\nmsgstr[1] ""\n\n'
        '#~ msgid "gone"\n#~ msgstr "ido"\n',
        encoding="utf-8",
    )
    fuzzy, context, plural = parse_po(po)
    assert fuzzy.flags == {"fuzzy", "python-format"} and fuzzy.translated
    assert (context.msgctxt, context.msgid, context.translated) == ("ctx", "long text", False)
    assert plural.msgstr == {0: "uno", 1: ""} and not plural.translated
    assert len(problems([fuzzy, context, plural], need_translation=True)) == 3


# --- the source: every wrapped string is in the catalogue and translated ---------------------


def test_every_string_in_the_source_is_translated(tmp_path, monkeypatch, settings):
    """makemessages over the whole project, written into a copy of the catalogues."""
    if not (shutil.which("xgettext") and shutil.which("msgmerge")):
        pytest.fail("GNU gettext is missing: install it (scripts/bootstrap_debian.sh).")
    root = Path(settings.BASE_DIR)
    for child in root.iterdir():
        if child.name != "locale" and not child.name.startswith("."):
            (tmp_path / child.name).symlink_to(child)
    shutil.copytree(LOCALE / "es", tmp_path / "locale" / "es")
    monkeypatch.chdir(tmp_path)
    # The temporary locale comes first, so every file's strings land there.
    settings.LOCALE_PATHS = [tmp_path / "locale"]
    call_command(
        "makemessages", locale=["es"], symlinks=True, ignore_patterns=list(IGNORE), verbosity=0
    )
    entries = parse_po(tmp_path / "locale" / "es" / "LC_MESSAGES" / "django.po")
    committed = {(e.msgctxt, e.msgid) for e in parse_po(catalogue("es"))}
    assert problems(entries, need_translation=True) == []
    assert {(e.msgctxt, e.msgid) for e in entries} == committed, "run makemessages again"


# --- the pages, rendered in Spanish --------------------------------------------------------------


def english_leftovers(page: str) -> list[str]:
    """Catalogue msgids (two words or more, no placeholder) that a Spanish page still shows."""
    found = []
    for entry in parse_po(catalogue("es")):
        text = entry.msgid
        if entry.msgstr.get(0) == text or " " not in text or any(c in text for c in "%{<"):
            continue
        if text in page or html.escape(text) in page:
            found.append(text)
    return found


@pytest.fixture
def space_pages(users, settings, tmp_path):  # noqa: F811 (the imported fixture)
    settings.MEDIA_ROOT = str(tmp_path / "media")
    p = inside_norte()
    space = create_space(
        user=None,
        name="Parque Norte",
        kind="park",
        geom=square(p.x, p.y),
        address="Av. 1",
        audit={item: 1 for item in AUDIT_ITEMS},
        audited_on=dt.date(2024, 1, 10),
    )
    project = create_project(
        user=None, space=space, title="Recuperar el parque", identified_on=dt.date(2024, 1, 15)
    )
    log_activity(user=None, space=space, project=project, date=dt.date(2024, 2, 1), kind="workshop")
    return {
        "/": (None, reverse("public-map")),
        "login": (None, reverse("login")),
        "municipality": (users["norte"], reverse("publicspaces:map")),
        "list": (users["norte"], reverse("publicspaces:list")),
        "detail": (users["norte"], reverse("publicspaces:detail", args=[space.pk])),
        "detail, read only": (users["planner"], reverse("publicspaces:detail", args=[space.pk])),
        "planner map": (users["planner"], reverse("planner-map")),
        "hotspot runs": (users["planner"], reverse("hotspots:run-list")),
    }


@pytest.mark.django_db
def test_pages_in_spanish_show_no_english_string(client, space_pages):
    leftovers = {}
    for name, (user, url) in space_pages.items():
        client.logout()
        if user is not None:
            client.force_login(user)
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="es")
        assert response.status_code == 200, (name, response.status_code)
        page = response.content.decode()
        assert '<html lang="es">' in page, name
        if found := english_leftovers(page):
            leftovers[name] = found
    assert leftovers == {}


@pytest.mark.django_db
def test_the_leftover_check_finds_english(client, space_pages):
    """The same pages in English are full of msgids: the check above can fail."""
    client.force_login(space_pages["detail"][0])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = client.get(space_pages["detail"][1]).content.decode()
    assert '<html lang="en">' in page
    assert len(english_leftovers(page)) > 10
