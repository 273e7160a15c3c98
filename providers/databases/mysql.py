"""The ``mysql-password`` issuer: MySQL 8 and MariaDB 10.5+ users, their passwords kept out of logs.

MariaDB writes ``ALTER USER ... IDENTIFIED BY 'plaintext'`` verbatim to its
general log (MySQL 8 rewrites it as ``<secret>``; MariaDB does not). For the
``mysql_native_password`` plugin a client can compute the stored hash
itself, ``'*' + HEX(SHA1(SHA1(password)))``, and send
``IDENTIFIED BY PASSWORD '<hash>'``: the log then holds only the hash, and a
login with the plaintext works. So on MariaDB only the hash is sent.

MySQL 8 has no ``IDENTIFIED BY PASSWORD``, and no hashed form of its
default plugin (``caching_sha2_password``) a client can compute portably;
there the password is sent as ``IDENTIFIED BY '<password>'`` (over the
policy's TLS), which MySQL 8 itself writes as ``<secret>`` to its general,
slow and binary logs. The server is told apart by ``SELECT VERSION()``,
which names MariaDB. Only the MariaDB side is tested here, against a real
server (tests/databases); the MySQL 8 statements differ in the password
clause and the table the account state is read from, nothing else.

The clone of an alternating pair is created with the original's hash form
under a staging name (:func:`staging_name`), given every grant ``SHOW
GRANTS FOR`` lists for the original, rewritten for it (:func:`grant_for`),
and only then renamed to the clone: a try cut off mid-copy leaves no clone
with some of the grants. Grants made to the original later are not copied.

The account state (locked or not) is read from ``mysql.global_priv`` on
MariaDB (the JSON ``account_locked``; its ``mysql.user`` view has no such
column) and from ``mysql.user`` on MySQL 8: one query for both users, no
statement text to parse.

PyMySQL errors are translated here, by error number, never by copying the
server's text: it can quote the statement, and a statement may hold a hash
or, on MySQL 8, the password.
"""

from __future__ import annotations

import hashlib
import re
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, model_validator

from providers.databases.accounts import Accounts
from providers.databases.issuer import DatabasePasswordIssuer
from providers.databases.policy import DatabasePasswordConfig, TlsMode
from providers.databases.value import Login
from providers.transport.failures import defuse
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
    from pymysql.connections import Connection
    from pymysql.cursors import Cursor

#: Seconds a statement may take before the connection is given up (a hung server must not
#: hold a rotation for ever; every statement sent here is a short catalogue change).
STATEMENT_TIMEOUT = 60

#: Error numbers of a refused login: bad password (1045), account locked (MariaDB 4151,
#: MySQL 3118).
_REFUSED = frozenset({1045, 3118, 4151})
#: Not allowed: to a database (1044), a table (1142), a column (1143), a routine (1370),
#: a privilege (1227), a role (1698: MariaDB's answer to granting a role without ADMIN OPTION).
_DENIED = frozenset({1044, 1142, 1143, 1370, 1227, 1698})
#: MariaDB's answer to a GRANT the admin may not give at the global level, once logged in.
_DENIED_GRANT = 1045
#: The server was not reached, went away, is shutting down, full, or busy with a lock.
_TRANSIENT = frozenset({2003, 2006, 2013, 2055, 1040, 1053, 1205, 1213})
#: PyMySQL's errors about TLS: the server offers none though the policy requires it.
_TLS_REQUIRED = 2026
#: ``Operation CREATE USER / ALTER USER failed``: the user exists (create) or not (alter).
_USER_OPERATION_FAILED = 1396
#: ``There is no such grant defined for user``: SHOW GRANTS FOR a user that does not exist.
_NO_SUCH_GRANT = 1141
#: ``Unknown database``.
_UNKNOWN_DATABASE = 1049


def native_password_hash(password: SecretValue) -> str:
    """Return the ``mysql_native_password`` hash of ``password`` (``*`` and 40 hex digits)."""
    once = hashlib.sha1(password.text().encode(), usedforsecurity=False).digest()
    return "*" + hashlib.sha1(once, usedforsecurity=False).hexdigest().upper()


