"""Credential usage: when an issuer last saw each credential used, as last checked.

The engine asks the issuer, while it watches a secret, when its credentials
(the current one, an old one in its grace or revoked) were last used, and
records the answer here; ``rotator status`` shows it.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from rotator.clock import Clock
from rotator.errors import JournalError
from rotator.journal.database import Database, in_chunks
from rotator.journal.records import Usage
from rotator.journal.schema import usage


class CredentialUsage:
    """What one journal remembers of each credential's last use, by secret and ref."""

    def __init__(self, database: Database, clock: Clock) -> None:
        """Keep usage in ``database``, noting when it was checked by ``clock``."""
        self.database = database
        self.clock = clock

    def record(self, secret: str, ref: str, last_used: datetime | None) -> None:
        """Remember when the issuer last saw credential ``ref`` used (checked now)."""
        now = self.clock()
        key = (usage.c.secret == secret, usage.c.ref == ref)
        try:
            with self.database.write() as conn:
                updated = conn.execute(
                    usage.update().where(*key).values(last_used=last_used, checked_at=now)
                ).rowcount
                if updated == 0:
                    conn.execute(
                        usage.insert().values(
                            secret=secret, ref=ref, last_used=last_used, checked_at=now
                        )
                    )
        except JournalError as exc:
            # Another process recorded it at the same moment: theirs stands.
            if not isinstance(exc.__context__, IntegrityError):
                raise

    def of(self, names: Collection[str] | None = None) -> dict[tuple[str, str], Usage]:
        """Return what is known of each credential's last use, by (secret, ref)."""
        query = sa.select(usage)
        found: dict[tuple[str, str], Usage] = {}
        with self.database.read() as conn:
            for chunk in in_chunks(names):
                q = query if chunk is None else query.where(usage.c.secret.in_(chunk))
                for row in conn.execute(q):
                    found[row.secret, row.ref] = Usage(row.last_used, row.checked_at)
        return found
