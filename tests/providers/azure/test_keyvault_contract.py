"""The ``azure-keyvault`` store, against the emulator and (if configured) a real vault.

The promises every store makes are checked by the shared Store contract
(``TestKeyVaultContract``, at the end); the tests before it are this store's
own: its companion secret, tags, expiry, soft delete and recovery.

The store logs in the way it does in production (a real azure-identity
credential; see ``backends``), and every observation is made through a
separate admin ``SecretClient``, so these tests check what consumers of the
vault actually see.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from azure.core.exceptions import HttpResponseError
from pydantic import ValidationError

from providers.azure import identity
from providers.azure.errors import vault_name
from providers.azure.keyvault import (
    BASE_VERSION,
    PREVIOUS_VERSION,
    ROTATION_ID,
    SECRET_NAME,
    KeyVaultConfig,
    KeyVaultStore,
)
from rotator.adapters import Store
from rotator.adapters.secret import SecretValue
from rotator.errors import ConflictError, NotFoundError, PermanentError
from rotator.testing import StoreContract

if TYPE_CHECKING:
    from tests.providers.azure.backends import Backend

# Fixtures akv_backend and akv_emulator (imported as a plugin, not a module, so
# that pytest rewrites its asserts).
pytest_plugins = ["tests.providers.azure.backends"]

OLD = "old-password-0000000001"
NEW = "new-password-0000000001"
OTHER = "someone-elses-password-01"
KEYPAIR = {"AccessKeyId": "AKIAEXAMPLE000000001", "SecretAccessKey": "mapping-secret-000000001"}


def _seconds(when: datetime | None) -> int | None:
    return int(when.timestamp()) if when is not None else None


# -- configuration ----------------------------------------------------------


def test_config_refuses_a_bad_name() -> None:
    """A secret name outside Key Vault's alphabet is refused at policy validation."""
    with pytest.raises(ValidationError):
        KeyVaultConfig(vault_url="https://v.vault.azure.net", name="db_password")


def test_config_refuses_a_companion_name_too_long() -> None:
    """The name plus the pending suffix must fit in Key Vault's 127 characters."""
    KeyVaultConfig(vault_url="https://v.vault.azure.net", name="a" * 118)
    with pytest.raises(ValidationError, match="127"):
        KeyVaultConfig(vault_url="https://v.vault.azure.net", name="a" * 119)


@pytest.mark.parametrize(
    "url",
    ["http://v.vault.azure.net", "https://v.vault.azure.net/secrets/x", "v.vault.azure.net"],
)
def test_config_refuses_a_vault_url_that_is_not_an_https_address(url: str) -> None:
    """vault_url must be https and the vault's address only."""
    with pytest.raises(ValidationError):
        KeyVaultConfig(vault_url=url, name="db")


def test_config_normalises_the_vault_url_and_parses_expires_after() -> None:
    """A trailing slash is dropped, the host lower-cased, and expires_after is a duration."""
    config = KeyVaultConfig(vault_url="https://V.vault.azure.net/", name="db", expires_after="30d")
    assert config.vault_url == "https://v.vault.azure.net"
    assert config.expires_after == timedelta(days=30)
    with pytest.raises(ValidationError):
        KeyVaultConfig(vault_url="https://v.vault.azure.net", name="db", expires_after="0s")


# -- reading ------------------------------------------------------------------


def test_describe(akv_backend: Backend) -> None:
    """describe() names the provider, the vault host and the secret."""
    name = akv_backend.secret_name()
    host = akv_backend.vault_url.split("://", 1)[1]
    assert akv_backend.store(name).describe() == f"azure-keyvault:{host}/{name}"


def test_current_is_none_for_a_secret_with_no_value(akv_backend: Backend) -> None:
    """A secret that does not exist has no value yet: current() and last_changed() are None."""
    store = akv_backend.store(akv_backend.secret_name())
    assert store.current() is None
    assert store.last_changed() is None


