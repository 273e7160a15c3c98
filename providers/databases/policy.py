"""The policy fields of the database password issuers, shared by PostgreSQL and MySQL/MariaDB.

docs/providers/databases.md explains each; the validators here refuse what
cannot work, so a policy never fails at its first rotation for a reason its
file already showed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from rotator.adapters import Duration, ProviderConfig, StoreRef

#: An account name rotator quotes as an identifier; kept plain, so it reads the
#: same in SQL, in logs and in the stored value (no ``$``: it would end the
#: dollar quote of the PostgreSQL permissions script).
ACCOUNT_NAME = r"^[A-Za-z_][A-Za-z0-9_.-]*$"


class Strategy(StrEnum):
    """How the consumers' credential changes (docs/providers/databases.md#strategies)."""

    #: A new password on the one user: new connections need it at once.
    SINGLE_USER = "single-user"
    #: Two users take turns: the one consumers do not hold gets the new password.
    ALTERNATING_USERS = "alternating-users"


class RevokeBy(StrEnum):
    """How the old user of an alternating pair is revoked at the end of its grace."""

    #: Its password becomes a random one nobody holds (it keeps LOGIN and its grants).
    RANDOM_PASSWORD = "random-password"  # noqa: S105 (a mode's name, not a password)
    #: It may no longer log in at all (PostgreSQL ``NOLOGIN``, MySQL ``ACCOUNT LOCK``).
    LOCK = "lock"


class TlsMode(StrEnum):
    """How the connection to the server is protected, in libpq's words (``sslmode``)."""

    DISABLE = "disable"
    PREFER = "prefer"
    REQUIRE = "require"
    VERIFY_CA = "verify-ca"
    VERIFY_FULL = "verify-full"


class Tls(ProviderConfig):
    """TLS to the server: by default verify-full, except to a loopback host."""

    #: ``None``: ``verify-full`` for a remote host or with ``ca_file``, else (a
    #: loopback host) ``prefer``.
    mode: TlsMode | None = None
    #: The CA bundle the server's certificate is checked with (default: the system's).
    ca_file: Path | None = None

    @model_validator(mode="after")
    def _ca_needs_verification(self) -> Tls:
        if self.ca_file is not None and self.mode in (
            TlsMode.DISABLE,
            TlsMode.PREFER,
            TlsMode.REQUIRE,
        ):
            raise ValueError(
                f"ca_file is not read with mode {self.mode}: use verify-full (or verify-ca)"
            )
        if self.mode is TlsMode.VERIFY_CA and self.ca_file is None:
            raise ValueError("mode verify-ca needs ca_file (the system's CAs need verify-full)")
        return self


class AdminSource(ProviderConfig):
    """Where the admin credential is: a variable, another managed secret, or a store.

    The credential itself (a JSON object with ``username`` and ``password``,
    in the AWS RDS shape, or a URL ``scheme://user:password@host/db``) is
    never in the policy.
    """

    env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    secret: str | None = Field(default=None, min_length=1)
    #: A store block, as a policy's ``store:`` is written: kept there by hand.
    store: StoreRef | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> AdminSource:
        given = [name for name in ("env", "secret", "store") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of env (a variable's name), secret (a secret's name) "
                "or store (a store block)"
            )
        if self.env is not None and self.env.startswith("ROTATOR_"):
            raise ValueError(
                f"env {self.env!r}: ROTATOR_ names are rotator's own settings; "
                "name a variable of your own (APP_DB_ADMIN)"
            )
        return self


class DatabasePasswordConfig(ProviderConfig):
    """Policy fields of a database password issuer (``postgresql-password``, ``mysql-password``)."""

    #: What the server calls itself in the stored value's ``engine`` (AWS's words).
    engine: ClassVar[str]
    #: The port when the policy gives none.
    default_port: ClassVar[int]
    #: The longest account name the server takes.
    longest_name: ClassVar[int]

    strategy: Strategy = Strategy.SINGLE_USER
    #: A name, an address, or a socket directory: nothing that could end a SQL comment.
    host: str = Field(pattern=r"^[A-Za-z0-9_.:/%\[\]-]+$")
    port: int | None = Field(default=None, ge=1, le=65535)
    #: The database consumers use: ``dbname`` in the stored value, and where logins are tried.
    database: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.$-]+$")
    #: The consumers' user; with alternating users, the first of the pair.
    username: str = Field(pattern=ACCOUNT_NAME)
    #: The second user of an alternating pair (default ``USERNAME_clone``).
    clone: str | None = Field(default=None, pattern=ACCOUNT_NAME)
    admin: AdminSource
    tls: Tls = Tls()
    connect_timeout: Duration = timedelta(seconds=10)
    revoke_by: RevokeBy = RevokeBy.RANDOM_PASSWORD
    #: ``json``: the AWS RDS object; ``password``: the bare password (a store ``field:``).
    value: Literal["json", "password"] = "json"
    password_length: int = Field(default=32, ge=16, le=64)

    @model_validator(mode="after")
    def _coherent(self) -> DatabasePasswordConfig:
        alternating = self.strategy is Strategy.ALTERNATING_USERS
        if self.clone is not None and not alternating:
            raise ValueError("clone names the second user of strategy alternating-users only")
        if alternating and self.value == "password":
            raise ValueError(
                "strategy alternating-users needs value: json: consumers read which user "
                "is live from the stored value"
            )
        if alternating and self.clone_name == self.username:
            raise ValueError("clone must differ from username")
        for field in ("username", "clone_name"):
            name: str = getattr(self, field)
            if len(name) > self.longest_name:
                raise ValueError(
                    f"{field.removesuffix('_name')} {name!r} is longer than the "
                    f"{self.longest_name} characters the server takes"
                )
        if not 1 <= self.connect_timeout.total_seconds() <= 300:
            raise ValueError("connect_timeout must be between 1s and 300s")
        return self

    @property
    def clone_name(self) -> str:
        """Return the second user of an alternating pair."""
        return self.clone or f"{self.username}_clone"

    @property
    def users(self) -> tuple[str, ...]:
        """Return the users rotator sets passwords on: one, or the alternating pair."""
        if self.strategy is Strategy.ALTERNATING_USERS:
            return (self.username, self.clone_name)
        return (self.username,)

    @property
    def server_port(self) -> int:
        """Return the port to connect to."""
        return self.port or self.default_port

    @property
    def tls_mode(self) -> TlsMode:
        """Return the TLS mode: the policy's, or verify-full unless the host is loopback.

        A ``ca_file`` without a mode means verify-full on any host: a CA given
        is a CA to check against.
        """
        if self.tls.mode is not None:
            return self.tls.mode
        if self.tls.ca_file is not None:
            return TlsMode.VERIFY_FULL
        return TlsMode.PREFER if is_loopback(self.host) else TlsMode.VERIFY_FULL

    def secrets_read(self) -> Mapping[str, str]:
        """Name the secret holding the admin credential, if the policy says it is one."""
        return {"admin.secret": self.admin.secret} if self.admin.secret else {}


def is_loopback(host: str) -> bool:
    """Tell whether ``host`` is this machine (a name, an address, or a socket directory)."""
    if host == "localhost" or host.startswith("/"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
