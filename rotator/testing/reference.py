"""Reference adapters: a Store, an Issuer, a Target and a Verifier kept in memory.

Each keeps every promise its role's docstring makes (:mod:`rotator.adapters.roles`),
exactly and no more, on a :class:`~rotator.testing.service.MemoryService`.
The contract suites run over them first (tests/test_contracts_reference.py):
they are what a promise looks like when nothing gets in the way. They are
also fakes for engine tests: register them in a
:class:`~rotator.adapters.discovery.Registry` under the kind ``memory`` and
name their service in the policy (``{provider: memory, service: s1, name: db}``).
They are no entry point: an installed rotator never offers them to a policy.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from datetime import datetime

from pydantic import Field

from rotator.adapters import (
    Credential,
    Issuer,
    ProviderConfig,
    SecretValue,
    Store,
    Target,
    Verifier,
    Version,
)
from rotator.errors import (
    ConflictError,
    LimitExceededError,
    NotFoundError,
    PermissionDeniedError,
    VerificationError,
)
from rotator.testing.service import (
    PROVIDER,
    IssuedCredential,
    MemoryService,
    StoredSecret,
    StoredVersion,
    service,
)


class MemoryStoreConfig(ProviderConfig):
    """Policy fields of the reference store: the service, and the secret's name in it."""

    service: str = Field(default="default", min_length=1)
    name: str = Field(min_length=1)


class MemoryStore(Store[MemoryStoreConfig]):
    """A versioned secret in a :class:`MemoryService`: current, previous and pending versions.

    A pending version remembers the current version it was staged on;
    promote refuses (``ConflictError``) if someone else wrote since, so a
    concurrent writer's value is never overwritten.
    """

    provider = PROVIDER
    Config = MemoryStoreConfig

    @property
    def service(self) -> MemoryService:
        """The service holding the secret."""
        return service(self.config.service)

    def _secret(self, operation: str) -> StoredSecret:
        return self.service.secret(self.config.name, operation)

    def describe(self) -> str:
        """Return ``memory:<service>/<name>``."""
        return f"{PROVIDER}:{self.config.service}/{self.config.name}"

    def current(self) -> Version | None:
        """Return the version consumers read, or ``None`` if the secret has no value yet."""
        with self.service.answer("current"):
            found = self._secret("current")
            if found.current is None:
                return None
            version = found.versions[found.current]
            return Version(found.current, version.value, version.created_at)

    def last_changed(self) -> datetime | None:
        """Return when the current version was written (``None`` without a value)."""
        with self.service.answer("last_changed"):
            found = self._secret("last_changed")
            if found.current is None:
                return None
            return found.versions[found.current].created_at

    def put_pending(self, rotation_id: str, value: SecretValue) -> str:
        """Stage ``value`` for the rotation on the current version; a replay returns the same id."""
        with self.service.answer("put_pending"):
            found = self._secret("put_pending")
            staged = found.staged.get(rotation_id)
            if staged is not None:
                if found.versions[staged].value != value:
                    raise ConflictError(
                        f"version {staged} of {self.describe()} holds another value for "
                        f"rotation {rotation_id}",
                        provider=PROVIDER,
                        operation="put_pending",
                    )
                return staged
            version = StoredVersion(value, self.service.clock(), rotation_id, found.current)
            staged = found.add(version)
            found.staged[rotation_id] = staged
            found.pending.add(rotation_id)
            return staged

    def pending(self, rotation_id: str) -> SecretValue | None:
        """Return the rotation's pending value (``None`` if none, discarded or promoted)."""
        with self.service.answer("pending"):
            found = self._secret("pending")
            if rotation_id not in found.pending:
                return None
            return found.versions[found.staged[rotation_id]].value

    def promote(self, rotation_id: str, *, expires_on: datetime | None = None) -> str | None:
        """Make the staged version current unless someone wrote since; return what it replaced."""
        with self.service.answer("promote"):
            found = self._secret("promote")
            if rotation_id in found.replaced:
                return found.replaced[rotation_id]
            if rotation_id not in found.pending:
                raise ConflictError(
                    f"{self.describe()} has no pending version for rotation {rotation_id}",
                    provider=PROVIDER,
                    operation="promote",
                )
            staged = found.staged[rotation_id]
            base = found.versions[staged].base
            if found.current != base:
                raise ConflictError(
                    f"someone else wrote {self.describe()} after rotation {rotation_id} staged "
                    f"its value (current version {found.current}, staged on {base or 'none'})",
                    provider=PROVIDER,
                    operation="promote",
                )
            found.replaced[rotation_id] = found.current
            found.previous, found.current = found.current, staged
            found.pending.discard(rotation_id)
            return found.replaced[rotation_id]

    def discard(self, rotation_id: str) -> None:
        """Remove the rotation's pending version; no-op if there is none."""
        with self.service.answer("discard"):
            found = self._secret("discard")
            if rotation_id not in found.pending:
                return
            found.pending.discard(rotation_id)
            del found.versions[found.staged.pop(rotation_id)]

    def retire(self, version_id: str) -> None:
        """Stop offering ``version_id`` as the previous version; never touch the current one."""
        with self.service.answer("retire"):
            found = self._secret("retire")
            if found.previous == version_id:
                found.previous = None

    def replaced_version(self, rotation_id: str) -> str | None:
        """Return what the rotation's promote replaced, while it is current and that is offered."""
        with self.service.answer("replaced_version"):
            found = self._secret("replaced_version")
            replaced = found.replaced.get(rotation_id)
            if found.staged.get(rotation_id) != found.current or replaced != found.previous:
                return None
            return replaced

    def check(self) -> str:
        """Prove the secret exists and the service answers; change nothing."""
        with self.service.answer("check"):
            self._secret("check")
            return f"{self.describe()} exists and the service answers"


