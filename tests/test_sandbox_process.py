"""A real server as a subprocess (rotator.sandbox.core.process): its log, its start, its stop."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from rotator.sandbox.core.process import ServerNotStarted, ServerProcess

#: Prints a credential line and an ordinary one, writes its pid, then serves until stopped.
PROGRAM = """
import os, sys, time
print("Root Token: s3cr3t-token", flush=True)
print("server started", flush=True)
open(sys.argv[1], "w").write(str(os.getpid()))
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _without_tokens(line: bytes) -> bytes | None:
    return None if line.startswith(b"Root Token:") else line


def test_a_line_filter_keeps_what_it_drops_off_the_disk(tmp_path: Path) -> None:
    """The filter sees every line; what it drops is never written to the log."""
    server = ServerProcess("fake", tmp_path / "fake.log")
    pidfile = tmp_path / "pid"
    server.start(
        [sys.executable, "-c", PROGRAM, str(pidfile)],
        ready=lambda: "server started" in (tmp_path / "fake.log").read_text(),
        timeout=30,
        env=dict(os.environ),
        cwd=tmp_path,
        line_filter=_without_tokens,
    )
    server.stop()
    logged = (tmp_path / "fake.log").read_text()
    assert "server started" in logged
    assert "s3cr3t" not in logged


def test_an_interrupted_start_leaves_no_server_behind(tmp_path: Path) -> None:
    """Ctrl-C while waiting for the server stops it: nothing stays listening."""
    server = ServerProcess("fake", tmp_path / "fake.log")
    pidfile = tmp_path / "pid"

    def interrupted() -> bool:
        if not pidfile.exists() or not pidfile.read_text():
            return False
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        server.start(
            [sys.executable, "-c", PROGRAM, str(pidfile)],
            ready=interrupted,
            timeout=30,
            env=dict(os.environ),
            cwd=tmp_path,
        )
    assert not server.running
    assert not _alive(int(pidfile.read_text()))


def test_a_server_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    """A program that exits before answering: the error names its status and its log."""
    server = ServerProcess("fake", tmp_path / "fake.log")
    with pytest.raises(ServerNotStarted, match=r"fake exited with status 3 .*fake\.log"):
        server.start(
            [sys.executable, "-c", "raise SystemExit(3)"],
            ready=lambda: False,
            timeout=30,
            env=dict(os.environ),
            cwd=tmp_path,
        )
    assert not server.running


#: Says which signal ended it, once it has said it is up.
SIGNALLED = """
import signal, sys, time
def said(number, frame):
    print("stopped by", signal.Signals(number).name, flush=True)
    sys.exit(0)
signal.signal(signal.SIGINT, said)
signal.signal(signal.SIGTERM, said)
print("server started", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_stop_sends_the_servers_stop_signal(tmp_path: Path, stop_signal: signal.Signals) -> None:
    """A server that stops fast on another signal than SIGTERM (PostgreSQL: SIGINT) gets it."""
    log = tmp_path / "fake.log"
    server = ServerProcess("fake", log, stop_signal=stop_signal)
    server.start(
        [sys.executable, "-c", SIGNALLED],
        ready=lambda: "server started" in log.read_text(),
        timeout=30,
        env=dict(os.environ),
        cwd=tmp_path,
    )
    server.stop()
    assert f"stopped by {stop_signal.name}" in log.read_text()
