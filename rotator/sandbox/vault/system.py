"""The system backend (``sys/``): mounts, auth methods, policies, tools, namespaces, health."""

from __future__ import annotations

import base64
import binascii
import contextlib
import secrets

from rotator.sandbox.vault.acl import PolicyError, parse_policy
from rotator.sandbox.vault.fields import get_map, get_str, get_str_list
from rotator.sandbox.vault.mounts import AUTH_TOKEN_TYPE, Mount, Namespace
from rotator.sandbox.vault.protocol import (
    SYSTEM_DEFAULT_TTL,
    SYSTEM_MAX_TTL,
    VAULT_VERSION,
    JSONDict,
    Reply,
    VaultError,
    go_quote,
    no_content,
)
from rotator.sandbox.vault.routing import Call, Route, route

_MAX_RANDOM_BYTES = 128 * 1024
_RANDOM_SOURCES = {"platform", "seal", "all"}
_IMMUTABLE_POLICIES = {"root", "response-wrapping", "control-group"}

# --------------------------------------------------------------------------- health


def health(call: Call) -> Reply:
    """GET/HEAD sys/health: unauthenticated, not wrapped in the envelope."""
    return Reply(
        raw={
            "initialized": True,
            "sealed": False,
            "standby": False,
            "performance_standby": False,
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled",
            "server_time_utc": int(call.now.timestamp()),
            "version": VAULT_VERSION,
            "enterprise": True,
            "cluster_name": "vault-cluster-emulator",
            "cluster_id": call.core.cluster_id,
            "echo_duration_ms": 0,
            "clock_skew_ms": 0,
            "replication_primary_canary_age_ms": 0,
        }
    )


def seal_status(call: Call) -> Reply:
    """GET sys/seal-status: unauthenticated, not wrapped in the envelope."""
    return Reply(
        raw={
            "type": "shamir",
            "initialized": True,
            "sealed": False,
            "t": 1,
            "n": 1,
            "progress": 0,
            "nonce": "",
            "version": VAULT_VERSION,
            "build_date": "2024-06-10T10:11:34Z",
            "migration": False,
            "cluster_name": "vault-cluster-emulator",
            "cluster_id": call.core.cluster_id,
            "recovery_seal": False,
            "storage_type": "inmem",
        }
    )


# --------------------------------------------------------------------------- mounts


def _mount_path(call: Call) -> str:
    path = call.param("path").strip("/")
    if not path:
        raise VaultError.respond(400, "path cannot be empty")
    return path + "/"


def _conflict(table: dict[str, Mount], path: str) -> str | None:
    for existing in table:
        if existing.startswith(path) or path.startswith(existing):
            return existing
    return None


def list_mounts(call: Call) -> Reply:
    """GET sys/mounts: every secrets engine of the namespace."""
    return Reply(data={path: m.info() for path, m in sorted(call.namespace.mounts.items())})


def read_mount(call: Call) -> Reply:
    """GET sys/mounts/:path."""
    mount = call.namespace.mounts.get(_mount_path(call))
    if mount is None:
        raise VaultError.respond(400, f"No secret engine mount at {_mount_path(call)}")
    return Reply(data=mount.info())


def enable_mount(call: Call) -> Reply:
    """POST sys/mounts/:path {type, options}: only KV version 2 can be mounted (204)."""
    path = _mount_path(call)
    kind = get_str(call.data, "type")
    options = get_map(call.data, "options") or {}
    if kind == "kv-v2":
        kind, options = "kv", {**options, "version": "2"}
    if not kind:
        raise VaultError.respond(400, "backend type must be specified as a string")
    conflict = _conflict(call.namespace.mounts, path)
    if conflict is not None:
        raise VaultError.respond(400, f"path is already in use at {conflict}")
    if kind != "kv":
        raise VaultError.respond(400, f"plugin not found in the catalog: {kind}")
    if str(options.get("version", "1")) != "2":
        raise VaultError.respond(
            400, "emulator: only KV version 2 (options.version=2) is supported"
        )
    call.core.mount_secret(
        call.namespace,
        path,
        "kv",
        {str(k): str(v) for k, v in options.items()},
        get_str(call.data, "description"),
    )
    return no_content()


