"""A stopped rotator ends the exec hooks it started, and what they started, before it exits.

An exec target's command runs in a process group of its own, so a signal
sent to rotator never reaches it. Here the hook starts a grandchild and
waits on it for minutes; rotator (``rotate``, ``run --once`` or the ``run``
service, a real subprocess against moto_server) gets SIGTERM or SIGINT
while the hook runs. By the time rotator has exited, the hook and its
grandchild must be gone: SIGTERM to the group, then SIGKILL for a hook that
ignores SIGTERM. The rotation is left where it was, for the next run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import Rotator, client, eventually, spawn

POLICY = """
secrets:
  - name: app
    store: {{provider: aws-secretsmanager, secret_id: app}}
    schedule: {{every: 30d}}
    grace: 1h
    targets:
      - kind: exec
        command: ["/bin/sh", "{hook}"]
        timeout: 10m
"""
#: The hook: read the value, start a grandchild, write both pids, wait for good.
HOOK = """\
{trap}
cat > /dev/null
sleep 600 &
echo $! > "{dir}/grandchild.tmp" && mv "{dir}/grandchild.tmp" "{dir}/grandchild.pid"
echo $$ > "{dir}/child.tmp" && mv "{dir}/child.tmp" "{dir}/child.pid"
wait
"""
#: How long rotator may take to exit once signalled (the deadline, then the 2 s grace).
EXIT_WITHIN = 30


def _alive(pid: int) -> bool:
    """Tell whether ``pid`` runs (a zombie nobody has reaped yet counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _pids(workdir: Path) -> list[int]:
    return [int((workdir / f"{who}.pid").read_text()) for who in ("child", "grandchild")]


def _setup(cli: Rotator, ignore_term: bool) -> None:
    client("secretsmanager").create_secret(Name="app", SecretString="initial-value-long")
    hook = cli.workdir / "hook.sh"
    trap = "trap '' TERM" if ignore_term else ""
    hook.write_text(HOOK.format(trap=trap, dir=cli.workdir))
    cli.config.write_text(POLICY.format(hook=hook))


def _stop_while_hooked(
    cli: Rotator, args: tuple[str, ...], signum: int
) -> tuple[subprocess.Popen[bytes], list[int]]:
    """Start rotator, signal it once the hook and its grandchild run; return it and survivors.

    The survivors are the hook's processes still running the moment rotator
    has exited; the test kills them afterwards, whatever happened.
    """
    log = cli.workdir / "rotator.log"
    process = spawn(cli, log, *args)
    pids: list[int] = []
    try:
        # child.pid is written last (the hook writes grandchild.pid first).
        started = eventually((cli.workdir / "child.pid").exists, 60)
        assert started and (cli.workdir / "grandchild.pid").exists(), log.read_text()[-3000:]
        pids = _pids(cli.workdir)
        assert all(_alive(pid) for pid in pids)
        process.send_signal(signum)
        process.wait(timeout=EXIT_WITHIN)
        return process, [pid for pid in pids if _alive(pid)]
    finally:
        if process.poll() is None:
            process.kill()
        for pid in pids:  # never leave a sleeper behind, whatever failed
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _interrupted(log: Path) -> bool:
    """Tell whether rotator logged the hook as ended by its stop (not a failed target)."""
    return any(
        "rotator is stopping" in json.dumps(json.loads(line))
        for line in log.read_text().splitlines()
        if line.startswith("{")
    )


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("args", "signum", "ignore_term"),
    [
        (("rotate", "app"), signal.SIGTERM, True),
        (("rotate", "app"), signal.SIGTERM, False),
        (("rotate", "app"), signal.SIGINT, True),
        (("run", "--once", "--shutdown-deadline", "1"), signal.SIGTERM, True),
        (("run", "--shutdown-deadline", "1", "--listen", ""), signal.SIGTERM, True),
    ],
    ids=["rotate-term", "rotate-term-honoured", "rotate-int", "run-once-term", "service-term"],
)
def test_hook_and_grandchild_are_gone_when_rotator_exits(
    rotator_cli: Rotator, args: tuple[str, ...], signum: int, ignore_term: bool
) -> None:
    """Whatever the command and the signal, rotator's exit leaves no hook process behind."""
    _setup(rotator_cli, ignore_term)
    if args[0] == "run":
        rotator_cli.now = "2099-01-01T00:00:00Z"  # the secret is due at once
    process, left = _stop_while_hooked(rotator_cli, args, signum)
    assert not left, f"still running after rotator exited: {left}"
    assert process.returncode is not None and process.returncode >= 0
    log = rotator_cli.workdir / "rotator.log"
    assert _interrupted(log), log.read_text()[-3000:]
    current = client("secretsmanager").get_secret_value(SecretId="app")["SecretString"]
    assert current == "initial-value-long"  # nothing was promoted, nothing rolled back
