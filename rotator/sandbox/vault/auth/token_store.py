"""The token store (vault/token_store.go): create, look up, renew and revoke tokens."""

from __future__ import annotations

import re
from typing import Any

from rotator.sandbox.vault.backends import TokenParams
from rotator.sandbox.vault.fields import (
    get_bool,
    get_int,
    get_map,
    get_str,
    get_str_list,
    parse_duration,
    sanitize_policies,
)
from rotator.sandbox.vault.protocol import Reply, VaultError, after, go_quote, no_content
from rotator.sandbox.vault.routing import Call, Route, route
from rotator.sandbox.vault.state import Token, calculate_ttl

_DISPLAY_NAME_SANITIZE = re.compile(r"[^a-zA-Z0-9-]")


def _caller(call: Call) -> Token:
    assert call.token is not None
    return call.token


def _is_sudo(call: Call, path: str) -> bool:
    """Whether the caller is root or holds ``sudo`` on a token-store path."""
    token = _caller(call)
    acl = call.core.acl(token)
    relative = call.namespace.relative_to(token.namespace)
    return acl.allows(relative + path, "update")[1]


def token_create(call: Call, orphan: bool = False) -> Reply:
    """POST auth/token/create and create-orphan (``handleCreateCommon``)."""
    parent = _caller(call)
    data = call.data
    if call.param("role_name"):
        raise VaultError.respond(400, "emulator: token roles are not supported")
    is_sudo = _is_sudo(call, call.path)
    if call.namespace is not parent.namespace and not is_sudo:
        raise VaultError.respond(
            400,
            "root or sudo privileges required to directly generate a token in a child namespace",
        )
    if get_str(data, "type", "service") not in {"", "service"}:
        raise VaultError.respond(400, "emulator: only service tokens are supported")
    num_uses = get_int(data, "num_uses")
    if num_uses < 0:
        raise VaultError.respond(400, "number of uses cannot be negative")
    token_id = _custom_token_id(call, is_sudo)
    policies = _child_policies(call, parent, is_sudo)
    no_parent = get_bool(data, "no_parent")
    if no_parent and not is_sudo:
        raise VaultError.respond(400, "root or sudo privileges required to create orphan token")
    ttl, explicit_max, period, warnings = _child_ttl(call, parent, policies, is_sudo)
    meta_raw = get_map(data, "meta")
    orphaned = orphan or no_parent
    token = call.core.issue_token(
        call.namespace,
        policies=policies,
        parent=None if orphaned else parent.id,
        display_name=_display_name(get_str(data, "display_name")),
        path=f"auth/token/{call.relative}",
        meta={str(k): str(v) for k, v in meta_raw.items()} if meta_raw else None,
        ttl=ttl,
        explicit_max_ttl=explicit_max,
        period=period,
        renewable=get_bool(data, "renewable", True),
        num_uses=num_uses,
        entity_id="" if orphaned else parent.entity_id,
        now=call.now,
        token_id=token_id,
    )
    for name in policies:
        if name != "root" and name not in call.namespace.policies:
            warnings.append(f"Policy {go_quote(name)} does not exist")
    return Reply(auth=token.auth_block(), warnings=warnings or None)


def _display_name(requested: str) -> str:
    """``token``, or ``token-<name>`` with anything but [a-zA-Z0-9-] turned into ``-``."""
    if not requested:
        return "token"
    return _DISPLAY_NAME_SANITIZE.sub("-", "token-" + requested).removesuffix("-")


def _custom_token_id(call: Call, is_sudo: bool) -> str:
    """A caller-chosen token id: root or sudo only, and only in the root namespace."""
    token_id = get_str(call.data, "id")
    if token_id:
        if not is_sudo:
            raise VaultError.respond(400, "root or sudo privileges required to specify token id")
        if call.namespace is not call.core.root:
            raise VaultError.respond(
                400, "token IDs can only be manually specified in the root namespace"
            )
        if token_id in call.core.tokens:
            raise VaultError.respond(400, "cannot create a token with a duplicate ID")
    return token_id


