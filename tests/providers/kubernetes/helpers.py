"""Shared pieces of the Kubernetes tests: the seeded names, a manual clock, a request recorder."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from providers.kubernetes.secret import KubernetesSecretConfig, KubernetesSecretTarget
from rotator.adapters.values import Runtime
from rotator.sandbox.kubernetes import KubernetesEmulator

NAMESPACE = "payments"
SECRET = "payments-db"
KEY = "password"
OLD = "old-password-0000000001"
NEW = "new-password-0000000001"
WORKLOADS = ("deployment/payments-api", "statefulset/payments-ledger", "daemonset/payments-agent")


@dataclass
class Clock:
    """A clock that only moves when a test (or a sleeper) moves it; records every sleep."""

    now: datetime = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += timedelta(seconds=seconds)


@dataclass
class Recorder:
    """Collects what ``runtime.on_request`` is told."""

    calls: list[tuple[str, str, str]] = field(default_factory=list)

    def __call__(self, provider: str, operation: str, outcome: str) -> None:
        self.calls.append((provider, operation, outcome))


def target(runtime: Runtime, **fields: Any) -> KubernetesSecretTarget:
    """Build the target of ``payments/payments-db#password`` restarting every seeded workload."""
    config: dict[str, Any] = {
        "namespace": NAMESPACE,
        "name": SECRET,
        "key": KEY,
        "restart": WORKLOADS,
    }
    config.update(fields)
    return KubernetesSecretTarget(KubernetesSecretConfig(**config), runtime, SECRET)


def changes(kube: KubernetesEmulator, since: int = 0) -> list[tuple[str, str]]:
    """Return (method, path) of every request after the ``since``-th that could change something."""
    return [
        (r.method, r.path)
        for r in kube.requests[since:]
        if r.method in {"POST", "PUT", "PATCH", "DELETE"}
        and not r.path.endswith("/selfsubjectaccessreviews")
    ]


def template_annotations(kube: KubernetesEmulator, item: str) -> dict[str, Any]:
    """Return the pod-template annotations of a workload named ``kind/name``."""
    kind, _, name = item.partition("/")
    found = kube.workload(kind, NAMESPACE, name)
    assert found is not None
    annotations = found["spec"]["template"]["metadata"].get("annotations") or {}
    assert isinstance(annotations, dict)
    return annotations
