"""The ``exec`` target and verifier with real hook scripts run as subprocesses."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from providers.exec import ExecConfig, ExecTarget, ExecVerifier
from rotator.adapters import Target, Verifier
from rotator.adapters.secret import SecretValue
from rotator.adapters.values import Credential, Runtime
from rotator.errors import (
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    TransientError,
    VerificationError,
)
from rotator.testing import TargetContract, VerifierContract, fresh_value

ROTATION = "0123456789abcdef0123456789abcdef"
VALUE = "canary-Value-7f3a9c2e1b"
PREVIOUS = "previous-Value-4d5e6f7a8b"

# Records what the hook received (stdin, argv, environment) into $RECORD, then
# prints the value back on stdout and stderr (a careless hook) and exits $EXIT.
RECORDER = f"""#!{sys.executable}
import json, os, sys
data = sys.stdin.read()
with open(os.environ["RECORD"], "a") as out:
    out.write(json.dumps({{"stdin": data, "argv": sys.argv, "env": dict(os.environ)}}) + "\\n")
print("hook got", data)
print("hook failed with", data, file=sys.stderr)
sys.exit(int(os.environ.get("EXIT", "0")))
"""


@pytest.fixture
def recorder(tmp_path: Path) -> Path:
    """Write the recording hook script, executable, and return its path."""
    script = tmp_path / "hook.py"
    script.write_text(RECORDER)
    script.chmod(0o755)
    return script


def hook(runtime: Runtime, tmp_path: Path, script: Path, **fields: Any) -> ExecConfig:
    """Return an exec config running ``script`` that records into tmp_path/record.jsonl."""
    env = {"RECORD": str(tmp_path / "record.jsonl"), **fields.pop("env", {})}
    return ExecConfig(command=[str(script), "--flag", "arg"], env=env, **fields)


def records(tmp_path: Path) -> list[dict[str, Any]]:
    """Return every run the recording hook recorded, in order."""
    path = tmp_path / "record.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_value_only_on_stdin(record: dict[str, Any], value: str) -> None:
    """Assert ``value`` is nowhere in the hook's argv or environment."""
    assert not any(value in arg for arg in record["argv"])
    assert not any(value in k or value in v for k, v in record["env"].items())


# -- target -------------------------------------------------------------------