def disable_mount(call: Call) -> Reply:
    """DELETE sys/mounts/:path (204, also when nothing is mounted there)."""
    path = _mount_path(call)
    if path == "sys/":
        raise VaultError.respond(400, 'cannot unmount "sys/"')
    call.namespace.mounts.pop(path, None)
    return no_content()


def _tune(mount: Mount) -> Reply:
    """A mount's effective settings: the system default and maximum lease TTLs."""
    data: JSONDict = {
        "default_lease_ttl": SYSTEM_DEFAULT_TTL,
        "max_lease_ttl": SYSTEM_MAX_TTL,
        "force_no_cache": False,
        "description": mount.description,
    }
    if mount.options:
        data["options"] = mount.options
    if mount.auth:
        data["token_type"] = AUTH_TOKEN_TYPE
    return Reply(data=data)


def read_mount_tune(call: Call) -> Reply:
    """GET sys/mounts/:path/tune."""
    mount = call.namespace.mounts.get(_mount_path(call))
    if mount is None:
        raise VaultError.respond(
            400, f"cannot fetch sysview for path {go_quote(_mount_path(call))}"
        )
    return _tune(mount)


def read_auth_tune(call: Call) -> Reply:
    """GET sys/auth/:path/tune."""
    mount = call.namespace.auths.get(_mount_path(call))
    if mount is None:
        raise VaultError.respond(
            400, f"cannot fetch sysview for path {go_quote('auth/' + _mount_path(call))}"
        )
    return _tune(mount)


def list_auths(call: Call) -> Reply:
    """GET sys/auth: every auth method of the namespace."""
    return Reply(data={path: m.info() for path, m in sorted(call.namespace.auths.items())})


def read_auth(call: Call) -> Reply:
    """GET sys/auth/:path."""
    mount = call.namespace.auths.get(_mount_path(call))
    if mount is None:
        raise VaultError.respond(400, f"No auth engine at {_mount_path(call)}")
    return Reply(data=mount.info())


def enable_auth(call: Call) -> Reply:
    """POST sys/auth/:path {type}: approle, kubernetes or jwt (204)."""
    path = _mount_path(call)
    kind = get_str(call.data, "type")
    if not kind:
        raise VaultError.respond(400, "backend type must be specified as a string")
    if kind == "token":
        raise VaultError.respond(400, "token credential backend cannot be instantiated")
    conflict = _conflict(call.namespace.auths, path)
    if conflict is not None:
        raise VaultError.respond(400, f"path is already in use at {conflict}")
    if kind not in {"approle", "kubernetes", "jwt"}:
        raise VaultError.respond(400, f"plugin not found in the catalog: {kind}")
    call.core.mount_auth(call.namespace, path, kind, get_str(call.data, "description"))
    return no_content()


def disable_auth(call: Call) -> Reply:
    """DELETE sys/auth/:path: the method and every token it issued are gone (204)."""
    path = _mount_path(call)
    if path == "token/":
        raise VaultError.respond(400, "token credential backend cannot be disabled")
    mount = call.namespace.auths.pop(path, None)
    if mount is not None:
        issued = [t.id for t in call.core.tokens.values() if mount.uuid in t.renew_source]
        for token_id in issued:
            call.core.revoke(token_id)
    return no_content()


# --------------------------------------------------------------------------- policies


def _policy_name(call: Call) -> str:
    return call.param("name").strip().lower()


def _legacy(call: Call) -> bool:
    return call.relative.startswith("policy")


def list_policies(call: Call) -> Reply:
    """LIST sys/policies/acl and GET sys/policy: names, with "root" in the root namespace."""
    names = sorted(call.namespace.policies)
    if call.namespace is call.core.root:
        names.append("root")
    data: JSONDict = {"keys": names}
    if _legacy(call):
        data["policies"] = list(names)
    return Reply(data=data)


def read_policy(call: Call) -> Reply:
    """GET sys/policies/acl/:name (``policy``) or sys/policy/:name (``rules``)."""
    name = _policy_name(call)
    field = "rules" if _legacy(call) else "policy"
    if name == "root" and call.namespace is call.core.root:
        return Reply(data={"name": "root", field: ""})
    policy = call.namespace.policies.get(name)
    if policy is None:
        raise VaultError.not_found()
    return Reply(data={"name": policy.name, field: policy.raw})


