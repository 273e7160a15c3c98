"""The azure-keyvault store against Key Vault's slow deletes and recoveries, and purge protection.

Key Vault finishes a delete or a recover seconds after accepting it and answers 404 and
409 ``ObjectIsBeingDeleted``/``ObjectIsBeingRecovered`` meanwhile; a vault with purge
protection refuses purges, so a companion secret stays soft-deleted and the next rotation
must recover it before writing it again. The emulator does all of this on a clock that the
store's runtime sleeps move (``backends.SharedClock``), so these tests drive the store's
waits (only before a purge or a write that needs them), its answers to a busy name, its
recovery of a companion and its refusal to purge what it has not seen to be its own, without
anyone sleeping.

Emulator only: a real vault's clock cannot be moved, nor its purge protection switched per
test (the contract suite in ``test_keyvault_contract.py`` runs on both).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from providers.azure import identity
from providers.azure.keyvault import POLL_INTERVAL, POLL_TIMEOUT, ROTATION_ID
from rotator.adapters.secret import SecretValue
from rotator.engine.runner import Engine
from rotator.errors import ConflictError, PermanentError, PermissionDeniedError, TransientError
from rotator.journal.journal import Journal
from rotator.lifecycle import State
from rotator.policy.loader import load_policies
from tests.providers.azure.backends import SharedClock, clocked_backend

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.providers.azure.backends import Backend

OLD = "old-password-of-deletion-01"
NEW = "new-password-of-deletion-01"
OTHER = "next-password-of-deletion-1"
LOGGER = "providers.azure.keyvault"


@pytest.fixture(autouse=True)
def _no_sdk_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each answer reaches the store as the vault sent it (an SDK retry would sleep for real)."""
    monkeypatch.setattr(identity, "SDK_RETRIES", 0)


@pytest.fixture
def make_vault(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Backend]]:
    """Start the emulator on a shared clock, configured by the keyword arguments given."""
    with contextlib.ExitStack() as stack:
        yield lambda **options: stack.enter_context(clocked_backend(monkeypatch, **options))


def answers(backend: Backend, method: str, path: str) -> list[int]:
    """The statuses the vault answered to ``method path`` (trailing slash ignored), in order."""
    return [
        r.status
        for r in backend.emulator.request_log
        if r.method == method and r.path.rstrip("/") == path
    ]


def elapsed(backend: Backend, since: datetime) -> float:
    """Seconds the shared clock moved since ``since``."""
    seconds: float = (backend.clock() - since).total_seconds()
    return seconds


def test_promote_waits_for_the_companions_delete_on_the_runtime_clock_then_purges(
    make_vault: Callable[..., Backend],
) -> None:
    """promote() deletes the companion, polls until Key Vault lists it as deleted (404 for the
    6 s the delete takes), sleeping through the runtime between polls, then purges it."""
    vault = make_vault()
    name = vault.secret_name()
    companion = name + "--pending"
    vault.seed(name, OLD)
    store = vault.store(name)
    rid = vault.rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    started = vault.clock()
    store.promote(rid)
    assert answers(vault, "GET", f"/deletedsecrets/{companion}") == [404, 404, 404, 200]
    assert answers(vault, "DELETE", f"/deletedsecrets/{companion}") == [204]
    assert isinstance(vault.clock, SharedClock)
    assert vault.clock.sleeps == [POLL_INTERVAL] * 3
    assert elapsed(vault, started) == vault.emulator.delete_delay
    assert not vault.exists(companion)
    assert not vault.soft_deleted(companion)
    assert vault.latest(name).value == NEW


def purge_notes(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The store's log lines about purging (or not purging) a deleted secret."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER and "purg" in r.getMessage().split(":")[0]
    ]