def test_current_reads_the_latest_version(akv_backend: Backend) -> None:
    """current() returns the latest version's id, value and aware creation time."""
    name = akv_backend.secret_name()
    akv_backend.seed(name, "first-value-000000001")
    seeded = akv_backend.seed(name, OLD)
    current = akv_backend.store(name).current()
    assert current is not None
    assert current.version_id == seeded.properties.version
    assert current.value == SecretValue(OLD)
    assert current.created_at is not None and current.created_at.tzinfo is not None
    assert akv_backend.store(name).last_changed() == current.created_at


# -- pending ------------------------------------------------------------------


def test_put_pending_is_never_the_latest_version(akv_backend: Backend) -> None:
    """The pending value goes to the companion, tagged; the secret's latest is untouched."""
    name = akv_backend.secret_name()
    old = akv_backend.seed(name, OLD)
    store = akv_backend.store(name)
    rid = akv_backend.rotation_id()
    version = store.put_pending(rid, SecretValue(NEW))
    latest = akv_backend.latest(name)
    assert latest.value == OLD
    assert list(akv_backend.versions(name)) == [old.properties.version]
    companion = akv_backend.latest(name + "--pending")
    assert companion.properties.version == version
    assert companion.value == NEW
    assert companion.properties.tags == {
        ROTATION_ID: rid,
        SECRET_NAME: "payments-db",
        BASE_VERSION: old.properties.version,
    }
    assert store.pending(rid) == SecretValue(NEW)
    assert store.pending(akv_backend.rotation_id()) is None
    current = store.current()
    assert current is not None and current.value == SecretValue(OLD)


def test_mapping_values_round_trip(akv_backend: Backend) -> None:
    """A mapping is stored as JSON with content type application/json and read back as a mapping."""
    name = akv_backend.secret_name()
    store = akv_backend.store(name)
    rid = akv_backend.rotation_id()
    store.put_pending(rid, SecretValue(KEYPAIR))
    assert store.pending(rid) == SecretValue(KEYPAIR)
    assert akv_backend.latest(name + "--pending").properties.content_type == "application/json"
    store.promote(rid)
    current = store.current()
    assert current is not None and current.value.is_mapping()
    assert current.value == SecretValue(KEYPAIR)
    assert akv_backend.latest(name).properties.content_type == "application/json"


# -- promote ------------------------------------------------------------------


def test_promote_sets_tags_and_expiry_and_removes_the_companion(akv_backend: Backend) -> None:
    """promote() writes the value tagged with the rotation and the previous version, then purges."""
    name = akv_backend.secret_name()
    old = akv_backend.seed(name, OLD, tags={"owner": "team-payments"})
    store = akv_backend.store(name)
    rid = akv_backend.rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=31)
    assert store.promote(rid, expires_on=expires) == old.properties.version
    latest = akv_backend.latest(name)
    assert latest.value == NEW
    assert latest.properties.tags == {
        "owner": "team-payments",
        ROTATION_ID: rid,
        PREVIOUS_VERSION: old.properties.version,
    }
    assert _seconds(latest.properties.expires_on) == _seconds(expires)
    assert not akv_backend.exists(name + "--pending")
    assert not akv_backend.soft_deleted(name + "--pending"), "the companion was not purged"
    assert store.pending(rid) is None
    current = store.current()
    assert current is not None and current.version_id == latest.properties.version


def test_promote_keeps_within_key_vaults_fifteen_tags(akv_backend: Backend) -> None:
    """Carried-over tags are trimmed so that, with rotator's two, a version has at most 15."""
    name = akv_backend.secret_name()
    operator_tags = {f"tag{i:02d}": "x" for i in range(14)}
    akv_backend.seed(name, OLD, tags=operator_tags, content_type="password")
    store = akv_backend.store(name)
    rid = akv_backend.rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    store.promote(rid)
    latest = akv_backend.latest(name)
    tags = latest.properties.tags
    assert len(tags) == 15
    assert tags[ROTATION_ID] == rid and PREVIOUS_VERSION in tags
    assert {k for k in tags if k.startswith("tag")} == {f"tag{i:02d}" for i in range(13)}
    assert latest.properties.content_type == "password", "an operator's content type is kept"


