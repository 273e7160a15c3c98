"""Rotations of a database password issuer through the engine: what every engine must do alike.

A test module subclasses :class:`RotationSuite` for its engine, naming the
issuer and giving an ``accounts`` fixture: fresh users on a real server,
seen from outside (:class:`ServerAccounts`), with the admin credential in
APP_DB_ADMIN. The store is Secrets Manager (in-process moto) holding the
AWS RDS JSON value; the clock is injected, so grace deadlines pass without
waiting.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pytest

from rotator.engine.report import Result
from rotator.engine.runner import Engine
from rotator.errors import PolicyError
from rotator.journal.journal import Journal
from rotator.lifecycle import State
from rotator.policy.loader import load_policies
from tests.conftest import FakeClock

#: The grace of the policies :func:`policy` writes.
GRACE = timedelta(hours=1)


class ServerAccounts(Protocol):
    """Users made for one test on a real server, and the ways a test looks at them."""

    user: str
    clone: str
    host: str
    port: int
    database: str

    def create(self, user: str) -> str:
        """Create ``user`` able to log in with a random password; return the password."""

    def grant_table(self, user: str) -> None:
        """Let ``user`` read a table of the database that no other user may read."""

    def logs_in(self, user: str, password: str) -> bool:
        """Tell whether ``user`` logs in with ``password`` on a new connection."""

    def existing(self) -> set[str]:
        """Return the names of the server's users that begin with ``user`` (it, its clone...)."""

    def reads_table(self, user: str, password: str) -> bool:
        """Tell whether ``user`` reads the table :meth:`grant_table` made readable."""

    def value(self, user: str, password: str) -> dict[str, Any]:
        """Return the RDS-shaped value of ``user`` and ``password``."""

    def admin_value(self) -> dict[str, Any]:
        """Return the admin's credential in the RDS shape."""


def policy(kind: str, accounts: ServerAccounts, strategy: str, **extra: str) -> str:
    """Return a policy file rotating ``accounts.user`` with the ``kind`` issuer."""
    fields = "".join(f"\n      {k}: {v}" for k, v in extra.items())
    return f"""
secrets:
  - name: app/db
    store: {{provider: aws-secretsmanager, secret_id: app/db}}
    issuer:
      kind: {kind}
      strategy: {strategy}
      host: {accounts.host}
      port: {accounts.port}
      database: {accounts.database}
      username: {accounts.user}
      admin: {{env: APP_DB_ADMIN}}{fields}
    schedule: {{every: 30d}}
    grace: {int(GRACE.total_seconds())}s
"""


def engine(tmp_path: Path, body: str, clock: FakeClock) -> Engine:
    """Return an engine running the policies of ``body``, with its journal in ``tmp_path``."""
    path = tmp_path / "policies.yaml"
    path.write_text(body)
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}", clock)
    return Engine(load_policies(path), journal, clock=clock, sleep=clock.sleep)


def current(sm: Any) -> dict[str, Any]:
    """Return the store's current value of app/db, parsed."""
    value: dict[str, Any] = json.loads(
        sm.get_secret_value(SecretId="app/db", VersionStage="AWSCURRENT")["SecretString"]
    )
    return value


def stored(sm: Any, accounts: ServerAccounts) -> str:
    """Create the original user and store its credential as app/db; return its password."""
    password = accounts.create(accounts.user)
    sm.create_secret(
        Name="app/db", SecretString=json.dumps(accounts.value(accounts.user, password))
    )
    return password


