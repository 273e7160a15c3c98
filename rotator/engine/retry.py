"""Retrying: adapter calls and lifecycle steps tried again, with backoff, after transient errors."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog

from rotator.clock import Sleep
from rotator.engine import faults
from rotator.errors import Interrupted, JournalUnavailable, RotatorError, TransientError
from rotator.journal.journal import Journal
from rotator.journal.records import Rotation
from rotator.lifecycle import Step

log = structlog.get_logger("rotator.engine")

_T = TypeVar("_T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how patiently, a step is retried after a transient error."""

    attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 30.0

    def delay(self, attempt: int, hint: float | None) -> float:
        """Return the wait before retry number ``attempt`` (1-based)."""
        if hint is not None:
            return min(hint, self.max_delay)
        return min(self.base_delay * 2.0 ** (attempt - 1), self.max_delay)


class Retrier:
    """Calls an adapter again after a transient error, waiting as its policy says.

    A wait ends early when ``interrupted`` is set, and then ``Interrupted``
    is raised instead of trying again.
    """

    def __init__(
        self, policy: RetryPolicy, journal: Journal, sleep: Sleep, interrupted: threading.Event
    ) -> None:
        self.policy = policy
        self.journal = journal
        self.sleep = sleep
        self.interrupted = interrupted

    def call(
        self,
        call: Callable[[], _T],
        on_retry: Callable[[RotatorError, int, float], None] | None = None,
    ) -> _T:
        """Call an adapter, retrying transient errors with backoff; ``on_retry`` hears each wait."""
        for attempt in range(1, self.policy.attempts + 1):
            try:
                return call()
            except RotatorError as exc:
                if not exc.retryable or attempt == self.policy.attempts:
                    raise
                hint = exc.delay if isinstance(exc, TransientError) else None
                delay = self.policy.delay(attempt, hint)
                if on_retry is not None:
                    on_retry(exc, attempt, delay)
                self.sleep(delay)
                if self.interrupted.is_set():
                    raise Interrupted("stopping while waiting to retry") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def step(
        self, rotation: Rotation, step: Step, handler: Callable[[Rotation], Rotation]
    ) -> Rotation:
        """Run one step, recording each retry of a transient failure in the journal."""
        latest = [rotation]

        def attempt() -> Rotation:
            faults.fail(step)
            return handler(latest[0])

        def retrying(exc: RotatorError, number: int, delay: float) -> None:
            log.warning(
                "transient failure; retrying", error=str(exc), attempt=number, retry_in=delay
            )
            # With the journal itself down (the reason to retry), the retry
            # cannot be recorded: retry all the same.
            with contextlib.suppress(JournalUnavailable):
                latest[0] = self.journal.record(
                    latest[0],
                    step,
                    "retry",
                    f"{exc} (attempt {number} of {self.policy.attempts}, retry in {delay:g}s)",
                )

        return self.call(attempt, retrying)
