"""How a provider renders the least-privilege document of the outside system it knows.

``rotator permissions`` asks every adapter a policy binds what it needs
(:meth:`rotator.adapters.roles.Adapter.permissions`), groups the answers by
:attr:`~rotator.adapters.roles.Permission.system`, and hands each group to
that system's :class:`PermissionRenderer`: only the provider knows what an
IAM policy, a Vault ACL policy or an RBAC Role looks like. A provider
registers its renderer in the ``rotator.permissions`` entry-point group,
under the system's name::

    [project.entry-points."rotator.permissions"]
    aws = "providers.aws.policy:IamPolicy"

A system whose permissions are a token's scopes per resource (GitHub,
GitLab) needs no format of its own: :class:`TokenScopes` prints them as a
list a person follows when making the token.

Renderers are given only their own system's permissions, and must give the
same bytes for the same permissions in any order (the output is diffed and
reviewed in CI).
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from importlib.metadata import entry_points
from typing import Any, ClassVar

from rotator.adapters.values import Permission, Runtime
from rotator.errors import ConfigError

RENDERER_GROUP = "rotator.permissions"


class PermissionRenderer(ABC):
    """Renders what rotator needs at one outside system as the document that system reads.

    ``document`` is the JSON-ready form (``rotator permissions --json``),
    ``text`` the form printed to be piped where it is applied, ``summary``
    the heading printed above it on stderr.
    """

    #: The system rendered: the ``system`` of the permissions it is given.
    system: ClassVar[str]
    #: Where this system's document is printed among the others: lower first, ties by name.
    order: ClassVar[int] = 100

    @abstractmethod
    def document(self, permissions: Sequence[Permission]) -> Any:
        """Return the document as JSON-ready data (an object, a list or a text)."""

    @abstractmethod
    def text(self, permissions: Sequence[Permission]) -> str:
        """Return the document as it is printed, ending in a newline."""

    @abstractmethod
    def summary(self, permissions: Sequence[Permission]) -> str:
        """Return a one-line heading for the document: what it is, and how much of it."""

    def use_account(self, runtime: Runtime, account: str) -> None:  # noqa: B027 (optional)
        """Record the account id given with ``--account`` where this system's adapters read it.

        A system whose documents name an account (an AWS ARN carries the
        account id) keeps it in ``runtime.cache``, under a key of its own,
        before its adapters are asked what they need; the others ignore it
        (the default).

        Raises:
            ConfigError: ``account`` is not an account id of this system.
        """


class TokenScopes(PermissionRenderer):
    """A token's scopes per resource, with the steps needing them: what GitHub and GitLab grant.

    Permissions without actions (a role the token's user must hold) are
    notes: no scope grants them.
    """

    #: The first line of the printed list: which token, with what.
    heading: ClassVar[str]

    def document(self, permissions: Sequence[Permission]) -> dict[str, Any]:
        """Return ``{"grants": [{resource, permissions, steps}], "notes": [...]}``, sorted."""
        by_resource: dict[str, tuple[set[str], set[str]]] = {}
        for p in permissions:
            if p.system == self.system and p.actions:
                scopes, steps = by_resource.setdefault(p.resource, (set(), set()))
                scopes.update(p.actions)
                steps.add(p.step)
        return {
            "grants": [
                {"resource": resource, "permissions": sorted(scopes), "steps": sorted(steps)}
                for resource, (scopes, steps) in sorted(by_resource.items())
            ],
            "notes": notes(permissions, self.system),
        }

    def text(self, permissions: Sequence[Permission]) -> str:
        """Return the scopes as lines a person follows when making the token."""
        document = self.document(permissions)
        lines = [f"# {self.heading}:"]
        for grant in document["grants"]:
            lines.append(
                f"{grant['resource']}: {', '.join(grant['permissions'])}"
                f"  # {'; '.join(grant['steps'])}"
            )
        lines += [f"# note: {note}" for note in document["notes"]]
        return "\n".join(lines) + "\n"

    def summary(self, permissions: Sequence[Permission]) -> str:
        """Return ``SYSTEM: token permissions on N resource(s)``."""
        grants = self.document(permissions)["grants"]
        return f"{self.system}: token permissions on {len(grants)} resource(s)"


def notes(permissions: Iterable[Permission], system: str) -> list[str]:
    """Return the requirements of ``system`` no document can grant, as ``step: what``, sorted.

    A permission without actions is such a requirement (a Vault token must
    *hold* the policies it gives away): renderers print it as a comment.
    """
    return sorted(
        {f"{p.step}: {p.resource}" for p in permissions if p.system == system and not p.actions}
    )


@functools.cache
def renderers() -> dict[str, PermissionRenderer]:
    """Return the installed renderers by system, in the order their documents are printed.

    Raises:
        ConfigError: an entry point of the group is not a renderer of the
            system it is registered under.
    """
    found: list[PermissionRenderer] = []
    for ep in entry_points(group=RENDERER_GROUP):
        made = ep.load()
        if not (isinstance(made, type) and issubclass(made, PermissionRenderer)):
            raise ConfigError(
                f"entry point {ep.name!r} of {RENDERER_GROUP!r} ({ep.value}) is not a "
                "PermissionRenderer"
            )
        if made.system != ep.name:
            raise ConfigError(
                f"entry point {ep.name!r} of {RENDERER_GROUP!r} ({ep.value}) renders "
                f"{made.system!r}, not {ep.name!r}"
            )
        found.append(made())
    found.sort(key=lambda r: (r.order, r.system))
    return {r.system: r for r in found}
