"""The ``rotations`` rows as the driver returns them, decoded column by column.

Reading the secrets' summaries through SQLAlchemy's row objects cost more
per rotation than checking its seal: at 100,000 secrets, a row object and
its mapping per row. The summaries read the driver's own rows instead, and
each column goes through the result processor SQLAlchemy would have applied
(:func:`rotation_decoder`), so the values are the same; each row is still
checked against its seal (:func:`rotation_seal_check`). On SQLite, a time
stored as SQLAlchemy writes it is given to the seal as its text, not parsed
and formatted again; the tamper checks use the same check and build no
Rotation.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Generator, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rotator.errors import JournalTampered
from rotator.journal.audit import named, seal_time
from rotator.journal.records import (
    ROTATION_FIELDS,
    NotAsWritten,
    Rotation,
    rotation_from,
    rotation_sealed,
)
from rotator.journal.schema import UTCDateTime, rotations

_COLUMNS = [column.name for column in rotations.columns]
_ID, _SECRET, _SEAL = _COLUMNS.index("id"), _COLUMNS.index("secret"), _COLUMNS.index("seal")
#: Raw rows taken from the driver at a time: a read of 100,000 rows holds a
#: page of them, not all (as fast as taking all at once here).
_PAGE = 5000
#: A time as SQLAlchemy stores it in SQLite, in the years 1000 to 9999. Its
#: seal writes the same digits with a ``T`` between date and time and a ``Z``
#: after (``seal_time`` in rotator/journal/audit.py, which writes years
#: before 1000 another way), so the stored text is sealed as it is. Hours
#: end at 23: Python 3.14 reads ``24:00`` as the next day's midnight, which
#: the seal writes as such.
_SQLITE_TIME = re.compile(
    r"[1-9][0-9]{3}-[0-9]{2}-[0-9]{2} (?:[01][0-9]|2[0-3]):[0-9]{2}:[0-9]{2}\.[0-9]{6}"
)
#: What a time column that decodes to no time holds, as a reader names it.
_NO_TIME = "holds no time"
#: The columns of ``rotations`` that hold times (all sealed).
_TIMES = frozenset(
    name for name in ROTATION_FIELDS if isinstance(rotations.c[name].type, UTCDateTime)
)


class RowIdentity(NamedTuple):
    """Which rotation a raw ``rotations`` row is, and the seal it carries."""

    rotation_id: str
    secret: str
    seal: str | None


def raw_rows(
    conn: Connection, query: sa.Select[Any], params: dict[str, Any] | None = None
) -> Generator[Sequence[Any], None, None]:
    """Yield the driver's own rows of ``query`` (columns in the select's order), by pages.

    Close it (``contextlib.closing``) when not reading to the end: the
    result is closed when the generator is.
    """
    result = conn.execute(query, params or {})
    try:
        while page := result.cursor.fetchmany(_PAGE):
            yield from page
    finally:
        result.close()


def identity(row: Sequence[Any]) -> RowIdentity:
    """Return a raw row of ``sa.select(rotations)``'s rotation id, secret and seal."""
    return RowIdentity(row[_ID], row[_SECRET], row[_SEAL])


def _processed(dialect: sa.Dialect) -> list[tuple[int, str, Callable[[Any], Any] | None]]:
    """Return each sealed column's position, name and result processor on ``dialect``."""
    return [
        (i, column.name, column.type.dialect_impl(dialect).result_processor(dialect, None))
        for i, column in enumerate(rotations.columns)
        if column.name in ROTATION_FIELDS
    ]


#: A raw row's columns as its seal writes them, and the times that had to be decoded for it.
_Written = tuple[dict[str, Any], dict[str, datetime]]


