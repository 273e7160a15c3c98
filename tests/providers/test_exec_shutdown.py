"""``exec`` hooks when rotator stops: their process groups ended, their steps not failed for good.

In process: a hook writing the value runs on a thread, :func:`end_hooks`
(what ``rotator.adapters.shutdown`` runs on a stop and at exit) ends it and the
grandchild it started; the write raises ``TransientError`` (the rotation
resumes at the next start) and no hook starts afterwards.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from providers.exec import ExecConfig, ExecTarget
from providers.transport import commands
from providers.transport.commands import end_hooks
from rotator.adapters import shutdown
from rotator.adapters.secret import SecretValue
from rotator.adapters.values import Runtime
from rotator.errors import RotatorError, TransientError
from tests.conftest import FakeClock
from tests.e2e.conftest import eventually

#: Starts a grandchild that ignores SIGTERM, writes both pids, and waits for good.
HOOK = """\
trap '' TERM
cat > /dev/null
sleep 600 &
echo "$$ $!" > "{pids}.tmp" && mv "{pids}.tmp" "{pids}"
wait
"""


@pytest.fixture(autouse=True)
def _not_stopping(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with rotator not stopping (end_hooks marks the process as stopping)."""
    monkeypatch.setattr(commands, "_STOPPING", threading.Event())
    yield
    for process in list(commands._RUNNING.values()):
        commands._kill(process)


def _target(command: list[str]) -> ExecTarget:
    clock = FakeClock()
    config = ExecConfig(command=command, timeout="10m")
    return ExecTarget(config, Runtime(clock=clock, sleep=clock.sleep), "app")


def _write_in_background(
    target: ExecTarget, ready: Path
) -> tuple[threading.Thread, list[RotatorError]]:
    """Start ``target.write`` on a thread; return once the hook made ``ready``, with its errors."""
    raised: list[RotatorError] = []

    def write() -> None:
        try:
            target.write("rotation-1", SecretValue("the-new-value-0123456789"))
        except RotatorError as exc:
            raised.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    assert eventually(ready.exists, 10), "the hook did not start"
    return writer, raised


def _alive(pid: int) -> bool:
    """Tell whether ``pid`` runs (an unreaped zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def test_end_hooks_ends_the_group_and_the_write_is_transient(tmp_path: Path) -> None:
    """A hook ignoring SIGTERM and its grandchild are gone; its write says rotator is stopping."""
    pids = tmp_path / "pids"
    script = tmp_path / "hook.sh"
    script.write_text(HOOK.format(pids=pids))
    writer, raised = _write_in_background(_target(["/bin/sh", str(script)]), pids)
    child, grandchild = (int(p) for p in pids.read_text().split())
    started = time.monotonic()
    end_hooks(grace=0.5)
    took = time.monotonic() - started
    writer.join(timeout=10)
    assert not writer.is_alive()
    assert not _alive(child) and not _alive(grandchild)
    assert 0.5 <= took < 5  # SIGTERM was ignored: SIGKILL after the grace, not sooner
    [error] = raised
    assert isinstance(error, TransientError) and "rotator is stopping" in str(error)
    assert commands._RUNNING == {}


def test_no_hook_starts_once_rotator_stops(tmp_path: Path) -> None:
    """After end_hooks, a write is refused as transient without running the command."""
    marker = tmp_path / "ran"
    end_hooks()
    with pytest.raises(TransientError, match="rotator is stopping"):
        _target(["/bin/sh", "-c", f"touch {marker}"]).write("r", SecretValue("v" * 24))
    assert not marker.exists()


def test_a_hook_honouring_sigterm_is_not_kept_waiting(tmp_path: Path) -> None:
    """A hook that exits on SIGTERM ends at once: end_hooks does not wait out the grace."""
    ready = tmp_path / "started"
    target = _target(["/bin/sh", "-c", f"cat > /dev/null; touch {ready}; exec sleep 600"])
    writer, raised = _write_in_background(target, ready)
    started = time.monotonic()
    end_hooks(grace=5)
    assert time.monotonic() - started < 2
    writer.join(timeout=10)
    assert not writer.is_alive()
    assert [type(e) for e in raised] == [TransientError]


def test_rotator_shutdown_runs_end_hooks() -> None:
    """The command line ends hooks through rotator.adapters.shutdown, which knows exec's ender."""
    assert end_hooks in shutdown._ENDERS
