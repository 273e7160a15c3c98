"""The custom roles ``rotator permissions`` prints for Azure, assignable at the exact scopes.

Each scope (a Key Vault secret, the companion secret holding its pending
value, an API Management service) gets exactly the actions asked for it,
nothing another scope needs; scopes needing the same actions share a role,
named after that set. Subscription and resource group are placeholders to
fill in. Everything is sorted: the same permissions give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from rotator.adapters import Permission, PermissionRenderer

SYSTEM = "azure"
ROLE_NAME = "rotator"
SCOPE = (
    "/subscriptions/<subscription-id>/resourceGroups/<resource-group>"
    "/providers/Microsoft.KeyVault/vaults/{vault}"
)


def vault_name(vault_url: str) -> str:
    """Return a Key Vault's name from its URL (``https://NAME.vault.azure.net``)."""
    host = urlsplit(vault_url).hostname or vault_url
    return host.split(".")[0] if not host.replace(".", "").isdigit() else host


def azure_scope(resource: str) -> str:
    """Return the RBAC scope of an Azure permission's resource: a secret, a vault, a service.

    A Key Vault secret's URL (``https://VAULT.vault.azure.net/secrets/NAME``)
    is that secret's scope, a bare vault URL the vault's, an API Management
    subscription's resource id its service's; subscription and resource
    group are placeholders to fill in.
    """
    if resource.startswith("/subscriptions/"):
        return _arm_scope(resource)
    vault = SCOPE.format(vault=vault_name(resource))
    segments = [s for s in urlsplit(resource).path.split("/") if s]
    if len(segments) == 2 and segments[0] == "secrets":
        return f"{vault}/secrets/{segments[1]}"
    return vault


def azure_roles(permissions: Iterable[Permission]) -> list[dict[str, Any]]:
    """Return one custom role per set of actions a scope needs, assignable to those scopes.

    Each scope (a secret, a pending value's companion secret, an API
    Management service) gets exactly the actions asked for it, nothing
    another scope needs: the companion's ``delete`` and ``purge`` never
    reach the secret consumers read. Scopes needing the same actions share
    a role, named after that set (:func:`azure_role_name`).
    """
    kept = [p for p in permissions if p.system == SYSTEM and p.actions]
    by_scope: dict[str, set[str]] = {}
    for p in kept:
        by_scope.setdefault(azure_scope(p.resource), set()).update(p.actions)
    by_actions: dict[tuple[str, ...], set[str]] = {}
    for scope, actions in by_scope.items():
        by_actions.setdefault(tuple(sorted(actions)), set()).add(scope)
    roles = [
        azure_role(
            [p for p in kept if azure_scope(p.resource) in scopes], name=azure_role_name(actions)
        )
        for actions, scopes in by_actions.items()
    ]
    return sorted(roles, key=lambda role: str(role["Name"]))


def azure_role_name(actions: Iterable[str]) -> str:
    """Return a role's name from its actions: the same set, the same name, whatever the order."""
    digest = hashlib.sha256("\n".join(sorted(set(actions))).encode()).hexdigest()
    return f"{ROLE_NAME}-{digest[:8]}"


def azure_role(permissions: Iterable[Permission], name: str = ROLE_NAME) -> dict[str, Any]:
    """Return one custom role definition holding every action ``permissions`` ask for.

    ``az role definition create --role-definition @FILE`` reads it once the
    subscription and resource group placeholders of its scopes are filled in.
    Key Vault permissions (a secret's or a vault's URL as resource) are data
    actions, assignable to that secret or vault; control-plane permissions
    (an ARM resource id such as an API Management subscription,
    ``/subscriptions/...``) are actions, assignable to the API Management
    service that holds them. The role holds the union of what its scopes
    need: :func:`azure_roles` gives it only scopes needing the same.
    """
    kept = [p for p in permissions if p.system == SYSTEM and p.actions]
    data: dict[str, set[str]] = {}
    control: dict[str, set[str]] = {}
    scopes: set[str] = set()
    for p in kept:
        arm = p.resource.startswith("/subscriptions/")
        for action in p.actions:
            (control if arm else data).setdefault(action, set()).add(p.step)
        scopes.add(azure_scope(p.resource))
    why = "; ".join(
        f"{_short_action(action)}: {', '.join(sorted(steps))}"
        for action, steps in sorted({**data, **control}.items())
    )
    what = " and ".join(
        w
        for w, used in (("Key Vault secrets", data), ("API Management subscriptions", control))
        if used
    )
    return {
        "Name": name,
        "IsCustom": True,
        "Description": f"What rotator needs on {what or 'Azure'} (rotator permissions). {why}",
        "Actions": sorted(control),
        "NotActions": [],
        "DataActions": sorted(data),
        "NotDataActions": [],
        "AssignableScopes": sorted(scopes),
    }


def _arm_scope(resource_id: str) -> str:
    """Cut an API Management subscription's resource id to its service (the role's scope)."""
    head, marker, rest = resource_id.partition("/providers/Microsoft.ApiManagement/service/")
    if not marker:
        return resource_id
    return f"{head}{marker}{rest.split('/', 1)[0]}"


def _short_action(action: str) -> str:
    """Drop the provider prefix from an action, for the role's description."""
    for prefix in ("Microsoft.KeyVault/vaults/", "Microsoft.ApiManagement/service/"):
        if action.startswith(prefix):
            return action.removeprefix(prefix)
    return action


class CustomRoles(PermissionRenderer):
    """The ``azure`` document: a list of custom role definitions, printed as JSON."""

    system = SYSTEM
    order = 30

    def document(self, permissions: Sequence[Permission]) -> list[dict[str, Any]]:
        """Return the role definitions, sorted by name."""
        return azure_roles(permissions)

    def text(self, permissions: Sequence[Permission]) -> str:
        """Return the role definitions as indented JSON."""
        return json.dumps(azure_roles(permissions), indent=2) + "\n"

    def summary(self, permissions: Sequence[Permission]) -> str:
        """Return ``azure: N custom role(s), assignable at M scope(s)``."""
        roles = azure_roles(permissions)
        scopes = sum(len(role["AssignableScopes"]) for role in roles)
        return f"azure: {len(roles)} custom role(s), assignable at {scopes} scope(s)"
