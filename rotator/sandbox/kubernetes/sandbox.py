"""The Kubernetes part of ``rotator sandbox``: the API server emulator on loopback, seeded.

:class:`KubernetesSandbox` starts :class:`rotator.sandbox.kubernetes.KubernetesEmulator`
in this process and seeds namespace ``demo`` with what a ``kubernetes-secret``
target writes to and restarts:

- Secret ``demo-api`` (``{"token": ...}``), the one a target would keep current;
- Deployment ``demo-api``, the workload a target's ``restart:`` rolls after a write.

The demo policy does not rotate into it (the ``kubernetes`` extra is not part
of the sandbox's install); it is there so that ``rotator sandbox --keep``
leaves a cluster to point a policy of one's own at. The kubeconfig is written
into the sandbox's working directory, so ``KUBECONFIG`` stays valid for as
long as the emulator serves.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from rotator.sandbox.kubernetes import KubernetesEmulator

NAMESPACE = "demo"
SECRET = "demo-api"  # noqa: S105 (a Secret's name)
DEPLOYMENT = "demo-api"


class KubernetesSandbox:
    """Starts, seeds and stops a Kubernetes API server emulator for the sandbox."""

    def __init__(self) -> None:
        self._kube: KubernetesEmulator | None = None

    def start(self, workdir: Path) -> dict[str, str]:
        """Start the emulator; return ``KUBECONFIG`` naming a kubeconfig file in ``workdir``."""
        self._kube = KubernetesEmulator()
        self._kube.start()
        kubeconfig = self._kube.write_kubeconfig(workdir / "kubeconfig")
        # The file holds the emulator's bearer token: readable by its owner only.
        kubeconfig.chmod(0o600)
        return {"KUBECONFIG": str(kubeconfig)}

    def seed(self, env: dict[str, str]) -> None:
        """Create namespace ``demo`` with Secret and Deployment ``demo-api``."""
        assert self._kube is not None
        self._kube.add_namespace(NAMESPACE)
        self._kube.put_secret(NAMESPACE, SECRET, {"token": secrets.token_urlsafe(24)})
        self._kube.add_workload("deployment", NAMESPACE, DEPLOYMENT)

    def policy_substitutions(self) -> dict[str, str]:
        """Return nothing: the demo policy does not rotate into the cluster."""
        return {}

    def stop(self) -> None:
        """Stop the emulator; everything it held is gone."""
        if self._kube is not None:
            self._kube.stop()
            self._kube = None
