"""Who may do what: the allow rules of an RBAC Role, which the emulator checks every request by."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """One allow rule, as in an RBAC Role: ``"*"`` in a set matches anything.

    ``names`` empty means every object; a rule with names never matches a
    request without one (a create, a list), as in RBAC.
    """

    verbs: frozenset[str] | set[str] = frozenset({"*"})
    resources: frozenset[str] | set[str] = frozenset({"*"})
    groups: frozenset[str] | set[str] = frozenset({"*"})
    names: frozenset[str] | set[str] = frozenset()

    def allows(self, verb: str, group: str, resource: str, name: str) -> bool:
        """Tell whether this rule lets ``verb`` on ``resource`` (named ``name``) through."""
        if not ({"*", verb} & set(self.verbs)):
            return False
        if not ({"*", group} & set(self.groups)):
            return False
        if not ({"*", resource} & set(self.resources)):
            return False
        return not self.names or name in self.names
