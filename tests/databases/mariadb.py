"""A throwaway MariaDB for the tests: its own data directory, a loopback port, the general log on.

Debian's ``mariadb-server`` binaries (``.ci/run`` installs them), run as an
unprivileged instance: ``mariadb-install-db`` into a fresh directory (under
a second), then ``mariadbd`` on a free port of 127.0.0.1. The anonymous
users a fresh directory holds are dropped (they would match a TCP login
before ``app@%``), and an ``admin`` account is made for the tests to act as.
Every statement goes to ``general.log``, which the canary tests read. The
server speaks TLS with a certificate of its own throwaway CA (``ca_file``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pymysql
import trustme

from providers.databases.mysql import native_password_hash
from rotator.adapters import SecretValue
from rotator.sandbox.core.process import ServerProcess, free_port

#: Seconds the server may take to answer.
START_TIMEOUT = 60.0


def binaries() -> tuple[str, str] | None:
    """Return the paths of ``mariadb-install-db`` and ``mariadbd``, or None if not installed."""
    install = shutil.which("mariadb-install-db")
    server = shutil.which("mariadbd") or (
        "/usr/sbin/mariadbd" if Path("/usr/sbin/mariadbd").exists() else None
    )
    return (install, server) if install and server else None


class MariaDb:
    """One MariaDB server for a test session, and an admin account on it."""

    def __init__(self) -> None:
        # Not under pytest's temporary folders: those are root's alone (mode 700), and the
        # server runs as the mysql user, which must reach its directory.
        self.directory = Path(tempfile.mkdtemp(prefix="rotator-mariadb-"))
        self.port = free_port()
        self.socket = self.directory / "mariadb.sock"
        self.general_log = self.directory / "general.log"
        self.admin_password = secrets.token_urlsafe(18)
        #: The CA of the server's certificate, which names ``localhost`` only (not 127.0.0.1):
        #: verify-full to 127.0.0.1 fails on the name, verify-ca does not look at it.
        self.ca = trustme.CA()
        self.ca_file = self.directory / "ca.pem"
        self._process = ServerProcess("mariadbd", self.directory / "mariadbd.log")

    def start(self) -> None:
        """Make the data directory, start the server, and set up its accounts."""
        found = binaries()
        if found is None:
            raise RuntimeError(
                "no mariadb-install-db and mariadbd (apt-get install mariadb-server)"
            )
        install, server = found
        data = self.directory / "data"
        as_user = ["--user=mysql"] if os.geteuid() == 0 else []
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        certificate = self.ca.issue_cert("localhost")
        certificate.cert_chain_pems[0].write_to_path(str(self.directory / "server.pem"))
        certificate.private_key_pem.write_to_path(str(self.directory / "server.key"))
        if os.geteuid() == 0:
            for path in (
                self.directory,
                self.directory / "server.pem",
                self.directory / "server.key",
            ):
                shutil.chown(path, "mysql", "mysql")
        subprocess.run(
            [install, *as_user, f"--datadir={data}", "--auth-root-authentication-method=normal"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        self._process.start(
            [
                server,
                "--no-defaults",
                *as_user,
                f"--datadir={data}",
                f"--socket={self.socket}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--pid-file={self.directory / 'mariadb.pid'}",
                f"--ssl-cert={self.directory / 'server.pem'}",
                f"--ssl-key={self.directory / 'server.key'}",
                "--general-log=1",
                f"--general-log-file={self.general_log}",
            ],
            ready=self._answers,
            timeout=START_TIMEOUT,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            cwd=self.directory,
        )
        with self._as_root() as conn, conn.cursor() as cur:
            cur.execute("SELECT user, host FROM mysql.user WHERE user = ''")
            for _, host in cur.fetchall():
                cur.execute("DROP USER ''@%s", (host,))
            # As a hash: the general log is on, and the tests grep it for passwords.
            hashed = native_password_hash(SecretValue(self.admin_password))
            cur.execute("CREATE USER 'admin'@'%%' IDENTIFIED BY PASSWORD %s", (hashed,))
            cur.execute("GRANT ALL ON *.* TO 'admin'@'%' WITH GRANT OPTION")

    def _as_root(self) -> pymysql.connections.Connection[pymysql.cursors.Cursor]:
        """Connect as root over the socket (only this process's user can reach it)."""
        return pymysql.connect(unix_socket=str(self.socket), user="root", autocommit=True)

    def _answers(self) -> bool:
        """Tell whether the server takes connections yet."""
        try:
            self._as_root().close()
        except pymysql.err.OperationalError:
            return False
        return True

    def connect(
        self, user: str, password: str
    ) -> pymysql.connections.Connection[pymysql.cursors.Cursor]:
        """Log in over TCP, as a consumer would (raises pymysql's error if refused)."""
        return pymysql.connect(
            host="127.0.0.1", port=self.port, user=user, password=password, autocommit=True
        )

    def admin(self) -> pymysql.connections.Connection[pymysql.cursors.Cursor]:
        """Log in as the tests' admin account over TCP."""
        return self.connect("admin", self.admin_password)

    def admin_url(self) -> str:
        """Return the admin's credential as a URL, as an operator would give it to rotator."""
        return f"mysql://admin:{self.admin_password}@127.0.0.1:{self.port}/"

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        self._process.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
