"""The Verifier contract: every promise :class:`rotator.adapters.Verifier` makes, one test each.

Subclass :class:`VerifierContract` in a test module (named ``Test...``),
override the ``verifier`` fixture to build the verifier under test, and
implement :meth:`~VerifierContract.accepted` and
:meth:`~VerifierContract.refused` (a credential the checked consumer lets in,
and one it turns away) and :meth:`~VerifierContract.unavailable` (the check
cannot run for a while).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from rotator.adapters import Credential, Verifier
from rotator.errors import RotatorError, TransientError, VerificationError
from rotator.testing.values import assert_hidden

VerifierT = Verifier[Any]


class VerifierContract:
    """The promises of a verifier: the right credential passes, a wrong one is refused."""

    # -- what a subclass provides

    @pytest.fixture
    def verifier(self) -> VerifierT:
        """Return the verifier under test."""
        raise NotImplementedError("override the verifier fixture: build the verifier under test")

    def accepted(self, verifier: VerifierT) -> Credential:
        """Return a credential the checked consumer lets in."""
        raise NotImplementedError("implement accepted: a credential the check lets in")

    def refused(self, verifier: VerifierT) -> Credential:
        """Return a credential the checked consumer turns away."""
        raise NotImplementedError("implement refused: a credential the check turns away")

    @contextmanager
    def unavailable(self, verifier: VerifierT) -> Iterator[None]:
        """Within this block the check cannot run (no answer, a timeout)."""
        raise NotImplementedError("implement unavailable: make the check unable to run")
        yield  # pragma: no cover

    # -- the promises

    def test_the_right_credential_passes(self, verifier: VerifierT) -> None:
        """verify() of a credential the consumer accepts returns without error."""
        verifier.verify(self.accepted(verifier))

    def test_verify_can_be_repeated(self, verifier: VerifierT) -> None:
        """verify() of the same good credential passes again (a resumed rotation re-checks)."""
        credential = self.accepted(verifier)
        verifier.verify(credential)
        verifier.verify(credential)

    def test_a_wrong_credential_is_a_verification_error(self, verifier: VerifierT) -> None:
        """verify() of a credential the consumer refuses raises VerificationError, not retried."""
        with pytest.raises(VerificationError) as caught:
            verifier.verify(self.refused(verifier))
        assert not caught.value.retryable

    def test_a_refusal_does_not_carry_the_value(self, verifier: VerifierT) -> None:
        """The VerificationError names what refused, never a piece of the credential."""
        credential = self.refused(verifier)
        with pytest.raises(VerificationError) as caught:
            verifier.verify(credential)
        assert_hidden(str(caught.value), credential.value)

    def test_describe_is_a_description_without_the_value(self, verifier: VerifierT) -> None:
        """describe() is short, non-empty, and holds no piece of the credential checked."""
        credential = self.accepted(verifier)
        verifier.verify(credential)
        described = verifier.describe()
        assert isinstance(described, str) and described.strip()
        assert_hidden(described, credential.value)

    def test_a_check_that_cannot_run_is_a_retryable_error(self, verifier: VerifierT) -> None:
        """When the check itself cannot run, verify() raises a TransientError, not a verdict."""
        credential = self.accepted(verifier)
        with self.unavailable(verifier), pytest.raises(RotatorError) as caught:
            verifier.verify(credential)
        assert isinstance(caught.value, TransientError) and caught.value.retryable
        assert_hidden(str(caught.value), credential.value)
