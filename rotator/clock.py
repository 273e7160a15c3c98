"""The wall clock, injectable.

Everything that needs the time takes a ``Clock`` (a callable returning an
aware UTC datetime) so tests can drive time instead of sleeping through it.
``ROTATOR_NOW`` (an ISO 8601 instant) pins the clock of a whole process: the
end-to-end tests use it to run a subprocess at a chosen moment, for example
one second before and one second after a grace deadline.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]


def system_clock() -> datetime:
    """Return the current instant in UTC (or ``ROTATOR_NOW`` when set)."""
    pinned = os.environ.get("ROTATOR_NOW")
    if pinned:
        return parse_instant(pinned)
    return datetime.now(UTC)


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 instant; a naive one is taken as UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def system_sleep(seconds: float) -> None:
    """Sleep for real (the engine's default sleeper)."""
    time.sleep(seconds)