def _child_policies(call: Call, parent: Token, is_sudo: bool) -> list[str]:
    """The new token's policies: inherited, or a subset of the parent's unless root/sudo."""
    requested = get_str_list(call.data, "policies") or []
    no_default = get_bool(call.data, "no_default_policy")
    add_default = False
    if call.namespace is not parent.namespace:
        if any(p.strip().lower() == "root" for p in requested):
            raise VaultError.respond(400, "root tokens may not be created from a parent namespace")
        add_default = not no_default
    elif not requested:
        requested = sanitize_policies(parent.policies, add_default=False)
    elif not is_sudo:
        wanted = set(sanitize_policies(requested, add_default=False))
        held = set(sanitize_policies(parent.policies, add_default=False))
        if not wanted <= held:
            raise VaultError.respond(400, "child policies must be subset of parent")
        add_default = not no_default and "default" in parent.policies
    else:
        add_default = not no_default
    policies = sanitize_policies(requested, add_default)
    if no_default:
        policies = [p for p in policies if p != "default"]
    if "root" in policies and "root" not in parent.policies:
        raise VaultError.respond(
            400, "root tokens may not be created without parent token being root"
        )
    return policies


def _child_ttl(
    call: Call, parent: Token, policies: list[str], is_sudo: bool
) -> tuple[int, int, int, list[str]]:
    """(ttl, explicit_max_ttl, period, warnings) of a new token; a ttl of 0 never expires."""
    data = call.data
    explicit_max = parse_duration(data.get("explicit_max_ttl"), "explicit_max_ttl")
    if explicit_max < 0:
        raise VaultError.respond(400, "explicit_max_ttl must be positive")
    period = parse_duration(data.get("period"), "period")
    if period < 0:
        raise VaultError.respond(400, "period must be positive")
    if period > 0 and not is_sudo:
        raise VaultError.respond(400, "root or sudo privileges required to create periodic token")
    ttl = parse_duration(data.get("ttl") or data.get("lease"), "ttl")
    if ttl < 0:
        raise VaultError.respond(400, "ttl must be positive")
    warnings: list[str] = []
    # Only a root-policy token may be created without a TTL (and then never expires).
    if period > 0 or ttl > 0 or "root" not in policies:
        ttl, warnings = calculate_ttl(
            call.now,
            increment=0,
            backend_ttl=ttl,
            period=period,
            backend_max_ttl=0,
            explicit_max_ttl=explicit_max,
            start=call.now,
        )
    if ttl == 0 and explicit_max > 0:
        ttl = explicit_max
    if ttl == 0 and parent.creation_ttl != 0:
        raise VaultError.respond(400, "expiring root tokens cannot create non-expiring root tokens")
    return ttl, explicit_max, period, warnings


def token_create_orphan(call: Call) -> Reply:
    """POST auth/token/create-orphan: a token without a parent, no sudo needed."""
    return token_create(call, orphan=True)


def _token_by_id(call: Call, token_id: str) -> Token | None:
    token = call.core.tokens.get(token_id)
    if token is None or not token.namespace.is_within(call.namespace):
        return None
    return token


def _token_by_accessor(call: Call, accessor: str) -> Token:
    if not accessor:
        raise VaultError.internal(400, "missing accessor")
    token_id = call.core.accessors.get(accessor)
    token = _token_by_id(call, token_id) if token_id else None
    if token is None:
        raise VaultError.internal(400, "invalid accessor")
    return token


def token_lookup_self(call: Call) -> Reply:
    """GET auth/token/lookup-self."""
    return Reply(data=call.core.lookup_data(_caller(call), call.now))


def token_lookup(call: Call) -> Reply:
    """POST auth/token/lookup {token}: an unknown token is 403 "bad token"."""
    token_id = get_str(call.data, "token") or _caller(call).id
    token = _token_by_id(call, token_id)
    if token is None:
        raise VaultError.respond(403, "bad token")
    return Reply(data=call.core.lookup_data(token, call.now))


def token_lookup_accessor(call: Call) -> Reply:
    """POST auth/token/lookup-accessor {accessor}: the lookup with ``id`` blanked."""
    token = _token_by_accessor(call, get_str(call.data, "accessor"))
    data = call.core.lookup_data(token, call.now)
    data["id"] = ""
    return Reply(data=data)


