"""Auth methods: the token store (vault/token_store.go), AppRole and Kubernetes."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
from typing import Any

from rotator.sandbox.vault._common import (
    GO_ZERO_TIME,
    SYSTEM_MAX_TTL,
    JSONDict,
    Reply,
    VaultError,
    after,
    get_bool,
    get_int,
    get_map,
    get_str,
    get_str_list,
    go_quote,
    go_time,
    ip_in_cidrs,
    new_uuid,
    no_content,
    parse_duration,
    parse_key_values,
    sanitize_policies,
    valid_cidrs,
)
from rotator.sandbox.vault._state import (
    AppRole,
    AppRoleStore,
    Call,
    KubernetesRole,
    KubernetesStore,
    Route,
    SecretId,
    Token,
    TokenParams,
    calculate_ttl,
    route,
)

_DISPLAY_NAME_SANITIZE = re.compile(r"[^a-zA-Z0-9-]")
_ROLE_NAME = r"(?P<role_name>\w(?:[\w\-. ]*\w)?)"

# --------------------------------------------------------------------------- shared


def _caller(call: Call) -> Token:
    assert call.token is not None
    return call.token


def _is_sudo(call: Call, path: str) -> bool:
    """Whether the caller is root or holds ``sudo`` on a token-store path."""
    token = _caller(call)
    acl = call.core.acl(token)
    relative = call.namespace.relative_to(token.namespace)
    return acl.allows(relative + path, "update")[1]


def parse_token_fields(data: JSONDict, params: TokenParams) -> None:
    """Apply the ``token_*`` role fields (and their legacy names), like ``ParseTokenFields``."""
    policies = get_str_list(data, "token_policies")
    if policies is None:
        policies = get_str_list(data, "policies")
    if policies is not None:
        params.policies = sanitize_policies(policies, add_default=False)
    for names, attribute in (
        (("token_ttl", "ttl"), "ttl"),
        (("token_max_ttl", "max_ttl"), "max_ttl"),
        (("token_period", "period"), "period"),
        (("token_explicit_max_ttl",), "explicit_max_ttl"),
    ):
        for name in names:
            if name in data:
                setattr(params, attribute, parse_duration(data[name], name))
                break
    for name in ("token_num_uses", "num_uses"):
        if name in data:
            params.num_uses = get_int(data, name)
            break
    if "token_no_default_policy" in data:
        params.no_default_policy = get_bool(data, "token_no_default_policy")
    cidrs = get_str_list(data, "token_bound_cidrs")
    if cidrs is None:
        cidrs = get_str_list(data, "bound_cidrs")
    if cidrs is not None:
        if not valid_cidrs(cidrs):
            raise VaultError.respond(400, "failed to parse token_bound_cidrs")
        params.bound_cidrs = cidrs
    token_type = get_str(data, "token_type") or "default"
    if token_type not in {"default", "service", "default-service"}:
        raise VaultError.respond(
            400, f"emulator: token_type {go_quote(token_type)} is not supported"
        )
    if params.num_uses < 0:
        raise VaultError.respond(400, "'token_num_uses' cannot be negative")
    if params.ttl and params.max_ttl and params.ttl > params.max_ttl:
        raise VaultError.respond(400, "'token_ttl' cannot be greater than 'token_max_ttl'")


def login(
    call: Call,
    params: TokenParams,
    *,
    display_name: str,
    metadata: dict[str, str],
    alias: str,
    role: str,
) -> Reply:
    """Issue the token of a successful login the way ``handleLoginRequest`` does."""
    mount = call.mount
    assert mount is not None
    ttl, warnings = calculate_ttl(
        call.now,
        increment=0,
        backend_ttl=params.ttl,
        period=params.period,
        backend_max_ttl=params.max_ttl,
        explicit_max_ttl=params.explicit_max_ttl,
        start=None,
    )
    token = call.core.issue_token(
        call.namespace,
        policies=sanitize_policies(params.policies, add_default=not params.no_default_policy),
        parent=None,
        display_name=display_name,
        path=f"auth/{mount.path}login",
        meta=metadata,
        ttl=ttl,
        explicit_max_ttl=params.explicit_max_ttl,
        period=params.period,
        renewable=True,
        num_uses=params.num_uses,
        entity_id=call.core.entity_for(mount, alias),
        now=call.now,
        renew_source=(mount.type, mount.uuid, role),
    )
    return Reply(auth=token.auth_block(), warnings=warnings or None)


# --------------------------------------------------------------------------- token store


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
    """POST auth/token/revoke-accessor {accessor} (204)."""
    call.core.revoke(_token_by_accessor(call, get_str(call.data, "accessor")).id)
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

# --------------------------------------------------------------------------- AppRole


def _approle(call: Call) -> AppRoleStore:
    assert call.mount is not None
    store: AppRoleStore = call.mount.backend
    return store


def _role_name(call: Call) -> str:
    return call.param("role_name").lower()


def _live_secret_ids(role: AppRole, call: Call) -> dict[str, SecretId]:
    """A role's secret ids, dropping those past their expiration_time."""
    for secret_id, entry in list(role.secret_ids.items()):
        if entry.expiration_time is not None and entry.expiration_time <= call.now:
            del role.secret_ids[secret_id]
    return role.secret_ids


