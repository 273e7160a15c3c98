"""Target and verifier ``exec``: a command run as a deploy or check hook, certbot-style.

The command is run directly (no shell) with the credential on its standard
input: exactly the value's text, UTF-8, with no trailing newline (a mapping
value as compact sorted JSON), then end of file; read it with
``value=$(cat)`` in a shell. The value is never in its arguments (any user
can read another process's ``argv`` in ``/proc``) nor in its environment
(inherited by everything the hook starts, and dumped by crash reporters).

Its environment is small on purpose: rotator's own provider credentials
(``AWS_*``, ``VAULT_TOKEN``...) are not handed to a hook. It holds ``PATH``,
``HOME``, ``LANG``, ``LC_ALL``, ``TZ`` and ``TMPDIR`` from rotator's
environment, the variables named in ``pass_env``, those set in ``env``
(non-secret: policies are not secret), and:

- ``ROTATOR_SECRET``: the policy's name;
- ``ROTATOR_PHASE``: ``write`` (the target receives the new value),
  ``restore`` (the target receives the previous value back, on rollback) or
  ``verify`` (the verifier receives the new value to try), so that one
  script can serve every phase;
- ``ROTATOR_ROTATION_ID``: the rotation (``write`` and ``restore``; the
  engine does not pass it to a verifier);
- ``ROTATOR_HAS_VALUE``: ``1``, or ``0`` when a restore has no previous
  value to put back (stdin is then empty: remove what ``write`` added);
- ``ROTATOR_CREDENTIAL_REF``: the credential's non-secret id (an IAM access
  key id) when the issuer has one (``verify`` only).

Exit status: ``0`` is success; ``75`` (``EX_TEMPFAIL`` of ``sysexits.h``,
which sendmail and certbot's hooks use for "try again later") raises
``TransientError``, so the engine retries; any other status raises
``PermanentError`` from a target (the rotation rolls back) and
``VerificationError`` from a verifier. A command that outlives ``timeout`` is
killed with its whole process group and raises ``TransientError``. A command
that cannot be found raises ``NotFoundError``; one that is not executable,
``PermissionDeniedError``.

The hook's output is discarded, never logged nor put in an error message: a
hook may well echo the value it was given (or a piece of it, which no
scrubber would recognise). A hook that wants a record writes its own log.

A hook must be idempotent, as every target is: the engine may run ``write``
again after a crash, and ``restore`` when ``write`` never ran.

A hook's own process group is not reached by signals sent to rotator, so
rotator ends it when it stops (:func:`end_hooks`, registered with
:mod:`rotator.adapters.shutdown` and run at exit): SIGTERM to the group, SIGKILL to
what is left ``END_GRACE`` seconds later. ``rotator rotate`` does so as soon
as it is told to stop; ``rotator run`` once its running steps have had their
shutdown deadline. A hook ended so, or one that would start after, fails
its step with ``TransientError``: the rotation stays where it was and the
next start runs the hook again.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import shutil
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Mapping
from datetime import timedelta

from pydantic import Field, field_validator

from rotator.adapters import shutdown
from rotator.adapters.durations import Duration
from rotator.adapters.roles import Credential, ProviderConfig, Target, Verifier
from rotator.adapters.secret import SecretValue
from rotator.errors import (
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    ProviderError,
    TransientError,
    VerificationError,
)

PROVIDER = "exec"
#: ``EX_TEMPFAIL`` (sysexits.h): a temporary failure, try again later.
EX_TEMPFAIL = 75
#: Variables of rotator's environment every hook gets (none of them a credential).
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_TIMEOUT = timedelta(hours=1)

log = logging.getLogger(__name__)

#: Seconds a hook's process group has between SIGTERM and SIGKILL when rotator stops.
END_GRACE = 2.0
#: Seconds between two looks at whether the ended groups are gone.
_END_POLL = 0.02
#: The hooks running now, by process id (their process group's id too). Only
#: single dict operations touch it (atomic), so a signal handler may read it.
_RUNNING: dict[int, subprocess.Popen[bytes]] = {}
#: Set once rotator stops: no hook starts any more, and an ended hook is no failure.
_STOPPING = threading.Event()


def _env_names(names: list[str]) -> list[str]:
    for name in names:
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not an environment variable name")
        if name.upper().startswith("ROTATOR_"):
            raise ValueError(f"{name}: ROTATOR_* variables are set by rotator itself")
    return names


class ExecConfig(ProviderConfig):
    """Policy fields of the ``exec`` target and verifier."""

    #: The program and its arguments, run without a shell; the program is an
    #: absolute path or a name looked up in ``PATH``.
    command: list[str] = Field(min_length=1)
    #: How long the command may run before it is killed (a TransientError).
    timeout: Duration = timedelta(seconds=30)
    #: Extra environment variables, never secret (policies are not secret).
    env: dict[str, str] = Field(default_factory=dict)
    #: Names of rotator's own environment variables to pass on, if set.
    pass_env: list[str] = Field(default_factory=list)

    @field_validator("command")
    @classmethod
    def _runnable(cls, value: list[str]) -> list[str]:
        program = value[0]
        if not program:
            raise ValueError("command[0] must name a program")
        if "/" in program and not os.path.isabs(program):
            raise ValueError(
                f"command[0] {program!r} must be an absolute path or a name looked up in PATH "
                "(a relative path depends on the directory rotator runs in)"
            )
        if any("\0" in arg for arg in value):
            raise ValueError("command arguments may not contain NUL characters")
        return value

    @field_validator("timeout")
    @classmethod
    def _sane_timeout(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("timeout must be longer than zero")
        if value > _MAX_TIMEOUT:
            raise ValueError("timeout may not be longer than 1h")
        return value

    @field_validator("env")
    @classmethod
    def _env_ok(cls, value: dict[str, str]) -> dict[str, str]:
        _env_names(list(value))
        if any("\0" in v for v in value.values()):
            raise ValueError("env values may not contain NUL characters")
        return value

    @field_validator("pass_env")
    @classmethod
    def _pass_env_ok(cls, value: list[str]) -> list[str]:
        return _env_names(value)


def _environment(config: ExecConfig, own: Mapping[str, str]) -> dict[str, str]:
    """Return a command's whole environment: the base variables, ``pass_env``, ``env``, ``own``.

    ``own`` holds rotator's ``ROTATOR_*`` variables, set last so a policy
    cannot shadow them (its validators refuse such names anyway).
    """
    env = {name: os.environ[name] for name in BASE_ENV if name in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update({name: os.environ[name] for name in config.pass_env if name in os.environ})
    env.update(config.env)
    env.update(own)
    return env


def _program(config: ExecConfig) -> str:
    """Return the program's base name, as messages and logs name it (never its arguments)."""
    return os.path.basename(config.command[0])


