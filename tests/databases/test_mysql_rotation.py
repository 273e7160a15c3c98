"""``mysql-password`` rotations through the engine, against the real MariaDB.

The store is Secrets Manager (in-process moto) holding the AWS RDS JSON
value; the clock is injected, so grace deadlines pass without waiting. The
MariaDB fixture's ``admin`` (every privilege, WITH GRANT OPTION) is the
admin here, unless a test gives a weaker one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from providers.databases.mysql import native_password_hash
from rotator.adapters import SecretValue
from rotator.engine.report import Result
from rotator.engine.runner import Engine
from rotator.journal.journal import Journal
from rotator.lifecycle import State
from rotator.policy.loader import load_policies
from tests.conftest import FakeClock
from tests.databases.mariadb import MariaDb
from tests.databases.mysql_users import Users


@pytest.fixture
def users(mariadb: MariaDb, monkeypatch: pytest.MonkeyPatch) -> Iterator[Users]:
    """Fresh users on the test server, and the admin credential in APP_DB_ADMIN."""
    monkeypatch.setenv("APP_DB_ADMIN", mariadb.admin_url())
    with Users(mariadb) as made:
        yield made


def _policy(users: Users, strategy: str, **extra: str) -> str:
    fields = "".join(f"\n      {k}: {v}" for k, v in extra.items())
    return f"""
secrets:
  - name: app/db
    store: {{provider: aws-secretsmanager, secret_id: app/db}}
    issuer:
      kind: mysql-password
      strategy: {strategy}
      host: {users.host}
      port: {users.port}
      database: {users.database}
      username: {users.user}
      admin: {{env: APP_DB_ADMIN}}{fields}
    schedule: {{every: 30d}}
    grace: 1h
"""


def _engine(tmp_path: Path, body: str, clock: FakeClock) -> Engine:
    path = tmp_path / "policies.yaml"
    path.write_text(body)
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}", clock)
    return Engine(load_policies(path), journal, clock=clock, sleep=clock.sleep)


def _current(sm: Any) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(
        sm.get_secret_value(SecretId="app/db", VersionStage="AWSCURRENT")["SecretString"]
    )
    return value


def test_single_user_sets_a_new_password_and_promotes_it(
    aws_sm: Any, users: Users, tmp_path: Path, clock: FakeClock
) -> None:
    """The one user gets the new password; the old no longer logs in; the value is RDS-shaped."""
    old = users.create(users.user)
    aws_sm.create_secret(Name="app/db", SecretString=json.dumps(users.value(users.user, old)))
    engine = _engine(tmp_path, _policy(users, "single-user"), clock)

    [outcome] = engine.rotate("app/db").outcomes

    assert outcome.result is Result.OK and outcome.state is State.GRACE
    new = _current(aws_sm)
    assert set(new) == {"engine", "host", "port", "username", "password", "dbname"}
    assert (new["engine"], new["port"], new["username"]) == ("mysql", users.port, users.user)
    assert users.reads_table(users.user, new["password"])
    assert not users.logs_in(users.user, old)
    clock.advance(timedelta(hours=1))
    assert [o.state for o in engine.run_once().outcomes] == [State.DONE]
    assert users.logs_in(users.user, new["password"])  # nothing to revoke with one user


def test_alternating_users_create_the_clone_then_take_turns(
    aws_sm: Any, users: Users, tmp_path: Path, clock: FakeClock
) -> None:
    """The clone is made with the original's grants; each grace end revokes the other user."""
    old = users.create(users.user)
    aws_sm.create_secret(Name="app/db", SecretString=json.dumps(users.value(users.user, old)))
    engine = _engine(tmp_path, _policy(users, "alternating-users"), clock)

    [first] = engine.rotate("app/db").outcomes
    assert first.result is Result.OK
    live = _current(aws_sm)
    assert live["username"] == users.clone
    assert users.reads_table(users.clone, live["password"])  # the original's table grant
    assert users.logs_in(users.user, old)  # still in its grace
    clock.advance(timedelta(hours=1))
    engine.run_once()
    assert not users.logs_in(users.user, old)  # revoked at the deadline
    assert users.logs_in(users.clone, live["password"])

    clock.advance(timedelta(days=30))
    engine.run_once()
    again = _current(aws_sm)
    assert again["username"] == users.user
    assert users.reads_table(users.user, again["password"])
    assert users.logs_in(users.clone, live["password"])  # in its grace now
    clock.advance(timedelta(hours=1))
    engine.run_once()
    assert not users.logs_in(users.clone, live["password"])


