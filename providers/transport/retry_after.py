"""How long an answer asks rotator to wait: its ``Retry-After``, read one way for every adapter.

``Retry-After`` (RFC 9110, section 10.2.3) comes in two forms, both read:

- delay-seconds, ``120``: that many seconds. A decimal fraction (``1.5``)
  is accepted too, as some servers send one; nothing else is (no sign, no
  exponent, no ``inf`` or ``nan``);
- an HTTP date, ``Wed, 01 Jan 2026 12:00:30 GMT``: the seconds until then,
  counted from the answer's own ``Date`` when it has one (both stamps are
  then the server's clock, so a clock here that is off does not matter),
  else from the ``now`` the caller passes (its runtime's clock). A date
  already past asks for no wait: 0.

Anything else (a negative number, a word, an unreadable date, a date with
nothing to count it from, an empty value) asks for nothing: ``None``, and the
caller's own backoff decides. A server that sends garbage is not trusted to
pace rotator, and reading garbage as "0" would retry at once, the worst
answer to a server that is struggling. A wait longer than
:data:`LONGEST_WAIT` is cut to it, so that no reading is ever infinite; each
caller cuts it further to what its own loop allows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

#: The longest wait a ``Retry-After`` is read as (one day), in seconds.
LONGEST_WAIT = 86_400.0

#: delay-seconds: ASCII digits, maybe a decimal fraction (``str.isdigit`` takes other scripts).
_DELAY_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def header_value(headers: Any, name: str) -> object:
    """Return header ``name`` of ``headers`` whatever the case of its name; None if absent.

    ``headers`` may be any mapping (a plain ``dict`` whose keys are in any
    case, as botocore's are, or a case-insensitive one), an object with a
    ``get`` (``http.client.HTTPMessage``), or None.
    """
    if isinstance(headers, Mapping):
        wanted = name.lower()
        for key, value in headers.items():
            if isinstance(key, str) and key.lower() == wanted:
                return value
        return None
    get = getattr(headers, "get", None)
    return get(name) if callable(get) else None


def delay_seconds(raw: object, unit: float = 1.0) -> float | None:
    """Return the seconds of a delay-seconds value, at most :data:`LONGEST_WAIT`; else None.

    ``unit`` is the seconds one unit of ``raw`` stands for: 0.001 for a
    header counting milliseconds (Azure's ``retry-after-ms``).
    """
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str) and _DELAY_SECONDS.fullmatch(raw.strip()):
        value = float(raw.strip())  # so many digits they overflow read as inf: cut below
    else:
        return None
    if math.isnan(value) or value < 0:
        return None
    return min(value * unit, LONGEST_WAIT)


def http_date(raw: object) -> datetime | None:
    """Return the instant an HTTP date names (UTC when it names no zone); None if unreadable."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        when = parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def retry_after(raw: object, now: datetime | None) -> float | None:
    """Return the seconds a ``Retry-After`` value asks to wait (see the module); else None.

    ``now`` is what an HTTP date is counted from; without it a date is not read.
    """
    seconds = delay_seconds(raw)
    if seconds is not None:
        return seconds
    when = http_date(raw)
    if when is None or now is None:
        return None
    return min(max(0.0, (when - now).total_seconds()), LONGEST_WAIT)


def server_time(headers: Any) -> datetime | None:
    """Return the time the server says it answered (its ``Date`` header), if readable."""
    return http_date(header_value(headers, "Date"))


def asked_wait(headers: Any, now: datetime | None = None) -> float | None:
    """Return the seconds an answer's ``Retry-After`` asks to wait; None if nothing readable.

    An HTTP date counts from the answer's ``Date``, else from ``now``.
    """
    return retry_after(header_value(headers, "Retry-After"), server_time(headers) or now)
