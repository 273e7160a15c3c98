"""Store ``azure-keyvault``: an Azure Key Vault secret, with the pending value kept aside.

Every ``set_secret`` creates a new version that is the secret's *latest* at
once, and consumers read the latest, so a pending value must never be
written to the secret before it is verified. The store keeps it in a
*companion* secret instead, ``{name}{pending_suffix}`` (``NAME--pending``):

- ``put_pending`` sets the companion with the tags ``rotator-rotation-id``,
  ``rotator-secret`` (the policy's name) and ``rotator-base-version`` (the
  secret's latest version at that moment, ``none`` if it has none). The id
  returned is the companion's version. A mapping value is stored as JSON
  with content type ``application/json``, a string as is.
- ``promote`` checks that the secret's latest version is still the base
  (Key Vault has no check-and-set, so this is how a concurrent writer is
  detected: their value stays, ``ConflictError``), then sets the pending
  value on the secret with the tags ``rotator-rotation-id`` and
  ``rotator-previous-version`` and ``expires_on`` (the engine's next due
  time plus the grace, or ``now + expires_after``), and deletes the
  companion (and purges it, with ``purge_pending``). Other tags of the
  replaced version are carried over; tags live per version in Key Vault.
  A writer landing between that check and the set (milliseconds) cannot be
  detected: Key Vault offers nothing to close that window.
- ``retire`` disables the old version (never the latest): reading it then
  fails with 403 ``SecretDisabled``, but it is not deleted, so an operator
  can enable it again. Used as a replica (a target), the secret is retired
  the same way at revoke: the version the rotation's write replaced, found
  by its tags (``replaced_version``).

A companion left soft-deleted (``purge_pending`` off, a vault with purge
protection, or a purge that failed) is recovered before it is reused. In a
vault with purge protection (the deleted companion's recovery level lacks
``Purgeable``) no purge is attempted: that is logged once per removal. Only a
deleted companion seen to carry the rotation's tag is purged. A soft-deleted
*secret* is never recovered on the operator's behalf: the error names the
``az`` command.

Key Vault finishes a delete or a recovery seconds after accepting it. The
store polls until it is done (as the SDK's pollers do, but sleeping through
``runtime.sleep`` and timing out on ``runtime.clock``, at most
``POLL_TIMEOUT``) only where the next call needs it done: before purging a
deleted companion and before writing a recovered one. A delete no purge
follows is not waited for: a write meanwhile gets Key Vault's 409. A wait that
times out is a ``TransientError``, and so is that 409 for a name whose delete
or recovery is still under way: the engine retries the step, which then finds
the delete or the recovery complete.

The companion holds the new credential (and, when it cannot be purged, the
older pending values in its versions): give it the same protection as the
secret. An RBAC assignment at the vault scope covers both; one at the
secret's scope must be repeated for the companion (``rotator permissions``
names both scopes, each with only what it needs).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, ClassVar, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from providers.azure.errors import (
    SoftDeletedError,
    azure_errors,
    deleted_but_recoverable,
    recover_command,
    vault_name,
)
from providers.azure.identity import QUOTAS, SETTINGS, secret_client
from providers.transport.failures import defuse
from rotator.adapters import (
    Duration,
    Permission,
    ProviderConfig,
    SecretValue,
    Store,
    Version,
    rates,
)
from rotator.errors import (
    ConflictError,
    NotFoundError,
    PermanentError,
    ProviderError,
    TransientError,
)

if TYPE_CHECKING:
    from azure.keyvault.secrets import (
        DeletedSecret,
        KeyVaultSecret,
        SecretClient,
        SecretProperties,
    )

PROVIDER = "azure-keyvault"
#: Tags rotator writes (on the companion, and on the versions it promotes).
ROTATION_ID = "rotator-rotation-id"
SECRET_NAME = "rotator-secret"  # noqa: S105 (a tag name)
BASE_VERSION = "rotator-base-version"
PREVIOUS_VERSION = "rotator-previous-version"
TAG_PREFIX = "rotator-"
#: ``rotator-base-version`` of a secret that had no version at put_pending.
NO_VERSION = "none"
JSON_CONTENT_TYPE = "application/json"

#: Seconds between two polls of a delete or recover (the SDK's pollers wait as long).
POLL_INTERVAL = 2.0
#: Seconds to wait for a delete or recover to complete before calling it transient.
POLL_TIMEOUT = 120.0

NAME_PATTERN = r"^[0-9a-zA-Z-]{1,127}$"
_VERSION = re.compile(r"^[0-9a-zA-Z]{1,64}$")
#: Key Vault's limits on a secret name, a tag value and the tags of a version.
MAX_NAME = 127
MAX_TAG_VALUE = 256
MAX_TAGS = 15

log = logging.getLogger(__name__)

T = TypeVar("T")


class KeyVaultConfig(ProviderConfig):
    """Policy fields of the ``azure-keyvault`` store."""

    #: The vault's URL, ``https://<vault>.vault.azure.net``.
    vault_url: str = Field(min_length=9)
    #: The secret's name in the vault.
    name: str = Field(pattern=NAME_PATTERN)
    #: Appended to ``name`` to name the companion secret holding the pending value.
    pending_suffix: str = Field(default="--pending", pattern=r"^[0-9a-zA-Z-]{1,126}$")
    #: Expiry stamped on a promoted version (``now + expires_after``) when the
    #: engine gives none; the engine's (next due plus grace) takes precedence.
    expires_after: Duration | None = None
    #: Purge the companion after deleting it (needs the purge permission;
    #: refused in a vault with purge protection, which is logged and left).
    purge_pending: bool = True

    @field_validator("vault_url")
    @classmethod
    def _https_vault(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(
                "vault_url must be an https:// URL, such as https://NAME.vault.azure.net"
            )
        if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
            raise ValueError("vault_url must be the vault's address only, without a path or query")
        return f"https://{parts.netloc.lower()}"

    @field_validator("expires_after")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value.total_seconds() <= 0:
            raise ValueError("expires_after must be longer than zero")
        return value

    @model_validator(mode="after")
    def _companion_fits(self) -> KeyVaultConfig:
        if len(self.name) + len(self.pending_suffix) > MAX_NAME:
            raise ValueError(
                f"name + pending_suffix ({self.name}{self.pending_suffix}) is longer than "
                f"the {MAX_NAME} characters Key Vault allows in a secret name"
            )
        return self


def encode(value: SecretValue) -> tuple[str, str | None]:
    """Return the text to store and its content type (JSON for a mapping, none for a string)."""
    if value.is_mapping():
        return value.text(), JSON_CONTENT_TYPE
    return value.text(), None


def decode(text: str | None, content_type: str | None) -> SecretValue:
    """Wrap a stored value: JSON text of a flat string map (content type JSON) is a mapping."""
    raw = text or ""
    if (content_type or "").split(";")[0].strip().lower() == JSON_CONTENT_TYPE:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and all(isinstance(v, str) for v in parsed.values()):
            return SecretValue({str(k): v for k, v in parsed.items()})
    return SecretValue(raw)


def _tags(item: object) -> dict[str, str]:
    """Return the tags of a secret, its properties or a deleted secret (``{}`` for None)."""
    if item is None:
        return {}
    props = getattr(item, "properties", item)
    tags = getattr(props, "tags", None)
    return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, Mapping) else {}


def _recovery_level(deleted: DeletedSecret) -> str | None:
    """Return the deleted secret's recovery level as Key Vault spells it (``None`` if not given)."""
    level = deleted.properties.recovery_level
    # The SDK gives its DeletionRecoveryLevel enum for a level it knows, the text otherwise.
    return None if level is None else str(getattr(level, "value", level))


