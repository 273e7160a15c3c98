"""The least privilege the policies need at each outside system, merged and rendered.

``rotator permissions`` asks every adapter a policy binds (store, issuer,
targets, verifiers) what it needs (:meth:`rotator.adapters.roles.Adapter.permissions`),
then merges the answers per system and renders one document each:

- ``aws``: an IAM policy. One statement per step (``Sid`` is the step in
  CamelCase: ``store: write pending`` is ``StoreWritePending``), its actions
  and the exact resources that step touches, so an operator reading an
  AccessDenied knows from the action which step needs it. Where IAM cannot
  name a resource before it exists (an API Gateway key's id), the statement
  carries the adapter's conditions instead (the key's tags).
- ``vault``: an HCL policy, one ``path`` block per path with the union of the
  capabilities the steps need there, each preceded by a comment naming those
  steps.
- ``azure``: custom role definitions, one per set of actions a scope needs,
  whose assignable scopes are the exact secrets (and the companions holding
  pending values), with placeholders for subscription and resource group;
  each description says which step needs each action.
- ``kubernetes``: one RBAC ``Role`` per namespace.

A replica target's permissions are its store's, named ``replica: ...``
instead of ``store: ...`` (it is written at the propagate step). A
:class:`~rotator.adapters.roles.Permission` with no actions is a requirement no
policy document can grant (a Vault token must *hold* the policies it gives
away without ``sudo``): it is rendered as a comment.

Everything is sorted, so the same policies always give the same bytes. This
module imports no SDK and no adapter; the AWS adapters read the account id
``--account`` gives from ``runtime.cache[AWS_ACCOUNT]``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol
from urllib.parse import urlsplit

from rotator.adapters.replica import StoreReplica
from rotator.adapters.roles import (
    Adapter,
    Issuer,
    Permission,
    Store,
    Target,
    Verifier,
)

#: Where ``--account`` puts the AWS account id, in ``Runtime.cache``, for the AWS adapters.
AWS_ACCOUNT = "rotator:aws-account-id"

#: The systems a document is rendered for, in the order they are printed.
SYSTEMS = ("aws", "vault", "azure", "kubernetes", "github", "gitlab")
#: Systems whose permissions are a token's scopes per resource, printed as a list.
TOKEN_SYSTEMS = {
    "github": "GitHub: a fine-grained personal access token or GitHub App installation with",
    "gitlab": "GitLab: a project (or group) access token with",
}

IAM_VERSION = "2012-10-17"
#: Vault capabilities in the order Vault's own documentation lists them.
_CAPABILITY_ORDER = ("create", "read", "update", "patch", "delete", "list", "sudo", "deny")
_SID_WORD = re.compile(r"[A-Za-z0-9]+")
ROLE_NAME = "rotator"
SCOPE = (
    "/subscriptions/<subscription-id>/resourceGroups/<resource-group>"
    "/providers/Microsoft.KeyVault/vaults/{vault}"
)


class Bound(Protocol):
    """What ``Engine.binding`` returns: a policy's adapters."""

    @property
    def store(self) -> Store[Any]:
        """The store."""

    @property
    def issuer(self) -> Issuer[Any]:
        """The issuer."""

    @property
    def targets(self) -> Sequence[Target[Any]]:
        """The targets, in order."""

    @property
    def verifiers(self) -> Sequence[Verifier[Any]]:
        """The checks."""


def _system_of(adapter: Adapter[Any]) -> str:
    """Return the system an adapter talks to, as far as its install extra tells."""
    inner = adapter.store if isinstance(adapter, StoreReplica) else adapter
    return inner.extra


def _as_replica(permission: Permission) -> Permission:
    """Rename a store step ``store: X`` to ``replica: X`` (the store is written as a target)."""
    role, sep, rest = permission.step.partition(":")
    if not sep or role.strip() != "store":
        return permission
    return replace(permission, step=f"replica:{rest}")