def _role_exists(call: Call) -> bool:
    return _role_name(call) in _approle(call).roles


def approle_list_roles(call: Call) -> Reply:
    """LIST auth/approle/role."""
    names = sorted(_approle(call).roles)
    if not names:
        raise VaultError.not_found()
    return Reply(data={"keys": names})


def approle_write_role(call: Call) -> Reply:
    """POST auth/approle/role/:name: create or update (204)."""
    store = _approle(call)
    name = _role_name(call)
    data = call.data
    role = store.roles.get(name)
    creating = role is None
    candidate = AppRole(name=name, role_id="") if role is None else _copy_role(role)
    parse_token_fields(data, candidate.token)
    if "local_secret_ids" in data:
        if not creating:
            raise VaultError.respond(
                400, "local_secret_ids can only be modified during role creation"
            )
        candidate.local_secret_ids = get_bool(data, "local_secret_ids")
    if "role_id" in data:
        candidate.role_id = get_str(data, "role_id")
    elif creating:
        candidate.role_id = new_uuid()
    if not candidate.role_id:
        raise VaultError.respond(400, "invalid role_id supplied, or failed to generate a role_id")
    if "bind_secret_id" in data:
        candidate.bind_secret_id = get_bool(data, "bind_secret_id")
    cidrs = get_str_list(data, "secret_id_bound_cidrs")
    if cidrs is None:
        cidrs = get_str_list(data, "bound_cidr_list")
    if cidrs is not None:
        if not valid_cidrs(cidrs):
            raise VaultError.respond(400, "invalid CIDR blocks")
        candidate.secret_id_bound_cidrs = cidrs
    if "secret_id_num_uses" in data:
        candidate.secret_id_num_uses = get_int(data, "secret_id_num_uses")
    if candidate.secret_id_num_uses < 0:
        raise VaultError.respond(400, "secret_id_num_uses cannot be negative")
    if "secret_id_ttl" in data:
        candidate.secret_id_ttl = parse_duration(data["secret_id_ttl"], "secret_id_ttl")
    if candidate.token.period > SYSTEM_MAX_TTL:
        raise VaultError.respond(
            400, "period of the token is greater than the backend's maximum lease TTL"
        )
    if not (
        candidate.bind_secret_id or candidate.secret_id_bound_cidrs or candidate.token.bound_cidrs
    ):
        raise VaultError.respond(400, "at least one constraint should be enabled on the role")
    for other in store.roles.values():
        if other.name != name and other.role_id == candidate.role_id:
            raise VaultError.internal(500, "role_id already in use")
    store.roles[name] = candidate
    return no_content()


def _copy_params(params: TokenParams) -> TokenParams:
    """An independent copy of a role's token fields."""
    return dataclasses.replace(
        params, policies=list(params.policies), bound_cidrs=list(params.bound_cidrs)
    )


def _copy_role(role: AppRole) -> AppRole:
    """A copy to validate changes against, so a rejected update leaves the role untouched."""
    return AppRole(
        name=role.name,
        role_id=role.role_id,
        bind_secret_id=role.bind_secret_id,
        secret_id_bound_cidrs=list(role.secret_id_bound_cidrs),
        secret_id_num_uses=role.secret_id_num_uses,
        secret_id_ttl=role.secret_id_ttl,
        local_secret_ids=role.local_secret_ids,
        token=_copy_params(role.token),
        secret_ids=role.secret_ids,
    )


