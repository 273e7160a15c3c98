"""The JWT auth method (vault-plugin-auth-jwt) with static public keys: config, roles, login.

Only ``jwt_validation_pubkeys`` can validate tokens here: the emulator never
fetches a JWKS or an OIDC discovery document. Signatures are verified with
PyJWT and cryptography, imported when a configuration or a login needs them,
so the rest of the emulator keeps to the standard library.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rotator.sandbox.vault.auth.login import login, parse_token_fields
from rotator.sandbox.vault.backends import JwtRole, JwtStore
from rotator.sandbox.vault.fields import get_map, get_str, get_str_list, ip_in_cidrs, parse_duration
from rotator.sandbox.vault.protocol import JSONDict, Reply, VaultError, go_quote, no_content
from rotator.sandbox.vault.routing import Call, Route, route

#: What the plugin accepts when ``jwt_supported_algs`` is not set.
DEFAULT_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "ES256",
    "ES384",
    "ES512",
    "PS256",
    "PS384",
    "PS512",
    "EdDSA",
)
# hashicorp/cap's defaults for a role leeway of 0 (go-jose's DefaultLeeway is 1m).
_DEFAULT_CLOCK_SKEW = 60
_DEFAULT_EXPIRATION_LEEWAY = 150
_DEFAULT_NOT_BEFORE_LEEWAY = 150
_UNSUPPORTED_SOURCES = ("oidc_discovery_url", "jwks_url", "jwks_pairs")


def _store(call: Call) -> JwtStore:
    assert call.mount is not None
    store: JwtStore = call.mount.backend
    return store


# --------------------------------------------------------------------------- config


def _parse_public_key(pem: str) -> Any:
    """A PKIX public key or an X.509 certificate's key, as ``ParsePublicKeyPEM`` accepts."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    data = pem.encode()
    try:
        return load_pem_public_key(data)
    except ValueError:
        pass
    try:
        return x509.load_pem_x509_certificate(data).public_key()
    except ValueError as exc:
        raise VaultError.respond(
            400,
            "error parsing public key: data does not contain any valid RSA or ECDSA certificates",
        ) from exc


def jwt_write_config(call: Call) -> Reply:
    """POST auth/jwt/config: exactly one key source; only static public keys are emulated."""
    data = call.data
    pems = get_str_list(data, "jwt_validation_pubkeys") or []
    sources = [name for name in _UNSUPPORTED_SOURCES if data.get(name)]
    if len(sources) + (1 if pems else 0) != 1:
        raise VaultError.respond(
            400,
            "exactly one of 'jwt_validation_pubkeys', 'jwks_url', 'jwks_pairs' or "
            "'oidc_discovery_url' must be set",
        )
    if sources:
        raise VaultError.respond(
            400, f"emulator: {sources[0]} is not supported; use jwt_validation_pubkeys"
        )
    algorithms = get_str_list(data, "jwt_supported_algs") or []
    unknown = [alg for alg in algorithms if alg not in DEFAULT_ALGORITHMS]
    if unknown:
        raise VaultError.respond(
            400, f"invalid jwt_supported_algs: unsupported signing algorithm {go_quote(unknown[0])}"
        )
    keys = [_parse_public_key(pem) for pem in pems]
    store = _store(call)
    store.public_keys = keys
    store.config = {
        "jwt_validation_pubkeys": pems,
        "jwt_supported_algs": algorithms,
        "bound_issuer": get_str(data, "bound_issuer"),
        "default_role": get_str(data, "default_role"),
        "oidc_discovery_url": "",
        "oidc_discovery_ca_pem": "",
        "oidc_client_id": "",
        "oidc_response_mode": "",
        "oidc_response_types": [],
        "jwks_url": "",
        "jwks_ca_pem": "",
        "jwks_pairs": [],
        "provider_config": {},
        "namespace_in_state": True,
        "unsupported_critical_cert_extensions": [],
    }
    return no_content()


def jwt_read_config(call: Call) -> Reply:
    """GET auth/jwt/config (a 404 until it is written)."""
    config = _store(call).config
    if config is None:
        raise VaultError.not_found()
    return Reply(data=dict(config))


