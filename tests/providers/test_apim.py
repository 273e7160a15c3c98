"""The azure-apim-subscription issuer, driven through the real azure-mgmt-apimanagement client.

The Azure emulator serves ARM's APIM subscription calls and a gateway over
HTTPS; the issuer logs in with the real ``ManagedIdentityCredential`` (the
emulator's token endpoint), as in production. Whole rotations run through
the engine with the Key Vault store (the same emulator) and an ``http``
verifier calling the gateway with the new key. A crash is simulated by
raising, at the engine's fault points (``rotator.engine.faults.POINTS``), an
exception nothing below the engine catches, then resuming with a new engine,
journal handle and issuer (nothing in memory survives, as after SIGKILL).
"""

from __future__ import annotations

import json
import logging
import string
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.keyvault.secrets._shared import http_challenge_cache

from providers.azure import identity
from providers.azure.apim import (
    OPERATIONS,
    ApimSubscriptionConfig,
    ApimSubscriptionIssuer,
    apim_operation,
    management_scope,
)
from rotator.adapters import Issuer
from rotator.adapters.secret import SecretValue
from rotator.adapters.values import Credential, Runtime
from rotator.engine import faults
from rotator.engine.runner import Engine
from rotator.errors import (
    ConflictError,
    LimitExceededError,
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    TransientError,
    VerificationError,
)
from rotator.journal.journal import Journal
from rotator.lifecycle import State
from rotator.output import redact
from rotator.policy.loader import load_policies
from rotator.sandbox.azure import KeyVaultEmulator
from rotator.sandbox.azure.sandbox import APIM_SECRET, APIM_SERVICE, APIM_SID, AzureSandbox
from rotator.sandbox.run import demo_policy
from rotator.testing import IssuerContract, new_rotation_id
from tests.conftest import FakeClock
from tests.providers.azure.backends import emulator_admin, point_at_emulator

AZURE_SUBSCRIPTION = "3f2a6c1e-8d4b-4c7a-9e5f-1a2b3c4d5e6f"
RESOURCE_GROUP = "rg-api"
SERVICE = "contoso-apim"
SID = "partner-42"
NAME = "partner-key"
POLICY = "partner/apim-key"
SLOTS = ("primary", "secondary")


def other(slot: str) -> str:
    """Return the other slot."""
    return "secondary" if slot == "primary" else "primary"


class Crash(BaseException):
    """Stands for SIGKILL at a fault point: no ``except Exception`` below the engine stops it."""


@dataclass
class Apim:
    """The emulator, the APIM subscription seeded in it, and ways to look at both."""

    kv: KeyVaultEmulator
    workdir: Path
    monkeypatch: pytest.MonkeyPatch
    clock: FakeClock = field(default_factory=lambda: FakeClock(datetime.now(UTC)))
    requests_seen: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def admin(self) -> Any:
        """A SecretClient of the emulator's own, for the store's secret."""
        return emulator_admin(self.kv)

    def keys(self) -> dict[str, str]:
        """Both keys of the subscription, by slot."""
        primary, secondary = self.kv.apim.keys(SERVICE, SID)
        return {"primary": primary, "secondary": secondary}

    def slot_of(self, value: str) -> str | None:
        """The slot holding ``value``, if any."""
        return next((s for s, k in self.keys().items() if k == value), None)

    def accepts(self, key: str) -> bool:
        """Tell whether the gateway lets ``key`` in (200) or not (401)."""
        answer = requests.get(
            self.kv.apim.gateway_url(SERVICE),
            headers={"Ocp-Apim-Subscription-Key": key},
            verify=self.kv.ca_path,
            timeout=10,
        )
        assert answer.status_code in (200, 401), answer.text
        return answer.status_code == 200

    def current(self) -> str:
        """The store's current value."""
        value: str = self.admin.get_secret(NAME).value
        return value

    def regenerated(self) -> list[str]:
        """The slots regenerated so far, in order (from the emulator's request log)."""
        slots = {"regenerateprimarykey": "primary", "regeneratesecondarykey": "secondary"}
        return [
            slots[r.path.rsplit("/", 1)[-1].lower()]
            for r in self.kv.request_log
            if r.status == 204 and r.path.rsplit("/", 1)[-1].lower() in slots
        ]

    def resource_path(self) -> str:
        """The ARM path of the subscription (a fault prefix)."""
        return self.kv.apim.resource_path(
            SERVICE, SID, azure_subscription=AZURE_SUBSCRIPTION, resource_group=RESOURCE_GROUP
        )

    def config(self, **changes: Any) -> ApimSubscriptionConfig:
        """The issuer's policy fields for the seeded subscription."""
        fields: dict[str, Any] = {
            "subscription_id": AZURE_SUBSCRIPTION,
            "resource_group": RESOURCE_GROUP,
            "service": SERVICE,
            "sid": SID,
            "management_url": self.kv.url,
        }
        return ApimSubscriptionConfig(**(fields | changes))

    def issuer(self, runtime: Runtime | None = None, **changes: Any) -> ApimSubscriptionIssuer:
        """A fresh issuer (its own runtime and client) for the seeded subscription."""
        runtime = runtime or Runtime(
            clock=lambda: datetime.now(UTC),
            sleep=lambda _: None,
            cache={},
            on_request=lambda *seen: self.requests_seen.append(seen),
        )
        return ApimSubscriptionIssuer(self.config(**changes), runtime, POLICY)

    def policy_file(self, *, verify: bool = True) -> Path:
        """Write the policy: Key Vault store, APIM issuer, and the gateway as verifier."""
        secret: dict[str, Any] = {
            "name": POLICY,
            "store": {"provider": "azure-keyvault", "vault_url": self.kv.vault_url, "name": NAME},
            "issuer": {"kind": "azure-apim-subscription"}
            | self.config().model_dump(exclude_defaults=False),
            "schedule": {"every": "30d"},
            "grace": "1h",
        }
        if verify:
            secret["verify"] = [
                {
                    "kind": "http",
                    "url": self.kv.apim.gateway_url(SERVICE),
                    "headers": {"Ocp-Apim-Subscription-Key": "{new}"},
                    "ca_file": self.kv.ca_path,
                }
            ]
        path = self.workdir / "policies.yaml"
        path.write_text(json.dumps({"secrets": [secret]}))
        return path

    def engine(self, *, verify: bool = True) -> Engine:
        """A new engine, journal handle and adapters, as a restarted process has."""
        return Engine(
            load_policies(self.policy_file(verify=verify)),
            Journal(f"sqlite:///{self.workdir / 'journal.db'}", self.clock),
            clock=self.clock,
            sleep=self.clock.sleep,
        )

    def crash_at(self, point: str) -> None:
        """Make the engine's fault point ``point`` raise :class:`Crash` (until :meth:`heal`)."""
        real = faults.point

        def at(name: str) -> None:
            if name == point:
                raise Crash(name)
            real(name)

        self.monkeypatch.setattr(faults, "point", at)

    def heal(self) -> None:
        """Stop crashing at fault points."""
        self.monkeypatch.setattr(faults, "point", _REAL_POINT)


