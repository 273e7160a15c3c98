"""The Issuer contract: every promise :class:`rotator.adapters.Issuer` makes, one test each.

Subclass :class:`IssuerContract` in a test module (named ``Test...``),
override the ``issuer`` fixture to build the issuer under test, and implement
:meth:`~IssuerContract.usable` (whether a consumer presenting a credential is
let in now, seen from outside the issuer) and
:meth:`~IssuerContract.unavailable` (the issuer's system failing for a
while). Declare :attr:`~IssuerContract.limit` if the system holds only so
many credentials at once. An issuer that cannot mint (``reminder_only``)
implements :meth:`~IssuerContract.supplied`: the suite then takes the value a
person would supply, as the engine does. A promise an issuer cannot keep for
a documented reason is overridden in the subclass with a skip naming it.
An issuer whose credential becomes live through its own targets (a
database password) has them written after each mint, as the engine does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import pytest

from rotator.adapters import Credential, Issuer, SecretValue
from rotator.errors import (
    LimitExceededError,
    PermanentError,
    RotatorError,
    TransientError,
    VerificationError,
)
from rotator.testing.values import assert_hidden, fresh_value, new_rotation_id

IssuerT = Issuer[Any]


class IssuerContract:
    """The promises of an issuer: mint, verify, revoke, delete, and recovery after a crash."""

    #: The most credentials the issuer's system holds at once for one secret (None: no limit).
    limit: ClassVar[int | None] = None

    # -- what a subclass provides

    @pytest.fixture
    def issuer(self) -> IssuerT:
        """Return the issuer under test, for a secret that holds no credential yet."""
        raise NotImplementedError("override the issuer fixture: build the issuer under test")

    def usable(self, issuer: IssuerT, credential: Credential) -> bool:
        """Tell whether a consumer presenting ``credential`` is let in now (seen from outside)."""
        raise NotImplementedError("implement usable: try the credential as its consumer would")

    @contextmanager
    def unavailable(self, issuer: IssuerT) -> Iterator[None]:
        """Within this block the issuer's system fails every request as an outage does."""
        raise NotImplementedError("implement unavailable: make the issuer's system fail")
        yield  # pragma: no cover

    def supplied(self, issuer: IssuerT) -> SecretValue:
        """Return the value a person supplies to an issuer that cannot mint (``reminder_only``)."""
        raise NotImplementedError("implement supplied: what a person hands a reminder-only issuer")

    def foreign(self, issuer: IssuerT) -> SecretValue:
        """Return a value of the issuer's shape that it never minted."""
        return fresh_value("foreign")

    # -- what the tests share

    def start(self, issuer: IssuerT, keep: Sequence[str | None] = ()) -> list[str]:
        """Make room and take the inventory, as the engine does before it mints; return the refs."""
        issuer.prepare([ref for ref in keep if ref is not None])
        return issuer.inventory()

    def minted(self, issuer: IssuerT, rotation_id: str) -> Credential:
        """Mint for ``rotation_id`` (or take a person's value, for a reminder-only issuer).

        The issuer's own targets (``Issuer.targets``) are written with the new
        value, as the engine writes them once the store holds it as pending.
        """
        if issuer.reminder_only:
            value = self.supplied(issuer)
            return Credential(value, issuer.ref_of(value))
        return self.made_live(issuer, rotation_id, issuer.mint(rotation_id))

    @staticmethod
    def made_live(issuer: IssuerT, rotation_id: str, credential: Credential) -> Credential:
        """Write the issuer's own targets with ``credential``, as the engine does; return it."""
        for target in issuer.targets():
            target.write(rotation_id, credential.value)
        return credential

    def fresh(self, issuer: IssuerT, keep: Sequence[str | None] = ()) -> Credential:
        """Start and mint in a new rotation; return the credential."""
        self.start(issuer, keep)
        return self.minted(issuer, new_rotation_id())

    @staticmethod
    def ref_to_revoke(credential: Credential) -> str:
        """Return the credential's ref; skip the test if it has none (nothing to revoke)."""
        if credential.ref is None:
            pytest.skip("the credential has no ref: the engine revokes nothing at the issuer")
        return credential.ref

    # -- mint and verify

    def test_only_an_issuer_that_cannot_mint_refuses_to(self, issuer: IssuerT) -> None:
        """mint() returns a credential, or, from a reminder-only issuer, a permanent refusal."""
        self.start(issuer)
        if issuer.reminder_only:
            with pytest.raises(PermanentError) as caught:
                issuer.mint(new_rotation_id())
            assert not caught.value.retryable
        else:
            assert isinstance(issuer.mint(new_rotation_id()), Credential)

    def test_a_minted_credential_verifies(self, issuer: IssuerT) -> None:
        """verify() of a credential just minted passes."""
        issuer.verify(self.fresh(issuer))

    def test_a_minted_credential_lets_its_consumer_in(self, issuer: IssuerT) -> None:
        """A consumer presenting the new credential is let in."""
        assert self.usable(issuer, self.fresh(issuer))

    def test_ref_of_the_minted_value_is_its_ref(self, issuer: IssuerT) -> None:
        """ref_of() finds the minted credential's ref from its value."""
        credential = self.fresh(issuer)
        assert issuer.ref_of(credential.value) == credential.ref

    def test_verify_refuses_a_value_it_never_minted(self, issuer: IssuerT) -> None:
        """verify() of a value the issuer never minted raises VerificationError without it."""
        self.fresh(issuer)
        stranger = self.foreign(issuer)
        with pytest.raises(VerificationError) as caught:
            issuer.verify(Credential(stranger, None))
        assert_hidden(str(caught.value), stranger)

    # -- revoke and delete

    def test_revoke_stops_the_credential_letting_anyone_in(self, issuer: IssuerT) -> None:
        """After revoke() a consumer presenting the credential is turned away."""
        credential = self.fresh(issuer)
        assert credential.ref is not None
        issuer.revoke(credential.ref)
        assert not self.usable(issuer, credential)

    def test_verify_refuses_a_revoked_credential(self, issuer: IssuerT) -> None:
        """verify() of a revoked credential raises VerificationError without its value."""
        credential = self.fresh(issuer)
        assert credential.ref is not None
        issuer.revoke(credential.ref)
        with pytest.raises(VerificationError) as caught:
            issuer.verify(credential)
        assert_hidden(str(caught.value), credential.value)

    def test_revoke_twice_is_a_no_op(self, issuer: IssuerT) -> None:
        """revoke() of a credential already revoked raises nothing."""
        ref = self.ref_to_revoke(self.fresh(issuer))
        issuer.revoke(ref)
        issuer.revoke(ref)

    def test_delete_removes_a_revoked_credential_for_good(self, issuer: IssuerT) -> None:
        """revoke() then delete(), twice: the credential is gone from the inventory and useless."""
        credential = self.fresh(issuer)
        assert credential.ref is not None
        issuer.revoke(credential.ref)
        issuer.delete(credential.ref)
        issuer.delete(credential.ref)
        assert credential.ref not in issuer.inventory()
        assert not self.usable(issuer, credential)

    def test_revoke_of_a_deleted_credential_is_a_no_op(self, issuer: IssuerT) -> None:
        """revoke() of a credential already deleted raises nothing."""
        ref = self.ref_to_revoke(self.fresh(issuer))
        issuer.revoke(ref)
        issuer.delete(ref)
        issuer.revoke(ref)

    # -- inventory and recovery

    def test_inventory_lists_a_minted_credential(self, issuer: IssuerT) -> None:
        """inventory() names the ref of a credential just minted."""
        credential = self.fresh(issuer)
        assert credential.ref is not None and credential.ref in issuer.inventory()

    def test_recover_adopts_the_pending_credential(self, issuer: IssuerT) -> None:
        """recover() with the store's pending value returns that credential, which verifies."""
        rotation_id = new_rotation_id()
        known = self.start(issuer)
        credential = self.minted(issuer, rotation_id)
        adopted = issuer.recover(rotation_id, known=known, pending=credential.value)
        assert adopted is not None
        assert (adopted.value, adopted.ref) == (credential.value, credential.ref)
        issuer.verify(adopted)

    def test_recover_without_pending_leaves_no_orphan(self, issuer: IssuerT) -> None:
        """A credential minted but never stored is deleted by recover(), or adopted and returned."""
        rotation_id = new_rotation_id()
        known = self.start(issuer)
        lost = self.minted(issuer, rotation_id)
        found = issuer.recover(rotation_id, known=known, pending=None)
        if found is None:
            assert not self.usable(issuer, lost)
        else:
            assert found.value == lost.value and self.usable(issuer, found)

    def test_recover_spares_what_existed_before_the_rotation(self, issuer: IssuerT) -> None:
        """recover() never touches a credential the inventory held before the rotation began."""
        older = self.fresh(issuer)
        rotation_id = new_rotation_id()
        known = self.start(issuer, keep=[older.ref])
        self.minted(issuer, rotation_id)
        issuer.recover(rotation_id, known=known, pending=None)
        assert self.usable(issuer, older)

    def test_recover_keeps_only_the_pending_one_of_the_rotations_credentials(
        self, issuer: IssuerT
    ) -> None:
        """Of two mints of one rotation, recover() keeps the one stored as pending, only."""
        rotation_id = new_rotation_id()
        known = self.start(issuer)
        kept = self.minted(issuer, rotation_id)
        lost = self.minted(issuer, rotation_id)
        adopted = issuer.recover(rotation_id, known=known, pending=kept.value)
        assert adopted is not None and adopted.value == kept.value
        for credential in (kept, lost):
            assert self.usable(issuer, credential) == (credential.value == kept.value)

    # -- room

    def test_prepare_deletes_nothing_while_there_is_room(self, issuer: IssuerT) -> None:
        """prepare() with a free slot deletes nothing; the kept credential still verifies."""
        credential = self.fresh(issuer)
        assert issuer.prepare([credential.ref] if credential.ref else []) == []
        issuer.verify(credential)

    def test_prepare_refuses_to_delete_what_must_be_kept(self, issuer: IssuerT) -> None:
        """At the limit, with every credential to be kept, prepare() raises LimitExceededError."""
        if self.limit is None:
            pytest.skip("the subclass declares no limit (IssuerContract.limit is None)")
        held: list[str | None] = []
        for _ in range(self.limit):
            held.append(self.fresh(issuer, keep=held).ref)
        with pytest.raises(LimitExceededError):
            issuer.prepare([ref for ref in held if ref is not None])

    def test_prepare_makes_room_from_a_revoked_credential(self, issuer: IssuerT) -> None:
        """At the limit, a revoked credential not to be kept makes room; the kept ones work on."""
        if self.limit is None:
            pytest.skip("the subclass declares no limit (IssuerContract.limit is None)")
        held = [self.fresh(issuer)]
        while len(held) < self.limit:
            held.append(self.fresh(issuer, keep=[c.ref for c in held]))
        dropped, kept = held[0], held[1:]
        assert dropped.ref is not None
        issuer.revoke(dropped.ref)
        deleted = issuer.prepare([c.ref for c in kept if c.ref is not None])
        assert not {c.ref for c in kept} & set(deleted)
        issuer.verify(self.minted(issuer, new_rotation_id()))
        assert all(self.usable(issuer, c) for c in kept)

    # -- failures

    def test_an_unavailable_issuer_fails_with_a_retryable_error(self, issuer: IssuerT) -> None:
        """While the system is down minting (and making live) raises a TransientError only."""
        self.start(issuer)
        rotation_id = new_rotation_id()
        with self.unavailable(issuer), pytest.raises(RotatorError) as caught:
            self.made_live(issuer, rotation_id, issuer.mint(rotation_id))
        assert isinstance(caught.value, TransientError) and caught.value.retryable
