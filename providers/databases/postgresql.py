"""The ``postgresql-password`` issuer: PostgreSQL roles, their passwords sent as SCRAM verifiers.

libpq computes a role's SCRAM-SHA-256 verifier on the client
(``PQencryptPasswordConn``, which psycopg 3 exposes as
``conn.pgconn.encrypt_password``); ``ALTER ROLE name PASSWORD '<verifier>'``
stores it as is, and a login with the plaintext then works. With
``log_statement`` on, the server's log shows the verifier, salted afresh
each time, and never the password.

The clone of an alternating pair is created ``IN ROLE`` the original, with
``SET role`` to it, so its sessions act as the original and the objects
either creates have one owner. The admin needs ``CREATEROLE``; from
PostgreSQL 16 on, also ``ADMIN OPTION`` on each role it alters (a role it
creates it holds so already): :meth:`PostgreSqlRoles.missing_privileges`
checks both, :meth:`PostgreSqlRoles.grants` renders them.

psycopg errors are translated here, by SQLSTATE, or for a failed connection
by a short list of libpq texts recognised (never copied: they quote role
and database names, and a statement's text may hold a verifier).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from providers.databases.accounts import Accounts
from providers.databases.issuer import DatabasePasswordIssuer
from providers.databases.policy import DatabasePasswordConfig, TlsMode
from providers.databases.value import Login
from rotator.adapters import SecretValue
from rotator.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    RotatorError,
    TransientError,
    VerificationError,
)

if TYPE_CHECKING:
    import psycopg

#: The only method sent: md5 verifiers are weak, and a plaintext would be logged.
METHOD = b"scram-sha-256"

#: The first libpq that takes ``sslrootcert=system`` (the system's CAs).
SYSTEM_ROOTS = 160000

#: The first server version whose CREATEROLE alters only roles held WITH ADMIN OPTION.
ADMIN_OPTION_RULES = 160000

#: libpq texts of a refused login (the server says no more, to anyone).
_REFUSED = (
    "password authentication failed",
    "no pg_hba.conf entry",
    "pg_hba.conf rejects",
    "is not permitted to log in",
    "authentication failed",
)
#: libpq texts of a TLS handshake that cannot succeed as configured (a connection
#: lost mid-way, "SSL SYSCALL error", is transient like any other).
_TLS_REFUSED = ("SSL was required", "does not support SSL", "certificate", "sslrootcert")
#: Seconds a statement may run, and wait for a lock: a role locked by another
#: session must not hold the rotation (and its lease) for ever.
STATEMENT_TIMEOUT = 60
LOCK_TIMEOUT = 30
#: SQLSTATEs that pass: a lost connection, a server shutting down or starting, no room.
_TRANSIENT_CLASSES = ("08", "53", "57", "40")


def scram_verifier(conn: psycopg.Connection[Any], role: str, password: SecretValue) -> str:
    """Return the SCRAM-SHA-256 verifier of ``password`` for ``role``, computed on the client."""
    verifier = conn.pgconn.encrypt_password(password.text().encode(), role.encode(), METHOD)
    return verifier.decode("ascii")


class PostgreSqlPasswordConfig(DatabasePasswordConfig):
    """Policy fields of the ``postgresql-password`` issuer."""

    engine: ClassVar[str] = "postgres"
    default_port: ClassVar[int] = 5432
    longest_name: ClassVar[int] = 63


class PostgreSqlRoles(Accounts):
    """A PostgreSQL server's roles, through psycopg, one connection per operation."""

    provider = "postgresql"

    def _connect(self, login: Login, database: str | None) -> psycopg.Connection[Any]:
        """Open an autocommit connection as ``login`` with the policy's TLS and timeout."""
        import psycopg

        config = self.config
        options: dict[str, Any] = {
            "host": config.host,
            "port": config.server_port,
            "dbname": database or config.database or "postgres",
            "user": login.username,
            "password": login.password.text(),
            "connect_timeout": max(1, int(config.connect_timeout.total_seconds())),
            "sslmode": config.tls_mode.value,
            "application_name": "rotator",
            "options": f"-c statement_timeout={STATEMENT_TIMEOUT}s -c lock_timeout={LOCK_TIMEOUT}s",
        }
        if config.tls.ca_file is not None:
            options["sslrootcert"] = str(config.tls.ca_file)
        elif config.tls_mode is TlsMode.VERIFY_FULL:
            if psycopg.pq.version() < SYSTEM_ROOTS:
                raise ConfigError(
                    f"tls mode verify-full without ca_file needs libpq 16 or later (this "
                    f"psycopg has {psycopg.pq.version()}): give tls.ca_file"
                )
            options["sslrootcert"] = "system"
        return psycopg.connect(autocommit=True, **options)

    @contextmanager
    def _as_admin(self, operation: str) -> Iterator[psycopg.Connection[Any]]:
        """Yield a connection as the admin; translate every psycopg error raised within."""
        admin = self.admin()
        with (
            self.translated(operation, who=f"admin {admin.username}", admin=True),
            self._connect(admin, admin.database) as conn,
        ):
            yield conn

    @staticmethod
    def driver_error() -> type[Exception]:
        """Return the base class of psycopg's errors."""
        import psycopg

        return psycopg.Error

    def translate(self, exc: Exception, operation: str, *, who: str, admin: bool) -> RotatorError:
        """Classify ``exc`` by its SQLSTATE, or a failed connection by libpq's text."""
        where = self.where
        kw: dict[str, Any] = {"provider": "postgresql-password", "operation": operation}
        state = getattr(exc, "sqlstate", None)
        if state is None:
            text = str(exc)
            if any(words in text for words in _REFUSED):
                if admin:
                    return PermissionDeniedError(f"{where} refused the login of {who}", **kw)
                return VerificationError(f"{where} refused the login of {who}", **kw)
            if "does not exist" in text and "database" in text:
                return NotFoundError(f"the database to connect to does not exist at {where}", **kw)
            if any(words in text for words in _TLS_REFUSED):
                return PermanentError(
                    f"TLS to {where} failed (mode {self.config.tls_mode.value})", **kw
                )
            return TransientError(f"could not reach {where}", **kw)
        if state == "42501":
            return PermissionDeniedError(f"{who} may not do this at {where}", **kw)
        if state == "42704":
            return NotFoundError(f"no such role at {where}", **kw)
        if state == "42710":
            return ConflictError(f"the role exists already at {where}", **kw)
        if state.startswith(_TRANSIENT_CLASSES):
            return TransientError(f"{where} failed the request (SQLSTATE {state})", **kw)
        return PermanentError(f"{where} refused the request (SQLSTATE {state})", **kw)

    def login_states(self, users: Sequence[str]) -> dict[str, bool | None]:
        """Read ``rolcanlogin`` of each user from ``pg_roles``."""
        with self._as_admin("login_states") as conn:
            rows = conn.execute(
                "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY(%s)", [list(users)]
            ).fetchall()
        found = {str(name): bool(can) for name, can in rows}
        return {user: found.get(user) for user in users}

    def set_password(self, user: str, password: SecretValue, *, unlock: bool) -> None:
        """``ALTER ROLE user [WITH LOGIN] PASSWORD '<verifier>'``."""
        from psycopg import sql

        statement = (
            "ALTER ROLE {} WITH LOGIN PASSWORD {}" if unlock else "ALTER ROLE {} PASSWORD {}"
        )
        with self._as_admin("set_password") as conn:
            conn.execute(
                sql.SQL(statement).format(
                    sql.Identifier(user), sql.Literal(scram_verifier(conn, user, password))
                )
            )

    def create_clone(self, clone: str, of: str, password: SecretValue) -> None:
        """Create ``clone`` in role ``of``, acting as it (``SET role``), in one transaction."""
        from psycopg import sql

        with self._as_admin("create_clone") as conn, conn.transaction():
            verifier = scram_verifier(conn, clone, password)
            conn.execute(
                sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {} IN ROLE {}").format(
                    sql.Identifier(clone), sql.Literal(verifier), sql.Identifier(of)
                )
            )
            conn.execute(
                sql.SQL("ALTER ROLE {} SET role = {}").format(
                    sql.Identifier(clone), sql.Literal(of)
                )
            )

    def lock(self, user: str) -> None:
        """``ALTER ROLE user NOLOGIN`` (no-op if the role is absent)."""
        from psycopg import sql

        with self._as_admin("lock") as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [user]).fetchone()
            if exists is not None:
                conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(user)))

    def try_login(self, login: Login) -> None:
        """Connect as ``login`` to the policy's database and ``SELECT 1``."""
        with (
            self.translated("try_login", who=login.username, admin=False),
            self._connect(login, self.config.database) as conn,
        ):
            conn.execute("SELECT 1")

    def missing_privileges(self, users: Sequence[str]) -> list[str]:
        """CREATEROLE; no superuser among ``users``; from PostgreSQL 16, ADMIN OPTION on each."""
        with self._as_admin("missing_privileges") as conn:
            row = conn.execute(
                "SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
            if row is None or row[0]:
                return []
            missing = [] if row[1] else ["CREATEROLE"]
            rules16 = conn.info.server_version >= ADMIN_OPTION_RULES
            for user in users:
                found = conn.execute(
                    "SELECT rolsuper, pg_has_role(current_user, oid, 'MEMBER WITH ADMIN OPTION')"
                    " FROM pg_roles WHERE rolname = %s",
                    [user],
                ).fetchone()
                if found is None:
                    continue  # the clone, created by the admin, which then holds ADMIN OPTION
                if found[0]:
                    missing.append(f"{user} is a superuser: only a superuser may alter it")
                elif rules16 and not found[1]:
                    missing.append(f"ADMIN OPTION on role {user}")
        return missing

    @classmethod
    def grants(cls, admin: str, users: Sequence[str]) -> list[str]:
        """CREATEROLE; and from PostgreSQL 16, ADMIN OPTION on each user, without its privileges.

        The ADMIN OPTION grant is wrapped in a ``DO`` block that runs it only
        on a server of version 16 or later (the syntax is 16's, and 15 needs
        no grant), and only for a role that exists (the clone rotator creates
        is its creator's to alter already), so the script runs unchanged on
        any version, before or after the first rotation.
        """
        from psycopg import sql

        def quoted(name: str) -> str:
            return sql.Identifier(name).as_string(None)

        statements = [f"ALTER ROLE {quoted(admin)} CREATEROLE;"]
        for user in users:
            grant = (
                f"GRANT {quoted(user)} TO {quoted(admin)} "
                "WITH ADMIN OPTION, INHERIT FALSE, SET FALSE"
            )
            exists = (
                f"EXISTS (SELECT FROM pg_roles WHERE rolname = {sql.Literal(user).as_string(None)})"
            )
            statements.append(
                "DO $rotator$ BEGIN IF current_setting('server_version_num')::int >= "
                f"{ADMIN_OPTION_RULES} AND {exists} "
                f"THEN EXECUTE {sql.Literal(grant).as_string(None)}; END IF; END $rotator$;"
            )
        return statements


class PostgreSqlPasswordIssuer(DatabasePasswordIssuer):
    """Sets PostgreSQL role passwords (one role, or two that alternate)."""

    kind = "postgresql-password"
    Config = PostgreSqlPasswordConfig
    accounts_class = PostgreSqlRoles
    requires = ("psycopg",)
    extra = "postgres"