_REAL_POINT = faults.point


@pytest.fixture(autouse=True)
def _fresh_challenge_cache() -> Iterator[None]:
    """Empty the Key Vault SDK's process-global challenge cache around each test."""
    http_challenge_cache.clear()
    yield
    http_challenge_cache.clear()


@pytest.fixture
def apim(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Apim]:
    """The emulator with one APIM subscription; the store holds its secondary key."""
    # Deletes complete at once: the emulator runs on the wall clock, the engine on a fake one.
    with KeyVaultEmulator(delete_delay=0, recover_delay=0) as kv:
        point_at_emulator(monkeypatch, kv, managed=True)
        _primary, secondary = kv.apim.add_subscription(
            SERVICE,
            SID,
            azure_subscription=AZURE_SUBSCRIPTION,
            resource_group=RESOURCE_GROUP,
            display_name="Partner 42",
        )
        emulator_admin(kv).set_secret(NAME, secondary)
        yield Apim(kv, tmp_path, monkeypatch)


def _state(engine: Engine, rotation_id: str | None) -> Any:
    assert rotation_id is not None
    found = engine.journal.get(rotation_id)
    assert found is not None
    return found


# -- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://management.azure.com",
        "https://management.example.com",
        "https://evil.azure.com.example.net",
        "https://management.azure.com/subscriptions",
        "https://user@management.azure.com",
    ],
)
def test_config_refuses_a_management_url_a_token_must_not_go_to(url: str) -> None:
    """Only a cloud's Resource Manager endpoint or loopback, over https, may receive ARM tokens."""
    with pytest.raises(ValueError, match="management_url"):
        ApimSubscriptionConfig(
            subscription_id=AZURE_SUBSCRIPTION,
            resource_group=RESOURCE_GROUP,
            service=SERVICE,
            sid=SID,
            management_url=url,
        )


def test_config_normalises_and_picks_the_clouds_scope() -> None:
    """The default is the public cloud; a sovereign cloud gets its own token scope."""
    config = ApimSubscriptionConfig(
        subscription_id=AZURE_SUBSCRIPTION.upper(),
        resource_group=RESOURCE_GROUP,
        service=SERVICE,
        sid=SID,
    )
    assert config.subscription_id == AZURE_SUBSCRIPTION
    assert config.management_url == "https://management.azure.com"
    assert management_scope(config.management_url) == "https://management.azure.com/.default"
    assert (
        management_scope("https://management.chinacloudapi.cn")
        == "https://management.chinacloudapi.cn/.default"
    )
    assert management_scope("https://127.0.0.1:8443") == "https://management.azure.com/.default"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subscription_id", "not-a-guid"),
        ("service", "1starts-with-a-digit"),
        ("sid", "has/a-slash"),
        ("resource_group", "ends-with-a-period."),
    ],
)
def test_config_refuses_malformed_identifiers(field: str, value: str) -> None:
    """Identifiers ARM would refuse (or that would break a ref) fail validation."""
    fields = {
        "subscription_id": AZURE_SUBSCRIPTION,
        "resource_group": RESOURCE_GROUP,
        "service": SERVICE,
        "sid": SID,
    }
    with pytest.raises(ValueError, match=field):
        ApimSubscriptionConfig(**(fields | {field: value}))


