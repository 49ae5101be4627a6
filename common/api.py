"""The API's shared plumbing: who may call a view, the content type a view picks for
itself, private caching, and CSV cells a spreadsheet cannot run. The JSON parser is in
common/parsers.py (DRF's settings import it while rest_framework.views is loading)."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator, Sequence

from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import BasePermission
from rest_framework.views import APIView

from accounts.roles import is_planner

CACHE_CONTROL = "private, no-store"
_CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class IsPlanner(BasePermission):
    """Police planners and superusers. A view's ``forbidden_message`` tells everyone else
    what only planners may do there."""

    def has_permission(self, request, view) -> bool:
        if is_planner(request.user):
            return True
        message = getattr(view, "forbidden_message", None)
        if message:
            self.message = message  # DRF makes a permission object per request
        return False


class FirstRendererNegotiation(BaseContentNegotiation):
    """Ignores ``Accept`` (and ``?format=``): these views pick their own content type
    (GeoJSON, CSV, MVT), and a client asking for exactly that must not get 406. Errors
    are JSON."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class PrivateAPIView(APIView):
    """Every answer, errors included, is ``Cache-Control: private, no-store``."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = CACHE_CONTROL
        return response


class PlannerAPIView(PrivateAPIView):
    """Planners only, private, and the view's own content type."""

    permission_classes = [IsPlanner]
    content_negotiation_class = FirstRendererNegotiation


def csv_cell(value) -> str | int | float:
    """A CSV cell that a spreadsheet cannot run as a formula: text starting with = + - @
    (or a tab/carriage return) gets a leading apostrophe. Numbers we wrote stay numbers."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.6f}"
    if isinstance(value, int):
        return value
    text = str(value)
    return "'" + text if text.startswith(_CSV_FORMULA_PREFIXES) else text


class _Echo:
    """A file-like object whose write returns the line, for csv.writer in a generator."""

    def write(self, value: str) -> str:
        return value


def csv_lines(
    header: Sequence[str], rows: Iterable[Sequence], *, rows_per_chunk: int = 500
) -> Iterator[str]:
    """The header and the rows as CSV text, a few hundred rows a piece, for a streaming
    response; every cell through :func:`csv_cell`."""
    writer = csv.writer(_Echo())
    # A byte-order mark so that spreadsheets open the UTF-8 text with its accents.
    yield "\ufeff" + writer.writerow(header)
    chunk: list[str] = []
    for row in rows:
        chunk.append(writer.writerow([csv_cell(v) for v in row]))
        if len(chunk) >= rows_per_chunk:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)
