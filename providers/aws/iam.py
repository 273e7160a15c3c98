"""Issuer ``aws-iam-access-key``: an IAM user's access keys, two slots at most.

Follows AWS's own procedure for rotating access keys: create the new key
while the old one still works, prove the new one signs as the user, and at
the end of the grace window deactivate the old key (``revoke``), deleting it
``delete_after`` later (``delete``) or sooner when its slot is needed
(``prepare``). ``last_used`` reports ``GetAccessKeyLastUsed``, the evidence
the engine checks before revoking.

The stored value is ``{"AccessKeyId": ..., "SecretAccessKey": ...}``; the
ref is the access key id, which is not secret. IAM returns the secret access
key only once, at creation: a key minted but never stored cannot be adopted,
so :meth:`AccessKeyIssuer.recover` deletes it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from providers.aws.clients import QUOTAS, client
from providers.aws.errors import aws_errors
from providers.aws.permissions import user_arns
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
    LimitExceededError,
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    TransientError,
    VerificationError,
)

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_sts import STSClient

PROVIDER = "aws-iam-access-key"
KEY_ID = "AccessKeyId"
SECRET_KEY = "SecretAccessKey"  # noqa: S105 (a field name)
#: IAM's hard quota of access keys per user, active and inactive together.
MAX_KEYS = 2
#: Backoff between verification attempts: first delay and ceiling, in seconds.
VERIFY_FIRST_DELAY = 1.0
VERIFY_MAX_DELAY = 8.0

log = logging.getLogger(__name__)


class AccessKeyConfig(ProviderConfig):
    """Policy fields of the ``aws-iam-access-key`` issuer."""

    user: str = Field(min_length=1, max_length=64, pattern=r"^[\w+=,.@-]+$")
    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    delete_after: Duration = timedelta(0)
    #: How long ``verify`` keeps trying while IAM propagates a new key.
    verify_timeout: Duration = timedelta(seconds=30)


def key_pair(value: SecretValue) -> tuple[str, str] | None:
    """Return ``(AccessKeyId, SecretAccessKey)`` from a stored value, or ``None``.

    Accepts a mapping value, or a string holding the same JSON object.
    """
    pair = value.fields(KEY_ID, SECRET_KEY)
    return (pair[0], pair[1]) if pair else None


class AccessKeyIssuer(Issuer[AccessKeyConfig]):
    """Mints, verifies, deactivates and deletes one IAM user's access keys."""

    kind = PROVIDER
    Config = AccessKeyConfig
    requires = ("boto3",)
    extra = "aws"
    example: ClassVar[Mapping[str, object]] = {"user": "app-deployer", "delete_after": "7d"}
    docs = "docs/policies.md#issuers-issuerkind"
    quotas = rates(QUOTAS)
    reports_last_use = True
    two_stage_revoke = True

    def _iam(self) -> IAMClient:
        return client(self.runtime, "iam", self.config.region)

    def _keys(self) -> dict[str, str]:
        """Return the user's access key ids with their status (Active, Inactive)."""
        keys: dict[str, str] = {}
        with aws_errors(PROVIDER, "ListAccessKeys"):
            pages = (
                self._iam().get_paginator("list_access_keys").paginate(UserName=self.config.user)
            )
            for page in pages:
                for meta in page["AccessKeyMetadata"]:
                    keys[meta["AccessKeyId"]] = meta["Status"]
        return keys

    def _user_arn(self) -> str:
        """Return the configured user's ARN (cached: it never changes)."""
        cache_key = f"aws:iam-user-arn:{self.config.user}"
        arn = self.runtime.cache.get(cache_key)
        if not isinstance(arn, str):
            with aws_errors(PROVIDER, "GetUser"):
                arn = self._iam().get_user(UserName=self.config.user)["User"]["Arn"]
            self.runtime.cache[cache_key] = arn
        return arn

    def permissions(self) -> list[Permission]:
        """Return the IAM actions on the user's ARN, by the step that first needs them.

        ``ListAccessKeys`` and ``CreateAccessKey`` at mint (the inventory,
        making room, the key itself; listing again at verify and after a
        crash); ``GetUser`` at verify (the ARN the new key must sign as);
        ``GetAccessKeyLastUsed`` and ``UpdateAccessKey`` at revoke (the
        last-use evidence, then deactivation); ``DeleteAccessKey`` at delete
        (also to make room at mint and to remove a key a rollback or a crash
        left). The new key proves itself with STS ``GetCallerIdentity``,
        which needs no permission.
        """
        users = user_arns(self.runtime, self.config.user, self.config.region)
        steps = (
            ("issuer: mint access key", ("iam:CreateAccessKey", "iam:ListAccessKeys")),
            ("issuer: verify access key", ("iam:GetUser",)),
            ("issuer: revoke access key", ("iam:GetAccessKeyLastUsed", "iam:UpdateAccessKey")),
            ("issuer: delete access key", ("iam:DeleteAccessKey",)),
        )
        return [
            Permission("aws", actions, resource=arn, step=step)
            for step, actions in steps
            for arn in users
        ]

    def ref_of(self, value: SecretValue) -> str | None:
        """Return the access key id held in ``value`` (``None`` if it holds no key pair)."""
        pair = key_pair(value)
        return pair[0] if pair else None

    def inventory(self) -> list[str]:
        """Return the ids of the user's access keys, whatever their status.

        Raises:
            NotFoundError: the user does not exist.
            PermissionDeniedError: rotator may not list the keys.
            TransientError: throttled or unreachable; retry later.
        """
        return sorted(self._keys())

    def prepare(self, keep: Collection[str]) -> list[str]:
        """Make room for a new key: delete one Inactive key not in ``keep`` if both slots are taken.

        Returns the ids deleted (empty when a slot is free).

        Raises:
            LimitExceededError: both slots hold keys in ``keep``, or the only
                candidate is an Active key rotator does not manage.
            NotFoundError: the user does not exist.
            PermissionDeniedError: rotator may not list or delete the keys.
            TransientError: throttled or unreachable; retry later.
        """
        keys = self._keys()
        victim, refusal = self._room(keys, keep)
        if refusal is not None:
            raise LimitExceededError(refusal, provider=PROVIDER, operation="CreateAccessKey")
        if victim is None:
            return []
        log.info("deleting inactive access key %s of user %s", victim, self.config.user)
        self.delete(victim)
        return [victim]

    def blocks(self, keep: Collection[str]) -> str | None:
        """Say why the user has no room for a new key (an active key rotator does not manage).

        Two keys both kept (the current one, and the old one in its grace)
        are no obstacle: the grace's end revokes the old one first.

        Raises:
            NotFoundError: the user does not exist.
            PermissionDeniedError: rotator may not list the user's keys.
            TransientError: throttled or unreachable; retry later.
        """
        keys = self._keys()
        if all(k in keep for k in keys):
            return None  # both kept for a grace in progress, whose end revokes one
        _, refusal = self._room(keys, keep)
        return refusal

    def _room(self, keys: dict[str, str], keep: Collection[str]) -> tuple[str | None, str | None]:
        """Return the key to delete to make room (or None), or why room cannot be made."""
        if len(keys) < MAX_KEYS:
            return None, None
        spare = [k for k in keys if k not in keep]
        inactive = [k for k in spare if keys[k] != "Active"]
        if inactive:
            return inactive[0], None
        if spare:
            return None, (
                f"user {self.config.user} already has two access keys and {spare[0]} is active "
                "and not managed by this rotation; refusing to delete it (deactivate or delete "
                "it by hand once nothing uses it)"
            )
        return None, (
            f"user {self.config.user} already has two access keys and both are still needed "
            f"(the current key and one in its grace window: {', '.join(sorted(keys))})"
        )

    def mint(self, rotation_id: str) -> Credential:
        """Create a new access key for the user (IAM keys carry no tag, so no rotation id).

        Raises:
            LimitExceededError: the user already has two keys (call ``prepare``).
            NotFoundError: the user does not exist.
            PermissionDeniedError: rotator may not create keys for the user.
            TransientError: throttled or unreachable; retry later.
        """
        try:
            with aws_errors(PROVIDER, "CreateAccessKey"):
                key = self._iam().create_access_key(UserName=self.config.user)["AccessKey"]
        except LimitExceededError as exc:
            raise LimitExceededError(
                f"user {self.config.user} already has two access keys; make room first",
                provider=PROVIDER,
                operation="CreateAccessKey",
            ) from exc
        value = SecretValue({KEY_ID: key["AccessKeyId"], SECRET_KEY: key["SecretAccessKey"]})
        return Credential(value, key["AccessKeyId"])

    def recover(
        self, rotation_id: str, *, known: Collection[str], pending: SecretValue | None
    ) -> Credential | None:
        """Adopt the key ``pending`` holds if it exists; delete every other unknown key.

        A key not in ``known`` was minted by the interrupted rotation. If the
        store's pending value holds it, it is returned; otherwise its secret
        is lost and it is deleted, so no orphan stays and the two-key quota
        is not eaten up.

        Raises:
            NotFoundError: the user does not exist.
            PermissionDeniedError: rotator may not list or delete the keys.
            TransientError: throttled or unreachable; retry later.
        """
        adopt = self.ref_of(pending) if pending is not None else None
        adopted: Credential | None = None
        for key_id in self._keys():
            if key_id in known:
                continue
            if pending is not None and key_id == adopt:
                adopted = Credential(pending, key_id)
                continue
            log.info(
                "deleting orphaned access key %s of user %s (rotation %s)",
                key_id,
                self.config.user,
                rotation_id,
            )
            self.delete(key_id)
        return adopted

    def _attempt(self, sts: STSClient, key_id: str, expected_arn: str) -> str | None:
        """Sign one GetCallerIdentity with the key; return why it failed, or ``None``."""
        try:
            with aws_errors(PROVIDER, "GetCallerIdentity"):
                arn = sts.get_caller_identity()["Arn"]
        except (PermissionDeniedError, TransientError) as exc:
            return str(exc)
        except PermanentError as exc:
            raise VerificationError(
                f"access key {key_id} cannot be used: {exc}",
                provider=PROVIDER,
                operation="GetCallerIdentity",
            ) from None
        if arn != expected_arn:
            return f"access key {key_id} signs as {arn}, not as {expected_arn}"
        return None

    def verify(self, credential: Credential) -> None:
        """Prove the key signs as the configured user (STS ``GetCallerIdentity``).

        IAM is eventually consistent, so a rejected key or a wrong identity is
        retried with backoff (``runtime.sleep``) for up to ``verify_timeout``
        by ``runtime.clock``. The key must also be Active.

        Raises:
            VerificationError: the key never signed as the user in time, is
                not Active, or the value is not an access key pair.
            NotFoundError: the user does not exist.
            PermanentError: no region or endpoint can be resolved for STS.
            TransientError: IAM itself is throttled or unreachable.
        """
        pair = key_pair(credential.value)
        if pair is None:
            raise VerificationError(
                "the value is not an AccessKeyId/SecretAccessKey pair", provider=PROVIDER
            )
        key_id, secret = pair
        expected = self._user_arn()
        sts: STSClient = client(
            self.runtime,
            "sts",
            self.config.region,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
        )
        budget = self.config.verify_timeout.total_seconds()
        start: datetime = self.runtime.clock()
        delay = VERIFY_FIRST_DELAY
        attempts = 0
        while True:
            attempts += 1
            reason = self._attempt(sts, key_id, expected)
            if reason is None:
                break
            elapsed = (self.runtime.clock() - start).total_seconds()
            if elapsed >= budget:
                raise VerificationError(
                    f"access key {key_id} of user {self.config.user} did not work after "
                    f"{attempts} attempt(s) over {elapsed:.0f}s; last: {reason}",
                    provider=PROVIDER,
                    operation="GetCallerIdentity",
                )
            self.runtime.sleep(min(delay, budget - elapsed))
            delay = min(delay * 2, VERIFY_MAX_DELAY)
        status = self._keys().get(key_id)
        if status != "Active":
            raise VerificationError(
                f"access key {key_id} of user {self.config.user} is "
                f"{(status or 'gone').lower()}, not active",
                provider=PROVIDER,
                operation="ListAccessKeys",
            )

    def last_used(self, ref: str) -> datetime | None:
        """Return when access key ``ref`` last signed a request (``None``: never).

        Raises:
            NotFoundError: the key does not exist.
            PermissionDeniedError: rotator may not read the key's last use.
            TransientError: throttled or unreachable; retry later.
        """
        with aws_errors(PROVIDER, "GetAccessKeyLastUsed"):
            used = self._iam().get_access_key_last_used(AccessKeyId=ref)
        return used.get("AccessKeyLastUsed", {}).get("LastUsedDate")

    def revoke(self, ref: str) -> None:
        """Deactivate access key ``ref``; a key already gone is fine.

        Raises:
            PermissionDeniedError: rotator may not update the key.
            TransientError: throttled or unreachable; retry later.
        """
        try:
            with aws_errors(PROVIDER, "UpdateAccessKey"):
                self._iam().update_access_key(
                    UserName=self.config.user, AccessKeyId=ref, Status="Inactive"
                )
        except NotFoundError:
            return

    def delete(self, ref: str) -> None:
        """Delete access key ``ref``; a key already gone is fine.

        Raises:
            PermissionDeniedError: rotator may not delete the key.
            TransientError: throttled or unreachable; retry later.
        """
        try:
            with aws_errors(PROVIDER, "DeleteAccessKey"):
                self._iam().delete_access_key(UserName=self.config.user, AccessKeyId=ref)
        except NotFoundError:
            return
