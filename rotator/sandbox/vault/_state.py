"""The emulator's state (namespaces, mounts, tokens, backend data) and the routing primitives."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rotator.sandbox.vault._acl import ACL, DEFAULT_POLICY, Policy, parse_policy
from rotator.sandbox.vault._common import (
    SYSTEM_DEFAULT_TTL,
    SYSTEM_MAX_TTL,
    Clock,
    JSONDict,
    Reply,
    VaultError,
    after,
    base62,
    go_duration,
    go_time,
    new_uuid,
    permission_denied,
    seconds_between,
    truncate_seconds,
)

# --------------------------------------------------------------------------- backend data


@dataclass
class KvVersion:
    """One version of a KV v2 secret."""

    data: JSONDict | None
    created_time: datetime
    deletion_time: datetime | None = None
    destroyed: bool = False


@dataclass
class KvKey:
    """A KV v2 key's metadata and versions (``KeyMetadata`` in the plugin)."""

    created_time: datetime | None = None
    updated_time: datetime | None = None
    current_version: int = 0
    oldest_version: int = 0
    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: int = 0
    custom_metadata: dict[str, str] | None = None
    versions: dict[int, KvVersion] = field(default_factory=dict)


@dataclass
class KvStore:
    """A KV v2 mount: engine configuration and keys."""

    max_versions: int = 0
    cas_required: bool = False
    # None: unset; -1: disabled (a negative value was written); else seconds.
    delete_version_after: int | None = None
    keys: dict[str, KvKey] = field(default_factory=dict)


@dataclass
class TokenParams:
    """The ``token_*`` fields every auth method role carries (sdk/helper/tokenutil)."""

    policies: list[str] = field(default_factory=list)
    ttl: int = 0
    max_ttl: int = 0
    period: int = 0
    explicit_max_ttl: int = 0
    num_uses: int = 0
    no_default_policy: bool = False
    bound_cidrs: list[str] = field(default_factory=list)

    def as_data(self) -> JSONDict:
        """The fields as a role read returns them (``PopulateTokenData``)."""
        return {
            "token_bound_cidrs": list(self.bound_cidrs),
            "token_explicit_max_ttl": self.explicit_max_ttl,
            "token_max_ttl": self.max_ttl,
            "token_no_default_policy": self.no_default_policy,
            "token_period": self.period,
            "token_policies": list(self.policies),
            "token_type": "default",
            "token_ttl": self.ttl,
            "token_num_uses": self.num_uses,
        }


@dataclass
class SecretId:
    """An AppRole secret id."""

    secret_id: str
    accessor: str
    num_uses: int
    ttl: int
    creation_time: datetime
    expiration_time: datetime | None
    last_updated_time: datetime
    metadata: dict[str, str]
    cidr_list: list[str]
    token_bound_cidrs: list[str]


@dataclass
class AppRole:
    """An AppRole role."""

    name: str
    role_id: str
    bind_secret_id: bool = True
    secret_id_bound_cidrs: list[str] = field(default_factory=list)
    secret_id_num_uses: int = 0
    secret_id_ttl: int = 0
    local_secret_ids: bool = False
    token: TokenParams = field(default_factory=TokenParams)
    secret_ids: dict[str, SecretId] = field(default_factory=dict)


@dataclass
class AppRoleStore:
    """An AppRole auth mount."""

    roles: dict[str, AppRole] = field(default_factory=dict)


@dataclass
class KubernetesRole:
    """A Kubernetes auth role."""

    name: str
    service_account_names: list[str]
    service_account_namespaces: list[str]
    audience: str = ""
    alias_name_source: str = "serviceaccount_uid"
    token: TokenParams = field(default_factory=TokenParams)


@dataclass
class KubernetesStore:
    """A Kubernetes auth mount."""

    config: JSONDict | None = None
    roles: dict[str, KubernetesRole] = field(default_factory=dict)


@dataclass
class JwtRole:
    """A JWT/OIDC auth role (``jwtRole`` in vault-plugin-auth-jwt)."""

    name: str
    role_type: str = "oidc"
    user_claim: str = ""
    bound_audiences: list[str] = field(default_factory=list)
    bound_subject: str = ""
    bound_claims: JSONDict = field(default_factory=dict)
    claim_mappings: dict[str, str] = field(default_factory=dict)
    allowed_redirect_uris: list[str] = field(default_factory=list)
    # Seconds; 0 means the plugin's default, a negative value no leeway at all.
    clock_skew_leeway: int = 0
    expiration_leeway: int = 0
    not_before_leeway: int = 0
    token: TokenParams = field(default_factory=TokenParams)


