"""Canary: rotate PostgreSQL passwords through the engine, then look for them in every log.

The server is the throwaway one (:mod:`rotator.sandbox.postgresql.server`),
which logs every statement (``log_statement=all``): a password rotator sent
in the clear, or hex or base64 encoded, would be in its log. The SCRAM
verifiers rotator sends instead must be there, which proves the log is on.
rotator's own events, at DEBUG, are read as logged, before any redaction,
and every other record (psycopg's) as the log pipeline writes it.

Every password is known to the test: the role's first one, each value the
store ever held, and each one the issuer drew, including the random
passwords a revoke sets, which nobody is meant to hold (the issuer's draw
is watched, not replaced). The store is Secrets Manager (in-process moto);
the clock is injected.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog.testing
from structlog.typing import EventDict

from providers.databases.issuer import DatabasePasswordIssuer
from rotator.adapters import SecretValue
from rotator.engine.report import Result
from rotator.engine.runner import Engine
from rotator.lifecycle import State
from rotator.output.logs import configure
from rotator.sandbox.postgresql.server import PostgreSqlServer
from tests.conftest import FakeClock, restored_logging
from tests.databases.postgres import Roles
from tests.databases.rotation import GRACE, current, engine, policy

#: A password literal in a statement, as ``ALTER ROLE x PASSWORD '...'`` writes it.
PASSWORD_LITERAL = re.compile(r"PASSWORD '([^']*)'")


@dataclass
class RotatorLogs:
    """What rotator logged: its own events as logged, the other records as written."""

    events: list[EventDict]
    written: io.StringIO

    def text(self) -> str:
        """Return every event's repr and every written line, as one text to search."""
        return "\n".join(repr(event) for event in self.events) + "\n" + self.written.getvalue()