def approle_read_role(call: Call) -> Reply:
    """GET auth/approle/role/:name."""
    role = _approle(call).roles.get(_role_name(call))
    if role is None:
        raise VaultError.not_found()
    data = {
        "bind_secret_id": role.bind_secret_id,
        "secret_id_bound_cidrs": list(role.secret_id_bound_cidrs),
        "secret_id_num_uses": role.secret_id_num_uses,
        "secret_id_ttl": role.secret_id_ttl,
        "local_secret_ids": role.local_secret_ids,
    } | role.token.as_data()
    return Reply(data=data)


def approle_delete_role(call: Call) -> Reply:
    """DELETE auth/approle/role/:name, with its secret ids (204)."""
    _approle(call).roles.pop(_role_name(call), None)
    return no_content()


def approle_read_role_id(call: Call) -> Reply:
    """GET auth/approle/role/:name/role-id."""
    role = _approle(call).roles.get(_role_name(call))
    if role is None:
        raise VaultError.not_found()
    return Reply(data={"role_id": role.role_id})


def approle_write_role_id(call: Call) -> Reply:
    """POST auth/approle/role/:name/role-id {role_id}: set a custom RoleID (204)."""
    store = _approle(call)
    role = store.roles.get(_role_name(call))
    if role is None:
        raise VaultError.internal(404, "unsupported path")
    role_id = get_str(call.data, "role_id")
    if not role_id:
        raise VaultError.respond(400, "missing role_id")
    if any(r.role_id == role_id and r is not role for r in store.roles.values()):
        raise VaultError.internal(500, "role_id already in use")
    role.role_id = role_id
    return no_content()


def _role_or_500(call: Call) -> AppRole:
    """The URL's role; a missing one is a plain Go error in these handlers (hence a 500)."""
    role = _approle(call).roles.get(_role_name(call))
    if role is None:
        raise VaultError.internal(500, f"role {go_quote(call.param('role_name'))} does not exist")
    return role


def _secret_id_data(entry: SecretId) -> JSONDict:
    """A secret id as the lookup endpoints describe it (``ToResponseData``)."""
    return {
        "secret_id_accessor": entry.accessor,
        "secret_id_num_uses": entry.num_uses,
        "secret_id_ttl": entry.ttl,
        "creation_time": go_time(entry.creation_time),
        "expiration_time": (
            go_time(entry.expiration_time) if entry.expiration_time else GO_ZERO_TIME
        ),
        "last_updated_time": go_time(entry.last_updated_time),
        "metadata": dict(entry.metadata),
        "cidr_list": list(entry.cidr_list),
        "token_bound_cidrs": list(entry.token_bound_cidrs),
    }


def approle_generate_secret_id(call: Call, custom: str = "") -> Reply:
    """POST auth/approle/role/:name/secret-id (and custom-secret-id)."""
    role = _approle(call).roles.get(_role_name(call))
    secret_value = custom or new_uuid()
    if custom == "" and call.relative.endswith("custom-secret-id"):
        raise VaultError.respond(400, "missing secret_id")
    if role is None:
        raise VaultError.respond(404, f"role {go_quote(call.param('role_name'))} does not exist")
    if not role.bind_secret_id:
        raise VaultError.respond(400, "bind_secret_id is not set on the role")
    cidrs = get_str_list(call.data, "cidr_list") or []
    if cidrs and not valid_cidrs(cidrs):
        raise VaultError.respond(400, "failed to validate CIDR blocks")
    token_cidrs = get_str_list(call.data, "token_bound_cidrs") or []
    if token_cidrs and not valid_cidrs(token_cidrs):
        raise VaultError.respond(400, "failed to validate token CIDR blocks")
    num_uses = role.secret_id_num_uses
    if "num_uses" in call.data:
        num_uses = get_int(call.data, "num_uses")
        if num_uses < 0:
            raise VaultError.respond(400, "num_uses cannot be negative")
        if (num_uses == 0 and role.secret_id_num_uses > 0) or (
            role.secret_id_num_uses > 0 and num_uses > role.secret_id_num_uses
        ):
            raise VaultError.respond(
                400, "num_uses cannot be higher than the role's secret_id_num_uses"
            )
    ttl = role.secret_id_ttl
    if "ttl" in call.data:
        ttl = parse_duration(call.data["ttl"], "ttl")
        if (ttl == 0 and role.secret_id_ttl > 0) or (
            role.secret_id_ttl > 0 and ttl > role.secret_id_ttl
        ):
            raise VaultError.respond(400, "ttl cannot be longer than the role's secret_id_ttl")
    if ttl < 0 or ttl > SYSTEM_MAX_TTL:
        ttl = SYSTEM_MAX_TTL
    try:
        metadata = parse_key_values(get_str(call.data, "metadata"))
    except ValueError as exc:
        raise VaultError.respond(400, f"failed to parse metadata: {exc}") from exc
    live = _live_secret_ids(role, call)
    if secret_value in live:
        raise VaultError.internal(500, "failed to store secret_id: SecretID is already registered")
    entry = SecretId(
        secret_id=secret_value,
        accessor=new_uuid(),
        num_uses=num_uses,
        ttl=ttl,
        creation_time=call.now,
        expiration_time=after(call.now, ttl) if ttl else None,
        last_updated_time=call.now,
        metadata=metadata,
        cidr_list=cidrs,
        token_bound_cidrs=token_cidrs,
    )
    live[secret_value] = entry
    return Reply(
        data={
            "secret_id": secret_value,
            "secret_id_accessor": entry.accessor,
            "secret_id_ttl": ttl,
            "secret_id_num_uses": num_uses,
        }
    )


