"""The ``rotations`` rows as the driver returns them, decoded column by column.

Reading the secrets' summaries through SQLAlchemy's row objects cost more
per rotation than checking its seal: at 100,000 secrets, a row object and
its mapping per row. The summaries read the driver's own rows instead, and
each column goes through the result processor SQLAlchemy would have applied
(:func:`rotation_decoder`), so the values are the same; each row is still
checked against its seal (:func:`rotation_seal_check`), with SQLite's times
given to the seal as the text they are stored as, not parsed and formatted
again; the tamper checks use the same check, without decoding the row.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rotator.journal.audit import seal_time, seal_written
from rotator.journal.records import ROTATION_FIELDS, Rotation, rotation_from
from rotator.journal.schema import UTCDateTime, rotations

_COLUMNS = [column.name for column in rotations.columns]
#: Where a raw row of ``sa.select(rotations)`` holds its id, secret and seal.
ID, SECRET, _SEAL = _COLUMNS.index("id"), _COLUMNS.index("secret"), _COLUMNS.index("seal")
#: Raw rows fetched per round trip.
_PAGE = 5000
#: A time as SQLAlchemy stores it in SQLite, in the years 1000 to 9999. Its
#: seal writes the same digits with a ``T`` between date and time and a ``Z``
#: after (``seal_time`` in rotator/journal/audit.py, which writes years
#: before 1000 another way), so the stored text is sealed as it is.
_SQLITE_TIME = re.compile(r"[1-9][0-9]{3}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}")


def raw_rows(
    conn: Connection, query: sa.Select[Any], params: dict[str, Any] | None = None
) -> Iterator[Sequence[Any]]:
    """Yield the driver's own rows of ``query`` (columns in the select's order), by pages."""
    result = conn.execute(query, params or {})
    try:
        while page := result.cursor.fetchmany(_PAGE):
            yield from page
    finally:
        result.close()


def seal_of(row: Sequence[Any]) -> str | None:
    """Return the seal a raw ``rotations`` row carries."""
    return row[_SEAL]  # type: ignore[no-any-return]


def _processed(dialect: sa.Dialect) -> list[tuple[int, str, Callable[[Any], Any] | None]]:
    """Return each sealed column's position, name and result processor on ``dialect``."""
    return [
        (i, column.name, column.type.dialect_impl(dialect).result_processor(dialect, None))
        for i, column in enumerate(rotations.columns)
        if column.name in ROTATION_FIELDS
    ]


def _seal_columns(
    dialect: sa.Dialect,
) -> Callable[[Sequence[Any]], tuple[dict[str, Any], dict[str, Any]]]:
    """Return what reads a raw ``rotations`` row's columns as its seal writes them.

    It returns them with each time as the seal's text (``seal_time``), and
    the times it had to decode to get there. Every other column is decoded
    as SQLAlchemy would. A SQLite time in the form SQLAlchemy stores is
    sealed as its stored text is, without parsing it to format it again (a
    third of the cost of checking a row); a time in any other form, and
    every time on another database, is decoded.
    """
    processed = _processed(dialect)
    stored = _SQLITE_TIME.fullmatch if dialect.name == "sqlite" else None
    times = [
        (i, name, process)
        for i, name, process in processed
        if process is not None and isinstance(rotations.c[name].type, UTCDateTime)
    ]
    others = [
        (i, name, process)
        for i, name, process in processed
        if process is not None and (i, name, process) not in times
    ]
    plain = [(i, name) for i, name, process in processed if process is None]
    plain_names = [name for _, name in plain]
    plain_values = itemgetter(*(i for i, _ in plain))

    def read(row: Sequence[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        data = dict(zip(plain_names, plain_values(row), strict=True))
        for i, name, process in others:
            value = row[i]
            data[name] = None if value is None else process(value)
        decoded: dict[str, Any] = {}
        for i, name, process in times:
            value = row[i]
            if value is None:
                data[name] = None
            elif stored is not None and type(value) is str and stored(value):
                data[name] = f"{value[:10]}T{value[11:]}Z"
            else:
                at = decoded[name] = process(value)
                data[name] = at if at is None else seal_time(at)
        return data, decoded

    return read


def rotation_seal_check(dialect: sa.Dialect, key: bytes) -> Callable[[Sequence[Any]], bool]:
    """Return what tells whether a raw ``rotations`` row matches its seal under ``key``."""
    read = _seal_columns(dialect)

    def sealed(row: Sequence[Any]) -> bool:
        try:
            written, _ = read(row)
        except (ValueError, TypeError, OverflowError):  # a time that is not one
            return False  # rotator never wrote it: found edited (decoding it fails)
        return _matches(key, written, row[_SEAL])

    return sealed


def _matches(key: bytes, written: dict[str, Any], seal: str | None) -> bool:
    """Tell whether a rotation's columns, as the seal writes them, match ``seal``."""
    return seal is not None and hmac.compare_digest(seal_written(key, "rotations", written), seal)


def rotation_decoder(dialect: sa.Dialect, key: bytes | None) -> Callable[[Sequence[Any]], Rotation]:
    """Return what turns a raw ``rotations`` row into a Rotation, checking its seal under ``key``.

    Without ``key`` (none at hand) rows are taken as intact, as
    :func:`rotator.journal.records.row_to_rotation` takes them.
    """
    read = _seal_columns(dialect)
    times = [c.name for c in rotations.columns if isinstance(c.type, UTCDateTime)]
    times = [name for name in times if name in ROTATION_FIELDS]
    # The seal's text of a time stored as SQLAlchemy stores it, back to the
    # aware UTC time it was written from (``Z`` reads as UTC).
    from_text = datetime.fromisoformat

    def decode(row: Sequence[Any]) -> Rotation:
        data, decoded = read(row)
        seal = row[_SEAL]
        intact = key is None or _matches(key, data, seal)
        for name in times:
            if name in decoded:
                data[name] = decoded[name]
            elif data[name] is not None:
                data[name] = from_text(data[name])
        return rotation_from(data, seal, key, intact=intact)

    return decode


def time_decoder(dialect: sa.Dialect) -> Callable[[Any], Any]:
    """Return what turns a raw time of ``rotations`` into the aware time the journal reads back."""
    process = rotations.c.promoted_at.type.dialect_impl(dialect).result_processor(dialect, None)
    if process is None:  # UTCDateTime always converts: a naive time must never pass through
        raise TypeError(f"no result processor for the journal's times on {dialect.name}")
    return process
