"""What every auth method shares: a role's token fields, and issuing a login's token."""

from __future__ import annotations

from rotator.sandbox.vault.backends import TokenParams
from rotator.sandbox.vault.fields import (
    get_bool,
    get_int,
    get_str,
    get_str_list,
    parse_duration,
    sanitize_policies,
    valid_cidrs,
)
from rotator.sandbox.vault.protocol import JSONDict, Reply, VaultError, go_quote
from rotator.sandbox.vault.routing import Call
from rotator.sandbox.vault.state import calculate_ttl


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
