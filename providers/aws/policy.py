"""The IAM policy ``rotator permissions`` prints for AWS: one statement per step.

Each statement's ``Sid`` is its step in CamelCase (``store: write pending``
is ``StoreWritePending``), with its actions and the exact resources that
step touches, so an operator reading an AccessDenied knows from the action
which step needs it. Where IAM cannot name a resource before it exists (an
API Gateway key's id), the statement carries the adapter's conditions
instead (the key's tags). Everything is sorted: the same permissions give
the same bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from providers.aws.permissions import ACCOUNT_ID, AWS_ACCOUNT
from rotator.adapters import Permission, PermissionRenderer, Runtime
from rotator.errors import ConfigError

SYSTEM = "aws"
IAM_VERSION = "2012-10-17"
_SID_WORD = re.compile(r"[A-Za-z0-9]+")

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
    make another grant. Requirements with no actions are left out.
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


def sid_of(step: str) -> str:
    """Return an IAM statement id for a step: its words in CamelCase (``StoreWritePending``)."""
    words = _SID_WORD.findall(step)
    return "".join(w[:1].upper() + w[1:] for w in words) or "Step"


def aws_policy(permissions: Iterable[Permission]) -> dict[str, Any]:
    """Return the IAM policy document: one statement per step and action set, by ``Sid``."""
    statements: list[dict[str, Any]] = []
    taken: set[str] = set()
    for grant in grants(permissions, SYSTEM):
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


class IamPolicy(PermissionRenderer):
    """The ``aws`` document: an IAM policy, printed as JSON; ``--account`` names its account."""

    system = SYSTEM
    order = 10

    def document(self, permissions: Sequence[Permission]) -> dict[str, Any]:
        """Return the IAM policy document."""
        return aws_policy(permissions)

    def text(self, permissions: Sequence[Permission]) -> str:
        """Return the IAM policy as indented JSON."""
        return json.dumps(aws_policy(permissions), indent=2) + "\n"

    def summary(self, permissions: Sequence[Permission]) -> str:
        """Return ``aws: IAM policy, N statement(s)``."""
        count = len(aws_policy(permissions)["Statement"])
        return f"aws: IAM policy, {count} statement(s)"

    def use_account(self, runtime: Runtime, account: str) -> None:
        """Give the AWS adapters the account id their ARNs carry (STS is then not asked).

        Raises:
            ConfigError: ``account`` is not 12 digits.
        """
        if not ACCOUNT_ID.match(account):
            raise ConfigError("an AWS account id is 12 digits")
        runtime.cache[AWS_ACCOUNT] = account