def _run(config: ExecConfig, data: bytes, env: dict[str, str], operation: str) -> int:
    """Run the command with ``data`` on its input and its output discarded; return its status.

    Raises ``TransientError`` when it outlives ``timeout`` (its whole process
    group is killed), ``NotFoundError`` / ``PermissionDeniedError`` /
    ``PermanentError`` when it cannot start. ``operation`` names the phase in
    messages.
    """
    name = _program(config)
    if _STOPPING.is_set():
        raise _stopped(name, operation)
    started = time.monotonic()
    try:
        process = subprocess.Popen(  # noqa: S603 (a command from the policy, no shell)
            config.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
            # Its own process group, so a timeout kills what it started too,
            # and a Ctrl-C at rotator's terminal does not reach it.
            start_new_session=True,
        )
    except OSError as exc:
        raise _start_error(config, exc, operation) from None
    _RUNNING[process.pid] = process
    try:
        if _STOPPING.is_set():  # rotator began stopping as it started: end it with the rest
            _end_groups([process], END_GRACE)
        process.communicate(data, timeout=config.timeout.total_seconds())
    except subprocess.TimeoutExpired:
        _kill(process)
        raise TransientError(
            f"command {name} ({operation}) did not finish within "
            f"{config.timeout.total_seconds():g}s and was killed",
            provider=PROVIDER,
            operation=operation,
        ) from None
    except BaseException:
        _kill(process)
        raise
    finally:
        _RUNNING.pop(process.pid, None)
    if _STOPPING.is_set() and process.returncode != 0:
        raise _stopped(name, operation)
    log.debug(
        "hook %s (%s) exited with %s after %.2fs",
        name,
        operation,
        process.returncode,
        time.monotonic() - started,
    )
    return process.returncode


