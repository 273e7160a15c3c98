"""Durations as policy files write them: ``45s``, ``1d12h``, ``P30D``, ``PT12H``.

:data:`Duration` is a pydantic-ready ``timedelta`` that accepts those forms
(and a plain number of seconds), refuses negatives and anything longer than
:data:`MAX_DURATION` (10 years), and names the problem.
"""

from __future__ import annotations

import functools
import math
import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_SHORT = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_ISO = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
MAX_DURATION = timedelta(days=3650)
"""The longest duration a policy may write: 10 years (3650 days).

No rotation interval, grace or age is sensibly longer, so a longer one is a
typo; bounding every duration at parse time also keeps ``timedelta`` (and
the dates computed from it) from overflowing on input such as ``999999999w``.
"""
_MAX_SECONDS = MAX_DURATION.total_seconds()


def parse_duration(text: str) -> timedelta:
    """Parse a duration; raise ``ValueError`` naming the accepted forms if malformed."""
    raw = text.strip()
    seconds: float
    short = _SHORT.match(raw)
    iso = _ISO.match(raw.upper()) if raw[:1] in "Pp" else None
    if raw and short and any(short.groups()):
        seconds = sum(int(g) * _UNITS[u] for g, u in zip(short.groups(), "wdhms", strict=True) if g)
    elif iso and any(iso.groups()) and not raw.upper().endswith("T"):
        w, d, h, m, s = iso.groups()
        seconds = (
            int(w or 0) * 604800
            + int(d or 0) * 86400
            + int(h or 0) * 3600
            + int(m or 0) * 60
            + float(s or 0)
        )
    else:
        raise ValueError(
            f"malformed duration {text!r}: use e.g. 45s, 90m, 12h, 30d, 2w, 1d12h or P30D"
        )
    return _bounded(seconds, repr(text))


def _bounded(seconds: float, shown: str) -> timedelta:
    """Return a non-negative number of seconds as a timedelta; ValueError if above the maximum.

    Checked on the number, before ``timedelta`` sees it: ``timedelta`` raises
    OverflowError past 999,999,999 days.
    """
    if seconds > _MAX_SECONDS:
        raise ValueError(
            f"duration {shown} is longer than 10 years (the most is "
            f"{format_duration(MAX_DURATION)})"
        )
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Format a duration in the short form (``1d12h``; ``0s`` for zero)."""
    total = int(value.total_seconds())
    if total == 0:
        return "0s"
    sign = "-" if total < 0 else ""
    total = abs(total)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)


@functools.lru_cache(maxsize=1024)
def _from_text(value: str) -> timedelta:
    """Parse a duration as written in a policy, refusing a negative one.

    Cached: 100,000 policies write a handful of distinct durations, and
    ``timedelta`` is immutable, so they share one object per text.
    """
    if value.strip().startswith("-"):
        raise ValueError(f"negative duration {value!r}")
    return parse_duration(value)


def _coerce(value: Any) -> timedelta:
    if isinstance(value, bool):
        raise ValueError("a duration is a string such as 30d, not a boolean")
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, int | float):
        result = _from_seconds(value)
    elif isinstance(value, str):
        result = _from_text(value)
    else:
        raise ValueError(f"a duration is a string such as 30d, not {type(value).__name__}")
    if result < timedelta(0):
        raise ValueError("negative duration")
    if result > MAX_DURATION:
        raise ValueError(
            f"duration {format_duration(result)} is longer than 10 years (the most is "
            f"{format_duration(MAX_DURATION)})"
        )
    return result


def _from_seconds(value: float) -> timedelta:
    """Return a number of seconds as a duration, refusing NaN, negatives and huge numbers."""
    if math.isnan(value):
        raise ValueError(
            "a duration is a number of seconds or a string such as 30d, not a number (NaN)"
        )
    if value < 0:
        raise ValueError(f"negative duration {value!r}")
    return _bounded(value, f"{value!r} seconds")


Duration = Annotated[
    timedelta,
    BeforeValidator(_coerce),
    PlainSerializer(format_duration, return_type=str),
]
