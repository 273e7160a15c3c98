"""The vault's contents: secrets, their versions, and the soft-deleted ones, behind one lock."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

from rotator.sandbox.azure.protocol import (
    bad_parameter,
    deleted_but_recoverable,
    deleted_secret_not_found,
    new_version_id,
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
class Attributes:
    """The settable attributes of a write; None means "not given"."""

    enabled: bool | None = None
    nbf: int | None = None
    exp: int | None = None


class SecretStore:
    """Every secret of the vault. Names are case-insensitive, as in Key Vault."""

    def __init__(self, soft_delete: bool, recoverable_days: int) -> None:
        self.soft_delete = soft_delete
        self.recoverable_days = recoverable_days
        self.lock = threading.RLock()
        self._active: dict[str, Secret] = {}
        self._deleted: dict[str, DeletedSecret] = {}

    @property
    def recovery_level(self) -> str:
        """``attributes.recoveryLevel`` for this vault's configuration (purge protection off)."""
        if not self.soft_delete:
            return "Purgeable"
        if self.recoverable_days == 90:
            return "Recoverable+Purgeable"
        return "CustomizedRecoverable+Purgeable"

    def sweep(self, now: int) -> None:
        """Purge the deleted secrets whose scheduled purge date has come, as Key Vault does."""
        with self.lock:
            for key in [k for k, d in self._deleted.items() if d.scheduled_purge_date <= now]:
                del self._deleted[key]

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

    def delete(self, name: str, now: int) -> tuple[Secret, DeletedSecret | None]:
        """Delete every version; keep them recoverable when soft delete is on."""
        check_name(name)
        key = name.lower()
        with self.lock:
            secret = self._active.pop(key, None)
            if secret is None:
                raise secret_not_found(name)
            if not self.soft_delete:
                return secret, None
            deleted = DeletedSecret(
                secret=secret,
                deleted_date=now,
                scheduled_purge_date=now + self.recoverable_days * DAY,
            )
            self._deleted[key] = deleted
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
        """A soft-deleted secret."""
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
        """Remove a soft-deleted secret for good."""
        with self.lock:
            self.get_deleted(name)
            del self._deleted[name.lower()]

    def recover(self, name: str) -> Secret:
        """Bring a soft-deleted secret back with all its versions."""
        with self.lock:
            deleted = self.get_deleted(name)
            key = name.lower()
            del self._deleted[key]
            self._active[key] = deleted.secret
            return deleted.secret
