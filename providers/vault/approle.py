"""Issuer ``vault-approle-secret-id``: secret-ids of one AppRole role.

The stored value is ``{"role_id": ..., "secret_id": ...}``, what an AppRole
client logs in with; the ref is the secret-id's *accessor*, which names it
without proving anything (Vault lists, looks up and destroys secret-ids by
accessor).

- ``mint`` reads the role-id and generates a secret-id carrying the policy's
  ``metadata`` plus ``rotator_rotation_id`` and ``rotator_secret``, so that
  an interrupted mint can be recognised later.
- ``verify`` logs in with the new pair through a separate, token-less
  client, proves the token works (``lookup-self``) and revokes that token
  (``revoke-self``), so verification leaves nothing behind. If the
  secret-id has a use limit (``secret_id_num_uses``), logging in would spend
  one of its uses: it is then only looked up.
- ``revoke`` destroys the old secret-id by accessor at grace end (one stage:
  a destroyed secret-id cannot be brought back).
- ``inventory`` lists the role's accessors; ``recover`` destroys what an
  interrupted mint left behind, recognised by its ``rotator_rotation_id``
  metadata, and adopts the one the store's pending value holds. Secret-ids
  not tagged with the rotation (other consumers of the same role, another
  secret rotated from the same role) are never touched.

Tokens issued by logging in with a destroyed secret-id stay valid until
their own TTL: destroying a secret-id stops *new* logins only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import Field

from providers.vault.client import QUOTAS, cache_fingerprint, named, session
from providers.vault.errors import is_known, nothing_there, vault_errors
from rotator.adapters import Credential, Issuer, Permission, ProviderConfig, SecretValue, rates
from rotator.errors import (
    PermanentError,
    ProviderError,
    TransientError,
    VerificationError,
)

PROVIDER = "vault-approle-secret-id"
ROLE_ID = "role_id"
SECRET_ID = "secret_id"  # noqa: S105 (a field name)
ROTATION_ID = "rotator_rotation_id"
SECRET_NAME = "rotator_secret"  # noqa: S105 (a metadata key)
_NAME = r"^[\w.@-]+$"
_MOUNT = r"^[^/\s](?:[^\s]*[^/\s])?$"

log = logging.getLogger(__name__)

T = TypeVar("T")


class AppRoleConfig(ProviderConfig):
    """Policy fields of the ``vault-approle-secret-id`` issuer."""

    role: str = Field(min_length=1, max_length=128, pattern=_NAME)
    mount: str = Field(default="approle", min_length=1, pattern=_MOUNT)
    #: Metadata attached to every secret-id minted (visible in Vault's audit log).
    metadata: dict[str, str] = Field(default_factory=dict)


def credential_pair(value: SecretValue) -> tuple[str, str] | None:
    """Return ``(role_id, secret_id)`` from a stored value, or ``None``.

    Accepts a mapping value, or a string holding the same JSON object.
    """
    pair = value.fields(ROLE_ID, SECRET_ID)
    return (pair[0], pair[1]) if pair else None


class AppRoleSecretIdIssuer(Issuer[AppRoleConfig]):
    """Mints, verifies and destroys the secret-ids of one AppRole role."""

    kind = PROVIDER
    Config = AppRoleConfig
    requires = ("hvac",)
    extra = "vault"
    example: ClassVar[Mapping[str, object]] = {"role": "app-api", "mount": "approle"}
    docs = "docs/providers/vault.md#issuer-vault-approle-secret-id"
    quotas = rates(QUOTAS)
    reports_last_use = False
    two_stage_revoke = False

    # -- plumbing ---------------------------------------------------------

    @property
    def _role_path(self) -> str:
        return f"auth/{self.config.mount}/role/{self.config.role}"

    def _call(self, name: str, operation: str, fn: Callable[[Any], T]) -> T:
        """Make one Vault request; ``name`` is its kind, ``operation`` its path."""
        return session(self.runtime).call(operation, fn, provider=PROVIDER, name=name)

    def _lookup(self, secret_id: str) -> Mapping[str, Any] | None:
        """Look a secret-id up; ``None`` if it does not exist (Vault answers 204)."""
        answer = self._call(
            "approle.secret_id.lookup",
            f"{self._role_path}/secret-id/lookup",
            lambda c: c.auth.approle.read_secret_id(
                role_name=self.config.role, secret_id=secret_id, mount_point=self.config.mount
            ),
        )
        data = answer.get("data") if isinstance(answer, Mapping) else None
        return data if isinstance(data, Mapping) else None

    def _lookup_accessor(self, accessor: str) -> Mapping[str, Any] | None:
        """Look a secret-id up by accessor; ``None`` if it is gone (or expired: a 204)."""

        def lookup(client: Any) -> Any:
            from hvac.exceptions import VaultError

            try:
                return client.auth.approle.read_secret_id_accessor(
                    role_name=self.config.role,
                    secret_id_accessor=accessor,
                    mount_point=self.config.mount,
                )
            except VaultError as exc:
                # A 404 since Vault 1.9, a 500 before: both say the accessor is missing.
                # Only "no such accessor" means gone; a missing namespace or mount is an error.
                if not is_known(exc, "accessor-missing"):
                    raise
                return None

        answer = self._call(
            "approle.secret_id_accessor.lookup",
            f"{self._role_path}/secret-id-accessor/lookup",
            lookup,
        )
        data = answer.get("data") if isinstance(answer, Mapping) else None
        return data if isinstance(data, Mapping) else None

    def _accessors(self) -> list[str]:
        def listing(client: Any) -> list[str]:
            from hvac.exceptions import InvalidPath

            try:
                answer = client.auth.approle.list_secret_id_accessors(
                    role_name=self.config.role, mount_point=self.config.mount
                )
            except InvalidPath as exc:
                if not nothing_there(exc):  # an explained 404 (no such namespace or mount)
                    raise
                return []
            keys = (answer.get("data") or {}).get("keys") or []
            return [str(k) for k in keys]

        return self._call("approle.secret_id.list", f"LIST {self._role_path}/secret-id", listing)

    # -- Issuer -------------------------------------------------------------

    def permissions(self) -> list[Permission]:
        """Return the capabilities each step needs on the role's paths.

        Mint: ``read`` on ``role-id``, ``update`` (generate) and ``list``
        (the inventory) on ``secret-id``. Verify: ``update`` on
        ``secret-id/lookup`` (also how the current secret-id's accessor is
        found at mint). Recover (a rollback, or a run resumed after a
        crash): ``update`` on ``secret-id-accessor/lookup``, to recognise the
        secret-ids the rotation minted. Revoke: ``update`` on
        ``secret-id-accessor/destroy``. Verification logs in *as the role*
        (an unauthenticated path) and uses the new token's own
        ``lookup-self`` and ``revoke-self``: the role's tokens need Vault's
        default policy, rotator's token nothing more.
        """
        role = self._role_path
        return [
            Permission(
                "vault", ("read",), resource=f"{role}/role-id", step="issuer: mint secret-id"
            ),
            Permission(
                "vault", ("update",), resource=f"{role}/secret-id", step="issuer: mint secret-id"
            ),
            Permission(
                "vault", ("list",), resource=f"{role}/secret-id", step="issuer: list secret-ids"
            ),
            Permission(
                "vault",
                ("update",),
                resource=f"{role}/secret-id/lookup",
                step="issuer: verify secret-id",
            ),
            Permission(
                "vault",
                ("update",),
                resource=f"{role}/secret-id-accessor/lookup",
                step="issuer: recover secret-ids",
            ),
            Permission(
                "vault",
                ("update",),
                resource=f"{role}/secret-id-accessor/destroy",
                step="issuer: revoke secret-id",
            ),
        ]

    def ref_of(self, value: SecretValue) -> str | None:
        """Return the accessor of the secret-id in ``value``; ``None`` if none or gone.

        Cached per keyed fingerprint of the value, never per the value itself.

        Raises:
            NotFoundError: the role or the mount does not exist.
            PermissionDeniedError: the token may not look secret-ids up.
            TransientError: Vault is unavailable or unreachable; retry later.
        """
        pair = credential_pair(value)
        if pair is None:
            return None
        key = f"vault:approle-accessor:{self.config.mount}:{self.config.role}:"
        key += cache_fingerprint(self.runtime.cache, value)
        cached = self.runtime.cache.get(key)
        if isinstance(cached, str):
            return cached
        data = self._lookup(pair[1])
        accessor = data.get("secret_id_accessor") if data is not None else None
        if not isinstance(accessor, str) or not accessor:
            return None
        self.runtime.cache[key] = accessor
        return accessor

    def inventory(self) -> list[str]:
        """Return the accessors of the role's secret-ids (empty when it has none).

        Raises:
            NotFoundError: the mount does not exist.
            PermissionDeniedError: the token may not list the role's secret-ids.
            TransientError: Vault is unavailable or unreachable; retry later.
        """
        return sorted(self._accessors())

    def mint(self, rotation_id: str) -> Credential:
        """Generate a secret-id tagged with ``rotation_id``; return it with the role-id.

        Raises:
            NotFoundError: the role or the mount does not exist.
            PermissionDeniedError: the token may not read the role-id or
                generate secret-ids.
            TransientError: Vault is unavailable or unreachable; retry later.
        """
        role = self._call(
            "approle.role_id.read",
            f"{self._role_path}/role-id",
            lambda c: c.auth.approle.read_role_id(
                role_name=self.config.role, mount_point=self.config.mount
            ),
        )
        role_id = ((role or {}).get("data") or {}).get("role_id")
        metadata = {**self.config.metadata, ROTATION_ID: rotation_id, SECRET_NAME: self.secret}
        generated = self._call(
            "approle.secret_id.generate",
            f"{self._role_path}/secret-id",
            lambda c: c.auth.approle.generate_secret_id(
                role_name=self.config.role, metadata=metadata, mount_point=self.config.mount
            ),
        )
        data = (generated or {}).get("data") or {}
        secret_id, accessor = data.get("secret_id"), data.get("secret_id_accessor")
        if not all(isinstance(v, str) and v for v in (role_id, secret_id, accessor)):
            raise PermanentError(
                "Vault's answer lacks the role-id, secret-id or accessor",
                provider=PROVIDER,
                operation=f"{self._role_path}/secret-id",
            )
        value = SecretValue({ROLE_ID: str(role_id), SECRET_ID: str(secret_id)})
        log.info(
            "generated secret-id %s for role %s (rotation %s)",
            accessor,
            self.config.role,
            rotation_id,
        )
        return Credential(value, str(accessor))

    def recover(
        self, rotation_id: str, *, known: Collection[str], pending: SecretValue | None
    ) -> Credential | None:
        """Adopt the secret-id ``pending`` holds; destroy the others this rotation minted.

        An accessor not in ``known`` whose secret-id carries this rotation's
        ``rotator_rotation_id`` was minted by the interrupted run: it is
        destroyed unless it is the one in ``pending``. Accessors without the
        tag are left alone.

        Raises:
            NotFoundError: the mount or the role does not exist.
            PermissionDeniedError: the token may not list, look up or destroy secret-ids.
            TransientError: Vault is unavailable or unreachable; retry later.
        """
        adopted: Credential | None = None
        if pending is not None:
            ref = self.ref_of(pending)
            if ref is not None:
                adopted = Credential(pending, ref)
        for accessor in self._accessors():
            if accessor in known or (adopted is not None and accessor == adopted.ref):
                continue
            data = self._lookup_accessor(accessor)
            metadata = data.get("metadata") if data is not None else None
            if not isinstance(metadata, Mapping) or metadata.get(ROTATION_ID) != rotation_id:
                continue
            log.info(
                "destroying secret-id %s of role %s, minted by interrupted rotation %s",
                accessor,
                self.config.role,
                rotation_id,
            )
            self.revoke(accessor)
        return adopted

    def verify(self, credential: Credential) -> None:
        """Log in with the new pair, prove the token works, then revoke that token.

        A secret-id with a use limit is only looked up (a login would spend a use).

        Raises:
            VerificationError: the value is not a role-id/secret-id pair, the
                secret-id does not exist or belongs to another accessor, the
                login is refused, or its token does not work.
            PermissionDeniedError: the rotator's token may not look secret-ids up.
            TransientError: Vault is unavailable or unreachable; retry later.
        """
        pair = credential_pair(credential.value)
        if pair is None:
            raise VerificationError(
                "the value is not a role_id/secret_id pair", provider=PROVIDER, operation="verify"
            )
        role_id, secret_id = pair
        found = self._lookup(secret_id)
        if found is None:
            raise VerificationError(
                f"the new secret-id ({credential.ref or 'no accessor'}) does not exist "
                f"in role {self.config.role}",
                provider=PROVIDER,
                operation=f"{self._role_path}/secret-id/lookup",
            )
        if credential.ref and found.get("secret_id_accessor") != credential.ref:
            raise VerificationError(
                f"the stored secret-id is not the one minted ({credential.ref})",
                provider=PROVIDER,
                operation=f"{self._role_path}/secret-id/lookup",
            )
        if int(found.get("secret_id_num_uses") or 0) > 0:
            log.info(
                "secret-id %s has a use limit: verified by lookup, not by login", credential.ref
            )
            return
        self._login_check(role_id, secret_id, credential.ref)

    def _login_check(self, role_id: str, secret_id: str, ref: str | None) -> None:
        operation = f"auth/{self.config.mount}/login"
        client = session(self.runtime).new_client()
        try:
            with vault_errors(PROVIDER, operation), named("approle.login"):
                client.auth.approle.login(
                    role_id=role_id,
                    secret_id=secret_id,
                    use_token=True,
                    mount_point=self.config.mount,
                )
            operation = "auth/token/lookup-self"
            with vault_errors(PROVIDER, operation), named("token.lookup_self"):
                client.auth.token.lookup_self()
        except TransientError:
            raise
        except ProviderError as exc:
            raise VerificationError(
                f"the new secret-id ({ref or 'no accessor'}) does not work: {exc}",
                provider=PROVIDER,
                operation=operation,
            ) from None
        finally:
            if client.token:
                try:
                    with (
                        vault_errors(PROVIDER, "auth/token/revoke-self"),
                        named("token.revoke_self"),
                    ):
                        client.auth.token.revoke_self()
                except ProviderError as exc:
                    log.warning(
                        "could not revoke the verification login token; it expires with its "
                        "TTL: %s",
                        exc,
                    )
                client.token = ""
            client.adapter.close()

    def revoke(self, ref: str) -> None:
        """Destroy the secret-id with accessor ``ref``; one already gone is fine.

        Raises:
            NotFoundError: the mount or the role does not exist.
            PermissionDeniedError: the token may not destroy secret-ids.
            TransientError: Vault is unavailable or unreachable; retry later.
        """

        def destroy(client: Any) -> None:
            from hvac.exceptions import VaultError

            try:
                client.auth.approle.destroy_secret_id_accessor(
                    role_name=self.config.role,
                    secret_id_accessor=ref,
                    mount_point=self.config.mount,
                )
            except VaultError as exc:
                if not is_known(exc, "accessor-missing"):
                    raise
                log.info("secret-id %s already gone", ref)

        self._call(
            "approle.secret_id_accessor.destroy",
            f"{self._role_path}/secret-id-accessor/destroy",
            destroy,
        )