def approle_custom_secret_id(call: Call) -> Reply:
    """POST auth/approle/role/:name/custom-secret-id {secret_id}."""
    return approle_generate_secret_id(call, custom=get_str(call.data, "secret_id"))


def approle_list_secret_ids(call: Call) -> Reply:
    """LIST auth/approle/role/:name/secret-id: the accessors."""
    role = _approle(call).roles.get(_role_name(call))
    if role is None:
        raise VaultError.respond(400, f"role {go_quote(call.param('role_name'))} does not exist")
    keys = sorted(entry.accessor for entry in _live_secret_ids(role, call).values())
    if not keys:
        raise VaultError.not_found()
    return Reply(data={"keys": keys})


def approle_lookup_secret_id(call: Call) -> Reply:
    """POST .../secret-id/lookup {secret_id}: 204 when there is no such secret id."""
    secret_value = get_str(call.data, "secret_id")
    if not secret_value:
        raise VaultError.respond(400, "missing secret_id")
    entry = _live_secret_ids(_role_or_500(call), call).get(secret_value)
    return no_content() if entry is None else Reply(data=_secret_id_data(entry))


def approle_destroy_secret_id(call: Call) -> Reply:
    """POST/DELETE .../secret-id/destroy {secret_id} (204)."""
    secret_value = get_str(call.data, "secret_id")
    if not secret_value:
        raise VaultError.respond(400, "missing secret_id")
    _live_secret_ids(_role_or_500(call), call).pop(secret_value, None)
    return no_content()


def _by_accessor(call: Call, role: AppRole) -> tuple[str, SecretId] | None:
    accessor = get_str(call.data, "secret_id_accessor")
    if not accessor:
        raise VaultError.respond(400, "missing secret_id_accessor")
    for secret_value, entry in _live_secret_ids(role, call).items():
        if entry.accessor == accessor:
            return secret_value, entry
    return None


def _missing_accessor(call: Call) -> str:
    accessor = go_quote(get_str(call.data, "secret_id_accessor"))
    return f"failed to find accessor entry for secret_id_accessor: {accessor}"


def approle_lookup_accessor(call: Call) -> Reply:
    """POST .../secret-id-accessor/lookup: a missing accessor is a full-envelope 404."""
    found = _by_accessor(call, _role_or_500(call))
    if found is None:
        return Reply(data={"error": _missing_accessor(call)}, status=404)
    return Reply(data=_secret_id_data(found[1]))


def approle_destroy_accessor(call: Call) -> Reply:
    """POST/DELETE .../secret-id-accessor/destroy: a missing accessor is a 500 (Go error)."""
    role = _role_or_500(call)
    found = _by_accessor(call, role)
    if found is None:
        raise VaultError.internal(500, _missing_accessor(call))
    del role.secret_ids[found[0]]
    return no_content()


