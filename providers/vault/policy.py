"""The ACL policy ``rotator permissions`` prints for Vault, in HCL.

One ``path`` block per path, with the union of the capabilities the steps
need there, each after a comment naming those steps and what each needs. A
requirement no path block can grant (a token must *hold* the policies it
gives away without ``sudo``) is a ``# NOTE`` line. Everything is sorted: the
same permissions give the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rotator.adapters import Permission, PermissionRenderer, notes

SYSTEM = "vault"
#: Vault capabilities in the order Vault's own documentation lists them.
_CAPABILITY_ORDER = ("create", "read", "update", "patch", "delete", "list", "sudo", "deny")


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
        if p.system == SYSTEM and p.actions:
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
    lines += [f"# NOTE {note}" for note in notes(kept, SYSTEM)]
    for block in vault_blocks(kept):
        caps = ", ".join(json.dumps(c) for c in block.capabilities)
        lines.append("")
        lines.append(f"# {'; '.join(block.steps)}")
        lines.append(f"path {json.dumps(block.path)} {{ capabilities = [{caps}] }}")
    return "\n".join(lines) + "\n"


class VaultPolicy(PermissionRenderer):
    """The ``vault`` document: an ACL policy in HCL (its JSON form is the same text)."""

    system = SYSTEM
    order = 20

    def document(self, permissions: Sequence[Permission]) -> str:
        """Return the HCL text (``vault policy write`` reads nothing else)."""
        return vault_policy(permissions)

    def text(self, permissions: Sequence[Permission]) -> str:
        """Return the HCL text."""
        return vault_policy(permissions)

    def summary(self, permissions: Sequence[Permission]) -> str:
        """Return ``vault: ACL policy (HCL), N path block(s)``."""
        return f"vault: ACL policy (HCL), {len(vault_blocks(permissions))} path block(s)"
