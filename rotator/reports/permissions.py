"""The least privilege the policies need at each outside system, gathered and rendered.

``rotator permissions`` asks every adapter a policy binds (store, issuer,
targets, verifiers) what it needs (:meth:`rotator.adapters.roles.Adapter.permissions`),
groups the answers by system and hands each group to the renderer the
system's provider registered (:mod:`rotator.adapters.permissions`): an IAM
policy for ``aws``, an HCL policy for ``vault``, custom roles for ``azure``,
RBAC Roles for ``kubernetes``, token scopes for ``github`` and ``gitlab``.
This module knows none of those formats; it imports no SDK and no adapter.

A replica target's permissions are its store's, named ``replica: ...``
instead of ``store: ...`` (it is written at the propagate step). A
permission no installed renderer can print is refused with what to install,
never dropped: a least-privilege document missing a grant fails later, at a
rotation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from rotator.adapters.permissions import RENDERER_GROUP, PermissionRenderer, renderers
from rotator.adapters.replica import StoreReplica
from rotator.adapters.roles import Adapter, Issuer, Store, Target, Verifier
from rotator.adapters.values import Permission, Runtime
from rotator.errors import ConfigError


class Bound(Protocol):
    """What ``Engine.binding`` returns: a policy's adapters."""

    @property
    def store(self) -> Store[Any]:
        """The store."""

    @property
    def issuer(self) -> Issuer[Any]:
        """The issuer."""

    @property
    def targets(self) -> Sequence[Target[Any]]:
        """The targets, in order."""

    @property
    def verifiers(self) -> Sequence[Verifier[Any]]:
        """The checks."""


def systems() -> tuple[str, ...]:
    """Return the systems a document can be rendered for, in the order they are printed."""
    return tuple(renderers())


def renderer_of(system: str) -> PermissionRenderer:
    """Return the renderer of ``system``'s documents.

    Raises:
        ConfigError: no installed package renders that system's permissions.
    """
    found = renderers().get(system)
    if found is None:
        raise ConfigError(
            f"no installed package renders the permissions needed at {system!r}: install the "
            f"one whose adapters need them (it registers a renderer in the {RENDERER_GROUP!r} "
            f"entry-point group), or print the other systems' with --provider "
            f"({', '.join(systems())})"
        )
    return found


def _system_of(adapter: Adapter[Any]) -> str:
    """Return the system an adapter talks to, as far as its install extra tells."""
    inner = adapter.store if isinstance(adapter, StoreReplica) else adapter
    return inner.extra


def _as_replica(permission: Permission) -> Permission:
    """Rename a store step ``store: X`` to ``replica: X`` (the store is written as a target)."""
    role, sep, rest = permission.step.partition(":")
    if not sep or role.strip() != "store":
        return permission
    return replace(permission, step=f"replica:{rest}")


def needed(bound: Bound, systems: Iterable[str] | None = None) -> list[Permission]:
    """Return what one policy's adapters need at ``systems`` (None: at every system).

    An adapter installed with the extra of a rendered system not asked for
    is not asked at all, so that ``--provider vault`` needs no AWS
    credentials or region; an adapter of a third party (another extra) is
    always asked.
    """
    known = set(renderers())
    wanted = None if systems is None else set(systems)

    def ask(adapter: Adapter[Any]) -> list[Permission]:
        if wanted is None:
            return adapter.permissions()
        system = _system_of(adapter)
        if system in known and system not in wanted:
            return []
        return [p for p in adapter.permissions() if p.system in wanted]

    found = ask(bound.store) + ask(bound.issuer)
    for target in bound.targets:
        asked = ask(target)
        found += [_as_replica(p) for p in asked] if isinstance(target, StoreReplica) else asked
    for verifier in bound.verifiers:
        found += ask(verifier)
    return found


def collect(bindings: Iterable[Bound], systems: Iterable[str] | None = None) -> list[Permission]:
    """Return what every binding needs at ``systems`` (None: every), duplicates dropped, sorted."""
    wanted = None if systems is None else tuple(systems)
    seen: set[Permission] = set()
    for bound in bindings:
        seen.update(needed(bound, wanted))
    return sorted(seen, key=lambda p: (p.system, p.step, p.resource, p.actions, p.conditions))


def _by_system(permissions: Iterable[Permission]) -> dict[str, list[Permission]]:
    """Group permissions by system, in the order the documents are printed.

    Raises:
        ConfigError: a system no installed renderer prints (see :func:`renderer_of`).
    """
    grouped: dict[str, list[Permission]] = {}
    for p in permissions:
        grouped.setdefault(p.system, []).append(p)
    for system in sorted(grouped):
        renderer_of(system)
    return {system: grouped[system] for system in systems() if system in grouped}


def documents(permissions: Iterable[Permission]) -> dict[str, Any]:
    """Return the JSON-ready document of every system something is needed at, in print order.

    ``aws`` is an object, ``vault`` the HCL text, ``azure`` a list of role
    definitions, ``kubernetes`` a list of Role objects, ``github`` and
    ``gitlab`` their grants and notes: whatever each renderer's
    :meth:`~rotator.adapters.permissions.PermissionRenderer.document` gives.

    Raises:
        ConfigError: something is needed at a system no installed renderer prints.
    """
    return {
        system: renderer_of(system).document(found)
        for system, found in _by_system(permissions).items()
    }


def _of(system: str, permissions: Iterable[Permission]) -> list[Permission]:
    return [p for p in permissions if p.system == system]


def text(system: str, permissions: Iterable[Permission]) -> str:
    """Return one system's document as it is printed (JSON, HCL, YAML...), ending in a newline.

    Raises:
        ConfigError: no installed renderer prints ``system``.
    """
    return renderer_of(system).text(_of(system, permissions))


def summary(system: str, permissions: Iterable[Permission]) -> str:
    """Return a one-line heading for a system's document (printed on stderr).

    Raises:
        ConfigError: no installed renderer prints ``system``.
    """
    return renderer_of(system).summary(_of(system, permissions))


def use_account(runtime: Runtime, account: str) -> None:
    """Give the account id ``--account`` names to every system whose documents carry one.

    Raises:
        ConfigError: a system whose documents name an account refuses it
            (an AWS account id is 12 digits).
    """
    for renderer in renderers().values():
        renderer.use_account(runtime, account)