def staging_name(clone: str) -> str:
    """Return the name ``clone`` is built under before it is renamed: ``rotator_new_`` and a digest.

    The same for every try at the same clone, so a try finds and drops what
    an earlier one left; another clone's differs. 32 characters, MySQL 8's
    longest user name.
    """
    return "rotator_new_" + hashlib.sha256(clone.encode()).hexdigest()[:20]


def _empty_unicode_error(exc: UnicodeError) -> None:
    """Empty an encoding error of the text it failed on, where it failed, and its chain."""
    if isinstance(exc, UnicodeEncodeError | UnicodeTranslateError):
        exc.object = ""
    elif isinstance(exc, UnicodeDecodeError):
        exc.object = b""
    if isinstance(exc, UnicodeEncodeError | UnicodeDecodeError | UnicodeTranslateError):
        exc.start = exc.end = 0
    defuse(exc, f"{type(exc).__name__} while connecting")


def quoted(name: str) -> str:
    """Return ``name`` as a backquoted identifier (a backquote in it doubled)."""
    return "`" + name.replace("`", "``") + "`"


def account(user: str, host: str) -> str:
    """Return ``user@host`` as MySQL writes an account: `user`@`host`."""
    return f"{quoted(user)}@{quoted(host)}"


#: One token of a statement SHOW GRANTS prints: a backquoted identifier, a quoted string
#: (either quote; a quote doubled or backslash-escaped within), a word, blanks, or one sign.
_TOKEN = re.compile(
    r"`(?:[^`]|``)*`|'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"|\w+|\s+|.", re.DOTALL
)
#: The words that introduce the grantee: GRANT ... TO, REVOKE ... FROM, SET DEFAULT ROLE ... FOR.
_GRANTEE_WORDS = frozenset({"TO", "FROM", "FOR"})
#: The words of the line that grants no privilege, only the account's options (MariaDB).
_GLOBAL_USAGE = ["GRANT", "USAGE", "ON", "*", ".", "*", "TO"]
#: The clauses that may follow an IDENTIFIED clause in SHOW GRANTS output (and end it).
_AFTER_IDENTIFIED = frozenset({"REQUIRE", "WITH"})


def _unquoted(token: str) -> str:
    """Return the name a backquoted or quoted token stands for (a bare word as it is)."""
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "`'\"":
        inner = token[1:-1]
        if token[0] == "`":
            return inner.replace("``", "`")
        return re.sub(r"\\(.)", r"\1", inner.replace(token[0] * 2, token[0]))
    return token


def grant_for(statement: str, of: str, clone: str, host: str) -> str | None:
    """Rewrite one line of ``SHOW GRANTS FOR of@host`` to give the same to ``clone@host``.

    The grantee ``of@host`` (after ``TO``, ``FROM`` or ``FOR``) becomes the
    clone's account, and an ``IDENTIFIED ...`` clause (MariaDB prints the
    original's password hash in one) is dropped: the clone keeps its own
    password. Every other token is kept as printed. ``GRANT USAGE ON *.*``
    grants nothing: it becomes ``ALTER USER`` with the account options it
    carries (``REQUIRE``, resource limits), or ``""`` (nothing to run) with
    none. ``None`` if the line names no grantee ``of@host``: it is not
    copied blindly.
    """
    tokens = _TOKEN.findall(statement)
    words = [i for i, token in enumerate(tokens) if not token.isspace()]
    for n, i in enumerate(words[:-3]):
        user, at, host_token = (tokens[k] for k in words[n + 1 : n + 4])
        if (
            tokens[i].upper() not in _GRANTEE_WORDS
            or at != "@"
            or _unquoted(user) != of
            or _unquoted(host_token) != host
        ):
            continue
        tail = tokens[words[n + 3] + 1 :]
        rest = words[n + 4 :]
        if rest and tokens[rest[0]].upper() == "IDENTIFIED":
            # Its second word (BY, VIA, WITH) belongs to it; it ends at REQUIRE or WITH.
            ends = [k for k in rest[2:] if tokens[k].upper() in _AFTER_IDENTIFIED]
            tail = [" ", *tokens[ends[0] :]] if ends else []
        head = [tokens[k].upper() for k in words[: n + 1]]
        said = [token.upper() for token in tail if not token.isspace()]
        if head == _GLOBAL_USAGE and "GRANT" not in said:
            # Only the account's options: ALTER USER sets them with CREATE USER alone,
            # where GRANT ... ON *.* would need the global GRANT OPTION.
            return "".join(["ALTER USER ", account(clone, host), *tail]) if said else ""
        return "".join([*tokens[: words[n + 1]], account(clone, host), *tail])
    return None


