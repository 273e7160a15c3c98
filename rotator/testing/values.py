"""What the contract suites make and check: rotation ids, fresh values, text that hides them."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping

from rotator.adapters import SecretValue
from rotator.adapters.secret import PUBLIC_FIELDS
from rotator.output.redact import MASK


def new_rotation_id() -> str:
    """Return a rotation id as the engine makes them (32 hex characters)."""
    return uuid.uuid4().hex


def fresh_value(label: str) -> SecretValue:
    """Return a value no other test uses: ``label``, a dash and 20 random hex digits.

    Letters, digits and dashes only, and long enough to be registered for
    redaction: what every store and target accepts (a masked GitLab
    variable's alphabet and length included).
    """
    return SecretValue(f"{label}-{secrets.token_hex(10)}")


def pieces(value: SecretValue) -> list[str]:
    """Return the parts of ``value`` that are secret: the string, or a mapping's secret fields.

    A field that names a credential rather than proves it (an access key id)
    may be in a message: that is how it says which key was refused.
    """
    plain = value.reveal()
    if isinstance(plain, Mapping):
        return [str(v) for k, v in plain.items() if k not in PUBLIC_FIELDS] + [value.text()]
    return [plain]


def assert_hidden(text: str, *values: SecretValue) -> None:
    """Assert that ``text`` holds no piece of ``values``, not even masked.

    Every rotator error scrubs registered values from its message as a last
    net, so a masked value means the adapter put it there: that fails too.
    """
    assert MASK not in text, f"a value reached this text and was masked: {text!r}"
    for value in values:
        for piece in pieces(value):
            assert piece not in text, "a value reached this text"
