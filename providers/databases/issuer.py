"""The database password issuers' shared behaviour: two strategies over one :class:`Accounts`.

A database password is a value until the server is told of it, so
:meth:`DatabasePasswordIssuer.mint` only draws it; the server learns it
through the issuer's own target, :class:`AccountPassword`, which the engine
writes first, once the store holds the value as pending. A crash anywhere
therefore leaves the server holding either the current credential or one a
store version holds, from which the next run goes on; a rollback restores
the target as it restores every target (invariant 7 of docs/design.md).

- ``single-user``: the one user gets the new password; nothing is left to
  revoke (the credential has no ref), and a rollback puts the old password
  back.
- ``alternating-users``: the user consumers do not hold (the one the
  store's current value does not name, and not one still in grace) gets the
  new password; its name is the credential's ref. At the grace deadline the
  other user is revoked: a random password nobody holds, or locked.

docs/providers/databases.md draws both on a timeline.
"""

from __future__ import annotations

import os
import re
import secrets
import string
from collections.abc import Collection, Mapping
from typing import Any, ClassVar

import structlog

from providers.databases.accounts import Accounts
from providers.databases.policy import ACCOUNT_NAME, DatabasePasswordConfig, RevokeBy, Strategy
from providers.databases.value import Login, admin_login, parse, render
from rotator.adapters import Credential, Issuer, Permission, Runtime, SecretValue, Target
from rotator.errors import (
    ConfigError,
    ConflictError,
    LimitExceededError,
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    VerificationError,
)

log = structlog.get_logger("rotator.providers.databases")

#: Characters of a minted password: letters and digits read the same in every
#: driver, URL and shell a consumer may pass it through.
ALPHABET = string.ascii_letters + string.digits


