"""The clock every emulator reads its time from: injected by tests, the wall clock otherwise."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

#: A callable returning an aware UTC datetime: every time an emulator shows or checks.
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)