def _renew(call: Call, token: Token) -> Reply:
    """Renew a token's lease (``ExpirationManager.RenewToken``)."""
    if not token.renewable:
        raise VaultError.respond(400, "lease is not renewable")
    increment = parse_duration(call.data.get("increment"), "increment")
    backend_ttl, backend_max, period = token.lease_ttl, 0, token.period
    if token.renew_source[0] != "token":
        kind, mount_uuid, role_name = token.renew_source
        role_params = _login_role_params(token, kind, mount_uuid, role_name)
        backend_ttl, backend_max, period = role_params.ttl, role_params.max_ttl, role_params.period
    ttl, warnings = calculate_ttl(
        call.now,
        increment=increment,
        backend_ttl=backend_ttl,
        period=period,
        backend_max_ttl=backend_max,
        explicit_max_ttl=token.explicit_max_ttl,
        start=token.creation_time,
    )
    token.lease_ttl = ttl
    token.expire_time = after(call.now, ttl)
    token.last_renewal = call.now
    return Reply(auth=token.auth_block(), warnings=warnings or None)


def _login_role_params(token: Token, kind: str, mount_uuid: str, role_name: str) -> TokenParams:
    """The current settings of the role a login token came from (renewals re-read them)."""
    mount = next(
        (m for m in token.namespace.auths.values() if m.uuid == mount_uuid and m.type == kind),
        None,
    )
    roles: dict[str, Any] = mount.backend.roles if mount is not None else {}
    role = roles.get(role_name)
    if role is None:
        raise VaultError.internal(500, f"role {go_quote(role_name)} does not exist during renewal")
    params: TokenParams = role.token
    return params


def token_renew_self(call: Call) -> Reply:
    """POST auth/token/renew-self {increment}."""
    return _renew(call, _caller(call))


def token_renew(call: Call) -> Reply:
    """POST auth/token/renew {token, increment}."""
    token = _token_by_id(call, get_str(call.data, "token"))
    if token is None:
        raise VaultError.respond(400, "token not found")
    return _renew(call, token)


def token_renew_accessor(call: Call) -> Reply:
    """POST auth/token/renew-accessor {accessor, increment}."""
    return _renew(call, _token_by_accessor(call, get_str(call.data, "accessor")))


def token_revoke_self(call: Call) -> Reply:
    """POST auth/token/revoke-self: revoke the caller and its children (204)."""
    call.core.revoke(_caller(call).id)
    return no_content()


def token_revoke(call: Call) -> Reply:
    """POST auth/token/revoke {token} (204, also for an unknown token)."""
    token_id = get_str(call.data, "token")
    if not token_id:
        raise VaultError.respond(400, "missing token ID")
    if _token_by_id(call, token_id) is not None:
        call.core.revoke(token_id)
    return no_content()


def token_revoke_accessor(call: Call) -> Reply:
    """POST auth/token/revoke-accessor {accessor} (204; an unknown one is a 200 warning)."""
    accessor = get_str(call.data, "accessor")
    if not accessor:
        raise VaultError.internal(400, "missing accessor")
    token_id = call.core.accessors.get(accessor)
    token = _token_by_id(call, token_id) if token_id else None
    if token is None:
        return no_content(["No token found with this accessor"])
    call.core.revoke(token.id)
    return no_content()


def token_revoke_orphan(call: Call) -> Reply:
    """POST auth/token/revoke-orphan {token}: revoke it, leaving its children as orphans."""
    token_id = get_str(call.data, "token")
    if not token_id:
        raise VaultError.respond(400, "missing token ID")
    if _token_by_id(call, token_id) is None:
        raise VaultError.respond(400, "token to revoke not found")
    call.core.revoke_orphan(token_id)
    return no_content()


def token_accessors(call: Call) -> Reply:
    """LIST auth/token/accessors (a sudo path): the accessors of the namespace's tokens."""
    keys = sorted(t.accessor for t in call.core.tokens.values() if t.namespace is call.namespace)
    return Reply(data={"keys": keys})


TOKEN_ROUTES: list[Route] = [
    route(r"create-orphan", {"update": token_create_orphan}),
    route(r"create(?:/(?P<role_name>[^/]+))?", {"update": token_create}),
    route(r"lookup-self", {"read": token_lookup_self}),
    route(r"lookup", {"update": token_lookup, "read": token_lookup}),
    route(r"lookup-accessor", {"update": token_lookup_accessor}),
    route(r"renew-self", {"update": token_renew_self}),
    route(r"renew", {"update": token_renew}),
    route(r"renew-accessor", {"update": token_renew_accessor}),
    route(r"revoke-self", {"update": token_revoke_self}),
    route(r"revoke", {"update": token_revoke}),
    route(r"revoke-accessor", {"update": token_revoke_accessor}),
    route(r"revoke-orphan", {"update": token_revoke_orphan}, sudo=True),
    route(r"accessors/?", {"list": token_accessors}, sudo=True),
]
