"""``mysql-password`` rotations through the engine, against the real MariaDB.

The rotations every engine performs alike are :class:`RotationSuite`'s
(tests/databases/rotation.py); MySQL's own cases follow: the grants and
roles copied to the clone without the original's password, revoke by
lock, the privileges check names, and the canary that reads the server's
general log. The MariaDB fixture's ``admin`` (every privilege, WITH GRANT
OPTION) is the admin here, unless a test gives a weaker one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pymysql
import pytest

from providers.databases.mysql import (
    MySqlPasswordConfig,
    MySqlPasswordIssuer,
    MySqlUsers,
    account,
    native_password_hash,
    staging_name,
)
from rotator.adapters import Runtime, SecretValue
from rotator.engine.report import Result
from rotator.engine.runner import Engine
from rotator.errors import TransientError
from rotator.lifecycle import State
from tests.conftest import FakeClock
from tests.databases.mariadb import MariaDb
from tests.databases.mysql_users import Users
from tests.databases.rotation import RotationSuite, current, engine, policy, stored


@pytest.fixture
def users(mariadb: MariaDb, monkeypatch: pytest.MonkeyPatch) -> Iterator[Users]:
    """Fresh users on the test server, and the admin credential in APP_DB_ADMIN."""
    monkeypatch.setenv("APP_DB_ADMIN", mariadb.admin_url())
    with Users(mariadb) as made:
        yield made


class TestMySqlRotation(RotationSuite):
    """What every engine does, done by ``mysql-password``."""

    kind = "mysql-password"
    engine = "mysql"

    @pytest.fixture
    def accounts(self, users: Users) -> Users:
        return users


def _alternating(
    aws_sm: Any, users: Users, tmp_path: Path, clock: FakeClock, **extra: str
) -> tuple[str, Engine]:
    """Create the original user and store its value; return its password and the engine."""
    old = stored(aws_sm, users)
    body = policy("mysql-password", users, "alternating-users", **extra)
    return old, engine(tmp_path, body, clock)


def test_the_clone_gets_no_copy_of_the_originals_password(
    aws_sm: Any, users: Users, tmp_path: Path, clock: FakeClock
) -> None:
    """SHOW GRANTS prints the original's hash in a GRANT line: the clone is not given it."""
    old, rotator = _alternating(aws_sm, users, tmp_path, clock)
    users.sql("GRANT PROCESS ON *.* TO %s@'%%'", users.user)  # a global grant: the hash's line

    [outcome] = rotator.rotate("app/db").outcomes

    assert outcome.result is Result.OK
    assert not users.logs_in(users.clone, old)
    assert users.logs_in(users.clone, current(aws_sm)["password"])
    [(first_grant,), *_] = users.sql("SHOW GRANTS FOR %s@'%%'", users.clone)
    assert first_grant.startswith("GRANT PROCESS ON *.*")


def test_the_clone_gets_the_originals_role_and_default_role(
    aws_sm: Any, users: Users, tmp_path: Path, clock: FakeClock
) -> None:
    """A role granted to the original (and set as its default) is granted to the clone too."""
    old, rotator = _alternating(aws_sm, users, tmp_path, clock)
    role = f"{users.user}_reader"
    users.sql(f"CREATE ROLE `{role}`")
    try:
        users.sql(f"GRANT SELECT ON `{users.database}`.t TO `{role}`")
        users.sql(f"GRANT `{role}` TO %s@'%%'", users.user)
        users.sql(f"SET DEFAULT ROLE `{role}` FOR %s@'%%'", users.user)
        assert users.reads_table(users.user, old)

        [outcome] = rotator.rotate("app/db").outcomes

        assert outcome.result is Result.OK
        assert users.reads_table(users.clone, current(aws_sm)["password"])  # through the role
    finally:
        users.sql(f"DROP ROLE IF EXISTS `{role}`")


def test_revoke_by_lock_locks_and_the_next_rotation_unlocks(
    aws_sm: Any, users: Users, tmp_path: Path, clock: FakeClock
) -> None:
    """``revoke_by: lock`` locks the old user; its next turn sets a password and unlocks it."""
    old, rotator = _alternating(aws_sm, users, tmp_path, clock, revoke_by="lock")

    rotator.rotate("app/db")
    clock.advance(timedelta(hours=1))
    rotator.run_once()
    assert not users.logs_in(users.user, old)
    [(locked,)] = users.sql(
        "SELECT JSON_VALUE(priv, '$.account_locked') FROM mysql.global_priv"
        " WHERE user = %s AND host = '%%'",
        users.user,
    )
    assert locked == "1"

    clock.advance(timedelta(days=30))
    rotator.run_once()
    again = current(aws_sm)
    assert again["username"] == users.user
    assert users.logs_in(users.user, again["password"])


