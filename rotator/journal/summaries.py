"""Every secret's summary, found in the one pass that digests an unchanged journal.

A run that acts on nothing (``run --once`` from cron, with nothing due)
spent as much time reading the secrets' summaries (four queries, a seal per
row: :meth:`rotator.journal.journal.Journal.summaries`) as checking the
journal, which reads every ``rotations`` row anyway to digest it
(:mod:`rotator.journal.verified`). :class:`RotationScan` is handed those
raw rows as they are read, keeps what the four queries select, and decodes
only the rows a summary holds.

Its answer stands only when that pass found the journal exactly as a full
check found it intact: each row read is then a row whose seal was checked,
and is returned with ``intact`` true without sealing it again. Otherwise
the caller asks :meth:`Journal.summaries`, which checks each seal.

Raw values are compared as the database compares them in those queries
(text on SQLite, where times are stored in one sortable form; timestamps on
PostgreSQL). Where two rotations of a secret were created at the same
instant, the one with the greater id is the latest: the queries leave that
tie to the order the rows come in.
"""

from __future__ import annotations

import hashlib
import hmac
import marshal
from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol

import sqlalchemy as sa

from rotator.journal.audit import seal_row
from rotator.journal.records import ROTATION_FIELDS, Rotation, SecretSummary, rotation_from
from rotator.journal.schema import rotations
from rotator.lifecycle import TERMINAL, State

_COLUMN = {column.name: i for i, column in enumerate(rotations.columns)}
_ID, _SECRET, _STATE = _COLUMN["id"], _COLUMN["secret"], _COLUMN["state"]
_CREATED, _PROMOTED, _SEAL = _COLUMN["created_at"], _COLUMN["promoted_at"], _COLUMN["seal"]
_FINISHED = frozenset(state.value for state in TERMINAL)
_ROLLED_BACK = State.ROLLED_BACK.value


def raw_bytes(rows: Sequence[Any]) -> bytes:
    """Return bytes that only raw rows (a list or a tuple of them) of this content give.

    ``marshal`` (format 2, which has no back-references) where it can: its
    bytes decode to one content only. Rows holding a value it cannot write
    (PostgreSQL's times) are written with ``repr``, unambiguous for
    strings, numbers and times, and tagged apart.
    """
    try:
        return b"m" + marshal.dumps(rows if isinstance(rows, list | tuple) else list(rows), 2)
    except ValueError:  # a value marshal cannot write, such as a datetime
        return b"r" + repr(rows).encode()


def row_print(row: Sequence[Any]) -> bytes:
    """Return the BLAKE2b digest of one raw row's whole content, its seal included."""
    return hashlib.blake2b(raw_bytes(row)).digest()


class RowReader(Protocol):
    """What is handed the raw ``rotations`` rows as a check reads them."""

    def feed(self, rows: Sequence[Sequence[Any]], dialect: sa.Dialect) -> None:
        """Take ``rows``: raw driver rows of every ``rotations`` column, in the table's order."""


class IntactRows:
    """The prints of the ``rotations`` rows a check found intact, so none is sealed again.

    For the service's first pass, which reads the summaries a chunk at a
    time after the check: a row read then whose whole content (its seal
    included) is one the check found intact has a valid seal, as checking it
    would find; any other row is checked. 32 bytes a row, not the rows.
    """

    def __init__(self) -> None:
        """Start with no row seen."""
        self.prints: set[bytes] = set()

    def feed(self, rows: Sequence[Sequence[Any]], dialect: sa.Dialect) -> None:
        """Take ``rows`` (see :class:`RowReader`)."""
        self.prints.update(map(row_print, rows))


class RotationScan:
    """The summaries of every secret, from raw ``rotations`` rows fed in any order."""

    def __init__(self) -> None:
        """Start with no row seen."""
        self._dialect: sa.Dialect | None = None
        self._latest: dict[str, Sequence[Any]] = {}
        self._promoted: dict[str, Any] = {}
        self._rolled_back: dict[str, list[Any]] = {}
        self._open: list[Sequence[Any]] = []

    def feed(self, rows: Sequence[Sequence[Any]], dialect: sa.Dialect) -> None:
        """Take ``rows``: raw driver rows of every ``rotations`` column, in the table's order."""
        self._dialect = dialect
        latest, promoted = self._latest, self._promoted
        for row in rows:
            secret = row[_SECRET]
            seen = latest.get(secret)
            if seen is None or (row[_CREATED], row[_ID]) > (seen[_CREATED], seen[_ID]):
                latest[secret] = row
            at = row[_PROMOTED]
            if at is not None and (secret not in promoted or at > promoted[secret]):
                promoted[secret] = at
            state = row[_STATE]
            if state == _ROLLED_BACK:
                self._rolled_back.setdefault(secret, []).append(row[_CREATED])
            elif state not in _FINISHED:
                self._open.append(row)

    def summaries(self) -> dict[str, SecretSummary]:
        """Return each secret's summary, as :meth:`Journal.summaries` would over the same rows."""
        if self._dialect is None:
            return {}
        # Its rows' seals were checked by the check whose digest their read matched.
        decode = rotation_decoder(self._dialect, None)
        when = time_decoder(self._dialect)
        open_by_secret: dict[str, list[Rotation]] = {}
        for row in sorted(self._open, key=lambda r: (r[_CREATED], r[_ID])):
            open_by_secret.setdefault(row[_SECRET], []).append(decode(row))
        found: dict[str, SecretSummary] = {}
        for secret, row in self._latest.items():
            success = self._promoted.get(secret)
            failures = sum(
                1
                for created in self._rolled_back.get(secret, ())
                if success is None or created > success
            )
            found[secret] = SecretSummary(
                when(success), decode(row), open_by_secret.get(secret, []), failures
            )
        return found


def rotation_decoder(
    dialect: sa.Dialect, key: bytes | None, found_intact: Collection[bytes] = frozenset()
) -> Callable[[Sequence[Any]], Rotation]:
    """Return what turns a raw ``rotations`` row into a Rotation, checking its seal under ``key``.

    Each column goes through its own result processor, as a row read
    through SQLAlchemy would, without building a row object per row.
    Without ``key`` (none at hand, or rows a check just found intact),
    rows are taken as intact, as
    :func:`rotator.journal.records.row_to_rotation` takes them; a row whose
    :func:`row_print` is in ``found_intact`` is not sealed again.
    """
    columns = [
        (i, column.name, column.type.dialect_impl(dialect).result_processor(dialect, None))
        for i, column in enumerate(rotations.columns)
        if column.name in ROTATION_FIELDS
    ]

    def decode(row: Sequence[Any]) -> Rotation:
        data = {
            name: row[i] if process is None else process(row[i]) for i, name, process in columns
        }
        seal = row[_SEAL]
        intact = (
            key is None
            or (found_intact and row_print(row) in found_intact)
            or (seal is not None and hmac.compare_digest(seal_row(key, "rotations", data), seal))
        )
        return rotation_from(data, seal, intact=intact)

    return decode


def time_decoder(dialect: sa.Dialect) -> Callable[[Any], Any]:
    """Return what turns a raw ``promoted_at`` into the aware time the journal reads back."""
    column = rotations.c.promoted_at
    process = column.type.dialect_impl(dialect).result_processor(dialect, None)
    return (lambda value: value) if process is None else process