def approle_login(call: Call) -> Reply:
    """POST auth/approle/login {role_id, secret_id} (``pathLoginUpdate``)."""
    role_id = get_str(call.data, "role_id").strip()
    if not role_id:
        raise VaultError.respond(400, "missing role_id")
    role = next((r for r in _approle(call).roles.values() if r.role_id == role_id), None)
    if role is None:
        raise VaultError.respond(400, "invalid role or secret ID")
    metadata: dict[str, str] = {}
    if role.bind_secret_id:
        secret_value = get_str(call.data, "secret_id").strip()
        if not secret_value:
            raise VaultError.respond(400, "missing secret_id")
        secret_ids = _live_secret_ids(role, call)
        entry = secret_ids.get(secret_value)
        if entry is None:
            raise VaultError.respond(400, "invalid role or secret ID")
        if entry.num_uses:
            # The use is spent before the CIDR checks, as in Vault.
            if entry.num_uses == 1:
                del secret_ids[secret_value]
            else:
                entry.num_uses -= 1
                entry.last_updated_time = call.now
        if entry.cidr_list and not ip_in_cidrs(call.remote_addr, entry.cidr_list):
            raise VaultError.respond(
                400,
                f"source address {go_quote(call.remote_addr)} unauthorized through CIDR "
                "restrictions on the secret ID",
            )
        metadata = dict(entry.metadata)
    if role.secret_id_bound_cidrs and not ip_in_cidrs(call.remote_addr, role.secret_id_bound_cidrs):
        raise VaultError.respond(
            400,
            f"source address {go_quote(call.remote_addr)} unauthorized by CIDR restrictions "
            "on the role: %!w(<nil>)",
        )
    metadata["role_name"] = role.name
    assert call.mount is not None
    return login(
        call,
        role.token,
        display_name=call.mount.path.rstrip("/").replace("/", "-"),
        metadata=metadata,
        alias=role.role_id,
        role=role.name,
    )


_ROLE = "role/" + _ROLE_NAME

APPROLE_ROUTES: list[Route] = [
    route(r"login", {"update": approle_login}, unauthenticated=True),
    route(r"role/?", {"list": approle_list_roles}),
    route(
        _ROLE,
        {
            "read": approle_read_role,
            "create": approle_write_role,
            "update": approle_write_role,
            "delete": approle_delete_role,
        },
        _role_exists,
    ),
    route(_ROLE + r"/role-id", {"read": approle_read_role_id, "update": approle_write_role_id}),
    route(
        _ROLE + r"/secret-id/?",
        {"update": approle_generate_secret_id, "list": approle_list_secret_ids},
    ),
    route(_ROLE + r"/custom-secret-id", {"update": approle_custom_secret_id}),
    route(_ROLE + r"/secret-id/lookup", {"update": approle_lookup_secret_id}),
    route(
        _ROLE + r"/secret-id/destroy",
        {"update": approle_destroy_secret_id, "delete": approle_destroy_secret_id},
    ),
    route(_ROLE + r"/secret-id-accessor/lookup", {"update": approle_lookup_accessor}),
    route(
        _ROLE + r"/secret-id-accessor/destroy",
        {"update": approle_destroy_accessor, "delete": approle_destroy_accessor},
    ),
]

# --------------------------------------------------------------------------- Kubernetes


def _kubernetes(call: Call) -> KubernetesStore:
    assert call.mount is not None
    store: KubernetesStore = call.mount.backend
    return store


def kubernetes_write_config(call: Call) -> Reply:
    """POST auth/kubernetes/config: stored, never used to reach a cluster (204)."""
    host = get_str(call.data, "kubernetes_host")
    if not host:
        raise VaultError.respond(400, "no host provided")
    _kubernetes(call).config = {
        "kubernetes_host": host,
        "kubernetes_ca_cert": get_str(call.data, "kubernetes_ca_cert"),
        "pem_keys": get_str_list(call.data, "pem_keys") or [],
        "issuer": get_str(call.data, "issuer"),
        "disable_iss_validation": get_bool(call.data, "disable_iss_validation", True),
        "disable_local_ca_jwt": get_bool(call.data, "disable_local_ca_jwt"),
        "token_reviewer_jwt_set": bool(get_str(call.data, "token_reviewer_jwt")),
        "use_annotations_as_alias_metadata": get_bool(
            call.data, "use_annotations_as_alias_metadata"
        ),
    }
    return no_content()