def test_operation_names_are_bounded() -> None:
    """Requests are named by their ARM call, never by a path or id."""
    base = "/subscriptions/x/resourceGroups/g/providers/Microsoft.ApiManagement/service/s"
    assert apim_operation("GET", f"{base}/subscriptions/abc") == "subscriptions.get"
    assert apim_operation("POST", f"{base}/subscriptions/abc/listSecrets") == (
        "subscriptions.list_secrets"
    )
    assert apim_operation("POST", f"{base}/subscriptions/abc/regeneratePrimaryKey") == (
        "subscriptions.regenerate_primary_key"
    )
    assert apim_operation("DELETE", f"{base}/subscriptions/abc") == "other"
    assert apim_operation("GET", "/subscriptions/x") == "other"
    named = {
        apim_operation(verb, f"{base}/subscriptions/abc{tail}")
        for verb in ("GET", "HEAD", "POST", "PUT", "DELETE")
        for tail in ("", "/listSecrets", "/regeneratePrimaryKey", "/regenerateSecondaryKey")
    }
    assert named == OPERATIONS


# -- the issuer, call by call ------------------------------------------------------------


def test_ref_of_tells_the_slots_apart(apim: Apim) -> None:
    """ref_of names the slot holding a value, and None for a value in neither."""
    issuer = apim.issuer()
    keys = apim.keys()
    assert issuer.ref_of(SecretValue(keys["primary"])) == f"{SID}/primary"
    assert issuer.ref_of(SecretValue(keys["secondary"])) == f"{SID}/secondary"
    assert issuer.ref_of(SecretValue("0123456789abcdef0123456789abcdef")) is None
    assert issuer.ref_of(SecretValue({"key": keys["primary"]})) is None
    assert {op for _, op, _ in apim.requests_seen} == {"subscriptions.list_secrets"}
    assert all(p == "azure-apim" and o == "ok" for p, _, o in apim.requests_seen)


def test_mint_regenerates_only_the_slot_consumers_do_not_hold(apim: Apim) -> None:
    """Told the primary is held, mint regenerates the secondary and returns its new key."""
    before = apim.keys()
    issuer = apim.issuer()
    assert issuer.prepare([f"{SID}/primary"]) == []
    assert issuer.inventory() == [f"{SID}/primary"]
    minted = issuer.mint("r1")
    after = apim.keys()
    assert minted.ref == f"{SID}/secondary"
    assert minted.value.reveal() == after["secondary"] != before["secondary"]
    assert after["primary"] == before["primary"]
    assert apim.regenerated() == ["secondary"]
    issuer.verify(minted)


def test_mint_without_being_told_what_is_held_regenerates_nothing(apim: Apim) -> None:
    """A mint with no prepare or recover before it refuses rather than guess a slot."""
    with pytest.raises(PermanentError, match="not known"):
        apim.issuer().mint("r1")
    assert apim.regenerated() == []


def test_both_slots_held_refuses_before_any_regeneration(apim: Apim) -> None:
    """With the current key and one in grace held, prepare refuses: no slot is free."""
    issuer = apim.issuer()
    with pytest.raises(LimitExceededError, match="both keys"):
        issuer.prepare([f"{SID}/primary", f"{SID}/secondary"])
    with pytest.raises(LimitExceededError):
        issuer.mint("r1")
    assert apim.regenerated() == []


def test_nothing_held_regenerates_the_secondary(apim: Apim) -> None:
    """On a first rotation with an empty store, the conventional standby (secondary) is used."""
    issuer = apim.issuer()
    issuer.prepare([])
    assert issuer.mint("r1").ref == f"{SID}/secondary"
    assert apim.regenerated() == ["secondary"]


def test_refs_of_another_subscription_are_refused(apim: Apim) -> None:
    """A ref naming another sid is never applied to this subscription."""
    issuer = apim.issuer()
    with pytest.raises(ConflictError, match="not a key of APIM subscription"):
        issuer.revoke("someone-else/primary")
    with pytest.raises(ConflictError):
        issuer.recover("r1", known=["someone-else/primary"], pending=None)
    assert issuer.prepare(["someone-else/primary"]) == []
    assert issuer.inventory() == []
    assert apim.regenerated() == []


