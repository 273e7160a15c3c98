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
rotator ends it when it stops (:func:`providers.transport.commands.end_hooks`,
registered with ``rotator.adapters.at_shutdown`` and run at exit): SIGTERM to
the group, SIGKILL to what is left ``END_GRACE`` seconds later. ``rotator rotate`` does so as soon
as it is told to stop; ``rotator run`` once its running steps have had their
shutdown deadline. A hook ended so, or one that would start after, fails
its step with ``TransientError``: the rotation stays where it was and the
next start runs the hook again.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Mapping
from typing import ClassVar

from providers.transport.commands import (
    PROVIDER,
    CommandConfig,
    environment,
    raise_for_exit,
    run,
)
from rotator.adapters import Credential, SecretValue, Target, Verifier
from rotator.errors import (
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    VerificationError,
)


class ExecConfig(CommandConfig):
    """Policy fields of the ``exec`` target and verifier."""


class _Hook:
    """Runs one configured command for a phase, with the value on stdin."""

    def __init__(self, config: ExecConfig, secret: str) -> None:
        self.config = config
        self.secret = secret

    def environment(self, phase: str, extra: dict[str, str]) -> dict[str, str]:
        """Return the hook's whole environment for ``phase`` (never a secret value)."""
        return environment(
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
        return run(self.config, data, env, phase)

    def outcome(self, status: int, phase: str, refused: type[PermanentError]) -> None:
        """Raise what exit ``status`` means (nothing for 0); ``refused`` for a plain failure."""
        raise_for_exit(self.config, status, phase, refused)


class ExecTarget(Target[ExecConfig]):
    """A deploy hook: runs the command with the new value on stdin (the previous on restore)."""

    kind = "exec"
    Config = ExecConfig
    example: ClassVar[Mapping[str, object]] = {"command": ["/usr/local/bin/reload-app"]}
    docs = "docs/targets.md"

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
    example: ClassVar[Mapping[str, object]] = {"command": ["/usr/local/bin/check-app-login"]}
    docs = "docs/targets.md"

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
