"""Run test work on several threads released at the same moment."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def run_together(
    work: Callable[[T], None], items: Sequence[T], *, timeout: float = 30.0
) -> list[BaseException]:
    """Run ``work(item)`` on one thread per item, all released at once, and return the exceptions
    raised, counting a thread still alive after ``timeout`` seconds as a ``TimeoutError``."""
    barrier = threading.Barrier(len(items), timeout=timeout)
    raised: list[BaseException] = []

    def run(item: T) -> None:
        try:
            barrier.wait()
            work(item)
        except BaseException as exc:  # returned to the caller, whose assertion reports it
            raised.append(exc)

    threads = [threading.Thread(target=run, args=(item,), daemon=True) for item in items]
    try:
        for thread in threads:
            thread.start()
    except BaseException:
        barrier.abort()  # release the threads already waiting for the ones never started
        raise
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.0))
    failures = list(raised)  # a copy: a thread still running may append later
    failures.extend(
        TimeoutError(f"work({item!r}) still running after {timeout}s")
        for item, thread in zip(items, threads, strict=True)
        if thread.is_alive()
    )
    return failures