def test_the_clone_gets_no_copy_of_the_originals_password(
    aws_sm: Any, users: Users, tmp_path: Path, clock: FakeClock
) -> None:
    """SHOW GRANTS prints the original's hash in a GRANT line: the clone is not given it."""
    old = users.create(users.user)
    users.sql("GRANT PROCESS ON *.* TO %s@'%%'", users.user)  # a global grant: the hash's line
    aws_sm.create_secret(Name="app/db", SecretString=json.dumps(users.value(users.user, old)))
    engine = _engine(tmp_path, _policy(users, "alternating-users"), clock)

    [outcome] = engine.rotate("app/db").outcomes

    assert outcome.result is Result.OK
    assert not users.logs_in(users.clone, old)
    assert users.logs_in(users.clone, _current(aws_sm)["password"])
    [(grants,)] = users.sql("SHOW GRANTS FOR %s@'%%'", users.clone)[:1]
    assert "PROCESS" in grants


def test_the_clone_gets_the_originals_role_and_default_role(
    aws_sm: Any, users: Users, tmp_path: Path, clock: FakeClock
) -> None:
    """A role granted to the original (and set as its default) is granted to the clone too."""
    old = users.create(users.user)
    role = f"{users.user}_reader"
    users.sql(f"CREATE ROLE `{role}`")
    try:
        users.sql(f"GRANT SELECT ON `{users.database}`.t TO `{role}`")
        users.sql(f"REVOKE SELECT ON `{users.database}`.t FROM %s@'%%'", users.user)
        users.sql(f"GRANT `{role}` TO %s@'%%'", users.user)
        users.sql(f"SET DEFAULT ROLE `{role}` FOR %s@'%%'", users.user)
        aws_sm.create_secret(Name="app/db", SecretString=json.dumps(users.value(users.user, old)))
        engine = _engine(tmp_path, _policy(users, "alternating-users"), clock)

        [outcome] = engine.rotate("app/db").outcomes

        assert outcome.result is Result.OK
        assert users.reads_table(users.clone, _current(aws_sm)["password"])  # through the role
    finally:
        users.sql(f"DROP ROLE IF EXISTS `{role}`")


def test_revoke_by_lock_locks_and_the_next_rotation_unlocks(
    aws_sm: Any, users: Users, tmp_path: Path, clock: FakeClock
) -> None:
    """``revoke_by: lock`` locks the old user; its next turn sets a password and unlocks it."""
    old = users.create(users.user)
    aws_sm.create_secret(Name="app/db", SecretString=json.dumps(users.value(users.user, old)))
    engine = _engine(tmp_path, _policy(users, "alternating-users", revoke_by="lock"), clock)

    engine.rotate("app/db")
    clock.advance(timedelta(hours=1))
    engine.run_once()
    assert not users.logs_in(users.user, old)
    [(locked,)] = users.sql(
        "SELECT JSON_VALUE(priv, '$.account_locked') FROM mysql.global_priv"
        " WHERE user = %s AND host = '%%'",
        users.user,
    )
    assert locked == "1"

    clock.advance(timedelta(days=30))
    engine.run_once()
    again = _current(aws_sm)
    assert again["username"] == users.user
    assert users.reads_table(users.user, again["password"])


def test_a_failed_login_rolls_back_and_puts_the_old_password_back(
    aws_sm: Any, users: Users, tmp_path: Path, clock: FakeClock
) -> None:
    """Single user: when the login with the new password fails, the old one works again."""
    old = users.create(users.user)
    aws_sm.create_secret(Name="app/db", SecretString=json.dumps(users.value(users.user, old)))
    body = _policy(users, "single-user").replace(
        "    schedule:", '    verify: [{kind: exec, command: ["false"]}]\n    schedule:'
    )
    engine = _engine(tmp_path, body, clock)

    [outcome] = engine.rotate("app/db").outcomes

    assert outcome.state is State.ROLLED_BACK
    assert _current(aws_sm)["password"] == old
    assert users.logs_in(users.user, old)


