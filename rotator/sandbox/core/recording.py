"""Request logs: what an emulator received, oldest first, for tests to read back.

Each emulator records the fields its tests look at (its own record type, with
at least a ``method`` and a ``path``); the log around them is shared: appended
from the serving threads, read as a sequence, cleared between phases of a
test, and optionally bounded so a long run keeps only the latest requests.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Protocol, TypeVar, overload


class Recorded(Protocol):
    """What every recorded request tells: its verb and its path."""

    @property
    def method(self) -> str:
        """The HTTP verb, upper case."""

    @property
    def path(self) -> str:
        """The path the request was sent to."""


R = TypeVar("R", bound=Recorded)


class RequestLog(Sequence[R]):
    """The requests an emulator received, oldest first, kept safely across serving threads.

    It reads as a sequence (and compares equal to a list of the same records);
    with ``maxlen``, only the latest ``maxlen`` requests are kept.
    """

    def __init__(self, maxlen: int | None = None) -> None:
        self._records: deque[R] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def append(self, record: R) -> None:
        """Keep one more request (dropping the oldest when the log is full)."""
        with self._lock:
            self._records.append(record)

    def clear(self) -> None:
        """Forget every request received so far."""
        with self._lock:
            self._records.clear()

    def matching(self, method: str, path_prefix: str = "") -> list[R]:
        """Return the requests with verb ``method`` whose path starts with ``path_prefix``."""
        return [
            r for r in self._snapshot() if r.method == method and r.path.startswith(path_prefix)
        ]

    def _snapshot(self) -> list[R]:
        with self._lock:
            return list(self._records)

    def __len__(self) -> int:
        """How many requests are kept."""
        with self._lock:
            return len(self._records)

    @overload
    def __getitem__(self, index: int) -> R: ...

    @overload
    def __getitem__(self, index: slice) -> list[R]: ...

    def __getitem__(self, index: int | slice) -> R | list[R]:
        """One request, or a list of them for a slice."""
        return self._snapshot()[index]

    def __iter__(self) -> Iterator[R]:
        """Go over the requests kept when iteration starts, oldest first."""
        return iter(self._snapshot())

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence holding the same requests in the same order."""
        if isinstance(other, Sequence):
            return self._snapshot() == list(other)
        return NotImplemented

    # A log changes as requests arrive: it cannot be a dict key.
    __hash__ = None  # type: ignore[assignment]