def test_revoke_kills_the_old_value_and_replaying_it_is_harmless(apim: Apim) -> None:
    """revoke regenerates the named slot (the gateway then refuses its value); twice is fine."""
    keys = apim.keys()
    issuer = apim.issuer()
    issuer.revoke(f"{SID}/primary")
    issuer.revoke(f"{SID}/primary")
    assert not apim.accepts(keys["primary"])
    assert apim.accepts(keys["secondary"])
    assert apim.keys()["secondary"] == keys["secondary"]
    issuer.delete(f"{SID}/primary")
    assert apim.regenerated() == ["primary", "primary"]


def test_recover_adopts_a_pending_value_still_in_the_standby_slot(apim: Apim) -> None:
    """With the pending value in the standby slot, recover adopts it without regenerating."""
    minter = apim.issuer()
    minter.prepare([f"{SID}/secondary"])
    minted = minter.mint("r1")
    fresh = apim.issuer()
    adopted = fresh.recover("r1", known=[f"{SID}/secondary"], pending=minted.value)
    assert adopted == Credential(minted.value, f"{SID}/primary")
    assert apim.regenerated() == ["primary"]


def test_recover_without_pending_adopts_nothing_and_the_next_mint_uses_the_standby(
    apim: Apim,
) -> None:
    """No pending value: nothing adopted; mint then regenerates the standby (never the held)."""
    held = apim.keys()["secondary"]
    fresh = apim.issuer()
    assert fresh.recover("r1", known=[f"{SID}/secondary"], pending=None) is None
    assert fresh.mint("r1").ref == f"{SID}/primary"
    assert apim.keys()["secondary"] == held
    stale = SecretValue("0123456789abcdef0123456789abcdef")
    assert apim.issuer().recover("r1", known=[f"{SID}/secondary"], pending=stale) is None


def test_verify_refuses_a_value_the_slot_no_longer_holds(apim: Apim) -> None:
    """verify proves the slot holds the value; a regenerated slot fails verification."""
    issuer = apim.issuer()
    issuer.prepare([f"{SID}/secondary"])
    minted = issuer.mint("r1")
    issuer.revoke(f"{SID}/primary")
    with pytest.raises(VerificationError, match="another value") as caught:
        issuer.verify(minted)
    assert minted.value.reveal() not in str(caught.value)
    with pytest.raises(VerificationError, match="names no slot"):
        issuer.verify(Credential(minted.value, None))


def test_verify_refuses_a_suspended_subscription(apim: Apim) -> None:
    """A subscription that is not active fails verification: the gateway refuses its keys."""
    issuer = apim.issuer()
    issuer.prepare([f"{SID}/secondary"])
    minted = issuer.mint("r1")
    apim.kv.apim.set_state(SERVICE, SID, "suspended")
    with pytest.raises(VerificationError, match="is suspended"):
        issuer.verify(minted)
    assert not apim.accepts(minted.value.text())


def test_permissions_are_the_arm_actions_on_the_subscription(apim: Apim) -> None:
    """Four control-plane actions, each on the subscription's resource id, named by step."""
    issuer = apim.issuer()
    needed = issuer.permissions()
    assert {a for p in needed for a in p.actions} == {
        "Microsoft.ApiManagement/service/subscriptions/read",
        "Microsoft.ApiManagement/service/subscriptions/listSecrets/action",
        "Microsoft.ApiManagement/service/subscriptions/regeneratePrimaryKey/action",
        "Microsoft.ApiManagement/service/subscriptions/regenerateSecondaryKey/action",
    }
    assert {p.resource for p in needed} == {
        f"/subscriptions/{AZURE_SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/"
        f"Microsoft.ApiManagement/service/{SERVICE}/subscriptions/{SID}"
    }
    assert {p.system for p in needed} == {"azure"}
    assert {"issuer: mint", "issuer: revoke", "issuer: verify"} <= {p.step for p in needed}


# -- errors ---------------------------------------------------------------------------------


@pytest.fixture
def no_sdk_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each injected answer reaches the issuer as is."""
    monkeypatch.setattr(identity, "SDK_RETRIES", 0)


def assert_clean(error: BaseException, secrets: list[str]) -> None:
    """No key in the error's text, its rendered traceback, or the exception it replaced."""
    rendered = "".join(traceback.format_exception(error))
    for value in secrets:
        assert value not in rendered
    assert error.__cause__ is None
    context = error.__context__
    if context is not None:
        assert getattr(context, "response", None) is None
        assert context.__traceback__ is None


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"sid": "ghost-sub"}, "ResourceNotFound"),
        ({"service": "ghost-apim"}, "ResourceNotFound"),
        ({"resource_group": "rg-ghost"}, "ResourceGroupNotFound"),
        ({"subscription_id": "00000000-0000-0000-0000-00000000dead"}, "SubscriptionNotFound"),
    ],
)
def test_an_unknown_subscription_is_not_found_and_named(
    apim: Apim, changes: dict[str, str], code: str
) -> None:
    """A 404 becomes NotFoundError naming the subscription, its service and where they live."""
    issuer = apim.issuer(**changes)
    with pytest.raises(NotFoundError) as caught:
        issuer.inventory()
    message = str(caught.value)
    assert f"HTTP 404 {code}" in message
    for value in changes.values():
        assert value in message
    assert "APIM subscription" in message
    assert_clean(caught.value, list(apim.keys().values()))


