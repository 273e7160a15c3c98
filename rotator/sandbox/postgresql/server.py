"""A throwaway PostgreSQL server on loopback, every statement in its log, gone when stopped.

The installed server binaries are found through ``pg_config --bindir``, else
the newest ``/usr/lib/postgresql/<version>/bin`` (Debian's layout), else
``initdb`` on ``PATH``. :meth:`PostgreSqlServer.start` runs ``initdb`` into
a fresh temporary directory and starts ``postgres`` on a free port of
127.0.0.1, with:

- password authentication (``scram-sha-256``) on TCP and on its socket, and
  one superuser whose password is random; initdb reads it from a file only
  the server's OS user may read, removed as soon as initdb is done, so it is
  on no command line and in no log;
- ``log_statement=all`` and the server's stderr in ``postgresql.log`` (no
  logging collector), each line naming the user, database and application:
  a password sent in the clear would be there to find;
- no durability (``fsync=off``): it holds nothing worth keeping.

initdb and postgres refuse to run as root: as root, both run as the
``postgres`` OS user (through ``setpriv``, which execs the program itself, so
the stop signal reaches the server), and the directory is made its own.
:meth:`PostgreSqlServer.stop` ends the sessions and the server (SIGINT, the
fast shutdown) and removes the directory. Standard library only.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from rotator.adapters.secret import SecretValue
from rotator.errors import PermanentError
from rotator.sandbox.core.process import ServerNotStarted, ServerProcess, free_port

#: Seconds the server may take to accept connections once started.
START_TIMEOUT = 60.0
#: Seconds initdb may take (under a second here).
INITDB_TIMEOUT = 120.0
#: The programs of the server's bin directory this module runs.
PROGRAMS = ("initdb", "postgres", "pg_isready")
#: The OS user the server runs as when rotator runs as root.
OS_USER = "postgres"
#: The superuser initdb makes.
SUPERUSER = "postgres"
HOST = "127.0.0.1"
#: What of the caller's environment initdb and the server get: enough to run, no credentials.
PASSED_ENVIRONMENT = ("PATH", "TMPDIR", "TZ")
#: How many last lines of a log an error quotes (the server logs no password: see above).
QUOTED_LINES = 5


class PostgreSqlUnavailable(PermanentError):
    """No PostgreSQL server binaries, no OS user to run them as, or the server did not start."""


def _version(bindir: Path) -> tuple[int, ...]:
    """Return the version a ``/usr/lib/postgresql/<version>/bin`` path names (``()`` if none)."""
    return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name))


def _complete(bindir: Path) -> bool:
    """Tell whether ``bindir`` holds every program this module runs."""
    return all(os.access(bindir / program, os.X_OK) for program in PROGRAMS)


def server_binaries() -> Path | None:
    """Return the directory of the installed server's ``initdb`` and ``postgres``, if any."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        try:
            answer = subprocess.run(  # noqa: S603 (a fixed argv, no shell)
                [pg_config, "--bindir"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            )
        except (OSError, subprocess.SubprocessError):
            pass
        else:
            candidates.append(Path(answer.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version, reverse=True)
    initdb = shutil.which("initdb")
    if initdb is not None:
        candidates.append(Path(initdb).parent)
    return next((bindir for bindir in candidates if _complete(bindir)), None)


class PostgreSqlServer:
    """One throwaway PostgreSQL server and its superuser; a context manager.

    Args:
        bindir: where ``initdb``, ``postgres`` and ``pg_isready`` are
            (default: :func:`server_binaries`).
        parent: where its temporary directory is made (default: the system's
            temporary directory; it must be reachable by the ``postgres`` OS
            user when running as root).
    """

    def __init__(self, *, bindir: Path | None = None, parent: Path | None = None) -> None:
        self.bindir = bindir
        self.parent = parent
        self.host = HOST
        self.port = 0
        self.superuser = SUPERUSER
        #: The superuser's password: random, registered for redaction, on no command line.
        self.password = SecretValue(secrets.token_urlsafe(24))
        #: The temporary directory (data, socket, log); ``None`` until started and once stopped.
        self.directory: Path | None = None
        self._server: ServerProcess | None = None

    def __repr__(self) -> str:
        return f"PostgreSqlServer(host={self.host!r}, port={self.port}, running={self.running})"

    @property
    def running(self) -> bool:
        """Whether the server was started and has not exited."""
        return self._server is not None and self._server.running

    @property
    def log_path(self) -> Path:
        """The server's log: every statement it ran (``log_statement=all``), its errors."""
        if self.directory is None:
            raise RuntimeError("the PostgreSQL server is not started")
        return self.directory / "postgresql.log"

    def url(self, database: str = "postgres") -> str:
        """Return ``postgresql://SUPERUSER:PASSWORD@127.0.0.1:PORT/DATABASE``."""
        return (
            f"postgresql://{self.superuser}:{self.password.text()}"
            f"@{self.host}:{self.port}/{database}"
        )

    def log_text(self) -> str:
        """Return the server's log so far (empty when not started)."""
        if self.directory is None:
            return ""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def start(self) -> Self:
        """Make a data directory, start the server, and return once it accepts connections.

        Raises:
            PostgreSqlUnavailable: no server binaries; running as root without
                a ``postgres`` OS user or ``setpriv``; initdb failed; or the
                server exited or did not answer within ``START_TIMEOUT`` (the
                message quotes the end of its log). Nothing is left behind.
        """
        if self.running:
            return self
        bindir = self.bindir or server_binaries()
        if bindir is None or not _complete(bindir):
            where = (
                str(self.bindir)
                if self.bindir is not None
                else "pg_config --bindir, /usr/lib/postgresql/*/bin or PATH"
            )
            raise PostgreSqlUnavailable(
                f"no PostgreSQL server binaries ({', '.join(PROGRAMS)}) in {where}: install "
                "the server (Debian: apt-get install postgresql)"
            )
        owner = _os_user()
        self.directory = Path(tempfile.mkdtemp(prefix="rotator-postgresql-", dir=self.parent))
        try:
            self._start(bindir, owner)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, bindir: Path, owner: pwd.struct_passwd | None) -> None:
        """Run initdb into the directory, then the server on a free port (as ``owner``, if any)."""
        assert self.directory is not None
        directory, data = self.directory, self.directory / "data"
        env = {k: os.environ[k] for k in PASSED_ENVIRONMENT if k in os.environ}
        env |= {"LC_ALL": "C", "HOME": str(directory)}
        password_file = directory / "superuser-password"
        password_file.touch(mode=0o600)
        as_user: list[str] = []
        if owner is not None:
            for path in (directory, password_file):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            as_user = _run_as(owner)
        password_file.write_text(self.password.text() + "\n")
        try:
            made = subprocess.run(  # noqa: S603 (a fixed argv, no shell)
                [
                    *as_user,
                    str(bindir / "initdb"),
                    f"--pgdata={data}",
                    f"--username={self.superuser}",
                    f"--pwfile={password_file}",
                    "--auth-local=scram-sha-256",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-sync",
                ],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=INITDB_TIMEOUT,
                env=env,
                cwd=directory,
                check=False,
            )
        finally:
            password_file.unlink(missing_ok=True)
        if made.returncode != 0:
            raise PostgreSqlUnavailable(
                f"initdb failed with status {made.returncode}: "
                + " | ".join((made.stderr or made.stdout).strip().splitlines()[-QUOTED_LINES:])
            )
        self.port = free_port()
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(directory),
            "password_encryption": "scram-sha-256",
            "log_statement": "all",
            # Who ran each statement: user@database/application_name (rotator's is "rotator").
            "log_line_prefix": "%m [%p] %q%u@%d/%a ",
            "logging_collector": "off",
            "log_destination": "stderr",
            "lc_messages": "C",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        server = ServerProcess("postgres", self.log_path, stop_signal=signal.SIGINT)
        self._server = server
        ready = [str(bindir / "pg_isready"), "--quiet", f"--host={self.host}"]
        try:
            server.start(
                [
                    *as_user,
                    str(bindir / "postgres"),
                    "-D",
                    str(data),
                    *(f"--{name}={value}" for name, value in settings.items()),
                ],
                ready=lambda: _accepts(ready, self.port, env),
                timeout=START_TIMEOUT,
                env=env,
                cwd=directory,
            )
        except ServerNotStarted as exc:
            # Its directory goes with it: the error quotes the log instead of naming it.
            tail = self.log_text().strip().splitlines()[-QUOTED_LINES:]
            raise PostgreSqlUnavailable(
                exc.reason + (": " + " | ".join(tail) if tail else "")
            ) from None

    def stop(self) -> None:
        """End every session and the server, and remove its directory; no-op if not started."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        directory, self.directory = self.directory, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _os_user() -> pwd.struct_passwd | None:
    """Return the ``postgres`` OS user when running as root (initdb refuses root), else None.

    Raises:
        PostgreSqlUnavailable: running as root, with no ``postgres`` OS user or no ``setpriv``.
    """
    if os.geteuid() != 0:
        return None
    try:
        owner = pwd.getpwnam(OS_USER)
    except KeyError:
        raise PostgreSqlUnavailable(
            f"running as root, which initdb and postgres refuse, and there is no {OS_USER!r} "
            "OS user to run them as (the postgresql package makes it)"
        ) from None
    if shutil.which("setpriv") is None:
        raise PostgreSqlUnavailable(
            f"running as root, which initdb and postgres refuse, and no setpriv (util-linux) "
            f"to run them as {OS_USER!r}"
        )
    return owner


def _run_as(owner: pwd.struct_passwd) -> list[str]:
    """Return the command prefix running a program as ``owner`` (setpriv execs it: one process)."""
    setpriv = shutil.which("setpriv") or "setpriv"
    return [
        setpriv,
        f"--reuid={owner.pw_uid}",
        f"--regid={owner.pw_gid}",
        "--init-groups",
        "--",
    ]


def _accepts(ready: Sequence[str], port: int, env: dict[str, str]) -> bool:
    """Tell whether the server on ``port`` accepts connections (``pg_isready`` says so)."""
    try:
        answer = subprocess.run(  # noqa: S603 (a fixed argv, no shell)
            [*ready, f"--port={port}", "--timeout=1"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
            env=env,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return answer.returncode == 0