def needed(bound: Bound, systems: Iterable[str] = SYSTEMS) -> list[Permission]:
    """Return what one policy's adapters need at ``systems``.

    An adapter installed with the extra of a system not asked for is not
    asked at all, so that ``--provider vault`` needs no AWS credentials or
    region; an adapter of a third party (another extra) is always asked.
    """
    wanted = set(systems)
    found: list[Permission] = []

    def ask(adapter: Adapter[Any]) -> list[Permission]:
        system = _system_of(adapter)
        if system in SYSTEMS and system not in wanted:
            return []
        return [p for p in adapter.permissions() if p.system in wanted]

    found += ask(bound.store)
    found += ask(bound.issuer)
    for target in bound.targets:
        asked = ask(target)
        found += [_as_replica(p) for p in asked] if isinstance(target, StoreReplica) else asked
    for verifier in bound.verifiers:
        found += ask(verifier)
    return found


def collect(bindings: Iterable[Bound], systems: Iterable[str] = SYSTEMS) -> list[Permission]:
    """Return what every binding needs at ``systems``, duplicates dropped, sorted."""
    wanted = tuple(systems)
    seen: set[Permission] = set()
    for bound in bindings:
        seen.update(needed(bound, wanted))
    return sorted(seen, key=lambda p: (p.system, p.step, p.resource, p.actions, p.conditions))


# -- merging --------------------------------------------------------------------


#: IAM conditions as a Permission carries them: ``(operator, key, values)`` each.
Conditions = tuple[tuple[str, str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class Grant:
    """Actions one step needs on some resources, under some conditions (one IAM statement)."""

    step: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: Conditions = ()


def _condition_keys(conditions: Conditions) -> tuple[tuple[str, str], ...]:
    """Return the ``(operator, key)`` pairs of some conditions, sorted (what may be merged)."""
    return tuple(sorted({(operator, key) for operator, key, _ in conditions}))


def _merged_conditions(found: Iterable[Conditions]) -> Conditions:
    """Merge conditions on the same keys: each key allows the values any of them allows."""
    values: dict[tuple[str, str], set[str]] = {}
    for conditions in found:
        for operator, key, allowed in conditions:
            values.setdefault((operator, key), set()).update(allowed)
    return tuple((op, key, tuple(sorted(allowed))) for (op, key), allowed in sorted(values.items()))


def grants(permissions: Iterable[Permission], system: str) -> list[Grant]:
    """Merge one system's permissions: per step and condition keys, by resource, by action set.

    Within a step, the actions asked for one resource add up; resources
    needing exactly the same actions share a grant (an IAM statement's
    actions apply to all its resources, so only equal sets may share one).
    Permissions of a step with conditions on the same keys share a grant
    whose conditions allow every value any of them allows (two secrets' API
    keys: the tag may be either name); conditions on other keys, or none,
    make another grant. Requirements with no actions are left out (see
    :func:`notes`).
    """
    by_step: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, set[str]]] = {}
    conditions: dict[tuple[str, tuple[tuple[str, str], ...]], list[Conditions]] = {}
    for p in permissions:
        if p.system == system and p.actions:
            group = (p.step, _condition_keys(p.conditions))
            by_step.setdefault(group, {}).setdefault(p.resource, set()).update(p.actions)
            conditions.setdefault(group, []).append(p.conditions)
    found: list[Grant] = []
    for group in sorted(by_step):
        merged = _merged_conditions(conditions[group])
        by_actions: dict[tuple[str, ...], set[str]] = {}
        for resource, wanted in by_step[group].items():
            by_actions.setdefault(tuple(sorted(wanted)), set()).add(resource)
        for actions, resources in sorted(by_actions.items()):
            found.append(Grant(group[0], actions, tuple(sorted(resources)), merged))
    return found


def notes(permissions: Iterable[Permission], system: str) -> list[str]:
    """Return the requirements of ``system`` no document can grant, as ``step: what``."""
    return sorted(
        {f"{p.step}: {p.resource}" for p in permissions if p.system == system and not p.actions}
    )


def sid_of(step: str) -> str:
    """Return an IAM statement id for a step: its words in CamelCase (``StoreWritePending``)."""
    words = _SID_WORD.findall(step)
    return "".join(w[:1].upper() + w[1:] for w in words) or "Step"


# -- AWS ------------------------------------------------------------------------


