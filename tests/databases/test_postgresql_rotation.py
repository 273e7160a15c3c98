"""``postgresql-password`` rotations through the engine, against the real PostgreSQL.

The store is Secrets Manager (in-process moto) holding the AWS RDS JSON
value; the clock is injected, so grace deadlines pass without waiting. The
test role of .ci/run may create roles: it is the admin here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from rotator.engine.report import Result
from rotator.errors import PolicyError
from rotator.lifecycle import State
from rotator.policy.loader import load_policies
from tests.conftest import FakeClock
from tests.databases.postgres import Roles, admin_url
from tests.databases.rotations import current_value, engine_for, policy_for


@pytest.fixture
def roles(monkeypatch: pytest.MonkeyPatch) -> Iterator[Roles]:
    """Fresh roles on the test server, and the admin credential in APP_DB_ADMIN."""
    url = admin_url()
    monkeypatch.setenv("APP_DB_ADMIN", url)
    with Roles(url) as made:
        yield made


def test_single_user_sets_a_new_password_and_promotes_it(
    aws_sm: Any, roles: Roles, tmp_path: Path, clock: FakeClock
) -> None:
    """The one user gets the new password; the old no longer logs in; the value is RDS-shaped."""
    old = roles.create(roles.user)
    aws_sm.create_secret(Name="app/db", SecretString=json.dumps(roles.value(roles.user, old)))
    engine = engine_for(tmp_path, policy_for(roles, "single-user"), clock)

    [outcome] = engine.rotate("app/db").outcomes

    assert outcome.result is Result.OK and outcome.state is State.GRACE
    new = current_value(aws_sm)
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
    engine = engine_for(tmp_path, policy_for(roles, "alternating-users"), clock)

    [first] = engine.rotate("app/db").outcomes
    assert first.result is Result.OK
    live = current_value(aws_sm)
    assert live["username"] == roles.clone
    assert roles.reads_table(roles.clone, live["password"])  # the original's grants
    assert roles.logs_in(roles.user, old)  # still in its grace
    clock.advance(timedelta(hours=1))
    engine.run_once()
    assert not roles.logs_in(roles.user, old)  # revoked at the deadline
    assert roles.logs_in(roles.clone, live["password"])

    clock.advance(timedelta(days=30))
    engine.run_once()
    again = current_value(aws_sm)
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
    body = policy_for(roles, "single-user").replace(
        "    schedule:", '    verify: [{kind: exec, command: ["false"]}]\n    schedule:'
    )
    engine = engine_for(tmp_path, body, clock)

    [outcome] = engine.rotate("app/db").outcomes

    assert outcome.state is State.ROLLED_BACK
    assert current_value(aws_sm)["password"] == old
    assert roles.logs_in(roles.user, old)


def test_an_admin_secret_must_be_a_declared_policy(tmp_path: Path, roles: Roles) -> None:
    """``admin: {secret: NAME}`` naming no policy is refused when the set loads."""
    body = policy_for(roles, "single-user").replace("{env: APP_DB_ADMIN}", "{secret: pg/admn}")
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
    body = policy_for(roles, "single-user").replace("{env: APP_DB_ADMIN}", "{secret: pg/admin}")
    body += """
  - name: pg/admin
    store: {provider: aws-secretsmanager, secret_id: pg/admin}
    issuer: {kind: manual}
    schedule: {every: 90d}
    grace: 1d
"""
    engine = engine_for(tmp_path, body, clock)
    [outcome] = engine.rotate("app/db").outcomes
    assert outcome.result is Result.OK
    assert roles.logs_in(roles.user, current_value(aws_sm)["password"])


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
    engine = engine_for(tmp_path, policy_for(roles, "alternating-users"), clock)
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
    engine = engine_for(tmp_path, policy_for(roles, "single-user"), clock)
    [outcome] = engine.rotate("app/db").outcomes
    assert outcome.result is not Result.OK
    assert "refused the login of admin" in outcome.message
    assert old not in outcome.message