class DatabasePasswordIssuer(Issuer[DatabasePasswordConfig]):
    """Sets a new password on a database user (or on the idle one of two) through its target."""

    #: The engine's accounts: PostgreSQL roles or MySQL users.
    accounts_class: ClassVar[type[Accounts]]
    docs = "docs/providers/databases.md"
    example: ClassVar[Mapping[str, object]] = {
        "strategy": "alternating-users",
        "host": "db.internal",
        "database": "app",
        "username": "app",
        "admin": {"env": "APP_DB_ADMIN"},
    }

    def __init__(self, config: DatabasePasswordConfig, runtime: Runtime, secret: str) -> None:
        super().__init__(config, runtime, secret)
        #: The refs the engine last said must be kept (prepare): not to be minted for.
        self._kept: frozenset[str] = frozenset()

    @property
    def alternating(self) -> bool:
        """Tell whether the policy alternates two users."""
        return self.config.strategy is Strategy.ALTERNATING_USERS

    def accounts(self) -> Accounts:
        """Return the server's accounts as the admin sees them (the config read now)."""
        return self.accounts_class(self.config, self.runtime, self.admin)

    def admin(self) -> Login:
        """Read the admin credential from where the policy says it is, afresh.

        Raises:
            ConfigError: the variable is not set, the secret or store has no
                value, or the value is neither the RDS JSON shape nor a URL.
            NotFoundError, PermissionDeniedError, TransientError,
            PermanentError: the store holding it refused or failed the read.
        """
        source = self.config.admin
        if source.env is not None:
            where = f"environment variable {source.env}"
            text = os.environ.get(source.env, "")
            if not text:
                raise ConfigError(f"the admin credential's {where} is not set")
        else:
            if source.secret is not None:
                where = f"secret {source.secret!r}"
                value = self.runtime.read_current(source.secret)
            else:
                assert source.store is not None  # AdminSource holds exactly one
                where = f"store {source.store.describe()}"
                value = self.runtime.read_store(source.store)
            if value is None:
                raise ConfigError(f"the admin credential's {where} has no current value yet")
            text = value.text()
        login = admin_login(text)
        if login is None:
            raise ConfigError(
                f"the admin credential in {where} is neither a JSON object with username "
                "and password nor a URL with both"
            )
        return login

    def live_user(self) -> str | None:
        """Return the user the store's current value names (the one consumers hold), if any.

        Raises:
            ConflictError: with two users, the store holds a current value
                that names none: which user consumers hold cannot be told,
                so neither is touched.
        """
        value = self.runtime.read_current(self.secret)
        if value is None:
            return None
        login = parse(self.config, value)
        if login is None and self.alternating:
            raise ConflictError(
                "the store's current value is not the RDS JSON object naming a user: "
                "which user consumers hold cannot be told (store the original user's "
                "credential in that shape first)",
                provider=self.kind,
                operation="read_current",
            )
        return login.username if login is not None else None

    def next_user(self) -> str:
        """Return the user a new credential is for: with two, the one nobody holds.

        Raises:
            LimitExceededError: both users hold a credential still in use.
        """
        if not self.alternating:
            return self.config.username
        live = self.live_user()
        in_use = self._kept | ({live} if live else set())
        # The clone first: on a policy's first rotation the original user may
        # still be in use with a password rotator never held.
        for user in (self.config.clone_name, self.config.username):
            if user not in in_use:
                return user
        raise LimitExceededError(
            f"both {self.config.username} and {self.config.clone_name} hold a credential in use",
            provider=self.kind,
            operation="mint",
        )

    def fresh_password(self) -> SecretValue:
        """Draw a new password from a CSPRNG."""
        return SecretValue(
            "".join(secrets.choice(ALPHABET) for _ in range(self.config.password_length))
        )

    def permissions(self) -> list[Permission]:
        """Return the grants the admin needs, as SQL statements to run as a superuser.

        The admin's name is read from its environment variable when set
        there; otherwise (another secret) it is written ``rotator_admin``.
        """
        config = self.config
        admin = "rotator_admin"
        if config.admin.env is not None:
            login = admin_login(os.environ.get(config.admin.env, ""))
            if login is not None and re.fullmatch(ACCOUNT_NAME, login.username):
                admin = login.username
        return [
            Permission(
                self.accounts_class.provider,
                tuple(self.accounts_class.grants(admin, config.users)),
                resource=f"{config.host}:{config.server_port}",
                step="propagate: set the new password; revoke: replace the old one",
            )
        ]

    # -- the Issuer role

    def targets(self) -> list[Target[Any]]:
        """Return the server as a target: it learns the new password once the store holds it."""
        return [AccountPassword(self)]

    def ref_of(self, value: SecretValue) -> str | None:
        """Return the user the value names, with two users; with one, None (nothing to revoke)."""
        if not self.alternating:
            return None
        login = parse(self.config, value)
        return login.username if login is not None else None

    def inventory(self) -> list[str]:
        """Return the users that may log in now, with two users; with one, none."""
        if not self.alternating:
            return []
        states = self.accounts().login_states(self.config.users)
        return [user for user, state in states.items() if state]

    def prepare(self, keep: Collection[str]) -> list[str]:
        """Note which users must be kept; refuse if both must (nothing is deleted)."""
        self._kept = frozenset(keep)
        reason = self.blocks(keep)
        if reason is not None:
            raise LimitExceededError(reason, provider=self.kind, operation="prepare")
        return []

    def blocks(self, keep: Collection[str]) -> str | None:
        """Say so when both users of the pair must be kept."""
        if self.alternating and set(self.config.users) <= set(keep):
            return (
                f"both {self.config.username} and {self.config.clone_name} hold a credential "
                "in use; the older one's grace must end first"
            )
        return None

    def mint(self, rotation_id: str) -> Credential:
        """Draw a password for the next user; the server learns it when the target is written."""
        user = self.next_user()
        value = render(self.config, Login(user, self.fresh_password(), self.config.database))
        return Credential(value, user if self.alternating else None)

    def recover(
        self, rotation_id: str, *, known: Collection[str], pending: SecretValue | None
    ) -> Credential | None:
        """Adopt the pending value (told to the server again); without one, void the idle user."""
        if pending is not None:
            # The pending value is the one that must work: tell the server again
            # (idempotent), whatever an earlier write of this rotation set there.
            AccountPassword(self).write(rotation_id, pending)
            return Credential(pending, self.ref_of(pending))
        if self.alternating:
            # Its password may have been set by a target write whose pending
            # version was since discarded: nobody holds it, so nobody may use it.
            try:
                idle = self.next_user()
            except (ConflictError, LimitExceededError):
                return None  # no user can be told idle: then no target write ran either
            self.revoke(idle)
        return None

    def verify(self, credential: Credential) -> None:
        """Log in as the credential's user with its password, on a new connection."""
        login = parse(self.config, credential.value)
        if login is None or login.username not in self.config.users:
            raise VerificationError(
                f"the value is not a credential of {', '.join(self.config.users)}",
                provider=self.kind,
                operation="verify",
            )
        self.accounts().try_login(Login(login.username, login.password, self.config.database))

    def works(self, login: Login) -> bool:
        """Tell whether the server lets ``login`` in now.

        Raises:
            TransientError: the server did not answer; retry later.
            PermanentError: any other failure than a refused login.
        """
        try:
            self.accounts().try_login(login)
        except VerificationError:
            return False
        return True

    def revoke(self, ref: str) -> None:
        """Revoke the user a rotation left behind: a password nobody holds, or locked."""
        if ref not in self.config.users:
            # The policy's users changed since (a renamed user or clone): that
            # account is no longer rotator's to touch, and waiting will not change it.
            log.warning("old user is not the policy's any more: left as it is", user=ref)
            return
        self._refuse_live(ref, "revoke")
        if self.accounts().login_states([ref]).get(ref) is not True:
            return  # absent, or locked already
        if self.config.revoke_by is RevokeBy.LOCK:
            self.accounts().lock(ref)
        else:
            self.accounts().set_password(ref, self.fresh_password(), unlock=False)
        log.info("revoked database user", user=ref, by=self.config.revoke_by.value)

    def delete(self, ref: str) -> None:
        """Lock a revoked user (a rollback's): it keeps its grants for the next swap.

        Reached only from a rollback: the issuer revokes in one stage, so the
        engine deletes nothing at a grace's end.
        """
        self._refuse_live(ref, "delete")
        if self.accounts().login_states([ref]).get(ref):
            self.accounts().lock(ref)

    def _refuse_live(self, ref: str, operation: str) -> None:
        """Refuse to touch a user that is not the policy's, or that consumers hold now."""
        if ref not in self.config.users:
            raise ConflictError(
                f"{ref!r} is not a user of this policy ({', '.join(self.config.users)})",
                provider=self.kind,
                operation=operation,
            )
        if ref == self.live_user():
            raise ConflictError(
                f"{ref} holds the current credential; it is not revoked",
                provider=self.kind,
                operation=operation,
            )


