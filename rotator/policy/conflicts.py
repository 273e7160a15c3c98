"""Judge the policy set as a whole: what no single file can get wrong on its own.

Secret names and notifier names are each one namespace across every file
loaded together, and a secret's ``alerts`` may name a notifier declared in
any of them. :class:`PolicySetConflicts` sees each file's secrets and
notifiers in turn and reports a name used twice where its second use is,
and, once every file is seen, each alert naming a notifier no file declares.
"""

from __future__ import annotations

from typing import NamedTuple

from rotator.errors import Problem
from rotator.output.spelling import closest
from rotator.policy.model import NotifierSpec, Policy


class NamedPolicy(NamedTuple):
    """A secret's name as written, where it was written, and its policy if valid."""

    name: str
    line: int
    column: int
    position: int
    """The secret's index in the file's ``secrets`` list."""
    policy: Policy | None


class DeclaredNotifier(NamedTuple):
    """A notifier declared under ``notifiers:``, where, and its spec if valid."""

    name: str
    line: int
    column: int
    spec: NotifierSpec | None


class PolicySetConflicts:
    """Finds the names used twice across a policy set, and alerts naming undeclared notifiers."""

    def __init__(self) -> None:
        self._secrets_first_seen: dict[str, tuple[str, int, int]] = {}
        self._notifiers_declared_at: dict[str, str] = {}
        self._alerting: list[tuple[str, NamedPolicy]] = []
        self._reading: list[tuple[str, NamedPolicy]] = []

    def notifier_declared(self, shown: str, declared: DeclaredNotifier) -> Problem | None:
        """Note a notifier of the file ``shown``; a problem if another declaration came first."""
        here = f"{shown}:{declared.line}"
        first_at = self._notifiers_declared_at.setdefault(declared.name, here)
        if first_at == here:
            return None
        return Problem(
            shown,
            declared.line,
            declared.column,
            f"notifiers.{declared.name}",
            f"duplicate notifier name '{declared.name}'; first defined at {first_at}",
        )

    def secret_named(self, shown: str, named: NamedPolicy) -> Problem | None:
        """Note a secret of the file ``shown``; a problem if its name was used before."""
        if named.policy is not None and named.policy.alerts:
            self._alerting.append((shown, named))
        if named.policy is not None and _secrets_read(named.policy):
            self._reading.append((shown, named))
        here = (shown, named.line, named.position)
        first = self._secrets_first_seen.setdefault(named.name, here)
        if first == here:
            return None
        return Problem(
            shown,
            named.line,
            named.column,
            f"secrets[{named.position}].name",
            f"duplicate secret name '{named.name}'; first defined at {first[0]}:{first[1]}",
        )

    def unknown_notifiers(self) -> list[Problem]:
        """Report every ``alerts`` entry naming a notifier no file declares."""
        declared = self._notifiers_declared_at
        problems: list[Problem] = []
        for shown, named in self._alerting:
            assert named.policy is not None  # only valid policies are collected
            for name in named.policy.alerts:
                if name in declared:
                    continue
                close = closest(name, declared)
                hint = f" did you mean '{close}'?" if close else ""
                known = ", ".join(sorted(declared)) or "none (add a top-level 'notifiers:' mapping)"
                problems.append(
                    Problem(
                        shown,
                        named.line,
                        named.column,
                        f"secrets[{named.position}].alerts",
                        f"unknown notifier '{name}';{hint} declared: {known}",
                    )
                )
        return problems

    def unknown_secrets(self) -> list[Problem]:
        """Report every adapter field naming a secret no file declares, or its own secret."""
        declared = self._secrets_first_seen
        problems: list[Problem] = []
        for shown, named in self._reading:
            assert named.policy is not None  # only valid policies are collected
            for where, name in _secrets_read(named.policy).items():
                if name == named.name:
                    reason = f"names this secret itself, '{name}'; it must name another secret"
                elif name in declared:
                    continue
                else:
                    close = closest(name, declared)
                    hint = f" did you mean '{close}'?" if close else ""
                    reason = f"names secret '{name}', which no policy declares;{hint}"
                problems.append(
                    Problem(
                        shown,
                        named.line,
                        named.column,
                        f"secrets[{named.position}].{where}",
                        reason.rstrip(";"),
                    )
                )
        return problems


def _secrets_read(policy: Policy) -> dict[str, str]:
    """Return the other secrets a policy's adapters read, keyed by the field naming each."""
    blocks = [("store", policy.store.config), ("issuer", policy.issuer.config)]
    blocks += [(f"targets[{i}]", t.config) for i, t in enumerate(policy.targets)]
    blocks += [(f"verify[{i}]", v.config) for i, v in enumerate(policy.verify)]
    return {
        f"{block}.{field}": name
        for block, config in blocks
        for field, name in config.secrets_read().items()
    }
