"""End the processes adapters started, when rotator stops.

An adapter that starts processes of its own (the ``exec`` hooks, each in a
process group of its own, which nothing else would end) registers a
function that ends them, with :func:`register`. The command line calls
:func:`end_outside_work` when a one-off command is told to stop (SIGTERM,
SIGINT) and when the service or ``run --once`` has given running steps
their shutdown deadline; adapters also end their work at interpreter exit.
rotator's own modules never import an adapter, hence this registry.
"""

from __future__ import annotations

from collections.abc import Callable

_ENDERS: list[Callable[[], None]] = []


def register(ender: Callable[[], None]) -> None:
    """Have ``ender`` called whenever rotator ends its outside work (once, however often asked)."""
    if ender not in _ENDERS:
        _ENDERS.append(ender)


def end_outside_work() -> None:
    """End what every adapter started outside rotator's process; returns once it is ended.

    Takes no lock, so a signal handler may call it; it may block for the
    grace each adapter gives its processes (two seconds for ``exec`` hooks).
    """
    for ender in list(_ENDERS):
        ender()