def test_with_purge_protection_the_companion_is_left_deleted_then_recovered_for_reuse(
    make_vault: Callable[..., Backend], caplog: pytest.LogCaptureFixture
) -> None:
    """In a purge-protected vault the deleted companion's recovery level lacks Purgeable: the
    promote sends no purge (it would be a 403) and does not wait for the delete, and logs
    once, plainly, that purge protection keeps the companion until its scheduled purge; a
    replay does the same. The next put_pending meets 409 ObjectIsDeletedButRecoverable,
    recovers the companion, waits on the runtime clock until Key Vault serves it again, and
    writes it."""
    vault = make_vault(purge_protection=True)
    name = vault.secret_name()
    companion = name + "--pending"
    vault.seed(name, OLD)
    store = vault.store(name)
    first = vault.rotation_id()
    store.put_pending(first, SecretValue(NEW))
    with caplog.at_level(logging.INFO, logger=LOGGER):
        store.promote(first)
    assert vault.latest(name).value == NEW
    assert answers(vault, "DELETE", f"/deletedsecrets/{companion}") == []
    assert answers(vault, "GET", f"/deletedsecrets/{companion}") == [], "no wait for the delete"
    assert isinstance(vault.clock, SharedClock)
    assert vault.clock.sleeps == []
    [note] = purge_notes(caplog)
    scheduled = vault.clock() + timedelta(days=90)
    assert note == (
        f"not purging deleted secret {companion}: the vault has purge protection (recovery "
        f"level Recoverable), which keeps it until its scheduled purge on "
        f"{scheduled.isoformat()}; the next rotation recovers and reuses it (set "
        "purge_pending: false for this vault)"
    )
    assert "Secrets Officer" not in caplog.text and "HTTP 403" not in caplog.text
    assert "could not be removed" not in caplog.text
    assert NEW not in caplog.text and OLD not in caplog.text
    vault.sleep(vault.emulator.delete_delay)  # the next rotation comes later
    assert vault.soft_deleted(companion)
    assert vault.admin.get_deleted_secret(companion).properties.recovery_level == "Recoverable"
    caplog.clear()
    reads = answers(vault, "GET", f"/deletedsecrets/{companion}")
    with caplog.at_level(logging.INFO, logger=LOGGER):
        store.promote(first)  # a replay: the companion is seen among the deleted, as its own
    assert [n.split(":")[0] for n in purge_notes(caplog)] == [
        f"not purging deleted secret {companion}"
    ]
    assert answers(vault, "GET", f"/deletedsecrets/{companion}") == [*reads, 200]
    assert answers(vault, "DELETE", f"/deletedsecrets/{companion}") == []

    second = vault.rotation_id()
    started = vault.clock()
    version = store.put_pending(second, SecretValue(OTHER))
    assert answers(vault, "PUT", f"/secrets/{companion}") == [200, 409, 200]
    assert answers(vault, "POST", f"/deletedsecrets/{companion}/recover") == [200]
    # The recover poller's GETs (404 for the 4 s the recovery takes), then the adoption check.
    reads = answers(vault, "GET", f"/secrets/{companion}")
    assert reads[-4:] == [404, 404, 200, 200]
    assert elapsed(vault, started) == vault.emulator.recover_delay
    assert store.pending(second) == SecretValue(OTHER)
    assert vault.latest(companion).properties.version == version
    # Recovered with its history: the first rotation's version is still among the companion's.
    tags = [p.tags.get(ROTATION_ID) for p in vault.versions(companion).values()]
    assert sorted(tags) == sorted([first, second])
    store.promote(second)
    assert vault.latest(name).value == OTHER
    vault.sleep(vault.emulator.delete_delay)
    assert vault.soft_deleted(companion)
    assert answers(vault, "DELETE", f"/deletedsecrets/{companion}") == []


