"""What an emulator's ``python -m`` entry shares: serve in the foreground until told to stop."""

from __future__ import annotations

import signal
import threading
from types import FrameType

#: How often the waiting main thread wakes: signals are handled between waits.
WAKE_INTERVAL = 0.5


def stop_on_signals() -> threading.Event:
    """Return an event that Ctrl-C (SIGINT) or SIGTERM sets from now on."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    return stop


def wait_for(stop: threading.Event) -> None:
    """Block until ``stop`` is set, waking often so the main thread keeps seeing signals."""
    # A timed wait keeps the main thread responsive to signals on every platform.
    while not stop.wait(WAKE_INTERVAL):
        pass
