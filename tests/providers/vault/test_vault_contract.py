"""The Vault adapters, run against the emulator and a real server (OpenBao, or ``VAULT_ADDR``'s).

The promises every store makes are checked by the shared Store contract
(``TestVaultKvContract``); the store tests here are vault-kv's own (its
staging paths, custom metadata, CAS, soft delete). The adapters run with
least-privilege tokens holding exactly the ACL policies the docs recommend
(see ``conftest_backends``), so these tests also prove those policies are
enough.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hvac.exceptions import Forbidden, InvalidPath, InvalidRequest, VaultError

from providers.vault.approle import AppRoleConfig, AppRoleSecretIdIssuer
from providers.vault.kv import VaultKvConfig, VaultKvStore
from providers.vault.token import TokenConfig, TokenIssuer
from rotator.adapters import Issuer, Store
from rotator.adapters.secret import SecretValue
from rotator.adapters.values import Credential, Runtime
from rotator.errors import VerificationError
from rotator.testing import IssuerContract, StoreContract
from tests.providers.vault.backends import (
    Backend,
    approle_policy,
    clean_vault_env,
    kv_policy,
    new_rotation_id,
    point_at,
    runtime_for,
    token_policy,
)

pytest_plugins = ["tests.providers.vault.conftest_backends"]

PATH = "apps/payments/db"
NEW = "new-password-0000000001"
OLD = "old-password-0000000001"


# -- store ------------------------------------------------------------------


@dataclass
class KvSetup:
    """A KV v2 mount with a least-privilege token pointed at by the environment."""

    backend: Backend
    mount: str
    runtime: Runtime

    def store(self, key: str = "password", **extra: Any) -> VaultKvStore:
        """Build the store for ``mount/PATH`` with ``key``."""
        config = VaultKvConfig(mount=self.mount, path=PATH, key=key, **extra)
        return VaultKvStore(config, self.runtime, "payments-db")

    @property
    def kv(self) -> Any:
        """The admin client's KV v2 API."""
        return self.backend.admin().secrets.kv.v2

    def seed(self, data: dict[str, Any]) -> int:
        """Write ``data`` to the path as admin; return the new version."""
        written = self.kv.create_or_update_secret(path=PATH, secret=data, mount_point=self.mount)
        return int(written["data"]["version"])

    def latest(self) -> dict[str, Any]:
        """Return the latest version's envelope data (data and metadata) as admin reads it."""
        answer = self.kv.read_secret_version(
            path=PATH, mount_point=self.mount, raise_on_deleted_version=True
        )
        return dict(answer["data"])

    def metadata(self, path: str = PATH) -> dict[str, Any]:
        """Return the path's metadata as admin reads it."""
        return dict(self.kv.read_secret_metadata(path=path, mount_point=self.mount)["data"])

    def staged_paths(self) -> list[str]:
        """Return the staging paths that exist under the store's prefix."""
        try:
            listed = self.kv.list_secrets(path=f".rotator-pending/{PATH}", mount_point=self.mount)
        except InvalidPath:
            return []
        return list(listed["data"]["keys"])