class ForeignToken:
    """A credential whose token the emulator never issued."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """Return a token nobody issued."""
        return AccessToken("not-a-token-the-emulator-issued", int(time.time()) + 3600)


class VaultToken:
    """A credential that always returns a token for Key Vault, whatever it is asked for."""

    def __init__(self, kv: KeyVaultEmulator) -> None:
        self.kv = kv

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """Return a Key Vault token (a wrong audience for ARM)."""
        token: AccessToken = self.kv.credential().get_token("https://vault.azure.net/.default")
        return token


@pytest.mark.parametrize("make", [lambda _kv: ForeignToken(), VaultToken])
def test_a_refused_token_is_permission_denied(apim: Apim, make: Any) -> None:
    """ARM's 401 (unknown token, wrong audience) becomes PermissionDeniedError."""
    runtime = Runtime(clock=lambda: datetime.now(UTC), sleep=lambda _: None, cache={})
    runtime.cache[identity.CREDENTIAL_KEY] = make(apim.kv)
    with pytest.raises(PermissionDeniedError, match="HTTP 401") as caught:
        apim.issuer(runtime).ref_of(SecretValue(apim.keys()["primary"]))
    assert "Azure Resource Manager" in str(caught.value)
    arm = [r.status for r in apim.kv.request_log if r.path.startswith("/subscriptions/")]
    assert arm == [401]


def test_a_403_is_permission_denied_and_points_at_the_permissions(
    apim: Apim, no_sdk_retries: None
) -> None:
    """ARM's 403 AuthorizationFailed becomes PermissionDeniedError naming `rotator permissions`."""
    apim.kv.inject_fault(apim.resource_path(), status=403)
    issuer = apim.issuer()
    issuer.prepare([f"{SID}/secondary"])
    with pytest.raises(PermissionDeniedError, match="rotator permissions") as caught:
        issuer.mint("r1")
    assert "AuthorizationFailed" in str(caught.value)
    assert apim.regenerated() == []
    assert_clean(caught.value, list(apim.keys().values()))


def test_a_429_is_transient_with_its_retry_after(apim: Apim, no_sdk_retries: None) -> None:
    """A throttled listSecrets becomes TransientError whose delay is Retry-After."""
    apim.kv.inject_fault(apim.resource_path() + "/listSecrets", status=429, retry_after=7)
    with pytest.raises(TransientError) as caught:
        apim.issuer().ref_of(SecretValue(apim.keys()["primary"]))
    assert caught.value.delay == 7.0
    assert "HTTP 429 TooManyRequests" in str(caught.value)
    assert ("azure-apim", "subscriptions.list_secrets", "throttled") in apim.requests_seen
    assert_clean(caught.value, list(apim.keys().values()))


@pytest.mark.parametrize("status", [500, 503])
def test_a_5xx_is_transient(apim: Apim, no_sdk_retries: None, status: int) -> None:
    """A server error of ARM becomes TransientError (the engine retries the step)."""
    apim.kv.inject_fault(apim.resource_path(), status=status, method="POST")
    issuer = apim.issuer()
    with pytest.raises(TransientError, match=f"HTTP {status}"):
        issuer.revoke(f"{SID}/primary")
    assert apim.regenerated() == []


def test_the_sdks_own_retry_absorbs_one_503(apim: Apim) -> None:
    """With the SDK's retries on (the default), one 503 is retried and the call succeeds."""
    apim.kv.inject_fault(apim.resource_path() + "/listSecrets", status=503, retry_after=0)
    assert apim.issuer().ref_of(SecretValue(apim.keys()["primary"])) == f"{SID}/primary"
    outcomes = [o for _, op, o in apim.requests_seen if op == "subscriptions.list_secrets"]
    assert outcomes == ["transient", "ok"]


# -- the Issuer contract ---------------------------------------------------------------------

#: Why a rotation never holds two minted keys.
ONE_STANDBY_SLOT = (
    "a mint regenerates the one standby slot, so a second mint of a rotation kills the first "
    "one's key: a rotation never holds two"
)


