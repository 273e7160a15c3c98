"""How adapters are found: the ``rotator.providers`` entry points, loaded one by one.

Adapters are registered in the ``rotator.providers`` entry-point group, under
``store.<provider>``, ``issuer.<kind>``, ``target.<kind>``,
``verifier.<kind>`` or ``notifier.<kind>``; rotator's own adapters are
registered the same way, so a third-party package adds one without touching
the engine.

One broken plugin must not stop every policy from loading: an entry point
that fails to import, or loads something that is not an adapter of its
role, is skipped with a warning naming it and its distribution (logged, and
kept in :attr:`Registry.skipped`; ``rotator validate`` prints the plugins'
from :attr:`Registry.skipped_plugins`), and the others load. A policy that
names a skipped adapter gets a located problem saying why it was skipped
(see :meth:`Registry.skipped_as`).

Each adapter is imported the first time it is looked up by name (its
entry point's name says its role and name without importing anything), so
a command over policies that use two adapters imports those two, not every
one installed. Listing a role's adapters, or every skipped entry point,
imports them all.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, PackageNotFoundError, entry_points, version
from typing import Any, TypeVar

import structlog

from rotator.adapters.roles import Adapter, Issuer, Notifier, Store, Target, Verifier
from rotator.adapters.values import ProviderConfig
from rotator.output import redact

ENTRY_POINT_GROUP = "rotator.providers"
SANDBOX_GROUP = "rotator.sandboxes"
#: The distribution of rotator's own adapters (``providers/``: pyproject.toml's name).
OWN_DISTRIBUTION = "rotator-keys"

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


AdapterT = TypeVar("AdapterT", bound=Adapter[Any])


class InstalledAdapters:
    """The entry points of :data:`ENTRY_POINT_GROUP`, each loaded at most once, when first needed.

    Thread-safe: the engine binds adapters from several threads at once.
    """

    def __init__(self, found: Iterable[EntryPoint]) -> None:
        """Take the entry points, in the order found; nothing is imported yet."""
        self._entry_points = list(found)
        self._outcomes: dict[int, type[Adapter[Any]] | SkippedAdapter] = {}
        # Each (role, name) once answered: planning looks an adapter up per
        # policy, and the entry points never change in a process.
        self._found: dict[tuple[str, str], type[Adapter[Any]] | None] = {}
        self._lock = threading.RLock()

    def names(self, role: str) -> list[str]:
        """Return the names registered under ``role``, once each, in the order found."""
        return list(dict.fromkeys(name for number, name in self._numbered(role)))

    def adapter(self, role: str, name: str) -> type[Adapter[Any]] | None:
        """Return the ``role`` adapter called ``name`` (the last of its entry points that loads)."""
        key = (role, name)
        if key in self._found:
            return self._found[key]
        found = None
        for number, named in self._numbered(role):
            outcome = self._outcome(number) if named == name else None
            if isinstance(outcome, type):
                found = outcome
        self._found[key] = found
        return found

    def skipped(self, *, plugins_only: bool = False) -> tuple[SkippedAdapter, ...]:
        """Load every entry point (only other distributions' if ``plugins_only``); return the skips.

        With ``plugins_only``, rotator's own adapters are not imported to
        find out (one of them already tried and skipped is still listed):
        what an installation breaks is a plugin, and rotator's own are
        loaded when a policy names one.
        """
        for number, ep in enumerate(self._entry_points):
            if not (plugins_only and _distribution_name(ep) == OWN_DISTRIBUTION):
                self._outcome(number)
        with self._lock:
            return tuple(
                outcome
                for _, outcome in sorted(self._outcomes.items())
                if isinstance(outcome, SkippedAdapter)
            )

    def _numbered(self, role: str) -> Iterator[tuple[int, str]]:
        """Yield the number and name of each entry point registered under ``role``."""
        for number, ep in enumerate(self._entry_points):
            found_role, _, name = ep.name.partition(".")
            if found_role == role and name:
                yield number, name

    def _outcome(self, number: int) -> type[Adapter[Any]] | SkippedAdapter:
        """Load entry point ``number`` unless it was (a skip logged once); return what it is."""
        with self._lock:
            outcome = self._outcomes.get(number)
            if outcome is None:
                outcome = self._outcomes[number] = _load(self._entry_points[number])
                if isinstance(outcome, SkippedAdapter):
                    log.warning(
                        "adapter skipped",
                        entry_point=outcome.name,
                        target=outcome.target,
                        distribution=outcome.distribution,
                        reason=outcome.reason,
                    )
            return outcome


class _Role(Mapping[str, type[AdapterT]]):
    """One role's installed adapters by name, each imported when first looked up.

    A name whose every entry point was skipped is not in it, as with the
    adapters a dict holds; iterating imports every adapter of the role.
    """

    def __init__(self, installed: InstalledAdapters, role: str) -> None:
        self._installed = installed
        self._role = role

    def __getitem__(self, name: str) -> type[AdapterT]:
        found = self._installed.adapter(self._role, name)
        if found is None:
            raise KeyError(name)
        adapter: type[AdapterT] = found  # type: ignore[assignment]  # _load checked its role
        return adapter

    def __iter__(self) -> Iterator[str]:
        names = self._installed.names(self._role)
        return iter([name for name in names if name in self])

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass(frozen=True)
class Registry:
    """The adapters installed, by role and name, and the entry points skipped.

    :func:`registry` builds the installed one from the entry points
    (``installed``), importing each adapter when first looked up; a test
    builds one from its own adapters, in dicts.
    """

    stores: Mapping[str, type[Store[Any]]]
    issuers: Mapping[str, type[Issuer[Any]]]
    targets: Mapping[str, type[Target[Any]]] = field(default_factory=dict)
    verifiers: Mapping[str, type[Verifier[Any]]] = field(default_factory=dict)
    notifiers: Mapping[str, type[Notifier[Any]]] = field(default_factory=dict)
    #: The entry points the adapters come from (None: the adapters were given).
    installed: InstalledAdapters | None = field(default=None, repr=False, compare=False)

    @property
    def skipped(self) -> tuple[SkippedAdapter, ...]:
        """Return every entry point skipped (every adapter installed is imported to know)."""
        return () if self.installed is None else self.installed.skipped()

    @property
    def skipped_plugins(self) -> tuple[SkippedAdapter, ...]:
        """Return the skipped entry points of plugins (see :meth:`InstalledAdapters.skipped`)."""
        return () if self.installed is None else self.installed.skipped(plugins_only=True)

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
    """Return the adapters registered in the ``rotator.providers`` entry-point group.

    Each is imported when first looked up. An entry point that cannot be
    loaded as an adapter of its role is skipped, logged as a warning when it
    is tried and listed in :attr:`Registry.skipped`; the others load. Never
    raises for a plugin's fault.
    """
    installed = InstalledAdapters(entry_points(group=ENTRY_POINT_GROUP))
    return Registry(
        _Role(installed, "store"),
        _Role(installed, "issuer"),
        _Role(installed, "target"),
        _Role(installed, "verifier"),
        _Role(installed, "notifier"),
        installed,
    )


def _distribution_name(ep: EntryPoint) -> str | None:
    """Return the name of the distribution declaring ``ep`` (None if unknown)."""
    return ep.dist.name if ep.dist is not None else None


def _load(ep: EntryPoint) -> type[Adapter[Any]] | SkippedAdapter:
    """Import what ``ep`` names and check it is an adapter of its role; else say why not."""
    role, _, name = ep.name.partition(".")
    base = ROLES.get(role)
    if base is None or not name:
        return _skipped(ep, f"its name is not ROLE.NAME with ROLE one of {', '.join(ROLES)}")
    try:
        adapter = ep.load()
    except (Exception, SystemExit) as exc:  # noqa: BLE001 (a plugin's import may raise anything)
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
