"""Did-you-mean: the closest known word to a misspelt one, for an error to suggest."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, known: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """Return the known word most like ``word``, or ``None`` if none is ``cutoff`` alike."""
    found = difflib.get_close_matches(word, list(known), n=1, cutoff=cutoff)
    return found[0] if found else None


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """Return ``"; did you mean 'X'?"`` for the closest known word, or ``""``."""
    found = closest(word, known)
    return f"; did you mean '{found}'?" if found is not None else ""