@pytest.fixture
def roles(postgresql_server: PostgreSqlServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Roles]:
    """Fresh roles on the throwaway server; its superuser is the admin, in APP_DB_ADMIN."""
    url = postgresql_server.url()
    monkeypatch.setenv("APP_DB_ADMIN", url)
    with Roles(url) as made:
        yield made


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password the issuer draws from now on (its own draw, watched as it returns)."""
    passwords: list[str] = []
    draw = DatabasePasswordIssuer.fresh_password

    def watched(issuer: DatabasePasswordIssuer) -> SecretValue:
        password = draw(issuer)
        passwords.append(password.text())
        return password

    monkeypatch.setattr(DatabasePasswordIssuer, "fresh_password", watched)
    return passwords


@pytest.fixture
def rotator_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[RotatorLogs]:
    """rotator's logging as ``--log-level debug --log-format json`` sets it, captured.

    psycopg keeps its own logger at WARNING; it is opened to DEBUG here, the
    most it could ever say (its connection attempts) going through the pipeline.
    """
    monkeypatch.setattr(logging.getLogger("psycopg"), "level", logging.DEBUG)
    written = io.StringIO()
    with restored_logging():
        configure("json", "debug", written)
        with structlog.testing.capture_logs() as events:
            yield RotatorLogs(events, written)


def _forms(password: str) -> set[str]:
    """Return ``password`` and its hex and base64 forms."""
    raw = password.encode()
    encoded = {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    return {password, raw.hex(), raw.hex().upper()} | encoded | {e.rstrip("=") for e in encoded}


def _stored_passwords(sm: Any) -> set[str]:
    """Return the password of every version the store ever held of ``app/db``."""
    versions = sm.list_secret_version_ids(SecretId="app/db", IncludeDeprecated=True)["Versions"]
    texts = [
        sm.get_secret_value(SecretId="app/db", VersionId=v["VersionId"])["SecretString"]
        for v in versions
    ]
    return {json.loads(text)["password"] for text in texts}


def _assert_no_password(passwords: set[str], text: str, where: str) -> None:
    """Fail if any form of any password is in ``text`` (the message shows none of them)."""
    for password in passwords:
        if any(form in text for form in _forms(password)):
            pytest.fail(f"a password (or its hex/base64 form) is in {where}")


def _role_statements(log: str, *role_names: str) -> list[str]:
    """Return the logged statements setting a password of one of ``role_names``, by rotator.

    The server's lines name the application (``/rotator``, psycopg's
    ``application_name``), which tells rotator's statements from the test's.
    """
    quoted = tuple(f'ROLE "{name}"' for name in role_names)
    return [
        line
        for line in log.splitlines()
        if "/rotator LOG:  statement:" in line
        and "PASSWORD" in line
        and any(q in line for q in quoted)
    ]


def _assert_canaries(
    server: PostgreSqlServer,
    roles: Roles,
    passwords: set[str],
    logs: RotatorLogs,
    *,
    least: dict[tuple[str, str], int],
) -> None:
    """No password in either log; rotator set each as a SCRAM verifier, as often as ``least``.

    ``least`` maps (``CREATE`` or ``ALTER``, role) to the fewest statements
    of that kind the rotations must have sent (a revoke may be repeated).
    """
    assert len(passwords) >= 3  # the first one and at least two drawn
    log = server.log_text()
    _assert_no_password(passwords | {roles.admin_password}, log, "the PostgreSQL server's log")
    statements = _role_statements(log, roles.user, roles.clone)
    literals = [m for line in statements for m in PASSWORD_LITERAL.findall(line)]
    assert len(literals) == len(statements)
    assert all(v.startswith("SCRAM-SHA-256$4096:") for v in literals), statements
    for (verb, role), fewest in least.items():
        sent = sum(
            re.search(f'{verb} ROLE "{re.escape(role)}" (WITH LOGIN )?PASSWORD', line) is not None
            for line in statements
        )
        assert sent >= fewest, (verb, role, statements)
    # The captures are live: rotator's events and psycopg's DEBUG records are in them.
    assert any(e["event"] == "minted new credential" for e in logs.events)
    assert "connection succeeded" in logs.written.getvalue()
    _assert_no_password(passwords | {roles.admin_password}, logs.text(), "rotator's logs")


def _seeded(
    aws_sm: Any, roles: Roles, tmp_path: Path, clock: FakeClock, strategy: str
) -> tuple[str, Engine, Path]:
    """Make the user and its secret; return its password, the engine, and a switch.

    The policy checks each new credential with a command that fails while
    the switch (a file) exists: touching it drives a rollback.
    """
    old = roles.create(roles.user)
    aws_sm.create_secret(Name="app/db", SecretString=json.dumps(roles.value(roles.user, old)))
    switch = tmp_path / "fail-verification"
    check = f'    verify: [{{kind: exec, command: [test, "!", -e, "{switch}"]}}]\n'
    body = policy("postgresql-password", roles, strategy)
    body = body.replace("    schedule:", check + "    schedule:")
    return old, engine(tmp_path, body, clock), switch


def test_alternating_users_send_only_verifiers(
    aws_sm: Any,
    roles: Roles,
    postgresql_server: PostgreSqlServer,
    drawn: list[str],
    rotator_logs: RotatorLogs,
    tmp_path: Path,
    clock: FakeClock,
) -> None:
    """Clone made, each user revoked at its grace end, then a rollback: no password logged."""
    old, rotating, switch = _seeded(aws_sm, roles, tmp_path, clock, "alternating-users")
    roles.grant_table(roles.user)

    assert rotating.rotate("app/db").outcomes[0].result is Result.OK  # CREATE ROLE clone
    assert current(aws_sm)["username"] == roles.clone
    clock.advance(GRACE)
    rotating.run_once()  # the original revoked: a password nobody holds
    clock.advance(timedelta(days=30))
    rotating.run_once()  # the original set again
    assert current(aws_sm)["username"] == roles.user
    clock.advance(GRACE)
    rotating.run_once()  # the clone revoked
    switch.touch()
    [rolled] = rotating.rotate("app/db").outcomes  # the clone set, then revoked by the rollback
    assert rolled.state is State.ROLLED_BACK
    assert roles.logs_in(roles.user, current(aws_sm)["password"])

    passwords = {old, *drawn} | _stored_passwords(aws_sm)
    # The clone made once; each user revoked, the original set again; the clone set and
    # revoked by the rollback.
    least = {("CREATE", roles.clone): 1, ("ALTER", roles.user): 2, ("ALTER", roles.clone): 3}
    _assert_canaries(postgresql_server, roles, passwords, rotator_logs, least=least)


def test_single_user_sends_only_verifiers(
    aws_sm: Any,
    roles: Roles,
    postgresql_server: PostgreSqlServer,
    drawn: list[str],
    rotator_logs: RotatorLogs,
    tmp_path: Path,
    clock: FakeClock,
) -> None:
    """A rotation, then one rolled back (the old password put back): no password logged."""
    old, rotating, switch = _seeded(aws_sm, roles, tmp_path, clock, "single-user")

    assert rotating.rotate("app/db").outcomes[0].result is Result.OK
    clock.advance(GRACE)
    rotating.run_once()
    switch.touch()
    [rolled] = rotating.rotate("app/db").outcomes  # set, then the previous password put back
    assert rolled.state is State.ROLLED_BACK
    assert roles.logs_in(roles.user, current(aws_sm)["password"])

    passwords = {old, *drawn} | _stored_passwords(aws_sm)
    # Set, set again, and the old password put back by the rollback.
    least = {("ALTER", roles.user): 3}
    _assert_canaries(postgresql_server, roles, passwords, rotator_logs, least=least)