@dataclass
class JwtStore:
    """A JWT auth mount: its configuration (with the parsed public keys) and roles."""

    config: JSONDict | None = None
    #: The ``jwt_validation_pubkeys`` as cryptography public-key objects.
    public_keys: list[Any] = field(default_factory=list)
    roles: dict[str, JwtRole] = field(default_factory=dict)


# --------------------------------------------------------------------------- mounts, tokens


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

    def info(self) -> JSONDict:
        """The entry ``sys/mounts`` and ``sys/auth`` list for this mount."""
        return {
            "accessor": self.accessor,
            "config": {"default_lease_ttl": 0, "force_no_cache": False, "max_lease_ttl": 0},
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


VERSION_BUILTIN = "1.17.0+builtin.vault"

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


@dataclass
class Token:
    """A service token and its lease."""

    id: str
    accessor: str
    namespace: Namespace
    policies: list[str]
    parent: str | None
    meta: dict[str, str] | None
    display_name: str
    path: str
    creation_time: datetime
    creation_ttl: int
    expire_time: datetime | None
    lease_ttl: int
    explicit_max_ttl: int
    period: int
    renewable: bool
    num_uses: int
    entity_id: str
    # How a renewal recomputes the TTL: ("token",) or (mount type, mount uuid, role name).
    renew_source: tuple[str, ...] = ("token",)
    role: str = ""
    last_renewal: datetime | None = None
    exhausted: bool = False

    def auth_block(self) -> JSONDict:
        """The ``auth`` section of a login, create or renew response."""
        return {
            "client_token": self.id,
            "accessor": self.accessor,
            "policies": list(self.policies),
            "token_policies": list(self.policies),
            "metadata": dict(self.meta) if self.meta is not None else None,
            "lease_duration": self.lease_ttl,
            "renewable": self.renewable,
            "entity_id": self.entity_id,
            "token_type": "service",
            "orphan": self.parent is None,
            "mfa_requirement": None,
            "num_uses": self.num_uses,
        }


# --------------------------------------------------------------------------- routing


Handler = Callable[["Call"], Reply]


@dataclass(frozen=True)
class Route:
    """One backend path: its pattern (relative to the mount) and what each operation does."""

    pattern: re.Pattern[str]
    operations: Mapping[str, Handler]
    exists: Callable[[Call], bool] | None = None
    unauthenticated: bool = False
    sudo: bool = False


def route(
    pattern: str,
    operations: Mapping[str, Handler],
    exists: Callable[[Call], bool] | None = None,
    *,
    unauthenticated: bool = False,
    sudo: bool = False,
) -> Route:
    """Build a Route from a regular expression matched against the whole relative path."""
    return Route(re.compile(pattern + r"\Z"), operations, exists, unauthenticated, sudo)


@dataclass
class Call:
    """Everything a handler needs about one request."""

    core: Core
    namespace: Namespace
    mount: Mount | None
    path: str
    relative: str
    params: dict[str, str]
    operation: str
    data: JSONDict
    token: Token | None
    now: datetime
    remote_addr: str
    content_type: str

    def param(self, name: str) -> str:
        """A named group of the route pattern (empty when it did not participate)."""
        return self.params.get(name) or ""


# --------------------------------------------------------------------------- the core


class Core:
    """All mutable state of one emulated Vault, guarded by one lock."""

    def __init__(self, clock: Clock, root_token: str) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.cluster_id = new_uuid()
        self.root = Namespace(id="root", path="", parent=None)
        self.namespaces: dict[str, Namespace] = {"root": self.root}
        self.tokens: dict[str, Token] = {}
        self.accessors: dict[str, str] = {}
        self.entities: dict[tuple[str, str], str] = {}
        self.setup_namespace(self.root)
        self.mount_secret(self.root, "secret/", "kv", {"version": "2"}, "key/value secret storage")
        self.mount_auth(self.root, "approle/", "approle", "")
        self.mount_auth(self.root, "kubernetes/", "kubernetes", "")
        now = clock()
        self.tokens[root_token] = Token(
            id=root_token,
            accessor=base62(24),
            namespace=self.root,
            policies=["root"],
            parent=None,
            meta=None,
            display_name="root",
            path="auth/token/root",
            creation_time=now,
            creation_ttl=0,
            expire_time=None,
            lease_ttl=0,
            explicit_max_ttl=0,
            period=0,
            renewable=False,
            num_uses=0,
            entity_id="",
        )
        self.accessors[self.tokens[root_token].accessor] = root_token

    # -- namespaces and mounts

    def setup_namespace(self, namespace: Namespace) -> None:
        """Give a new namespace what Vault gives one: sys/, the token store and "default"."""
        namespace.mounts["sys/"] = self._new_mount("sys/", "system", None, None)
        namespace.auths["token/"] = self._new_mount("token/", "token", None, None)
        namespace.policies["default"] = parse_policy("default", DEFAULT_POLICY)

    def create_namespace(self, parent: Namespace, name: str) -> Namespace:
        """Create a child namespace (or return the existing one)."""
        if name in parent.children:
            return parent.children[name]
        child = Namespace(id=base62(5), path=f"{parent.path}{name}/", parent=parent)
        self.setup_namespace(child)
        parent.children[name] = child
        self.namespaces[child.id] = child
        return child

    def delete_namespace(self, namespace: Namespace) -> None:
        """Delete a namespace, its descendants and every token living in them."""
        for child in list(namespace.children.values()):
            self.delete_namespace(child)
        for token in [t for t in self.tokens.values() if t.namespace is namespace]:
            self.revoke(token.id)
        self.namespaces.pop(namespace.id, None)
        if namespace.parent is not None:
            namespace.parent.children = {
                k: v for k, v in namespace.parent.children.items() if v is not namespace
            }

    def _new_mount(
        self, path: str, kind: str, options: dict[str, str] | None, desc: str | None
    ) -> Mount:
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
        )

    def mount_secret(
        self, namespace: Namespace, path: str, kind: str, options: dict[str, str] | None, desc: str
    ) -> Mount:
        """Mount a secrets engine (the caller checked conflicts)."""
        mount = self._new_mount(path, kind, options, desc)
        namespace.mounts[path] = mount
        return mount

    def mount_auth(self, namespace: Namespace, path: str, kind: str, desc: str) -> Mount:
        """Enable an auth method (the caller checked conflicts)."""
        mount = self._new_mount(path, kind, None, desc)
        namespace.auths[path] = mount
        return mount

    def find_mount(self, namespace: Namespace, path: str) -> tuple[Mount | None, str, str]:
        """Resolve a request path to (mount, path relative to it, full mount path)."""
        if path.startswith("auth/"):
            rest = path[len("auth/") :]
            table = namespace.auths
            prefix = "auth/"
        else:
            rest = path
            table = namespace.mounts
            prefix = ""
        candidates = [p for p in table if rest.startswith(p) or rest == p[:-1]]
        if not candidates:
            return None, path, ""
        best = max(candidates, key=len)
        return table[best], rest[len(best) :], prefix + best

    # -- tokens

    def now(self) -> datetime:
        """The current instant from the injected clock."""
        return self.clock()

    def sweep(self, now: datetime) -> None:
        """Revoke every token whose lease has expired, with its children (Vault's expiration)."""
        expired = [t.id for t in self.tokens.values() if t.expire_time and t.expire_time <= now]
        for token_id in expired:
            self.revoke(token_id)

    def revoke(self, token_id: str) -> None:
        """Revoke a token and, recursively, every non-orphan child it created."""
        pending = [token_id]
        while pending:
            current = pending.pop()
            token = self.tokens.pop(current, None)
            if token is None:
                continue
            self.accessors.pop(token.accessor, None)
            pending.extend(t.id for t in self.tokens.values() if t.parent == current)

    def revoke_orphan(self, token_id: str) -> None:
        """Revoke a token but keep its children, which become orphans."""
        for token in self.tokens.values():
            if token.parent == token_id:
                token.parent = None
        orphaned = self.tokens.pop(token_id, None)
        if orphaned is not None:
            self.accessors.pop(orphaned.accessor, None)

    def authenticate(self, namespace: Namespace, token_id: str) -> Token:
        """The live token for a request in a namespace, or 403 permission denied."""
        token = self.tokens.get(token_id) if token_id else None
        if token is None or not namespace.is_within(token.namespace):
            raise permission_denied()
        return token

    def acl(self, token: Token) -> ACL:
        """The ACL built from a token's policies, looked up in the token's namespace."""
        if "root" in token.policies:
            return ACL([], root=True)
        policies = [
            token.namespace.policies[p] for p in token.policies if p in token.namespace.policies
        ]
        return ACL(policies)

    def entity_for(self, mount: Mount, alias: str) -> str:
        """The identity entity id a login creates (one per auth mount and alias name)."""
        key = (mount.accessor, alias)
        if key not in self.entities:
            self.entities[key] = new_uuid()
        return self.entities[key]

    def issue_token(
        self,
        namespace: Namespace,
        *,
        policies: list[str],
        parent: str | None,
        display_name: str,
        path: str,
        meta: dict[str, str] | None,
        ttl: int,
        explicit_max_ttl: int,
        period: int,
        renewable: bool,
        num_uses: int,
        entity_id: str,
        now: datetime,
        token_id: str = "",
        renew_source: tuple[str, ...] = ("token",),
        role: str = "",
    ) -> Token:
        """Store a new service token (its TTL already computed; 0 means it never expires)."""
        suffix = "" if namespace is self.root else f".{namespace.id}"
        token = Token(
            id=token_id or f"hvs.{base62(24)}{suffix}",
            accessor=f"{base62(24)}{suffix}",
            namespace=namespace,
            policies=policies,
            parent=parent,
            meta=meta,
            display_name=display_name,
            path=path,
            creation_time=now,
            creation_ttl=ttl,
            expire_time=after(now, ttl) if ttl > 0 else None,
            lease_ttl=ttl,
            explicit_max_ttl=explicit_max_ttl,
            period=period,
            renewable=renewable and ttl > 0,
            num_uses=num_uses,
            entity_id=entity_id,
            renew_source=renew_source,
            role=role,
        )
        self.tokens[token.id] = token
        self.accessors[token.accessor] = token.id
        return token

    def use(self, token: Token) -> None:
        """Spend one use of a limited-use token; the last use revokes it after the request."""
        if token.num_uses > 0:
            token.num_uses -= 1
            if token.num_uses == 0:
                token.exhausted = True

    def lookup_data(self, token: Token, now: datetime) -> JSONDict:
        """A token as ``auth/token/lookup`` describes it."""
        data: JSONDict = {
            "accessor": token.accessor,
            "creation_time": int(token.creation_time.timestamp()),
            "creation_ttl": token.creation_ttl,
            "display_name": token.display_name,
            "entity_id": token.entity_id,
            "expire_time": None,
            "explicit_max_ttl": token.explicit_max_ttl,
            "id": token.id,
            "issue_time": go_time(token.creation_time),
            "meta": dict(token.meta) if token.meta is not None else None,
            "num_uses": token.num_uses,
            "orphan": token.parent is None,
            "path": token.path,
            "policies": list(token.policies),
            "renewable": token.renewable,
            "ttl": 0,
            "type": "service",
        }
        if token.expire_time is not None:
            data["expire_time"] = go_time(token.expire_time)
            data["ttl"] = max(0, round(seconds_between(token.expire_time, now)))
        if token.period:
            data["period"] = token.period
        if token.role:
            data["role"] = token.role
        if token.last_renewal is not None:
            data["last_renewal_time"] = int(token.last_renewal.timestamp())
            data["last_renewal"] = go_time(token.last_renewal)
        if token.namespace is not self.root:
            data["namespace_path"] = token.namespace.path
        return data