class RotationSuite:
    """The rotations every database password issuer performs alike."""

    #: The issuer's kind, as a policy names it.
    kind: ClassVar[str]
    #: The stored value's ``engine`` (AWS's word for the server).
    engine: ClassVar[str]

    def policy(self, accounts: ServerAccounts, strategy: str, **extra: str) -> str:
        """Return a policy rotating ``accounts.user`` with this suite's issuer."""
        return policy(self.kind, accounts, strategy, **extra)

    def test_single_user_sets_a_new_password_and_promotes_it(
        self, aws_sm: Any, accounts: ServerAccounts, tmp_path: Path, clock: FakeClock
    ) -> None:
        """The one user gets a new password; the old no longer logs in; the value is RDS-shaped."""
        old = stored(aws_sm, accounts)
        rotator = engine(tmp_path, self.policy(accounts, "single-user"), clock)

        [outcome] = rotator.rotate("app/db").outcomes

        assert outcome.result is Result.OK and outcome.state is State.GRACE
        new = current(aws_sm)
        assert set(new) == {"engine", "host", "port", "username", "password", "dbname"}
        assert (new["engine"], new["port"], new["username"]) == (
            self.engine,
            accounts.port,
            accounts.user,
        )
        assert accounts.logs_in(accounts.user, new["password"])
        assert not accounts.logs_in(accounts.user, old)
        clock.advance(timedelta(hours=1))
        assert [o.state for o in rotator.run_once().outcomes] == [State.DONE]
        assert accounts.logs_in(accounts.user, new["password"])  # nothing to revoke with one user

    def test_alternating_users_create_the_clone_then_take_turns(
        self, aws_sm: Any, accounts: ServerAccounts, tmp_path: Path, clock: FakeClock
    ) -> None:
        """The clone is made with the original's grants; each grace end revokes the other user."""
        old = stored(aws_sm, accounts)
        accounts.grant_table(accounts.user)
        rotator = engine(tmp_path, self.policy(accounts, "alternating-users"), clock)

        [first] = rotator.rotate("app/db").outcomes
        assert first.result is Result.OK
        live = current(aws_sm)
        assert live["username"] == accounts.clone
        assert accounts.reads_table(accounts.clone, live["password"])  # the original's grants
        assert accounts.logs_in(accounts.user, old)  # still in its grace
        clock.advance(timedelta(hours=1))
        rotator.run_once()
        assert not accounts.logs_in(accounts.user, old)  # revoked at the deadline
        assert accounts.logs_in(accounts.clone, live["password"])

        clock.advance(timedelta(days=30))
        rotator.run_once()
        again = current(aws_sm)
        assert again["username"] == accounts.user
        assert accounts.reads_table(accounts.user, again["password"])
        assert accounts.logs_in(accounts.clone, live["password"])  # in its grace now
        clock.advance(timedelta(hours=1))
        rotator.run_once()
        assert not accounts.logs_in(accounts.clone, live["password"])

    def test_a_failed_login_rolls_back_and_puts_the_old_password_back(
        self, aws_sm: Any, accounts: ServerAccounts, tmp_path: Path, clock: FakeClock
    ) -> None:
        """Single user: when the login with the new password fails, the old one works again."""
        old = stored(aws_sm, accounts)
        body = self.policy(accounts, "single-user").replace(
            "    schedule:", '    verify: [{kind: exec, command: ["false"]}]\n    schedule:'
        )
        rotator = engine(tmp_path, body, clock)

        [outcome] = rotator.rotate("app/db").outcomes

        assert outcome.state is State.ROLLED_BACK
        assert current(aws_sm)["password"] == old
        assert accounts.logs_in(accounts.user, old)

    def test_an_admin_secret_must_be_a_declared_policy(
        self, tmp_path: Path, accounts: ServerAccounts
    ) -> None:
        """``admin: {secret: NAME}`` naming no policy is refused when the set loads."""
        body = self.policy(accounts, "single-user").replace(
            "{env: APP_DB_ADMIN}", "{secret: db/admn}"
        )
        body += """
  - name: db/admin
    store: {provider: aws-secretsmanager, secret_id: db/admin}
    schedule: {every: 30d}
    grace: 1d
"""
        path = tmp_path / "policies.yaml"
        path.write_text(body)
        with pytest.raises(PolicyError) as caught:
            load_policies(path)
        assert "names secret 'db/admn', which no policy declares; did you mean 'db/admin'?" in str(
            caught.value
        )
        assert "secrets[0].issuer.admin.secret" in str(caught.value)

    def test_the_admin_credential_may_be_another_managed_secret(
        self,
        aws_sm: Any,
        accounts: ServerAccounts,
        tmp_path: Path,
        clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """``admin: {secret: NAME}`` reads the admin's JSON from that secret's store."""
        monkeypatch.delenv("APP_DB_ADMIN")
        stored(aws_sm, accounts)
        aws_sm.create_secret(Name="db/admin", SecretString=json.dumps(accounts.admin_value()))
        body = self.policy(accounts, "single-user").replace(
            "{env: APP_DB_ADMIN}", "{secret: db/admin}"
        )
        body += """
  - name: db/admin
    store: {provider: aws-secretsmanager, secret_id: db/admin}
    issuer: {kind: manual}
    schedule: {every: 90d}
    grace: 1d
"""
        rotator = engine(tmp_path, body, clock)
        [outcome] = rotator.rotate("app/db").outcomes
        assert outcome.result is Result.OK
        assert accounts.logs_in(accounts.user, current(aws_sm)["password"])

    def test_connection_errors_hold_no_password(
        self,
        aws_sm: Any,
        accounts: ServerAccounts,
        tmp_path: Path,
        clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A refused admin login fails the rotation with a message naming no password."""
        old = accounts.create(accounts.user)
        monkeypatch.setenv(
            "APP_DB_ADMIN", json.dumps({"username": accounts.user, "password": "wrong-" + old})
        )
        aws_sm.create_secret(
            Name="app/db", SecretString=json.dumps(accounts.value(accounts.user, old))
        )
        rotator = engine(tmp_path, self.policy(accounts, "single-user"), clock)
        [outcome] = rotator.rotate("app/db").outcomes
        assert outcome.result is not Result.OK
        assert "refused the login of admin" in outcome.message
        assert old not in outcome.message