class MySqlPasswordConfig(DatabasePasswordConfig):
    """Policy fields of the ``mysql-password`` issuer."""

    engine: ClassVar[str] = "mysql"
    default_port: ClassVar[int] = 3306
    #: MySQL 8's limit (MariaDB takes 80): a policy valid on one works on both.
    longest_name: ClassVar[int] = 32

    #: The host part of each account, ``'app'@'<account_host>'`` (``%``: from anywhere).
    account_host: str = Field(default="%", min_length=1, max_length=255, pattern=r"^[\w.:%/-]+$")

    @model_validator(mode="after")
    def _tcp_only(self) -> MySqlPasswordConfig:
        if self.host.startswith("/"):
            raise ValueError(
                "host: rotator reaches MySQL and MariaDB over TCP only, not a socket directory"
            )
        return self


class MySqlUsers(Accounts):
    """A MySQL or MariaDB server's users, through PyMySQL, one connection per operation."""

    provider = "mysql"
    #: Whether the connection last opened was still logging in (see :meth:`translate`).
    _logging_in = False

    @property
    def _host(self) -> str:
        """Return the host part of the policy's accounts."""
        config = self.config
        return config.account_host if isinstance(config, MySqlPasswordConfig) else "%"

    def _tls(self) -> dict[str, Any]:
        """Return PyMySQL's TLS arguments for the policy's mode.

        PyMySQL (1.2 on) uses TLS when the server offers it and no option is
        given (``prefer``); given a context it requires TLS, and refuses a
        server that offers none.

        Raises:
            ConfigError: ``tls.ca_file`` cannot be read as certificates.
        """
        mode = self.config.tls_mode
        if mode is TlsMode.DISABLE:
            return {"ssl_disabled": True}
        if mode is TlsMode.PREFER:
            return {}
        ca_file = self.config.tls.ca_file
        try:
            context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"tls.ca_file {ca_file}: not a readable PEM bundle ({type(exc).__name__})"
            ) from None
        context.check_hostname = mode is TlsMode.VERIFY_FULL
        if mode is TlsMode.REQUIRE:
            context.verify_mode = ssl.CERT_NONE
        return {"ssl": context}

    def _connect(self, login: Login, database: str | None) -> Connection[Cursor]:
        """Open an autocommit connection as ``login`` with the policy's TLS and timeouts."""
        import pymysql

        config = self.config
        # A refused login and a refused GRANT share error 1045 (MariaDB): translate tells
        # them apart by whether the connection was still being opened.
        self._logging_in = True
        try:
            conn = pymysql.connect(
                host=config.host,
                port=config.server_port,
                user=login.username,
                password=login.password.text(),
                database=database,
                connect_timeout=max(1, int(config.connect_timeout.total_seconds())),
                read_timeout=STATEMENT_TIMEOUT,
                write_timeout=STATEMENT_TIMEOUT,
                autocommit=True,
                program_name="rotator",
                **self._tls(),
            )
        except UnicodeError as exc:
            # PyMySQL encodes the password as latin-1 before connecting; its error quotes the
            # whole password (``object``) and the character's place: emptied before it goes.
            _empty_unicode_error(exc)
            raise ConfigError(
                f"the password of {login.username} has a character PyMySQL cannot send "
                "(it sends passwords as latin-1); give it ASCII characters only"
            ) from None
        self._logging_in = False
        return conn

    @contextmanager
    def _as_admin(self, operation: str) -> Iterator[Cursor]:
        """Yield a cursor of a connection as the admin; translate every PyMySQL error within."""
        admin = self.admin()
        with (
            self.translated(operation, who=f"admin {admin.username}", admin=True),
            self._connect(admin, admin.database) as conn,
            conn.cursor() as cursor,
        ):
            yield cursor

    @staticmethod
    def driver_error() -> type[Exception]:
        """PyMySQL's errors."""
        import pymysql

        return pymysql.err.MySQLError

    def translate(self, exc: Exception, operation: str, *, who: str, admin: bool) -> RotatorError:
        """Classify ``exc`` by its error number; its text (which may quote SQL) is dropped."""
        where = self.where
        kw: dict[str, Any] = {"provider": "mysql-password", "operation": operation}
        number = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
        if number in _REFUSED and self._logging_in:
            if admin:
                return PermissionDeniedError(f"{where} refused the login of {who}", **kw)
            return VerificationError(f"{where} refused the login of {who}", **kw)
        if number in _DENIED or number == _DENIED_GRANT:
            return PermissionDeniedError(f"{who} may not do this at {where} (error {number})", **kw)
        if number == _USER_OPERATION_FAILED:
            if operation == "create_clone":
                return ConflictError(f"the user exists already at {where}", **kw)
            return NotFoundError(f"no such user at {where}", **kw)
        if number == _NO_SUCH_GRANT:
            return NotFoundError(f"no such user at {where}", **kw)
        if number == _UNKNOWN_DATABASE:
            return NotFoundError(f"the database to connect to does not exist at {where}", **kw)
        if number == _TLS_REQUIRED or isinstance(
            getattr(exc, "original_exception", None), ssl.SSLError
        ):
            return PermanentError(
                f"TLS to {where} failed (mode {self.config.tls_mode.value})", **kw
            )
        if number in _TRANSIENT or number == 0:
            return TransientError(f"could not reach {where} (error {number})", **kw)
        return PermanentError(f"{where} refused the request (error {number})", **kw)

    @staticmethod
    def _is_mariadb(cursor: Cursor) -> bool:
        """Tell whether the server is MariaDB (else MySQL), from what ``VERSION()`` says."""
        cursor.execute("SELECT VERSION()")
        row = cursor.fetchone()
        return row is not None and "mariadb" in str(row[0]).lower()

    def _password_clause(self, cursor: Cursor, password: SecretValue) -> tuple[str, str]:
        """Return the clause setting ``password`` and its one parameter, for this server.

        MariaDB: its native hash (it would log a plaintext). MySQL 8: the
        plaintext, which it writes to its logs as ``<secret>``.
        """
        if self._is_mariadb(cursor):
            return "IDENTIFIED BY PASSWORD %s", native_password_hash(password)
        return "IDENTIFIED BY %s", password.text()

    def _states(self, cursor: Cursor, users: Sequence[str]) -> dict[str, bool | None]:
        """Read whether each user may log in, from the table the server keeps it in."""
        marks = ", ".join(["%s"] * len(users))
        if self._is_mariadb(cursor):
            locked, table = "JSON_VALUE(priv, '$.account_locked') IN ('1', 'true')", "global_priv"
        else:
            locked, table = "account_locked = 'Y'", "user"
        # Only constant names and placeholders are spliced in; the values are parameters.
        query = f"SELECT user, {locked} FROM mysql.{table} WHERE host = %s AND user IN ({marks})"  # noqa: S608
        cursor.execute(query, (self._host, *users))
        found = {str(user): not is_locked for user, is_locked in cursor.fetchall()}
        return {user: found.get(user) for user in users}

    def login_states(self, users: Sequence[str]) -> dict[str, bool | None]:
        """Read each user's ``account_locked`` (``mysql.global_priv`` or ``mysql.user``)."""
        with self._as_admin("login_states") as cursor:
            return self._states(cursor, users)

    def set_password(self, user: str, password: SecretValue, *, unlock: bool) -> None:
        """``ALTER USER user IDENTIFIED BY [PASSWORD] ... [ACCOUNT UNLOCK]``."""
        with self._as_admin("set_password") as cursor:
            clause, secret = self._password_clause(cursor, password)
            if unlock:
                clause += " ACCOUNT UNLOCK"
            cursor.execute(f"ALTER USER %s@%s {clause}", (user, self._host, secret))

    def create_clone(self, clone: str, of: str, password: SecretValue) -> None:
        """Create ``clone`` with ``password`` and each grant ``of`` holds, all at once.

        MySQL commits each statement on its own, and a connection lost
        mid-copy cannot drop what it made: so the account is built under
        :func:`staging_name` (a leftover of an earlier try dropped first),
        given every grant, and only then renamed to ``clone`` (``RENAME
        USER`` is one statement and carries the privileges). No account by
        the clone's name ever holds some of the grants: the next try either
        finds no clone and builds it again, or finds it whole.
        """
        import pymysql

        host = self._host
        staged = staging_name(clone)
        with self._as_admin("create_clone") as cursor:
            cursor.execute("SHOW GRANTS FOR %s@%s", (of, host))
            statements = [grant_for(str(row[0]), of, staged, host) for row in cursor.fetchall()]
            if None in statements:
                raise PermanentError(
                    f"a grant of {of} could not be read to copy it to {clone}",
                    provider="mysql-password",
                    operation="create_clone",
                )
            clause, secret = self._password_clause(cursor, password)
            cursor.execute("DROP USER IF EXISTS %s@%s", (staged, host))
            cursor.execute(f"CREATE USER %s@%s {clause}", (staged, host, secret))
            try:
                for statement in statements:
                    if statement:  # None was refused above; "" has nothing to run
                        cursor.execute(statement)
                cursor.execute("RENAME USER %s@%s TO %s@%s", (staged, host, clone, host))
            except pymysql.err.MySQLError:
                self._drop(cursor, staged)
                raise

    def _drop(self, cursor: Cursor, user: str) -> None:
        """Drop ``user`` if the connection still allows (the error being raised matters more).

        A staged account left behind is harmless: it is not the clone, and the
        next :meth:`create_clone` drops it first.
        """
        import pymysql

        with suppress(pymysql.err.MySQLError):
            cursor.execute("DROP USER IF EXISTS %s@%s", (user, self._host))

    def lock(self, user: str) -> None:
        """``ALTER USER IF EXISTS user ACCOUNT LOCK``."""
        with self._as_admin("lock") as cursor:
            cursor.execute("ALTER USER IF EXISTS %s@%s ACCOUNT LOCK", (user, self._host))

    def try_login(self, login: Login) -> None:
        """Connect as ``login`` to the policy's database and ``SELECT 1``."""
        with (
            self.translated("try_login", who=login.username, admin=False),
            self._connect(login, self.config.database) as conn,
            conn.cursor() as cursor,
        ):
            cursor.execute("SELECT 1")

    def missing_privileges(self, users: Sequence[str]) -> list[str]:
        """CREATE USER; SELECT on the account table; for a clone to create, the original's grants.

        The admin's own privileges are read from ``information_schema`` as
        granted to its account (privileges it holds through a role are not
        counted). Routine and proxy grants of the original are not checked
        ahead: a grant the admin may not pass on fails the clone's creation.
        """
        import pymysql

        with self._as_admin("missing_privileges") as cursor:
            table = "mysql.global_priv" if self._is_mariadb(cursor) else "mysql.user"
            cursor.execute("SELECT CURRENT_USER()")
            row = cursor.fetchone()
            user, _, host = str(row[0] if row else "").rpartition("@")
            held = _privileges(cursor, user, host)
            missing = [] if "CREATE USER" in held.get((), {}) else ["CREATE USER ON *.*"]
            try:
                states = self._states(cursor, users)
            except pymysql.err.MySQLError as exc:
                if exc.args[0] not in _DENIED:
                    raise
                return [*missing, f"SELECT ON {table} (to read whether a user is locked)"]
            original, *clone = users
            if clone and states[clone[0]] is None and states[original] is not None:
                missing += self._missing_to_copy(cursor, original, held)
        return missing

    def _missing_to_copy(self, cursor: Cursor, of: str, held: Privileges) -> list[str]:
        """Name what the admin lacks to give ``of``'s privileges to a new user."""
        import pymysql

        try:
            cursor.execute("SHOW GRANTS FOR %s@%s", (of, self._host))
        except pymysql.err.MySQLError as exc:
            if exc.args[0] not in _DENIED:
                raise
            return [f"SELECT ON mysql.* (to read the grants of {of} with SHOW GRANTS)"]
        missing = []
        for level, privileges in _privileges(cursor, of, self._host).items():
            # Passed on only when held WITH GRANT OPTION at its level or a wider one.
            wider = [level[:n] for n in range(len(level) + 1)]
            for privilege in sorted(set(privileges) - {"USAGE"}):
                if not any(held.get(scope, {}).get(privilege) for scope in wider):
                    missing.append(f"{_on(privilege, level)} WITH GRANT OPTION")
        return missing

    @classmethod
    def grants(cls, admin: str, users: Sequence[str]) -> list[str]:
        """CREATE USER; SELECT on the account table; with a clone, SELECT on mysql.* and more."""
        who = account(admin, "%")
        statements = [
            f"GRANT CREATE USER ON *.* TO {who};",
            "-- To read whether a user is locked: on MariaDB,",
            f"GRANT SELECT ON mysql.global_priv TO {who};",
            "-- on MySQL 8 instead:",
            f"-- GRANT SELECT ON mysql.user TO {who};",
        ]
        if len(users) > 1:
            statements += [
                f"-- To copy the grants of {users[0]} to {users[1]} (SHOW GRANTS FOR):",
                f"GRANT SELECT ON mysql.* TO {who};",
                f"-- and each privilege SHOW GRANTS FOR {users[0]} lists, WITH GRANT OPTION.",
            ]
        return statements


