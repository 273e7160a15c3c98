"""``postgresql-password`` rotations through the engine, against the real PostgreSQL.

The rotations every engine performs alike are :class:`RotationSuite`'s
(tests/databases/rotation.py); PostgreSQL's own checks follow. The test
role of .ci/run may create roles: it is the admin here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rotator.cli.main import cli
from rotator.engine.preflight import Verdict
from rotator.engine.report import Result
from rotator.errors import PolicyError
from rotator.lifecycle import State
from rotator.policy.loader import load_policies
from tests.conftest import FakeClock
from tests.databases.postgres import Roles, admin_url
from tests.databases.rotation import RotationSuite, current, engine, policy, stored


@pytest.fixture
def roles(monkeypatch: pytest.MonkeyPatch) -> Iterator[Roles]:
    """Fresh roles on the test server, and the admin credential in APP_DB_ADMIN."""
    url = admin_url()
    monkeypatch.setenv("APP_DB_ADMIN", url)
    with Roles(url) as made:
        yield made


class TestPostgreSqlRotation(RotationSuite):
    """What every engine does, done by ``postgresql-password``."""

    kind = "postgresql-password"
    engine = "postgres"

    @pytest.fixture
    def accounts(self, roles: Roles) -> Roles:
        return roles


def test_check_names_a_missing_privilege(
    aws_sm: Any, roles: Roles, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An admin without CREATEROLE is reported by name, and nothing is changed."""
    old = stored(aws_sm, roles)
    weak = roles.create(f"{roles.user}_weak")
    monkeypatch.setenv(
        "APP_DB_ADMIN",
        json.dumps({"username": f"{roles.user}_weak", "password": weak}),
    )
    rotator = engine(tmp_path, policy("postgresql-password", roles, "alternating-users"), clock)
    [finding] = [f for f in rotator.check(["app/db"]) if "postgresql:" in f.check]
    assert "lacks: CREATEROLE" in finding.detail
    assert roles.logs_in(roles.user, old)


def _pg(roles: Roles, strategy: str) -> str:
    return policy("postgresql-password", roles, strategy)


