"""Fault plans: failures and delays an emulator was told to inject, matched to requests.

A test queues a fault for a path prefix (and a verb); the next ``count``
requests that match take it, one each, and the emulator answers them with the
fault's status in its own service's words (or with the fault's own headers
and body, for the fakes that answer exactly what they are given).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

#: The statuses an emulator fails a request with: the HTTP errors.
ERROR_STATUSES = range(400, 600)
#: Every HTTP status, for fakes that may also answer a redirect or a success.
ANY_STATUS = range(100, 600)


@dataclass
class Fault:
    """An injected failure or delay waiting for the requests it applies to."""

    path_prefix: str
    status: int | None
    delay: float
    remaining: int
    method: str | None
    #: The ``Retry-After`` header to send with ``status``, as written on the wire.
    retry_after: str | None = None
    #: Other headers to send with ``status``, as written on the wire.
    headers: dict[str, str] = field(default_factory=dict)
    #: The body to send with ``status`` (JSON), for fakes that answer it as given.
    body: Any = None


class FaultPlan:
    """The faults an emulator was told to inject, matched to requests one by one, thread-safely."""

    def __init__(self, statuses: range = ERROR_STATUSES) -> None:
        self._statuses = statuses
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(
        self,
        path_prefix: str,
        *,
        status: int | None,
        delay: float = 0.0,
        count: int = 1,
        method: str | None = None,
        retry_after: str | None = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> None:
        """Fail (or only delay) the next ``count`` requests under ``path_prefix``."""
        if count < 1:
            raise ValueError("count must be at least 1")
        if delay < 0:
            raise ValueError("delay cannot be negative")
        if status is not None and status not in self._statuses:
            raise ValueError(self._status_rule())
        fault = Fault(
            path_prefix,
            status,
            delay,
            count,
            method.upper() if method else None,
            retry_after,
            dict(headers or {}),
            body,
        )
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Drop every fault still waiting, so the next requests are served normally."""
        # In place, not by a new plan: a plan may be shared (Key Vault's and APIM's).
        with self._lock:
            self._faults.clear()

    def take(self, path: str, method: str) -> Fault | None:
        """Return the first fault matching a request (using one of its ``count``), if any."""
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.path_prefix) and fault.method in {None, method}:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _status_rule(self) -> str:
        if self._statuses == ERROR_STATUSES:
            return "status must be an HTTP error status (4xx or 5xx) or None"
        return f"status must be an HTTP status from {self._statuses[0]} to {self._statuses[-1]}"
