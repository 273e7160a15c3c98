"""The alert outbox: each alert raised, to which notifier, and whether it was delivered.

One row per secret (empty for alerts about no secret), event and notifier,
holding the condition last raised. The same condition is not sent again
until it changes or is cleared; a row not yet delivered is retried. Rows
are sealed: an alert marked sent, given up on, pre-raised or reworded
outside rotator fails its seal and is sent again as rotator raised it.
"""

from __future__ import annotations

from collections.abc import Collection
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from rotator.clock import Clock
from rotator.errors import JournalError
from rotator.journal.database import Database
from rotator.journal.records import AlertRow, alert_intact, alert_seal
from rotator.journal.schema import alerts

#: The rows of some events of one secret (parameters: secret, and the expanding events).
_OF_EVENTS = (
    alerts.c.secret == sa.bindparam("secret"),
    alerts.c.event.in_(sa.bindparam("events", expanding=True)),
)
_ANY_RAISED = sa.select(alerts.c.event).where(*_OF_EVENTS).limit(1)
_CLEAR = alerts.delete().where(*_OF_EVENTS)


class AlertOutbox:
    """The alerts of one journal: raised, attempted, cleared."""

    def __init__(self, database: Database, clock: Clock) -> None:
        """Keep the alerts in ``database``, timing them by ``clock``."""
        self.database = database
        self.clock = clock

    def rows(
        self, secret: str | None = None, event: str | None = None, *, unsent: bool = False
    ) -> list[AlertRow]:
        """Return the alerts raised (of one secret and event, or only those not delivered)."""
        query = sa.select(alerts)
        if secret is not None:
            query = query.where(alerts.c.secret == secret)
        if event is not None:
            query = query.where(alerts.c.event == event)
        with self.database.read() as conn:
            rows = conn.execute(query.order_by(alerts.c.raised_at)).all()
        key = self.database.keys.row_if_present()
        found = [
            AlertRow(
                **{k: v for k, v in row._asdict().items() if k != "seal"},
                intact=key is None or alert_intact(key, row),
            )
            for row in rows
        ]
        # A row marked sent by someone other than rotator was never sent.
        return [a for a in found if a.sent_at is None or not a.intact] if unsent else found

    def raised(self, secret: str, event: str, notifier: str, condition: str, payload: str) -> bool:
        """Record that an alert is to be sent; False if this condition was raised already."""
        values: dict[str, Any] = {
            "condition": condition,
            "raised_at": self.clock(),
            "sent_at": None,
            "attempts": 0,
            "last_error": None,
            "payload": payload,
        }
        values["seal"] = alert_seal(
            self.database.keys.row(),
            SimpleNamespace(secret=secret, event=event, notifier=notifier, **values),
        )
        key = (alerts.c.secret == secret, alerts.c.event == event, alerts.c.notifier == notifier)
        try:
            with self.database.write() as conn:
                changed = conn.execute(
                    alerts.update().where(*key, alerts.c.condition != condition).values(**values)
                ).rowcount
                if changed:
                    return True
                row = conn.execute(sa.select(alerts).where(*key)).first()
                if row is not None and alert_intact(self.database.keys.row(), row):
                    return False
                if row is not None:  # raised by someone else than rotator: raise it for real
                    conn.execute(alerts.update().where(*key).values(**values))
                    return True
                conn.execute(
                    alerts.insert().values(secret=secret, event=event, notifier=notifier, **values)
                )
                return True
        except JournalError as exc:
            if isinstance(exc.__context__, IntegrityError):
                return False  # another process raised it at the same moment
            raise

    def attempted(
        self,
        row: AlertRow,
        *,
        delivered: bool,
        error: str | None = None,
        replaced: str | None = None,
    ) -> None:
        """Record one delivery attempt of a raised alert (if its condition is still the same).

        ``replaced`` is the payload sent instead of a row's that failed its
        seal: it is kept, and the attempts counted afresh.
        """
        sent = self.clock() if delivered else None
        key = (
            alerts.c.secret == row.secret,
            alerts.c.event == row.event,
            alerts.c.notifier == row.notifier,
            alerts.c.condition == row.condition,
        )
        with self.database.write() as conn:
            found = conn.execute(sa.select(alerts).where(*key)).first()
            if found is None:
                return  # cleared, or raised again for another condition, meanwhile
            changes: dict[str, Any] = {"sent_at": sent, "attempts": found.attempts + 1}
            if replaced is not None:
                changes |= {"payload": replaced, "attempts": 1}
            seal = alert_seal(
                self.database.keys.row(), SimpleNamespace(**(found._asdict() | changes))
            )
            conn.execute(alerts.update().where(*key).values(**changes, last_error=error, seal=seal))

    def cleared(self, secret: str, events: Collection[str]) -> int:
        """Forget the conditions of these events (they ended): the next one is sent again.

        Looked for first: every successful rotation clears its secret's
        failure conditions, and there is seldom one to clear, so the write
        (which waits its turn for the journal's write lock) is made only
        when a row is there. A row raised by another process after the look
        is as if raised after the clear.
        """
        params = {"secret": secret, "events": list(events)}
        with self.database.read() as conn:
            if conn.execute(_ANY_RAISED, params).first() is None:
                return 0
        with self.database.write() as conn:
            return int(conn.execute(_CLEAR, params).rowcount)