def test_the_admin_credential_may_be_kept_in_a_store_by_hand(
    aws_sm: Any, roles: Roles, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``admin: {store: {...}}`` reads the admin's URL from a store no policy rotates."""
    monkeypatch.delenv("APP_DB_ADMIN")
    stored(aws_sm, roles)
    aws_sm.create_secret(Name="pg/admin", SecretString=roles.url)
    block = "{store: {provider: aws-secretsmanager, secret_id: pg/admin}}"
    body = _pg(roles, "alternating-users").replace("{env: APP_DB_ADMIN}", block)
    [outcome] = engine(tmp_path, body, clock).rotate("app/db").outcomes
    assert outcome.result is Result.OK, outcome.message
    assert roles.logs_in(roles.clone, current(aws_sm)["password"])


def test_a_bad_admin_store_block_is_refused_where_it_is_written(
    tmp_path: Path, roles: Roles
) -> None:
    """An admin store block is validated as a policy's store is, when the set loads."""
    for block, said in (
        ("{store: {provider: aws-secretsmanagr, secret_id: x}}", "aws-secretsmanager"),
        ("{store: {provider: aws-secretsmanager, secret_idd: x}}", "secret_idd"),
        ("{env: X, secret: y}", "give exactly one of env"),
    ):
        path = tmp_path / "policies.yaml"
        path.write_text(_pg(roles, "single-user").replace("{env: APP_DB_ADMIN}", block))
        with pytest.raises(PolicyError) as caught:
            load_policies(path)
        assert said in str(caught.value)
        assert "policies.yaml:12:" in str(caught.value), str(caught.value)


def test_permissions_prints_the_grants_once_per_server_in_any_order(
    roles: Roles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``rotator permissions --provider postgresql``: one script per server, stable bytes."""
    monkeypatch.setenv("APP_DB_ADMIN", json.dumps({"username": "dba", "password": "x" * 20}))
    one = _pg(roles, "alternating-users")
    two = one.replace("name: app/db", "name: app/db2").replace(roles.user, "other")
    outputs = []
    for body in (one + two.split("secrets:", 1)[1], two + one.split("secrets:", 1)[1]):
        (tmp_path / "p.yaml").write_text(body)
        result = CliRunner().invoke(
            cli,
            ["permissions", "--provider", "postgresql", "--config", str(tmp_path / "p.yaml")],
        )
        assert result.exit_code == 0, result.output
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    text = outputs[0]
    assert text.startswith(f"-- PostgreSQL at {roles.host}:{roles.port}: run as a superuser\n")
    assert text.count('ALTER ROLE "dba" CREATEROLE;') == 1
    for user in (roles.user, roles.clone, "other", "other_clone"):
        assert f'GRANT "{user}" TO "dba" WITH ADMIN OPTION, INHERIT FALSE, SET FALSE' in text


def test_the_printed_grants_are_enough_to_rotate(
    aws_sm: Any, roles: Roles, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An admin given only what ``permissions`` prints rotates two users through revoke.

    Before the script runs, ``check`` names CREATEROLE; after it, the check
    passes and a rotation succeeds. (This server is PostgreSQL 15; the ADMIN
    OPTION grants of 16 are skipped by the script's own version test.)
    """
    old = stored(aws_sm, roles)
    admin = f"{roles.user}_dba"
    admin_password = roles.create(admin)
    monkeypatch.setenv("APP_DB_ADMIN", json.dumps({"username": admin, "password": admin_password}))
    body = _pg(roles, "alternating-users")
    rotator = engine(tmp_path, body, clock)
    [before] = [f for f in rotator.check(["app/db"]) if "postgresql:" in f.check]
    assert "lacks: CREATEROLE" in before.detail

    printed = CliRunner().invoke(
        cli,
        ["permissions", "--provider", "postgresql", "--config", str(tmp_path / "policies.yaml")],
    )
    assert printed.exit_code == 0, printed.output
    roles.conn.execute(printed.stdout)

    [after] = [f for f in rotator.check(["app/db"]) if "postgresql:" in f.check]
    assert after.verdict is Verdict.OK, after.detail
    [outcome] = rotator.rotate("app/db").outcomes
    assert outcome.result is Result.OK, outcome.message
    clock.advance(timedelta(hours=1))
    assert [o.state for o in rotator.run_once().outcomes] == [State.DONE]
    assert not roles.logs_in(roles.user, old)


def test_a_translated_driver_error_keeps_nothing_of_the_statement(roles: Roles) -> None:
    """The psycopg error behind ours is emptied: no text, traceback or context to leak."""
    from rotator.adapters import SecretValue
    from rotator.errors import NotFoundError

    password = SecretValue("canary-" + "9" * 24)
    with pytest.raises(NotFoundError) as caught:  # the role does not exist yet
        _issuer(roles).accounts().set_password(roles.user, password, unlock=False)
    inner = caught.value.__context__
    assert inner is not None and inner.__traceback__ is None and inner.__context__ is None
    assert str(inner) == "UndefinedObject during set_password"  # the server's words are gone
    assert "9" * 24 not in str(caught.value)


def _issuer(roles: Roles, strategy: str = "single-user", current: Any = None) -> Any:
    """Build the issuer directly, its own secret's current value ``current``."""
    from providers.databases.postgresql import PostgreSqlPasswordConfig, PostgreSqlPasswordIssuer
    from rotator.adapters import Runtime

    fake = FakeClock()
    config = PostgreSqlPasswordConfig.model_validate(
        {
            "strategy": strategy,
            "host": roles.host,
            "port": roles.port,
            "database": roles.database,
            "username": roles.user,
            "admin": {"env": "APP_DB_ADMIN"},
        }
    )
    runtime = Runtime(clock=fake, sleep=fake.sleep, read_current=lambda name: current)
    return PostgreSqlPasswordIssuer(config, runtime, "app/db")


def test_a_refused_login_keeps_no_password_in_the_driver_error(
    roles: Roles, monkeypatch: pytest.MonkeyPatch
) -> None:
    """psycopg keeps the failed connection (its password) on its error: that is emptied too."""
    from rotator.errors import PermissionDeniedError

    canary = "canary-" + "7" * 24
    monkeypatch.setenv("APP_DB_ADMIN", json.dumps({"username": roles.admin, "password": canary}))
    with pytest.raises(PermissionDeniedError) as caught:
        _issuer(roles).accounts().login_states([roles.user])
    inner = caught.value.__context__
    assert inner is not None and getattr(inner, "pgconn", "unset") is None
    assert canary not in repr(vars(inner)) and canary not in str(caught.value)


def test_the_sessions_cannot_wait_for_ever_on_a_locked_role(roles: Roles) -> None:
    """Every connection sets a statement and a lock timeout."""
    from rotator.adapters import SecretValue

    issuer = _issuer(roles)
    admin = issuer.admin()
    with issuer.accounts()._connect(admin, admin.database) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("1min",)
        assert conn.execute("SHOW lock_timeout").fetchone() == ("30s",)
    assert isinstance(admin.password, SecretValue)


def test_alternating_users_touch_nobody_when_the_current_value_names_no_user(
    aws_sm: Any, roles: Roles, tmp_path: Path, clock: FakeClock
) -> None:
    """A current value not the RDS object: the live user is unknown, so nothing changes."""
    old = roles.create(roles.user)
    aws_sm.create_secret(Name="app/db", SecretString=old)  # a bare password
    [outcome] = engine(tmp_path, _pg(roles, "alternating-users"), clock).rotate("app/db").outcomes
    assert outcome.state is State.ROLLED_BACK, outcome  # nothing to undo, and nothing held
    assert "which user consumers hold cannot be told" in outcome.message
    assert roles.logs_in(roles.user, old)
    assert (
        roles.conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [roles.clone]).fetchone()
        is None
    )


def test_a_single_user_rollback_without_a_previous_password_keeps_the_pending_one(
    aws_sm: Any, roles: Roles, tmp_path: Path, clock: FakeClock
) -> None:
    """Nothing to put back, and the server holds the new password: it stays in the store."""
    roles.create(roles.user)
    aws_sm.create_secret(Name="app/db", SecretString="not the RDS shape")
    body = _pg(roles, "single-user").replace(
        "    schedule:", '    verify: [{kind: exec, command: ["false"]}]\n    schedule:'
    )
    [outcome] = engine(tmp_path, body, clock).rotate("app/db").outcomes
    assert outcome.state is State.ROLLING_BACK, outcome
    pending = json.loads(
        aws_sm.get_secret_value(SecretId="app/db", VersionStage="AWSPENDING")["SecretString"]
    )
    assert roles.logs_in(roles.user, pending["password"])  # held by a store version


def test_a_user_no_longer_the_policys_is_left_alone_at_revoke(roles: Roles) -> None:
    """A renamed user or clone: the old one is not rotator's to revoke any more, and no error."""
    issuer = _issuer(roles, "alternating-users")
    password = roles.create(f"{roles.user}_old")
    issuer.revoke(f"{roles.user}_old")
    assert roles.logs_in(f"{roles.user}_old", password)


def test_a_single_user_rotation_never_lifts_a_persons_lock(
    aws_sm: Any, roles: Roles, tmp_path: Path, clock: FakeClock
) -> None:
    """A user locked by hand (NOLOGIN) stays locked: the rotation fails and rolls back."""
    from psycopg import sql

    old = stored(aws_sm, roles)
    roles.conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(roles.user)))
    [outcome] = engine(tmp_path, _pg(roles, "single-user"), clock).rotate("app/db").outcomes
    assert outcome.state is State.ROLLED_BACK, outcome
    row = roles.conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", [roles.user])
    assert row.fetchone() == (False,)
    assert current(aws_sm)["password"] == old
