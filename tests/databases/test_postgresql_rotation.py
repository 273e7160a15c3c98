"""``postgresql-password`` rotations through the engine, against the real PostgreSQL.

The store is Secrets Manager (in-process moto) holding the AWS RDS JSON
value; the clock is injected, so grace deadlines pass without waiting. The
test role of .ci/run may create roles: it is the admin here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rotator.cli.main import cli
from rotator.engine.preflight import Verdict
from rotator.engine.report import Result
from rotator.engine.runner import Engine
from rotator.errors import PolicyError
from rotator.journal.journal import Journal
from rotator.lifecycle import State
from rotator.policy.loader import load_policies
from tests.conftest import FakeClock
from tests.databases.postgres import Roles, admin_url


@pytest.fixture
def roles(monkeypatch: pytest.MonkeyPatch) -> Iterator[Roles]:
    """Fresh roles on the test server, and the admin credential in APP_DB_ADMIN."""
    url = admin_url()
    monkeypatch.setenv("APP_DB_ADMIN", url)
    with Roles(url) as made:
        yield made


def _policy(roles: Roles, strategy: str, **extra: str) -> str:
    fields = "".join(f"\n      {k}: {v}" for k, v in extra.items())
    return f"""
secrets:
  - name: app/db
    store: {{provider: aws-secretsmanager, secret_id: app/db}}
    issuer:
      kind: postgresql-password
      strategy: {strategy}
      host: {roles.host}
      port: {roles.port}
      database: {roles.database}
      username: {roles.user}
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
    aws_sm: Any, roles: Roles, tmp_path: Path, clock: FakeClock
) -> None:
    """The one user gets the new password; the old no longer logs in; the value is RDS-shaped."""
    old = roles.create(roles.user)
    aws_sm.create_secret(Name="app/db", SecretString=json.dumps(roles.value(roles.user, old)))
    engine = _engine(tmp_path, _policy(roles, "single-user"), clock)

    [outcome] = engine.rotate("app/db").outcomes

    assert outcome.result is Result.OK and outcome.state is State.GRACE
    new = _current(aws_sm)
    assert set(new) == {"engine", "host", "port", "username", "password", "dbname"}
    assert (new["engine"], new["port"], new["username"]) == ("postgres", roles.port, roles.user)
    assert roles.logs_in(roles.user, new["password"])
    assert not roles.logs_in(roles.user, old)
    clock.advance(timedelta(hours=1))
    assert [o.state for o in engine.run_once().outcomes] == [State.DONE]
    assert roles.logs_in(roles.user, new["password"])  # nothing to revoke with one user


def test_alternating_users_create_the_clone_then_take_turns(
    aws_sm: Any, roles: Roles, tmp_path: Path, clock: FakeClock
) -> None:
    """The clone is made with the original's grants; each grace end revokes the other user."""
    old = roles.create(roles.user)
    roles.grant_table(roles.user)
    aws_sm.create_secret(Name="app/db", SecretString=json.dumps(roles.value(roles.user, old)))
    engine = _engine(tmp_path, _policy(roles, "alternating-users"), clock)

    [first] = engine.rotate("app/db").outcomes
    assert first.result is Result.OK
    live = _current(aws_sm)
    assert live["username"] == roles.clone
    assert roles.reads_table(roles.clone, live["password"])  # the original's grants
    assert roles.logs_in(roles.user, old)  # still in its grace
    clock.advance(timedelta(hours=1))
    engine.run_once()
    assert not roles.logs_in(roles.user, old)  # revoked at the deadline
    assert roles.logs_in(roles.clone, live["password"])

    clock.advance(timedelta(days=30))
    engine.run_once()
    again = _current(aws_sm)
    assert again["username"] == roles.user
    assert roles.reads_table(roles.user, again["password"])
    assert roles.logs_in(roles.clone, live["password"])  # in its grace now
    clock.advance(timedelta(hours=1))
    engine.run_once()
    assert not roles.logs_in(roles.clone, live["password"])


