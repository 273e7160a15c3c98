"""Throwaway roles on the test PostgreSQL, and the ways a test looks at them from outside.

The test role (``ROTATOR_TEST_POSTGRES_URL``; .ci/run gives it CREATEROLE)
is the admin the issuer acts as. Each :class:`Roles` makes its roles under
a fresh prefix and drops them, and any table it made, when the block ends.
"""

from __future__ import annotations

import contextlib
import secrets
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
import pytest
from psycopg import sql

from tests.conftest import postgres_url


def admin_url() -> str:
    """Return the test server's URL, as the admin (skipped without one, failed under CI)."""
    url = postgres_url()
    if url is None:
        pytest.skip("no PostgreSQL (set ROTATOR_TEST_POSTGRES_URL)")
    return url


class Roles:
    """Roles made for one test: ``user`` and its ``clone``, and any other asked for."""

    def __init__(self, url: str) -> None:
        self.url = url
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 5432
        self.database = parts.path.lstrip("/")
        self.admin = unquote(parts.username or "")
        self.admin_password = unquote(parts.password or "")
        self.user = f"app_{secrets.token_hex(4)}"
        self.clone = f"{self.user}_clone"
        self.table = f"t_{self.user}"
        self.made: list[str] = []
        self.conn = psycopg.connect(url, autocommit=True)

    def __enter__(self) -> Roles:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(self.table)))
        for role in (self.clone, *reversed(self.made)):
            # Best effort: a session of the role may still be closing, and the test
            # role may signal only its own (DROP ROLE does not need them gone).
            with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
                self.conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                    [role],
                )
            self.conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        self.conn.close()

    def create(self, role: str) -> str:
        """Create ``role`` with LOGIN and a random password; return the password.

        Sent as its SCRAM verifier: a server that logs every statement (the
        canary tests read its log) never shows the password.
        """
        password = "old-" + secrets.token_hex(12)
        verifier = self.conn.pgconn.encrypt_password(
            password.encode(), role.encode(), b"scram-sha-256"
        )
        self.conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(verifier.decode("ascii"))
            )
        )
        self.made.append(role)
        return password

    def grant_table(self, role: str) -> None:
        """Make a table only ``role`` (and its members) may read."""
        self.conn.execute(
            sql.SQL("CREATE TABLE {} (n int); INSERT INTO {} VALUES (42)").format(
                sql.Identifier(self.table), sql.Identifier(self.table)
            )
        )
        self.conn.execute(
            sql.SQL("GRANT SELECT ON {} TO {}").format(
                sql.Identifier(self.table), sql.Identifier(role)
            )
        )

    def _connect(self, role: str, password: str) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            dbname=self.database,
            user=role,
            password=password,
            connect_timeout=5,
        )

    def logs_in(self, role: str, password: str) -> bool:
        """Tell whether ``role`` logs in with ``password`` on a new connection."""
        try:
            self._connect(role, password).close()
        except psycopg.OperationalError:
            return False
        return True

    def existing(self) -> set[str]:
        """Return the names of the server's roles that begin with ``user`` (it, its clone...)."""
        rows = self.conn.execute(
            "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", [self.user]
        )
        return {name for (name,) in rows}

    def reads_table(self, role: str, password: str) -> bool:
        """Tell whether ``role`` reads the table :meth:`grant_table` made."""
        with self._connect(role, password) as conn:
            row = conn.execute(sql.SQL("SELECT n FROM {}").format(sql.Identifier(self.table)))
            return row.fetchone() == (42,)

    def value(self, role: str, password: str) -> dict[str, Any]:
        """Return the RDS-shaped value of ``role`` and ``password``."""
        return {
            "engine": "postgres",
            "host": self.host,
            "port": self.port,
            "username": role,
            "password": password,
            "dbname": self.database,
        }

    def admin_value(self) -> dict[str, Any]:
        """Return the admin's credential in the RDS shape."""
        return self.value(self.admin, self.admin_password)
