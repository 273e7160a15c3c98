"""The Store contract: every promise :class:`rotator.adapters.Store` makes, one test each.

Subclass :class:`StoreContract` in a test module (its name must start with
``Test``), override the ``store`` fixture to build the store under test on a
secret that has no value yet, and implement the hooks through which the suite
looks at the store's system from outside: :meth:`~StoreContract.write_behind`,
:meth:`~StoreContract.read_behind`, :meth:`~StoreContract.offered`,
:meth:`~StoreContract.missing` and :meth:`~StoreContract.unavailable`. A
store that cannot keep a promise for a documented reason overrides that test
with a skip or an ``xfail(strict=True)`` naming the reason
(docs/providers/writing-an-adapter.md shows a whole example).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from rotator.adapters import SecretValue, Store
from rotator.errors import ConflictError, NotFoundError, RotatorError, TransientError
from rotator.testing.values import assert_hidden, fresh_value, new_rotation_id

StoreT = Store[Any]
Call = Callable[[], object]


class StoreContract:
    """The promises of a store: pending is invisible, promote is atomic and replayable, and more.

    Each test states one promise in its name and docstring. The store under
    test is the ``store`` fixture; everything the suite must see or do
    behind its back goes through the hooks below, which a subclass implements.
    """

    # -- what a subclass provides

    @pytest.fixture
    def store(self) -> StoreT:
        """Return the store under test, on a secret that exists (where it must) with no value."""
        raise NotImplementedError("override the store fixture: build the store under test")

    def write_behind(self, store: StoreT, value: SecretValue) -> str:
        """Write ``value`` as the current value, as another writer would; return its version id."""
        raise NotImplementedError("implement write_behind: write a current value without the store")

    def read_behind(self, store: StoreT) -> SecretValue | None:
        """Return what a consumer reads as the current value, without the store's methods."""
        raise NotImplementedError("implement read_behind: read the current value as a consumer")

    def offered(self, store: StoreT, version_id: str) -> bool:
        """Tell whether consumers are still offered ``version_id`` (a label, enabled, readable)."""
        raise NotImplementedError("implement offered: tell whether a version is still usable")

    def missing(self, store: StoreT) -> StoreT:
        """Return a store like ``store`` whose secret (or what holds it) does not exist."""
        raise NotImplementedError("implement missing: a store on a secret that does not exist")

    @contextmanager
    def unavailable(self, store: StoreT) -> Iterator[None]:
        """Within this block, the store's system fails every request as an outage does (a 503)."""
        raise NotImplementedError("implement unavailable: make the store's system fail for a while")
        yield  # pragma: no cover

    def value(self, label: str) -> SecretValue:
        """Return a fresh value the store accepts (override it for a narrower alphabet)."""
        return fresh_value(label)

    # -- what the tests share

    def rotate(self, store: StoreT, value: SecretValue) -> tuple[str, str | None]:
        """Stage and promote ``value`` in a new rotation; return its id and what it replaced."""
        rotation_id = new_rotation_id()
        store.put_pending(rotation_id, value)
        return rotation_id, store.promote(rotation_id)

    def seeded(self, store: StoreT) -> tuple[SecretValue, str]:
        """Give the secret a current value from outside; return it and its version id."""
        old = self.value("old")
        return old, self.write_behind(store, old)

    def every_call(self, store: StoreT, rotation_id: str, version_id: str) -> dict[str, Call]:
        """Return a call of every method that reaches the store's system, by name."""
        staged = self.value("staged")
        return {
            "current": store.current,
            "last_changed": store.last_changed,
            "put_pending": lambda: store.put_pending(rotation_id, staged),
            "pending": lambda: store.pending(rotation_id),
            "promote": lambda: store.promote(rotation_id),
            "discard": lambda: store.discard(rotation_id),
            "retire": lambda: store.retire(version_id),
        }

    # -- reading

    def test_describe_is_an_address_without_the_value(self, store: StoreT) -> None:
        """describe() is a short, non-empty address that never holds the value."""
        old, _ = self.seeded(store)
        described = store.describe()
        assert isinstance(described, str) and described.strip()
        assert_hidden(described, old)

    def test_current_is_none_before_any_value(self, store: StoreT) -> None:
        """A secret with no value yet has no current version (None, not an error)."""
        assert store.current() is None

    def test_current_is_what_consumers_read(self, store: StoreT) -> None:
        """current() returns the value another writer made current, under that version's id."""
        old, version_id = self.seeded(store)
        current = store.current()
        assert current is not None
        assert current.value == old
        assert current.version_id == version_id

    def test_last_changed_is_when_the_current_value_was_written(self, store: StoreT) -> None:
        """last_changed() is an aware time, the current version's creation time where it has one."""
        self.seeded(store)
        changed = store.last_changed()
        current = store.current()
        assert changed is not None and changed.tzinfo is not None
        assert current is not None
        assert current.created_at is None or current.created_at == changed

    # -- pending

    def test_pending_returns_the_staged_value(self, store: StoreT) -> None:
        """pending() returns what put_pending() staged for the same rotation."""
        self.seeded(store)
        rotation_id, new = new_rotation_id(), self.value("new")
        store.put_pending(rotation_id, new)
        assert store.pending(rotation_id) == new

    def test_pending_is_never_what_consumers_read(self, store: StoreT) -> None:
        """A staged value is invisible to consumers and to current() until promoted."""
        old, version_id = self.seeded(store)
        store.put_pending(new_rotation_id(), self.value("new"))
        assert self.read_behind(store) == old
        current = store.current()
        assert current is not None and (current.version_id, current.value) == (version_id, old)

    def test_a_first_pending_value_is_not_what_consumers_read(self, store: StoreT) -> None:
        """A value staged for a secret with no value yet stays invisible until promoted."""
        store.put_pending(new_rotation_id(), self.value("new"))
        assert self.read_behind(store) is None
        assert store.current() is None

    def test_pending_of_an_unknown_rotation_is_none(self, store: StoreT) -> None:
        """pending() of a rotation that staged nothing is None, not an error."""
        self.seeded(store)
        assert store.pending(new_rotation_id()) is None

    def test_put_pending_replay_returns_the_same_version(self, store: StoreT) -> None:
        """Staging the same value again for a rotation changes nothing and returns the same id."""
        old, _ = self.seeded(store)
        rotation_id, new = new_rotation_id(), self.value("new")
        first = store.put_pending(rotation_id, new)
        assert store.put_pending(rotation_id, new) == first
        assert store.pending(rotation_id) == new
        assert self.read_behind(store) == old

    def test_put_pending_of_another_value_conflicts_and_keeps_the_first(
        self, store: StoreT
    ) -> None:
        """Another value for a staged rotation is a ConflictError without either value in it."""
        self.seeded(store)
        rotation_id, new, other = new_rotation_id(), self.value("new"), self.value("other")
        store.put_pending(rotation_id, new)
        with pytest.raises(ConflictError) as caught:
            store.put_pending(rotation_id, other)
        assert_hidden(str(caught.value), new, other)
        assert store.pending(rotation_id) == new

    # -- promote

    def test_promote_makes_the_value_current_and_returns_the_replaced_version(
        self, store: StoreT
    ) -> None:
        """promote() makes the staged value what consumers read and returns the old version's id."""
        _, version_id = self.seeded(store)
        new = self.value("new")
        _, replaced = self.rotate(store, new)
        assert replaced == version_id
        assert self.read_behind(store) == new
        current = store.current()
        assert current is not None and current.value == new

    def test_promote_of_a_first_value_replaced_nothing(self, store: StoreT) -> None:
        """The first promote of a secret without a value returns None; the value is current."""
        new = self.value("new")
        _, replaced = self.rotate(store, new)
        assert replaced is None
        assert self.read_behind(store) == new

    def test_promote_replay_changes_nothing(self, store: StoreT) -> None:
        """A second promote of the same rotation returns the same id and writes no new version."""
        self.seeded(store)
        rotation_id, replaced = self.rotate(store, self.value("new"))
        before = store.current()
        assert store.promote(rotation_id) == replaced
        assert store.current() == before

    def test_a_second_rotation_replaces_the_first(self, store: StoreT) -> None:
        """Two rotations in a row: the second promote replaces the first one's version."""
        self.seeded(store)
        self.rotate(store, self.value("first"))
        promoted = store.current()
        second = self.value("second")
        _, replaced = self.rotate(store, second)
        assert promoted is not None and replaced == promoted.version_id
        assert self.read_behind(store) == second

    def test_promote_without_a_pending_value_conflicts(self, store: StoreT) -> None:
        """Promoting a rotation that staged nothing is a ConflictError and changes nothing."""
        old, _ = self.seeded(store)
        with pytest.raises(ConflictError):
            store.promote(new_rotation_id())
        assert self.read_behind(store) == old

    def test_a_concurrent_writer_makes_promote_conflict(self, store: StoreT) -> None:
        """A value written by someone else after put_pending is never overwritten: ConflictError."""
        self.seeded(store)
        rotation_id, new, theirs = new_rotation_id(), self.value("new"), self.value("theirs")
        store.put_pending(rotation_id, new)
        self.write_behind(store, theirs)
        with pytest.raises(ConflictError) as caught:
            store.promote(rotation_id)
        assert_hidden(str(caught.value), new, theirs)
        assert self.read_behind(store) == theirs

    def test_a_concurrent_first_writer_makes_promote_conflict(self, store: StoreT) -> None:
        """A first value written by someone else after put_pending is never overwritten either."""
        rotation_id, new, theirs = new_rotation_id(), self.value("new"), self.value("theirs")
        store.put_pending(rotation_id, new)
        self.write_behind(store, theirs)
        with pytest.raises(ConflictError):
            store.promote(rotation_id)
        assert self.read_behind(store) == theirs

    def test_a_promote_replay_never_overwrites_a_later_write(self, store: StoreT) -> None:
        """Replaying a promote after someone else wrote leaves their value current."""
        self.seeded(store)
        rotation_id, _ = self.rotate(store, self.value("new"))
        theirs = self.value("theirs")
        self.write_behind(store, theirs)
        with contextlib.suppress(ConflictError):  # refusing the replay is as good as a no-op
            store.promote(rotation_id)
        assert self.read_behind(store) == theirs

    # -- discard

    def test_discard_removes_the_pending_value(self, store: StoreT) -> None:
        """discard() removes the rotation's staged value; the current value stays."""
        old, _ = self.seeded(store)
        rotation_id = new_rotation_id()
        store.put_pending(rotation_id, self.value("new"))
        store.discard(rotation_id)
        assert store.pending(rotation_id) is None
        assert self.read_behind(store) == old

    def test_discard_replay_and_discard_of_an_unknown_rotation_are_no_ops(
        self, store: StoreT
    ) -> None:
        """discard() twice, or of a rotation that staged nothing, changes nothing."""
        old, _ = self.seeded(store)
        rotation_id, other = new_rotation_id(), new_rotation_id()
        store.put_pending(rotation_id, self.value("new"))
        new_other = self.value("other")
        store.put_pending(other, new_other)
        store.discard(rotation_id)
        store.discard(rotation_id)
        store.discard(new_rotation_id())
        assert store.pending(other) == new_other
        assert self.read_behind(store) == old

    # -- retire

    def test_retire_stops_offering_the_replaced_version(self, store: StoreT) -> None:
        """After a rotation, retire(old version) stops consumers being offered it."""
        _, version_id = self.seeded(store)
        new = self.value("new")
        _, replaced = self.rotate(store, new)
        assert replaced == version_id and self.offered(store, version_id)
        store.retire(version_id)
        assert not self.offered(store, version_id)
        assert self.read_behind(store) == new

    def test_retire_twice_is_a_no_op(self, store: StoreT) -> None:
        """Retiring a version already retired changes nothing and raises nothing."""
        _, version_id = self.seeded(store)
        new = self.value("new")
        self.rotate(store, new)
        store.retire(version_id)
        store.retire(version_id)
        assert not self.offered(store, version_id)
        assert self.read_behind(store) == new

    def test_retire_never_touches_the_current_version(self, store: StoreT) -> None:
        """retire() of the current version leaves it current and offered."""
        old, version_id = self.seeded(store)
        store.retire(version_id)
        assert self.read_behind(store) == old
        assert self.offered(store, version_id)

    # -- replaced_version

    def test_replaced_version_names_what_the_promote_replaced(self, store: StoreT) -> None:
        """replaced_version() is what promote returned (None where the store does not record it)."""
        self.seeded(store)
        rotation_id, replaced = self.rotate(store, self.value("new"))
        told = store.replaced_version(rotation_id)
        if type(store).replaced_version is Store.replaced_version:
            assert told is None
        else:
            assert told == replaced

    def test_replaced_version_of_a_rotation_never_promoted_is_none(self, store: StoreT) -> None:
        """replaced_version() of a rotation that only staged, or never ran, is None."""
        self.seeded(store)
        rotation_id = new_rotation_id()
        store.put_pending(rotation_id, self.value("new"))
        assert store.replaced_version(rotation_id) is None
        assert store.replaced_version(new_rotation_id()) is None

    # -- values

    def test_a_mapping_value_round_trips(self, store: StoreT) -> None:
        """A mapping value is staged, promoted and read back as the same mapping."""
        pair = SecretValue(
            {"username": self.value("user").text(), "password": self.value("pw").text()}
        )
        rotation_id = new_rotation_id()
        store.put_pending(rotation_id, pair)
        assert store.pending(rotation_id) == pair
        store.promote(rotation_id)
        current = store.current()
        assert current is not None and current.value.is_mapping() and current.value == pair

    # -- failures

    def test_a_missing_secret_is_not_found(self, store: StoreT) -> None:
        """Every method on a secret that does not exist raises NotFoundError: permanent."""
        _, version_id = self.seeded(store)  # an id of the store's own form, to retire
        gone, rotation_id = self.missing(store), new_rotation_id()
        for name, call in self.every_call(gone, rotation_id, version_id).items():
            with pytest.raises(NotFoundError) as caught:
                call()
            assert not caught.value.retryable, name

    def test_an_unavailable_store_fails_every_call_with_a_retryable_error(
        self, store: StoreT
    ) -> None:
        """While the system is down every method raises a TransientError, never an SDK's error."""
        old, version_id = self.seeded(store)
        rotation_id = new_rotation_id()
        with self.unavailable(store):
            for name, call in self.every_call(store, rotation_id, version_id).items():
                with pytest.raises(RotatorError) as caught:
                    call()
                assert isinstance(caught.value, TransientError), f"{name}: {caught.value!r}"
                assert caught.value.retryable, name
                assert_hidden(str(caught.value), old)

    def test_check_changes_nothing(self, store: StoreT) -> None:
        """check() says what it checked and writes nothing."""
        old, version_id = self.seeded(store)
        said = store.check()
        assert isinstance(said, str) and said.strip()
        current = store.current()
        assert current is not None and (current.version_id, current.value) == (version_id, old)