def test_write_sends_the_value_on_stdin_only(
    runtime: Runtime, tmp_path: Path, recorder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hook gets the exact value on stdin, the phase variables, and no value in argv or env."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "rotators-own-credential")
    config = hook(runtime, tmp_path, recorder, env={"SERVICE": "payments"})
    ExecTarget(config, runtime, "payments-db").write(ROTATION, SecretValue(VALUE))
    [record] = records(tmp_path)
    assert record["stdin"] == VALUE
    assert record["argv"][1:] == ["--flag", "arg"]
    assert_value_only_on_stdin(record, VALUE)
    env = record["env"]
    assert env["ROTATOR_SECRET"] == "payments-db"
    assert env["ROTATOR_PHASE"] == "write"
    assert env["ROTATOR_ROTATION_ID"] == ROTATION
    assert env["ROTATOR_HAS_VALUE"] == "1"
    assert env["SERVICE"] == "payments"
    assert "AWS_SECRET_ACCESS_KEY" not in env  # rotator's own credentials stay home


def test_pass_env_hands_on_named_variables(
    runtime: Runtime, tmp_path: Path, recorder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A variable named in pass_env reaches the hook; others of rotator's environment do not."""
    monkeypatch.setenv("KUBECONFIG", "/etc/kube/config")
    monkeypatch.setenv("UNRELATED", "x")
    config = hook(runtime, tmp_path, recorder, pass_env=["KUBECONFIG", "NOT_SET_ANYWHERE"])
    ExecTarget(config, runtime, "payments-db").write(ROTATION, SecretValue(VALUE))
    env = records(tmp_path)[0]["env"]
    assert env["KUBECONFIG"] == "/etc/kube/config"
    assert "UNRELATED" not in env
    assert "NOT_SET_ANYWHERE" not in env


def test_mapping_value_arrives_as_compact_json(
    runtime: Runtime, tmp_path: Path, recorder: Path
) -> None:
    """A mapping value reaches stdin as its compact sorted JSON text."""
    value = SecretValue({"SecretAccessKey": "s3cr3t-access-key", "AccessKeyId": "AKIAEXAMPLE"})
    ExecTarget(hook(runtime, tmp_path, recorder), runtime, "k").write(ROTATION, value)
    [record] = records(tmp_path)
    assert record["stdin"] == value.text()
    assert_value_only_on_stdin(record, "s3cr3t-access-key")


def test_restore_sends_the_previous_value(runtime: Runtime, tmp_path: Path, recorder: Path) -> None:
    """restore runs the hook with phase restore and the previous value on stdin."""
    target = ExecTarget(hook(runtime, tmp_path, recorder), runtime, "payments-db")
    target.restore(ROTATION, written=SecretValue(VALUE), previous=SecretValue(PREVIOUS))
    [record] = records(tmp_path)
    assert record["stdin"] == PREVIOUS
    assert record["env"]["ROTATOR_PHASE"] == "restore"
    assert record["env"]["ROTATOR_HAS_VALUE"] == "1"
    assert_value_only_on_stdin(record, PREVIOUS)
    assert_value_only_on_stdin(record, VALUE)


def test_restore_without_previous_sends_empty_stdin(
    runtime: Runtime, tmp_path: Path, recorder: Path
) -> None:
    """With no previous value, stdin is empty and ROTATOR_HAS_VALUE is 0."""
    ExecTarget(hook(runtime, tmp_path, recorder), runtime, "db").restore(
        ROTATION, written=SecretValue(VALUE), previous=None
    )
    [record] = records(tmp_path)
    assert (record["stdin"], record["env"]["ROTATOR_HAS_VALUE"]) == ("", "0")


def test_failing_hook_is_permanent_and_its_output_is_not_repeated(
    runtime: Runtime, tmp_path: Path, recorder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A non-zero exit raises PermanentError naming command and status, never what it printed."""
    caplog.set_level(logging.DEBUG)
    config = hook(runtime, tmp_path, recorder, env={"EXIT": "3"})
    with pytest.raises(PermanentError) as caught:
        ExecTarget(config, runtime, "db").write(ROTATION, SecretValue(VALUE))
    assert type(caught.value) is PermanentError
    message = str(caught.value)
    assert "hook.py" in message
    assert "status 3" in message
    assert VALUE not in message
    assert VALUE not in caplog.text


def test_exit_75_is_transient(runtime: Runtime, tmp_path: Path, recorder: Path) -> None:
    """Exit status 75 (EX_TEMPFAIL) raises TransientError for the target and the verifier."""
    config = hook(runtime, tmp_path, recorder, env={"EXIT": "75"})
    with pytest.raises(TransientError, match="EX_TEMPFAIL"):
        ExecTarget(config, runtime, "db").write(ROTATION, SecretValue(VALUE))
    with pytest.raises(TransientError, match="EX_TEMPFAIL"):
        ExecVerifier(config, runtime, "db").verify(Credential(SecretValue(VALUE)))


def test_timeout_kills_the_hook_and_what_it_started(runtime: Runtime, tmp_path: Path) -> None:
    """A hook outliving its timeout is killed with its children and raises TransientError."""
    pid_file = tmp_path / "child.pid"
    script = tmp_path / "slow.sh"
    script.write_text(f'#!/bin/sh\nsleep 30 &\necho $! > "{pid_file}"\nwait\n')
    script.chmod(0o755)
    config = ExecConfig(command=[str(script)], timeout=0.3)
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"did not finish within 0\.3s"):
        ExecTarget(config, runtime, "db").write(ROTATION, SecretValue(VALUE))
    assert time.monotonic() - started < 10
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    pause = threading.Event()
    while not _dead(child) and time.monotonic() < deadline:
        pause.wait(0.02)
    assert _dead(child)


def _dead(pid: int) -> bool:
    """Tell whether ``pid`` is gone or a zombie (killed, not yet reaped by its new parent)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def test_hook_that_ignores_a_large_stdin_still_succeeds(runtime: Runtime) -> None:
    """A hook that exits without reading a value larger than a pipe's buffer is not an error."""
    config = ExecConfig(command=["true"], timeout=10)
    ExecTarget(config, runtime, "db").write(ROTATION, SecretValue("x" * 1_000_000))


def test_missing_command_is_not_found(runtime: Runtime, tmp_path: Path) -> None:
    """A command that does not exist raises NotFoundError, from write and from check."""
    config = ExecConfig(command=[str(tmp_path / "absent")])
    target = ExecTarget(config, runtime, "db")
    with pytest.raises(NotFoundError, match="absent"):
        target.write(ROTATION, SecretValue(VALUE))
    with pytest.raises(NotFoundError, match="absent"):
        target.check()
    with pytest.raises(NotFoundError, match="not in PATH"):
        ExecTarget(ExecConfig(command=["rotator-no-such-hook"]), runtime, "db").check()


def test_command_not_executable_is_permission_denied(runtime: Runtime, tmp_path: Path) -> None:
    """A command file without execute permission raises PermissionDeniedError (write and check)."""
    script = tmp_path / "hook.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    target = ExecTarget(ExecConfig(command=[str(script)]), runtime, "db")
    with pytest.raises(PermissionDeniedError, match="not executable"):
        target.write(ROTATION, SecretValue(VALUE))
    with pytest.raises(PermissionDeniedError, match="not executable"):
        target.check()


def test_check_does_not_run_the_command(runtime: Runtime, tmp_path: Path, recorder: Path) -> None:
    """check resolves the command (also by PATH) and says so, without running it."""
    said = ExecTarget(hook(runtime, tmp_path, recorder), runtime, "db").check()
    assert str(recorder) in said
    assert records(tmp_path) == []
    assert "/true" in ExecTarget(ExecConfig(command=["true"]), runtime, "db").check()


def test_describe_leaves_arguments_out(runtime: Runtime, tmp_path: Path, recorder: Path) -> None:
    """describe names the program only."""
    config = hook(runtime, tmp_path, recorder)
    assert ExecTarget(config, runtime, "db").describe() == f"exec:{recorder}"
    assert ExecVerifier(config, runtime, "db").describe() == f"exec:{recorder}"


# -- verifier -----------------------------------------------------------------


def test_verifier_sends_the_credential_on_stdin(
    runtime: Runtime, tmp_path: Path, recorder: Path
) -> None:
    """verify runs the hook with phase verify, the value on stdin and the credential's ref."""
    verifier = ExecVerifier(hook(runtime, tmp_path, recorder), runtime, "db")
    verifier.verify(Credential(SecretValue(VALUE), "AKIAEXAMPLE"))
    [record] = records(tmp_path)
    assert record["stdin"] == VALUE
    assert record["env"]["ROTATOR_PHASE"] == "verify"
    assert record["env"]["ROTATOR_CREDENTIAL_REF"] == "AKIAEXAMPLE"
    assert "ROTATOR_ROTATION_ID" not in record["env"]
    assert_value_only_on_stdin(record, VALUE)


def test_verifier_refusal_is_a_verification_error(
    runtime: Runtime, tmp_path: Path, recorder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A non-zero exit from the check raises VerificationError without the value."""
    caplog.set_level(logging.DEBUG)
    config = hook(runtime, tmp_path, recorder, env={"EXIT": "1"})
    with pytest.raises(VerificationError, match="status 1") as caught:
        ExecVerifier(config, runtime, "db").verify(Credential(SecretValue(VALUE)))
    assert VALUE not in str(caught.value)
    assert VALUE not in caplog.text


def test_hook_killed_by_a_signal_is_permanent(runtime: Runtime, tmp_path: Path) -> None:
    """A hook killed by a signal raises PermanentError naming the signal (not VerificationError)."""
    script = tmp_path / "crash.sh"
    script.write_text("#!/bin/sh\nkill -TERM $$\n")
    script.chmod(0o755)
    with pytest.raises(PermanentError, match="SIGTERM") as caught:
        ExecVerifier(ExecConfig(command=[str(script)]), runtime, "db").verify(
            Credential(SecretValue(VALUE))
        )
    assert not isinstance(caught.value, VerificationError)


# -- config -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"command": []}, "at least 1"),
        ({"command": [""]}, "name a program"),
        ({"command": ["./hook.sh"]}, "absolute path"),
        ({"command": ["bin/hook"]}, "absolute path"),
        ({"command": ["/bin/true", "a\0b"]}, "NUL"),
        ({"command": ["/bin/true"], "timeout": "0s"}, "longer than zero"),
        ({"command": ["/bin/true"], "timeout": "2h"}, "1h"),
        ({"command": ["/bin/true"], "timeout": "soon"}, "malformed duration"),
        ({"command": ["/bin/true"], "env": {"ROTATOR_PHASE": "x"}}, "set by rotator"),
        ({"command": ["/bin/true"], "env": {"BAD-NAME": "x"}}, "not an environment variable"),
        ({"command": ["/bin/true"], "pass_env": ["rotator_secret"]}, "set by rotator"),
        ({"command": ["/bin/true"], "shell": True}, "shell"),
        ({"command": "/bin/true"}, "command"),
    ],
)
def test_config_refuses_bad_fields(fields: dict[str, Any], reason: str) -> None:
    """Each invalid policy is refused with a reason naming the problem."""
    with pytest.raises(ValidationError, match=reason):
        ExecConfig(**fields)


def test_config_defaults() -> None:
    """The default timeout is 30 seconds, with no extra environment."""
    config = ExecConfig(command=["/usr/local/bin/reload-payments"])
    assert config.timeout.total_seconds() == 30
    assert (config.env, config.pass_env) == ({}, [])


def test_environment_has_a_path_even_when_rotator_has_none(
    runtime: Runtime, tmp_path: Path, recorder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without PATH in rotator's environment the hook still gets the default one."""
    monkeypatch.delenv("PATH", raising=False)
    ExecTarget(hook(runtime, tmp_path, recorder), runtime, "db").write(ROTATION, SecretValue(VALUE))
    assert records(tmp_path)[0]["env"]["PATH"] == os.defpath


# -- the Target and Verifier contracts ----------------------------------------

# A deploy hook that keeps what it is given in $STATE, as a consumer's config
# file (an empty restore removes it), and a check hook that accepts only the
# credential in $STATE. Either exits 75 (try again later) while $STATE.down exists.
CONTRACT_HOOK = f"""#!{sys.executable}
import os, sys
state = os.environ["STATE"]
if os.path.exists(state + ".down"):
    sys.exit(75)
data = sys.stdin.read()
phase = os.environ["ROTATOR_PHASE"]
if phase == "verify":
    with open(state) as held:
        sys.exit(0 if held.read() == data else 1)
if os.environ["ROTATOR_HAS_VALUE"] == "0":
    if os.path.exists(state):
        os.remove(state)
else:
    with open(state + ".tmp", "w") as out:
        out.write(data)
    os.replace(state + ".tmp", state)
"""


class ContractHook:
    """The contract hook script in a directory of its own, and the state it keeps."""

    def __init__(self, directory: Path) -> None:
        self.script = directory / "contract-hook.py"
        self.script.write_text(CONTRACT_HOOK)
        self.script.chmod(0o755)
        self.state = directory / "state"

    def config(self) -> ExecConfig:
        """Return an exec config running the hook on the state file."""
        return ExecConfig(command=[str(self.script)], env={"STATE": str(self.state)})

    @contextmanager
    def down(self) -> Iterator[None]:
        """Make the hook exit 75 within the block."""
        flag = self.state.with_name("state.down")
        flag.touch()
        try:
            yield
        finally:
            flag.unlink()


class TestExecTargetContract(TargetContract):
    """The Target contract over an exec deploy hook that keeps the value in a file."""

    hook: ContractHook

    @pytest.fixture
    def target(self, runtime: Runtime, tmp_path: Path) -> Target[Any]:
        self.hook = ContractHook(tmp_path)
        return ExecTarget(self.hook.config(), runtime, "payments-db")

    def carried(self, target: Target[Any]) -> SecretValue | None:
        state = self.hook.state
        return SecretValue(state.read_text()) if state.exists() else None

    def unavailable(self, target: Target[Any]) -> AbstractContextManager[None]:
        return self.hook.down()


class TestExecVerifierContract(VerifierContract):
    """The Verifier contract over an exec check hook that accepts the credential it holds."""

    hook: ContractHook

    @pytest.fixture
    def verifier(self, runtime: Runtime, tmp_path: Path) -> Verifier[Any]:
        self.hook = ContractHook(tmp_path)
        return ExecVerifier(self.hook.config(), runtime, "payments-db")

    def accepted(self, verifier: Verifier[Any]) -> Credential:
        value = fresh_value("accepted")
        self.hook.state.write_text(value.text())
        return Credential(value)

    def refused(self, verifier: Verifier[Any]) -> Credential:
        self.hook.state.write_text(fresh_value("accepted").text())
        return Credential(fresh_value("refused"))

    def unavailable(self, verifier: Verifier[Any]) -> AbstractContextManager[None]:
        return self.hook.down()
