"""``rotator permissions`` for databases: the SQL that gives rotator's admin its least privilege.

Each database issuer states what its admin needs as SQL statements
(:meth:`providers.databases.accounts.Accounts.grants`), one
:class:`~rotator.adapters.Permission` per server; these renderers print them
per server, to be run there as a superuser. Each policy's statements keep
their order (a comment belongs to the line after it); the policies' blocks
are sorted and a line already printed is not printed again, so the same
policies give the same bytes in any order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rotator.adapters import Permission, PermissionRenderer


class SqlGrants(PermissionRenderer):
    """SQL statements per server, each server's block headed by a comment naming it."""

    #: What the server is called in the heading (``PostgreSQL``).
    server: ClassVar[str]
    order = 60

    def document(self, permissions: Sequence[Permission]) -> dict[str, Any]:
        """Return ``{"servers": [{server, statements, steps}]}``, in a stable order."""
        by_server: dict[str, tuple[set[tuple[str, ...]], set[str]]] = {}
        for p in permissions:
            if p.system == self.system:
                blocks, steps = by_server.setdefault(p.resource, (set(), set()))
                blocks.add(p.actions)
                steps.add(p.step)
        return {
            "servers": [
                {
                    "server": server,
                    # dict.fromkeys: each line once, where it first comes
                    "statements": list(dict.fromkeys(s for b in sorted(blocks) for s in b)),
                    "steps": sorted(steps),
                }
                for server, (blocks, steps) in sorted(by_server.items())
            ]
        }

    def text(self, permissions: Sequence[Permission]) -> str:
        """Return one SQL script per server, each after a comment saying where to run it."""
        lines: list[str] = []
        for block in self.document(permissions)["servers"]:
            if lines:
                lines.append("")
            lines.append(f"-- {self.server} at {block['server']}: run as a superuser")
            lines += [f"--   needed for {step}" for step in block["steps"]]
            lines += block["statements"]
        return "\n".join(lines) + "\n"

    def summary(self, permissions: Sequence[Permission]) -> str:
        """Return ``SYSTEM: N statement(s) for M server(s)``."""
        servers = self.document(permissions)["servers"]
        count = sum(
            1 for block in servers for line in block["statements"] if not line.startswith("--")
        )
        return f"{self.system}: {count} SQL statement(s) for {len(servers)} server(s)"


class PostgreSqlGrants(SqlGrants):
    """The ``postgresql`` document: CREATEROLE, and ADMIN OPTION on each role (PostgreSQL 16+)."""

    system = "postgresql"
    server = "PostgreSQL"


class MySqlGrants(SqlGrants):
    """The ``mysql`` document: CREATE USER, reading account state, and the clone's grants."""

    system = "mysql"
    server = "MySQL or MariaDB"
