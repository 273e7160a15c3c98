"""The Kubernetes auth method: config, roles, and login with a service account's JWT.

The login never calls the TokenReview API and never verifies the JWT's signature: it
decodes the payload and checks its claims against the role (see the package docstring).
"""

from __future__ import annotations

import base64
import binascii
import json

from rotator.sandbox.vault.auth.login import login, parse_token_fields
from rotator.sandbox.vault.backends import KubernetesRole, KubernetesStore, TokenParams
from rotator.sandbox.vault.fields import get_bool, get_str, get_str_list, ip_in_cidrs
from rotator.sandbox.vault.protocol import JSONDict, Reply, VaultError, go_quote, no_content
from rotator.sandbox.vault.routing import Call, Route, route


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
        token=existing.token.copy() if existing else TokenParams(),
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
