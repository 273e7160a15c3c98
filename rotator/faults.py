"""Crash and failure points for the crash-safety tests.

``ROTATOR_FAULT`` holds comma-separated points. At a crash point it names
(``after:mint``, ``mint:issued``, ...) the process ends at once
(``os._exit(137)``, as SIGKILL would: no cleanup, no journal commit). A
``fail:<step>`` entry makes that step fail permanently, as a credential that
does not work would, so the end-to-end tests can drive a rollback. A
``hang:<point>`` entry blocks the thread there for good, as a provider call
that never answers would (the shutdown-deadline test). Nothing in
rotator sets the variable; only the tests do. :data:`POINTS` lists every
crash point so the tests can kill a run at each step boundary in turn.
"""

from __future__ import annotations

import os
import sys
import threading

from rotator.errors import PermanentError
from rotator.lifecycle import STEPS

#: Points inside a step, between the outside call and the journal commit.
INNER_POINTS = ("mint:issued", "store:written", "promote:moved", "revoke:revoked")
POINTS: tuple[str, ...] = (
    *(f"before:{step}" for step in STEPS),
    *INNER_POINTS,
    *(f"after:{step}" for step in STEPS),
)


def _armed() -> set[str]:
    return set(filter(None, os.environ.get("ROTATOR_FAULT", "").split(",")))


def point(name: str) -> None:
    """End the process here if ``ROTATOR_FAULT`` names this point."""
    if name in _armed():
        sys.stderr.write(f"rotator: fault injected at {name}\n")
        sys.stderr.flush()
        os._exit(137)
    if f"hang:{name}" in _armed():
        sys.stderr.write(f"rotator: hanging at {name}\n")
        sys.stderr.flush()
        threading.Event().wait()


def fail(step: str) -> None:
    """Raise a permanent error if ``ROTATOR_FAULT`` holds ``fail:<step>``."""
    if f"fail:{step}" in _armed():
        raise PermanentError(f"fault injected: {step} fails", provider="faults")
