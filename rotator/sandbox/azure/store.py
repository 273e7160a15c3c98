"""The vault's contents: secrets, their versions, and the soft-deleted ones, behind one lock.

Deletes and recoveries take time, as in Key Vault: the vault accepts them at once, finishes
them later (a :class:`Transition` due at an instant of the emulator's clock), and answers the
in-between states the way the service does. :meth:`SecretStore.sweep`, run before every
request, finishes what is due.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

from rotator.sandbox.azure.protocol import (
    bad_parameter,
    being_deleted,
    being_recovered,
    deleted_but_recoverable,
    deleted_secret_not_found,
    new_version_id,
    purge_protected,
    secret_disabled,
    secret_not_found,
)

# Object names: 1-127 characters of 0-9, a-z, A-Z and "-" (about-keys-secrets-certificates.md).
_NAME = re.compile(r"[0-9a-zA-Z-]{1,127}")
DAY = 86400


def check_name(name: str) -> None:
    """Refuse a name Key Vault would not accept, with the service's 400 text."""
    if not _NAME.fullmatch(name):
        raise bad_parameter(f"The request URI contains an invalid name: {name}")


@dataclass
class SecretVersion:
    """One version of a secret: its value and its attributes (times are Unix seconds)."""

    version: str
    value: str
    content_type: str | None
    tags: dict[str, str] | None
    enabled: bool
    nbf: int | None
    exp: int | None
    created: int
    updated: int


@dataclass
class Secret:
    """A secret: the name as first written and its versions, the newest being current."""

    name: str
    versions: dict[str, SecretVersion] = field(default_factory=dict)
    latest: str = ""

    def current(self) -> SecretVersion:
        """The latest version (what ``GET /secrets/{name}`` returns)."""
        return self.versions[self.latest]


@dataclass
class DeletedSecret:
    """A soft-deleted secret waiting for recovery, purge, or its scheduled purge date."""

    secret: Secret
    deleted_date: int
    scheduled_purge_date: int


@dataclass
class Transition:
    """A delete or a recovery the vault has accepted but not finished; it ends at ``due``."""

    deleted: DeletedSecret
    #: Unix seconds (with their fraction) on the emulator clock.
    due: float


@dataclass
class Attributes:
    """The settable attributes of a write; None means "not given"."""

    enabled: bool | None = None
    nbf: int | None = None
    exp: int | None = None


