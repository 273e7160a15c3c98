"""Crash and failure points for the crash-safety tests.

The engine calls :func:`point` at every step boundary (and inside a step,
between the outside call and the journal commit) and :func:`fail` before
each step. They do nothing unless a test has armed them with :func:`armed`:
no environment variable arms them, so the installed program can never be
made to crash, fail or hang on purpose. Only test code arms them: in-process
tests directly, the end-to-end tests through ``tests/harness.py`` (which arms
what its caller asked for, then calls the CLI). Nothing under ``rotator/``
or ``providers/`` calls :func:`armed` (``tests/e2e/test_no_test_hooks.py``
checks it).

An armed crash point (``after:mint``, ``mint:issued``, ...) ends the process
at once (``os._exit(137)``, as SIGKILL would: no cleanup, no journal
commit). A ``fail:<step>`` entry makes that step fail permanently, as a
credential that does not work would, so the tests can drive a rollback. A
``hang:<point>`` entry blocks the thread there for good, as a provider call
that never answers would (the shutdown-deadline test). :data:`POINTS` lists
every crash point so the tests can kill a run at each step boundary in turn.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from rotator.errors import PermanentError
from rotator.lifecycle import STEPS

#: Points inside a step, between the outside call and the journal commit.
INNER_POINTS = ("mint:issued", "store:written", "promote:moved", "revoke:revoked")
POINTS: tuple[str, ...] = (
    *(f"before:{step}" for step in STEPS),
    *INNER_POINTS,
    *(f"after:{step}" for step in STEPS),
)

#: What :func:`armed` armed (innermost last); empty outside tests.
_ARMED: list[frozenset[str]] = []


@contextmanager
def armed(*entries: str) -> Iterator[None]:
    """Test-only: arm these crash points, ``fail:<step>`` and ``hang:<point>`` entries.

    They stay armed in this whole process (every thread) until the block
    exits, together with any armed by an enclosing block. Only test code
    calls this; the shipped program never does.
    """
    _ARMED.append(frozenset(filter(None, entries)) | _armed())
    try:
        yield
    finally:
        _ARMED.pop()


def _armed() -> frozenset[str]:
    return _ARMED[-1] if _ARMED else frozenset()


def point(name: str) -> None:
    """End the process (or hang) here if a test armed this point."""
    if name in _armed():
        sys.stderr.write(f"rotator: fault injected at {name}\n")
        sys.stderr.flush()
        os._exit(137)
    if f"hang:{name}" in _armed():
        sys.stderr.write(f"rotator: hanging at {name}\n")
        sys.stderr.flush()
        threading.Event().wait()


def fail(step: str) -> None:
    """Raise a permanent error if a test armed ``fail:<step>``."""
    if f"fail:{step}" in _armed():
        raise PermanentError(f"fault injected: {step} fails", provider="faults")