# --------------------------------------------------------------------------- roles


def _role_exists(call: Call) -> bool:
    return call.param("role_name") in _store(call).roles


def _copy(role: JwtRole) -> JwtRole:
    """An independent copy to apply an update to, so a refused update changes nothing."""
    return dataclasses.replace(
        role,
        bound_audiences=list(role.bound_audiences),
        bound_claims=dict(role.bound_claims),
        claim_mappings=dict(role.claim_mappings),
        allowed_redirect_uris=list(role.allowed_redirect_uris),
        token=dataclasses.replace(
            role.token,
            policies=list(role.token.policies),
            bound_cidrs=list(role.token.bound_cidrs),
        ),
    )


def jwt_write_role(call: Call) -> Reply:
    """POST auth/jwt/role/:name: ``pathRoleCreateUpdate`` with its validation messages (204)."""
    store = _store(call)
    name = call.param("role_name")
    data = call.data
    existing = store.roles.get(name)
    role = _copy(existing) if existing else JwtRole(name=name)
    if "role_type" in data:
        role.role_type = get_str(data, "role_type")
    if role.role_type not in {"jwt", "oidc"}:
        raise VaultError.respond(400, f"invalid 'role_type': {role.role_type}")
    parse_token_fields(data, role.token)
    for field_name in ("clock_skew_leeway", "expiration_leeway", "not_before_leeway"):
        if field_name in data:
            setattr(role, field_name, parse_duration(data[field_name], field_name))
    audiences = get_str_list(data, "bound_audiences")
    if audiences is not None:
        role.bound_audiences = audiences
    if "bound_subject" in data:
        role.bound_subject = get_str(data, "bound_subject")
    claims_type = get_str(data, "bound_claims_type") or "string"
    if claims_type == "glob":
        raise VaultError.respond(400, "emulator: bound_claims_type glob is not supported")
    if claims_type != "string":
        raise VaultError.respond(400, f"invalid 'bound_claims_type': {claims_type}")
    bound_claims = get_map(data, "bound_claims")
    if bound_claims is not None:
        role.bound_claims = dict(bound_claims)
    mappings = get_map(data, "claim_mappings")
    if mappings is not None:
        targets = list(mappings.values())
        for target in targets:
            if target == "role":
                raise VaultError.respond(
                    400, 'metadata key "role" is reserved and may not be a mapping destination'
                )
            if targets.count(target) > 1:
                raise VaultError.respond(
                    400, f"multiple keys are mapped to metadata key {go_quote(str(target))}"
                )
        role.claim_mappings = {str(k): str(v) for k, v in mappings.items()}
    if "user_claim" in data:
        role.user_claim = get_str(data, "user_claim")
    if not role.user_claim:
        raise VaultError.respond(400, "a user claim must be defined on the role")
    uris = get_str_list(data, "allowed_redirect_uris")
    if uris is not None:
        role.allowed_redirect_uris = uris
    if role.role_type == "oidc" and not role.allowed_redirect_uris:
        raise VaultError.respond(
            400, "'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified."
        )
    if role.role_type != "oidc" and not (
        role.bound_audiences or role.token.bound_cidrs or role.bound_subject or role.bound_claims
    ):
        raise VaultError.respond(
            400, "must have at least one bound constraint when creating/updating a role"
        )
    store.roles[name] = role
    return no_content()


def jwt_read_role(call: Call) -> Reply:
    """GET auth/jwt/role/:name (``pathRoleRead``)."""
    role = _store(call).roles.get(call.param("role_name"))
    if role is None:
        raise VaultError.not_found()
    data: JSONDict = {
        "role_type": role.role_type,
        "expiration_leeway": role.expiration_leeway,
        "not_before_leeway": role.not_before_leeway,
        "clock_skew_leeway": role.clock_skew_leeway,
        "bound_audiences": list(role.bound_audiences),
        "bound_subject": role.bound_subject,
        "bound_claims_type": "string",
        "bound_claims": dict(role.bound_claims) or None,
        "claim_mappings": dict(role.claim_mappings) or None,
        "user_claim": role.user_claim,
        "user_claim_json_pointer": False,
        "groups_claim": "",
        "allowed_redirect_uris": list(role.allowed_redirect_uris),
        "oidc_scopes": [],
        "verbose_oidc_logging": False,
        "max_age": 0,
    } | role.token.as_data()
    return Reply(data=data)


