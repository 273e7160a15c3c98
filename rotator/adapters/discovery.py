"""How adapters are found: the ``rotator.providers`` entry points.

Adapters are registered in the ``rotator.providers`` entry-point group, under
``store.<provider>``, ``issuer.<kind>``, ``target.<kind>``,
``verifier.<kind>`` or ``notifier.<kind>``; rotator's own adapters are
registered the same way, so a third-party package adds one without touching
the engine.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, entry_points, version
from typing import Any

from rotator.adapters.roles import Adapter, Issuer, Notifier, Store, Target, Verifier

ENTRY_POINT_GROUP = "rotator.providers"
SANDBOX_GROUP = "rotator.sandboxes"


@functools.cache
def missing_requirement(adapter: type[Adapter[Any]]) -> str | None:
    """Say how to install what an adapter needs, or ``None`` if it is all installed.

    Checked in the installed distributions' metadata, without importing
    anything, so validating a policy never loads an SDK; cached per adapter,
    since reading metadata once per policy cost half the load time of
    100,000 policies.
    """
    missing = []
    for name in adapter.requires:
        try:
            version(name)
        except PackageNotFoundError:
            missing.append(name)
    if not missing:
        return None
    extra = f"pip install 'rotator-keys[{adapter.extra}]'" if adapter.extra else "install it"
    return f"needs {', '.join(missing)}, which is not installed: {extra}"


@dataclass(frozen=True)
class Registry:
    """The adapters installed, by role and name."""

    stores: dict[str, type[Store[Any]]]
    issuers: dict[str, type[Issuer[Any]]]
    targets: dict[str, type[Target[Any]]] = field(default_factory=dict)
    verifiers: dict[str, type[Verifier[Any]]] = field(default_factory=dict)
    notifiers: dict[str, type[Notifier[Any]]] = field(default_factory=dict)

    def store(self, name: str) -> type[Store[Any]]:
        """Return the store adapter called ``name``; KeyError if unknown."""
        return self.stores[name]

    def issuer(self, name: str) -> type[Issuer[Any]]:
        """Return the issuer adapter called ``name``; KeyError if unknown."""
        return self.issuers[name]


@functools.cache
def registry() -> Registry:
    """Load every adapter registered in the ``rotator.providers`` entry-point group."""
    found: dict[str, dict[str, Any]] = {
        "store": {},
        "issuer": {},
        "target": {},
        "verifier": {},
        "notifier": {},
    }
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        role, _, name = ep.name.partition(".")
        if role in found:
            found[role][name] = ep.load()
    return Registry(
        found["store"], found["issuer"], found["target"], found["verifier"], found["notifier"]
    )
