"""The ``rotations`` rows as the driver returns them, decoded column by column.

Reading the secrets' summaries through SQLAlchemy's row objects cost more
per rotation than checking its seal: at 100,000 secrets, a row object and
its mapping per row. The summaries read the driver's own rows instead, and
each column goes through the result processor SQLAlchemy would have applied
(:func:`rotation_decoder`), so the values are the same; each row is still
checked against its seal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from rotator.journal.records import ROTATION_FIELDS, Rotation, rotation_from
from rotator.journal.schema import rotations

_SEAL = [column.name for column in rotations.columns].index("seal")


def rotation_decoder(dialect: sa.Dialect, key: bytes | None) -> Callable[[Sequence[Any]], Rotation]:
    """Return what turns a raw ``rotations`` row into a Rotation, checking its seal under ``key``.

    Without ``key`` (none at hand) rows are taken as intact, as
    :func:`rotator.journal.records.row_to_rotation` takes them.
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
        return rotation_from(data, row[_SEAL], key)

    return decode


def time_decoder(dialect: sa.Dialect) -> Callable[[Any], Any]:
    """Return what turns a raw time of ``rotations`` into the aware time the journal reads back."""
    process = rotations.c.promoted_at.type.dialect_impl(dialect).result_processor(dialect, None)
    if process is None:  # UTCDateTime always converts: a naive time must never pass through
        raise TypeError(f"no result processor for the journal's times on {dialect.name}")
    return process
