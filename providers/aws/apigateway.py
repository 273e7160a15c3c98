"""Issuer ``aws-apigateway-api-key``: API Gateway API keys attached to usage plans.

A new key is created enabled, named ``<name_prefix><secret>-<rotation_id>``
and tagged with the rotation id and the secret, then attached to every
configured usage plan. At the end of the grace window the old key is
disabled (``revoke``), and deleted ``delete_after`` later (``delete``).

Unlike an IAM secret access key, an API key's value can be read back at any
time, so a key minted by an interrupted rotation is found again by its name
and adopted rather than deleted.

The stored value is the key's value (a string); the ref is the key id.
``rotator permissions`` grants access to keys by their ``rotator:secret``
tag, so the key in use before the first rotation (which rotator did not
create) must carry ``rotator:secret=<policy name>`` for its revoke and
delete to be allowed.
API Gateway's control plane allows about 5 requests per second per account:
botocore's standard retry mode absorbs short bursts of
``TooManyRequestsException``, and anything longer surfaces as
``TransientError``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets as _secrets
import threading
from collections.abc import Collection, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from providers.aws.clients import QUOTAS, client
from providers.aws.errors import aws_errors
from providers.aws.permissions import apigateway_arn, apigateway_tags_arns
from rotator.adapters import (
    Credential,
    Duration,
    Issuer,
    Permission,
    ProviderConfig,
    SecretValue,
    rates,
)
from rotator.errors import ConflictError, NotFoundError, RotatorError, VerificationError

if TYPE_CHECKING:
    from mypy_boto3_apigateway import APIGatewayClient
    from mypy_boto3_apigateway.type_defs import ApiKeyTypeDef

PROVIDER = "aws-apigateway-api-key"
#: IAM conditions as a Permission carries them: ``(operator, key, values)`` each.
Conditions = tuple[tuple[str, str, tuple[str, ...]], ...]
TAG_ROTATION = "rotator:rotation-id"
TAG_SECRET = "rotator:secret"  # noqa: S105 (a tag name)
#: Longest key name rotator writes; longer prefixes and secret names are cut.
MAX_NAME = 128
_REF_CACHE = "aws:apigateway:refs"
_REF_SALT = "aws:apigateway:ref-salt"
_REF_LOCK = "aws:apigateway:refs-lock"

log = logging.getLogger(__name__)


class ApiKeyConfig(ProviderConfig):
    """Policy fields of the ``aws-apigateway-api-key`` issuer."""

    usage_plans: list[str] = Field(min_length=1)
    name_prefix: str = Field(default="rotator-", max_length=64)
    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    delete_after: Duration = timedelta(0)


class ApiKeyIssuer(Issuer[ApiKeyConfig]):
    """Mints API Gateway API keys attached to the configured usage plans."""

    kind = PROVIDER
    Config = ApiKeyConfig
    requires = ("boto3",)
    extra = "aws"
    example: ClassVar[Mapping[str, object]] = {
        "usage_plans": ["a1b2c3"],
        "name_prefix": "app-",
        "region": "us-east-1",
    }
    docs = "docs/policies.md#issuers-issuerkind"
    quotas = rates(QUOTAS)
    reports_last_use = False
    two_stage_revoke = True

    # -- plumbing ---------------------------------------------------------

    def _ag(self) -> APIGatewayClient:
        return client(self.runtime, "apigateway", self.config.region)

    def key_name(self, rotation_id: str) -> str:
        """Return the name of the key minted for ``rotation_id`` (at most 128 characters)."""
        stem = f"{self.config.name_prefix}{self.secret}"
        return f"{stem[: MAX_NAME - len(rotation_id) - 1]}-{rotation_id}"

    def _find(self, rotation_id: str) -> list[ApiKeyTypeDef]:
        """Return the keys named for ``rotation_id``, values included."""
        name = self.key_name(rotation_id)
        found: list[ApiKeyTypeDef] = []
        with aws_errors(PROVIDER, "GetApiKeys"):
            pages = (
                self._ag()
                .get_paginator("get_api_keys")
                .paginate(nameQuery=name, includeValues=True)
            )
            # nameQuery matches prefixes: keep exact names only.
            for page in pages:
                found.extend(k for k in page.get("items", []) if k.get("name") == name)
        return found

    def _attach(self, key_id: str) -> None:
        """Attach the key to every configured usage plan; already attached is fine."""
        for plan in self.config.usage_plans:
            try:
                with aws_errors(PROVIDER, "CreateUsagePlanKey"):
                    self._ag().create_usage_plan_key(
                        usagePlanId=plan, keyId=key_id, keyType="API_KEY"
                    )
            except ConflictError:
                continue

    def _attached(self, plan: str, key_id: str) -> bool:
        try:
            with aws_errors(PROVIDER, "GetUsagePlanKey"):
                self._ag().get_usage_plan_key(usagePlanId=plan, keyId=key_id)
        except NotFoundError:
            return False
        return True

    def _fingerprint(self, value: str) -> str:
        """Return a keyed hash of a key value, for the in-memory ref cache."""
        salt = self.runtime.cache.setdefault(_REF_SALT, _secrets.token_bytes(32))
        return hmac.new(salt, value.encode(), hashlib.sha256).hexdigest()

    def _refs(self) -> dict[str, str]:
        refs: dict[str, str] = self.runtime.cache.setdefault(_REF_CACHE, {})
        return refs

    def _refs_lock(self) -> threading.Lock:
        # The ref cache is shared by every secret's thread: ``revoke`` scans it
        # while another thread may be adding to it.
        lock: threading.Lock = self.runtime.cache.setdefault(_REF_LOCK, threading.Lock())
        return lock

    @staticmethod
    def _credential(key: ApiKeyTypeDef) -> Credential:
        return Credential(SecretValue(key["value"]), key["id"])

    # -- Issuer -----------------------------------------------------------

    def permissions(self) -> list[Permission]:
        """Return the API Gateway actions (HTTP verbs) by step: plans by id, keys by their tags.

        Key ids are minted by API Gateway, so a key can only be named as
        ``/apikeys/*``; every grant on a key is therefore conditioned on the
        ``rotator:secret`` tag :meth:`mint` puts on it (``aws:ResourceTag``),
        and creating or tagging a key on the tags it is created with
        (``aws:RequestTag`` for this secret, ``aws:TagKeys`` rotator's two).
        A key no such tag marks (another team's) cannot be read, disabled or
        deleted: the key in use before rotator's first rotation must be
        tagged ``rotator:secret=<policy name>`` by hand.

        Mint: ``GET`` on ``/apikeys`` (find a replayed key by name: a list,
        no tag to condition on), ``POST`` there (create it), ``PUT`` on the
        tags of API keys, which the Service Authorization Reference lists
        for ``CreateApiKey`` with tags, and ``GET``/``POST`` on each plan's
        ``/usageplans/ID/keys`` (find the current key's id, attach the new
        key). Verify: ``GET`` on the key and on each plan's ``/keys/*``.
        Revoke: ``PATCH`` on the key (disable). Delete: ``DELETE`` on each
        plan's ``/keys/*`` (detach) and on the key.
        """
        region = self.config.region

        def arns(*paths: str) -> list[str]:
            return [apigateway_arn(self.runtime, path, region) for path in paths]

        plans = [f"/usageplans/{plan}/keys" for plan in sorted(set(self.config.usage_plans))]
        keys = [f"{plan}/*" for plan in plans]
        tagged = (("StringEquals", f"aws:ResourceTag/{TAG_SECRET}", (self.secret,)),)
        tagging = (
            ("StringEquals", f"aws:RequestTag/{TAG_SECRET}", (self.secret,)),
            ("ForAllValues:StringEquals", "aws:TagKeys", (TAG_ROTATION, TAG_SECRET)),
        )
        tags = apigateway_tags_arns(self.runtime, "/apikeys/", region)
        steps: list[tuple[str, tuple[str, ...], list[str], Conditions]] = [
            ("issuer: find api key", ("apigateway:GET",), arns("/apikeys"), ()),
            ("issuer: mint api key", ("apigateway:GET", "apigateway:POST"), arns(*plans), ()),
            ("issuer: create api key", ("apigateway:POST",), arns("/apikeys"), tagging),
            ("issuer: tag api key", ("apigateway:PUT",), tags, tagging),
            ("issuer: verify api key", ("apigateway:GET",), arns("/apikeys/*"), tagged),
            ("issuer: verify api key in usage plan", ("apigateway:GET",), arns(*keys), ()),
            ("issuer: revoke api key", ("apigateway:PATCH",), arns("/apikeys/*"), tagged),
            ("issuer: delete api key", ("apigateway:DELETE",), arns("/apikeys/*"), tagged),
            ("issuer: detach api key", ("apigateway:DELETE",), arns(*keys), ()),
        ]
        return [
            Permission("aws", actions, resource=arn, step=step, conditions=conditions)
            for step, actions, found, conditions in steps
            for arn in found
        ]

    def ref_of(self, value: SecretValue) -> str | None:
        """Return the id of the key whose value is ``value``, among the usage plans' keys.

        The answer is cached in ``runtime.cache`` under a keyed hash of the
        value. Returns ``None`` if no configured plan holds the key.

        Raises:
            NotFoundError: a configured usage plan does not exist.
            PermissionDeniedError: rotator may not read the plans' keys.
            TransientError: throttled or unreachable; retry later.
        """
        plain = value.reveal()
        if not isinstance(plain, str):
            return None
        fingerprint = self._fingerprint(plain)
        refs = self._refs()
        known = refs.get(fingerprint)
        if known is not None:
            return known
        for plan in self.config.usage_plans:
            with aws_errors(PROVIDER, "GetUsagePlanKeys"):
                pages = self._ag().get_paginator("get_usage_plan_keys").paginate(usagePlanId=plan)
                for page in pages:
                    for item in page.get("items", []):
                        if item.get("value") == plain and "id" in item:
                            with self._refs_lock():
                                refs[fingerprint] = item["id"]
                            return item["id"]
        return None

    def mint(self, rotation_id: str) -> Credential:
        """Create an enabled key named and tagged for ``rotation_id``; attach it to every plan.

        If a key of that name exists already (a replay), it is reused. If a
        plan refuses the key, the key is deleted again before the error is
        raised.

        Raises:
            NotFoundError: a configured usage plan does not exist.
            PermissionDeniedError: rotator may not create or attach keys.
            TransientError: throttled or unreachable; retry later.
            PermanentError: API Gateway refused the key (its quota of keys, for instance).
        """
        existing = self._find(rotation_id)
        if existing:
            self._attach(existing[0]["id"])
            return self._credential(existing[0])
        with aws_errors(PROVIDER, "CreateApiKey"):
            key = self._ag().create_api_key(
                name=self.key_name(rotation_id),
                description=f"rotator: secret {self.secret}, rotation {rotation_id}",
                enabled=True,
                tags={TAG_ROTATION: rotation_id, TAG_SECRET: self.secret},
            )
        credential = Credential(SecretValue(key["value"]), key["id"])
        try:
            self._attach(key["id"])
        except RotatorError:
            try:
                self.delete(key["id"])
            except RotatorError:
                log.warning("could not delete API key %s after a failed attach", key["id"])
            raise
        with self._refs_lock():
            self._refs()[self._fingerprint(key["value"])] = key["id"]
        return credential

    def recover(
        self, rotation_id: str, *, known: Collection[str], pending: SecretValue | None
    ) -> Credential | None:
        """Adopt the key minted for ``rotation_id`` (its value can be read back).

        The key named for the rotation is re-attached to every plan and
        returned, even when the store has no pending value yet. If
        ``pending`` holds a different value, the named key is deleted and the
        key holding ``pending`` (found through the plans) is returned
        instead, if it exists.

        Raises:
            NotFoundError: a configured usage plan does not exist.
            PermissionDeniedError: rotator may not read, attach or delete keys.
            TransientError: throttled or unreachable; retry later.
        """
        adopted: Credential | None = None
        for key in self._find(rotation_id):
            if key["id"] in known:
                continue
            matches = pending is None or pending.text() == key.get("value")
            if adopted is None and matches:
                self._attach(key["id"])
                adopted = self._credential(key)
                continue
            log.info("deleting API key %s left by rotation %s", key["id"], rotation_id)
            self.delete(key["id"])
        if adopted is None and pending is not None:
            ref = self.ref_of(pending)
            if ref is not None and ref not in known:
                adopted = Credential(pending, ref)
        return adopted

    def verify(self, credential: Credential) -> None:
        """Check the key exists, is enabled, holds the value and is in every usage plan.

        Raises:
            VerificationError: any of those is not so.
            PermissionDeniedError: rotator may not read the key or the plans.
            TransientError: throttled or unreachable; retry later.
        """
        ref = credential.ref or self.ref_of(credential.value)
        if ref is None:
            raise VerificationError(
                "no API key in the configured usage plans holds the new value", provider=PROVIDER
            )
        try:
            with aws_errors(PROVIDER, "GetApiKey"):
                key = self._ag().get_api_key(apiKey=ref, includeValue=True)
        except NotFoundError:
            raise VerificationError(
                f"API key {ref} does not exist", provider=PROVIDER, operation="GetApiKey"
            ) from None
        if not key.get("enabled"):
            raise VerificationError(
                f"API key {ref} is disabled", provider=PROVIDER, operation="GetApiKey"
            )
        if key.get("value") != credential.value.text():
            raise VerificationError(
                f"API key {ref} holds another value than the one minted",
                provider=PROVIDER,
                operation="GetApiKey",
            )
        missing = [p for p in self.config.usage_plans if not self._attached(p, ref)]
        if missing:
            raise VerificationError(
                f"API key {ref} is not attached to usage plan(s) {', '.join(missing)}",
                provider=PROVIDER,
                operation="GetUsagePlanKey",
            )

    def revoke(self, ref: str) -> None:
        """Disable API key ``ref``; a key already gone is fine.

        Raises:
            PermissionDeniedError: rotator may not update the key.
            TransientError: throttled or unreachable; retry later.
        """
        try:
            with aws_errors(PROVIDER, "UpdateApiKey"):
                self._ag().update_api_key(
                    apiKey=ref,
                    patchOperations=[{"op": "replace", "path": "/enabled", "value": "false"}],
                )
        except NotFoundError:
            return

    def delete(self, ref: str) -> None:
        """Detach API key ``ref`` from the configured plans and delete it; gone is fine.

        Raises:
            PermissionDeniedError: rotator may not detach or delete the key.
            TransientError: throttled or unreachable; retry later.
        """
        for plan in self.config.usage_plans:
            if not self._attached(plan, ref):
                continue
            try:
                with aws_errors(PROVIDER, "DeleteUsagePlanKey"):
                    self._ag().delete_usage_plan_key(usagePlanId=plan, keyId=ref)
            except NotFoundError:
                continue
        try:
            with aws_errors(PROVIDER, "DeleteApiKey"):
                self._ag().delete_api_key(apiKey=ref)
        except NotFoundError:
            pass
        refs = self._refs()
        with self._refs_lock():
            for fingerprint in [f for f, r in refs.items() if r == ref]:
                del refs[fingerprint]
