"""The objects the API server stores, and the rules every write of them follows.

Objects carry ``uid``, ``creationTimestamp`` and a ``resourceVersion`` taken from one counter
(like etcd's revision). Secrets fold ``stringData`` into ``data``; patches are JSON merge
patches (RFC 7386).
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
import threading
import uuid
from datetime import UTC
from typing import Any

from rotator.sandbox.core.clock import Clock
from rotator.sandbox.kubernetes.status import JSON, invalid

#: Workload resources served under ``/apis/apps/v1``, with their kinds.
WORKLOAD_KINDS = {
    "deployments": "Deployment",
    "statefulsets": "StatefulSet",
    "daemonsets": "DaemonSet",
}
#: The workload resource of each kind as the seeding methods name it (singular, lower case).
SINGULAR = {"deployment": "deployments", "statefulset": "statefulsets", "daemonset": "daemonsets"}
#: Patch media types served; any other is 415.
PATCH_TYPES = ("application/merge-patch+json", "application/strategic-merge-patch+json")
_DATA_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


class ObjectStore:
    """Everything the API server stores (namespaces, Secrets, workloads), guarded by one lock."""

    def __init__(self, clock: Clock) -> None:
        self.lock = threading.Lock()
        self.namespaces: dict[str, JSON] = {}
        self.secrets: dict[tuple[str, str], JSON] = {}
        self.workloads: dict[tuple[str, str, str], JSON] = {}
        self.revision = 0
        self._clock = clock

    # -- called with the lock held

    def next_version(self) -> str:
        """Take the next ``resourceVersion`` from the one counter."""
        self.revision += 1
        return str(self.revision)

    def new_object(self, api_version: str, kind: str, name: str, namespace: str | None) -> JSON:
        """Return a new object's skeleton: kind, apiVersion and server-set metadata."""
        meta: JSON = {
            "name": name,
            "uid": str(uuid.uuid4()),
            "resourceVersion": self.next_version(),
            "creationTimestamp": self._clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if namespace is not None:
            meta["namespace"] = namespace
        return {"kind": kind, "apiVersion": api_version, "metadata": meta}


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch: maps merge, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def has_directives(patch: Any) -> bool:
    """Tell whether a strategic merge patch uses ``$``-directives (not emulated)."""
    if isinstance(patch, dict):
        return any(str(k).startswith("$") or has_directives(v) for k, v in patch.items())
    if isinstance(patch, list):
        return any(has_directives(v) for v in patch)
    return False


def server_meta(current: JSON) -> JSON:
    """Return the metadata fields a client cannot change."""
    meta = current["metadata"]
    kept = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp", "generation")
    return {k: meta[k] for k in kept if k in meta}


def normalise_secret(secret: JSON, name: str) -> None:
    """Fold ``stringData`` into ``data``, validate keys and base64, drop empty maps."""
    data = secret.get("data") or {}
    if not isinstance(data, dict):
        raise invalid("Secret", name, "data: Invalid value: must be a map")
    string_data = secret.pop("stringData", None) or {}
    if not isinstance(string_data, dict):
        raise invalid("Secret", name, "stringData: Invalid value: must be a map")
    for key, text in string_data.items():
        data[key] = base64.b64encode(str(text).encode()).decode()
    for key, value in data.items():
        if not _DATA_KEY.match(key) or key in (".", "..") or key.startswith(".."):
            raise invalid(
                "Secret",
                name,
                f"data[{key}]: Invalid value: a valid config key must consist of "
                "alphanumeric characters, '-', '_' or '.'",
            )
        try:
            base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            # The real message quotes the bad value; this one does not need to.
            raise invalid(
                "Secret", name, f"data[{key}]: Invalid value: illegal base64 data"
            ) from None
    if data:
        secret["data"] = data
    else:
        secret.pop("data", None)
