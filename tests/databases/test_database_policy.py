"""The database issuers' policy fields: defaults that are safe, and what cannot work refused."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from providers.databases.policy import TlsMode, is_loopback
from providers.databases.postgresql import PostgreSqlPasswordConfig
from providers.databases.value import admin_login, parse, render

BASE: dict[str, Any] = {"host": "db.internal", "username": "app", "admin": {"env": "APP_ADMIN"}}


def _config(**fields: Any) -> PostgreSqlPasswordConfig:
    return PostgreSqlPasswordConfig.model_validate({**BASE, **fields})


@pytest.mark.parametrize(
    ("host", "mode"),
    [
        ("db.internal", TlsMode.VERIFY_FULL),
        ("10.0.0.5", TlsMode.VERIFY_FULL),
        ("127.0.0.1", TlsMode.PREFER),
        ("::1", TlsMode.PREFER),
        ("localhost", TlsMode.PREFER),
        ("/var/run/postgresql", TlsMode.PREFER),
    ],
)
def test_tls_verifies_the_server_by_default_unless_it_is_this_machine(
    host: str, mode: TlsMode
) -> None:
    """A remote host gets verify-full unless the policy says otherwise."""
    assert _config(host=host).tls_mode is mode
    assert is_loopback(host) is (mode is TlsMode.PREFER)
    assert _config(host=host, tls={"mode": "require"}).tls_mode is TlsMode.REQUIRE
    assert _config(host=host, tls={"ca_file": "/ca.pem"}).tls_mode is TlsMode.VERIFY_FULL


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"clone": "app2"}, "clone names the second user of strategy alternating-users only"),
        (
            {"strategy": "alternating-users", "value": "password"},
            "alternating-users needs value: json",
        ),
        ({"strategy": "alternating-users", "clone": "app"}, "clone must differ from username"),
        ({"username": "a" * 60, "strategy": "alternating-users"}, "longer than the 63"),
        ({"tls": {"mode": "verify-ca"}}, "verify-ca needs ca_file"),
        ({"tls": {"mode": "require", "ca_file": "/ca.pem"}}, "not read with mode require"),
        (
            {"tls": {"mode": "disable", "ca_file": "/ca.pem"}},
            "ca_file is not read with mode disable",
        ),
        ({"admin": {"env": "ROTATOR_DB"}}, "ROTATOR_ names are rotator's own"),
        ({"admin": {}}, "give exactly one of env"),
        ({"host": "db\n-- x"}, "String should match pattern"),
        ({"username": "app'; DROP"}, "String should match pattern"),
        ({"username": "a$rotator$"}, "String should match pattern"),
        ({"connect_timeout": "0s"}, "connect_timeout must be between"),
        ({"password_length": 8}, "greater than or equal to 16"),
    ],
)
def test_what_cannot_work_is_refused(fields: dict[str, Any], said: str) -> None:
    """Each incoherent policy is refused with a reason naming the field."""
    with pytest.raises(ValidationError) as caught:
        _config(**fields)
    assert said in str(caught.value)


def test_the_stored_value_is_the_rds_shape_and_reads_back() -> None:
    """``value: json`` stores engine, host, port (a number), username, password, dbname."""
    from providers.databases.value import Login
    from rotator.adapters import SecretValue

    config = _config(database="app", port=6432)
    value = render(config, Login("app", SecretValue("p" * 20)))
    assert value.text().startswith('{"engine": "postgres", "host": "db.internal", "port": 6432,')
    login = parse(config, value)
    assert login is not None and (login.username, login.password.text()) == ("app", "p" * 20)
    bare = _config(value="password")
    assert render(bare, Login("app", SecretValue("p" * 20))).text() == "p" * 20


@pytest.mark.parametrize(
    ("text", "user", "database"),
    [
        ('{"username": "dba", "password": "s3cret-s3cret-1"}', "dba", None),
        ('{"username": "dba", "password": "s3cret-s3cret-1", "dbname": "ops"}', "dba", "ops"),
        ("postgresql://dba:s3cret%40s3cret@db:5432/ops", "dba", "ops"),
        ("mysql://dba:s3cret-s3cret-1@db", "dba", None),
    ],
)
def test_an_admin_credential_is_rds_json_or_a_url(
    text: str, user: str, database: str | None
) -> None:
    """Both shapes give the user, the password (URL-decoded) and the database if any."""
    login = admin_login(text)
    assert login is not None
    assert (login.username, login.database) == (user, database)
    assert login.password.text().startswith("s3cret")


@pytest.mark.parametrize("text", ["", "dba:pw", '{"username": "dba"}', "postgresql://db/x"])
def test_an_admin_credential_without_user_and_password_is_refused(text: str) -> None:
    """Neither shape: None, which the issuer reports as a configuration error."""
    assert admin_login(text) is None


def test_mysql_is_reached_over_tcp_only() -> None:
    """A socket directory is a PostgreSQL host only: PyMySQL would try it as a TCP name."""
    from providers.databases.mysql import MySqlPasswordConfig

    with pytest.raises(ValidationError, match="over TCP only"):
        MySqlPasswordConfig.model_validate({**BASE, "host": "/var/run/mysqld"})
    assert _config(host="/var/run/postgresql").tls_mode is TlsMode.PREFER
