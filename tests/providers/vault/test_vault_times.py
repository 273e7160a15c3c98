"""Vault's timestamps become aware datetimes the engine can compare."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from providers.vault.kv import parse_time


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27T22:40:01.123456789Z", datetime(2026, 11, 27, 22, 40, 1, 123456, tzinfo=UTC)),
        ("2026-11-27T22:40:01Z", datetime(2026, 11, 27, 22, 40, 1, tzinfo=UTC)),
        (
            "2026-11-27T22:40:01.5+02:00",
            datetime(2026, 11, 27, 22, 40, 1, 500000, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
)
def test_rfc3339_with_nanoseconds_parses_aware(text: str, expected: datetime) -> None:
    """KV v2 created_time (RFC 3339, nanoseconds, Z or offset) parses to the same aware instant."""
    parsed = parse_time(text)
    assert parsed == expected
    assert parsed is not None and parsed.tzinfo is not None


@pytest.mark.parametrize("text", ["", "yesterday", None])
def test_unset_or_junk_time_is_none(text: str | None) -> None:
    """An unset time ("" in Vault) or junk gives None, not an exception."""
    assert parse_time(text) is None
