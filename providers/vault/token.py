"""Issuer ``vault-token``: orphan Vault tokens, periodic by default.

The stored value is the token itself; the ref is its *accessor*, which names
the token without proving anything (Vault looks tokens up and revokes them
by accessor).

- ``mint`` creates an orphan token (``auth/token/create-orphan``), so that
  it does not die with the rotator's own token, with the policy's
  ``policies`` and ``meta`` ``{"rotator_rotation_id", "rotator_secret"}``.
  With neither ``ttl`` nor ``period`` in the policy, the token is periodic
  with a 24h period: it never expires as long as its consumer renews it at
  least once a day, and it has no max TTL to outlive. A ``ttl`` alone gives
  an ordinary token that dies at the mount's max TTL whatever its consumer
  does (the rotation interval must be shorter). Periodic tokens, and
  policies the rotator's own token does not hold, need the ``sudo``
  capability on ``auth/token/create-orphan``.
- ``verify`` looks the new token up with the token itself (``lookup-self``)
  and checks it carries the accessor minted and every policy asked for.
- ``revoke`` revokes the old token by accessor at grace end (one stage).
- ``inventory`` lists every token accessor in Vault (``LIST
  auth/token/accessors``, which needs ``sudo``), so that ``recover`` can
  find a token an interrupted mint created: it looks up the accessors that
  are new since, and revokes those whose ``meta`` names this rotation and
  secret (adopting the one the store's pending value holds). Without that
  permission (or with ``list_accessors: false``, for a Vault holding so
  many tokens that listing them all each rotation is too costly)
  ``inventory`` returns nothing and a token lost in a crash is not revoked
  by rotator: nobody holds it and nobody renews it, so it expires at the
  end of its period (or TTL). A warning says so once per process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from datetime import timedelta
from typing import Any, ClassVar, TypeVar

from pydantic import Field, field_validator, model_validator

from providers.vault.client import QUOTAS, cache_fingerprint, named, session
from providers.vault.errors import TokenRejectedError, is_known, nothing_there, vault_errors
from rotator.adapters import (
    Credential,
    Duration,
    Issuer,
    Permission,
    ProviderConfig,
    SecretValue,
    rates,
)
from rotator.errors import (
    PermanentError,
    PermissionDeniedError,
    ProviderError,
    TransientError,
    VerificationError,
)

PROVIDER = "vault-token"
ROTATION_ID = "rotator_rotation_id"
SECRET_NAME = "rotator_secret"  # noqa: S105 (a metadata key)
#: The period of a token whose policy gives neither ``ttl`` nor ``period``.
DEFAULT_PERIOD = timedelta(hours=24)
_NO_LISTING = "vault:token-accessors-forbidden"

log = logging.getLogger(__name__)

T = TypeVar("T")


def _seconds(value: timedelta) -> str:
    return f"{int(value.total_seconds())}s"


class TokenConfig(ProviderConfig):
    """Policy fields of the ``vault-token`` issuer."""

    policies: list[str] = Field(min_length=1)
    #: Initial TTL. Alone (no ``period``): an ordinary token, capped by the mount's max TTL.
    ttl: Duration | None = None
    #: Renewal period of a periodic token (default 24h when ``ttl`` is not given either).
    period: Duration | None = None
    display_name: str = Field(default="rotator", min_length=1, max_length=128)
    renewable: bool = True
    #: List every token accessor to find tokens an interrupted mint left (needs sudo).
    list_accessors: bool = True

    @field_validator("policies")
    @classmethod
    def _policy_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not name.strip() or name.strip() != name:
                raise ValueError(f"invalid policy name {name!r}")
            if name == "root":
                raise ValueError("rotator does not mint root tokens")
        return value

    @model_validator(mode="after")
    def _positive(self) -> TokenConfig:
        for name in ("ttl", "period"):
            value = getattr(self, name)
            if value is not None and value < timedelta(seconds=1):
                raise ValueError(f"{name} must be at least 1s")
        return self

    def effective_period(self) -> timedelta | None:
        """Return the period minted tokens get (``None``: not periodic)."""
        if self.period is not None:
            return self.period
        return None if self.ttl is not None else DEFAULT_PERIOD


def token_of(value: SecretValue) -> str | None:
    """Return the token a stored value holds (a non-empty string), or ``None``."""
    plain = value.reveal()
    return plain.strip() if isinstance(plain, str) and plain.strip() else None


class TokenIssuer(Issuer[TokenConfig]):
    """Mints, verifies and revokes orphan Vault tokens."""

    kind = PROVIDER
    Config = TokenConfig
    requires = ("hvac",)
    extra = "vault"
    example: ClassVar[Mapping[str, object]] = {
        "policies": ["app-read"],
        "period": "24h",
        "display_name": "app",
    }
    docs = "docs/providers/vault.md#issuer-vault-token"
    quotas = rates(QUOTAS)
    reports_last_use = False
    two_stage_revoke = False

    def _call(self, name: str, operation: str, fn: Callable[[Any], T]) -> T:
        """Make one Vault request; ``name`` is its kind, ``operation`` its path."""
        return session(self.runtime).call(operation, fn, provider=PROVIDER, name=name)

    def _self_lookup(self, token: str) -> Mapping[str, Any] | None:
        """Look ``token`` up with itself; ``None`` if Vault refuses it (invalid, expired).

        Raises:
            TransientError: Vault is unavailable or unreachable.
            PermanentError: any other refusal.
        """
        client = session(self.runtime).new_client(token)
        try:
            with vault_errors(PROVIDER, "auth/token/lookup-self"), named("token.lookup_self"):
                answer = client.auth.token.lookup_self()
        except TokenRejectedError:
            return None
        finally:
            client.token = ""
            client.adapter.close()
        data = answer.get("data") if isinstance(answer, Mapping) else None
        return data if isinstance(data, Mapping) else None

    def permissions(self) -> list[Permission]:
        """Return the capabilities each step needs on the token store's paths.

        Mint: ``update`` on ``auth/token/create-orphan``, with ``sudo`` for
        a periodic token (the default). A token with ``ttl`` only needs no
        ``sudo``, but Vault then lets rotator's token grant only policies it
        holds itself: that requirement is returned with no capability (no
        path block can grant it) and printed as a note. With
        ``list_accessors``: ``list`` and ``sudo`` on ``auth/token/accessors``
        (the inventory taken at mint) and ``update`` on
        ``auth/token/lookup-accessor`` (recognising what an interrupted or
        rolled-back rotation minted). Revoke: ``update`` on
        ``auth/token/revoke-accessor``. Verify uses the new token's own
        ``lookup-self``, which Vault's default policy grants it.
        """
        mint = "issuer: mint token"
        periodic = self.config.effective_period() is not None
        found = [
            Permission(
                "vault",
                ("update", "sudo") if periodic else ("update",),
                resource="auth/token/create-orphan",
                step=mint,
            ),
            Permission(
                "vault",
                ("update",),
                resource="auth/token/revoke-accessor",
                step="issuer: revoke token",
            ),
        ]
        if not periodic:
            held = ", ".join(sorted(set(self.config.policies)))
            found.append(
                Permission(
                    "vault",
                    (),
                    resource=f"rotator's own token must hold the policies {held}",
                    step=mint,
                )
            )
        if self.config.list_accessors:
            found += [
                Permission(
                    "vault",
                    ("list", "sudo"),
                    resource="auth/token/accessors",
                    step="issuer: list tokens",
                ),
                Permission(
                    "vault",
                    ("update",),
                    resource="auth/token/lookup-accessor",
                    step="issuer: recover tokens",
                ),
            ]
        return found

    def ref_of(self, value: SecretValue) -> str | None:
        """Return the accessor of the token in ``value``; ``None`` if it is not a live token.

        The token looks itself up; the answer is cached per keyed
        fingerprint of the value, never per the value itself.

        Raises:
            TransientError: Vault is unavailable or unreachable; retry later.
        """
        token = token_of(value)
        if token is None:
            return None
        key = f"vault:token-accessor:{cache_fingerprint(self.runtime.cache, value)}"
        cached = self.runtime.cache.get(key)
        if isinstance(cached, str):
            return cached
        data = self._self_lookup(token)
        accessor = data.get("accessor") if data is not None else None
        if not isinstance(accessor, str) or not accessor:
            return None
        self.runtime.cache[key] = accessor
        return accessor

    def inventory(self) -> list[str]:
        """Return every token accessor in Vault; empty if listing is off or forbidden.

        Listing needs ``sudo`` on ``auth/token/accessors``. Without it a
        warning is logged once and nothing is listed again in this process.

        Raises:
            TransientError: Vault is unavailable or unreachable; retry later.
        """
        if not self.config.list_accessors or self.runtime.cache.get(_NO_LISTING):
            return []

        def listing(client: Any) -> list[str]:
            from hvac.exceptions import InvalidPath

            try:
                answer = client.auth.token.list_accessors()
            except InvalidPath as exc:
                if not nothing_there(exc):  # an explained 404 (no such namespace)
                    raise
                return []
            keys = (answer.get("data") or {}).get("keys") or []
            return [str(k) for k in keys]

        try:
            return sorted(self._call("token.accessors.list", "LIST auth/token/accessors", listing))
        except PermissionDeniedError:
            self.runtime.cache[_NO_LISTING] = True
            log.warning(
                "may not list token accessors (needs sudo on auth/token/accessors): a token "
                "lost in a crash between mint and store will not be revoked by rotator; it "
                "expires at the end of its period or TTL since nobody renews it"
            )
            return []

    def mint(self, rotation_id: str) -> Credential:
        """Create an orphan token tagged with ``rotation_id``; return it with its accessor.

        Raises:
            PermissionDeniedError: the rotator's token may not create orphan
                tokens, periodic tokens (needs sudo) or grant these policies.
            PermanentError: Vault refused the parameters.
            TransientError: Vault is unavailable or unreachable; retry later.
        """
        period = self.config.effective_period()
        answer = self._call(
            "token.create_orphan",
            "auth/token/create-orphan",
            lambda c: c.auth.token.create_orphan(
                policies=list(self.config.policies),
                meta={ROTATION_ID: rotation_id, SECRET_NAME: self.secret},
                display_name=self.config.display_name,
                renewable=self.config.renewable,
                ttl=_seconds(self.config.ttl) if self.config.ttl is not None else None,
                period=_seconds(period) if period is not None else None,
            ),
        )
        auth = answer.get("auth") if isinstance(answer, Mapping) else None
        auth = auth if isinstance(auth, Mapping) else {}
        token, accessor = auth.get("client_token"), auth.get("accessor")
        if not isinstance(token, str) or not token or not isinstance(accessor, str):
            raise PermanentError(
                "Vault's answer lacks the token or its accessor",
                provider=PROVIDER,
                operation="auth/token/create-orphan",
            )
        log.info("created orphan token %s (rotation %s)", accessor, rotation_id)
        return Credential(SecretValue(token), accessor)

    def _lookup_accessor(self, accessor: str) -> Mapping[str, Any] | None:
        """Look a token up by accessor; ``None`` if no token has it (any more)."""

        def lookup(client: Any) -> Any:
            from hvac.exceptions import VaultError

            try:
                return client.auth.token.lookup_accessor(accessor)
            except VaultError as exc:
                # Only "invalid accessor" means gone; a missing namespace is an error.
                if not is_known(exc, "token-missing"):
                    raise
                return None

        answer = self._call("token.lookup_accessor", "auth/token/lookup-accessor", lookup)
        data = answer.get("data") if isinstance(answer, Mapping) else None
        return data if isinstance(data, Mapping) else None

    def recover(
        self, rotation_id: str, *, known: Collection[str], pending: SecretValue | None
    ) -> Credential | None:
        """Adopt the token ``pending`` holds; revoke the others this rotation minted.

        Accessors not in ``known`` are looked up; those whose ``meta`` names
        this rotation and secret were minted by the interrupted run and are
        revoked, unless it is the token in ``pending``. Without the right to
        list accessors only ``pending`` can be adopted.

        Raises:
            PermissionDeniedError: the token may not look up or revoke by accessor.
            TransientError: Vault is unavailable or unreachable; retry later.
        """
        adopted: Credential | None = None
        if pending is not None:
            ref = self.ref_of(pending)
            if ref is not None:
                adopted = Credential(pending, ref)
        for accessor in self.inventory():
            if accessor in known or (adopted is not None and accessor == adopted.ref):
                continue
            data = self._lookup_accessor(accessor)
            meta = data.get("meta") if data is not None else None
            if not isinstance(meta, Mapping):
                continue
            if meta.get(ROTATION_ID) != rotation_id or meta.get(SECRET_NAME) != self.secret:
                continue
            log.info("revoking token %s, minted by interrupted rotation %s", accessor, rotation_id)
            self.revoke(accessor)
        return adopted

    def verify(self, credential: Credential) -> None:
        """Prove the new token works: it looks itself up, with the accessor and policies expected.

        Raises:
            VerificationError: the value is not a token, Vault refuses it, or
                it lacks the accessor minted or a policy asked for.
            TransientError: Vault is unavailable or unreachable; retry later.
        """
        token = token_of(credential.value)
        if token is None:
            raise VerificationError("the value is not a token", provider=PROVIDER)
        try:
            data = self._self_lookup(token)
        except TransientError:
            raise
        except ProviderError as exc:
            raise VerificationError(
                f"the new token ({credential.ref or 'no accessor'}) cannot be looked up: {exc}",
                provider=PROVIDER,
                operation="auth/token/lookup-self",
            ) from None
        if data is None:
            raise VerificationError(
                f"Vault refuses the new token ({credential.ref or 'no accessor'})",
                provider=PROVIDER,
                operation="auth/token/lookup-self",
            )
        if credential.ref and data.get("accessor") != credential.ref:
            raise VerificationError(
                f"the stored token is not the one minted ({credential.ref})",
                provider=PROVIDER,
                operation="auth/token/lookup-self",
            )
        held = set(data.get("policies") or [])
        missing = sorted(set(self.config.policies) - held)
        if missing:
            raise VerificationError(
                f"the new token ({credential.ref}) lacks policies {', '.join(missing)}",
                provider=PROVIDER,
                operation="auth/token/lookup-self",
            )

    def revoke(self, ref: str) -> None:
        """Revoke the token with accessor ``ref`` (and its children); one already gone is fine.

        Raises:
            PermissionDeniedError: the token may not revoke by accessor.
            TransientError: Vault is unavailable or unreachable; retry later.
        """

        def revoke(client: Any) -> None:
            from hvac.exceptions import VaultError

            try:
                client.auth.token.revoke_accessor(ref)
            except VaultError as exc:
                # Older Vaults refuse an unknown accessor (newer ones only warn); a missing
                # namespace is no proof that the token is gone.
                if not is_known(exc, "token-missing"):
                    raise
                log.info("token %s already gone", ref)

        self._call("token.revoke_accessor", "auth/token/revoke-accessor", revoke)