def jwt_delete_role(call: Call) -> Reply:
    """DELETE auth/jwt/role/:name (204)."""
    _store(call).roles.pop(call.param("role_name"), None)
    return no_content()


def jwt_list_roles(call: Call) -> Reply:
    """LIST auth/jwt/role (an empty list is a 404)."""
    names = sorted(_store(call).roles)
    if not names:
        raise VaultError.not_found()
    return Reply(data={"keys": names})


# --------------------------------------------------------------------------- login


def _invalid(reason: str) -> VaultError:
    """A login refused by the validator: 400 ``error validating token: <reason>``."""
    return VaultError.respond(400, f"error validating token: {reason}")


def _verified_claims(store: JwtStore, jwt: str) -> JSONDict:
    """The claims of a JWT signed by one of the configured keys with an allowed algorithm."""
    import jwt as pyjwt

    config = store.config or {}
    algorithms = list(config.get("jwt_supported_algs") or DEFAULT_ALGORITHMS)
    # Only the signature here: hashicorp/cap checks the claims itself, on the emulator's clock.
    options: Any = {
        "verify_signature": True,
        "verify_exp": False,
        "verify_nbf": False,
        "verify_iat": False,
        "verify_aud": False,
        "verify_iss": False,
    }
    for key in store.public_keys:
        try:
            claims = pyjwt.decode(jwt, key, algorithms=algorithms, options=options)
        except (pyjwt.PyJWTError, TypeError, ValueError):
            # PyJWT raises TypeError/ValueError for a key of the wrong kind
            # (an EC key against an RS256 token): that key did not verify it.
            continue
        if isinstance(claims, dict):
            return claims
    raise _invalid(
        "error verifying token signature: no known key successfully validated the token signature"
    )


def _leeway(configured: int, default: int) -> int:
    """cap's rule: 0 means the default, a negative value no leeway."""
    if configured < 0:
        return 0
    return configured or default