class TestApimContract(IssuerContract):
    """The Issuer contract over azure-apim-subscription, against the emulator: two slots."""

    limit = 2
    apim: Apim
    monkeypatch: pytest.MonkeyPatch

    @pytest.fixture
    def issuer(self, apim: Apim, monkeypatch: pytest.MonkeyPatch) -> Issuer[Any]:
        self.apim, self.monkeypatch = apim, monkeypatch
        return apim.issuer()

    def usable(self, issuer: Issuer[Any], credential: Credential) -> bool:
        return self.apim.accepts(credential.value.text())

    @contextmanager
    def unavailable(self, issuer: Issuer[Any]) -> Iterator[None]:
        # No SDK retries (each waits for real): the first 503 is the answer.
        self.monkeypatch.setattr(identity, "SDK_RETRIES", 0)
        issuer.runtime.cache.clear()
        self.apim.kv.inject_fault(self.apim.resource_path(), status=503, count=1000)
        try:
            yield
        finally:
            self.apim.kv.clear_faults()

    @pytest.mark.skip(
        reason="inventory() names the slots consumers hold (what prepare was told), not the "
        "standby slot a mint regenerates"
    )
    def test_inventory_lists_a_minted_credential(self, issuer: Issuer[Any]) -> None:
        super().test_inventory_lists_a_minted_credential(issuer)

    @pytest.mark.skip(reason=ONE_STANDBY_SLOT)
    def test_recover_keeps_only_the_pending_one_of_the_rotations_credentials(
        self, issuer: Issuer[Any]
    ) -> None:
        super().test_recover_keeps_only_the_pending_one_of_the_rotations_credentials(issuer)

    def test_recover_without_pending_leaves_no_orphan(self, issuer: Issuer[Any]) -> None:
        """A key minted but never stored is not adopted: the next mint kills it (APIM's way).

        A regenerated key cannot be told from the one before it, so recover()
        adopts nothing; the engine mints again, regenerating the same standby
        slot, and the lost key stops working.
        """
        rotation_id = new_rotation_id()
        known = self.start(issuer)
        lost = issuer.mint(rotation_id)
        assert issuer.recover(rotation_id, known=known, pending=None) is None
        issuer.mint(rotation_id)
        assert not self.usable(issuer, lost)


# -- whole rotations through the engine ---------------------------------------------------


def test_three_rotations_alternate_the_slots_and_never_touch_the_current_one(
    apim: Apim,
) -> None:
    """primary, secondary, primary: each verified at the gateway, the old key dying at grace end."""
    engine = apim.engine()
    minted: list[str] = []
    for _round in range(3):
        held = apim.current()
        held_slot = apim.slot_of(held)
        assert held_slot is not None
        [outcome] = engine.rotate(POLICY).outcomes
        assert outcome.state is State.GRACE, outcome.message
        rotation = _state(engine, outcome.rotation_id)
        assert rotation.old_ref == f"{SID}/{held_slot}"
        assert rotation.new_ref == f"{SID}/{other(held_slot)}"
        minted.append(other(held_slot))
        new = apim.current()
        assert new != held and apim.slot_of(new) == other(held_slot)
        assert apim.keys()[held_slot] == held, "the current slot was regenerated"
        assert apim.accepts(held) and apim.accepts(new)
        apim.clock.advance(timedelta(hours=2))
        [ended] = engine.run_once().outcomes
        assert ended.state is State.DONE, ended.message
        assert not apim.accepts(held), "the old key outlived its grace"
        assert apim.accepts(new)
    assert minted == ["primary", "secondary", "primary"]
    # mint P, revoke S, mint S, revoke P, mint P, revoke S.
    assert apim.regenerated() == [
        "primary",
        "secondary",
        "secondary",
        "primary",
        "primary",
        "secondary",
    ]
    gateway = [r.status for r in apim.kv.request_log if r.path.startswith("/apim/")]
    # Each round: the verifier's call, then this test's four checks.
    assert gateway == [200, 200, 200, 401, 200] * 3


def test_a_rotation_the_gateway_refuses_rolls_back_and_kills_the_new_key(apim: Apim) -> None:
    """The verifier's 401 rolls back: the standby is regenerated again, the current key stays."""
    held = apim.current()
    # The gateway refuses the next call, whatever key it carries.
    apim.kv.inject_fault(f"/apim/{SERVICE}/", status=401)
    [outcome] = apim.engine().rotate(POLICY).outcomes
    assert outcome.state is State.ROLLED_BACK
    assert "HTTP 401" in outcome.message
    assert apim.current() == held and apim.accepts(held)
    assert apim.regenerated() == ["primary", "primary"]
    minted_then_killed = apim.kv.apim.every_key()[-2]
    assert not apim.accepts(minted_then_killed)


def test_a_suspended_subscription_rolls_back_without_touching_the_current_key(
    apim: Apim,
) -> None:
    """The issuer's own verify refuses a suspended subscription; rollback kills the new key."""
    held = apim.current()
    apim.kv.apim.set_state(SERVICE, SID, "suspended")
    [outcome] = apim.engine().rotate(POLICY).outcomes
    assert outcome.state is State.ROLLED_BACK
    assert "suspended" in outcome.message
    assert apim.keys()["secondary"] == held
    assert apim.regenerated() == ["primary", "primary"]