def test_without_purge_pending_nothing_waits_for_the_companions_delete(
    make_vault: Callable[..., Backend],
) -> None:
    """With purge_pending off no purge follows the companion's delete, so neither discard nor
    promote waits for it, not even for a delete slower than POLL_TIMEOUT (no TransientError).
    A put_pending while the delete is under way meets Key Vault's 409 (transient); once it is
    done, it recovers the companion and writes it."""
    vault = make_vault(delete_delay=3 * POLL_TIMEOUT)
    name = vault.secret_name()
    companion = name + "--pending"
    vault.seed(name, OLD)
    store = vault.store(name, purge_pending=False)
    assert isinstance(vault.clock, SharedClock)
    first = vault.rotation_id()
    store.put_pending(first, SecretValue(NEW))
    store.discard(first)
    assert vault.clock.sleeps == []
    assert answers(vault, "GET", f"/deletedsecrets/{companion}") == [], "nothing polled"
    assert not vault.exists(companion) and not vault.soft_deleted(companion), "being deleted"
    assert store.pending(first) is None

    second = vault.rotation_id()
    with pytest.raises(TransientError, match="being deleted or recovered") as busy:
        store.put_pending(second, SecretValue(OTHER))
    assert "ObjectIsBeingDeleted" in str(busy.value) and OTHER not in str(busy.value)
    vault.sleep(vault.emulator.delete_delay)
    store.put_pending(second, SecretValue(OTHER))
    assert answers(vault, "POST", f"/deletedsecrets/{companion}/recover") == [200]
    waited = list(vault.clock.sleeps)
    store.promote(second)
    assert vault.clock.sleeps == waited, "promote did not wait for the companion's delete"
    assert vault.latest(name).value == OTHER
    assert not vault.exists(companion)
    assert answers(vault, "DELETE", f"/deletedsecrets/{companion}") == []


def test_a_delete_slower_than_the_wait_is_transient_and_the_replay_purges_the_companion(
    make_vault: Callable[..., Backend],
) -> None:
    """discard() gives up waiting after POLL_TIMEOUT of the runtime clock (transient); the
    replay after the delete completes finds the companion among the deleted, with its
    rotation's tag, and purges it."""
    vault = make_vault(delete_delay=3 * POLL_TIMEOUT)
    name = vault.secret_name()
    companion = name + "--pending"
    store = vault.store(name)
    rid = vault.rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    started = vault.clock()
    with pytest.raises(TransientError, match=f"not deleted yet after {POLL_TIMEOUT:g}s") as first:
        store.discard(rid)
    assert first.value.retryable
    assert NEW not in str(first.value)
    assert elapsed(vault, started) == POLL_TIMEOUT
    assert len(answers(vault, "GET", f"/deletedsecrets/{companion}")) == (
        POLL_TIMEOUT / POLL_INTERVAL + 1
    )
    assert answers(vault, "DELETE", f"/deletedsecrets/{companion}") == []
    vault.sleep(vault.emulator.delete_delay)
    store.discard(rid)
    assert answers(vault, "DELETE", f"/deletedsecrets/{companion}") == [204]
    assert not vault.soft_deleted(companion)
    assert store.pending(rid) is None


@dataclass
class RacingClock(SharedClock):
    """A shared clock that also jumps ``jump`` seconds, once, as soon as ``cue()`` holds.

    The emulator reads its clock before serving each request, so a cue on its request log
    moves time between two requests of the store: a delete can complete exactly there.
    """

    jump: float = 0.0
    cue: Callable[[], bool] = lambda: False

    def __call__(self) -> datetime:
        if self.jump and self.cue():
            self.now += timedelta(seconds=self.jump)
            self.jump = 0.0
        return self.now


def test_a_replay_purges_no_deleted_companion_it_has_not_seen_to_be_its_own(
    make_vault: Callable[..., Backend], caplog: pytest.LogCaptureFixture
) -> None:
    """Another rotation's companion is being deleted when this rotation's discard replays:
    Key Vault lists it neither as a secret nor among the deleted (404), and its delete
    completes right after that read. The replay sends no purge (a purge there would remove
    the other rotation's companion, whose tags nobody checked) and says so; the other
    rotation's own replay, which sees its tag among the deleted, purges it."""
    clock = RacingClock()
    vault = make_vault(clock=clock)
    name = vault.secret_name()
    companion = name + "--pending"
    store = vault.store(name)
    theirs = vault.rotation_id()
    store.put_pending(theirs, SecretValue(OTHER))
    vault.begin_delete(companion)
    clock.jump = vault.emulator.delete_delay
    clock.cue = lambda: answers(vault, "GET", f"/deletedsecrets/{companion}") == [404]
    mine = vault.rotation_id()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        store.discard(mine)
    assert answers(vault, "GET", f"/deletedsecrets/{companion}") == [404]
    assert answers(vault, "DELETE", f"/deletedsecrets/{companion}") == []
    assert vault.soft_deleted(companion), "the delete completed right after the replay's read"
    assert vault.admin.get_deleted_secret(companion).properties.tags[ROTATION_ID] == theirs
    assert purge_notes(caplog) == [
        f"not purging {companion} for rotation {mine}: it is not among the deleted secrets "
        "(never deleted, purged already, or its delete is still under way: then it stays "
        "soft-deleted until the next rotation recovers it)"
    ]
    assert OTHER not in caplog.text
    store.discard(theirs)
    assert answers(vault, "DELETE", f"/deletedsecrets/{companion}") == [204]
    assert not vault.soft_deleted(companion)