def write_policy(call: Call) -> Reply:
    """PUT/POST sys/policies/acl/:name {policy}: parsed before it is stored (204)."""
    raw_name = call.param("name")
    name = raw_name.strip().lower()
    warnings = []
    if not name:
        raise VaultError.respond(400, "policy name must be provided in the URL")
    if raw_name != name:
        warnings.append(f"policy name was converted to {name}")
    text = get_str(call.data, "policy")
    if not text and _legacy(call):
        text = get_str(call.data, "rules")
        if text:
            warnings.append("'rules' is deprecated, please use 'policy' instead")
    if not text:
        raise VaultError.respond(400, "'policy' parameter not supplied or empty")
    # Vault accepts the policy base64-encoded too.
    with contextlib.suppress(binascii.Error, UnicodeDecodeError, ValueError):
        text = base64.b64decode(text, validate=True).decode()
    try:
        policy = parse_policy(name, text)
    except PolicyError as exc:
        raise VaultError.respond(400, f"failed to parse policy: {exc}") from exc
    if name in _IMMUTABLE_POLICIES:
        raise VaultError.respond(400, f"cannot update {go_quote(name)} policy")
    call.namespace.policies[name] = policy
    return no_content(warnings)


def delete_policy(call: Call) -> Reply:
    """DELETE sys/policies/acl/:name (204); root and default cannot be deleted."""
    name = _policy_name(call)
    if name in _IMMUTABLE_POLICIES:
        raise VaultError.respond(400, f"cannot delete {go_quote(name)} policy")
    if name == "default":
        raise VaultError.respond(400, "cannot delete default policy")
    call.namespace.policies.pop(name, None)
    return no_content()


# --------------------------------------------------------------------------- tools


def random_bytes(call: Call) -> Reply:
    """POST sys/tools/random[/:source][/:bytes] {bytes, format}: ``random.HandleRandomAPI``."""
    first, second = call.param("first"), call.param("second")
    source = "platform"
    count_text: str | int | None = call.data.get("bytes", 32)
    if first and second:
        source, count_text = first, second
    elif first and first in _RANDOM_SOURCES:
        source = first
    elif first:
        count_text = first
    try:
        count = int(count_text if count_text is not None else 32)
    except (TypeError, ValueError) as exc:
        raise VaultError.respond(400, f"error parsing url-set byte count: {exc}") from exc
    if source not in _RANDOM_SOURCES:
        raise VaultError.respond(400, f"unsupported entropy source {go_quote(source)}")
    if count < 1:
        raise VaultError.respond(400, '"bytes" cannot be less than 1')
    if count > _MAX_RANDOM_BYTES:
        raise VaultError.respond(400, f'"bytes" should be less than {_MAX_RANDOM_BYTES}')
    encoding = get_str(call.data, "format", "base64")
    if encoding not in {"hex", "base64"}:
        raise VaultError.respond(
            400, f'unsupported encoding format {go_quote(encoding)}; must be "hex" or "base64"'
        )
    raw = secrets.token_bytes(count)
    text = raw.hex() if encoding == "hex" else base64.b64encode(raw).decode()
    return Reply(data={"random_bytes": text})


def _capabilities(call: Call, token_id: str) -> Reply:
    token = call.core.tokens.get(token_id)
    if token is None:
        raise VaultError.respond(400, "invalid token")
    paths = get_str_list(call.data, "paths") or get_str_list(call.data, "path") or []
    if not paths:
        raise VaultError.respond(400, "paths must be supplied")
    acl = call.core.acl(token)
    prefix = (
        call.namespace.relative_to(token.namespace)
        if call.namespace.is_within(token.namespace)
        else ""
    )
    data: JSONDict = {path: acl.capabilities(prefix + path.lstrip("/")) for path in paths}
    if len(paths) == 1:
        data["capabilities"] = data[paths[0]]
    return Reply(data=data)


def capabilities_self(call: Call) -> Reply:
    """POST sys/capabilities-self {paths}: what the calling token may do on each path."""
    assert call.token is not None
    return _capabilities(call, call.token.id)