def aws_policy(permissions: Iterable[Permission]) -> dict[str, Any]:
    """Return the IAM policy document: one statement per step and action set, by ``Sid``."""
    statements: list[dict[str, Any]] = []
    taken: set[str] = set()
    for grant in grants(permissions, "aws"):
        base = sid_of(grant.step)
        sid, number = base, 1
        while sid in taken:
            number += 1
            sid = f"{base}{number}"
        taken.add(sid)
        statement: dict[str, Any] = {
            "Sid": sid,
            "Effect": "Allow",
            "Action": list(grant.actions),
            "Resource": list(grant.resources),
        }
        if grant.conditions:
            statement["Condition"] = _condition_block(grant.conditions)
        statements.append(statement)
    statements.sort(key=lambda s: str(s["Sid"]))
    return {"Version": IAM_VERSION, "Statement": statements}


def _condition_block(conditions: Conditions) -> dict[str, dict[str, list[str]]]:
    """Return an IAM ``Condition`` block: operator, then key, then the values it allows."""
    block: dict[str, dict[str, list[str]]] = {}
    for operator, key, values in conditions:
        block.setdefault(operator, {})[key] = list(values)
    return block


# -- Vault ----------------------------------------------------------------------


@dataclass(frozen=True)
class VaultBlock:
    """One ``path`` block: the capabilities every step needs there, and those steps."""

    path: str
    capabilities: tuple[str, ...]
    #: ``step [capabilities]`` for each step that needs the path.
    steps: tuple[str, ...]


def _ordered(capabilities: Iterable[str]) -> tuple[str, ...]:
    known = {c: i for i, c in enumerate(_CAPABILITY_ORDER)}
    return tuple(sorted(set(capabilities), key=lambda c: (known.get(c, len(known)), c)))


def vault_blocks(permissions: Iterable[Permission]) -> list[VaultBlock]:
    """Merge the Vault permissions into one block per path, sorted by path."""
    by_path: dict[str, dict[str, set[str]]] = {}
    for p in permissions:
        if p.system == "vault" and p.actions:
            by_path.setdefault(p.resource, {}).setdefault(p.step, set()).update(p.actions)
    blocks: list[VaultBlock] = []
    for path in sorted(by_path):
        steps = by_path[path]
        every = _ordered(c for caps in steps.values() for c in caps)
        named = tuple(f"{step} [{', '.join(_ordered(steps[step]))}]" for step in sorted(steps))
        blocks.append(VaultBlock(path, every, named))
    return blocks


def vault_policy(permissions: Iterable[Permission]) -> str:
    """Return the Vault policy in HCL, each block after a comment naming the steps it serves."""
    kept = list(permissions)
    lines = [
        "# Vault policy for rotator, written by `rotator permissions`.",
        "# rotator's own token also looks itself up and renews itself (auth/token/lookup-self,",
        "# auth/token/renew-self): Vault's built-in default policy grants both; keep it attached.",
    ]
    lines += [f"# NOTE {note}" for note in notes(kept, "vault")]
    for block in vault_blocks(kept):
        caps = ", ".join(json.dumps(c) for c in block.capabilities)
        lines.append("")
        lines.append(f"# {'; '.join(block.steps)}")
        lines.append(f"path {json.dumps(block.path)} {{ capabilities = [{caps}] }}")
    return "\n".join(lines) + "\n"


# -- Azure ----------------------------------------------------------------------


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
    kept = [p for p in permissions if p.system == "azure" and p.actions]
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
    kept = [p for p in permissions if p.system == "azure" and p.actions]
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


# -- Kubernetes -----------------------------------------------------------------


@dataclass(frozen=True)
class KubeResource:
    """Where a Kubernetes permission applies, parsed from ``Permission.resource``.

    The resource reads ``[contexts/CTX/]namespaces/NS/RESOURCE[.GROUP][/NAME]``
    (``namespaces/payments/deployments.apps/api``); no name means any object
    of that resource (what ``create`` needs, since RBAC cannot name an
    object that does not exist yet).
    """

    context: str
    namespace: str
    group: str
    resource: str
    name: str

    @classmethod
    def parse(cls, text: str) -> KubeResource:
        """Parse a permission's resource; raise ValueError when it is not of that form."""
        parts = text.split("/")
        context = ""
        if parts[:1] == ["contexts"] and len(parts) > 2:
            context, parts = parts[1], parts[2:]
        if len(parts) not in (3, 4) or parts[0] != "namespaces":
            raise ValueError(f"not a Kubernetes permission resource: {text!r}")
        resource, _, group = parts[2].partition(".")
        return cls(context, parts[1], group, resource, parts[3] if len(parts) == 4 else "")


