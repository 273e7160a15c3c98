"""The RBAC Roles ``rotator permissions`` prints for Kubernetes: one per namespace.

A ``kubernetes`` permission's resource reads
``[contexts/CTX/]namespaces/NS/RESOURCE[.GROUP][/NAME]``; the verbs asked
for one object add up, and objects of one resource needing the same verbs
share a rule. Each (kubeconfig context, namespace) gets one ``Role``, each
rule after a comment naming the steps it serves. Everything is sorted: the
same permissions give the same bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rotator.adapters import Permission, PermissionRenderer

SYSTEM = "kubernetes"
ROLE_NAME = "rotator"


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
        if p.system == SYSTEM and p.actions:
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


def _by_namespace(permissions: Iterable[Permission]) -> dict[tuple[str, str], list[KubeRule]]:
    """Return the rules per (kubeconfig context, namespace), sorted."""
    by_namespace: dict[tuple[str, str], list[KubeRule]] = {}
    for rule in kubernetes_rules(permissions):
        by_namespace.setdefault((rule.context, rule.namespace), []).append(rule)
    return dict(sorted(by_namespace.items()))


def kubernetes_roles(permissions: Iterable[Permission]) -> list[dict[str, Any]]:
    """Return one RBAC Role object per (kubeconfig context, namespace)."""
    roles: list[dict[str, Any]] = []
    for (context, namespace), rules in _by_namespace(permissions).items():
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
    for (context, namespace), rules in _by_namespace(permissions).items():
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


class RbacRoles(PermissionRenderer):
    """The ``kubernetes`` document: RBAC Roles, printed as YAML (a list of objects in JSON)."""

    system = SYSTEM
    order = 40

    def document(self, permissions: Sequence[Permission]) -> list[dict[str, Any]]:
        """Return the Role objects, one per (kubeconfig context, namespace)."""
        return kubernetes_roles(permissions)

    def text(self, permissions: Sequence[Permission]) -> str:
        """Return the Roles as YAML documents, ready for ``kubectl apply -f -``."""
        return kubernetes_yaml(permissions)

    def summary(self, permissions: Sequence[Permission]) -> str:
        """Return ``kubernetes: N Role(s)``."""
        return f"kubernetes: {len(kubernetes_roles(permissions))} Role(s)"