def capabilities_token(call: Call) -> Reply:
    """POST sys/capabilities {token, paths}."""
    return _capabilities(call, get_str(call.data, "token"))


def capabilities_accessor(call: Call) -> Reply:
    """POST sys/capabilities-accessor {accessor, paths}."""
    token_id = call.core.accessors.get(get_str(call.data, "accessor"), "")
    return _capabilities(call, token_id)


# --------------------------------------------------------------------------- namespaces


def _walk(call: Call, create: bool) -> Namespace | None:
    """The namespace named by the URL, relative to the request's namespace."""
    current = call.namespace
    parts = [part for part in call.param("path").split("/") if part]
    if not parts:
        raise VaultError.respond(400, "namespace path must not be empty")
    for index, part in enumerate(parts):
        child = current.children.get(part)
        if child is None:
            if not create or index != len(parts) - 1:
                return None
            child = call.core.create_namespace(current, part)
        current = child
    return current


def list_namespaces(call: Call) -> Reply:
    """LIST sys/namespaces: the direct children of the request's namespace."""
    children = call.namespace.children
    if not children:
        raise VaultError.not_found()
    keys = [f"{name}/" for name in sorted(children)]
    return Reply(
        data={"keys": keys, "key_info": {f"{n}/": c.info() for n, c in sorted(children.items())}}
    )


def read_namespace(call: Call) -> Reply:
    """GET sys/namespaces/:path."""
    namespace = _walk(call, create=False)
    if namespace is None:
        raise VaultError.not_found()
    return Reply(data=namespace.info())


def write_namespace(call: Call) -> Reply:
    """POST sys/namespaces/:path {custom_metadata}: create (or update) a namespace."""
    namespace = _walk(call, create=True)
    if namespace is None:
        raise VaultError.respond(400, "parent namespace does not exist")
    custom = get_map(call.data, "custom_metadata")
    if custom is not None:
        namespace.custom_metadata = {str(k): str(v) for k, v in custom.items()}
    return Reply(data=namespace.info())


def delete_namespace(call: Call) -> Reply:
    """DELETE sys/namespaces/:path (204); a namespace with children cannot be deleted."""
    namespace = _walk(call, create=False)
    if namespace is None:
        return no_content()
    if namespace.children:
        raise VaultError.respond(400, "cannot delete namespace containing child namespaces")
    call.core.delete_namespace(namespace)
    return no_content()


SYS_ROUTES: list[Route] = [
    route(r"health", {"read": health}, unauthenticated=True),
    route(r"seal-status", {"read": seal_status}, unauthenticated=True),
    route(r"mounts", {"read": list_mounts}),
    route(r"mounts/(?P<path>.+)/tune", {"read": read_mount_tune}),
    route(
        r"mounts/(?P<path>.+)",
        {"read": read_mount, "update": enable_mount, "delete": disable_mount},
    ),
    route(r"auth", {"read": list_auths}),
    route(r"auth/(?P<path>.+)/tune", {"read": read_auth_tune}),
    route(
        r"auth/(?P<path>.+)",
        {"read": read_auth, "update": enable_auth, "delete": disable_auth},
        sudo=True,
    ),
    route(r"policy/?", {"read": list_policies, "list": list_policies}),
    route(
        r"policy/(?P<name>.+)",
        {"read": read_policy, "update": write_policy, "delete": delete_policy},
    ),
    route(r"policies/acl/?", {"list": list_policies}),
    route(
        r"policies/acl/(?P<name>.+)",
        {"read": read_policy, "update": write_policy, "delete": delete_policy},
    ),
    route(r"tools/random(?:/(?P<first>[^/]+))?(?:/(?P<second>[^/]+))?", {"update": random_bytes}),
    route(r"capabilities-self", {"update": capabilities_self}),
    route(r"capabilities", {"update": capabilities_token}),
    route(r"capabilities-accessor", {"update": capabilities_accessor}),
    route(r"namespaces/?", {"list": list_namespaces}),
    route(
        r"namespaces/(?P<path>.+)",
        {"read": read_namespace, "update": write_namespace, "delete": delete_namespace},
    ),
]
