"""The journal: every rotation's progress, durable, on SQLite or PostgreSQL.

:class:`Journal` opens the database (:mod:`.database`, with the schema of
:mod:`.schema`) and holds the rotations and their events: it creates a
rotation, moves it along the lifecycle (:meth:`Journal.advance`, checked by
:func:`rotator.lifecycle.destination`), records what happened on the way,
and reads it all back. Each of those writes is fenced by the secret's lease
(:mod:`.leases`) and appends its record to the audit trail (:mod:`.trail`)
in the same transaction. The other parts are attributes with their own
names: ``journal.leases``, ``journal.trail``, ``journal.tampering``,
``journal.alerts`` (the outbox), ``journal.usage`` and ``journal.shares``
(the runs' shares of provider quotas).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rotator.adapters.secret import SecretValue
from rotator.clock import Clock
from rotator.errors import JournalError, JournalTampered
from rotator.journal.audit import AuditAction, AuditRecord, Tampering, named, seal_row
from rotator.journal.database import Database, Snapshot, in_chunks
from rotator.journal.leases import Leases
from rotator.journal.outbox import AlertOutbox
from rotator.journal.records import Event, Rotation, SecretSummary, rotation_values
from rotator.journal.rows import identity, raw_rows, rotation_decoder, time_decoder
from rotator.journal.schema import UTCDateTime, events, rotations
from rotator.journal.shares import QuotaShares
from rotator.journal.tampering import TamperChecks
from rotator.journal.trail import Trail
from rotator.journal.usage import CredentialUsage
from rotator.journal.verified import VerifiedContent
from rotator.lifecycle import STEP_OF, TERMINAL, State, Step, Transition, destination

#: The audit action of a rotation's start, by its trigger.
_TRIGGER_ACTIONS = {
    "schedule": AuditAction.SCHEDULED,
    "manual": AuditAction.MANUAL,
    "emergency": AuditAction.EMERGENCY,
}

# The statements every step sends, built once: building one (and its cache
# key) from literal values on each write cost more than running it. Their
# parameters name the columns written and, prefixed ``read_``, the row as read.
_INSERT_ROTATION = rotations.insert()
_INSERT_EVENT = events.insert()
#: Writes a rotation by id (parameters: read_id and the columns).
_UPDATE_ROTATION = rotations.update().where(rotations.c.id == sa.bindparam("read_id"))
#: Writes a rotation still in the state it was read in (adds read_state).
_UPDATE_AS_READ = _UPDATE_ROTATION.where(rotations.c.state == sa.bindparam("read_state"))
#: The same, the row's seal also unchanged since read (adds read_seal).
_UPDATE_AS_READ_SEALED = _UPDATE_AS_READ.where(rotations.c.seal == sa.bindparam("read_seal"))
_UNFINISHED = rotations.c.state.not_in([s.value for s in TERMINAL])
#: Unfinished rotations, oldest first: of every secret, and of one (parameter: secret).
_OPEN = sa.select(rotations).where(_UNFINISHED).order_by(rotations.c.created_at, rotations.c.id)
_OPEN_OF = _OPEN.where(rotations.c.secret == sa.bindparam("secret"))


def _summary_queries(filtered: bool) -> tuple[sa.Select[Any], ...]:
    """Build the reads of Journal.summaries: last success, latest rotation, failures, open.

    ``filtered``: each is limited to the secrets of the expanding parameter ``names``.
    """

    def only(query: sa.Select[Any]) -> sa.Select[Any]:
        if not filtered:
            return query
        return query.where(rotations.c.secret.in_(sa.bindparam("names", expanding=True)))

    last_success = only(
        sa.select(rotations.c.secret, sa.func.max(rotations.c.promoted_at).label("at"))
        .where(rotations.c.promoted_at.is_not(None))
        .group_by(rotations.c.secret)
    )
    latest_id = only(
        sa.select(rotations.c.secret, sa.func.max(rotations.c.created_at).label("at")).group_by(
            rotations.c.secret
        )
    ).subquery()
    latest = sa.select(rotations).join(
        latest_id,
        sa.and_(
            rotations.c.secret == latest_id.c.secret,
            rotations.c.created_at == latest_id.c.at,
        ),
    )
    succeeded = rotations.alias("succeeded")
    since_success = (
        sa.select(sa.func.max(succeeded.c.promoted_at))
        .where(succeeded.c.secret == rotations.c.secret)
        .scalar_subquery()
    )
    streaks = only(
        sa.select(rotations.c.secret, sa.func.count().label("n"))
        .where(
            rotations.c.state == State.ROLLED_BACK.value,
            sa.or_(since_success.is_(None), rotations.c.created_at > since_success),
        )
        .group_by(rotations.c.secret)
    )
    return last_success, latest, streaks, only(_OPEN)


#: The reads of Journal.summaries, built once: for every secret (False), for ``names`` (True).
_SUMMARY_QUERIES = {False: _summary_queries(False), True: _summary_queries(True)}


class Journal:
    """The durable record of rotations and their steps, and the parts kept beside them."""

    def __init__(
        self,
        url: str,
        clock: Clock,
        *,
        key_file: str | Path | None = None,
        actor: str = "rotator",
        sink: Callable[[AuditRecord], None] | None = None,
    ) -> None:
        """Open the journal at ``url`` (nothing is created until :meth:`migrate`).

        ``actor`` is who the audit records name as having acted (``service``,
        ``operator:NAME``...); ``sink`` is told of every audit record once its
        transaction committed (the JSONL sink).
        """
        self.url = url
        self.clock = clock
        self.database = Database(url, key_file=key_file, sink=sink)
        #: The leases that keep two runs off one secret (invariant 4 of docs/design.md).
        self.leases = Leases(self.database, clock)
        #: The checks of every row against its seal and the trail.
        self.tampering = TamperChecks(self.database)
        #: The audit trail: appended with every step, verified, accepted.
        self.trail = Trail(self.database, clock, actor, self.tampering)
        #: The content last found intact, so that an unchanged journal is not checked again.
        self.verified = VerifiedContent(self.database, clock)
        #: The alert outbox.
        self.alerts = AlertOutbox(self.database, clock)
        #: When each credential was last seen used.
        self.usage = CredentialUsage(self.database, clock)
        #: Each live run's share of the provider quotas it calls under.
        self.shares = QuotaShares(self.database, clock)

    @property
    def actor(self) -> str:
        """Who the audit records name as having acted."""
        return self.trail.actor

    def describe(self) -> str:
        """Return the journal's URL with any password hidden."""
        return self.database.describe()

    def exists(self) -> bool:
        """Tell whether the journal has been created (plan must not create it)."""
        return self.database.exists()

    def migrate(self) -> int:
        """Apply every pending migration; return the schema version now in place."""
        return self.database.migrate(self.clock)

    def close(self) -> None:
        """Release the connection pool."""
        self.database.close()

    def fingerprint(self, value: SecretValue) -> str:
        """Return a keyed fingerprint of a value (HMAC-SHA256, 16 bytes, hex)."""
        return self.database.keys.fingerprint(value)

    # -- rotations -----------------------------------------------------------

    def create(self, rotation: Rotation, detail: str | None = None) -> Rotation:
        """Record a new rotation (in state ``planned``) and its first event."""
        values = rotation_values(rotation, self.database.keys.row())
        with self.database.write() as conn:
            self.leases.fence(conn, rotation.secret)
            conn.execute(_INSERT_ROTATION, values)
            self._event(conn, rotation, "plan", "ok", None, rotation.state, detail, values["seal"])
        return replace(rotation, seal=values["seal"])

    def advance(
        self,
        rotation: Rotation,
        transition: Transition,
        detail: str | None = None,
        *,
        step: Step | None = None,
        **changes: Any,
    ) -> Rotation:
        """Move a rotation by ``transition`` to where the lifecycle table says, and record it.

        The audit record's action is the transition's own word. ``step`` names
        the step the event belongs to when it is not the transition's own (a
        rollback starts in the step that failed).

        Raises:
            TransitionError: the lifecycle table holds no such move from the rotation's state.
            JournalTampered: the rotation's row failed its seal.
            JournalError: another run changed the rotation since it was read.
        """
        to = destination(rotation.state, transition)
        now = self.clock()
        # A step that succeeds clears the last error, except on the way to a
        # rollback, whose reason is the error.
        keep = rotation.error if to in (State.ROLLING_BACK, State.ROLLED_BACK) else None
        new = replace(rotation, state=to, updated_at=now, **{"error": keep, **changes})
        if to in TERMINAL and new.finished_at is None:
            new = replace(new, finished_at=now)
        self._refuse_tampered(rotation)
        values = rotation_values(new, self.database.keys.row())
        with self.database.write() as conn:
            self.leases.fence(conn, rotation.secret)
            result = conn.execute(*self._as_read(rotation, values))
            if result.rowcount != 1:
                raise JournalError(
                    f"rotation {rotation.id} is no longer {rotation.state}: changed by another run"
                )
            self._event(
                conn,
                new,
                step or STEP_OF[transition],
                "ok",
                rotation.state,
                to,
                detail,
                values["seal"],
                action=transition.value,
            )
        return replace(new, seal=values["seal"])

    def record(
        self, rotation: Rotation, step: str, outcome: str, detail: str | None, **changes: Any
    ) -> Rotation:
        """Record an event without a state change (a retry, a failure, a fact learnt)."""
        now = self.clock()
        error = detail if outcome == "error" else rotation.error
        new = replace(rotation, updated_at=now, error=error, **changes)
        self._refuse_tampered(rotation)
        values = rotation_values(new, self.database.keys.row())
        with self.database.write() as conn:
            self.leases.fence(conn, rotation.secret)
            conn.execute(_UPDATE_ROTATION, {**values, "read_id": rotation.id})
            state = rotation.state
            self._event(conn, rotation, step, outcome, state, state, detail, values["seal"])
        return replace(new, seal=values["seal"])

    @staticmethod
    def _as_read(rotation: Rotation, values: dict[str, Any]) -> tuple[sa.Update, dict[str, Any]]:
        """The update writing ``values`` only if the row is as read (state, and seal if known)."""
        params = {**values, "read_id": rotation.id, "read_state": rotation.state.value}
        if rotation.seal is None:
            return _UPDATE_AS_READ, params
        return _UPDATE_AS_READ_SEALED, {**params, "read_seal": rotation.seal}

    @staticmethod
    def _refuse_tampered(rotation: Rotation) -> None:
        """Raise JournalTampered rather than build on a row that failed its seal."""
        if not rotation.intact:
            raise JournalTampered(
                f"rotation {rotation.id} of {rotation.secret}: its journal row does not match "
                "its seal (edited outside rotator); nothing is done on the strength of it",
                secret=rotation.secret,
            )

    def _event(
        self,
        conn: Connection,
        rotation: Rotation,
        step: str,
        outcome: str,
        src: State | None,
        dst: State | None,
        detail: str | None,
        row_seal: str,
        *,
        action: str | None = None,
    ) -> None:
        """Insert an event and its audit record; ``action`` is the transition's word, if any."""
        at = self.clock()
        row: dict[str, Any] = {
            "rotation_id": rotation.id,
            "secret": rotation.secret,
            "at": at,
            "step": step,
            "outcome": outcome,
            "state_from": src.value if src else None,
            "state_to": dst.value if dst else None,
            "detail": detail,
        }
        # Sealed without its id (the database assigns it): the audit record
        # below names the id, which binds the two.
        event_seal = seal_row(self.database.keys.row(), "events", row)
        inserted = conn.execute(_INSERT_EVENT, {**row, "seal": event_seal}).inserted_primary_key
        assert inserted is not None  # an INSERT of one row always has its key
        event_id = inserted[0]
        if action is None:
            action = _event_action(rotation.trigger, outcome, src)
        self.trail.append(
            conn,
            AuditRecord(
                seq=0,
                at=at,
                actor=self.actor,
                action=action,
                outcome=outcome,
                secret=rotation.secret,
                rotation_id=rotation.id,
                step=step,
                reason=rotation.reason,
                detail=detail,
                old_ref=rotation.old_ref,
                new_ref=rotation.new_ref,
                old_fingerprint=rotation.old_fingerprint,
                new_fingerprint=rotation.new_fingerprint,
                row_seal=row_seal,
                event_id=int(event_id),
                event_seal=event_seal,
            ),
        )

    # -- reading -------------------------------------------------------------

    def get(self, rotation_id: str) -> Rotation | None:
        """Return one rotation by id."""
        with self.database.read() as conn:
            found = self._rotations(conn, sa.select(rotations).where(rotations.c.id == rotation_id))
        return found[0] if found else None

    def open_rotations(self, secret: str | None = None) -> list[Rotation]:
        """Return unfinished rotations (oldest first), optionally of one secret."""
        query, params = (_OPEN, {}) if secret is None else (_OPEN_OF, {"secret": secret})
        with self.database.read() as conn:
            return self._rotations(conn, query, params)

    def checked_open_rotations(self, secret: str) -> tuple[tuple[Tampering, ...], list[Rotation]]:
        """Check one secret's rows and return its unfinished rotations, both from one snapshot.

        What a run reads first once it holds the secret's lease: what
        :meth:`TamperChecks.find` finds for the secret (nothing may be done
        while it finds anything) and the rotations to finish, the ones the
        check just passed, in one read instead of two; none when it finds
        anything (nothing is done for the secret, and an edited row may hold
        what no Rotation is read from).
        """
        with self.database.snapshot() as state:
            found = self.tampering.find_if_sealed(state.conn, secret)
            if found:  # not acted on: nor read, which an edited row may not be
                return found, []
            return found, self._rotations(state.conn, _OPEN_OF, {"secret": secret})

    def snapshot(self) -> AbstractContextManager[Snapshot]:
        """Open a read of one state of the journal: a check reads all it checks in one."""
        return self.database.snapshot()

    def summaries(
        self, secret: str | None = None, *, names: Collection[str] | None = None
    ) -> dict[str, SecretSummary]:
        """Return each known secret's last success and open rotations (all, one, or ``names``).

        Four queries whatever the number of secrets (per 500 ``names``), so
        ``plan`` and ``run --once`` over thousands of policies stay fast.
        Each rotation row is checked against its seal as it is read.
        """
        if secret is not None:
            names = [secret]
        if names is None:
            return self._summaries(None)
        found: dict[str, SecretSummary] = {}
        for chunk in in_chunks(names):
            found.update(self._summaries(chunk))
        return found

    def _summaries(self, names: list[str] | None) -> dict[str, SecretSummary]:
        """Read the summaries of ``names`` (None: every secret) in one read, each row sealed."""
        last_success, latest, streaks, open_query = _SUMMARY_QUERIES[names is not None]
        params = {} if names is None else {"names": names}
        key = self.database.keys.row_if_present()
        with self.database.read() as conn:
            # Raw rows, decoded column by column: a row object per rotation
            # cost more than checking its seal (rotator/journal/rows.py).
            decode = rotation_decoder(conn.dialect, key)
            when = time_decoder(conn.dialect)
            # Each read to its end (a list) before any row is decoded: a
            # decoding that raises leaves no result open behind it.
            latest_rows = list(raw_rows(conn, latest, params))
            if not latest_rows:
                # No rotation of these secrets at all (in this read): nothing
                # else to find (a secret never rotated, the common case at first).
                return {}
            success_rows = list(raw_rows(conn, last_success, params))
            streak_rows = list(raw_rows(conn, streaks, params))
            open_rows = list(raw_rows(conn, open_query, params))
        unreadable: dict[str, str] = {}
        last = {r.secret: r for r in _readable(decode, latest_rows, unreadable)}
        successes: dict[str, datetime] = {}
        for secret, at in success_rows:
            if type(secret) is not str:  # bytes SQLite kept: its rotation is named unreadable
                continue
            try:
                successes[secret] = when(at)
            except JournalTampered:  # SQLite keeps any value anywhere (schema.UTCDateTime)
                unreadable.setdefault(
                    secret,
                    f"the last promoted_at of {secret}'s rotations holds no time; a row was "
                    "edited outside rotator (`rotator audit verify`)",
                )
        failures = {secret: int(n) for secret, n in streak_rows if type(secret) is str}
        open_by_secret: dict[str, list[Rotation]] = {}
        for rotation in _readable(decode, open_rows, unreadable):
            open_by_secret.setdefault(rotation.secret, []).append(rotation)
        return {
            name: SecretSummary(
                successes.get(name),
                last.get(name),
                open_by_secret.get(name, []),
                failures.get(name, 0),
                unreadable.get(name),
            )
            for name in set(successes) | set(last) | set(unreadable)
        }

    def latest_change(self) -> datetime | None:
        """Return when any rotation last changed (None for an empty journal)."""
        with self.database.read() as conn:
            try:
                at = conn.execute(sa.select(sa.func.max(rotations.c.updated_at))).scalar()
            except JournalTampered:  # a value SQLite sorts after every time: none known
                return None
            return UTCDateTime().process_result_value(at, conn.dialect)

    def changed_since(self, since: datetime | None) -> list[tuple[str, datetime | None]]:
        """Return (secret, when) for every rotation changed after ``since`` (all if None).

        The service calls this on every pass to notice rotations made by
        other processes (a one-shot run, ``rotator rotate`` by hand).
        Indexed: cheap when little changed. ``when`` is None for a row whose
        time is no time (edited outside rotator): its secret is still named,
        to be planned again, and set aside, from its rows.
        """
        query = sa.select(rotations.c.secret, rotations.c.updated_at)
        if since is not None:
            query = query.where(rotations.c.updated_at > since)
        changed: list[tuple[str, datetime | None]] = []
        with self.database.read() as conn:
            when = time_decoder(conn.dialect)
            for secret, at in list(raw_rows(conn, query)):
                try:
                    changed.append((named(secret), when(at)))
                except JournalTampered:
                    changed.append((named(secret), None))
        return changed

    def rotations_of(
        self, names: Collection[str] | None = None
    ) -> tuple[dict[str, list[Rotation]], dict[str, str]]:
        """Return every rotation (oldest first) of every secret, or of ``names``, without events.

        And, apart, the secrets with a row no Rotation is read from, each with
        why (JournalTampered's words): their rotations are left out, the
        others' are all there.
        """
        found: dict[str, list[Rotation]] = {}
        unreadable: dict[str, str] = {}
        query = sa.select(rotations).order_by(rotations.c.created_at, rotations.c.id)
        with self.database.read() as conn:
            decode = rotation_decoder(conn.dialect, self.database.keys.row_if_present())
            for chunk in in_chunks(names):
                q = query if chunk is None else query.where(rotations.c.secret.in_(chunk))
                for rotation in _readable(decode, list(raw_rows(conn, q)), unreadable):
                    found.setdefault(rotation.secret, []).append(rotation)
        for secret in unreadable:
            found.pop(secret, None)
        return found, unreadable

    def history(self, secret: str) -> list[tuple[Rotation, list[Event]]]:
        """Return every rotation of a secret (oldest first) with its events."""
        with self.database.read() as conn:
            found = self._rotations(
                conn,
                sa.select(rotations)
                .where(rotations.c.secret == secret)
                .order_by(rotations.c.created_at, rotations.c.id),
            )
            evs = conn.execute(
                sa.select(events).where(events.c.secret == secret).order_by(events.c.id)
            ).all()
        by_rotation: dict[str, list[Event]] = {}
        for e in evs:
            by_rotation.setdefault(e.rotation_id, []).append(
                Event(e.at, e.step, e.outcome, e.state_from, e.state_to, e.detail)
            )
        return [(r, by_rotation.get(r.id, [])) for r in found]

    def _rotations(
        self, conn: Connection, query: sa.Select[Any], params: dict[str, Any] | None = None
    ) -> list[Rotation]:
        """Read ``query``'s ``rotations`` rows to their end, then decode each, its seal checked.

        Raises JournalTampered, naming the rotation, for a row no Rotation
        can be read from (rotator/journal/rows.py).
        """
        rows = list(raw_rows(conn, query, params))
        return list(map(rotation_decoder(conn.dialect, self.database.keys.row_if_present()), rows))


def _readable(
    decode: Callable[[Sequence[Any]], Rotation],
    rows: list[Sequence[Any]],
    unreadable: dict[str, str],
) -> Iterator[Rotation]:
    """Decode each row; one no Rotation is read from goes to ``unreadable``, for its secret."""
    for row in rows:
        try:
            yield decode(row)
        except JournalTampered as exc:
            unreadable.setdefault(exc.secret or named(identity(row).secret), str(exc))


def _event_action(trigger: str, outcome: str, src: State | None) -> str:
    """Name, in the audit trail's words, an event that moved nothing: a start, a fact, a retry."""
    if src is None:
        return _TRIGGER_ACTIONS.get(trigger, AuditAction.MANUAL).value
    return (AuditAction.INVENTORY if outcome == "info" else AuditAction.STEP).value
