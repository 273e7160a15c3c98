"""The shipped program has no test hooks: no environment variable moves its clock or injects faults.

The installed ``rotator`` console script runs with ``ROTATOR_NOW`` (far in
the future) and ``ROTATOR_FAULT`` (a crash point and a failing step) set, the
variables that once did both, and behaves as if they were not there. The
same requests made through the test harness (``tests/harness.py``, its own
``ROTATOR_TEST_NOW`` and ``ROTATOR_TEST_FAULT``) do take effect, so the
checks below can tell the difference.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rotator import clock
from rotator.engine import faults
from rotator.errors import PermanentError
from tests import harness
from tests.e2e.conftest import Completed, Rotator, client

FUTURE = "2099-01-01T00:00:00+00:00"
#: The old test hooks, each set to something that would show.
OLD_HOOKS = {"ROTATOR_NOW": FUTURE, "ROTATOR_FAULT": "before:mint,fail:verify"}
POLICY = """
defaults: {schedule: {every: 30d}, grace: 1h}
secrets:
  - {name: installed, store: {provider: aws-secretsmanager, secret_id: installed}}
  - {name: crashed, store: {provider: aws-secretsmanager, secret_id: crashed}}
  - {name: failed, store: {provider: aws-secretsmanager, secret_id: failed}}
"""


def _installed() -> str:
    """The ``rotator`` console script installed beside this interpreter."""
    found = shutil.which("rotator", path=str(Path(sys.executable).parent))
    assert found is not None, f"no rotator script beside {sys.executable}"
    return found


def _run(command: list[str], env: dict[str, str], cwd: Path) -> Completed:
    proc = subprocess.run(
        [*command, "--log-format", "json"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Completed(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def setup(rotator_cli: Rotator) -> Rotator:
    """Three secrets in moto_server created now, rotated every 30 days: none is due."""
    for name in ("installed", "crashed", "failed"):
        client("secretsmanager").create_secret(Name=name, SecretString=f"initial-{name}-value")
    rotator_cli.config.write_text(POLICY)
    return rotator_cli


def _env(cli: Rotator, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        **cli.env,
        "ROTATOR_CONFIG": str(cli.config),
        "ROTATOR_STATE": cli.state,
    }
    for name in (*OLD_HOOKS, harness.NOW, harness.FAULT):
        env.pop(name, None)
    env.update(extra)
    return env


def _plan(completed: Completed, name: str) -> dict[str, Any]:
    assert completed.code == 0, completed.stderr
    [item] = [i for i in completed.json() if i["secret"] == name]
    assert isinstance(item, dict)
    return item


@pytest.mark.e2e
def test_the_installed_rotator_ignores_rotator_now(setup: Rotator) -> None:
    """`plan` of the installed script under ROTATOR_NOW=2099 plans from the real now."""
    before = datetime.now(UTC)
    ignored = _run([_installed(), "plan", "--json"], _env(setup, **OLD_HOOKS), setup.workdir)
    item = _plan(ignored, "installed")
    assert item["due"] is False, item
    due_at = datetime.fromisoformat(item["due_at"])
    assert before + timedelta(days=29) < due_at < datetime.now(UTC) + timedelta(days=31), item

    # The harness does pin the clock: in 2099 everything is due.
    pinned = _run(
        harness.command("plan", "--json"),
        harness.environment(_env(setup), now=FUTURE),
        setup.workdir,
    )
    assert _plan(pinned, "installed")["due"] is True


@pytest.mark.e2e
def test_the_installed_rotator_ignores_rotator_fault(setup: Rotator) -> None:
    """`rotate` of the installed script under ROTATOR_FAULT completes, dated by the real clock."""
    before = datetime.now(UTC)
    done = _run([_installed(), "rotate", "installed"], _env(setup, **OLD_HOOKS), setup.workdir)
    assert done.code == 0, done.stderr  # not 137 (before:mint), not a rollback (fail:verify)
    assert "fault injected" not in done.stderr
    [rotation] = setup("history", "installed", "--json").json()
    assert rotation["state"] == "grace" and rotation["error"] is None, rotation
    created = datetime.fromisoformat(rotation["created_at"])
    assert before - timedelta(seconds=1) <= created <= datetime.now(UTC)  # not in 2099

    # Through the harness the same points do fire.
    crashed = setup("rotate", "crashed", fault="before:mint")
    assert crashed.code == 137, crashed.stderr
    assert "fault injected at before:mint" in crashed.stderr
    failed = setup("rotate", "failed", now=datetime(2099, 1, 1, tzinfo=UTC), fault="fail:verify")
    assert failed.code != 0, failed.stderr
    [rolled_back] = setup("history", "failed", "--json").json()
    assert rolled_back["state"] == "rolled_back", rolled_back
    assert "fault injected" in rolled_back["error"]
    assert rolled_back["created_at"].startswith("2099-01-01")


def test_no_module_of_the_program_arms_a_hook_or_reads_a_test_variable() -> None:
    """Under rotator/ and providers/, nothing calls pinned() or armed() or names a hook variable."""
    root = Path(__file__).resolve().parents[2]
    names = ("ROTATOR_NOW", "ROTATOR_FAULT", harness.NOW, harness.FAULT)
    offenders = []
    for path in sorted([*root.glob("rotator/**/*.py"), *root.glob("providers/**/*.py")]):
        text = path.read_text()
        offenders += [f"{path.relative_to(root)}: {n}" for n in names if n in text]
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called in ("pinned", "armed"):
                    offenders.append(f"{path.relative_to(root)}:{node.lineno}: {called}()")
    assert offenders == []


def test_the_test_only_overrides_are_off_by_default_and_undone_on_exit() -> None:
    """pinned() and armed() hold inside their block only, nested blocks included."""
    assert faults._armed() == frozenset()
    assert abs(clock.system_clock() - datetime.now(UTC)) < timedelta(seconds=5)
    at = datetime(2099, 1, 1, tzinfo=UTC)
    with clock.pinned(at), faults.armed("fail:verify"):
        assert clock.system_clock() == at
        with clock.pinned(at + timedelta(days=1)), faults.armed("hang:mint:issued"):
            assert clock.system_clock() == at + timedelta(days=1)
            assert faults._armed() == {"fail:verify", "hang:mint:issued"}
        assert clock.system_clock() == at
        with pytest.raises(PermanentError, match="fault injected: verify fails"):
            faults.fail("verify")
    faults.fail("verify")
    assert faults._armed() == frozenset()
    assert abs(clock.system_clock() - datetime.now(UTC)) < timedelta(seconds=5)
