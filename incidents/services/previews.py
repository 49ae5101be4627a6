"""The upload preview: files uploaded from the planner page wait under
INCIDENT_UPLOAD_ROOT/previews/<token>/ (never under MEDIA_ROOT: raw police files must
never be downloadable) while the planner looks at their first rows and picks which column
plays which role; confirming starts the import (``start_web_import``) with that mapping,
exactly (``exact_columns``: a role left at "none" is not guessed again), and removes the
folder.

A token is random and only ever read back through ``TOKEN_RE``: no posted path is used. The
folder's ``meta.json`` names the user who uploaded; another user's token is refused (the
view also keeps the tokens of its session). A preview nobody confirms is removed after a
day by ``sweep_previews``, which the import pages call.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import time
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.utils.translation import gettext as _

from incidents.models import ImportBatch
from incidents.services.batches import (
    COLUMN_OPTIONS,
    _save_upload,
    normalize_options,
    option_errors,
    safe_file_names,
    start_web_import,
    upload_errors,
)
from incidents.services.bounds import IncidentFileError, inspect_csv
from incidents.services.reading import (
    ENCODING_ERRORS,
    csv_header,
    read_vector_points,
)
from incidents.services.request import VECTOR_SUFFIXES, guess_columns, profile_named

PREVIEW_FOLDER = "previews"
PREVIEW_ROWS = 10
PREVIEW_MAX_AGE_S = 24 * 3600
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{32}")
META = "meta.json"
# Column names of a binary file read as text.
CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1f\ufffd]")
# The roles a column can play, in the order the preview offers them; the location ones
# only for tables (a vector file's points are its geometry).
ROLES = ("lon", "lat", "x", "y", "date", "time", "date_end", "time_end", "category", "id")
LOCATION_ROLES = ("lon", "lat", "x", "y")
# Step-one options that name a column: with one of them the import starts at once.
NAMED_COLUMNS = tuple(name for name in COLUMN_OPTIONS if name != "crs")


class PreviewNotFound(Exception):
    """No preview of this user under this token (unknown, expired, or another user's)."""


@dataclass
class FilePreview:
    name: str
    vector: bool
    header: list[str]
    rows: list[tuple[int, list[str]]] = field(default_factory=list)


@dataclass
class StagedPreview:
    token: str
    directory: Path
    user_id: int | None
    options: dict
    files: list[dict]

    @property
    def paths(self) -> list[Path]:
        return [self.directory / entry["name"] for entry in self.files]

    @property
    def tables(self) -> bool:
        """Whether a file is a table (then the location columns are chosen)."""
        return any(not _is_vector(path) for path in self.paths)


def previews_root() -> Path:
    return Path(settings.INCIDENT_UPLOAD_ROOT) / PREVIEW_FOLDER


def names_a_column(options: Mapping) -> bool:
    """Whether the upload form already names a column (then there is no preview)."""
    return any(str(options.get(name) or "").strip() for name in NAMED_COLUMNS)


def _is_vector(path: Path) -> bool:
    return path.suffix.lower() in VECTOR_SUFFIXES


def _unreadable(name: str, error: object) -> IncidentFileError:
    return IncidentFileError(
        _("%(name)s cannot be read: %(error)s") % {"name": name, "error": error}
    )


def read_preview(path: Path, *, crs: str | None = None, rows: int = PREVIEW_ROWS) -> FilePreview:
    """The header and first rows of a file as text (row numbers as the report gives them:
    the CSV header is row 1, features count from 1). Raises IncidentFileError."""
    if _is_vector(path):
        table, _refused = read_vector_points(path, crs)
        header = [c for c in table.columns if c not in ("__lon", "__lat")]
        head = table.head(rows)
        return FilePreview(
            name=path.name,
            vector=True,
            header=header,
            rows=[
                (int(number), [str(v) for v in values])
                for number, values in zip(head.index, head[header].to_numpy().tolist(), strict=True)
            ],
        )
    layout = inspect_csv(path)  # too wide or too long rows: refused before pandas reads
    header = csv_header(path, layout)
    try:
        frame = pd.read_csv(
            path,
            sep=layout.delimiter,
            encoding=layout.encoding,
            encoding_errors=ENCODING_ERRORS,
            dtype=str,
            keep_default_na=False,
            nrows=rows,
            engine="c",
            on_bad_lines="error",
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise _unreadable(path.name, exc) from None
    if not header or all(not name or name.startswith("Unnamed:") for name in header):
        raise _unreadable(path.name, _("no column names in its first line"))
    if any(CONTROL_RE.search(name) for name in header):
        raise _unreadable(path.name, _("it is not a text table (CSV)"))
    values = frame.to_numpy(dtype=object).tolist()
    return FilePreview(
        name=path.name,
        vector=False,
        header=header,
        rows=[(number, [str(v) for v in row]) for number, row in enumerate(values, start=2)],
    )


def _write_meta(directory: Path, meta: dict) -> None:
    (directory / META).write_text(json.dumps(meta), encoding="utf-8")


def stage_preview(*, user, uploaded_files: Iterable, options: Mapping) -> StagedPreview:
    """Checks the upload and options, keeps the files for the preview and reads their
    first rows. Raises ValidationError ("files": a file that cannot be read) and keeps
    nothing when anything is wrong."""
    uploaded_files = list(uploaded_files)
    errors = option_errors(options)
    if problems := upload_errors(uploaded_files):
        errors["files"] = problems
    if errors:
        raise ValidationError(errors)
    sweep_previews()
    token = secrets.token_urlsafe(24)
    directory = previews_root() / token
    directory.mkdir(parents=True, exist_ok=False)
    try:
        names = safe_file_names(upload.name for upload in uploaded_files)
        files = [
            _save_upload(upload, directory / name)
            for upload, name in zip(uploaded_files, names, strict=True)
        ]
        staged = StagedPreview(
            token=token,
            directory=directory,
            user_id=getattr(user, "pk", None),
            options=normalize_options(options),
            files=files,
        )
        problems = []
        for path in staged.paths:
            try:
                read_preview(path, crs=staged.options["crs"])
            except IncidentFileError as exc:
                problems.append(str(exc))
        if problems:
            raise ValidationError({"files": problems})
        _write_meta(
            directory,
            {"user": staged.user_id, "options": staged.options, "files": files},
        )
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return staged


def load_preview(*, user, token: str) -> StagedPreview:
    """The preview kept under ``token`` for ``user``; raises PreviewNotFound."""
    if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
        raise PreviewNotFound(token)
    directory = previews_root() / token
    try:
        if directory.is_symlink():
            raise PreviewNotFound(token)
        meta = json.loads((directory / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise PreviewNotFound(token) from None
    if meta.get("user") is None or meta.get("user") != getattr(user, "pk", None):
        raise PreviewNotFound(token)
    if time.time() - (directory / META).stat().st_mtime > PREVIEW_MAX_AGE_S:
        discard_preview(token=token)
        raise PreviewNotFound(token)
    return StagedPreview(
        token=token,
        directory=directory,
        user_id=meta["user"],
        options=dict(meta.get("options") or {}),
        files=list(meta.get("files") or []),
    )


def preview_tables(*, staged: StagedPreview) -> list[FilePreview]:
    """Header and first rows of every file kept (IncidentFileError if one is unreadable)."""
    return [read_preview(path, crs=staged.options.get("crs")) for path in staged.paths]


def guessed_mapping(*, staged: StagedPreview, header: list[str]) -> dict[str, str]:
    """Role → column the import would take for it by itself ("" for none)."""
    try:
        profile = profile_named(staged.options.get("profile"))
    except IncidentFileError:
        profile = None
    guessed = guess_columns(header, profile)
    return {role: guessed.get(role) or "" for role in ROLES}


def missing_columns(*, staged: StagedPreview, options: Mapping) -> list[str]:
    """Messages for the chosen columns some file lacks; [] when every file has them."""
    messages = []
    for path in staged.paths:
        vector = _is_vector(path)
        header = set(read_preview(path, crs=options.get("crs"), rows=0).header)
        for role in ROLES:
            column = options.get(role)
            if not column or (vector and role in LOCATION_ROLES) or column in header:
                continue
            messages.append(
                _("%(file)s has no column “%(column)s”.") % {"file": path.name, "column": column}
            )
    return messages


def start_preview_import(*, user, staged: StagedPreview, options: Mapping) -> ImportBatch:
    """Starts the import of the kept files with the options and columns chosen (exactly
    those columns); removes the preview once the batch has its files. Raises
    ValidationError (and keeps the preview) when something is wrong."""
    if problems := missing_columns(staged=staged, options=options):
        raise ValidationError({None: problems})
    with ExitStack() as files:
        uploads = []
        for entry, path in zip(staged.files, staged.paths, strict=True):
            uploads.append(File(files.enter_context(path.open("rb")), name=entry["name"]))
        batch = start_web_import(
            user=user, uploaded_files=uploads, options={**options, "exact_columns": True}
        )
    discard_preview(token=staged.token)
    return batch


def discard_preview(*, token: str) -> None:
    if isinstance(token, str) and TOKEN_RE.fullmatch(token):
        shutil.rmtree(previews_root() / token, ignore_errors=True)


def sweep_previews(*, max_age_s: float = PREVIEW_MAX_AGE_S) -> int:
    """Removes the previews older than ``max_age_s`` (nobody confirmed them); returns how
    many. A link is never followed."""
    try:
        entries = list(previews_root().iterdir())
    except OSError:
        return 0
    removed = 0
    now = time.time()
    for path in entries:
        if not TOKEN_RE.fullmatch(path.name) or path.is_symlink() or not path.is_dir():
            continue
        try:
            age = now - path.stat().st_mtime
        except OSError:
            continue
        if age > max_age_s:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed
