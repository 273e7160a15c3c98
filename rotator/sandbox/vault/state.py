"""All mutable state of one emulated Vault (namespaces, mounts, tokens) and lease TTLs."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from rotator.sandbox.core.clock import Clock
from rotator.sandbox.vault.acl import ACL, DEFAULT_POLICY, parse_policy
from rotator.sandbox.vault.mounts import Mount, Namespace, new_mount
from rotator.sandbox.vault.protocol import (
    SYSTEM_DEFAULT_TTL,
    SYSTEM_MAX_TTL,
    JSONDict,
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
        namespace.mounts["sys/"] = new_mount("sys/", "system", None, None)
        namespace.auths["token/"] = new_mount("token/", "token", None, None, auth=True)
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

    def mount_secret(
        self, namespace: Namespace, path: str, kind: str, options: dict[str, str] | None, desc: str
    ) -> Mount:
        """Mount a secrets engine (the caller checked conflicts)."""
        mount = new_mount(path, kind, options, desc)
        namespace.mounts[path] = mount
        return mount

    def mount_auth(self, namespace: Namespace, path: str, kind: str, desc: str) -> Mount:
        """Enable an auth method (the caller checked conflicts)."""
        mount = new_mount(path, kind, None, desc, auth=True)
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
