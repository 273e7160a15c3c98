"""PostgreSQL passwords, sent as SCRAM verifiers: the server never sees (or logs) the plaintext.

libpq computes a role's SCRAM-SHA-256 verifier on the client
(``PQencryptPasswordConn``, which psycopg 3 exposes as
``conn.pgconn.encrypt_password``); ``ALTER ROLE name PASSWORD '<verifier>'``
stores it as is, and a login with the plaintext then works. With
``log_statement`` on, the server's log shows the verifier, salted afresh
each time, and never the password.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rotator.adapters import SecretValue

if TYPE_CHECKING:
    import psycopg

#: The only method sent: md5 verifiers are weak, and a plaintext would be logged.
METHOD = b"scram-sha-256"


def scram_verifier(conn: psycopg.Connection[object], role: str, password: SecretValue) -> str:
    """Return the SCRAM-SHA-256 verifier of ``password`` for ``role``, computed on the client."""
    verifier = conn.pgconn.encrypt_password(password.text().encode(), role.encode(), METHOD)
    return verifier.decode("ascii")