def kubernetes_read_config(call: Call) -> Reply:
    """GET auth/kubernetes/config."""
    config = _kubernetes(call).config
    if config is None:
        raise VaultError.not_found()
    return Reply(data=dict(config))


def _k8s_role_exists(call: Call) -> bool:
    return call.param("role_name") in _kubernetes(call).roles


def kubernetes_write_role(call: Call) -> Reply:
    """POST auth/kubernetes/role/:name (204)."""
    store = _kubernetes(call)
    name = call.param("role_name")
    data = call.data
    existing = store.roles.get(name)
    role = KubernetesRole(
        name=name,
        service_account_names=list(existing.service_account_names) if existing else [],
        service_account_namespaces=list(existing.service_account_namespaces) if existing else [],
        audience=existing.audience if existing else "",
        alias_name_source=existing.alias_name_source if existing else "serviceaccount_uid",
        token=_copy_params(existing.token) if existing else TokenParams(),
    )
    parse_token_fields(data, role.token)
    names = get_str_list(data, "bound_service_account_names")
    if names is not None:
        role.service_account_names = names
    if not role.service_account_names:
        raise VaultError.respond(400, '"bound_service_account_names" can not be empty')
    if len(role.service_account_names) > 1 and "*" in role.service_account_names:
        raise VaultError.respond(400, 'can not mix "*" with values')
    namespaces = get_str_list(data, "bound_service_account_namespaces")
    if namespaces is not None:
        role.service_account_namespaces = namespaces
    if not role.service_account_namespaces:
        raise VaultError.respond(
            400,
            '"bound_service_account_namespaces" can not be empty if '
            '"bound_service_account_namespace_selector" is not set',
        )
    if len(role.service_account_namespaces) > 1 and "*" in role.service_account_namespaces:
        raise VaultError.respond(400, 'can not mix "*" with values')
    if "audience" in data:
        role.audience = get_str(data, "audience")
    if "alias_name_source" in data:
        source = get_str(data, "alias_name_source")
        if source not in {"serviceaccount_uid", "serviceaccount_name"}:
            raise VaultError.respond(400, f"invalid alias_name_source: {go_quote(source)}")
        role.alias_name_source = source
    store.roles[name] = role
    return no_content()


def kubernetes_read_role(call: Call) -> Reply:
    """GET auth/kubernetes/role/:name."""
    role = _kubernetes(call).roles.get(call.param("role_name"))
    if role is None:
        raise VaultError.not_found()
    data: JSONDict = {
        "bound_service_account_names": list(role.service_account_names),
        "bound_service_account_namespaces": list(role.service_account_namespaces),
        "bound_service_account_namespace_selector": "",
        "alias_name_source": role.alias_name_source,
    } | role.token.as_data()
    if role.audience:
        data["audience"] = role.audience
    return Reply(data=data)


def kubernetes_delete_role(call: Call) -> Reply:
    """DELETE auth/kubernetes/role/:name (204)."""
    _kubernetes(call).roles.pop(call.param("role_name"), None)
    return no_content()


def kubernetes_list_roles(call: Call) -> Reply:
    """LIST auth/kubernetes/role."""
    names = sorted(_kubernetes(call).roles)
    if not names:
        raise VaultError.not_found()
    return Reply(data={"keys": names})


def _glob_match(patterns: list[str], value: str) -> bool:
    """Vault's ``StrListContainsGlob``: exact, or a single leading and/or trailing ``*``."""
    for pattern in patterns:
        if pattern in {"*", value}:
            return True
        core = pattern.strip("*")
        starts, ends = pattern.startswith("*"), pattern.endswith("*")
        if starts and ends and core in value:
            return True
        if ends and not starts and value.startswith(core):
            return True
        if starts and not ends and value.endswith(core):
            return True
    return False


def _jwt_claims(jwt: str) -> JSONDict:
    """Decode a JWT's payload without checking its signature (see the module docstring)."""
    parts = jwt.split(".")
    if len(parts) != 3:
        raise VaultError.internal(403, "malformed JWT")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError) as exc:
        raise VaultError.internal(403, "malformed JWT") from exc
    if not isinstance(claims, dict):
        raise VaultError.internal(403, "malformed JWT")
    return claims