class SecretStore:
    """Every secret of the vault. Names are case-insensitive, as in Key Vault.

    A name is in at most one of: the active secrets, the deletions under way, the deleted
    secrets (a recovery under way keeps its name there until it ends, as Key Vault keeps
    answering ``GET /deletedsecrets/{name}`` meanwhile).
    """

    def __init__(
        self,
        soft_delete: bool,
        recoverable_days: int,
        *,
        purge_protection: bool = False,
        delete_delay: float = 0.0,
        recover_delay: float = 0.0,
    ) -> None:
        self.soft_delete = soft_delete
        self.recoverable_days = recoverable_days
        self.purge_protection = purge_protection
        self.delete_delay = delete_delay
        self.recover_delay = recover_delay
        self.lock = threading.RLock()
        self._active: dict[str, Secret] = {}
        self._deleted: dict[str, DeletedSecret] = {}
        self._deleting: dict[str, Transition] = {}
        self._recovering: dict[str, Transition] = {}

    @property
    def recovery_level(self) -> str:
        """``attributes.recoveryLevel`` for this vault's configuration."""
        if not self.soft_delete:
            return "Purgeable"
        # Key Vault's DeletionRecoveryLevel: "Customized" for a retention under 90 days,
        # "+Purgeable" unless purge protection is on.
        level = "Recoverable" if self.recoverable_days == 90 else "CustomizedRecoverable"
        return level if self.purge_protection else level + "+Purgeable"

    def sweep(self, instant: float) -> None:
        """Finish the deletes and recoveries due by ``instant``, then purge what is due.

        ``instant`` is the emulator clock in Unix seconds. A deleted secret is purged once the
        clock reaches its scheduled purge date, as Key Vault does (unless it is being
        recovered).
        """
        with self.lock:
            for key, transition in list(self._deleting.items()):
                if transition.due <= instant:
                    del self._deleting[key]
                    self._deleted[key] = transition.deleted
            for key, transition in list(self._recovering.items()):
                if transition.due <= instant:
                    del self._recovering[key]
                    self._deleted.pop(key, None)
                    self._active[key] = transition.deleted.secret
            due = [
                key
                for key, deleted in self._deleted.items()
                if deleted.scheduled_purge_date <= instant and key not in self._recovering
            ]
            for key in due:
                del self._deleted[key]

    def _check_settled(self, key: str) -> None:
        """Refuse a change to a name whose delete or recovery is under way (409, as Key Vault)."""
        if key in self._deleting:
            raise being_deleted()
        if key in self._recovering:
            raise being_recovered()

    # -- secrets

    def set(
        self,
        name: str,
        value: str,
        content_type: str | None,
        tags: dict[str, str] | None,
        attributes: Attributes,
        now: int,
    ) -> tuple[Secret, SecretVersion]:
        """Write a new version (always a new one) and make it current."""
        check_name(name)
        key = name.lower()
        with self.lock:
            self._check_settled(key)
            if key in self._deleted:
                raise deleted_but_recoverable(self._deleted[key].secret.name)
            secret = self._active.get(key)
            if secret is None:
                secret = Secret(name=name)
                self._active[key] = secret
            version = SecretVersion(
                version=new_version_id(),
                value=value,
                content_type=content_type,
                tags=tags,
                enabled=True if attributes.enabled is None else attributes.enabled,
                nbf=attributes.nbf,
                exp=attributes.exp,
                created=now,
                updated=now,
            )
            secret.versions[version.version] = version
            secret.latest = version.version
            return secret, version

    def get(
        self, name: str, version: str | None, *, for_value: bool
    ) -> tuple[Secret, SecretVersion]:
        """A version (the latest when ``version`` is None); 403 if disabled and ``for_value``."""
        check_name(name)
        with self.lock:
            secret = self._active.get(name.lower())
            if secret is None:
                raise secret_not_found(name if version is None else f"{name}/{version}")
            if version is None:
                found = secret.current()
            else:
                found_version = secret.versions.get(version.lower())
                if found_version is None:
                    raise secret_not_found(f"{name}/{version}")
                found = found_version
            if for_value and not found.enabled:
                raise secret_disabled()
            return secret, found

    def update(
        self,
        name: str,
        version: str | None,
        content_type: str | None,
        tags: dict[str, str] | None,
        attributes: Attributes,
        now: int,
    ) -> tuple[Secret, SecretVersion]:
        """Change a version's attributes, tags or content type (None leaves a field as it is)."""
        with self.lock:
            secret, found = self.get(name, version, for_value=False)
            if attributes.enabled is not None:
                found.enabled = attributes.enabled
            if attributes.nbf is not None:
                found.nbf = attributes.nbf
            if attributes.exp is not None:
                found.exp = attributes.exp
            if content_type is not None:
                found.content_type = content_type
            if tags is not None:
                found.tags = tags
            found.updated = now
            return secret, found

    def delete(self, name: str, now: int, instant: float) -> tuple[Secret, DeletedSecret | None]:
        """Delete every version; keep them recoverable when soft delete is on.

        The secret leaves the active ones at once; with soft delete it shows among the deleted
        ones only ``delete_delay`` seconds after ``instant`` (Key Vault answers 404 there
        meanwhile, and the SDK's delete poller waits for a 200).
        """
        check_name(name)
        key = name.lower()
        with self.lock:
            secret = self._active.pop(key, None)
            if secret is None:
                # Also for a name whose delete is under way: it is no longer an active secret
                # (an assumption; Key Vault's answer to a second delete was not seen).
                raise secret_not_found(name)
            if not self.soft_delete:
                return secret, None
            deleted = DeletedSecret(
                secret=secret,
                deleted_date=now,
                scheduled_purge_date=now + self.recoverable_days * DAY,
            )
            self._deleting[key] = Transition(deleted, instant + self.delete_delay)
            return secret, deleted

    def list_active(self) -> list[Secret]:
        """The secrets that are not deleted, in Key Vault's order (upper-cased name)."""
        with self.lock:
            return sorted(self._active.values(), key=lambda s: s.name.upper())

    def list_versions(self, name: str) -> tuple[Secret, list[SecretVersion]]:
        """A secret and its versions by version id; none for an unknown name (as Key Vault)."""
        check_name(name)
        with self.lock:
            secret = self._active.get(name.lower())
            if secret is None:
                return Secret(name=name), []
            return secret, sorted(secret.versions.values(), key=lambda v: v.version)

    # -- deleted secrets

    def get_deleted(self, name: str) -> DeletedSecret:
        """A soft-deleted secret (also while it is being recovered; not while being deleted)."""
        check_name(name)
        with self.lock:
            deleted = self._deleted.get(name.lower())
            if deleted is None:
                raise deleted_secret_not_found(name)
            return deleted

    def list_deleted(self) -> list[DeletedSecret]:
        """The soft-deleted secrets, ordered like the active ones."""
        with self.lock:
            return sorted(self._deleted.values(), key=lambda d: d.secret.name.upper())

    def purge(self, name: str) -> None:
        """Remove a soft-deleted secret for good (refused with purge protection)."""
        key = name.lower()
        with self.lock:
            # A purge too soon after a delete is 409 ObjectIsBeingDeleted (recorded); the order
            # of the checks after that (404 before the purge-protection 403) is an assumption.
            self._check_settled(key)
            self.get_deleted(name)
            if self.purge_protection:
                raise purge_protected()
            del self._deleted[key]

    def recover(self, name: str, instant: float) -> Secret:
        """Bring a soft-deleted secret back with all its versions, ``recover_delay`` from now.

        Until then ``GET /secrets/{name}`` stays 404 (the SDK's recover poller waits for a
        200) and the deleted entry stays where it was.
        """
        key = name.lower()
        with self.lock:
            self._check_settled(key)
            deleted = self.get_deleted(name)
            self._recovering[key] = Transition(deleted, instant + self.recover_delay)
            return deleted.secret