@pytest.fixture
def kv(vault_backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> KvSetup:
    """A test KV mount and a token with exactly the store's documented policy."""
    clean_vault_env(monkeypatch, tmp_path)
    mount = vault_backend.enable_kv("kv")
    policy = vault_backend.policy("store", kv_policy(mount, PATH, destroy_on_retire=True))
    point_at(monkeypatch, vault_backend, vault_backend.token(policy))
    return KvSetup(vault_backend, mount, runtime_for(vault_backend))


def test_describe(kv: KvSetup) -> None:
    """describe() names the provider, the mount and the path."""
    assert kv.store().describe() == f"vault-kv:{kv.mount}/{PATH}"


def test_current_is_none_for_a_missing_path(kv: KvSetup) -> None:
    """current() and last_changed() of a path never written are None."""
    store = kv.store()
    assert store.current() is None
    assert store.last_changed() is None


def test_current_reads_the_key_of_the_latest_version(kv: KvSetup) -> None:
    """current() returns the key's value, the version number and its creation time."""
    version = kv.seed({"username": "app", "password": OLD})
    current = kv.store().current()
    assert current is not None
    assert current.version_id == str(version)
    assert current.value == SecretValue(OLD)
    assert current.created_at is not None
    assert kv.store().last_changed() == current.created_at


def test_current_is_none_when_the_key_is_missing(kv: KvSetup) -> None:
    """A data map without the configured key has no current value."""
    kv.seed({"username": "app"})
    assert kv.store().current() is None


def test_current_is_none_when_the_latest_version_is_deleted(kv: KvSetup) -> None:
    """A soft-deleted latest version reads as no value, not as an error."""
    kv.seed({"password": OLD})
    kv.kv.delete_latest_version_of_secret(path=PATH, mount_point=kv.mount)
    kv.backend.tick()
    assert kv.store().current() is None


def test_pending_is_never_the_latest_version(kv: KvSetup) -> None:
    """put_pending leaves the path's latest version and version count untouched."""
    version = kv.seed({"username": "app", "password": OLD})
    store = kv.store()
    rid = new_rotation_id()
    assert store.put_pending(rid, SecretValue(NEW)) == str(version + 1)
    latest = kv.latest()
    assert latest["metadata"]["version"] == version
    assert latest["data"] == {"username": "app", "password": OLD}
    assert kv.metadata()["current_version"] == version
    assert store.pending(rid) == SecretValue(NEW)
    current = store.current()
    assert current is not None and current.value == SecretValue(OLD)


def test_promote_writes_the_staged_map_and_returns_the_base(kv: KvSetup) -> None:
    """promote() creates exactly the announced version, other fields kept, and cleans staging."""
    version = kv.seed({"username": "app", "password": OLD, "port": 5432})
    store = kv.store()
    rid = new_rotation_id()
    announced = store.put_pending(rid, SecretValue(NEW))
    assert kv.staged_paths() == [rid]
    assert store.promote(rid) == str(version)
    latest = kv.latest()
    assert str(latest["metadata"]["version"]) == announced
    assert latest["data"] == {"username": "app", "password": NEW, "port": 5432}
    current = store.current()
    assert current is not None
    assert (current.version_id, current.value) == (announced, SecretValue(NEW))
    assert store.pending(rid) is None
    assert kv.staged_paths() == []


def test_first_rotation_of_a_new_path(kv: KvSetup) -> None:
    """A path with no version gets version 1 at promote, and promote reports no previous."""
    store = kv.store()
    rid = new_rotation_id()
    assert store.put_pending(rid, SecretValue(NEW)) == "1"
    assert store.current() is None
    assert store.promote(rid) is None
    current = store.current()
    assert current is not None and current.version_id == "1"
    assert "rotator_previous_version" not in kv.metadata()["custom_metadata"]


def test_mapping_value_is_a_nested_object(kv: KvSetup) -> None:
    """A mapping value is stored as a JSON object under the key and read back as a mapping."""
    kv.seed({"credentials": {"role_id": "r-0", "secret_id": "s-old-000000000"}, "app": "x"})
    store = kv.store(key="credentials")
    rid = new_rotation_id()
    value = SecretValue({"role_id": "r-1", "secret_id": "s-new-000000001"})
    store.put_pending(rid, value)
    assert store.pending(rid) == value
    store.promote(rid)
    assert kv.latest()["data"] == {"credentials": dict(value.reveal()), "app": "x"}  # type: ignore[arg-type]
    current = store.current()
    assert current is not None and current.value.is_mapping() and current.value == value


def test_promote_sets_custom_metadata_and_keeps_settings(kv: KvSetup) -> None:
    """promote() labels the path and keeps other custom metadata and the path's own settings."""
    version = kv.seed({"password": OLD})
    kv.kv.update_metadata(
        path=PATH,
        mount_point=kv.mount,
        max_versions=7,
        delete_version_after="720h",
        custom_metadata={"owner": "team-payments"},
    )
    store = kv.store()
    rid = new_rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    store.promote(rid)
    meta = kv.metadata()
    assert meta["custom_metadata"] == {
        "owner": "team-payments",
        "rotator_current_version": str(version + 1),
        "rotator_previous_version": str(version),
        "rotator_rotation_id": rid,
    }
    assert meta["max_versions"] == 7
    assert meta["delete_version_after"] in {"720h", "720h0m0s"}


def test_promote_finishes_after_a_crash_between_write_and_cleanup(kv: KvSetup) -> None:
    """If the staged map already landed (answer lost), promote only labels and cleans up."""
    version = kv.seed({"username": "app", "password": OLD})
    store = kv.store()
    rid = new_rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    # What an interrupted promote did: the CAS write landed, nothing after it.
    kv.kv.create_or_update_secret(
        path=PATH, secret={"username": "app", "password": NEW}, cas=version, mount_point=kv.mount
    )
    assert store.promote(rid) == str(version)
    meta = kv.metadata()
    assert meta["current_version"] == version + 1
    assert meta["custom_metadata"]["rotator_current_version"] == str(version + 1)
    assert kv.staged_paths() == []


def test_discard_removes_staging_and_replays(kv: KvSetup) -> None:
    """discard() deletes the staging path; again, or for an unknown rotation, it is a no-op."""
    kv.seed({"password": OLD})
    store = kv.store()
    rid = new_rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    store.discard(rid)
    assert store.pending(rid) is None
    assert kv.staged_paths() == []
    store.discard(rid)
    store.discard(new_rotation_id())
    current = store.current()
    assert current is not None and current.value == SecretValue(OLD)


def test_retire_soft_deletes_so_an_operator_can_undelete(kv: KvSetup) -> None:
    """retire() deletes the old version (not destroys), drops its label, and replays quietly."""
    old = kv.seed({"password": OLD})
    store = kv.store()
    rid = new_rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    store.promote(rid)
    store.retire(str(old))
    kv.backend.tick()
    store.retire(str(old))
    meta = kv.metadata()
    assert meta["versions"][str(old)]["deletion_time"] != ""
    assert meta["versions"][str(old)]["destroyed"] is False
    assert "rotator_previous_version" not in meta["custom_metadata"]
    with pytest.raises(InvalidPath):
        kv.kv.read_secret_version(
            path=PATH, version=old, mount_point=kv.mount, raise_on_deleted_version=True
        )
    kv.kv.undelete_secret_versions(path=PATH, versions=[old], mount_point=kv.mount)
    back = kv.kv.read_secret_version(
        path=PATH, version=old, mount_point=kv.mount, raise_on_deleted_version=True
    )
    assert back["data"]["data"] == {"password": OLD}
    current = store.current()
    assert current is not None and current.value == SecretValue(NEW)


def test_retire_destroys_when_configured(kv: KvSetup) -> None:
    """With destroy_on_retire the old version is destroyed for good."""
    old = kv.seed({"password": OLD})
    store = kv.store(destroy_on_retire=True)
    rid = new_rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    store.promote(rid)
    store.retire(str(old))
    store.retire(str(old))
    assert kv.metadata()["versions"][str(old)]["destroyed"] is True


def test_cas_required_paths_work(kv: KvSetup) -> None:
    """A path whose metadata requires check-and-set rotates (every write carries cas)."""
    kv.seed({"password": OLD})
    kv.kv.update_metadata(path=PATH, mount_point=kv.mount, cas_required=True)
    store = kv.store()
    rid = new_rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    store.promote(rid)
    current = store.current()
    assert current is not None and current.value == SecretValue(NEW)
    assert kv.metadata()["cas_required"] is True


# -- the Store contract ------------------------------------------------------


class TestVaultKvContract(StoreContract):
    """The Store contract over vault-kv, on the emulator and on a real server."""

    kv: KvSetup

    @pytest.fixture
    def store(self, kv: KvSetup, monkeypatch: pytest.MonkeyPatch) -> Store[Any]:
        self.kv = kv
        # The token may also use the KV paths of a mount that does not exist (missing()),
        # so that Vault answers "no such mount" rather than an ACL refusal.
        gone = kv.backend.policy("gone", kv_policy(f"{kv.mount}-gone", PATH))
        store = kv.backend.policy("store-and-gone", kv_policy(kv.mount, PATH))
        point_at(monkeypatch, kv.backend, kv.backend.token(store, gone))
        return kv.store()

    def write_behind(self, store: Store[Any], value: SecretValue) -> str:
        return str(self.kv.seed({"password": value.text()}))

    def read_behind(self, store: Store[Any]) -> SecretValue | None:
        try:
            latest = self.kv.latest()
        except InvalidPath:
            return None
        found = (latest.get("data") or {}).get("password")
        if found is None:
            return None
        return SecretValue(found if isinstance(found, dict) else str(found))

    def offered(self, store: Store[Any], version_id: str) -> bool:
        self.kv.backend.tick()  # a deletion takes effect once its time has passed
        try:
            self.kv.kv.read_secret_version(
                path=PATH,
                version=int(version_id),
                mount_point=self.kv.mount,
                raise_on_deleted_version=True,
            )
        except InvalidPath:
            return False
        return True

    def missing(self, store: Store[Any]) -> Store[Any]:
        config = VaultKvConfig(mount=f"{self.kv.mount}-gone", path=PATH, key="password")
        return VaultKvStore(config, self.kv.runtime, "payments-db")

    def unavailable(self, store: Store[Any]) -> AbstractContextManager[None]:
        return self.kv.backend.outage()


# -- AppRole secret-id issuer -------------------------------------------------


@dataclass
class AppRoleSetup:
    """An AppRole mount and role, with a least-privilege token in the environment."""

    backend: Backend
    mount: str
    role: str
    runtime: Runtime

    def issuer(self, **metadata: str) -> AppRoleSecretIdIssuer:
        """Build the issuer for the test role."""
        config = AppRoleConfig(role=self.role, mount=self.mount, metadata=metadata)
        return AppRoleSecretIdIssuer(config, self.runtime, "payments-approle")

    @property
    def approle(self) -> Any:
        """The admin client's AppRole API."""
        return self.backend.admin().auth.approle

    def can_log_in(self, value: SecretValue) -> bool:
        """Tell whether a fresh client can log in with the pair (revoking the token after)."""
        pair = value.reveal()
        assert isinstance(pair, dict)
        client = self.backend.client(token="")
        try:
            client.auth.approle.login(
                role_id=pair["role_id"], secret_id=pair["secret_id"], mount_point=self.mount
            )
        except (InvalidRequest, Forbidden):
            return False
        client.auth.token.revoke_self()
        return True

    def accessor_metadata(self, accessor: str) -> dict[str, str]:
        """Return a secret-id's metadata as admin reads it by accessor."""
        answer = self.approle.read_secret_id_accessor(
            role_name=self.role, secret_id_accessor=accessor, mount_point=self.mount
        )
        return dict(answer["data"]["metadata"])


@pytest.fixture
def approle(
    vault_backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AppRoleSetup:
    """A test AppRole mount and role, and a token with exactly the issuer's policy."""
    clean_vault_env(monkeypatch, tmp_path)
    mount = vault_backend.enable_approle()
    role = "payments"
    app_policy = vault_backend.policy("app", 'path "sys/health" { capabilities = ["read"] }\n')
    vault_backend.admin().auth.approle.create_or_update_approle(
        role_name=role, token_policies=[app_policy], token_ttl="10m", mount_point=mount
    )
    policy = vault_backend.policy("issuer", approle_policy(mount, role))
    point_at(monkeypatch, vault_backend, vault_backend.token(policy))
    return AppRoleSetup(vault_backend, mount, role, runtime_for(vault_backend))


def test_approle_mint_verify_revoke(approle: AppRoleSetup) -> None:
    """mint() returns a working pair named by its accessor; revoke() stops logins; replays pass."""
    issuer = approle.issuer(team="payments")
    credential = issuer.mint(new_rotation_id())
    plain = credential.value.reveal()
    assert isinstance(plain, dict) and set(plain) == {"role_id", "secret_id"}
    assert credential.ref is not None and credential.ref != plain["secret_id"]
    assert issuer.ref_of(credential.value) == credential.ref
    issuer.verify(credential)
    assert approle.can_log_in(credential.value)
    issuer.revoke(credential.ref)
    assert not approle.can_log_in(credential.value)
    issuer.revoke(credential.ref)
    assert credential.ref not in issuer.inventory()


def test_approle_secret_id_carries_metadata(approle: AppRoleSetup) -> None:
    """The secret-id is tagged with the policy's metadata, the rotation id and the secret name."""
    issuer = approle.issuer(team="payments")
    rid = new_rotation_id()
    credential = issuer.mint(rid)
    assert credential.ref is not None
    assert approle.accessor_metadata(credential.ref) == {
        "team": "payments",
        "rotator_rotation_id": rid,
        "rotator_secret": "payments-approle",
    }


def test_approle_verify_leaves_no_token_behind(approle: AppRoleSetup) -> None:
    """verify() revokes the token its login created."""
    issuer = approle.issuer()
    credential = issuer.mint(new_rotation_id())
    admin = approle.backend.admin()
    before = set(admin.auth.token.list_accessors()["data"]["keys"])
    issuer.verify(credential)
    after = set(admin.auth.token.list_accessors()["data"]["keys"])
    assert after <= before


def test_approle_verify_refuses_a_revoked_or_malformed_value(approle: AppRoleSetup) -> None:
    """verify() of a destroyed secret-id or of a value that is no pair raises VerificationError."""
    issuer = approle.issuer()
    credential = issuer.mint(new_rotation_id())
    assert credential.ref is not None
    issuer.revoke(credential.ref)
    with pytest.raises(VerificationError) as caught:
        issuer.verify(credential)
    plain = credential.value.reveal()
    assert isinstance(plain, dict) and plain["secret_id"] not in str(caught.value)
    with pytest.raises(VerificationError):
        issuer.verify(Credential(SecretValue("not-a-pair-000000000"), None))
    assert issuer.ref_of(credential.value) is None


def test_approle_verify_spares_a_limited_use_secret_id(approle: AppRoleSetup) -> None:
    """A secret-id with one use is verified by lookup, so its consumer can still log in."""
    approle.approle.create_or_update_approle(
        role_name=approle.role, secret_id_num_uses=1, mount_point=approle.mount
    )
    issuer = approle.issuer()
    credential = issuer.mint(new_rotation_id())
    issuer.verify(credential)
    assert approle.can_log_in(credential.value)


def test_approle_inventory(approle: AppRoleSetup) -> None:
    """inventory() is empty for a role without secret-ids and lists accessors after a mint."""
    issuer = approle.issuer()
    assert issuer.inventory() == []
    first = issuer.mint(new_rotation_id())
    second = issuer.mint(new_rotation_id())
    assert issuer.inventory() == sorted([str(first.ref), str(second.ref)])


def test_approle_recover_adopts_pending_and_destroys_the_rest(approle: AppRoleSetup) -> None:
    """recover() keeps the secret-id the store holds and destroys the run's other mints only."""
    issuer = approle.issuer()
    older = issuer.mint(new_rotation_id())
    known = issuer.inventory()
    rid = new_rotation_id()
    kept = issuer.mint(rid)
    lost = issuer.mint(rid)
    foreign = approle.approle.generate_secret_id(role_name=approle.role, mount_point=approle.mount)
    adopted = issuer.recover(rid, known=known, pending=kept.value)
    assert adopted == kept
    remaining = issuer.inventory()
    assert kept.ref in remaining and older.ref in remaining
    assert foreign["data"]["secret_id_accessor"] in remaining
    assert lost.ref not in remaining
    assert not approle.can_log_in(lost.value)


def test_approle_recover_without_pending_destroys_the_runs_mints(approle: AppRoleSetup) -> None:
    """recover() with nothing stored destroys every secret-id the rotation minted."""
    issuer = approle.issuer()
    known = issuer.inventory()
    rid = new_rotation_id()
    issuer.mint(rid)
    issuer.mint(rid)
    assert issuer.recover(rid, known=known, pending=None) is None
    assert issuer.inventory() == []
    assert issuer.recover(rid, known=known, pending=None) is None


# -- token issuer -------------------------------------------------------------


@dataclass
class TokenSetup:
    """Policies to grant, and a least-privilege token in the environment."""

    backend: Backend
    consumer_policy: str
    runtime: Runtime
    monkeypatch: pytest.MonkeyPatch

    def issuer(self, **extra: Any) -> TokenIssuer:
        """Build the issuer granting the consumer policy."""
        config = TokenConfig(policies=[self.consumer_policy], **extra)
        return TokenIssuer(config, self.runtime, "payments-token")

    def lookup(self, accessor: str) -> dict[str, Any] | None:
        """Return a token's properties by accessor as admin sees them; None if it is gone."""
        try:
            answer = self.backend.admin().auth.token.lookup_accessor(accessor)
        except VaultError:
            return None
        return dict(answer["data"])

    def track(self, credential: Credential) -> Credential:
        """Remember a minted token so that teardown revokes it."""
        assert credential.ref is not None
        self.backend.accessors.append(credential.ref)
        return credential


@pytest.fixture
def tokens(
    vault_backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[TokenSetup]:
    """A consumer policy to grant and a token with exactly the issuer's policy."""
    clean_vault_env(monkeypatch, tmp_path)
    consumer = vault_backend.policy("consumer", 'path "sys/health" { capabilities = ["read"] }\n')
    policy = vault_backend.policy("token-issuer", token_policy())
    point_at(monkeypatch, vault_backend, vault_backend.token(policy))
    setup = TokenSetup(vault_backend, consumer, runtime_for(vault_backend), monkeypatch)
    yield setup


def test_token_mint_verify_revoke(tokens: TokenSetup) -> None:
    """mint() creates an orphan periodic token named by its accessor; revoke() kills it."""
    issuer = tokens.issuer()
    rid = new_rotation_id()
    credential = tokens.track(issuer.mint(rid))
    assert credential.ref is not None
    assert issuer.ref_of(credential.value) == credential.ref
    issuer.verify(credential)
    seen = tokens.lookup(credential.ref)
    assert seen is not None
    assert tokens.consumer_policy in seen["policies"]
    assert seen["meta"] == {"rotator_rotation_id": rid, "rotator_secret": "payments-token"}
    assert seen["orphan"] is True
    assert int(seen["period"]) == 86400
    assert seen["display_name"].endswith("rotator")
    issuer.revoke(credential.ref)
    assert tokens.lookup(credential.ref) is None
    issuer.revoke(credential.ref)
    with pytest.raises(VerificationError) as caught:
        issuer.verify(credential)
    token = credential.value.reveal()
    assert isinstance(token, str) and token not in str(caught.value)
    fresh = TokenIssuer(issuer.config, runtime_for(tokens.backend), "payments-token")
    assert fresh.ref_of(credential.value) is None


def test_token_ttl_without_period_is_not_periodic(tokens: TokenSetup) -> None:
    """A policy giving only ttl mints an ordinary token with that TTL."""
    credential = tokens.track(tokens.issuer(ttl="2h").mint(new_rotation_id()))
    assert credential.ref is not None
    seen = tokens.lookup(credential.ref)
    assert seen is not None
    assert int(seen.get("period") or 0) == 0
    assert int(seen["creation_ttl"]) == 7200


def test_token_verify_refuses_a_non_token(tokens: TokenSetup) -> None:
    """verify() of a value Vault does not know raises VerificationError."""
    with pytest.raises(VerificationError):
        tokens.issuer().verify(Credential(SecretValue("hvs.not-a-real-token-0000"), None))


def test_token_inventory_and_recover(tokens: TokenSetup) -> None:
    """recover() adopts the pending token and revokes the run's other tokens, nobody else's."""
    issuer = tokens.issuer()
    known = issuer.inventory()
    assert known
    rid = new_rotation_id()
    kept = tokens.track(issuer.mint(rid))
    lost = tokens.track(issuer.mint(rid))
    other = tokens.track(issuer.mint(new_rotation_id()))
    assert {kept.ref, lost.ref, other.ref} <= set(issuer.inventory())
    assert issuer.recover(rid, known=known, pending=kept.value) == kept
    assert tokens.lookup(str(lost.ref)) is None
    assert tokens.lookup(str(kept.ref)) is not None
    assert tokens.lookup(str(other.ref)) is not None
    assert issuer.recover(rid, known=known, pending=None) is None
    assert tokens.lookup(str(kept.ref)) is None


def test_token_inventory_without_sudo_is_empty(
    tokens: TokenSetup, caplog: pytest.LogCaptureFixture
) -> None:
    """Without the right to list accessors inventory() is empty and says why once."""
    backend = tokens.backend
    policy = backend.policy("token-issuer-nolist", token_policy(list_accessors=False))
    point_at(tokens.monkeypatch, backend, backend.token(policy))
    issuer = TokenIssuer(
        TokenConfig(policies=[tokens.consumer_policy]), runtime_for(backend), "payments-token"
    )
    with caplog.at_level("WARNING"):
        assert issuer.inventory() == []
        assert issuer.inventory() == []
    assert sum("list token accessors" in r.getMessage() for r in caplog.records) == 1
    credential = tokens.track(issuer.mint(new_rotation_id()))
    assert issuer.recover("any", known=[], pending=credential.value) == credential


# -- the Issuer contract ------------------------------------------------------


class TestAppRoleContract(IssuerContract):
    """The Issuer contract over vault-approle-secret-id, on the emulator and on a real server."""

    setup: AppRoleSetup

    @pytest.fixture
    def issuer(self, approle: AppRoleSetup) -> Issuer[Any]:
        self.setup = approle
        return approle.issuer()

    def usable(self, issuer: Issuer[Any], credential: Credential) -> bool:
        return self.setup.can_log_in(credential.value)

    def unavailable(self, issuer: Issuer[Any]) -> AbstractContextManager[None]:
        return self.setup.backend.outage()

    def foreign(self, issuer: Issuer[Any]) -> SecretValue:
        answer = self.setup.approle.read_role_id(
            role_name=self.setup.role, mount_point=self.setup.mount
        )
        return SecretValue({"role_id": answer["data"]["role_id"], "secret_id": new_rotation_id()})


class TestTokenContract(IssuerContract):
    """The Issuer contract over vault-token, on the emulator and on a real server."""

    setup: TokenSetup

    @pytest.fixture
    def issuer(self, tokens: TokenSetup) -> Iterator[Issuer[Any]]:
        self.setup = tokens
        issuer = tokens.issuer()
        before = set(issuer.inventory())
        yield issuer
        # A real Vault keeps what a test minted: the backend's cleanup revokes it.
        tokens.backend.accessors.extend(set(issuer.inventory()) - before)

    def usable(self, issuer: Issuer[Any], credential: Credential) -> bool:
        client = self.setup.backend.client(token=credential.value.text())
        try:
            client.auth.token.lookup_self()
        except (Forbidden, InvalidRequest):
            return False
        return True

    def unavailable(self, issuer: Issuer[Any]) -> AbstractContextManager[None]:
        return self.setup.backend.outage()
