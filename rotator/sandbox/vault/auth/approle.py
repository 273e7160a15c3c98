"""The AppRole auth method: roles, role ids, secret ids, and login with a pair of them."""

from __future__ import annotations

from rotator.sandbox.vault.auth.login import login, parse_token_fields
from rotator.sandbox.vault.backends import AppRole, AppRoleStore, SecretId
from rotator.sandbox.vault.fields import (
    get_bool,
    get_int,
    get_str,
    get_str_list,
    ip_in_cidrs,
    parse_duration,
    parse_key_values,
    valid_cidrs,
)
from rotator.sandbox.vault.protocol import (
    GO_ZERO_TIME,
    SYSTEM_MAX_TTL,
    JSONDict,
    Reply,
    VaultError,
    after,
    go_quote,
    go_time,
    new_uuid,
    no_content,
)
from rotator.sandbox.vault.routing import Call, Route, route

_ROLE_NAME = r"(?P<role_name>\w(?:[\w\-. ]*\w)?)"
# Vault's AppRole backend removes expired secret ids in its periodic function, which the
# rollback manager runs once a minute: until then they stay stored and listed.
TIDY_INTERVAL = 60


def _approle(call: Call) -> AppRoleStore:
    assert call.mount is not None
    store: AppRoleStore = call.mount.backend
    return store


def _role_name(call: Call) -> str:
    return call.param("role_name").lower()


def _expired(entry: SecretId, call: Call) -> bool:
    """Whether a secret id is past its expiration_time (it no longer logs in or looks up)."""
    return entry.expiration_time is not None and entry.expiration_time <= call.now


def _stored_secret_ids(role: AppRole, call: Call) -> dict[str, SecretId]:
    """A role's stored secret ids, expired ones included until the periodic tidy drops them.

    The tidy is modelled at its latest: an expired secret id is gone once a whole
    :data:`TIDY_INTERVAL` has passed since its expiration_time.
    """
    for secret_id, entry in list(role.secret_ids.items()):
        expiry = entry.expiration_time
        if expiry is not None and after(expiry, TIDY_INTERVAL) <= call.now:
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
        token=role.token.copy(),
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
    stored = _stored_secret_ids(role, call)
    if secret_value in stored:
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
    stored[secret_value] = entry
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
    """LIST auth/approle/role/:name/secret-id: the accessors, expired ones until the tidy."""
    role = _approle(call).roles.get(_role_name(call))
    if role is None:
        raise VaultError.respond(400, f"role {go_quote(call.param('role_name'))} does not exist")
    keys = sorted(entry.accessor for entry in _stored_secret_ids(role, call).values())
    if not keys:
        raise VaultError.not_found()
    return Reply(data={"keys": keys})


def approle_lookup_secret_id(call: Call) -> Reply:
    """POST .../secret-id/lookup {secret_id}: 204 when there is no such (or no live) secret id."""
    secret_value = get_str(call.data, "secret_id")
    if not secret_value:
        raise VaultError.respond(400, "missing secret_id")
    entry = _stored_secret_ids(_role_or_500(call), call).get(secret_value)
    if entry is None or _expired(entry, call):
        return no_content()
    return Reply(data=_secret_id_data(entry))


def approle_destroy_secret_id(call: Call) -> Reply:
    """POST/DELETE .../secret-id/destroy {secret_id} (204)."""
    secret_value = get_str(call.data, "secret_id")
    if not secret_value:
        raise VaultError.respond(400, "missing secret_id")
    _stored_secret_ids(_role_or_500(call), call).pop(secret_value, None)
    return no_content()


def _by_accessor(call: Call, role: AppRole) -> tuple[str, SecretId] | None:
    accessor = get_str(call.data, "secret_id_accessor")
    if not accessor:
        raise VaultError.respond(400, "missing secret_id_accessor")
    for secret_value, entry in _stored_secret_ids(role, call).items():
        if entry.accessor == accessor:
            return secret_value, entry
    return None


def _missing_accessor(call: Call) -> str:
    accessor = go_quote(get_str(call.data, "secret_id_accessor"))
    return f"failed to find accessor entry for secret_id_accessor: {accessor}"


def approle_lookup_accessor(call: Call) -> Reply:
    """POST .../secret-id-accessor/lookup: a missing accessor is a full-envelope 404.

    An expired secret id still stored (not yet tidied) answers 204, as OpenBao does.
    """
    found = _by_accessor(call, _role_or_500(call))
    if found is None:
        return Reply(data={"error": _missing_accessor(call)}, status=404)
    if _expired(found[1], call):
        return no_content()
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
        # The alias lookahead Vault runs before the login returns this as a Go error: a 500.
        raise VaultError.respond(500, "missing role_id")
    role = next((r for r in _approle(call).roles.values() if r.role_id == role_id), None)
    if role is None:
        raise VaultError.respond(400, "invalid role or secret ID")
    metadata: dict[str, str] = {}
    if role.bind_secret_id:
        secret_value = get_str(call.data, "secret_id").strip()
        if not secret_value:
            raise VaultError.respond(400, "missing secret_id")
        secret_ids = _stored_secret_ids(role, call)
        entry = secret_ids.get(secret_value)
        if entry is None or _expired(entry, call):
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