def _purgeable(deleted: DeletedSecret) -> bool:
    """Tell whether Key Vault lets the deleted secret be purged, from its recovery level.

    Purge protection drops ``Purgeable`` from the level (``Recoverable``,
    ``CustomizedRecoverable``, ``...+ProtectedSubscription``). A level Key Vault did
    not give counts as purgeable: the purge's own answer then tells.
    """
    level = _recovery_level(deleted)
    return level is None or "Purgeable" in level.split("+")


def _aware(when: datetime | None) -> datetime | None:
    if when is None:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class KeyVaultStore(Store[KeyVaultConfig]):
    """Keeps a credential in one Key Vault secret; pending values in a companion secret."""

    provider = PROVIDER
    Config = KeyVaultConfig
    requires = ("azure-keyvault-secrets", "azure-identity")
    extra = "azure"
    example: ClassVar[Mapping[str, object]] = {
        "vault_url": "https://app-prod.vault.azure.net",
        "name": "app-db-password",
    }
    docs = "docs/providers/azure.md#store-azure-keyvault"
    quotas = rates(QUOTAS)
    settings = SETTINGS

    # -- plumbing ---------------------------------------------------------

    @property
    def companion(self) -> str:
        """The name of the companion secret holding the pending value."""
        return self.config.name + self.config.pending_suffix

    @property
    def _vault(self) -> str:
        return vault_name(self.config.vault_url)

    def _call(self, operation: str, name: str, fn: Callable[[SecretClient], T]) -> T:
        """Run ``fn(client)`` with Azure errors translated; ``name`` is the secret concerned."""
        with azure_errors(PROVIDER, f"{operation} {name}", vault=self._vault, secret=name):
            return fn(secret_client(self.runtime, self.config.vault_url))

    def _get(self, name: str) -> KeyVaultSecret | None:
        """Return the latest version of secret ``name`` with its value; ``None`` if absent."""
        try:
            return self._call("get_secret", name, lambda c: c.get_secret(name))
        except NotFoundError:
            return None

    def _is_soft_deleted(self, name: str) -> bool:
        """Tell whether ``name`` is deleted but recoverable (False if that cannot be read)."""
        try:
            self._call("get_deleted_secret", name, lambda c: c.get_deleted_secret(name))
        except TransientError:
            raise
        except PermanentError:
            return False
        return True

    def _latest(self) -> KeyVaultSecret | None:
        """Return the secret's latest version; ``None`` if it has none.

        Raises ``SoftDeletedError`` if the secret is deleted but recoverable.
        """
        latest = self._get(self.config.name)
        if latest is None and self._is_soft_deleted(self.config.name):
            raise deleted_but_recoverable(
                self._vault,
                self.config.name,
                provider=PROVIDER,
                operation=f"get_secret {self.config.name}",
            )
        return latest

    def _set(
        self,
        name: str,
        text: str,
        *,
        content_type: str | None,
        tags: dict[str, str],
        expires_on: datetime | None = None,
    ) -> KeyVaultSecret:
        return self._call(
            "set_secret",
            name,
            lambda c: c.set_secret(
                name, text, content_type=content_type, tags=tags, expires_on=expires_on
            ),
        )

    def _await(
        self, operation: str, done: str, name: str, probe: Callable[[SecretClient], object]
    ) -> None:
        """Poll ``probe`` until Key Vault serves it, sleeping ``POLL_INTERVAL`` between polls.

        Key Vault accepts a delete or a recover at once and finishes it seconds later,
        answering 404 until then (what the SDK's pollers wait on: ``get_deleted_secret``
        after a delete, ``get_secret`` after a recover). The waits go through the runtime,
        so a moved clock ends them early, and no SDK thread is left polling after a timeout.
        A 403 ends the wait, as it ends the SDK's: Key Vault answers 404 to a caller who may
        not read the object until the object is there.

        Raises:
            TransientError: still 404 after ``POLL_TIMEOUT`` seconds of ``runtime.clock``
                (or after as many polls, should that clock not move with the sleeps).
            ProviderError: any other failure of a poll, translated.
        """

        def poll(client: SecretClient) -> None:
            from azure.core.exceptions import HttpResponseError

            try:
                probe(client)
            except HttpResponseError as exc:
                if exc.status_code != 403:
                    raise
                defuse(exc, "HttpResponseError")

        deadline = self.runtime.clock() + timedelta(seconds=POLL_TIMEOUT)
        for _ in range(int(POLL_TIMEOUT // POLL_INTERVAL) + 1):
            try:
                self._call(operation, name, poll)
                return
            except NotFoundError:
                pass
            if self.runtime.clock() >= deadline:
                break
            self.runtime.sleep(POLL_INTERVAL)
        raise TransientError(
            f"secret {name} is not {done} yet after {POLL_TIMEOUT:g}s; retry later",
            provider=PROVIDER,
            operation=f"{operation} {name}",
        )

    def _delete(self, name: str) -> DeletedSecret | None:
        """Delete secret ``name``; return Key Vault's answer, ``None`` if it was not there.

        Key Vault finishes the delete seconds later; nothing waits for it here: only a
        purge needs it finished (``_purge_ours``), and a write meanwhile is a 409 the
        engine retries.
        """
        try:
            # The poller begin_delete_secret returns only holds the answer; it polls (on its
            # own thread, sleeping for real) only if waited on, which _await does instead.
            return self._call(
                "begin_delete_secret", name, lambda c: c.begin_delete_secret(name).result()
            )
        except NotFoundError:
            return None

    def _purge_ours(self, rotation_id: str, deleted: DeletedSecret, *, wait: bool) -> None:
        """Purge the deleted companion ``deleted`` if it carries ``rotation_id`` and may be purged.

        ``deleted`` is what Key Vault answered about it (the delete, or a read of the
        deleted secret): only what was seen to be this rotation's is purged. With ``wait``
        (the delete was just sent) the purge waits until Key Vault has finished the delete.
        A vault with purge protection is not asked: its answer would be a 403.
        """
        companion = self.companion
        if _tags(deleted).get(ROTATION_ID) != rotation_id:
            return
        if not _purgeable(deleted):
            when = _aware(deleted.scheduled_purge_date)
            log.info(
                "not purging deleted secret %s: the vault has purge protection (recovery "
                "level %s), which keeps it until its scheduled purge%s; the next rotation "
                "recovers and reuses it (set purge_pending: false for this vault)",
                companion,
                _recovery_level(deleted),
                f" on {when.isoformat()}" if when else "",
            )
            return
        if wait:
            self._await(
                "get_deleted_secret",
                "deleted",
                companion,
                lambda c: c.get_deleted_secret(companion),
            )
        self._purge(companion)

    def _purge(self, name: str) -> None:
        """Purge the deleted secret ``name``; a refusal (no purge permission) is only logged.

        Raises:
            TransientError: Key Vault is still deleting (or recovering) it, or failed.
        """
        try:
            self._call("purge_deleted_secret", name, lambda c: c.purge_deleted_secret(name))
        except NotFoundError:
            return  # purged already, or a vault without soft-delete
        except TransientError:
            raise
        except PermanentError as exc:
            log.info(
                "could not purge deleted secret %s (%s); it stays soft-deleted until the "
                "vault's retention period ends, and is recovered if needed again",
                name,
                exc,
            )
            return
        log.info("purged deleted secret %s", name)

    def _recover(self, name: str) -> None:
        """Recover the soft-deleted secret ``name`` and wait for it to be back."""
        self._call(
            "begin_recover_deleted_secret",
            name,
            lambda c: c.begin_recover_deleted_secret(name).result(),
        )
        self._await("get_secret", "recovered", name, lambda c: c.get_secret(name))
        log.info("recovered soft-deleted secret %s to reuse its name", name)

    def _promoted_version(self, rotation_id: str) -> SecretProperties | None:
        """Find the version of the secret tagged with ``rotation_id`` (lists every version)."""
        name = self.config.name
        try:
            versions = self._call(
                "list_properties_of_secret_versions",
                name,
                lambda c: list(c.list_properties_of_secret_versions(name)),
            )
        except NotFoundError:
            return None
        return next((v for v in versions if _tags(v).get(ROTATION_ID) == rotation_id), None)

    def _staged(self, rotation_id: str) -> KeyVaultSecret | None:
        """Return the companion's latest version if it was written for ``rotation_id``."""
        staged = self._get(self.companion)
        if staged is None or _tags(staged).get(ROTATION_ID) != rotation_id:
            return None
        return staged

    def _remove_companion(self, rotation_id: str, staged: KeyVaultSecret | None) -> None:
        """Delete the companion written for this rotation; purge it with ``purge_pending``.

        ``staged`` is the companion's latest version if it carries the
        rotation. Without it, a companion of this rotation that a run deleted
        but did not get to purge is purged now, once Key Vault lists it among
        the deleted secrets with this rotation's tag.
        """
        companion = self.companion
        purge = self.config.purge_pending
        if staged is not None:
            deleted = self._delete(companion)
            if not purge:
                return  # left soft-deleted: the next rotation recovers it
            if deleted is not None:
                if deleted.recovery_id is not None:  # None: no soft delete, gone for good
                    self._purge_ours(rotation_id, deleted, wait=True)
                return
            # Not there to delete: someone deleted it since _staged read it. Purge it
            # only if it is seen among the deleted as this rotation's, as on a replay.
        if not purge:
            return
        try:
            deleted = self._call(
                "get_deleted_secret", companion, lambda c: c.get_deleted_secret(companion)
            )
        except TransientError:
            raise
        except NotFoundError:
            # Never deleted, purged already, or a delete still under way (by a run that
            # gave up waiting, or died). A purge now would tell the last case by its 409,
            # but should the delete complete just before it, it would purge a deleted
            # companion nobody checked the tags of (another rotation's): not purged.
            log.info(
                "not purging %s for rotation %s: it is not among the deleted secrets (never "
                "deleted, purged already, or its delete is still under way: then it stays "
                "soft-deleted until the next rotation recovers it)",
                companion,
                rotation_id,
            )
            return
        except PermanentError:
            return  # not ours to see
        self._purge_ours(rotation_id, deleted, wait=False)

    def _clean_companion(self, rotation_id: str, staged: KeyVaultSecret | None) -> None:
        """Remove the companion after a promote; failures are only logged.

        The promotion has happened: a leftover companion is harmless (the
        next ``put_pending`` writes over it), whereas an error here would
        make the engine roll back a credential that is live.
        """
        try:
            self._remove_companion(rotation_id, staged)
        except ProviderError as exc:
            log.warning(
                "rotation %s is promoted but its pending secret %s could not be removed: %s",
                rotation_id,
                self.companion,
                exc,
            )

    @staticmethod
    def _check_rotation_id(rotation_id: str) -> None:
        if not 0 < len(rotation_id) <= MAX_TAG_VALUE:
            raise PermanentError(
                f"rotation id {rotation_id!r} cannot be a tag value (1 to 256 characters)",
                provider=PROVIDER,
            )

    def _expiry(self, expires_on: datetime | None) -> datetime | None:
        if expires_on is not None:
            return _aware(expires_on)
        after = self.config.expires_after
        if after is not None:
            now = self.runtime.clock()
            return (now if now.tzinfo else now.replace(tzinfo=UTC)) + after
        return None

    # -- Store --------------------------------------------------------------

    def quota_scope(self) -> str:
        """Return the vault's host: Key Vault's service limits are per vault."""
        return urlsplit(self.config.vault_url).netloc.lower()

    def describe(self) -> str:
        """Return ``azure-keyvault:<vault host>/<name>``."""
        host = urlsplit(self.config.vault_url).netloc
        return f"{PROVIDER}:{host}/{self.config.name}"

    def permissions(self) -> list[Permission]:
        """Return the Key Vault data actions each step needs, on the secret or its companion.

        What each SDK call needs (Key Vault's RBAC data actions), and on
        which secret. The secret: ``get_secret`` ``getSecret/action`` (the
        current value, the base version), ``get_deleted_secret``
        ``readMetadata/action`` (is a missing secret soft-deleted),
        ``set_secret`` ``setSecret/action`` and
        ``list_properties_of_secret_versions`` ``readMetadata/action``
        (promote; finding the version a replayed promote, or a replica's
        retire, looks for), ``update_secret_properties`` ``update/action``
        (disable the old version at revoke). The companion: ``get_secret``
        (the pending value), ``set_secret`` and
        ``begin_recover_deleted_secret`` ``recover/action`` (write it, reusing
        one left soft-deleted by purge protection; the wait for the recovery
        reads it with ``get_secret``), ``begin_delete_secret`` ``delete`` and
        the wait for it (``get_deleted_secret``, ``readMetadata/action``)
        (remove it after promote or rollback), ``purge_deleted_secret``
        ``purge/action`` only with ``purge_pending``. Each is its own resource
        (``VAULT_URL/secrets/NAME``), so the secret consumers read is never
        granted a delete or a purge.
        """
        secrets = f"{self.config.vault_url}/secrets/"
        secret, companion = secrets + self.config.name, secrets + self.companion
        steps: list[tuple[str, str, str]] = [
            ("getSecret/action", secret, "store: read current"),
            ("readMetadata/action", secret, "store: read current"),
            ("setSecret/action", secret, "store: promote"),
            ("readMetadata/action", secret, "store: promote"),
            ("update/action", secret, "store: retire"),
            ("readMetadata/action", secret, "store: retire"),
            ("getSecret/action", companion, "store: read pending"),
            ("setSecret/action", companion, "store: write pending"),
            ("recover/action", companion, "store: write pending"),
            ("delete", companion, "store: remove pending"),
        ]
        if self.config.purge_pending:
            # Reading the deleted companion (its delete finished, its tags, its recovery
            # level) serves only the purge.
            steps.append(("readMetadata/action", companion, "store: remove pending"))
            steps.append(("purge/action", companion, "store: remove pending"))
        prefix = "Microsoft.KeyVault/vaults/secrets/"
        return [
            Permission("azure", (prefix + action,), resource=where, step=step)
            for action, where, step in steps
        ]

    def current(self) -> Version | None:
        """Return the secret's latest version, or ``None`` if the secret has no value yet.

        In Key Vault a secret exists only with a value, so "not found" is
        "no value yet": the first promote creates it.

        Raises:
            PermanentError: the secret is deleted but recoverable (the
                message names ``az keyvault secret recover``), or its latest
                version is disabled.
            PermissionDeniedError: the identity may not read the secret.
            TransientError: throttled, 5xx or unreachable; retry later.
        """
        latest = self._latest()
        if latest is None:
            return None
        return Version(
            str(latest.properties.version),
            decode(latest.value, latest.properties.content_type),
            _aware(latest.properties.created_on),
        )

    def last_changed(self) -> datetime | None:
        """Return when the latest version was created (aware UTC); ``None`` if there is none.

        Raises:
            PermanentError: the secret is deleted but recoverable, or its
                latest version is disabled.
            PermissionDeniedError: the identity may not read the secret.
            TransientError: throttled, 5xx or unreachable; retry later.
        """
        latest = self._latest()
        return _aware(latest.properties.created_on) if latest is not None else None

    def put_pending(self, rotation_id: str, value: SecretValue) -> str:
        """Set ``value`` on the companion secret, tagged with the rotation; return its version.

        The secret's latest version is recorded in the companion's
        ``rotator-base-version`` tag for ``promote`` to check. Replaying with
        the same value changes nothing (the companion's latest version
        already carries this rotation). A soft-deleted companion is
        recovered first.

        Raises:
            ConflictError: the companion already holds a different value for
                this rotation.
            PermanentError: the secret is deleted but recoverable, its latest
                version is disabled, or the rotation id cannot be a tag.
            PermissionDeniedError: the identity may not read the secret or
                write, read or recover the companion.
            TransientError: throttled, 5xx, unreachable, or the companion is
                still being recovered; retry later.
        """
        self._check_rotation_id(rotation_id)
        adopted = self._adopt_staged(rotation_id, value)
        if adopted is not None:
            return adopted
        latest = self._latest()
        base = str(latest.properties.version) if latest is not None else NO_VERSION
        text, content_type = encode(value)
        tags = {ROTATION_ID: rotation_id, SECRET_NAME: self.secret[:MAX_TAG_VALUE]}
        tags[BASE_VERSION] = base
        try:
            written = self._set(self.companion, text, content_type=content_type, tags=tags)
        except SoftDeletedError:
            # Left soft-deleted by an earlier promote whose purge was refused.
            self._recover(self.companion)
            adopted = self._adopt_staged(rotation_id, value)
            if adopted is not None:
                return adopted
            written = self._set(self.companion, text, content_type=content_type, tags=tags)
        version = str(written.properties.version)
        log.info(
            "stored the pending value of rotation %s in %s (version %s, base %s)",
            rotation_id,
            self.companion,
            version,
            base,
        )
        return version

    def _adopt_staged(self, rotation_id: str, value: SecretValue) -> str | None:
        """Return the companion's version if it already holds ``value`` for this rotation."""
        staged = self._staged(rotation_id)
        if staged is None:
            return None
        if decode(staged.value, staged.properties.content_type) != value:
            raise ConflictError(
                f"rotation {rotation_id} already stored a different pending value in "
                f"{self.companion}",
                provider=PROVIDER,
                operation=f"set_secret {self.companion}",
            )
        return str(staged.properties.version)

    def pending(self, rotation_id: str) -> SecretValue | None:
        """Return the companion's value if its latest version carries this rotation, else ``None``.

        Raises:
            PermanentError: the companion's latest version is disabled.
            PermissionDeniedError: the identity may not read the companion.
            TransientError: throttled, 5xx or unreachable; retry later.
        """
        staged = self._staged(rotation_id)
        if staged is None:
            return None
        return decode(staged.value, staged.properties.content_type)

    def promote(self, rotation_id: str, *, expires_on: datetime | None = None) -> str | None:
        """Set the pending value on the secret (checking its base); return the version replaced.

        The new version carries the tags ``rotator-rotation-id`` and
        ``rotator-previous-version`` (other tags of the replaced version are
        carried over) and expires at ``expires_on``, else at
        ``now + expires_after`` when configured. The companion is then
        deleted, and purged with ``purge_pending`` (a failure there is only
        logged: the promotion stands). Replaying after success sets nothing:
        a version already tagged with this rotation is found and its
        ``rotator-previous-version`` returned. Returns ``None`` if the secret
        had no version before.

        Raises:
            ConflictError: nothing is pending for this rotation (and it was
                not promoted), or someone else wrote the secret since
                ``put_pending`` (their value stays the latest).
            PermanentError: the secret is deleted but recoverable, or its
                latest version is disabled.
            PermissionDeniedError: the identity may not read or set the secret.
            TransientError: throttled, 5xx or unreachable; retry later.
        """
        name = self.config.name
        staged = self._staged(rotation_id)
        latest = self._latest()
        latest_tags = _tags(latest)
        if latest is not None and latest_tags.get(ROTATION_ID) == rotation_id:
            self._clean_companion(rotation_id, staged)
            return latest_tags.get(PREVIOUS_VERSION) or None
        base = _tags(staged).get(BASE_VERSION) if staged is not None else None
        current_id = str(latest.properties.version) if latest is not None else NO_VERSION
        if staged is None or base != current_id:
            done = self._promoted_version(rotation_id)
            if done is not None:
                # Promoted before, and someone wrote the secret since: nothing to redo.
                self._clean_companion(rotation_id, staged)
                return _tags(done).get(PREVIOUS_VERSION) or None
            if staged is None:
                raise ConflictError(
                    f"{self.describe()} has no pending version for rotation {rotation_id}",
                    provider=PROVIDER,
                    operation=f"set_secret {name}",
                )
            if latest is None:
                # Not soft-deleted (_latest would have said so), yet it had a version: it is
                # being deleted (Key Vault shows it among the deleted seconds later) or purged.
                raise ConflictError(
                    f"{self.describe()} was deleted since rotation {rotation_id} stored its "
                    f"pending value (expected version {base}); if that was a mistake, "
                    f"{recover_command(self._vault, name)}",
                    provider=PROVIDER,
                    operation=f"set_secret {name}",
                )
            raise ConflictError(
                f"{self.describe()} was written by someone else since rotation {rotation_id} "
                f"stored its pending value (latest version {current_id}, expected {base}); "
                "their value stays current",
                provider=PROVIDER,
                operation=f"set_secret {name}",
            )
        assert staged is not None
        ours = {ROTATION_ID: rotation_id}
        if base != NO_VERSION:
            ours[PREVIOUS_VERSION] = str(base)
        kept = sorted(k for k in latest_tags if not k.startswith(TAG_PREFIX))
        if len(kept) + len(ours) > MAX_TAGS:
            dropped = kept[MAX_TAGS - len(ours) :]
            kept = kept[: MAX_TAGS - len(ours)]
            log.warning(
                "%s: Key Vault allows %s tags per version; not carrying over %s",
                self.describe(),
                MAX_TAGS,
                ", ".join(dropped),
            )
        tags = {k: latest_tags[k] for k in kept} | ours
        content_type = staged.properties.content_type
        if content_type is None and latest is not None:
            carried = latest.properties.content_type
            if carried and carried.split(";")[0].strip().lower() != JSON_CONTENT_TYPE:
                content_type = carried  # an operator's hint such as "password"
        expiry = self._expiry(expires_on)
        try:
            written = self._set(
                name, staged.value or "", content_type=content_type, tags=tags, expires_on=expiry
            )
            version = str(written.properties.version)
        except TransientError:
            raise  # the engine retries; the replay finds the version if it landed
        except ProviderError:
            # An answer we could not read (a permanent error) after a write that
            # may have landed: the engine would roll back a live credential.
            landed = self._get(name)
            if landed is None or _tags(landed).get(ROTATION_ID) != rotation_id:
                raise
            version = str(landed.properties.version)
        log.info(
            "promoted rotation %s: %s is at version %s (previous %s, expires %s)",
            rotation_id,
            self.describe(),
            version,
            base,
            expiry.isoformat() if expiry else "never",
        )
        self._clean_companion(rotation_id, staged)
        return None if base == NO_VERSION else base

    def discard(self, rotation_id: str) -> None:
        """Delete (and purge, with ``purge_pending``) the companion if it carries this rotation.

        No-op if the companion is absent or was written for another rotation;
        a companion of this rotation that was deleted but not yet purged (an
        interrupted discard) is purged.

        Raises:
            PermissionDeniedError: the identity may not read or delete the companion.
            PermanentError: the companion's latest version is disabled.
            TransientError: throttled, 5xx, unreachable, or the deletion is
                not complete yet; retry later.
        """
        staged = self._staged(rotation_id)
        self._remove_companion(rotation_id, staged)
        if staged is not None:
            log.info("discarded the pending value of rotation %s (%s)", rotation_id, self.companion)

    def replaced_version(self, rotation_id: str) -> str | None:
        """Return the version this rotation's promote replaced: its ``rotator-previous-version``.

        The version carrying the rotation's tag is found among every version
        of the secret, so a later write does not hide it. ``None`` when no
        version carries it, or the promote created the secret.

        Raises:
            PermissionDeniedError: the identity may not list the secret's versions.
            TransientError: throttled, 5xx or unreachable; retry later.
        """
        promoted = self._promoted_version(rotation_id)
        if promoted is None:
            return None
        return _tags(promoted).get(PREVIOUS_VERSION) or None

    def retire(self, version_id: str) -> None:
        """Disable version ``version_id`` of the secret; never the latest, never deleted.

        A disabled version cannot be read (403 ``SecretDisabled``) but still
        exists, so an operator can enable it again. Disabling it twice
        changes nothing; a version that does not exist is logged and left.

        Raises:
            NotFoundError: the secret does not exist.
            PermanentError: ``version_id`` is not a Key Vault version id, the
                secret is deleted but recoverable, or its latest version is
                disabled.
            PermissionDeniedError: the identity may not update the secret.
            TransientError: throttled, 5xx or unreachable; retry later.
        """
        if not _VERSION.match(version_id):
            raise PermanentError(f"{version_id!r} is not a Key Vault version id", provider=PROVIDER)
        name = self.config.name
        latest = self._latest()
        if latest is None:
            raise NotFoundError(
                f"{self.describe()} does not exist; cannot retire version {version_id}",
                provider=PROVIDER,
                operation=f"update_secret_properties {name}",
            )
        if str(latest.properties.version) == version_id:
            log.warning("not retiring version %s of %s: it is the latest", version_id, name)
            return
        try:
            self._call(
                "update_secret_properties",
                name,
                lambda c: c.update_secret_properties(name, version_id, enabled=False),
            )
        except NotFoundError:
            log.warning("version %s of %s does not exist; nothing to retire", version_id, name)
            return
        log.info("retired (disabled) version %s of %s", version_id, self.describe())