def _service_account(claims: JSONDict) -> tuple[str, str, str, str]:
    """(namespace, name, uid, secret name) from the legacy or the projected claim form."""
    name = str(claims.get("kubernetes.io/serviceaccount/service-account.name", ""))
    uid = str(claims.get("kubernetes.io/serviceaccount/service-account.uid", ""))
    namespace = str(claims.get("kubernetes.io/serviceaccount/namespace", ""))
    secret = str(claims.get("kubernetes.io/serviceaccount/secret.name", ""))
    projected = claims.get("kubernetes.io")
    if isinstance(projected, dict):
        namespace = str(projected.get("namespace", ""))
        account = projected.get("serviceaccount")
        if isinstance(account, dict):
            name = str(account.get("name", ""))
            uid = str(account.get("uid", ""))
    return namespace, name, uid, secret


def kubernetes_login(call: Call) -> Reply:
    """POST auth/kubernetes/login {role, jwt}: claims checked against the role's bindings."""
    role_name = get_str(call.data, "role")
    if not role_name:
        raise VaultError.respond(400, "missing role")
    jwt = get_str(call.data, "jwt")
    if not jwt:
        raise VaultError.respond(400, "missing jwt")
    store = _kubernetes(call)
    role = store.roles.get(role_name)
    if role is None:
        raise VaultError.respond(400, f"invalid role name {go_quote(role_name)}")
    if role.token.bound_cidrs and not ip_in_cidrs(call.remote_addr, role.token.bound_cidrs):
        raise VaultError.internal(403, "permission denied")
    config = store.config
    if config is None:
        raise VaultError.internal(500, "could not load backend configuration")
    claims = _jwt_claims(jwt)
    _check_registered_claims(call, claims, config, role)
    namespace, name, uid, secret = _service_account(claims)
    if not (role.service_account_names == ["*"] or _glob_match(role.service_account_names, name)):
        raise VaultError.internal(403, "service account name not authorized")
    if not (
        role.service_account_namespaces[:1] == ["*"]
        or _glob_match(role.service_account_namespaces, namespace)
    ):
        raise VaultError.internal(403, "namespace not authorized")
    if not uid:
        raise VaultError.internal(500, "could not parse UID from claims")
    alias = uid if role.alias_name_source == "serviceaccount_uid" else f"{namespace}/{name}"
    metadata = {
        "service_account_uid": uid,
        "service_account_name": name,
        "service_account_namespace": namespace,
        "service_account_secret_name": secret,
        "role": role_name,
    }
    assert call.mount is not None
    source = call.mount.path.rstrip("/").replace("/", "-")
    return login(
        call,
        role.token,
        display_name=f"{source}-{namespace}-{name}",
        metadata=metadata,
        alias=alias,
        role=role_name,
    )


def _check_registered_claims(
    call: Call, claims: JSONDict, config: JSONDict, role: KubernetesRole
) -> None:
    """exp/nbf against the clock; iss when validation is enabled; aud when the role sets one."""
    now = call.now.timestamp()
    expiry = claims.get("exp")
    if isinstance(expiry, int | float) and now >= float(expiry):
        raise VaultError.internal(403, "token is expired")
    not_before = claims.get("nbf")
    if isinstance(not_before, int | float) and now < float(not_before):
        raise VaultError.internal(403, "token not yet valid")
    if not config.get("disable_iss_validation", True):
        issuer = config.get("issuer") or "kubernetes/serviceaccount"
        if claims.get("iss") != issuer:
            raise VaultError.internal(403, "invalid issuer (iss) claim")
    if role.audience:
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if role.audience not in audiences:
            raise VaultError.internal(403, "invalid audience (aud) claim")


KUBERNETES_ROUTES: list[Route] = [
    route(r"login", {"update": kubernetes_login}, unauthenticated=True),
    route(r"config", {"read": kubernetes_read_config, "update": kubernetes_write_config}),
    route(r"role/?", {"list": kubernetes_list_roles}),
    route(
        r"role/(?P<role_name>\w(?:[\w\-.]*\w)?)",
        {
            "read": kubernetes_read_role,
            "create": kubernetes_write_role,
            "update": kubernetes_write_role,
            "delete": kubernetes_delete_role,
        },
        _k8s_role_exists,
    ),
]