class MemoryIssuerConfig(ProviderConfig):
    """Policy fields of the reference issuer: the service, and how many credentials it allows."""

    service: str = Field(default="default", min_length=1)
    #: The most credentials of one secret the service holds at once (None: no limit).
    limit: int | None = Field(default=None, ge=1)


class MemoryIssuer(Issuer[MemoryIssuerConfig]):
    """Issues random tokens a :class:`MemoryService` honours until they are revoked.

    Refs are the service's own ids (``cred-N``), found from a value by asking
    the service. Revoking deactivates; deleting removes for good.
    """

    kind = PROVIDER
    Config = MemoryIssuerConfig
    reports_last_use = True
    two_stage_revoke = True

    @property
    def service(self) -> MemoryService:
        """The service that issues and honours the credentials."""
        return service(self.config.service)

    def _mine(self) -> dict[str, IssuedCredential]:
        return {r: c for r, c in self.service.credentials.items() if c.owner == self.secret}

    def _find(self, ref: str, operation: str) -> IssuedCredential:
        found = self._mine().get(ref)
        if found is None:
            raise NotFoundError(
                f"credential {ref} does not exist", provider=PROVIDER, operation=operation
            )
        return found

    def ref_of(self, value: SecretValue) -> str | None:
        """Return the ref of the credential holding ``value`` (``None`` if none does)."""
        with self.service.answer("ref_of"):
            return next((r for r, c in self._mine().items() if c.value == value), None)

    def inventory(self) -> list[str]:
        """Return the refs of this secret's credentials, active or not."""
        with self.service.answer("inventory"):
            return sorted(self._mine())

    def prepare(self, keep: Collection[str]) -> list[str]:
        """At the limit, delete one revoked credential not in ``keep``; return what was deleted."""
        with self.service.answer("prepare"):
            mine = self._mine()
            if self.config.limit is None or len(mine) < self.config.limit:
                return []
            spare = [r for r, c in sorted(mine.items()) if r not in keep and not c.active]
            if not spare:
                raise LimitExceededError(
                    f"{self.secret} holds {len(mine)} credentials, the limit, and none is both "
                    "revoked and unneeded",
                    provider=PROVIDER,
                    operation="prepare",
                )
            del self.service.credentials[spare[0]]
            return spare[:1]

    def mint(self, rotation_id: str) -> Credential:
        """Issue a new random token for the rotation; ``LimitExceededError`` at the limit."""
        with self.service.answer("mint"):
            if self.config.limit is not None and len(self._mine()) >= self.config.limit:
                raise LimitExceededError(
                    f"{self.secret} already holds {self.config.limit} credentials; make room first",
                    provider=PROVIDER,
                    operation="mint",
                )
            self.service.issued += 1
            ref = f"cred-{self.service.issued}"
            value = SecretValue(f"mem-{secrets.token_urlsafe(24)}")
            self.service.credentials[ref] = IssuedCredential(value, self.secret, rotation_id)
            return Credential(value, ref)

    def recover(
        self, rotation_id: str, *, known: Collection[str], pending: SecretValue | None
    ) -> Credential | None:
        """Adopt the rotation's credential ``pending`` holds; delete its other new ones."""
        with self.service.answer("recover"):
            adopted: Credential | None = None
            for ref, credential in sorted(self._mine().items()):
                if ref in known or credential.rotation_id != rotation_id:
                    continue
                if adopted is None and pending is not None and credential.value == pending:
                    adopted = Credential(pending, ref)
                    continue
                del self.service.credentials[ref]
            return adopted

    def verify(self, credential: Credential) -> None:
        """Prove the credential exists, is active and holds the value minted."""
        with self.service.answer("verify"):
            ref = credential.ref or next(
                (r for r, c in self._mine().items() if c.value == credential.value), None
            )
            found = self._mine().get(ref) if ref is not None else None
            if found is None:
                raise VerificationError(
                    f"no credential {ref or 'holding the value'} exists",
                    provider=PROVIDER,
                    operation="verify",
                )
            if not found.active:
                raise VerificationError(
                    f"credential {ref} is revoked", provider=PROVIDER, operation="verify"
                )
            if found.value != credential.value:
                raise VerificationError(
                    f"credential {ref} holds another value than the one given",
                    provider=PROVIDER,
                    operation="verify",
                )

    def last_used(self, ref: str) -> datetime | None:
        """Return when a consumer last presented the credential (``None``: never)."""
        with self.service.answer("last_used"):
            return self._find(ref, "last_used").last_used

    def revoke(self, ref: str) -> None:
        """Deactivate the credential; no-op if it is gone."""
        with self.service.answer("revoke"):
            found = self._mine().get(ref)
            if found is not None:
                found.active = False

    def delete(self, ref: str) -> None:
        """Remove the credential for good; no-op if it is gone."""
        with self.service.answer("delete"):
            if ref in self._mine():
                del self.service.credentials[ref]


