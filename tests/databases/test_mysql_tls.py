"""The policy's TLS mode, as PyMySQL is told it, against the real MariaDB speaking TLS.

The user logging in is created ``REQUIRE SSL``: a login that succeeds went
over TLS. The server's certificate names ``localhost`` only, so a check of
the name fails for 127.0.0.1 while a check of the CA alone passes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from providers.databases.mysql import MySqlPasswordConfig, MySqlPasswordIssuer
from providers.databases.value import Login
from rotator.adapters import Runtime, SecretValue
from rotator.errors import ConfigError, PermanentError, VerificationError
from tests.conftest import FakeClock
from tests.databases.mariadb import MariaDb
from tests.databases.mysql_users import Users


@pytest.fixture
def users(mariadb: MariaDb, monkeypatch: pytest.MonkeyPatch) -> Iterator[Users]:
    """Fresh users, and the admin credential in APP_DB_ADMIN."""
    monkeypatch.setenv("APP_DB_ADMIN", mariadb.admin_url())
    with Users(mariadb) as made:
        yield made


@pytest.fixture
def login(users: Users) -> Login:
    """The original user, which the server lets in over TLS only."""
    password = users.create(users.user)
    users.sql("ALTER USER %s@'%%' REQUIRE SSL", users.user)
    return Login(users.user, SecretValue(password), users.database)


def _login(users: Users, login: Login, host: str = "127.0.0.1", **tls: Any) -> None:
    """Log in as the original user through the issuer's accounts, with this TLS policy."""
    clock = FakeClock()
    config = MySqlPasswordConfig.model_validate(
        {
            "host": host,
            "port": users.port,
            "database": users.database,
            "username": users.user,
            "admin": {"env": "APP_DB_ADMIN"},
            "tls": tls,
        }
    )
    runtime = Runtime(clock=clock, sleep=clock.sleep, read_current=lambda name: None)
    accounts = MySqlPasswordIssuer(config, runtime, "app/db").accounts()
    accounts.try_login(login)


@pytest.mark.parametrize("mode", ["prefer", "require"])
def test_prefer_and_require_use_tls_without_checking_the_certificate(
    users: Users, login: Login, mode: str
) -> None:
    """The certificate is of a CA the client does not know: still a TLS login."""
    _login(users, login, mode=mode)


def test_disable_sends_no_tls(users: Users, login: Login) -> None:
    """Without TLS the user required to use it is refused: the mode was obeyed."""
    with pytest.raises(VerificationError, match="refused the login"):
        _login(users, login, mode="disable")


def test_verify_ca_checks_the_ca_and_not_the_name(
    users: Users, login: Login, mariadb: MariaDb
) -> None:
    """The server's CA passes though the name (localhost) is not the host (127.0.0.1)."""
    _login(users, login, mode="verify-ca", ca_file=str(mariadb.ca_file))


def test_verify_full_checks_the_name_too(users: Users, login: Login, mariadb: MariaDb) -> None:
    """The same CA, but the certificate does not name 127.0.0.1: refused; localhost passes."""
    with pytest.raises(PermanentError, match=r"TLS to 127\.0\.0\.1:\d+ failed"):
        _login(users, login, mode="verify-full", ca_file=str(mariadb.ca_file))
    _login(users, login, host="localhost", mode="verify-full", ca_file=str(mariadb.ca_file))


@pytest.mark.parametrize("mode", ["verify-ca", "verify-full"])
def test_a_certificate_of_another_ca_is_refused(
    users: Users, login: Login, tmp_path: Path, mode: str
) -> None:
    """Verification against a CA that did not sign the server's certificate fails, as TLS."""
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with pytest.raises(PermanentError, match=r"TLS to \S+ failed") as caught:
        _login(users, login, host="localhost", mode=mode, ca_file=str(other))
    assert not isinstance(caught.value, VerificationError)


def test_an_unreadable_ca_file_is_a_configuration_error(
    users: Users, login: Login, tmp_path: Path
) -> None:
    """A missing bundle, or one that holds no certificate, is named; nothing is sent."""
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    for path in (tmp_path / "missing.pem", garbage):
        with pytest.raises(ConfigError, match=f"tls.ca_file {path}: not a readable PEM bundle"):
            _login(users, login, mode="verify-ca", ca_file=str(path))
