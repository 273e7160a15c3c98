"""The Target contract: every promise :class:`rotator.adapters.Target` makes, one test each.

Subclass :class:`TargetContract` in a test module (named ``Test...``),
override the ``target`` fixture to build the target under test on a place
that carries nothing yet, and implement :meth:`~TargetContract.carried`
(what a consumer reads there now) and :meth:`~TargetContract.unavailable`
(the target's system failing for a while). A target that cannot keep a
promise for a documented reason overrides that test with a skip or an
``xfail(strict=True)`` naming the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from rotator.adapters import SecretValue, Target
from rotator.errors import RotatorError, TransientError
from rotator.testing.values import assert_hidden, fresh_value, new_rotation_id

TargetT = Target[Any]


class TargetContract:
    """The promises of a target: write and restore replay, restore puts the old value back."""

    # -- what a subclass provides

    @pytest.fixture
    def target(self) -> TargetT:
        """Return the target under test, on a place that carries nothing yet."""
        raise NotImplementedError("override the target fixture: build the target under test")

    def carried(self, target: TargetT) -> SecretValue | None:
        """Return the value a consumer reads from the target now (``None``: nothing there)."""
        raise NotImplementedError("implement carried: read the target's value as a consumer")

    @contextmanager
    def unavailable(self, target: TargetT) -> Iterator[None]:
        """Within this block the target's system fails as an outage does (a 503, a timeout)."""
        raise NotImplementedError("implement unavailable: make the target's system fail")
        yield  # pragma: no cover

    def value(self, label: str) -> SecretValue:
        """Return a fresh value the target accepts (override for a narrower alphabet)."""
        return fresh_value(label)

    # -- what the tests share

    def given(self, target: TargetT) -> SecretValue:
        """Make the target carry a value from an earlier rotation; return that value."""
        previous = self.value("previous")
        target.write(new_rotation_id(), previous)
        return previous

    # -- write

    def test_write_makes_consumers_read_the_value(self, target: TargetT) -> None:
        """After write() a consumer reads exactly the value written."""
        new = self.value("new")
        target.write(new_rotation_id(), new)
        assert self.carried(target) == new

    def test_write_replaces_an_earlier_value(self, target: TargetT) -> None:
        """write() over an earlier rotation's value makes consumers read the new one."""
        self.given(target)
        new = self.value("new")
        target.write(new_rotation_id(), new)
        assert self.carried(target) == new

    def test_write_replay_changes_nothing(self, target: TargetT) -> None:
        """Writing the same rotation's value twice leaves consumers reading it."""
        rotation_id, new = new_rotation_id(), self.value("new")
        target.write(rotation_id, new)
        target.write(rotation_id, new)
        assert self.carried(target) == new

    # -- restore

    def test_restore_puts_the_previous_value_back(self, target: TargetT) -> None:
        """restore() after write() makes consumers read the previous value again."""
        previous = self.given(target)
        rotation_id, new = new_rotation_id(), self.value("new")
        target.write(rotation_id, new)
        target.restore(rotation_id, written=new, previous=previous)
        assert self.carried(target) == previous

    def test_restore_without_a_previous_value_removes_what_write_added(
        self, target: TargetT
    ) -> None:
        """With no previous value, restore() removes what this rotation's write() added."""
        rotation_id, new = new_rotation_id(), self.value("new")
        target.write(rotation_id, new)
        target.restore(rotation_id, written=new, previous=None)
        assert self.carried(target) is None

    def test_restore_when_write_never_ran_keeps_the_previous_value(self, target: TargetT) -> None:
        """restore() of a rotation that never wrote leaves consumers reading the previous value."""
        previous = self.given(target)
        target.restore(new_rotation_id(), written=self.value("new"), previous=previous)
        assert self.carried(target) == previous

    def test_restore_twice_is_a_no_op(self, target: TargetT) -> None:
        """A second restore() of the same rotation leaves the previous value in place."""
        previous = self.given(target)
        rotation_id, new = new_rotation_id(), self.value("new")
        target.write(rotation_id, new)
        target.restore(rotation_id, written=new, previous=previous)
        target.restore(rotation_id, written=new, previous=previous)
        assert self.carried(target) == previous

    # -- retire, check, describe

    def test_retire_keeps_the_current_value_and_replays(self, target: TargetT) -> None:
        """retire() of a rotation, twice, never takes away the value that rotation wrote."""
        self.given(target)
        rotation_id, new = new_rotation_id(), self.value("new")
        target.write(rotation_id, new)
        target.retire(rotation_id)
        target.retire(rotation_id)
        assert self.carried(target) == new

    def test_check_changes_nothing(self, target: TargetT) -> None:
        """check() says what it checked and leaves what consumers read as it was."""
        previous = self.given(target)
        said = target.check()
        assert isinstance(said, str) and said.strip()
        assert self.carried(target) == previous

    def test_describe_is_an_address_without_the_value(self, target: TargetT) -> None:
        """describe() is a short, non-empty address that never holds the value written."""
        new = self.value("new")
        target.write(new_rotation_id(), new)
        described = target.describe()
        assert isinstance(described, str) and described.strip()
        assert_hidden(described, new)

    # -- failures

    def test_an_unavailable_target_fails_with_a_retryable_error(self, target: TargetT) -> None:
        """While the system is down write() raises a retryable rotator error, never an SDK's."""
        new = self.value("new")
        with self.unavailable(target), pytest.raises(RotatorError) as caught:
            target.write(new_rotation_id(), new)
        assert isinstance(caught.value, TransientError) and caught.value.retryable

    def test_a_failed_write_does_not_carry_the_value(self, target: TargetT) -> None:
        """The error of a failed write() holds no piece of the value."""
        previous = self.given(target)
        new = self.value("new")
        with self.unavailable(target), pytest.raises(RotatorError) as caught:
            target.write(new_rotation_id(), new)
        assert_hidden(str(caught.value), new, previous)
