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
from django.test import Client
from django.urls import reverse

from hotspots.tests.hotspot_fixtures import gistar_run, town  # noqa: F401 (fixtures)
from incidents.models import ImportBatch
from incidents.tests.test_web_import import BAD_CSV, OPTIONS, _csv
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


# --- English the catalogue does not know: sentences written by the server ----------------------
#
# The msgid check above cannot see a sentence the server writes itself (a run's summary, a
# refused row's reason, a region's name from a data pack, a number formatted by Python): it
# is no msgid. These checks read the visible text of a page (no tags, scripts or styles) and
# fail on English words that are not Spanish, and on numbers grouped with a comma.

# Words of English sentences that are not Spanish words (nor units, codes or method names).
ENGLISH_WORDS = frozenset(
    """the and of with in is are was were not from to by at on for this that which an or
    be have it its their they there into than these those would could should will
    incidents incident cells cell zone zones hot cold significant stability approximation
    merged extent data rows row refused bandwidth peak forecast kernel density cluster
    clusters points steps step weekly monthly pattern unparsable missing coordinates
    run runs batch batches space spaces project projects activity activities users
    neighborhood neighborhoods district districts region regions category categories
    label labels source sources""".split()
)
# Names in the fixtures' data and technical words that stay as they are in Spanish.
ALLOWED_WORDS = frozenset({"barrio", "kernel"})  # "densidad kernel" is Spanish too
COMMA_GROUPED = re.compile(r"(?<![\d.,])[1-9]\d{0,2}(?:,\d{3})+(?![\d,])")


def visible_text(page: str) -> str:
    """What a reader sees: the page without comments, scripts, styles and tags, plus the
    titles, labels and placeholders of its elements."""
    page = re.sub(r"<!--.*?-->", " ", page, flags=re.S)
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    attributes = re.findall(r'\s(?:title|aria-label|placeholder|alt)="([^"]*)"', page)
    text = re.sub(r"<[^>]+>", "\n", page)
    return html.unescape("\n".join([text, *attributes]))


def english_sentences(page: str) -> list[str]:
    """Pieces of a page's visible text with an English word in them (each line once), and
    numbers grouped with a comma the English way."""
    found = []
    for line in visible_text(page).splitlines():
        line = " ".join(line.split())
        # Identifiers (run-owner, points-hull, category=category) are codes, not English.
        plain = " ".join(t for t in line.split() if not re.search(r"[-_=/@.]\w", t))
        words = {w.lower() for w in re.findall(r"[^\W\d_]+", plain)}
        if (words & ENGLISH_WORDS) - ALLOWED_WORDS and line not in found:
            found.append(line)
        found += [f"number {n!r} in: {line}" for n in COMMA_GROUPED.findall(line)]
    return found


@pytest.fixture
def pages_with_data(space_pages, users, gistar_run, settings):  # noqa: F811
    """The main pages with real data in them: a Gi* run computed by the service (run page,
    report, list, planner map), an import with refused rows, the public spaces pages, an
    the admin."""
    planner = users["planner"]
    client = Client()
    client.force_login(planner)
    client.post(reverse("incidents:import-new"), {**OPTIONS, "files": _csv(BAD_CSV, "bad.csv")})
    batch = ImportBatch.objects.get(status=ImportBatch.Status.FAILED)
    assert batch.rows_refused == 2
    admin = type(planner).objects.create_superuser("root", password="a-Long-pass-123")
    pages = dict(space_pages)
    pages.update(
        {
            "run page": (planner, reverse("hotspots:run-detail", args=[gistar_run.pk])),
            "run report": (planner, reverse("hotspots:run-report", args=[gistar_run.pk])),
            "import list": (planner, reverse("incidents:import-list")),
        }
    )
    pages.update(
        {
            "import batch": (planner, reverse("incidents:import-detail", args=[batch.pk])),
            "admin index": (admin, reverse("admin:index")),
            "admin runs": (admin, reverse("admin:hotspots_hotspotrun_changelist")),
            "admin spaces": (admin, reverse("admin:publicspaces_publicspace_changelist")),
        }
    )
    return pages


@pytest.mark.django_db
def test_pages_in_spanish_show_no_english_sentence(client, pages_with_data):
    english = {}
    for name, (user, url) in pages_with_data.items():
        client.logout()
        if user is not None:
            client.force_login(user)
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="es")
        assert response.status_code == 200, (name, response.status_code)
        page = response.content.decode()
        assert '<html lang="es"' in page, name
        if found := english_sentences(page):
            english[name] = found
    assert english == {}, "\n".join(f"{k}: {v}" for k, v in english.items())


def test_the_english_sentence_check_finds_server_text():
    page = (
        "<p>Ejecución terminada: 9,981 incidents in 12,778 cells (150 m)</p>"
        "<script>var the = 1;</script><td>Boston (extent of the 311 data)</td>"
    )
    assert english_sentences(page) == [
        "Ejecución terminada: 9,981 incidents in 12,778 cells (150 m)",
        "number '9,981' in: Ejecución terminada: 9,981 incidents in 12,778 cells (150 m)",
        "number '12,778' in: Ejecución terminada: 9,981 incidents in 12,778 cells (150 m)",
        "Boston (extent of the 311 data)",
    ]
    spanish = "<p>9 981 incidentes en 12 778 celdas; PAI 2,43; una zona al 5,0 %</p>"
    assert english_sentences(spanish) == []


def test_every_refusal_reason_reads_in_spanish():
    """A refused row's reason is a code and its values, written in the reader's language."""
    from django.utils import translation

    from incidents.reasons import SAMPLE_PARAMS, SUMMARIES, TEMPLATES, Reason, render_summary

    english = {}
    for code in TEMPLATES:
        reason = Reason(code, SAMPLE_PARAMS.get(code))
        with translation.override("es"):
            spanish, summary = reason.render(), render_summary(TEMPLATES[code][0])
        assert spanish != str(reason) and summary != TEMPLATES[code][0], code
        if found := english_sentences(f"<p>{spanish}</p><p>{summary}</p>"):
            english[code] = found
    assert english == {}
    assert set(SAMPLE_PARAMS) <= set(TEMPLATES) and len(SUMMARIES) > 10
    with translation.override("es"):
        assert Reason("latitude_out_of_range", {"value": 95.5}).render() == (
            "la latitud 95,5 está fuera de rango"
        )
