"""Name matching and display helpers for boundary names from many publishers."""

import unicodedata

_LOWER_WORDS = {"de", "del", "la", "las", "los", "y", "el", "en"}


def cell_text(value) -> str:
    """A value read from a data file as trimmed text; empty for missing ones (None, and the
    NaN / None / <NA> that pandas writes for empty cells)."""
    if value is None:
        return ""
    text = str(value).strip()
    return "" if text.lower() in ("nan", "none", "<na>") else text


def normalize_name(value: str) -> str:
    """Accent-, case- and space-insensitive key: "Álvaro  Obregón" -> "alvaro obregon"."""
    decomposed = unicodedata.normalize("NFKD", str(value))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.casefold().split())


def display_name(value: str) -> str:
    """Title case for names published in capitals ("SAN MARTIN DE PORRES" ->
    "San Martin de Porres"); names already in mixed case are kept as published."""
    text = " ".join(str(value).split())
    if text != text.upper():
        return text
    words = text.lower().split(" ")
    return " ".join(
        w if (i and w in _LOWER_WORDS) else w[:1].upper() + w[1:] for i, w in enumerate(words)
    )