def test_promote_uses_expires_after_when_the_engine_gives_no_expiry(akv_backend: Backend) -> None:
    """Without expires_on, a configured expires_after stamps now + expires_after."""
    name = akv_backend.secret_name()
    runtime = akv_backend.runtime()
    store = akv_backend.store(name, runtime, expires_after=timedelta(days=7))
    rid = akv_backend.rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    before = runtime.clock()
    store.promote(rid)
    expires_on = akv_backend.latest(name).properties.expires_on
    assert expires_on is not None
    assert abs((expires_on - (before + timedelta(days=7))).total_seconds()) < 5


def test_promote_of_a_first_value_has_no_previous_version(akv_backend: Backend) -> None:
    """A secret with no value yet is created by promote, which returns None."""
    name = akv_backend.secret_name()
    store = akv_backend.store(name)
    rid = akv_backend.rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    assert akv_backend.latest(name + "--pending").properties.tags[BASE_VERSION] == "none"
    assert not akv_backend.exists(name)
    assert store.promote(rid) is None
    latest = akv_backend.latest(name)
    assert latest.value == NEW
    assert latest.properties.tags == {ROTATION_ID: rid}
    assert latest.properties.expires_on is None


def test_promote_replay_after_a_crash_before_cleanup_removes_the_companion(
    akv_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A promote that died after setting the secret is finished by the replay: cleanup only."""
    name = akv_backend.secret_name()
    old = akv_backend.seed(name, OLD)
    store = akv_backend.store(name)
    rid = akv_backend.rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    with monkeypatch.context() as patch:
        patch.setattr(KeyVaultStore, "_clean_companion", lambda *args: None)
        store.promote(rid)
    assert akv_backend.exists(name + "--pending")
    assert store.promote(rid) == old.properties.version
    assert not akv_backend.exists(name + "--pending")
    assert len(akv_backend.versions(name)) == 2


def test_promote_replay_after_someone_wrote_since_does_not_overwrite(
    akv_backend: Backend,
) -> None:
    """A replay finds the version this rotation promoted even if it is no longer the latest."""
    name = akv_backend.secret_name()
    old = akv_backend.seed(name, OLD)
    store = akv_backend.store(name)
    rid = akv_backend.rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    store.promote(rid)
    akv_backend.seed(name, OTHER)
    assert store.promote(rid) == old.properties.version
    assert akv_backend.latest(name).value == OTHER


def test_a_concurrent_writer_between_put_pending_and_promote_wins(akv_backend: Backend) -> None:
    """Someone else's write after put_pending makes promote a ConflictError; their value stays."""
    name = akv_backend.secret_name()
    akv_backend.seed(name, OLD)
    store = akv_backend.store(name)
    rid = akv_backend.rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    theirs = akv_backend.seed(name, OTHER)
    with pytest.raises(ConflictError, match="someone else") as caught:
        store.promote(rid)
    assert theirs.properties.version in str(caught.value)
    assert NEW not in str(caught.value) and OTHER not in str(caught.value)
    latest = akv_backend.latest(name)
    assert latest.value == OTHER
    assert latest.properties.version == theirs.properties.version
    assert store.pending(rid) == SecretValue(NEW), "the pending value is kept for the rollback"


def test_a_soft_deleted_companion_is_recovered_for_the_next_rotation(akv_backend: Backend) -> None:
    """With purge_pending off the companion stays soft-deleted; the next put_pending recovers it."""
    name = akv_backend.secret_name()
    akv_backend.seed(name, OLD)
    store = akv_backend.store(name, purge_pending=False)
    first = akv_backend.rotation_id()
    store.put_pending(first, SecretValue(NEW))
    store.promote(first)
    # No purge follows, so promote did not wait for the delete; the next rotation comes later.
    akv_backend.await_deleted(name + "--pending")
    assert akv_backend.soft_deleted(name + "--pending")
    second = akv_backend.rotation_id()
    store.put_pending(second, SecretValue(OTHER))
    assert store.pending(second) == SecretValue(OTHER)
    assert akv_backend.latest(name).value == NEW
    store.promote(second)
    assert akv_backend.latest(name).value == OTHER


# -- discard and retire -----------------------------------------------------


def test_discard_removes_the_companion_and_replays(akv_backend: Backend) -> None:
    """discard() deletes and purges the companion of its rotation; again, it is a no-op."""
    name = akv_backend.secret_name()
    akv_backend.seed(name, OLD)
    store = akv_backend.store(name)
    rid = akv_backend.rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    store.discard(rid)
    assert not akv_backend.exists(name + "--pending")
    assert not akv_backend.soft_deleted(name + "--pending")
    store.discard(rid)
    assert store.pending(rid) is None
    assert akv_backend.latest(name).value == OLD


def test_discard_replay_purges_a_companion_left_deleted(akv_backend: Backend) -> None:
    """A discard interrupted between delete and purge is finished by the replay."""
    name = akv_backend.secret_name()
    store = akv_backend.store(name)
    rid = akv_backend.rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    akv_backend.delete(name + "--pending")
    assert akv_backend.soft_deleted(name + "--pending")
    store.discard(rid)
    assert not akv_backend.soft_deleted(name + "--pending")


def test_promote_replay_purges_a_companion_left_deleted(akv_backend: Backend) -> None:
    """A promote interrupted between deleting and purging the companion purges it on replay."""
    name = akv_backend.secret_name()
    old = akv_backend.seed(name, OLD)
    purging = akv_backend.store(name)
    keeping = akv_backend.store(name, purge_pending=False)
    rid = akv_backend.rotation_id()
    purging.put_pending(rid, SecretValue(NEW))
    keeping.promote(rid)
    akv_backend.await_deleted(name + "--pending")
    assert akv_backend.soft_deleted(name + "--pending")
    assert purging.promote(rid) == old.properties.version
    assert not akv_backend.soft_deleted(name + "--pending")


def test_retire_disables_the_old_version_and_keeps_it(akv_backend: Backend) -> None:
    """retire() disables the old version (a get is refused with 403) without deleting it."""
    name = akv_backend.secret_name()
    old = akv_backend.seed(name, OLD)
    store = akv_backend.store(name)
    rid = akv_backend.rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    previous = store.promote(rid)
    assert previous is not None and previous == old.properties.version
    store.retire(previous)
    store.retire(previous)
    versions = akv_backend.versions(name)
    assert previous in versions and versions[previous].enabled is False
    with pytest.raises(HttpResponseError) as caught:
        akv_backend.admin.get_secret(name, previous)
    assert caught.value.status_code == 403
    current = store.current()
    assert current is not None and current.value == SecretValue(NEW)


def test_retire_of_a_missing_secret_is_not_found(akv_backend: Backend) -> None:
    """retire() on a secret that does not exist raises NotFoundError."""
    store = akv_backend.store(akv_backend.secret_name())
    with pytest.raises(NotFoundError):
        store.retire("0" * 32)


def test_retire_refuses_a_malformed_version_id(akv_backend: Backend) -> None:
    """A version id that is not Key Vault's is refused before any call."""
    with pytest.raises(PermanentError, match="not a Key Vault version id"):
        akv_backend.store(akv_backend.secret_name()).retire("../other")


# -- deleted but recoverable ------------------------------------------------


@pytest.mark.parametrize("call", ["current", "put_pending", "last_changed"])
def test_a_deleted_but_recoverable_secret_names_the_recover_command(
    akv_backend: Backend, call: str
) -> None:
    """A soft-deleted secret is a PermanentError naming `az keyvault secret recover`."""
    name = akv_backend.secret_name()
    akv_backend.seed(name, OLD)
    akv_backend.delete(name)
    store = akv_backend.store(name)
    actions: dict[str, Any] = {
        "current": store.current,
        "last_changed": store.last_changed,
        "put_pending": lambda: store.put_pending(akv_backend.rotation_id(), SecretValue(NEW)),
    }
    with pytest.raises(PermanentError) as caught:
        actions[call]()
    message = str(caught.value)
    vault = vault_name(akv_backend.vault_url)
    assert f"az keyvault secret recover --vault-name {vault} --name {name}" in message
    assert OLD not in message and NEW not in message


def test_a_secret_deleted_before_promote_names_the_recover_command(akv_backend: Backend) -> None:
    """A secret soft-deleted between put_pending and promote makes promote a PermanentError."""
    name = akv_backend.secret_name()
    akv_backend.seed(name, OLD)
    store = akv_backend.store(name)
    rid = akv_backend.rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    akv_backend.delete(name)
    with pytest.raises(PermanentError, match="az keyvault secret recover"):
        store.promote(rid)
    assert store.pending(rid) == SecretValue(NEW)


def test_a_disabled_latest_version_is_a_permanent_error(akv_backend: Backend) -> None:
    """current() of a secret whose latest version is disabled raises PermanentError."""
    name = akv_backend.secret_name()
    latest = akv_backend.seed(name, OLD)
    akv_backend.admin.update_secret_properties(name, latest.properties.version, enabled=False)
    with pytest.raises(PermanentError, match="disabled") as caught:
        akv_backend.store(name).current()
    assert OLD not in str(caught.value)


# -- a whole rotation -------------------------------------------------------


def test_a_whole_rotation_as_the_engine_drives_it(akv_backend: Backend) -> None:
    """current, put_pending, pending, promote, retire: consumers only ever see verified values."""
    name = akv_backend.secret_name()
    old = akv_backend.seed(name, OLD)
    store = akv_backend.store(name)
    before = store.current()
    assert before is not None
    rid = akv_backend.rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    assert akv_backend.latest(name).value == OLD
    assert store.pending(rid) == SecretValue(NEW)
    previous = store.promote(rid, expires_on=datetime.now(UTC) + timedelta(days=30, hours=1))
    assert previous == before.version_id == old.properties.version
    assert akv_backend.latest(name).value == NEW
    store.retire(previous)
    versions = akv_backend.versions(name)
    assert {v: p.enabled for v, p in versions.items()} == {
        old.properties.version: False,
        akv_backend.latest(name).properties.version: True,
    }


# -- the Store contract -----------------------------------------------------


class TestKeyVaultContract(StoreContract):
    """The Store contract over azure-keyvault: the emulator, and a real vault when configured."""

    backend: Backend
    name: str
    monkeypatch: pytest.MonkeyPatch

    @pytest.fixture
    def store(self, akv_backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Store[Any]:
        self.backend, self.monkeypatch = akv_backend, monkeypatch
        self.name = akv_backend.secret_name()
        return akv_backend.store(self.name)

    def write_behind(self, store: Store[Any], value: SecretValue) -> str:
        return str(self.backend.seed(self.name, value.text()).properties.version)

    def read_behind(self, store: Store[Any]) -> SecretValue | None:
        if not self.backend.exists(self.name):
            return None
        return SecretValue(self.backend.latest(self.name).value)

    def offered(self, store: Store[Any], version_id: str) -> bool:
        return bool(self.backend.versions(self.name)[version_id].enabled)

    @pytest.mark.skip(
        reason="a Key Vault secret exists only with a value: one never written reads as no "
        "value yet (test_current_is_none_before_any_value), and its retire is "
        "test_retire_of_a_missing_secret_is_not_found"
    )
    def test_a_missing_secret_is_not_found(self, store: Store[Any]) -> None:
        super().test_a_missing_secret_is_not_found(store)

    @contextmanager
    def unavailable(self, store: Store[Any]) -> Iterator[None]:
        emulator = self.backend.emulator
        if emulator is None:
            pytest.skip("a real vault cannot be made to fail on demand")
        # No SDK retries (each waits for real): the first 503 is the answer.
        self.monkeypatch.setattr(identity, "SDK_RETRIES", 0)
        store.runtime.cache.clear()
        emulator.inject_fault("/", status=503, count=1000)
        try:
            yield
        finally:
            emulator.clear_faults()
