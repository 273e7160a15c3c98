"""A policy's adapters, built once: its store, issuer, targets and verifiers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rotator.adapters.discovery import Registry
from rotator.adapters.replica import StoreReplica
from rotator.adapters.roles import Issuer, Store, Target, Verifier
from rotator.adapters.values import Runtime
from rotator.policy.model import Policy


@dataclass
class Binding:
    """The adapters one policy names, bound to its secret."""

    policy: Policy
    store: Store[Any]
    issuer: Issuer[Any]
    targets: list[Target[Any]] = field(default_factory=list)
    verifiers: list[Verifier[Any]] = field(default_factory=list)


def bind(policy: Policy, adapters: Registry, runtime: Runtime) -> Binding:
    """Build the adapters a policy names (a target naming a store provider is a replica).

    The issuer's own targets (a database role's password) come first, so
    the credential is live at its system before any consumer is handed it.
    """
    name = policy.name
    store_cls = adapters.store(policy.store.provider)
    issuer = adapters.issuer(policy.issuer.kind)(policy.issuer.config, runtime, name)
    targets: list[Target[Any]] = list(issuer.targets())
    for spec in policy.targets:
        if spec.provider is not None:
            replica = adapters.store(spec.provider)(spec.config, runtime, name)
            targets.append(StoreReplica(replica))
        else:
            targets.append(adapters.targets[spec.name](spec.config, runtime, name))
    return Binding(
        policy,
        store_cls(policy.store.config, runtime, name),
        issuer,
        targets,
        [adapters.verifiers[v.kind](v.config, runtime, name) for v in policy.verify],
    )