def test_check_names_each_missing_privilege(
    aws_sm: Any, users: Users, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An admin lacking CREATE USER, or a read it needs, is told each by name; nothing changes."""
    old, rotator = _alternating(aws_sm, users, tmp_path, clock)
    users.grant_table(users.user)
    weak = f"{users.user}_weak"
    monkeypatch.setenv(
        "APP_DB_ADMIN", json.dumps({"username": weak, "password": users.create(weak)})
    )

    def finding() -> str:
        [found] = [f for f in rotator.check(["app/db"]) if "mysql:" in f.check]
        return found.detail

    assert "lacks: CREATE USER ON *.*; SELECT ON mysql.global_priv" in finding()
    users.sql("GRANT CREATE USER ON *.* TO %s@'%%'", weak)
    users.sql("GRANT SELECT ON mysql.global_priv TO %s@'%%'", weak)
    assert f"lacks: SELECT ON mysql.* (to read the grants of {users.user}" in finding()
    users.sql("GRANT SELECT ON mysql.* TO %s@'%%'", weak)
    database = f"`{users.database}`"
    assert finding().endswith(
        f"lacks: CREATE TEMPORARY TABLES ON {database}.* WITH GRANT OPTION; "
        f"SELECT ON {database}.`t` WITH GRANT OPTION"
    )
    users.sql(f"GRANT CREATE TEMPORARY TABLES ON {database}.* TO %s@'%%' WITH GRANT OPTION", weak)
    users.sql(f"GRANT SELECT ON {database}.t TO %s@'%%' WITH GRANT OPTION", weak)
    assert "may set the passwords of" in finding()
    assert users.logs_in(users.user, old)
    assert users.sql("SELECT 1 FROM mysql.global_priv WHERE user = %s", users.clone) == []


def _rendered_admin(users: Users, monkeypatch: pytest.MonkeyPatch) -> str:
    """Make the admin of APP_DB_ADMIN a user given what ``grants`` renders, and no more."""
    admin = f"{users.user}_admin"
    monkeypatch.setenv(
        "APP_DB_ADMIN", json.dumps({"username": admin, "password": users.create(admin)})
    )
    users.sql(f"REVOKE ALL PRIVILEGES, GRANT OPTION FROM {account(admin, '%')}")
    for statement in MySqlUsers.grants(admin, [users.user, users.clone]):
        if not statement.startswith("--"):
            users.sql(statement.removesuffix(";"))
    return admin


def test_the_rendered_grants_are_enough_to_rotate_and_revoke(
    aws_sm: Any, users: Users, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An admin given only what ``grants`` renders (and the original's grant) rotates and locks."""
    old, rotator = _alternating(aws_sm, users, tmp_path, clock, revoke_by="lock")
    users.grant_table(users.user)
    users.sql("ALTER USER %s@'%%' REQUIRE SSL", users.user)  # an account option, copied too
    admin = _rendered_admin(users, monkeypatch)
    for privilege, on in (("CREATE TEMPORARY TABLES", "*"), ("SELECT", "t")):
        users.sql(
            f"GRANT {privilege} ON `{users.database}`.{on} TO %s@'%%' WITH GRANT OPTION", admin
        )

    [finding] = [f for f in rotator.check(["app/db"]) if "mysql:" in f.check]
    assert "may set the passwords of" in finding.detail
    [outcome] = rotator.rotate("app/db").outcomes
    assert outcome.result is Result.OK
    assert users.reads_table(users.clone, current(aws_sm)["password"])
    [(created,)] = users.sql("SHOW CREATE USER %s@'%%'", users.clone)
    assert "REQUIRE SSL" in created
    clock.advance(timedelta(hours=1))
    rotator.run_once()
    assert not users.logs_in(users.user, old)  # locked by the least-privileged admin


def test_a_grant_the_admin_may_not_give_fails_the_clone_and_drops_it(
    aws_sm: Any, users: Users, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused a grant, the clone is dropped again, and the error names a refusal, not a login."""
    old, rotator = _alternating(aws_sm, users, tmp_path, clock)
    users.sql("GRANT PROCESS ON *.* TO %s@'%%'", users.user)
    admin = _rendered_admin(users, monkeypatch)
    users.sql(
        f"GRANT CREATE TEMPORARY TABLES ON `{users.database}`.* TO %s@'%%' WITH GRANT OPTION", admin
    )

    [finding] = [f for f in rotator.check(["app/db"]) if "mysql:" in f.check]
    assert finding.detail.endswith("lacks: PROCESS ON *.* WITH GRANT OPTION")
    [outcome] = rotator.rotate("app/db").outcomes

    assert outcome.state is State.ROLLED_BACK
    assert f"admin {admin} may not do this at" in outcome.message
    for user in (users.clone, staging_name(users.clone)):
        assert users.sql("SELECT 1 FROM mysql.global_priv WHERE user = %s", user) == []
    assert users.logs_in(users.user, old)


def _cut_at_grant(monkeypatch: pytest.MonkeyPatch, users: Users, nth: int) -> None:
    """Make the server drop rotator's connection just before its ``nth`` GRANT, once.

    The connection is killed from the tests' own admin session (``KILL``), so
    the statement and the clean-up after it meet a real lost connection, as
    when the network fails or the process dies mid-copy.
    """
    real = pymysql.cursors.Cursor.execute
    seen = 0

    def execute(cursor: pymysql.cursors.Cursor, query: str, args: object = None) -> int:
        nonlocal seen
        if cursor.connection is not users.conn and query.startswith("GRANT "):
            seen += 1
            if seen == nth:
                monkeypatch.setattr(pymysql.cursors.Cursor, "execute", real)
                users.sql(f"KILL {cursor.connection.thread_id()}")
        return real(cursor, query, args)

    monkeypatch.setattr(pymysql.cursors.Cursor, "execute", execute)


def test_a_clone_cut_off_mid_copy_never_goes_live_without_its_grants(
    aws_sm: Any, users: Users, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection lost between two grants: no clone holds some of them; the next try all."""
    old, rotator = _alternating(aws_sm, users, tmp_path, clock)
    users.grant_table(users.user)  # the second grant line, after CREATE TEMPORARY TABLES
    expected = _grants(users, users.user)
    assert len(expected) == 3  # USAGE (the hash's line), CREATE TEMPORARY TABLES, SELECT
    _cut_at_grant(monkeypatch, users, 2)

    rotator.rotate("app/db")  # the engine retries the cut-off write within the rotation

    assert _grants(users, users.clone) == expected
    assert current(aws_sm)["username"] == users.clone
    assert users.reads_table(users.clone, current(aws_sm)["password"])
    assert users.logs_in(users.user, old)
    # The staged account was renamed: nothing is left behind under another name.
    assert users.sql("SELECT user FROM mysql.global_priv WHERE user LIKE 'rotator%%'") == []


def _grants(users: Users, user: str) -> list[str]:
    """Return SHOW GRANTS FOR ``user``@``%``, the grantee written ``X`` and any hash ``*``."""
    rows = users.sql("SHOW GRANTS FOR %s@'%%'", user)
    lines = [str(line).replace(f"`{user}`@`%`", "X") for (line,) in rows]
    return [re.sub(r"PASSWORD '\*[0-9A-F]{40}'", "PASSWORD '*'", line) for line in lines]


def test_a_staged_clone_left_behind_is_dropped_and_built_again(
    users: Users, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A try whose clean-up could not run leaves only the staged name; the next try replaces it."""
    users.create(users.user)
    users.grant_table(users.user)
    expected = _grants(users, users.user)
    config = MySqlPasswordConfig.model_validate(
        {
            "host": users.host,
            "port": users.port,
            "username": users.user,
            "strategy": "alternating-users",
            "admin": {"env": "APP_DB_ADMIN"},
        }
    )
    runtime = Runtime(clock=clock, sleep=clock.sleep, read_current=lambda name: None)
    accounts = MySqlPasswordIssuer(config, runtime, "app/db").accounts()
    _cut_at_grant(monkeypatch, users, 2)
    with pytest.raises(TransientError):
        accounts.create_clone(users.clone, users.user, SecretValue("first-" + "x" * 20))

    staged = staging_name(users.clone)
    assert accounts.login_states([users.clone]) == {users.clone: None}
    assert len(_grants(users, staged)) == 2  # cut off before its second grant
    accounts.create_clone(users.clone, users.user, SecretValue("second-" + "y" * 20))
    assert _grants(users, users.clone) == expected
    assert users.logs_in(users.clone, "second-" + "y" * 20)
    assert users.sql("SELECT 1 FROM mysql.global_priv WHERE user = %s", staged) == []


def test_no_password_reaches_the_general_log(
    aws_sm: Any, users: Users, mariadb: MariaDb, tmp_path: Path, clock: FakeClock
) -> None:
    """The canary: rotations of both strategies, and revokes, log hashes and never a password."""
    start = mariadb.general_log.stat().st_size
    stored(aws_sm, users)
    passwords = []
    for strategy in ("single-user", "alternating-users", "alternating-users"):
        rotator = engine(tmp_path, policy("mysql-password", users, strategy), clock)
        [outcome] = rotator.rotate("app/db").outcomes
        assert outcome.result is Result.OK
        passwords.append(current(aws_sm)["password"])
        clock.advance(timedelta(hours=1))
        rotator.run_once()  # the grace ends: with two users, the other one is revoked
        clock.advance(timedelta(days=30))

    with mariadb.general_log.open("rb") as log:
        log.seek(start)
        logged = log.read().decode(errors="replace")
    for password in passwords:
        assert native_password_hash(SecretValue(password)) in logged
        hexed = password.encode().hex()
        for form in (password, hexed, hexed.upper()):
            assert form not in logged
    # The revokes' random passwords are known to nobody: every password clause is a hash.
    clauses = re.findall(r"IDENTIFIED BY (PASSWORD )?'", logged)
    assert len(clauses) >= 5 and all(clauses)
    assert mariadb.admin_password not in logged