def test_a_rotation_while_the_companion_is_still_being_deleted_is_transient_then_recovers_it(
    make_vault: Callable[..., Backend], caplog: pytest.LogCaptureFixture
) -> None:
    """A promote whose companion delete outlasts the wait still stands (the failure is logged);
    the next put_pending meets 409 ObjectIsBeingDeleted (transient: retry later), and once the
    delete completes it recovers the companion, left unpurged, and writes it."""
    vault = make_vault(delete_delay=3 * POLL_TIMEOUT)
    name = vault.secret_name()
    companion = name + "--pending"
    old = vault.seed(name, OLD)
    store = vault.store(name)
    first = vault.rotation_id()
    store.put_pending(first, SecretValue(NEW))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert store.promote(first) == old.properties.version
    assert vault.latest(name).value == NEW
    assert "could not be removed" in caplog.text and "not deleted yet" in caplog.text

    second = vault.rotation_id()
    with pytest.raises(TransientError, match="being deleted or recovered") as caught:
        store.put_pending(second, SecretValue(OTHER))
    assert "ObjectIsBeingDeleted" in str(caught.value)
    assert OTHER not in str(caught.value)
    assert answers(vault, "POST", f"/deletedsecrets/{companion}/recover") == []
    vault.sleep(vault.emulator.delete_delay)
    assert vault.soft_deleted(companion)
    store.put_pending(second, SecretValue(OTHER))
    assert answers(vault, "POST", f"/deletedsecrets/{companion}/recover") == [200]
    assert store.pending(second) == SecretValue(OTHER)


def test_a_recovery_slower_than_the_wait_is_retried_until_the_pending_value_is_written(
    make_vault: Callable[..., Backend],
) -> None:
    """put_pending gives up waiting for the companion's recovery after POLL_TIMEOUT
    (transient); its replay meets 409 ObjectIsBeingRecovered (transient); the replay after the
    recovery completes writes the pending value without recovering twice."""
    vault = make_vault(purge_protection=True, recover_delay=3 * POLL_TIMEOUT)
    name = vault.secret_name()
    companion = name + "--pending"
    vault.seed(name, OLD)
    store = vault.store(name)
    first = vault.rotation_id()
    store.put_pending(first, SecretValue(NEW))
    store.promote(first)
    vault.sleep(vault.emulator.delete_delay)  # the next rotation comes after the delete
    assert vault.soft_deleted(companion)
    second = vault.rotation_id()
    with pytest.raises(TransientError, match=f"not recovered yet after {POLL_TIMEOUT:g}s"):
        store.put_pending(second, SecretValue(OTHER))
    with pytest.raises(TransientError, match="being deleted or recovered") as busy:
        store.put_pending(second, SecretValue(OTHER))
    assert "ObjectIsBeingRecovered" in str(busy.value)
    vault.sleep(vault.emulator.recover_delay)
    store.put_pending(second, SecretValue(OTHER))
    assert store.pending(second) == SecretValue(OTHER)
    assert answers(vault, "POST", f"/deletedsecrets/{companion}/recover") == [200]
    assert answers(vault, "PUT", f"/secrets/{companion}")[-3:] == [409, 409, 200]