def test_preflight_reads_the_current_key_and_the_subscription(apim: Apim) -> None:
    """`rotator check` finds the current key's slot, reads the subscription, and the gateway."""
    engine = apim.engine()
    findings = {f.check: f for f in engine.check([POLICY])}
    assert findings["issuer"].verdict.value == "ok"
    assert f"current credential {SID}/secondary" in findings["issuer"].detail
    [verifier] = [f for c, f in findings.items() if c.startswith("verify")]
    assert verifier.verdict.value == "ok"
    assert apim.regenerated() == []


def test_every_request_a_rotation_sends_is_covered_by_the_permissions(apim: Apim) -> None:
    """A rolled-back rotation and a whole one send only ARM calls the listed actions cover."""
    engine = apim.engine()
    granted = {a for p in engine.binding(POLICY).issuer.permissions() for a in p.actions}
    with faults.armed("fail:verify"):
        [rolled] = engine.rotate(POLICY).outcomes
    engine.rotate(POLICY)
    apim.clock.advance(timedelta(hours=2))
    [done] = engine.run_once().outcomes
    assert rolled.state is State.ROLLED_BACK and done.state is State.DONE
    by_tail = {
        "listsecrets": "listSecrets/action",
        "regenerateprimarykey": "regeneratePrimaryKey/action",
        "regeneratesecondarykey": "regenerateSecondaryKey/action",
    }
    used = {
        "Microsoft.ApiManagement/service/subscriptions/"
        + by_tail.get(r.path.rsplit("/", 1)[-1].lower(), "read")
        for r in apim.kv.request_log
        if r.path.startswith("/subscriptions/")
    }
    assert used == granted


# -- crash recovery --------------------------------------------------------------------------


@dataclass(frozen=True)
class CrashCase:
    """Where a run dies, and what the next run must find."""

    point: str
    #: Regenerations of the standby slot by the time the rotation is promoted.
    standby_regenerations: int
    #: True when the value minted before the crash is what ends up current.
    adopted: bool


CRASHES = [
    # Nothing minted yet: the resumed run mints once.
    CrashCase("before:mint", 1, adopted=False),
    # Regenerated, never recorded: regenerated again, the first key dies unused.
    CrashCase("mint:issued", 2, adopted=False),
    # Minted and recorded, not stored: the same.
    CrashCase("after:mint", 2, adopted=False),
    CrashCase("before:store", 2, adopted=False),
    # Stored as pending, not recorded: the pending value is adopted as is.
    CrashCase("store:written", 1, adopted=True),
    CrashCase("after:store", 1, adopted=True),
    CrashCase("before:propagate", 1, adopted=True),
    CrashCase("after:propagate", 1, adopted=True),
    CrashCase("before:verify", 1, adopted=True),
    CrashCase("after:verify", 1, adopted=True),
    CrashCase("before:promote", 1, adopted=True),
    # Promoted in the store, not recorded: the promote is replayed.
    CrashCase("promote:moved", 1, adopted=True),
]


@pytest.mark.parametrize("case", CRASHES, ids=lambda c: c.point)
def test_a_rotation_killed_before_promote_converges(apim: Apim, case: CrashCase) -> None:
    """Killed at this point and resumed, the rotation ends with the standby current, held intact."""
    held = apim.current()
    held_slot = apim.slot_of(held)
    assert held_slot == "secondary"
    apim.crash_at(case.point)
    with pytest.raises(Crash):
        apim.engine().rotate(POLICY)
    apim.heal()
    minted_before_crash = apim.keys()["primary"]
    assert apim.keys()["secondary"] == held

    resumed = apim.engine()
    apim.clock.advance(timedelta(seconds=1))
    [outcome] = resumed.run_once().outcomes
    assert outcome.state is State.GRACE, outcome.message
    new = apim.current()
    assert apim.slot_of(new) == "primary"
    assert (new == minted_before_crash) is case.adopted
    if not case.adopted:
        assert not apim.accepts(minted_before_crash), "the dead run's key still works"
    assert apim.keys()["secondary"] == held, "the current slot was regenerated"
    assert apim.regenerated() == ["primary"] * case.standby_regenerations
    assert apim.accepts(held) and apim.accepts(new)

    apim.clock.advance(timedelta(hours=2))
    [ended] = resumed.run_once().outcomes
    assert ended.state is State.DONE
    assert not apim.accepts(held) and apim.accepts(new)


