"""Where things are mounted: namespaces, and the secrets engines and auth methods in them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rotator.sandbox.vault.acl import Policy
from rotator.sandbox.vault.backends import AppRoleStore, JwtStore, KubernetesStore, KvStore
from rotator.sandbox.vault.protocol import JSONDict, base62, new_uuid


@dataclass
class Mount:
    """A secrets engine or auth method mounted in a namespace."""

    path: str
    type: str
    description: str
    accessor: str
    uuid: str
    options: dict[str, str] | None
    backend: Any
    local: bool = False
    seal_wrap: bool = False
    #: An auth method (``sys/auth``) rather than a secrets engine (``sys/mounts``).
    auth: bool = False

    def info(self) -> JSONDict:
        """The entry ``sys/mounts`` and ``sys/auth`` list for this mount (``mountInfo``)."""
        config: JSONDict = {"default_lease_ttl": 0, "force_no_cache": False, "max_lease_ttl": 0}
        if self.type == "system":
            # Vault's sys/ mount passes the Accept header through (for sys/metrics).
            config["passthrough_request_headers"] = ["Accept"]
        if self.auth:
            config["token_type"] = AUTH_TOKEN_TYPE
        info: JSONDict = {
            "accessor": self.accessor,
            "config": config,
            "description": self.description,
            "external_entropy_access": False,
            "local": self.local,
            "options": self.options,
            "plugin_version": "",
            "running_plugin_version": f"v{VERSION_BUILTIN}",
            "running_sha256": "",
            "seal_wrap": self.seal_wrap,
            "type": self.type,
            "uuid": self.uuid,
        }
        if self.type in _BUILTIN_PLUGINS:
            # Only plugins of the builtin registry have a deprecation status.
            info["deprecation_status"] = "supported"
        return info


VERSION_BUILTIN = "1.17.0+builtin.vault"

#: The token type an auth method issues unless tuned otherwise (all the emulator supports).
AUTH_TOKEN_TYPE = "default-service"  # noqa: S105 (a type name, not a secret)

# The mountable types that are builtin plugins (sys/, token/ are part of the core).
_BUILTIN_PLUGINS = frozenset({"kv", "approle", "kubernetes", "jwt"})


_DESCRIPTIONS = {
    "kv": "key/value secret storage",
    "system": "system endpoints used for control, policy and debugging",
    "token": "token based credentials",
    "approle": "",
    "kubernetes": "",
    "jwt": "",
}


@dataclass
class Namespace:
    """A Vault Enterprise namespace: its own mounts, auth methods, policies and tokens."""

    id: str
    path: str
    parent: Namespace | None
    children: dict[str, Namespace] = field(default_factory=dict)
    mounts: dict[str, Mount] = field(default_factory=dict)
    auths: dict[str, Mount] = field(default_factory=dict)
    policies: dict[str, Policy] = field(default_factory=dict)
    custom_metadata: dict[str, str] = field(default_factory=dict)

    def is_within(self, other: Namespace) -> bool:
        """Whether this namespace is ``other`` or one of its descendants."""
        current: Namespace | None = self
        while current is not None:
            if current is other:
                return True
            current = current.parent
        return False

    def relative_to(self, ancestor: Namespace) -> str:
        """This namespace's path relative to an ancestor (``""`` when they are the same)."""
        return self.path[len(ancestor.path) :]

    def info(self) -> JSONDict:
        """The namespace as ``sys/namespaces`` returns it."""
        return {"id": self.id, "path": self.path, "custom_metadata": dict(self.custom_metadata)}


def new_mount(
    path: str,
    kind: str,
    options: dict[str, str] | None,
    desc: str | None,
    *,
    auth: bool = False,
) -> Mount:
    """A fresh mount of a backend ``kind`` (its description the built-in one unless ``desc``)."""
    backend: Any = {
        "kv": KvStore,
        "approle": AppRoleStore,
        "kubernetes": KubernetesStore,
        "jwt": JwtStore,
    }.get(kind, dict)()
    prefix = {"kv": "kv", "system": "system", "token": "auth_token"}.get(kind, f"auth_{kind}")
    return Mount(
        path=path,
        type=kind,
        description=_DESCRIPTIONS.get(kind, "") if desc is None else desc,
        accessor=f"{prefix}_{base62(8).lower()}",
        uuid=new_uuid(),
        options=options,
        backend=backend,
        auth=auth,
    )
