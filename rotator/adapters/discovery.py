"""How adapters are found: the ``rotator.providers`` entry points, loaded one by one.

Adapters are registered in the ``rotator.providers`` entry-point group, under
``store.<provider>``, ``issuer.<kind>``, ``target.<kind>``,
``verifier.<kind>`` or ``notifier.<kind>``; rotator's own adapters are
registered the same way, so a third-party package adds one without touching
the engine.

One broken plugin must not stop every policy from loading: an entry point
that fails to import, or loads something that is not an adapter of its
role, is skipped with a warning naming it and its distribution (logged, and
kept in :attr:`Registry.skipped` for ``rotator validate`` to print), and the
others load. A policy that names a skipped adapter gets a located problem
saying why it was skipped (see :meth:`Registry.skipped_as`).
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, PackageNotFoundError, entry_points, version
from typing import Any

import structlog

from rotator.adapters.roles import Adapter, Issuer, Notifier, Store, Target, Verifier
from rotator.adapters.values import ProviderConfig
from rotator.output import redact

ENTRY_POINT_GROUP = "rotator.providers"
SANDBOX_GROUP = "rotator.sandboxes"

#: The role each entry-point name begins with, and the class its adapter must extend.
ROLES: dict[str, type[Adapter[Any]]] = {
    "store": Store,
    "issuer": Issuer,
    "target": Target,
    "verifier": Verifier,
    "notifier": Notifier,
}

#: Longest text kept of what a plugin says about itself (its names, its error).
_MAX_TEXT = 200

log = structlog.get_logger("rotator.adapters")


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
class SkippedAdapter:
    """An entry point that did not load as an adapter, and why; the other adapters loaded.

    Every text is the plugin's own (names from its metadata, its import
    error), so each is scrubbed and put on one line when it is taken in.
    """

    #: The entry point's name: ``store.acme``.
    name: str
    #: What it points at: ``acme_rotator.store:AcmeStore``.
    target: str
    #: The distribution that declares it, with its version: ``acme-rotator 1.2``.
    distribution: str
    #: Why it was skipped: ``cannot be imported: ModuleNotFoundError: ...``.
    reason: str

    def __str__(self) -> str:
        return (
            f"adapter {self.name} ({self.target}) of distribution {self.distribution} "
            f"was skipped: {self.reason}"
        )


@dataclass(frozen=True)
class Registry:
    """The adapters installed, by role and name, and the entry points skipped."""

    stores: dict[str, type[Store[Any]]]
    issuers: dict[str, type[Issuer[Any]]]
    targets: dict[str, type[Target[Any]]] = field(default_factory=dict)
    verifiers: dict[str, type[Verifier[Any]]] = field(default_factory=dict)
    notifiers: dict[str, type[Notifier[Any]]] = field(default_factory=dict)
    skipped: tuple[SkippedAdapter, ...] = ()

    def store(self, name: str) -> type[Store[Any]]:
        """Return the store adapter called ``name``; KeyError if unknown."""
        return self.stores[name]

    def issuer(self, name: str) -> type[Issuer[Any]]:
        """Return the issuer adapter called ``name``; KeyError if unknown."""
        return self.issuers[name]

    def skipped_as(self, role: str, name: str) -> SkippedAdapter | None:
        """Return why the ``role`` adapter ``name`` was skipped, or ``None`` if it was not."""
        wanted = f"{role}.{name}"
        return next((s for s in self.skipped if s.name == wanted), None)


@functools.cache
def registry() -> Registry:
    """Load every adapter registered in the ``rotator.providers`` entry-point group.

    An entry point that cannot be loaded as an adapter of its role is
    skipped, logged as a warning and listed in :attr:`Registry.skipped`;
    the others load. Never raises for a plugin's fault.
    """
    found: dict[str, dict[str, Any]] = {role: {} for role in ROLES}
    skipped: list[SkippedAdapter] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        loaded = _load(ep)
        if isinstance(loaded, SkippedAdapter):
            log.warning(
                "adapter skipped",
                entry_point=loaded.name,
                target=loaded.target,
                distribution=loaded.distribution,
                reason=loaded.reason,
            )
            skipped.append(loaded)
            continue
        role, _, name = ep.name.partition(".")
        found[role][name] = loaded
    return Registry(
        found["store"],
        found["issuer"],
        found["target"],
        found["verifier"],
        found["notifier"],
        tuple(skipped),
    )


def _load(ep: EntryPoint) -> type[Adapter[Any]] | SkippedAdapter:
    """Import what ``ep`` names and check it is an adapter of its role; else say why not."""
    role, _, name = ep.name.partition(".")
    base = ROLES.get(role)
    if base is None or not name:
        return _skipped(ep, f"its name is not ROLE.NAME with ROLE one of {', '.join(ROLES)}")
    try:
        adapter = ep.load()
    except Exception as exc:  # noqa: BLE001 (a plugin's import may raise anything)
        return _skipped(ep, f"cannot be imported: {type(exc).__name__}: {exc}")
    problem = _not_an_adapter(adapter, base)
    if problem is not None:
        return _skipped(ep, problem)
    loaded: type[Adapter[Any]] = adapter
    return loaded


def _not_an_adapter(candidate: object, base: type[Adapter[Any]]) -> str | None:
    """Say why ``candidate`` is not a usable adapter of ``base``'s role, or ``None`` if it is."""
    role = base.__name__
    if not isinstance(candidate, type):
        return f"it names a {type(candidate).__name__}, not a class extending rotator's {role}"
    if not issubclass(candidate, base):
        return f"{candidate.__name__} does not extend rotator's {role}"
    if inspect.isabstract(candidate):
        missing = ", ".join(sorted(getattr(candidate, "__abstractmethods__", ())))
        return f"{candidate.__name__} does not implement {missing}"
    config = getattr(candidate, "Config", None)
    if not (isinstance(config, type) and issubclass(config, ProviderConfig)):
        return f"{candidate.__name__}.Config is not a ProviderConfig (its policy fields)"
    return None


def _skipped(ep: EntryPoint, reason: str) -> SkippedAdapter:
    """Describe a skipped entry point, every text of the plugin's scrubbed and on one line."""
    dist = ep.dist
    distribution = f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"
    return SkippedAdapter(
        name=redact.outside_text(ep.name, _MAX_TEXT),
        target=redact.outside_text(ep.value, _MAX_TEXT),
        distribution=redact.outside_text(distribution, _MAX_TEXT),
        reason=redact.outside_text(reason, _MAX_TEXT),
    )
