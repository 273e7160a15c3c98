"""The MySQL/MariaDB password form rotator sends: the server stores it, logs only the hash.

MariaDB logs ``IDENTIFIED BY 'plaintext'`` verbatim in its general log; the
``mysql_native_password`` hash computed on the client keeps the plaintext
out of it, and the plaintext still logs in. Against a real MariaDB.
"""

from __future__ import annotations

import secrets

import pymysql
import pytest

from providers.databases.mysql import native_password_hash
from rotator.adapters import SecretValue
from tests.databases.mariadb import MariaDb


def test_the_native_hash_is_mysqls_own() -> None:
    """The published value of PASSWORD('password') in MySQL 5.x and MariaDB."""
    assert native_password_hash(SecretValue("password")) == (
        "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
    )


def test_a_hashed_password_logs_in_and_only_its_hash_is_logged(mariadb: MariaDb) -> None:
    """Set by hash: the plaintext logs in, a wrong one does not, the log holds the hash only."""
    password = "canary-" + secrets.token_hex(16)
    hashed = native_password_hash(SecretValue(password))
    with mariadb.admin() as conn, conn.cursor() as cur:
        cur.execute("CREATE USER 'app_hashed'@'%%' IDENTIFIED BY PASSWORD %s", (hashed,))
    with mariadb.connect("app_hashed", password) as conn, conn.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        assert cur.fetchone() == ("app_hashed@%",)
    with pytest.raises(pymysql.err.OperationalError) as refused:
        mariadb.connect("app_hashed", password + "x")
    assert refused.value.args[0] == 1045  # access denied
    logged = mariadb.general_log.read_text()
    assert hashed in logged
    assert password not in logged and password[7:] not in logged


def test_the_plain_form_would_be_logged(mariadb: MariaDb) -> None:
    """What the hash avoids, shown on the same server: IDENTIFIED BY 'plaintext' is logged as is."""
    password = "plain-" + secrets.token_hex(16)
    with mariadb.admin() as conn, conn.cursor() as cur:
        cur.execute("CREATE USER 'app_plain'@'%%' IDENTIFIED BY %s", (password,))
    assert password in mariadb.general_log.read_text()
