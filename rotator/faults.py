"""Crash points for the crash-safety tests.

``ROTATOR_FAULT=<point>`` makes the process end at once (``os._exit(137)``,
as SIGKILL would: no cleanup, no journal commit) when it reaches the named
point, for example ``after:mint`` or ``mint:issued``. Nothing in rotator sets
the variable; only the tests do. :data:`POINTS` lists every point so the
tests can kill a run at each step boundary in turn.
"""

from __future__ import annotations

import os
import sys

from rotator.lifecycle import STEPS

#: Points inside a step, between the outside call and the journal commit.
INNER_POINTS = ("mint:issued", "store:written", "promote:moved", "revoke:revoked")
POINTS: tuple[str, ...] = (
    *(f"before:{step}" for step in STEPS),
    *INNER_POINTS,
    *(f"after:{step}" for step in STEPS),
)


def point(name: str) -> None:
    """End the process here if ``ROTATOR_FAULT`` names this point."""
    if os.environ.get("ROTATOR_FAULT") == name:
        sys.stderr.write(f"rotator: fault injected at {name}\n")
        sys.stderr.flush()
        os._exit(137)