def test_a_failed_login_rolls_back_and_puts_the_old_password_back(
    aws_sm: Any, roles: Roles, tmp_path: Path, clock: FakeClock
) -> None:
    """Single user: when the login with the new password fails, the old one works again."""
    old = roles.create(roles.user)
    aws_sm.create_secret(Name="app/db", SecretString=json.dumps(roles.value(roles.user, old)))
    body = _policy(roles, "single-user").replace(
        "    schedule:", '    verify: [{kind: exec, command: ["false"]}]\n    schedule:'
    )
    engine = _engine(tmp_path, body, clock)

    [outcome] = engine.rotate("app/db").outcomes

    assert outcome.state is State.ROLLED_BACK
    assert _current(aws_sm)["password"] == old
    assert roles.logs_in(roles.user, old)


def test_an_admin_secret_must_be_a_declared_policy(tmp_path: Path, roles: Roles) -> None:
    """``admin: {secret: NAME}`` naming no policy is refused when the set loads."""
    body = _policy(roles, "single-user").replace("{env: APP_DB_ADMIN}", "{secret: pg/admn}")
    body += """
  - name: pg/admin
    store: {provider: aws-secretsmanager, secret_id: pg/admin}
    schedule: {every: 30d}
    grace: 1d
"""
    path = tmp_path / "policies.yaml"
    path.write_text(body)
    with pytest.raises(PolicyError) as caught:
        load_policies(path)
    assert "names secret 'pg/admn', which no policy declares; did you mean 'pg/admin'?" in str(
        caught.value
    )
    assert "secrets[0].issuer.admin.secret" in str(caught.value)