def _numeric(claims: JSONDict, name: str) -> float:
    value = claims.get(name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _audiences(claims: JSONDict) -> list[str]:
    audience = claims.get("aud")
    if isinstance(audience, str):
        return [audience] if audience else []
    if isinstance(audience, list):
        return [str(item) for item in audience]
    return []


def _check_registered_claims(call: Call, claims: JSONDict, role: JwtRole, issuer: str) -> None:
    """hashicorp/cap ``Validator.Validate``: iss, sub, aud, then nbf/exp/iat with leeway."""
    if issuer and claims.get("iss") != issuer:
        raise _invalid("invalid issuer (iss) claim")
    if role.bound_subject and claims.get("sub") != role.bound_subject:
        raise _invalid("invalid subject (sub) claim")
    audiences = _audiences(claims)
    if role.bound_audiences and not set(role.bound_audiences) & set(audiences):
        raise _invalid(
            "invalid audience (aud) claim: audience claim does not match any expected audience"
        )
    issued_at, expiry, not_before = (_numeric(claims, n) for n in ("iat", "exp", "nbf"))
    if not (issued_at or expiry or not_before):
        raise _invalid(
            "no issued at (iat), not before (nbf), or expiration time (exp) claims in token"
        )
    if not expiry:
        expiry = max(issued_at, not_before) + _leeway(
            role.expiration_leeway, _DEFAULT_EXPIRATION_LEEWAY
        )
    if not not_before:
        not_before = issued_at or expiry - _leeway(
            role.not_before_leeway, _DEFAULT_NOT_BEFORE_LEEWAY
        )
    skew = _leeway(role.clock_skew_leeway, _DEFAULT_CLOCK_SKEW)
    now = call.now.timestamp()
    if now + skew < not_before:
        raise _invalid("invalid not before (nbf) claim: token not yet valid")
    if now - skew > expiry:
        raise _invalid("invalid expiration time (exp) claim: token is expired")
    if issued_at and now + skew < issued_at:
        raise _invalid("invalid issued at (iat) claim: token issued in the future")


def _as_list(value: Any) -> list[Any] | None:
    """``normalizeList``: a list as is; a string, bool or number as a list of one."""
    if isinstance(value, list):
        return value
    if isinstance(value, str | bool | int | float):
        return [value]
    return None


def _check_bound_claims(role: JwtRole, claims: JSONDict) -> None:
    """``validateBoundClaims`` (string type): every bound claim matches one of its values."""
    for name, expected in role.bound_claims.items():
        actual = claims.get(name)
        if actual is None:
            raise VaultError.respond(
                400, f"error validating claims: claim {go_quote(name)} is missing"
            )
        actual_values = _as_list(actual)
        if actual_values is None:
            raise VaultError.respond(
                400,
                "error validating claims: received claim is not a string, bool, int or list",
            )
        expected_values = _as_list(expected) or []
        if not any(e == a and type(e) is type(a) for e in expected_values for a in actual_values):
            raise VaultError.respond(
                400,
                f"error validating claims: claim {go_quote(name)} does not match any "
                "associated bound claim values",
            )


def jwt_login(call: Call) -> Reply:
    """POST auth/jwt/login {role, jwt}: ``pathLogin`` with static keys."""
    store = _store(call)
    config = store.config
    if config is None:
        raise VaultError.respond(400, "could not load configuration")
    role_name = get_str(call.data, "role") or str(config.get("default_role") or "")
    if not role_name:
        raise VaultError.respond(400, "missing role")
    role = store.roles.get(role_name)
    if role is None:
        raise VaultError.respond(400, f"role {go_quote(role_name)} could not be found")
    if role.role_type == "oidc":
        raise VaultError.respond(400, "role with oidc role_type is not allowed")
    jwt = get_str(call.data, "jwt")
    if not jwt:
        raise VaultError.respond(400, "missing token")
    if role.token.bound_cidrs and not ip_in_cidrs(call.remote_addr, role.token.bound_cidrs):
        raise VaultError.internal(403, "permission denied")
    claims = _verified_claims(store, jwt)
    _check_registered_claims(call, claims, role, str(config.get("bound_issuer") or ""))
    if not role.bound_audiences and _audiences(claims):
        raise VaultError.respond(
            400, "audience claim found in JWT but no audiences bound to the role"
        )
    user = claims.get(role.user_claim)
    if user is None:
        raise VaultError.respond(400, f"claim {go_quote(role.user_claim)} not found in token")
    if not isinstance(user, str):
        raise VaultError.respond(
            400, f"claim {go_quote(role.user_claim)} could not be converted to string"
        )
    metadata: dict[str, str] = {}
    for source, target in role.claim_mappings.items():
        value = claims.get(source)
        if value is None:
            continue
        if not isinstance(value, str):
            raise VaultError.respond(400, f"error converting claim '{source}' to string")
        metadata[target] = value
    metadata["role"] = role_name
    _check_bound_claims(role, claims)
    assert call.mount is not None
    mount_name = call.mount.path.rstrip("/").replace("/", "-")
    return login(
        call,
        role.token,
        display_name=f"{mount_name}-{user}",
        metadata=metadata,
        alias=user,
        role=role_name,
    )


_ROLE = r"role/(?P<role_name>\w(?:[\w\-.]*\w)?)"

JWT_ROUTES: list[Route] = [
    route(r"login", {"update": jwt_login}, unauthenticated=True),
    route(r"config", {"read": jwt_read_config, "update": jwt_write_config}),
    route(r"role/?", {"list": jwt_list_roles}),
    route(
        _ROLE,
        {
            "read": jwt_read_role,
            "create": jwt_write_role,
            "update": jwt_write_role,
            "delete": jwt_delete_role,
        },
        _role_exists,
    ),
]
