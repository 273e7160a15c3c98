"""Scrub known secret values out of any text before it leaves the process.

Every :class:`rotator.secret.SecretValue` registers its plain forms here. The
logging pipeline (see :mod:`rotator.logs`) runs :func:`scrub` on every line,
so a value that reaches a log by any path (an SDK's DEBUG dump of a request
body, an exception message) is replaced by ``[REDACTED]``. Values are also
registered in the encodings an SDK might log them in: JSON-escaped,
URL-encoded and XML-escaped.
"""

from __future__ import annotations

import json
import re
import threading
from urllib.parse import quote, quote_plus
from xml.sax.saxutils import escape

MASK = "[REDACTED]"
# Shorter strings are too likely to occur by chance (and no credential
# rotator mints is this short: the random issuer's minimum is 16).
_MIN_LENGTH = 8


class _Known:
    """The registered values and one compiled pattern matching any of them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: set[str] = set()
        self.pattern: re.Pattern[str] | None = None


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
    new = {f for f in _forms(value) if len(f) >= _MIN_LENGTH} - _known.values
    if not new:
        return
    with _known.lock:
        _known.values.update(new)
        # Longest first, so that a value containing another is masked whole.
        ordered = sorted(_known.values, key=len, reverse=True)
        _known.pattern = re.compile("|".join(re.escape(v) for v in ordered))


def scrub(text: str) -> str:
    """Return ``text`` with every registered secret value masked."""
    pattern = _known.pattern
    if pattern is None or not text:
        return text
    return pattern.sub(MASK, text)


def forget_all() -> None:
    """Drop every registered value (tests use this between cases)."""
    with _known.lock:
        _known.values.clear()
        _known.pattern = None