def calculate_ttl(
    now: datetime,
    *,
    increment: int,
    backend_ttl: int,
    period: int,
    backend_max_ttl: int,
    explicit_max_ttl: int,
    start: datetime | None,
) -> tuple[int, list[str]]:
    """Vault's ``framework.CalculateTTL``: the TTL of a new or renewed lease, and warnings."""
    now_s = truncate_seconds(now)
    start_s = truncate_seconds(start) if start is not None else now_s
    max_ttl = SYSTEM_MAX_TTL
    if 0 < backend_max_ttl < max_ttl:
        max_ttl = backend_max_ttl
    if 0 < explicit_max_ttl < max_ttl:
        max_ttl = explicit_max_ttl
    warnings: list[str] = []
    max_valid: datetime | None = None
    if period > 0:
        if period > max_ttl:
            warnings.append(
                f'period of "{go_duration(period)}" exceeded the effective max_ttl of '
                f'"{go_duration(max_ttl)}"; period value is capped accordingly'
            )
            period = max_ttl
        ttl = float(period)
        if explicit_max_ttl > 0:
            max_valid = after(start_s, explicit_max_ttl)
    else:
        if increment > 0:
            ttl = float(increment)
        elif backend_ttl > 0:
            ttl = float(backend_ttl)
        else:
            ttl = float(SYSTEM_DEFAULT_TTL)
        max_valid = after(start_s, max_ttl)
    if max_valid is not None:
        max_valid_ttl = seconds_between(max_valid, now_s)
        if max_valid_ttl <= 0:
            raise VaultError.internal(500, "past the max TTL, cannot renew")
        if max_valid_ttl < ttl:
            warnings.append(
                f'TTL of "{go_duration(ttl)}" exceeded the effective max_ttl of '
                f'"{go_duration(max_valid_ttl)}"; TTL value is capped accordingly'
            )
            ttl = max_valid_ttl
    return int(ttl), warnings
