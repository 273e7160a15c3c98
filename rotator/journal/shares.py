"""Quota shares: how many live runs on one journal pace themselves under each provider quota.

This is invariant 8 of docs/design.md.

A provider's quota is per account and Region, per vault, per Vault server:
every replica of the service and every one-shot run beside them spends the
same one. Each run therefore holds a row of ``quota_shares`` per quota it is
calling under (``QUOTA@SCOPE``, such as ``secretsmanager.write@eu-west-1``)
while one of its rotations is under way, renews it meanwhile (each second,
:data:`rotator.adapters.ratelimit.BEAT`), and paces itself at the quota
divided by the live rows: the ceilings of all live runs add up to the quota.
A row lives :data:`TTL` past its last renewal, so the share of a run that
died returns to the others within that; a dead process of this host is not
counted at all, and a run that ends drops its rows at once, one with no
rotation under way (or that stops calling) at its next renewal
(:mod:`rotator.engine.shares`).

Rows rather than one shared token bucket row: a bucket in the database
would cost a write per provider call (50 a second per Region for Secrets
Manager, from every run), where a share costs one write a second per run
whatever the call rate. The price is that a run that stops needing its
share keeps it until its next renewal (a second at most; within a rotation,
until it has been quiet for :data:`rotator.adapters.ratelimit.IDLE`), that
the others see it gone only at their own next renewal, and that a run
joining is seen by the others only at their next renewal (a second at
most, during which the runs together may exceed the quota by the
newcomer's share; the provider's throttling answers, which cut the pace,
cover it). Expiry times are written by each host's clock, as leases are:
hosts sharing a journal must agree on the time to within a few seconds (a
row dated further ahead than a renewal could date it is not counted).

A scope is an adapter's (a Region, a server's address): one that could carry
credentials (``https://user:password@vault``) or is too long for the column
is stored as a digest under the journal's row key, never as written.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from rotator.clock import Clock
from rotator.journal.database import Database
from rotator.journal.leases import holder_gone
from rotator.journal.schema import quota_shares

#: How long a share lives past its last renewal: a dead run's share returns within it.
#: Several renewals (one a second) and some clock skew between hosts fit in it.
TTL = timedelta(seconds=15)
#: A ``QUOTA@SCOPE`` stored as written: a name, ``@``, a host, Region or URL without userinfo.
_READABLE = re.compile(r"[a-z0-9._-]{1,64}@[A-Za-z0-9._:/\[\]-]{0,120}")


class QuotaShares:
    """The shares of the provider quotas held by the live runs on one journal."""

    def __init__(self, database: Database, clock: Clock) -> None:
        """Keep shares in ``database``, timing them by ``clock``."""
        self.database = database
        self.clock = clock

    def renew(self, owner: str, quotas: Collection[str], ttl: timedelta = TTL) -> dict[str, int]:
        """Hold a share of each of ``quotas`` for ``owner`` (dropping its others); count holders.

        Returns, for each quota given, how many live runs hold a share of it,
        ``owner`` included (so at least 1). Rows expired for longer than
        ``ttl`` are deleted on the way, so the table holds only live runs.
        """
        now = self.clock()
        stored = {self._stored(q): q for q in quotas}
        wanted = sorted(stored)
        with self.database.write() as conn:
            conn.execute(quota_shares.delete().where(quota_shares.c.owner == owner))
            conn.execute(quota_shares.delete().where(quota_shares.c.expires_at < now - ttl))
            if not wanted:
                return {}
            conn.execute(
                quota_shares.insert(),
                [{"quota": q, "owner": owner, "expires_at": now + ttl} for q in wanted],
            )
            rows = conn.execute(
                sa.select(
                    quota_shares.c.quota, quota_shares.c.owner, quota_shares.c.expires_at
                ).where(quota_shares.c.quota.in_(wanted))
            ).all()
        live = Counter(row.quota for row in rows if row.owner == owner or _counted(row, now, ttl))
        return {stored[q]: max(1, live[q]) for q in wanted}

    def count(self, owner: str, quotas: Collection[str], ttl: timedelta = TTL) -> dict[str, int]:
        """Return how many live runs would share each of ``quotas`` with ``owner``, writing nothing.

        For a process that calls providers outside a rotation (a plan, a
        check, the service's watch between passes): it paces at its share
        beside the runs rotating, without holding one, so that together
        they stay at the quota.
        """
        now = self.clock()
        stored = {self._stored(q): q for q in quotas}
        with self.database.read() as conn:
            rows = conn.execute(
                sa.select(quota_shares).where(quota_shares.c.quota.in_(sorted(stored)))
            ).all()
        live = Counter(row.quota for row in rows if row.owner != owner and _counted(row, now, ttl))
        return {q: 1 + live[s] for s, q in stored.items()}

    def _stored(self, quota: str) -> str:
        """Return how ``quota`` is stored: as written, or its scope as a keyed digest."""
        if _READABLE.fullmatch(quota):
            return quota
        name, _, scope = quota.partition("@")
        digest = hmac.new(self.database.keys.row(), scope.encode(), hashlib.sha256).hexdigest()
        return f"{name[:64]}@#{digest[:32]}"

    def release(self, owner: str) -> None:
        """Give back every share ``owner`` holds (its run ended)."""
        with self.database.write() as conn:
            conn.execute(quota_shares.delete().where(quota_shares.c.owner == owner))

    def holders(self) -> dict[str, int]:
        """Return how many live runs hold a share of each quota, as stored."""
        now = self.clock()
        with self.database.read() as conn:
            rows = conn.execute(sa.select(quota_shares)).all()
        return dict(Counter(row.quota for row in rows if _counted(row, now, TTL)))


def _counted(row: Any, now: datetime, ttl: timedelta) -> bool:
    """Tell whether a share row counts: live, and not dated further ahead than a renewal can.

    A row expiring more than two lifetimes from now was not written by a
    renewal on a clock close to this one (a forged row, a host far ahead):
    counting it would slow every run for as long as it says.
    """
    if row.expires_at > now + 2 * ttl:
        return False
    return not holder_gone(row.owner, row.expires_at, now)