class AccountPassword(Target[DatabasePasswordConfig]):
    """The database server as a target: writing the value sets the user's password there."""

    kind = "database-account"

    def __init__(self, issuer: DatabasePasswordIssuer) -> None:
        super().__init__(issuer.config, issuer.runtime, issuer.secret)
        self.issuer = issuer

    def describe(self) -> str:
        """Name the server and the user(s), as ``postgresql:app|app_clone@db:5432``."""
        config = self.issuer.config
        provider = self.issuer.accounts_class.provider
        return f"{provider}:{'|'.join(config.users)}@{config.host}:{config.server_port}"

    def write(self, rotation_id: str, value: SecretValue) -> None:
        """Set the value's password on its user (creating the clone with the original's grants)."""
        config = self.issuer.config
        login = parse(config, value)
        if login is None or login.username not in config.users:
            raise PermanentError(
                f"the pending value is not a credential of {', '.join(config.users)}",
                provider=self.issuer.kind,
                operation="set_password",
            )
        if self.issuer.alternating and login.username == self.issuer.live_user():
            raise ConflictError(
                f"{login.username} holds the current credential; a rotation sets the other user",
                provider=self.issuer.kind,
                operation="set_password",
            )
        accounts = self.issuer.accounts()
        if accounts.login_states([login.username]).get(login.username) is None:
            if not (self.issuer.alternating and login.username == config.clone_name):
                raise NotFoundError(
                    f"user {login.username} does not exist at {config.host}",
                    provider=self.issuer.kind,
                    operation="set_password",
                )
            accounts.create_clone(login.username, config.username, login.password)
            log.info("created database user", user=login.username, like=config.username)
            return
        accounts.set_password(login.username, login.password, unlock=self.issuer.alternating)

    def restore(
        self, rotation_id: str, *, written: SecretValue | None, previous: SecretValue | None
    ) -> None:
        """One user: put the previous password back. Two: revoke the user just set."""
        config = self.issuer.config
        if self.issuer.alternating:
            new = parse(config, written) if written is not None else None
            if (
                new is not None
                and new.username in config.users
                and new.username != self.issuer.live_user()
            ):
                self.issuer.revoke(new.username)
            return
        old = parse(config, previous) if previous is not None else None
        if old is not None:
            self.issuer.accounts().set_password(config.username, old.password, unlock=False)
            return
        # The password before rotator's first is unknown. If the server holds
        # the new one, discarding the pending version would leave it held by no
        # store version (invariant 7 of docs/design.md): stop, keep the version.
        new = parse(config, written) if written is not None else None
        if new is None or not self.issuer.works(new):
            log.warning("no previous password to restore", user=config.username)
            return
        raise PermanentError(
            f"{config.username} holds the new password and no previous one is known to "
            "put back: the pending version keeps it; log in with it, or set one by hand",
            provider=self.issuer.kind,
            operation="restore",
        )

    def check(self) -> str:
        """Log in as the admin and name every privilege it lacks; change nothing."""
        config = self.issuer.config
        accounts = self.issuer.accounts()
        # First: reading whether the user exists may itself be a privilege the admin lacks.
        missing = accounts.missing_privileges(config.users)
        admin = self.issuer.admin().username
        if missing:
            raise PermissionDeniedError(
                f"admin {admin} lacks: " + "; ".join(missing),
                provider=self.issuer.kind,
                operation="check",
            )
        states = accounts.login_states(config.users)
        if states.get(config.username) is None:
            raise NotFoundError(
                f"user {config.username} does not exist at {config.host}",
                provider=self.issuer.kind,
                operation="check",
            )
        return f"admin {admin} may set the passwords of {', '.join(config.users)}"