@dataclass(frozen=True)
class KubeRule:
    """One RBAC rule: verbs on some objects of one resource in one namespace, and why."""

    context: str
    namespace: str
    group: str
    resource: str
    verbs: tuple[str, ...]
    #: The objects' names; empty for any object of the resource.
    names: tuple[str, ...]
    steps: tuple[str, ...]


def kubernetes_rules(permissions: Iterable[Permission]) -> list[KubeRule]:
    """Merge the Kubernetes permissions: verbs per object, then objects sharing verbs per rule."""
    per_object: dict[tuple[str, str, str, str, str], tuple[set[str], set[str]]] = {}
    for p in permissions:
        if p.system == "kubernetes" and p.actions:
            where = KubeResource.parse(p.resource)
            where_key = (where.context, where.namespace, where.group, where.resource, where.name)
            verbs, steps = per_object.setdefault(where_key, (set(), set()))
            verbs.update(p.actions)
            steps.add(p.step)
    per_rule: dict[tuple[str, str, str, str, tuple[str, ...], bool], tuple[set[str], set[str]]]
    per_rule = {}
    for (context, namespace, group, resource, name), (verbs, steps) in per_object.items():
        rule_key = (context, namespace, group, resource, tuple(sorted(verbs)), bool(name))
        names, why = per_rule.setdefault(rule_key, (set(), set()))
        if name:
            names.add(name)
        why.update(steps)
    return [
        KubeRule(ctx, ns, grp, res, granted, tuple(sorted(names)), tuple(sorted(why)))
        for (ctx, ns, grp, res, granted, _), (names, why) in sorted(per_rule.items())
    ]


def kubernetes_roles(permissions: Iterable[Permission]) -> list[dict[str, Any]]:
    """Return one RBAC Role object per (kubeconfig context, namespace)."""
    by_namespace: dict[tuple[str, str], list[KubeRule]] = {}
    for rule in kubernetes_rules(permissions):
        by_namespace.setdefault((rule.context, rule.namespace), []).append(rule)
    roles: list[dict[str, Any]] = []
    for (context, namespace), rules in sorted(by_namespace.items()):
        metadata: dict[str, Any] = {"name": ROLE_NAME, "namespace": namespace}
        if context:
            metadata["annotations"] = {"rotator.io/kubeconfig-context": context}
        roles.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": metadata,
                "rules": [_rule_object(rule) for rule in rules],
            }
        )
    return roles


def _rule_object(rule: KubeRule) -> dict[str, Any]:
    body: dict[str, Any] = {"apiGroups": [rule.group], "resources": [rule.resource]}
    if rule.names:
        body["resourceNames"] = list(rule.names)
    body["verbs"] = list(rule.verbs)
    return body


def _flow(items: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(i) if not i or not _plain(i) else i for i in items) + "]"


def _plain(text: str) -> bool:
    return re.fullmatch(r"[a-z0-9][a-z0-9.-]*", text) is not None


def kubernetes_yaml(permissions: Iterable[Permission]) -> str:
    """Return the Roles as YAML documents, each rule after a comment naming its steps."""
    out: list[str] = [
        "# Kubernetes RBAC for rotator, written by `rotator permissions`: bind each Role to",
        "# rotator's service account with a RoleBinding in the same namespace.",
        "# `rotator check` also creates selfsubjectaccessreviews, which every authenticated",
        "# identity may (the built-in system:basic-user ClusterRole); a Role cannot grant it.",
    ]
    by_namespace: dict[tuple[str, str], list[KubeRule]] = {}
    for rule in kubernetes_rules(permissions):
        by_namespace.setdefault((rule.context, rule.namespace), []).append(rule)
    for (context, namespace), rules in sorted(by_namespace.items()):
        out += ["---", "apiVersion: rbac.authorization.k8s.io/v1", "kind: Role", "metadata:"]
        out += [f"  name: {ROLE_NAME}", f"  namespace: {namespace}"]
        if context:
            out += ["  annotations:", f"    rotator.io/kubeconfig-context: {json.dumps(context)}"]
        out.append("rules:")
        for rule in rules:
            out.append(f"  # {'; '.join(rule.steps)}")
            out.append(f"  - apiGroups: {_flow([rule.group])}")
            out.append(f"    resources: {_flow([rule.resource])}")
            if rule.names:
                out.append(f"    resourceNames: {_flow(rule.names)}")
            out.append(f"    verbs: {_flow(rule.verbs)}")
    return "\n".join(out) + "\n"


