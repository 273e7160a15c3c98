"""The wall clock, injectable.

Everything that needs the time takes a ``Clock`` (a callable returning an
aware UTC datetime) so tests can drive time instead of sleeping through it.

:func:`system_clock` is the real time, and no environment variable moves it:
the installed program must never be talked into another "now" (a pinned
clock once skipped a grace period and future-dated audit records in a real
run). The one override is :func:`pinned`, for tests only: the end-to-end
tests, which run the CLI as a subprocess at a chosen moment (one second
before and one second after a grace deadline, say), go through
``tests/harness.py``, which pins the clock and then calls the CLI. Nothing
under ``rotator/`` or ``providers/`` calls :func:`pinned`
(``tests/e2e/test_no_test_hooks.py`` checks it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]

#: The instants pinned by :func:`pinned` (innermost last); empty outside tests.
_PINNED: list[datetime] = []


def system_clock() -> datetime:
    """Return the current instant in UTC (the pinned one inside a test's :func:`pinned`)."""
    if _PINNED:
        return _PINNED[-1]
    return datetime.now(UTC)


@contextmanager
def pinned(instant: datetime) -> Iterator[None]:
    """Test-only: make :func:`system_clock` return ``instant`` in this whole process, all threads.

    Only test code calls this (``tests/harness.py`` for a subprocess, or a test
    in-process); the shipped program never does.
    """
    if instant.tzinfo is None:
        raise ValueError(f"{instant.isoformat()} has no time zone")
    _PINNED.append(instant.astimezone(UTC))
    try:
        yield
    finally:
        _PINNED.pop()


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 instant; a naive one is taken as UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def system_sleep(seconds: float) -> None:
    """Sleep for real (the engine's default sleeper)."""
    time.sleep(seconds)