#: Privileges by level: () global, (db,), (db, table), (db, table, column); each privilege
#: maps to whether it is held WITH GRANT OPTION.
Privileges = dict[tuple[str, ...], dict[str, bool]]


def _privileges(cursor: Cursor, user: str, host: str) -> Privileges:
    """Read the privileges granted to ``user@host`` from ``information_schema``, by level.

    Another account's rows are visible only with SELECT on ``mysql.*``; one's own always.
    """
    grantee = f"'{user}'@'{host}'"  # as information_schema writes it
    found: Privileges = {}
    for columns, view in (
        ("", "USER_PRIVILEGES"),
        ("table_schema, ", "SCHEMA_PRIVILEGES"),
        ("table_schema, table_name, ", "TABLE_PRIVILEGES"),
        ("table_schema, table_name, column_name, ", "COLUMN_PRIVILEGES"),
    ):
        cursor.execute(
            f"SELECT {columns}privilege_type, is_grantable = 'YES'"  # noqa: S608 (constant names)
            f" FROM information_schema.{view} WHERE grantee = %s",
            (grantee,),
        )
        for *level, privilege, grantable in cursor.fetchall():
            found.setdefault(tuple(map(str, level)), {})[str(privilege)] = bool(grantable)
    return found


def _on(privilege: str, level: tuple[str, ...]) -> str:
    """Write a privilege at its level as GRANT does: ``SELECT (`n`) ON `db`.`t```."""
    if len(level) == 3:
        return f"{privilege} ({quoted(level[2])}) ON {quoted(level[0])}.{quoted(level[1])}"
    if len(level) == 2:
        return f"{privilege} ON {quoted(level[0])}.{quoted(level[1])}"
    if len(level) == 1:
        return f"{privilege} ON {quoted(level[0])}.*"
    return f"{privilege} ON *.*"


class MySqlPasswordIssuer(DatabasePasswordIssuer):
    """Sets MySQL or MariaDB user passwords (one user, or two that alternate)."""

    kind = "mysql-password"
    Config = MySqlPasswordConfig
    accounts_class = MySqlUsers
    requires = ("PyMySQL",)
    extra = "mysql"
