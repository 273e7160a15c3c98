"""Throwaway users on the test MariaDB, and the ways a test looks at them from outside.

The MariaDB fixture's ``admin`` (every privilege, WITH GRANT OPTION) is the
admin the issuer acts as, unless a test gives a weaker one. Each
:class:`Users` makes its users under a fresh prefix, and a database with
one table that only a user granted it may read, and drops them all when
the block ends. Every password is set as its hash, so the general log
holds no plaintext the tests did not mean to send.
"""

from __future__ import annotations

import secrets
from types import TracebackType
from typing import Any

import pymysql

from providers.databases.mysql import native_password_hash
from rotator.adapters import SecretValue
from tests.databases.mariadb import MariaDb


class Users:
    """Users made for one test: ``user`` and its ``clone``, and any other asked for."""

    def __init__(self, server: MariaDb) -> None:
        self.server = server
        self.host = "127.0.0.1"
        self.port = server.port
        self.user = f"app_{secrets.token_hex(4)}"
        self.clone = f"{self.user}_clone"
        self.database = f"db_{self.user}"
        self.made: list[str] = []
        self.conn = server.admin()

    def __enter__(self) -> Users:
        self.sql(f"CREATE DATABASE `{self.database}`")
        self.sql(f"CREATE TABLE `{self.database}`.t (n int)")
        self.sql(f"INSERT INTO `{self.database}`.t VALUES (42)")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.sql(f"DROP DATABASE IF EXISTS `{self.database}`")
        for user in (self.clone, *reversed(self.made)):
            self.sql("DROP USER IF EXISTS %s@'%%'", user)
        self.conn.close()

    def sql(self, statement: str, *args: str) -> list[tuple[Any, ...]]:
        """Run one statement as the admin; return its rows."""
        with self.conn.cursor() as cur:
            cur.execute(statement, args or None)
            return list(cur.fetchall())

    def create(self, user: str) -> str:
        """Create ``user``@``%`` with a random password (sent as its hash); return the password.

        The user may use the database (CREATE TEMPORARY TABLES: a consumer
        connects to it) but not read its table, until :meth:`grant_table`.
        """
        password = "old-" + secrets.token_hex(12)
        hashed = native_password_hash(SecretValue(password))
        self.sql("CREATE USER %s@'%%' IDENTIFIED BY PASSWORD %s", user, hashed)
        self.sql(f"GRANT CREATE TEMPORARY TABLES ON `{self.database}`.* TO %s@'%%'", user)
        self.made.append(user)
        return password

    def grant_table(self, user: str) -> None:
        """Let ``user`` read the database's one table (a grant on that table alone)."""
        self.sql(f"GRANT SELECT ON `{self.database}`.t TO %s@'%%'", user)

    def logs_in(self, user: str, password: str) -> bool:
        """Tell whether ``user`` logs in with ``password`` on a new connection."""
        try:
            self.server.connect(user, password).close()
        except pymysql.err.OperationalError:
            return False
        return True

    def existing(self) -> set[str]:
        """Return the names of the server's users that begin with ``user`` (it, its clone...)."""
        rows = self.sql(
            "SELECT user FROM mysql.user WHERE LEFT(user, CHAR_LENGTH(%s)) = %s",
            self.user,
            self.user,
        )
        return {str(name) for (name,) in rows}

    def reads_table(self, user: str, password: str) -> bool:
        """Tell whether ``user`` reads the database's table (False when refused)."""
        with self.server.connect(user, password) as conn, conn.cursor() as cur:
            try:
                cur.execute(f"SELECT n FROM `{self.database}`.t")
            except pymysql.err.MySQLError:
                return False
            return cur.fetchone() == (42,)

    def value(self, user: str, password: str) -> dict[str, Any]:
        """Return the RDS-shaped value of ``user`` and ``password``."""
        return {
            "engine": "mysql",
            "host": self.host,
            "port": self.port,
            "username": user,
            "password": password,
            "dbname": self.database,
        }

    def admin_value(self) -> dict[str, Any]:
        """Return the admin's credential in the RDS shape."""
        return self.value("admin", self.server.admin_password)
