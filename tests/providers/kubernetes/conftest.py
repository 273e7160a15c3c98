"""Fixtures for the Kubernetes tests: a seeded API server emulator and a kubeconfig pointing at it.

Nothing here imports the ``kubernetes`` client (the emulator is stdlib only),
so the test modules can skip themselves when it is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rotator.adapters.values import Runtime
from rotator.sandbox.kubernetes import KubernetesEmulator
from tests.providers.kubernetes.helpers import (
    KEY,
    NAMESPACE,
    OLD,
    SECRET,
    WORKLOADS,
    Clock,
    Recorder,
)


@pytest.fixture
def kube() -> Iterator[KubernetesEmulator]:
    """A started emulator holding the payments namespace, its Secret and three workloads."""
    with KubernetesEmulator() as emulator:
        emulator.add_namespace(NAMESPACE)
        emulator.put_secret(NAMESPACE, SECRET, {"username": "payments", KEY: OLD})
        for item in WORKLOADS:
            kind, _, name = item.partition("/")
            emulator.add_workload(kind, NAMESPACE, name)
        yield emulator


@pytest.fixture
def kube_env(kube: KubernetesEmulator, monkeypatch: pytest.MonkeyPatch) -> KubernetesEmulator:
    """Point the client at the emulator's kubeconfig, outside any cluster."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig_path))
    monkeypatch.delenv("ROTATOR_RATE_LIMITS", raising=False)
    return kube


@pytest.fixture
def clock() -> Clock:
    """A manual clock at 2026-03-01T09:30:00Z."""
    return Clock()


@pytest.fixture
def recorder() -> Recorder:
    """Records every request an adapter reports."""
    return Recorder()


@pytest.fixture
def runtime(clock: Clock, recorder: Recorder) -> Runtime:
    """A runtime on the manual clock whose request observer is ``recorder``."""
    return Runtime(clock=clock, sleep=clock.sleep, cache={}, on_request=recorder)