def test_a_revoke_killed_before_it_was_recorded_is_replayed_harmlessly(apim: Apim) -> None:
    """The old slot is regenerated again on resume; the current key keeps working."""
    engine = apim.engine()
    held = apim.current()
    engine.rotate(POLICY)
    new = apim.current()
    apim.clock.advance(timedelta(hours=2))
    apim.crash_at("revoke:revoked")
    with pytest.raises(Crash):
        engine.run_once()
    apim.heal()
    assert not apim.accepts(held)
    [ended] = apim.engine().run_once().outcomes
    assert ended.state is State.DONE
    assert apim.regenerated() == ["primary", "secondary", "secondary"]
    assert apim.current() == new and apim.accepts(new)


def test_a_rollback_killed_midway_kills_the_new_key_and_keeps_the_current(apim: Apim) -> None:
    """Killed as the rollback begins, the resumed rollback regenerates the new slot only."""
    held = apim.current()
    apim.crash_at("before:rollback")
    with faults.armed("fail:verify"), pytest.raises(Crash):
        apim.engine().rotate(POLICY)
    apim.heal()
    pending = apim.admin.get_secret(NAME + "--pending").value
    assert apim.slot_of(pending) == "primary" and apim.accepts(pending)

    [outcome] = apim.engine().run_once().outcomes
    assert outcome.state is State.ROLLED_BACK
    assert not apim.accepts(pending), "the rolled-back key still works"
    assert apim.current() == held and apim.accepts(held)
    assert apim.keys()["secondary"] == held
    assert apim.regenerated() == ["primary", "primary"]


# -- the canary --------------------------------------------------------------------------------


def test_no_key_in_logs_exceptions_or_the_journal(
    apim: Apim,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    no_sdk_retries: None,
) -> None:
    """At DEBUG (azure SDK loggers included, scrubbing off), no key ever leaves the process."""
    monkeypatch.setattr(redact, "scrub", lambda text: text)
    caplog.set_level(logging.DEBUG)
    for name in ("azure", "urllib3", "msal"):
        caplog.set_level(logging.DEBUG, logger=name)
    errors: list[BaseException] = []
    engine = apim.engine()
    engine.rotate(POLICY)
    apim.clock.advance(timedelta(hours=2))
    engine.run_once()
    with faults.armed("fail:verify"):
        [rolled] = engine.rotate(POLICY).outcomes
    issuer = apim.issuer()
    apim.kv.inject_fault(apim.resource_path() + "/listSecrets", status=429)
    for failing in (
        lambda: issuer.ref_of(SecretValue(apim.current())),
        lambda: apim.issuer(sid="ghost").inventory(),
        lambda: issuer.verify(Credential(SecretValue(apim.current()), f"{SID}/secondary")),
    ):
        with pytest.raises((TransientError, NotFoundError, VerificationError)) as caught:
            failing()
        errors.append(caught.value)

    keys = apim.kv.apim.every_key()
    assert len(keys) == 2 + 4  # seeded; mint, revoke; mint, rollback
    out, err = capsys.readouterr()
    logged = caplog.text + out + err
    assert "minted new credential" in logged
    assert any(r.name.startswith("azure.core") for r in caplog.records), "SDK loggers were off"
    journal = b"".join(p.read_bytes() for p in apim.workdir.glob("journal.db*"))
    assert journal
    texts = [logged, rolled.message, *("".join(traceback.format_exception(e)) for e in errors)]
    for key in keys:
        for text in texts:
            assert key not in text
        assert key.encode() not in journal


# -- the sandbox -------------------------------------------------------------------------------


def test_the_sandbox_seeds_a_subscription_the_demo_policy_rotates(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The Azure sandbox seeds the APIM demo; its policy rotates it, verified at the gateway."""
    sandbox = AzureSandbox()
    env = sandbox.start(tmp_path)
    try:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        sandbox.seed(env)
        values = sandbox.policy_substitutions() | {"DEMO_USAGE_PLAN_ID": "p", "DEMO_WORKDIR": "/w"}
        template = demo_policy().read_text()
        filled = tmp_path / "demo.yaml"
        filled.write_text(string.Template(template).substitute(values))
        vault = sandbox._vault
        assert vault is not None
        held = emulator_admin(vault).get_secret(APIM_SECRET).value
        assert vault.apim.keys(APIM_SERVICE, APIM_SID)[0] == held
        clock = FakeClock(datetime.now(UTC))
        engine = Engine(
            load_policies(filled),
            Journal(f"sqlite:///{tmp_path / 'journal.db'}", clock),
            clock=clock,
            sleep=clock.sleep,
        )
        [outcome] = engine.rotate("demo/apim-partner-key").outcomes
        assert outcome.state is State.GRACE, outcome.message
        new = emulator_admin(vault).get_secret(APIM_SECRET).value
        assert vault.apim.keys(APIM_SERVICE, APIM_SID) == (held, new)
        gateway = [r.status for r in vault.request_log if r.path.startswith("/apim/")]
        assert gateway == [200]
    finally:
        sandbox.stop()
