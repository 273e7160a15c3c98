"""Which secrets a command is about: names or shell patterns, labels and an owner.

``rotator status``, ``plan`` and ``check`` take ``NAME...`` (``payments/*``
matches as a shell would), ``--label KEY=VALUE`` (every one must match) and
``--owner OWNER``. A name without a pattern character that no secret has is
a mistake, refused with a did-you-mean before any secret is acted on.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rotator.errors import ConfigError
from rotator.output.spelling import did_you_mean
from rotator.policy.model import Policy, has_labels_and_owner

#: What makes a name a pattern (as in a shell).
_PATTERN = frozenset("*?[")


def parse_label(text: str) -> tuple[str, str]:
    """Read ``KEY=VALUE`` (``--label``); ConfigError saying the form if it is not."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--label {text!r}: expected KEY=VALUE, e.g. team=payments")
    return key.strip(), value.strip()


@dataclass(frozen=True)
class Selection:
    """A choice of secrets; empty, it chooses every one."""

    names: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    owner: str | None = None

    @classmethod
    def of(cls, names: Iterable[str], labels: Iterable[str], owner: str | None) -> Selection:
        """Build a selection from a command's arguments (ConfigError for a malformed label)."""
        return cls(tuple(names), dict(parse_label(text) for text in labels), owner)

    @property
    def everything(self) -> bool:
        """Tell whether nothing narrows the choice."""
        return not self.names and not self.labels and self.owner is None

    def check_names(self, known: Iterable[str]) -> None:
        """Refuse a plain name no secret has (ConfigError, with a did-you-mean)."""
        known = list(known)
        present = set(known)
        for name in self.names:
            if _PATTERN.isdisjoint(name) and name not in present:
                raise ConfigError(f"no policy named {name!r}{did_you_mean(name, known)}")

    def named(self, name: str) -> bool:
        """Tell whether ``name`` is among the names or patterns (or none was given)."""
        return not self.names or any(fnmatch.fnmatchcase(name, n) for n in self.names)

    def chooses(self, name: str, policy: Policy | None) -> bool:
        """Tell whether the secret ``name`` (its policy, if it loaded) is chosen."""
        if not self.named(name):
            return False
        if not self.labels and self.owner is None:
            return True
        if policy is None:
            return False  # its labels and owner are not known
        return has_labels_and_owner(policy, self.labels, self.owner)

    def chosen(self, policies: Mapping[str, Policy]) -> list[str]:
        """Return the names of the chosen policies, sorted (names checked first)."""
        self.check_names(policies)
        return sorted(name for name, policy in policies.items() if self.chooses(name, policy))
