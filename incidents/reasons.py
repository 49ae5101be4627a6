"""Why a row of an import was refused: a code and its parameters, written in the reader's
language when shown.

A :class:`Reason` is the English sentence (a ``str``, so logs, the command's report and the
CSV keep reading as before) that also carries its ``code`` and ``params``. The batch keeps
both (``RefusedRow.reason_code``/``reason_params``); pages and the API render the sentence
again with :func:`render_reason`, in the active language. The templates are marked with
``gettext_noop``: the English text is the template itself, the translation is looked up
when rendering.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.utils import formats
from django.utils.translation import gettext, gettext_noop

# code -> (summary of the rows refused for it, the full sentence with %(name)s parameters)
TEMPLATES: dict[str, tuple[str, str]] = {
    "missing_coordinates": (
        gettext_noop("missing coordinates"),
        gettext_noop("missing coordinates"),
    ),
    "coordinates_not_numbers": (
        gettext_noop("coordinates are not numbers"),
        gettext_noop("coordinates are not numbers: %(first)s, %(second)s"),
    ),
    "coordinates_zero": (
        gettext_noop("coordinates are 0,0 (location missing)"),
        gettext_noop("coordinates are 0,0 (location missing)"),
    ),
    "coordinates_not_transformable": (
        gettext_noop("coordinates cannot be transformed from the given CRS"),
        gettext_noop("coordinates cannot be transformed from the given CRS"),
    ),
    "latitude_out_of_range": (
        gettext_noop("latitude out of range"),
        gettext_noop("latitude %(value)s is out of range"),
    ),
    "longitude_out_of_range": (
        gettext_noop("longitude out of range"),
        gettext_noop("longitude %(value)s is out of range"),
    ),
    "placeholder_location": (
        gettext_noop("known placeholder location"),
        gettext_noop("known placeholder location (%(place)s)"),
    ),
    "missing_date": (gettext_noop("missing date"), gettext_noop("missing date")),
    "unparsable_date": (gettext_noop("unparsable date"), gettext_noop("unparsable date %(value)s")),
    "future_date": (
        gettext_noop("date in the future"),
        gettext_noop("date %(value)s is in the future"),
    ),
    "unparsable_end_date": (
        gettext_noop("unparsable end date"),
        gettext_noop("unparsable end date %(value)s"),
    ),
    "window_ends_before_start": (
        gettext_noop("the window ends before it starts"),
        gettext_noop("the window ends (%(end)s) before it starts (%(start)s)"),
    ),
    "label_too_long": (
        gettext_noop("label too long"),
        gettext_noop("label longer than %(limit)s characters"),
    ),
    "missing_id": (gettext_noop("missing id"), gettext_noop("missing id in column %(column)s")),
    "id_too_long": (
        gettext_noop("id too long"),
        gettext_noop("id longer than %(limit)s characters"),
    ),
    "outside_regions": (
        gettext_noop("outside every loaded region"),
        gettext_noop("outside every loaded region"),
    ),
    "duplicate_id": (
        gettext_noop("duplicate id"),
        gettext_noop("duplicate id %(id)s (first at %(file)s row %(row)s)"),
    ),
    "geometry_null": (gettext_noop("geometry is null"), gettext_noop("geometry is null")),
    "geometry_not_point": (
        gettext_noop("geometry is not a point"),
        gettext_noop("geometry is a %(kind)s, not a point"),
    ),
}
# A reason written elsewhere (a lower layer's English message, or a row refused before
# reasons had codes): shown as it was written.
OTHER = "other"

# Sample parameters of each code, for tests and the documentation of the codes.
SAMPLE_PARAMS: dict[str, dict] = {
    "coordinates_not_numbers": {"first": "'abc'", "second": "'-77.1'"},
    "latitude_out_of_range": {"value": 95.5},
    "longitude_out_of_range": {"value": -190.25},
    "placeholder_location": {"place": "0, 0"},
    "unparsable_date": {"value": "'not-a-date'"},
    "future_date": {"value": "'2999-01-01'"},
    "unparsable_end_date": {"value": "'soon'"},
    "window_ends_before_start": {"end": "'2024-01-01'", "start": "'2024-02-01'"},
    "label_too_long": {"limit": 300},
    "missing_id": {"column": "'id'"},
    "id_too_long": {"limit": 120},
    "duplicate_id": {"id": "'A1'", "file": "a.csv", "row": 2},
    "geometry_not_point": {"kind": "LineString"},
}


class Reason(str):
    """The English sentence of a refusal, with its code and parameters."""

    code: str
    params: dict

    def __new__(cls, code: str, params: Mapping | None = None) -> Reason:
        params = dict(params or {})
        text = _format(TEMPLATES[code][1], params, localize=False)
        reason = super().__new__(cls, text)
        reason.code, reason.params = code, params
        return reason

    def __reduce__(self):
        return (Reason, (self.code, self.params))

    def render(self) -> str:
        return render_reason(self.code, self.params, self)


def reason(code: str, **params) -> Reason:
    return Reason(code, params)


def code_of(text: str) -> tuple[str, dict]:
    """The code and parameters of a reason (``OTHER`` and the text for a plain string)."""
    if isinstance(text, Reason):
        return text.code, text.params
    if text == "geometry is null":
        return "geometry_null", {}
    return OTHER, {}


def coded(text: str) -> str:
    """A lower layer's English reason as a :class:`Reason` when it has a code."""
    code, params = code_of(text)
    return Reason(code, params) if code in TEMPLATES else text


def _format(template: str, params: Mapping, *, localize: bool) -> str:
    if not params:
        return template
    values = {
        k: (formats.number_format(v) if localize and isinstance(v, float) else v)
        for k, v in params.items()
    }
    return template % values


def render_reason(code: str, params: Mapping | None, text: str = "") -> str:
    """The sentence of a reason in the active language; ``text`` (the English sentence
    kept with the row) when the code is unknown."""
    if code not in TEMPLATES:
        return text
    return _format(gettext(TEMPLATES[code][1]), params or {}, localize=True)


def summary_key(text: str) -> str:
    """What refused rows are counted by in a batch's report: the English summary of the
    reason's code (translated when shown, :func:`render_summary`)."""
    code, _ = code_of(text)
    if code in TEMPLATES:
        return TEMPLATES[code][0]
    return text.split(":")[0].split(" '")[0]


def render_summary(key: str) -> str:
    """A report's summary in the active language (older reports count by English text,
    translated too when it is a known summary)."""
    return gettext(key) if key in SUMMARIES else key


SUMMARIES = frozenset(summary for summary, _ in TEMPLATES.values())