def test_the_admin_credential_may_be_another_managed_secret(
    aws_sm: Any, users: Users, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``admin: {secret: NAME}`` reads the admin's JSON from that secret's store."""
    monkeypatch.delenv("APP_DB_ADMIN")
    old = users.create(users.user)
    aws_sm.create_secret(Name="app/db", SecretString=json.dumps(users.value(users.user, old)))
    aws_sm.create_secret(Name="mysql/admin", SecretString=json.dumps(users.admin_value()))
    body = _policy(users, "single-user").replace("{env: APP_DB_ADMIN}", "{secret: mysql/admin}")
    body += """
  - name: mysql/admin
    store: {provider: aws-secretsmanager, secret_id: mysql/admin}
    issuer: {kind: manual}
    schedule: {every: 90d}
    grace: 1d
"""
    engine = _engine(tmp_path, body, clock)
    [outcome] = engine.rotate("app/db").outcomes
    assert outcome.result is Result.OK
    assert users.logs_in(users.user, _current(aws_sm)["password"])


def test_check_names_each_missing_privilege(
    aws_sm: Any, users: Users, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An admin lacking CREATE USER, or a read it needs, is told each by name; nothing changes."""
    old = users.create(users.user)
    weak = users.create(f"{users.user}_weak")
    monkeypatch.setenv(
        "APP_DB_ADMIN", json.dumps({"username": f"{users.user}_weak", "password": weak})
    )
    aws_sm.create_secret(Name="app/db", SecretString=json.dumps(users.value(users.user, old)))
    engine = _engine(tmp_path, _policy(users, "alternating-users"), clock)

    [finding] = [f for f in engine.check(["app/db"]) if "mysql:" in f.check]
    assert "lacks: CREATE USER ON *.*; SELECT ON mysql.global_priv" in finding.detail

    users.sql("GRANT CREATE USER ON *.* TO %s@'%%'", f"{users.user}_weak")
    users.sql("GRANT SELECT ON mysql.global_priv TO %s@'%%'", f"{users.user}_weak")
    [finding] = [f for f in engine.check(["app/db"]) if "mysql:" in f.check]
    assert "lacks: SELECT ON mysql.* (to read the grants of" in finding.detail

    users.sql("GRANT SELECT ON mysql.* TO %s@'%%'", f"{users.user}_weak")
    [finding] = [f for f in engine.check(["app/db"]) if "mysql:" in f.check]
    table = f"SELECT ON `{users.database}`.`t` WITH GRANT OPTION"
    assert finding.detail.endswith(f"lacks: {table}")

    users.sql(
        f"GRANT SELECT ON `{users.database}`.t TO %s@'%%' WITH GRANT OPTION", f"{users.user}_weak"
    )
    [finding] = [f for f in engine.check(["app/db"]) if "mysql:" in f.check]
    assert "may set the passwords of" in finding.detail
    assert users.logs_in(users.user, old)
    assert users.sql("SELECT 1 FROM mysql.global_priv WHERE user = %s", users.clone) == []


def test_connection_errors_hold_no_password(
    aws_sm: Any, users: Users, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused admin login fails the rotation with a message naming no password."""
    old = users.create(users.user)
    monkeypatch.setenv(
        "APP_DB_ADMIN", json.dumps({"username": users.user, "password": "wrong-" + old})
    )
    aws_sm.create_secret(Name="app/db", SecretString=json.dumps(users.value(users.user, old)))
    engine = _engine(tmp_path, _policy(users, "single-user"), clock)
    [outcome] = engine.rotate("app/db").outcomes
    assert outcome.result is not Result.OK
    assert "refused the login of admin" in outcome.message
    assert old not in outcome.message


def test_no_password_reaches_the_general_log(
    aws_sm: Any, users: Users, mariadb: MariaDb, tmp_path: Path, clock: FakeClock
) -> None:
    """The canary: rotations of both strategies, and revokes, log hashes and never a password."""
    start = mariadb.general_log.stat().st_size
    old = users.create(users.user)
    aws_sm.create_secret(Name="app/db", SecretString=json.dumps(users.value(users.user, old)))
    passwords = []
    for strategy in ("single-user", "alternating-users", "alternating-users"):
        engine = _engine(tmp_path, _policy(users, strategy), clock)
        [outcome] = engine.rotate("app/db").outcomes
        assert outcome.result is Result.OK
        passwords.append(_current(aws_sm)["password"])
        clock.advance(timedelta(hours=1))
        engine.run_once()  # the grace ends: with two users, the other one is revoked
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