def test_the_admin_credential_may_be_another_managed_secret(
    aws_sm: Any, roles: Roles, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``admin: {secret: NAME}`` reads the admin's JSON from that secret's store."""
    monkeypatch.delenv("APP_DB_ADMIN")
    old = roles.create(roles.user)
    aws_sm.create_secret(Name="app/db", SecretString=json.dumps(roles.value(roles.user, old)))
    aws_sm.create_secret(Name="pg/admin", SecretString=json.dumps(roles.admin_value()))
    body = _policy(roles, "single-user").replace("{env: APP_DB_ADMIN}", "{secret: pg/admin}")
    body += """
  - name: pg/admin
    store: {provider: aws-secretsmanager, secret_id: pg/admin}
    issuer: {kind: manual}
    schedule: {every: 90d}
    grace: 1d
"""
    engine = _engine(tmp_path, body, clock)
    [outcome] = engine.rotate("app/db").outcomes
    assert outcome.result is Result.OK
    assert roles.logs_in(roles.user, _current(aws_sm)["password"])


def test_the_admin_credential_may_be_kept_in_a_store_by_hand(
    aws_sm: Any, roles: Roles, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``admin: {store: {...}}`` reads the admin's URL from a store no policy rotates."""
    monkeypatch.delenv("APP_DB_ADMIN")
    old = roles.create(roles.user)
    aws_sm.create_secret(Name="app/db", SecretString=json.dumps(roles.value(roles.user, old)))
    aws_sm.create_secret(Name="pg/admin", SecretString=roles.url)
    store = "{store: {provider: aws-secretsmanager, secret_id: pg/admin}}"
    body = _policy(roles, "alternating-users").replace("{env: APP_DB_ADMIN}", store)
    engine = _engine(tmp_path, body, clock)
    [outcome] = engine.rotate("app/db").outcomes
    assert outcome.result is Result.OK, outcome.message
    assert roles.logs_in(roles.clone, _current(aws_sm)["password"])


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
        path.write_text(_policy(roles, "single-user").replace("{env: APP_DB_ADMIN}", block))
        with pytest.raises(PolicyError) as caught:
            load_policies(path)
        assert said in str(caught.value)
        assert "policies.yaml:12:" in str(caught.value), str(caught.value)


def test_check_names_a_missing_privilege(
    aws_sm: Any, roles: Roles, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An admin without CREATEROLE is reported by name, and nothing is changed."""
    old = roles.create(roles.user)
    weak = roles.create(f"{roles.user}_weak")
    monkeypatch.setenv(
        "APP_DB_ADMIN",
        json.dumps({"username": f"{roles.user}_weak", "password": weak}),
    )
    aws_sm.create_secret(Name="app/db", SecretString=json.dumps(roles.value(roles.user, old)))
    engine = _engine(tmp_path, _policy(roles, "alternating-users"), clock)
    [finding] = [f for f in engine.check(["app/db"]) if "postgresql:" in f.check]
    assert "lacks: CREATEROLE" in finding.detail
    assert roles.logs_in(roles.user, old)


def test_connection_errors_hold_no_password(
    aws_sm: Any, roles: Roles, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused admin login fails the rotation with a message naming no password."""
    old = roles.create(roles.user)
    monkeypatch.setenv(
        "APP_DB_ADMIN", json.dumps({"username": roles.user, "password": "wrong-" + old})
    )
    aws_sm.create_secret(Name="app/db", SecretString=json.dumps(roles.value(roles.user, old)))
    engine = _engine(tmp_path, _policy(roles, "single-user"), clock)
    [outcome] = engine.rotate("app/db").outcomes
    assert outcome.result is not Result.OK
    assert "refused the login of admin" in outcome.message
    assert old not in outcome.message


@pytest.fixture
def aws_sm(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An in-process Secrets Manager (moto)."""
    import boto3
    from moto import mock_aws

    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock from the real now (moto stamps versions with the real time)."""
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


def test_permissions_prints_the_grants_once_per_server_in_any_order(
    roles: Roles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``rotator permissions --provider postgresql``: one script per server, stable bytes."""
    monkeypatch.setenv("APP_DB_ADMIN", json.dumps({"username": "dba", "password": "x" * 20}))
    one = _policy(roles, "alternating-users")
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

    Before the script runs, ``check`` names CREATEROLE and the rotation fails;
    after it, both pass. (This server is PostgreSQL 15; the ADMIN OPTION
    grants of 16 are skipped by the script's own version test.)
    """
    old = roles.create(roles.user)
    admin = f"{roles.user}_dba"
    admin_password = roles.create(admin)
    monkeypatch.setenv("APP_DB_ADMIN", json.dumps({"username": admin, "password": admin_password}))
    aws_sm.create_secret(Name="app/db", SecretString=json.dumps(roles.value(roles.user, old)))
    body = _policy(roles, "alternating-users")
    engine = _engine(tmp_path, body, clock)
    [before] = [f for f in engine.check(["app/db"]) if "postgresql:" in f.check]
    assert "lacks: CREATEROLE" in before.detail

    (tmp_path / "p.yaml").write_text(body)
    printed = CliRunner().invoke(
        cli, ["permissions", "--provider", "postgresql", "--config", str(tmp_path / "p.yaml")]
    )
    assert printed.exit_code == 0, printed.output
    roles.conn.execute(printed.stdout)

    [after] = [f for f in engine.check(["app/db"]) if "postgresql:" in f.check]
    assert after.verdict is Verdict.OK, after.detail
    [outcome] = engine.rotate("app/db").outcomes
    assert outcome.result is Result.OK, outcome.message
    clock.advance(timedelta(hours=1))
    assert [o.state for o in engine.run_once().outcomes] == [State.DONE]
    assert not roles.logs_in(roles.user, old)


def test_a_translated_driver_error_keeps_nothing_of_the_statement(
    roles: Roles, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The psycopg error behind ours is emptied: no text, traceback or context to leak."""
    from providers.databases.postgresql import PostgreSqlPasswordConfig, PostgreSqlPasswordIssuer
    from rotator.adapters import Runtime, SecretValue
    from rotator.errors import NotFoundError

    clock = FakeClock()
    config = PostgreSqlPasswordConfig.model_validate(
        {
            "host": roles.host,
            "port": roles.port,
            "database": roles.database,
            "username": roles.user,
            "admin": {"env": "APP_DB_ADMIN"},
        }
    )
    issuer = PostgreSqlPasswordIssuer(config, Runtime(clock=clock, sleep=clock.sleep), "app/db")
    password = SecretValue("canary-" + "9" * 24)
    with pytest.raises(NotFoundError) as caught:
        issuer.accounts().set_password(roles.user, password)  # the role does not exist yet
    inner = caught.value.__context__
    assert inner is not None and inner.__traceback__ is None and inner.__context__ is None
    assert str(inner) == "UndefinedObject during set_password"  # the server's words are gone
    assert "9" * 24 not in str(caught.value)