# -- documents ------------------------------------------------------------------


def documents(permissions: Iterable[Permission]) -> dict[str, Any]:
    """Return the JSON-ready document of every system something is needed at, in SYSTEMS order.

    ``aws`` is an object, ``vault`` the HCL text, ``azure`` a list of role
    definitions, ``kubernetes`` a list of Role objects.
    """
    kept = list(permissions)
    present = {p.system for p in kept}
    found: dict[str, Any] = {}
    if "aws" in present:
        found["aws"] = aws_policy(kept)
    if "vault" in present:
        found["vault"] = vault_policy(kept)
    if "azure" in present:
        found["azure"] = azure_roles(kept)
    if "kubernetes" in present:
        found["kubernetes"] = kubernetes_roles(kept)
    for system in TOKEN_SYSTEMS:
        if system in present:
            found[system] = token_scopes(system, kept)
    return found


def token_scopes(system: str, permissions: Iterable[Permission]) -> dict[str, Any]:
    """Return a token system's scopes per resource, with the steps needing them, and its notes."""
    by_resource: dict[str, tuple[set[str], set[str]]] = {}
    for p in permissions:
        if p.system == system and p.actions:
            scopes, steps = by_resource.setdefault(p.resource, (set(), set()))
            scopes.update(p.actions)
            steps.add(p.step)
    return {
        "grants": [
            {"resource": resource, "permissions": sorted(scopes), "steps": sorted(steps)}
            for resource, (scopes, steps) in sorted(by_resource.items())
        ],
        "notes": notes(permissions, system),
    }


def _token_text(system: str, permissions: Iterable[Permission]) -> str:
    """Return a token system's scopes as lines a person follows when making the token."""
    document = token_scopes(system, permissions)
    lines = [f"# {TOKEN_SYSTEMS[system]}:"]
    for grant in document["grants"]:
        lines.append(
            f"{grant['resource']}: {', '.join(grant['permissions'])}  # {'; '.join(grant['steps'])}"
        )
    lines += [f"# note: {note}" for note in document["notes"]]
    return "\n".join(lines) + "\n"


def text(system: str, permissions: Iterable[Permission]) -> str:
    """Return one system's document as it is printed: JSON, HCL or YAML, ending in a newline."""
    kept = list(permissions)
    if system == "vault":
        return vault_policy(kept)
    if system == "kubernetes":
        return kubernetes_yaml(kept)
    if system in TOKEN_SYSTEMS:
        return _token_text(system, kept)
    document: Mapping[str, Any] | list[dict[str, Any]]
    document = aws_policy(kept) if system == "aws" else azure_roles(kept)
    return json.dumps(document, indent=2) + "\n"


def summary(system: str, permissions: Iterable[Permission]) -> str:
    """Return a one-line heading for a system's document (printed on stderr)."""
    kept = list(permissions)
    if system == "aws":
        count = len(aws_policy(kept)["Statement"])
        return f"aws: IAM policy, {count} statement(s)"
    if system == "vault":
        return f"vault: ACL policy (HCL), {len(vault_blocks(kept))} path block(s)"
    if system == "azure":
        roles = azure_roles(kept)
        scopes = sum(len(role["AssignableScopes"]) for role in roles)
        return f"azure: {len(roles)} custom role(s), assignable at {scopes} scope(s)"
    if system in TOKEN_SYSTEMS:
        grants = token_scopes(system, kept)["grants"]
        return f"{system}: token permissions on {len(grants)} resource(s)"
    return f"kubernetes: {len(kubernetes_roles(kept))} Role(s)"
