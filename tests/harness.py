"""``python -m tests.harness ARGS...``: the ``rotator`` CLI with a test's clock and faults.

The installed ``rotator`` honours no environment variable that moves its
clock or injects a fault (see ``rotator/clock.py`` and ``rotator/engine/faults.py``).
The tests that run the CLI as a subprocess at a chosen moment, or kill it at
a chosen point, run this wrapper instead. It reads two variables, which
nothing under ``rotator/`` or ``providers/`` reads:

- ``ROTATOR_TEST_NOW``: an ISO 8601 instant (naive: UTC); the whole process,
  a service included, sees that instant as "now" (:func:`rotator.clock.pinned`);
- ``ROTATOR_TEST_FAULT``: comma-separated entries to arm
  (:func:`rotator.engine.faults.armed`): a crash point (``after:mint``, ...) ends
  the process with ``os._exit(137)``, ``fail:<step>`` fails that step,
  ``hang:<point>`` blocks there for good;

then hands over to :func:`rotator.cli.main.main` with the same arguments.

:func:`command` and :func:`environment` build the command line and the
environment for a subprocess; the environment puts the repository root on
``PYTHONPATH``, so the wrapper is found whatever the working directory.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

NOW = "ROTATOR_TEST_NOW"
FAULT = "ROTATOR_TEST_FAULT"
ROOT = Path(__file__).resolve().parent.parent


def command(*args: str) -> list[str]:
    """Return the command line running the CLI through this harness with ``args``."""
    return [sys.executable, "-m", "tests.harness", *args]


def environment(
    base: Mapping[str, str], *, now: datetime | str | None = None, fault: str | None = None
) -> dict[str, str]:
    """Return ``base`` with this harness's variables set to ``now`` and ``fault`` (or unset)."""
    env = {k: v for k, v in base.items() if k not in (NOW, FAULT)}
    if now is not None:
        env[NOW] = now if isinstance(now, str) else now.isoformat()
    if fault:
        env[FAULT] = fault
    paths = [str(ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def main() -> None:
    """Pin the clock and arm the faults the caller asked for, then run the CLI."""
    from rotator import clock
    from rotator.cli import main as cli
    from rotator.engine import faults

    with ExitStack() as stack:
        if now := os.environ.get(NOW, "").strip():
            stack.enter_context(clock.pinned(clock.parse_instant(now)))
        if fault := os.environ.get(FAULT, "").strip():
            stack.enter_context(faults.armed(*fault.split(",")))
        cli.main()


if __name__ == "__main__":
    main()
