"""Run a real server as a subprocess on a free loopback port: start, wait until it answers, stop.

The sandboxes that use a real server rather than an emulator (moto_server for
AWS, OpenBao for Vault) share this lifecycle: pick a free port, start the
program with its output in a log file (through a line filter where the program
prints secrets, such as a dev server's root token), poll until it answers, and
stop it with SIGTERM (or the signal that server stops quickly on), then
SIGKILL, however the start ended. Standard library only.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO

#: How often :meth:`ServerProcess.start` asks whether the server answers yet.
POLL_INTERVAL = 0.1
#: How long a stop waits after SIGTERM before it sends SIGKILL.
STOP_TIMEOUT = 10.0

#: Turns one line the program printed into what the log keeps (``None``: drop it).
LineFilter = Callable[[bytes], bytes | None]


class ServerNotStarted(Exception):
    """The server exited, or did not answer in time; the message names its log."""

    def __init__(self, reason: str, log_path: Path) -> None:
        super().__init__(f"{reason}; see {log_path}")
        #: What happened, without the log's path (for a caller that quotes the log instead).
        self.reason = reason


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def answers(url: str) -> bool:
    """Tell whether an HTTP server answers at ``url`` (any status counts)."""
    try:
        with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (a loopback http URL)
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


class ServerProcess:
    """One server subprocess, its log file, and how to tell that it is up."""

    def __init__(
        self, name: str, log_path: Path, *, stop_signal: signal.Signals = signal.SIGTERM
    ) -> None:
        self.name = name
        self.log_path = log_path
        #: What :meth:`stop` sends first (PostgreSQL ends its sessions on SIGINT,
        #: while on SIGTERM it waits for every client to leave).
        self.stop_signal = stop_signal
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._copier: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self._process is not None and self._process.poll() is None

    def start(
        self,
        argv: Sequence[str],
        *,
        ready: str | Callable[[], bool],
        timeout: float,
        env: Mapping[str, str],
        cwd: Path,
        line_filter: LineFilter | None = None,
    ) -> None:
        """Start ``argv`` and return once ``ready`` answers (a URL, or a check returning True).

        With ``line_filter``, every line the program prints passes through it
        on its way to the log, so nothing it drops ever reaches the disk.

        Raises:
            ServerNotStarted: the process exited first, or ``timeout`` seconds
                passed; it is stopped, and the message names its log. Whatever
                else ends the wait (Ctrl-C included) stops it too.
        """
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(  # noqa: S603 (a fixed argv, no shell)
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=self._log if line_filter is None else subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env),
        )
        if line_filter is not None and self._process.stdout is not None:
            self._copier = threading.Thread(
                target=_copy,
                args=(self._process.stdout, self._log, line_filter),
                name=f"{self.name} log",
                daemon=True,
            )
            self._copier.start()
        try:
            self._wait_until_ready(ready, timeout)
        except BaseException:
            # Never leave a server listening (with its credentials live) behind a failed start.
            self.stop()
            raise

    def _wait_until_ready(self, ready: str | Callable[[], bool], timeout: float) -> None:
        """Poll ``ready`` until it answers; raise if the process exits or time runs out."""
        check = ready if callable(ready) else (lambda: answers(ready))
        deadline = time.monotonic() + timeout
        while not check():
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise ServerNotStarted(
                    f"{self.name} exited with status {code} before answering", self.log_path
                )
            if time.monotonic() > deadline:
                raise ServerNotStarted(
                    f"{self.name} did not answer within {timeout:.0f}s", self.log_path
                )
            time.sleep(POLL_INTERVAL)

    def stop(self) -> None:
        """Stop the process (its stop signal, then SIGKILL); no-op if it is not running."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(self.stop_signal)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
        copier, self._copier = self._copier, None
        if copier is not None:
            # The pipe closes when the process exits; the copier then writes its last lines.
            copier.join(timeout=STOP_TIMEOUT)
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None


def _copy(lines: Iterable[bytes], log: IO[bytes], line_filter: LineFilter) -> None:
    """Write each line through ``line_filter`` to ``log`` until the program's output ends."""
    for line in lines:
        kept = line_filter(line)
        if kept is not None:
            with contextlib.suppress(OSError, ValueError):
                log.write(kept)
                log.flush()