def test_a_poll_refused_with_403_ends_the_wait_but_a_401_fails(
    make_vault: Callable[..., Backend],
) -> None:
    """As with the SDK's pollers, a 403 to a poll ends the wait (Key Vault says 404 until the
    object is there), and the purge then tells whether the delete is done (409: retry); a 401
    is no answer about the object and fails the step as a permission error."""
    vault = make_vault()
    name = vault.secret_name()
    companion = name + "--pending"
    store = vault.store(name)
    first = vault.rotation_id()
    store.put_pending(first, SecretValue(NEW))
    vault.emulator.inject_fault(f"/deletedsecrets/{companion}", status=403, method="GET")
    with pytest.raises(TransientError, match="ObjectIsBeingDeleted"):
        store.discard(first)
    assert isinstance(vault.clock, SharedClock)
    assert vault.clock.sleeps == []
    vault.sleep(vault.emulator.delete_delay)
    store.discard(first)
    assert answers(vault, "DELETE", f"/deletedsecrets/{companion}") == [409, 204]

    second = vault.rotation_id()
    store.put_pending(second, SecretValue(OTHER))
    vault.emulator.inject_fault(f"/deletedsecrets/{companion}", status=401, method="GET")
    with pytest.raises(PermissionDeniedError):
        store.discard(second)
    assert vault.clock.sleeps == [vault.emulator.delete_delay], "only the test's own sleep"


def test_a_secret_being_deleted_before_promote_is_named_as_deleted(
    make_vault: Callable[..., Backend],
) -> None:
    """A secret someone deletes between put_pending and promote: while the delete is under way
    (the secret is in neither list) promote refuses as deleted, naming the recover command,
    not as "written by someone else"; once the delete completes it is the soft-deleted error."""
    vault = make_vault()
    name = vault.secret_name()
    vault.seed(name, OLD)
    store = vault.store(name)
    rid = vault.rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    vault.begin_delete(name)
    with pytest.raises(ConflictError, match="was deleted") as during:
        store.promote(rid)
    assert "az keyvault secret recover" in str(during.value)
    assert "someone else" not in str(during.value)
    vault.sleep(vault.emulator.delete_delay)
    with pytest.raises(PermanentError, match="az keyvault secret recover"):
        store.promote(rid)
    assert store.pending(rid) == SecretValue(NEW)


# -- through the engine -----------------------------------------------------------------


def _engine(tmp_path: Path, backend: Backend, name: str) -> Engine:
    """An engine rotating ``name`` in the backend's vault, on the backend's clock and sleep."""
    store = {"provider": "azure-keyvault", "vault_url": backend.vault_url, "name": name}
    # A short grace: the emulator's tokens live an hour of its clock, while the identity
    # caches them by wall time (a known divergence), so the clock moves less than that.
    policy = {"name": "app", "store": store, "schedule": {"every": "30d"}, "grace": "10m"}
    config = tmp_path / "policies.yaml"
    config.write_text(json.dumps({"secrets": [policy]}))
    return Engine(
        load_policies(config),
        Journal(f"sqlite:///{tmp_path / 'journal.db'}", backend.clock),
        clock=backend.clock,
        sleep=backend.sleep,
    )


def test_the_engine_rotates_twice_in_a_purge_protected_vault_through_a_busy_companion(
    make_vault: Callable[..., Backend], tmp_path: Path
) -> None:
    """Two whole rotations in a purge-protected vault. Between them an operator starts
    recovering the companion left soft-deleted: the second rotation's write meets 409
    ObjectIsBeingRecovered, the engine retries it with backoff, and it completes once Key Vault
    has finished the recovery."""
    vault = make_vault(purge_protection=True)
    name = vault.secret_name()
    companion = name + "--pending"
    vault.seed(name, OLD)
    engine = _engine(tmp_path, vault, name)
    values = []
    for turn in range(2):
        if turn == 1:
            vault.admin.begin_recover_deleted_secret(companion)
        [rotated] = engine.rotate("app").outcomes
        assert rotated.state is State.GRACE, rotated.message
        values.append(vault.latest(name).value)
        vault.sleep(timedelta(minutes=15).total_seconds())
        [revoked] = engine.run_once().outcomes
        assert revoked.state is State.DONE, revoked.message
    assert len({OLD, *values}) == 3
    writes = answers(vault, "PUT", f"/secrets/{companion}")
    assert writes[0] == 200 and writes[-1] == 200 and 409 in writes
    assert answers(vault, "POST", f"/deletedsecrets/{companion}/recover") == [200]
    assert answers(vault, "DELETE", f"/deletedsecrets/{companion}") == [], "never a purge"
    assert vault.soft_deleted(companion)