def _start_error(config: ExecConfig, exc: OSError, operation: str) -> ProviderError:
    """Return the error of a command that could not start (never the exception's own text)."""
    program = config.command[0]
    if isinstance(exc, FileNotFoundError):
        return NotFoundError(f"command {program} not found", provider=PROVIDER, operation=operation)
    if isinstance(exc, PermissionError):
        return PermissionDeniedError(
            f"command {program} is not executable", provider=PROVIDER, operation=operation
        )
    reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
    return PermanentError(
        f"command {program} could not start: {reason}", provider=PROVIDER, operation=operation
    )


def _kill(process: subprocess.Popen[bytes]) -> None:
    """Kill the command's whole process group and reap it."""
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _stopped(name: str, operation: str) -> TransientError:
    """Return the error of a hook ended, or not started, because rotator is stopping."""
    return TransientError(
        f"command {name} ({operation}) was ended: rotator is stopping; "
        "the next start runs it again",
        provider=PROVIDER,
        operation=operation,
    )


def end_hooks(grace: float = END_GRACE) -> None:
    """End every running hook's process group: SIGTERM, then SIGKILL what is left after ``grace``.

    For a rotator that stops: from then on no hook starts, and a hook ended
    here fails its step with ``TransientError`` instead of failing it for
    good. Takes no lock, so a signal handler may call it; calling it again
    is harmless. Returns when every group is gone or has been sent SIGKILL.
    """
    _STOPPING.set()
    # A snapshot: the threads running hooks add and remove theirs meanwhile.
    _end_groups(list(_RUNNING.values()), grace)


def _end_groups(processes: list[subprocess.Popen[bytes]], grace: float) -> None:
    """Send each hook's process group SIGTERM; SIGKILL the groups still there after ``grace``."""
    for process in processes:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(_group_alive(p) for p in processes) and time.monotonic() < deadline:
        time.sleep(_END_POLL)
    for process in processes:
        if _group_alive(process):
            _signal_group(process, signal.SIGKILL)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """Send ``signum`` to a hook's whole process group, if any of it is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # gone, or not ours to signal
        os.killpg(process.pid, signum)


def _group_alive(process: subprocess.Popen[bytes]) -> bool:
    """Tell whether any process of a hook's group is left."""
    process.poll()  # reap the leader if it exited: unreaped, it still counts in its group
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # a member rotator may not signal (a setuid program) is still a member
    return True


shutdown.register(end_hooks)
atexit.register(end_hooks)


def _exit_outcome(
    config: ExecConfig, status: int, operation: str, refused: type[PermanentError]
) -> None:
    """Raise what exit ``status`` means (nothing for 0); ``refused`` for a plain failure."""
    if status == 0:
        return
    name = _program(config)
    if status == EX_TEMPFAIL:
        raise TransientError(
            f"command {name} ({operation}) exited with status 75 (EX_TEMPFAIL): "
            "a temporary failure; retry later",
            provider=PROVIDER,
            operation=operation,
        )
    if status < 0:
        try:
            signal_name = signal.Signals(-status).name
        except ValueError:
            signal_name = f"signal {-status}"
        raise PermanentError(
            f"command {name} ({operation}) was killed by {signal_name}",
            provider=PROVIDER,
            operation=operation,
        )
    raise refused(
        f"command {name} ({operation}) exited with status {status}",
        provider=PROVIDER,
        operation=operation,
    )


