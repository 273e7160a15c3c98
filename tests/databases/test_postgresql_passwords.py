"""The PostgreSQL password form rotator sends: a SCRAM verifier made on the client.

Against the real PostgreSQL 15 that .ci/run starts (its test role may create
roles): a role whose password is set by verifier logs in with the plaintext,
and what was sent holds no piece of it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from providers.databases.postgresql import scram_verifier
from rotator.adapters import SecretValue
from tests.conftest import postgres_url


@pytest.fixture
def admin() -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A connection as the test role, which may create roles; the roles made are dropped."""
    url = postgres_url()
    if url is None:
        pytest.skip("no PostgreSQL (set ROTATOR_TEST_POSTGRES_URL)")
    with psycopg.connect(url, autocommit=True) as conn:
        yield conn


def test_a_role_set_by_verifier_logs_in_with_the_plaintext(
    admin: psycopg.Connection[tuple[object, ...]],
) -> None:
    """The verifier is SCRAM's, salted afresh; the plaintext logs in, a wrong one does not."""
    role = f"app_scram_{secrets.token_hex(4)}"
    password = SecretValue("canary-" + secrets.token_hex(16))
    verifier = scram_verifier(admin, role, password)
    assert verifier.startswith("SCRAM-SHA-256$4096:")
    assert password.text() not in verifier and password.text()[7:] not in verifier
    assert scram_verifier(admin, role, password) != verifier  # a new salt each time
    admin.execute(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(verifier)
        )
    )
    try:
        info = admin.info
        dsn = f"host={info.host} port={info.port} dbname={info.dbname} user={role}"
        with psycopg.connect(dsn, password=password.text()) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (role,)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(dsn, password=password.text() + "x")
    finally:
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
