"""Running a command as a hook: the value on its standard input, never in its arguments.

What the ``exec`` target and verifier (:mod:`providers.exec`) and the
``exec`` notifier (:mod:`providers.notifiers`) share.

The command is run directly (no shell), its output discarded (never logged
nor put in an error message: a hook may echo the value it was given), in its
own process group, with a small environment (:func:`environment`):
``PATH``, ``HOME``, ``LANG``, ``LC_ALL``, ``TZ`` and ``TMPDIR`` from
rotator's environment, the variables named in ``pass_env``, those set in
``env``, and rotator's own ``ROTATOR_*`` variables, set last. rotator's own
provider credentials (``AWS_*``, ``VAULT_TOKEN``...) are not handed on.

Exit status (:func:`raise_for_exit`): ``0`` is success; ``75``
(``EX_TEMPFAIL``) raises ``TransientError``; a kill by a signal
``PermanentError``; any other status the error the caller names. A command
that outlives its timeout is killed with its whole process group and raises
``TransientError``; one that cannot start raises ``NotFoundError``,
``PermissionDeniedError`` or ``PermanentError``.

A command's process group is not reached by signals sent to rotator, so
rotator ends it when it stops (:func:`end_hooks`, registered with
``rotator.adapters.at_shutdown`` and run at exit): SIGTERM to the group,
SIGKILL to what is left ``END_GRACE`` seconds later. A command ended so, or
one that would start after, raises ``TransientError``: the next start runs
it again.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from datetime import timedelta

from pydantic import Field, field_validator

from providers.transport.failures import Outcome
from rotator.adapters import Duration, ProviderConfig, at_shutdown
from rotator.errors import (
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    ProviderError,
    TransientError,
)

#: The provider the errors of a command name (the ``exec`` target, verifier and notifier).
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


class CommandConfig(ProviderConfig):
    """Policy fields of every adapter that runs a command: the command, its timeout, its env."""

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


def environment(config: CommandConfig, own: Mapping[str, str]) -> dict[str, str]:
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


def _program(config: CommandConfig) -> str:
    """Return the program's base name, as messages and logs name it (never its arguments)."""
    return os.path.basename(config.command[0])


def run(config: CommandConfig, data: bytes, env: dict[str, str], operation: str) -> int:
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


def _start_error(config: CommandConfig, exc: OSError, operation: str) -> ProviderError:
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


at_shutdown(end_hooks)
atexit.register(end_hooks)


def raise_for_exit(
    config: CommandConfig, status: int, operation: str, refused: type[PermanentError]
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


def exit_outcome(status: int) -> Outcome:
    """Return how a command that exited with ``status`` ends, as :func:`raise_for_exit` judges."""
    if status == 0:
        return "ok"
    return "transient" if status == EX_TEMPFAIL else "permanent"