class _Hook:
    """Runs one configured command for a phase, with the value on stdin."""

    def __init__(self, config: ExecConfig, secret: str) -> None:
        self.config = config
        self.secret = secret

    def environment(self, phase: str, extra: dict[str, str]) -> dict[str, str]:
        """Return the hook's whole environment for ``phase`` (never a secret value)."""
        return _environment(
            self.config, {"ROTATOR_SECRET": self.secret, "ROTATOR_PHASE": phase, **extra}
        )

    def resolve(self, operation: str) -> str:
        """Return the program's path, checking it exists and is executable (runs nothing)."""
        program = self.config.command[0]
        if not os.path.isabs(program):
            found = shutil.which(program, path=self.environment("check", {})["PATH"])
            if found is None:
                raise NotFoundError(
                    f"command {program} is not in PATH", provider=PROVIDER, operation=operation
                )
            program = found
        try:
            status = os.stat(program)
        except FileNotFoundError:
            raise NotFoundError(
                f"command {program} does not exist", provider=PROVIDER, operation=operation
            ) from None
        except OSError as exc:
            raise PermanentError(
                f"command {program}: {os.strerror(exc.errno or 0)}",
                provider=PROVIDER,
                operation=operation,
            ) from None
        if not stat.S_ISREG(status.st_mode):
            raise PermanentError(
                f"command {program} is not a regular file", provider=PROVIDER, operation=operation
            )
        if not os.access(program, os.X_OK):
            raise PermissionDeniedError(
                f"command {program} is not executable by this process",
                provider=PROVIDER,
                operation=operation,
            )
        return program

    def run(self, phase: str, stdin: SecretValue | None, extra: dict[str, str]) -> int:
        """Run the command with ``stdin``'s text on its input; return its exit status.

        Raises ``TransientError`` on timeout, ``NotFoundError`` /
        ``PermissionDeniedError`` / ``PermanentError`` when it cannot start.
        """
        data = b"" if stdin is None else stdin.text().encode("utf-8")
        env = self.environment(phase, {"ROTATOR_HAS_VALUE": "0" if stdin is None else "1", **extra})
        return _run(self.config, data, env, phase)

    def outcome(self, status: int, phase: str, refused: type[PermanentError]) -> None:
        """Raise what exit ``status`` means (nothing for 0); ``refused`` for a plain failure."""
        _exit_outcome(self.config, status, phase, refused)


class ExecTarget(Target[ExecConfig]):
    """A deploy hook: runs the command with the new value on stdin (the previous on restore)."""

    kind = "exec"
    Config = ExecConfig

    def _hook(self) -> _Hook:
        return _Hook(self.config, self.secret)

    def describe(self) -> str:
        """Return ``exec:<program>`` (the arguments left out)."""
        return f"{PROVIDER}:{self.config.command[0]}"

    def write(self, rotation_id: str, value: SecretValue) -> None:
        """Run the command with ``ROTATOR_PHASE=write`` and ``value`` on stdin.

        Raises:
            TransientError: exit status 75, or the timeout passed.
            NotFoundError: the command does not exist.
            PermissionDeniedError: the command is not executable.
            PermanentError: any other non-zero exit status, or killed by a signal.
        """
        hook = self._hook()
        status = hook.run("write", value, {"ROTATOR_ROTATION_ID": rotation_id})
        hook.outcome(status, "write", PermanentError)

    def restore(
        self, rotation_id: str, *, written: SecretValue | None, previous: SecretValue | None
    ) -> None:
        """Run the command with ``ROTATOR_PHASE=restore`` and ``previous`` on stdin.

        Stdin is empty and ``ROTATOR_HAS_VALUE=0`` when there is no previous
        value. ``written`` is not passed: the hook puts back what it is
        given. Raises the errors ``write`` raises.
        """
        hook = self._hook()
        status = hook.run("restore", previous, {"ROTATOR_ROTATION_ID": rotation_id})
        hook.outcome(status, "restore", PermanentError)

    def check(self) -> str:
        """Check the command exists and is executable, without running it."""
        return f"command {self._hook().resolve('check')} is executable"


class ExecVerifier(Verifier[ExecConfig]):
    """A check hook: runs the command with the new credential on stdin; exit 0 means it works."""

    kind = "exec"
    Config = ExecConfig

    def describe(self) -> str:
        """Return ``exec:<program>`` (the arguments left out)."""
        return f"{PROVIDER}:{self.config.command[0]}"

    def verify(self, credential: Credential) -> None:
        """Run the command with ``ROTATOR_PHASE=verify`` and the credential on stdin.

        Raises:
            VerificationError: a non-zero exit status other than 75.
            TransientError: exit status 75, or the timeout passed.
            NotFoundError: the command does not exist.
            PermissionDeniedError: the command is not executable.
            PermanentError: killed by a signal, or could not start.
        """
        hook = _Hook(self.config, self.secret)
        extra = {} if credential.ref is None else {"ROTATOR_CREDENTIAL_REF": credential.ref}
        status = hook.run("verify", credential.value, extra)
        hook.outcome(status, "verify", VerificationError)