@functools.lru_cache(maxsize=8)  # built per read otherwise: ~40 µs, several reads a rotation step
def _written_columns(dialect: sa.Dialect) -> Callable[[Sequence[Any]], _Written]:
    """Return what reads a raw ``rotations`` row's columns as its seal writes them.

    Every time is given as the seal's text (``seal_time``), the other
    columns as SQLAlchemy decodes them. A SQLite time stored in the form
    SQLAlchemy writes is taken as it is, not parsed to be formatted again (a
    third of the cost of checking a row); a time in any other form, and
    every time on another database, is decoded, and returned beside.
    Raises :class:`~rotator.journal.records.NotAsWritten` for a column
    holding what rotator never writes there (a time that is no time, a
    count that is no number).
    """
    processed = _processed(dialect)
    stored = _SQLITE_TIME.fullmatch if dialect.name == "sqlite" else None
    times, others, plain = [], [], []
    for i, name, process in processed:
        if process is None:
            plain.append((i, name))
        elif name in _TIMES:
            times.append((i, name, process))
        else:
            others.append((i, name, process))
    plain_names = [name for _, name in plain]
    pick = itemgetter(*(i for i, _ in plain))
    one = len(plain) == 1  # itemgetter of one position returns the value, not a tuple
    # SQLite keeps bytes in a text column (a number it stores as text there).
    # One set test per row over its text values' types (100,000 rows are read).
    texts = [(i, name) for i, name in plain if isinstance(rotations.c[name].type, sa.String)]
    pick_texts = itemgetter(*(i for i, _ in texts)) if stored is not None else None
    text_or_none = {str, type(None)}

    def read(row: Sequence[Any]) -> _Written:
        values = pick(row)
        data = dict(zip(plain_names, (values,) if one else values, strict=True))
        if pick_texts is not None and not text_or_none.issuperset(map(type, pick_texts(row))):
            name = next(name for i, name in texts if type(row[i]) not in text_or_none)
            raise NotAsWritten(name, "holds what rotator never writes there")
        for i, name, process in others:
            value = row[i]
            try:
                data[name] = None if value is None else process(value)
            except JournalTampered:  # a number column holding none (rotator/journal/schema.py)
                raise NotAsWritten(name, "holds what rotator never writes there") from None
        decoded: dict[str, datetime] = {}
        for i, name, process in times:
            value = row[i]
            if value is None:
                data[name] = None
            elif stored is not None and type(value) is str and stored(value):
                data[name] = f"{value[:10]}T{value[11:]}Z"
            elif stored is not None and type(value) is not str:
                # SQLite keeps a number or bytes in any column; SQLAlchemy's
                # processor, which reads only text there, is not handed one.
                raise NotAsWritten(name, _NO_TIME)
            else:
                try:
                    at = decoded[name] = process(value)
                except (JournalTampered, ValueError, TypeError, OverflowError):
                    raise NotAsWritten(name, _NO_TIME) from None
                data[name] = seal_time(at)
        return data, decoded

    return read


def rotation_seal_check(dialect: sa.Dialect, key: bytes) -> Callable[[Sequence[Any]], bool]:
    """Return what tells whether a raw ``rotations`` row matches its seal under ``key``.

    A time column that holds no time is not as rotator wrote it: the row
    does not match (decoding it, as :func:`rotation_decoder` does, raises).
    """
    read = _written_columns(dialect)

    def sealed(row: Sequence[Any]) -> bool:
        try:
            sealed_as, _ = read(row)
        except NotAsWritten:
            return False
        return rotation_sealed(key, sealed_as, row[_SEAL])

    return sealed


def rotation_decoder(dialect: sa.Dialect, key: bytes | None) -> Callable[[Sequence[Any]], Rotation]:
    """Return what turns a raw ``rotations`` row into a Rotation, checking its seal under ``key``.

    The same Rotation, ``intact`` included, as SQLAlchemy's row object
    would give (without ``key``, rows are taken as intact). Raises
    :class:`~rotator.errors.JournalTampered`, naming the rotation and the
    column, for a row no Rotation can be read from: a time that is no
    time, a state rotator has not, refs that are no JSON list.
    """
    read = _written_columns(dialect)
    # The seal's text of a time stored as SQLAlchemy writes it, back to the
    # aware time it was written from (``Z`` reads as UTC itself).
    from_text = datetime.fromisoformat

    def decode(row: Sequence[Any]) -> Rotation:
        seal = row[_SEAL]
        try:
            data, decoded = read(row)
            intact = key is None or rotation_sealed(key, data, seal)
            for name in _TIMES:
                if name in decoded:
                    data[name] = decoded[name]
                elif data[name] is not None:
                    try:
                        data[name] = from_text(data[name])
                    except ValueError:  # in the stored form, but no date (a 30 February)
                        raise NotAsWritten(name, _NO_TIME) from None
            return rotation_from(data, seal, intact)
        except NotAsWritten as exc:
            found = identity(row)
            secret = named(found.secret)
            raise JournalTampered(
                f"rotation {named(found.rotation_id)} of {secret}: {exc}; the row was "
                "edited outside rotator (`rotator audit verify`)",
                secret=secret,
            ) from None

    return decode


def time_decoder(dialect: sa.Dialect) -> Callable[[Any], Any]:
    """Return what turns a raw time of ``rotations`` into the aware time the journal reads back."""
    process = rotations.c.promoted_at.type.dialect_impl(dialect).result_processor(dialect, None)
    if process is None:  # UTCDateTime always converts: a naive time must never pass through
        raise TypeError(f"no result processor for the journal's times on {dialect.name}")
    return process
