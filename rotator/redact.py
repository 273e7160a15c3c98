"""Scrub known secret values out of any text before it leaves the process.

Every :class:`rotator.secret.SecretValue` registers its plain forms here. The
logging pipeline (see :mod:`rotator.logs`) runs :func:`scrub` on every line,
so a value that reaches a log by any path (an SDK's DEBUG dump of a request
body, an exception message) is replaced by ``[REDACTED]``. Values are also
registered in the encodings an SDK might log them in: JSON-escaped,
URL-encoded and XML-escaped.

Registering is O(1) and scrubbing is linear in the text, whatever the number
of values known: forms are indexed by their first :data:`_MIN_LENGTH`
characters, and :func:`scrub` looks each position of the text up in that
index. (One regular expression of every value, recompiled at each new value,
made a 1,000-secret run quadratic.)
"""

from __future__ import annotations

import json
import threading
from urllib.parse import quote, quote_plus
from xml.sax.saxutils import escape

MASK = "[REDACTED]"
# Shorter strings are too likely to occur by chance (and no credential
# rotator mints is this short: the random issuer's minimum is 16).
_MIN_LENGTH = 8


class _Known:
    """The registered forms, indexed by their first _MIN_LENGTH characters."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_prefix: dict[str, tuple[str, ...]] = {}


_known = _Known()


def _forms(value: str) -> set[str]:
    return {
        value,
        json.dumps(value)[1:-1],
        quote_plus(value),
        quote(value, safe=""),
        escape(value, {'"': "&quot;"}),
    }


def register(value: str) -> None:
    """Remember a secret value (and its usual encodings) so that it is scrubbed."""
    if len(value) < _MIN_LENGTH:
        return
    with _known.lock:
        for form in _forms(value):
            if len(form) < _MIN_LENGTH:
                continue
            prefix = form[:_MIN_LENGTH]
            known = _known.by_prefix.get(prefix, ())
            if form not in known:
                # Longest first, so that a value containing another is masked whole.
                _known.by_prefix[prefix] = tuple(sorted((*known, form), key=len, reverse=True))


def scrub(text: str) -> str:
    """Return ``text`` with every registered secret value masked."""
    index = _known.by_prefix
    if not index or len(text) < _MIN_LENGTH:
        return text
    pieces: list[str] = []
    start = i = 0
    last = len(text) - _MIN_LENGTH
    while i <= last:
        candidates = index.get(text[i : i + _MIN_LENGTH])
        if candidates:
            match = next((c for c in candidates if text.startswith(c, i)), None)
            if match is not None:
                pieces.append(text[start:i])
                pieces.append(MASK)
                i += len(match)
                start = i
                continue
        i += 1
    if not pieces:
        return text
    pieces.append(text[start:])
    return "".join(pieces)


def forget_all() -> None:
    """Drop every registered value (tests use this between cases)."""
    with _known.lock:
        _known.by_prefix = {}
