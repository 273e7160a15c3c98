"""The MySQL/MariaDB password form rotator sends: the server stores it, logs only the hash.

MariaDB logs ``IDENTIFIED BY 'plaintext'`` verbatim in its general log; the
``mysql_native_password`` hash computed on the client keeps the plaintext
out of it, and the plaintext still logs in. Against a real MariaDB. And a
password PyMySQL cannot send (it encodes passwords as latin-1) is refused as
a configuration error that repeats none of it, before any connection.
"""

from __future__ import annotations

import json
import secrets
import traceback
from collections.abc import Callable

import pymysql
import pytest

from providers.databases.accounts import Accounts
from providers.databases.mysql import MySqlPasswordConfig, MySqlPasswordIssuer, native_password_hash
from providers.databases.value import Login
from rotator.adapters import Runtime, SecretValue
from rotator.errors import ConfigError
from tests.conftest import FakeClock
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


#: A password with a character outside latin-1 (the euro sign), around parts a leak would show.
UNSENDABLE = "left-half-€-right-half"


def _accounts(monkeypatch: pytest.MonkeyPatch, admin_password: str) -> Accounts:
    """Return the accounts of a policy on a closed port, its admin's password given."""
    monkeypatch.setenv(
        "APP_DB_ADMIN", json.dumps({"username": "admin", "password": admin_password})
    )
    config = MySqlPasswordConfig.model_validate(
        {"host": "127.0.0.1", "port": 1, "username": "app", "admin": {"env": "APP_DB_ADMIN"}}
    )
    clock = FakeClock()
    runtime = Runtime(clock=clock, sleep=clock.sleep, read_current=lambda name: None)
    return MySqlPasswordIssuer(config, runtime, "app/db").accounts()


def _shows_nothing_of(error: BaseException, password: str) -> None:
    """Check the error, everything chained to it, and their texts repeat no part of ``password``."""
    parts = [password, *password.split("-"), "€", "\\u20ac", "20ac"]
    chain: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for link in chain:
        texts = [str(link), repr(link), repr(vars(link)), repr(getattr(link, "object", ""))]
        texts.append("".join(traceback.format_exception(link)))
        for text in texts:
            for part in parts:
                if len(part) > 3:
                    assert part not in text, (type(link).__name__, part)


@pytest.mark.parametrize(
    ("operation", "who"),
    [
        (lambda accounts: accounts.login_states(["app"]), "admin"),
        (lambda accounts: accounts.try_login(Login("app", SecretValue(UNSENDABLE), None)), "app"),
    ],
    ids=["admin", "consumer"],
)
def test_a_password_outside_latin1_is_a_configuration_error_naming_none_of_it(
    monkeypatch: pytest.MonkeyPatch, operation: Callable[[Accounts], object], who: str
) -> None:
    """PyMySQL's UnicodeEncodeError quotes the password: it becomes a ConfigError, emptied."""
    accounts = _accounts(monkeypatch, UNSENDABLE if who == "admin" else "ascii-only")
    with pytest.raises(ConfigError, match=f"the password of {who} has a character") as caught:
        operation(accounts)
    _shows_nothing_of(caught.value, UNSENDABLE)
