"""Scrub known secret values out of any text before it leaves the process.

Every :class:`rotator.adapters.secret.SecretValue` registers its plain forms here. The
logging pipeline (see :mod:`rotator.output.logs`) runs :func:`scrub` on every line,
so a value that reaches a log by any path (an SDK's DEBUG dump of a request
body, an exception message) is replaced by ``[REDACTED]``. Values are also
registered in the encodings an SDK might log them in: JSON-escaped,
URL-encoded and XML-escaped.

Registering is O(1) and scrubbing is linear in the text, whatever the number
of values known: forms are indexed by their first :data:`_MIN_LENGTH`
characters, and :func:`scrub` looks each position of the text up in that
index. (One regular expression of every value, recompiled at each new value,
made a 1,000-secret run quadratic.)

Text from outside rotator (an API's error message, an exception's text, a
hook's output) goes through :func:`outside_text` before it is kept anywhere:
it is scrubbed *before* it is cut, since a value cut in two no longer matches
its registered forms, and a run that begins a registered form is masked even
when the rest of it is missing. Rotator's own credentials are registered
where they are obtained, like the values it rotates; :func:`register_url`
does it for the passwords of a URL (the journal's).
"""

from __future__ import annotations

import json
import re
import threading
from html import escape
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

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
        # XML-escaped as an SDK writes it: &, <, > and " (html's escape of the
        # first three is XML's; xml.sax.saxutils would import urllib.request).
        escape(value, quote=False).replace('"', "&quot;"),
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
    return _mask(text, partial=False)


def _mask(text: str, *, partial: bool) -> str:
    """Mask every registered form in ``text``; with ``partial``, also any run beginning one.

    A partial run is at least :data:`_MIN_LENGTH` characters long (its
    first ones are an index key), and is masked as far as it matches.
    """
    index = _known.by_prefix
    if not index or len(text) < _MIN_LENGTH:
        return text
    pieces: list[str] = []
    start = i = 0
    last = len(text) - _MIN_LENGTH
    while i <= last:
        candidates = index.get(text[i : i + _MIN_LENGTH])
        if candidates:
            length = next((len(c) for c in candidates if text.startswith(c, i)), 0)
            if not length and partial:
                length = max(_common_prefix(text, i, c) for c in candidates)
            if length:
                pieces.append(text[start:i])
                pieces.append(MASK)
                i += length
                start = i
                continue
        i += 1
    if not pieces:
        return text
    pieces.append(text[start:])
    return "".join(pieces)


def _common_prefix(text: str, at: int, form: str) -> int:
    """Return how many characters of ``text`` from ``at`` on are the start of ``form``."""
    n = 0
    for mine, theirs in zip(text[at:], form, strict=False):
        if mine != theirs:
            break
        n += 1
    return n


#: Ends a text :func:`outside_text` cut short.
ELLIPSIS = "..."


def outside_text(text: str, limit: int) -> str:
    """Return text from outside rotator scrubbed, on one line, and then cut to ``limit`` characters.

    Every adapter passes what it keeps of an outside text (an API's error
    message, an SDK exception's text, a hook's output) through this, once,
    at the point it is taken in. The order matters: a registered value cut
    in two matches none of its forms, so a cut-then-scrubbed message kept
    most of a value. Here every registered form is masked first, and so is
    any run of 8 characters or more that begins one (an answer may itself
    echo a value cut short); the text is then put on one line (a message
    never spans lines of a log) and cut, never inside a mask. What remains
    holds no 8-character start of a registered value, cut or not.
    """
    clean = _mask(" ".join(_mask(text, partial=True).split()), partial=True)
    if len(clean) <= limit:
        return clean
    if limit <= len(ELLIPSIS):
        return ELLIPSIS[: max(limit, 0)]
    return _without_cut_mask(clean[: limit - len(ELLIPSIS)]) + ELLIPSIS


def _without_cut_mask(text: str) -> str:
    """Drop a mask the cut left unfinished at the end of ``text`` (``...[REDA``)."""
    start = text.rfind(MASK[0], max(0, len(text) - len(MASK) + 1))
    if start >= 0 and MASK.startswith(text[start:]):
        return text[:start]
    return text


#: Query parameters of a URL that hold a credential (libpq's ``password`` and
#: ``sslpassword``, a driver's ``access_token``...); ``passfile`` names one.
_SECRET_PARAM = re.compile(r"pass|pwd|secret|token|credential|api_?key", re.IGNORECASE)


def is_secret_param(name: str) -> bool:
    """Tell whether a URL query parameter called ``name`` holds (or names) a credential."""
    return bool(_SECRET_PARAM.search(name))


def register_url(url: str) -> None:
    """Register the password of ``url`` and its password-like query parameters' values.

    The journal URL, for one, may carry rotator's database password in
    either place (``postgresql://u:PASS@h/db`` or ``...?password=PASS``);
    both the raw and the percent-decoded forms are registered.
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return
    found = [password] if password else []
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=False) if is_secret_param(k)]
    for value in found:
        for form in (value, unquote(value)):
            register(form)
            # A password with an unencoded "@" is split there by other URL
            # parsers, whose errors then quote what follows it.
            for at in range(len(form)):
                if form[at] == "@":
                    register(form[at + 1 :])


def forget_all() -> None:
    """Drop every registered value (tests use this between cases)."""
    with _known.lock:
        _known.by_prefix = {}
