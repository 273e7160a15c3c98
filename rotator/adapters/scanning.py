"""How a provider's credentials read in a secret scanner's report (``rotator leaks ingest``).

A scanner reports what it found as text: sometimes a secret (a password, a
token), sometimes only the public identifier of a credential (an access key
id, which is in every signed request and in the provider's own logs), and
sometimes both written together. Only the provider knows its formats: it
registers a :class:`CredentialFormat` in the ``rotator.credential_formats``
entry-point group, and ``rotator leaks`` asks every installed format
whether a finding is an identifier, or an identifier and its secret::

    [project.entry-points."rotator.credential_formats"]
    aws-access-key = "providers.aws.leaks:AccessKeyFormat"

An identifier is compared with the refs the journal recorded (the issuer's
:meth:`~rotator.adapters.roles.Issuer.ref_of`); a secret part is compared by
keyed fingerprint with the values the stores hold, so a format gives it in
every form a store may hold it.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points

from rotator.adapters.secret import SecretValue
from rotator.errors import ConfigError

FORMAT_GROUP = "rotator.credential_formats"


@dataclass(frozen=True)
class LeakedPair:
    """A credential's public identifier and its secret part, found written together."""

    identifier: str
    #: The secret part in every form a store may hold it (alone, and as the whole credential).
    values: tuple[SecretValue, ...] = field(repr=False)


class CredentialFormat(ABC):
    """The written forms of one kind of credential a provider issues, as scanners report them."""

    @abstractmethod
    def is_identifier(self, text: str) -> bool:
        """Tell whether ``text`` is, whole, a public identifier of this kind (not a secret)."""

    def pair(self, text: str) -> LeakedPair | None:
        """Return the identifier and secret part ``text`` holds together, or None (the default).

        A scanner may report both in one field (trufflehog's ``RawV2`` of an
        AWS key: the key id, then its secret key).
        """
        return None


def is_identifier(formats: Sequence[CredentialFormat], text: str) -> bool:
    """Tell whether any of ``formats`` reads ``text`` as a public identifier."""
    return any(f.is_identifier(text) for f in formats)


def pair(formats: Sequence[CredentialFormat], text: str) -> LeakedPair | None:
    """Return the first identifier-and-secret pair any of ``formats`` reads in ``text``."""
    for f in formats:
        found = f.pair(text)
        if found is not None:
            return found
    return None


@functools.cache
def credential_formats() -> tuple[CredentialFormat, ...]:
    """Return every installed credential format, by entry-point name.

    Raises:
        ConfigError: an entry point of the group is not a CredentialFormat.
    """
    found: list[CredentialFormat] = []
    for ep in sorted(entry_points(group=FORMAT_GROUP), key=lambda e: e.name):
        made = ep.load()
        if not (isinstance(made, type) and issubclass(made, CredentialFormat)):
            raise ConfigError(
                f"entry point {ep.name!r} of {FORMAT_GROUP!r} ({ep.value}) is not a "
                "CredentialFormat"
            )
        found.append(made())
    return tuple(found)
