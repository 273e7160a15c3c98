"""Bounded parallelism: how many rotations run at once, in total and per provider.

:func:`run_bounded` hands items to worker threads, at most
:attr:`Limits.total` at a time and at most :meth:`Limits.of` per key (the
store provider of a secret, and its quota scope: a Region, a vault), taking
the next item whose key has room, so a slow provider never holds up the
others. Items of one key start in the order given.

The workers are daemon threads, not a ``ThreadPoolExecutor``: the service
must be able to give up waiting for a step that outlives its shutdown
deadline and exit, and the executor's threads are joined at interpreter
exit. Every step is recorded before the next begins, so a process that
exits under a running step loses nothing the next start cannot resume.

``ROTATOR_CONCURRENCY`` sets the limits from the environment:
``8,aws-secretsmanager=4,vault-kv=2`` (a bare number is the total).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from rotator.errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")

#: Rotations in flight at once, in total, unless configured.
DEFAULT_TOTAL = 8
#: Rotations in flight at once against one provider, unless configured.
DEFAULT_PER_PROVIDER = 4


@dataclass(frozen=True)
class Limits:
    """How many items may run at once: in total, and per key."""

    total: int = DEFAULT_TOTAL
    per_key: int = DEFAULT_PER_PROVIDER
    overrides: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, value in (("total", self.total), ("per provider", self.per_key)):
            if value < 1:
                raise ConfigError(f"concurrency {name} must be at least 1, not {value}")
        for key, value in self.overrides.items():
            if value < 1:
                raise ConfigError(f"concurrency for {key} must be at least 1, not {value}")

    def of(self, key: str) -> int:
        """Return how many items of ``key`` may run at once.

        A key may name a provider and a quota scope, ``PROVIDER@SCOPE``: the
        provider's limit then applies to each of its scopes.
        """
        return self.overrides.get(key.partition("@")[0], self.per_key)

    @classmethod
    def parse(cls, text: str, *, total: int | None = None) -> Limits:
        """Read ``8,aws-secretsmanager=4`` (``ROTATOR_CONCURRENCY``'s form).

        ``total`` (the ``--concurrency`` option) wins over a bare number in
        ``text``. Raises ``ConfigError`` naming the bad entry.
        """
        found_total: int | None = None
        per_key = DEFAULT_PER_PROVIDER
        overrides: dict[str, int] = {}
        for entry in filter(None, (part.strip() for part in text.split(","))):
            key, sep, value = entry.rpartition("=")
            try:
                number = int(value)
            except ValueError:
                number = 0
            if number < 1 or (sep and not key):
                raise ConfigError(
                    f"ROTATOR_CONCURRENCY: {entry!r} is not a positive number, "
                    "PROVIDER=NUMBER or per-provider=NUMBER"
                )
            if not sep:
                found_total = number
            elif key == "per-provider":
                per_key = number
            else:
                overrides[key] = number
        chosen = total if total is not None else found_total
        return cls(chosen if chosen is not None else DEFAULT_TOTAL, per_key, overrides)

    @classmethod
    def from_env(cls, *, total: int | None = None) -> Limits:
        """Return the limits from ``ROTATOR_CONCURRENCY`` and the ``--concurrency`` option."""
        return cls.parse(os.environ.get("ROTATOR_CONCURRENCY", ""), total=total)


@dataclass
class Finished(Generic[T, R]):
    """What :func:`run_bounded` returns: results in completion order, and what never ended."""

    results: list[R] = field(default_factory=list)
    #: Items still running when the caller stopped waiting (the shutdown deadline).
    abandoned: list[T] = field(default_factory=list)
    #: Items never started because ``stop`` said so.
    not_started: list[T] = field(default_factory=list)


class _Board(Generic[T, R]):
    """The shared state of one :func:`run_bounded` call, guarded by one condition."""

    def __init__(self, items: Sequence[T], key: Callable[[T], str], limits: Limits) -> None:
        self.pending = list(items)
        self.key = key
        self.limits = limits
        self.running: dict[int, T] = {}
        self.per_key: dict[str, int] = {}
        self.results: list[R] = []
        self.cond = threading.Condition()
        self.stopped = False
        self.tokens = itertools.count()

    def take(self) -> tuple[int, T] | None:
        """Wait for an item whose key has room; None once there is nothing left to start."""
        with self.cond:
            while True:
                if self.stopped or not self.pending:
                    return None
                for index, item in enumerate(self.pending):
                    k = self.key(item)
                    if self.per_key.get(k, 0) < self.limits.of(k):
                        del self.pending[index]
                        self.per_key[k] = self.per_key.get(k, 0) + 1
                        token = next(self.tokens)
                        self.running[token] = item
                        return token, item
                self.cond.wait()

    def done(self, token: int, result: R) -> None:
        """Record a result and free the item's slot."""
        with self.cond:
            item = self.running.pop(token)
            k = self.key(item)
            self.per_key[k] -= 1
            self.results.append(result)
            self.cond.notify_all()


def run_bounded(
    items: Sequence[T],
    work: Callable[[T], R],
    *,
    key: Callable[[T], str],
    limits: Limits,
    on_error: Callable[[T, Exception], R],
    stop: Callable[[], bool] | None = None,
    deadline: float | None = None,
    poll: float = 0.2,
) -> Finished[T, R]:
    """Run ``work`` over ``items`` within ``limits``; return the results as they finished.

    ``on_error`` turns an exception escaping ``work`` into a result, so one
    item's failure never stops the others. Once ``stop`` says so, no item is
    started; those already running get ``deadline`` seconds (None: as long
    as they take) before this returns without them.
    """
    if deadline is None and (limits.total == 1 or len(items) <= 1):
        return _run_inline(items, work, on_error=on_error, stop=stop)
    board: _Board[T, R] = _Board(items, key, limits)

    def worker() -> None:
        while (taken := board.take()) is not None:
            token, item = taken
            try:
                result = work(item)
            except Exception as exc:  # noqa: BLE001 - one item's failure must not kill the pass
                result = on_error(item, exc)
            board.done(token, result)

    threads = [
        threading.Thread(target=worker, name=f"rotator-worker-{n}", daemon=True)
        for n in range(min(limits.total, len(items)))
    ]
    for thread in threads:
        thread.start()
    give_up_at: float | None = None
    while any(thread.is_alive() for thread in threads):
        if give_up_at is None and stop is not None and stop():
            with board.cond:
                board.stopped = True
                board.cond.notify_all()
            give_up_at = time.monotonic() + deadline if deadline is not None else None
        if give_up_at is not None and time.monotonic() >= give_up_at:
            break
        # A short timeout, so a stop asked for by a signal handler is seen promptly.
        for thread in threads:
            thread.join(timeout=poll)
            if thread.is_alive():
                break
    with board.cond:
        board.stopped = True
        return Finished(list(board.results), list(board.running.values()), list(board.pending))


def _run_inline(
    items: Sequence[T],
    work: Callable[[T], R],
    *,
    on_error: Callable[[T, Exception], R],
    stop: Callable[[], bool] | None,
) -> Finished[T, R]:
    """Run the items one after the other on the calling thread (a limit of one)."""
    finished: Finished[T, R] = Finished()
    for index, item in enumerate(items):
        if stop is not None and stop():
            finished.not_started = list(items[index:])
            break
        try:
            finished.results.append(work(item))
        except Exception as exc:  # noqa: BLE001 - one item's failure must not kill the pass
            finished.results.append(on_error(item, exc))
    return finished