class MemoryTargetConfig(ProviderConfig):
    """Policy fields of the reference target: the service, and the place consumers read."""

    service: str = Field(default="default", min_length=1)
    place: str = Field(min_length=1)


class MemoryTarget(Target[MemoryTargetConfig]):
    """A place in a :class:`MemoryService` consumers read the value from."""

    kind = PROVIDER
    Config = MemoryTargetConfig

    @property
    def service(self) -> MemoryService:
        """The service holding the place."""
        return service(self.config.service)

    def describe(self) -> str:
        """Return ``memory:<service>/<place>``."""
        return f"{PROVIDER}:{self.config.service}/{self.config.place}"

    def write(self, rotation_id: str, value: SecretValue) -> None:
        """Make the place carry ``value`` (unchanged if it already does)."""
        with self.service.answer("write"):
            if self.config.place in self.service.read_only:
                raise PermissionDeniedError(
                    f"{self.describe()} is read-only", provider=PROVIDER, operation="write"
                )
            self.service.put(self.config.place, value)

    def restore(
        self, rotation_id: str, *, written: SecretValue | None, previous: SecretValue | None
    ) -> None:
        """Put ``previous`` back if the place carries ``written`` (or ``written`` was lost)."""
        with self.service.answer("restore"):
            if written is None and previous is None:
                return  # nothing proves what the place carries is this rotation's
            if written is not None and self.service.carried(self.config.place) != written:
                return  # this rotation's value is not there: never written, or replaced since
            self.service.put(self.config.place, previous)

    def check(self) -> str:
        """Prove the service answers; change nothing."""
        with self.service.answer("check"):
            return f"{self.describe()} reachable"


class MemoryVerifierConfig(ProviderConfig):
    """Policy fields of the reference verifier: the service whose consumer checks credentials."""

    service: str = Field(default="default", min_length=1)


class MemoryVerifier(Verifier[MemoryVerifierConfig]):
    """A consumer of a :class:`MemoryService` presenting the credential, as a login would.

    It is let in by a credential the service issued and has not revoked, or a
    value the test made it accept (:meth:`MemoryService.accept`); any other
    is refused.
    """

    kind = PROVIDER
    Config = MemoryVerifierConfig

    @property
    def service(self) -> MemoryService:
        """The service the consumer presents credentials to."""
        return service(self.config.service)

    def describe(self) -> str:
        """Return ``memory:<service>``."""
        return f"{PROVIDER}:{self.config.service}"

    def verify(self, credential: Credential) -> None:
        """Present the credential; ``VerificationError`` if the consumer is not let in."""
        with self.service.answer("verify"):
            if not self.service.accepts(credential.value):
                raise VerificationError(
                    f"{self.describe()} refused the credential",
                    provider=PROVIDER,
                    operation="verify",
                )
