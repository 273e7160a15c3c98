"""Durations as policy files write them: short forms, ISO 8601, and the pydantic type."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import BaseModel, ValidationError

from rotator.adapters.durations import MAX_DURATION, Duration, format_duration, parse_duration


class _Holder(BaseModel):
    """A model with one Duration field, to exercise the pydantic type."""

    value: Duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45s", timedelta(seconds=45)),
        ("90m", timedelta(minutes=90)),
        ("12h", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1w2d3h4m5s", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
        ("0s", timedelta(0)),
        (" 30d ", timedelta(days=30)),
        ("P30D", timedelta(days=30)),
        ("PT12H", timedelta(hours=12)),
        ("P1W", timedelta(weeks=1)),
        ("P1DT12H", timedelta(days=1, hours=12)),
        ("PT90M", timedelta(minutes=90)),
        ("PT1.5S", timedelta(seconds=1.5)),
        ("p30d", timedelta(days=30)),
    ],
)
def test_parse_duration_accepts_every_documented_form(text: str, expected: timedelta) -> None:
    """Each short, combined and ISO 8601 form parses to the right timedelta."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "30", "30 days", "1x", "d", "P", "PT", "P1DT", "12h30d", "1.5h"]
)
def test_parse_duration_refuses_malformed_text(text: str) -> None:
    """Malformed durations raise ValueError naming the accepted forms."""
    with pytest.raises(ValueError, match="malformed duration"):
        parse_duration(text)


def test_parse_duration_refuses_more_than_ten_years() -> None:
    """A duration longer than ten years is refused as a likely typo."""
    with pytest.raises(ValueError, match="longer than 10 years"):
        parse_duration("4000d")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=45), "45s"),
        (timedelta(days=1, hours=12), "1d12h"),
        (timedelta(weeks=2), "14d"),
        (timedelta(hours=1, minutes=30, seconds=5), "1h30m5s"),
    ],
)
def test_format_duration_writes_the_short_form(value: timedelta, expected: str) -> None:
    """format_duration writes days, hours, minutes and seconds, and 0s for zero."""
    assert format_duration(value) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1d", timedelta(days=1)),
        ("PT12H", timedelta(hours=12)),
        (3600, timedelta(hours=1)),
        (1.5, timedelta(seconds=1.5)),
        (timedelta(minutes=5), timedelta(minutes=5)),
    ],
)
def test_duration_type_accepts_strings_numbers_and_timedeltas(
    raw: object, expected: timedelta
) -> None:
    """The pydantic Duration type accepts text, a number of seconds or a timedelta."""
    assert _Holder.model_validate({"value": raw}).value == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("-1h", "negative duration"),
        (-5, "negative duration"),
        (True, "not a boolean"),
        ([1], "not list"),
        ("soon", "malformed duration"),
    ],
)
def test_duration_type_refuses_bad_values(raw: object, reason: str) -> None:
    """Negative, boolean, non-scalar and malformed values are refused with a reason."""
    with pytest.raises(ValidationError, match=reason):
        _Holder.model_validate({"value": raw})


def test_duration_type_serializes_to_the_short_form() -> None:
    """A Duration field dumps as the short text form, which parses back to itself."""
    dumped = _Holder(value=timedelta(days=1, hours=12)).model_dump()
    assert dumped == {"value": "1d12h"}
    assert _Holder.model_validate(dumped).value == timedelta(days=1, hours=12)


def test_duration_type_shares_one_timedelta_per_text() -> None:
    """The same text validates to one shared timedelta, so many policies hold one object."""
    first = _Holder.model_validate({"value": "36h"}).value
    second = _Holder.model_validate({"value": "36h"}).value
    assert first == timedelta(hours=36)
    assert first is second


@pytest.mark.parametrize("raw", ["-2h", "2 hours"])
def test_duration_type_refuses_bad_text_every_time(raw: str) -> None:
    """Bad text is refused on every validation, not only the first (refusals are not cached)."""
    for _ in range(2):
        with pytest.raises(ValidationError, match=r"negative duration|malformed duration"):
            _Holder.model_validate({"value": raw})


@pytest.mark.parametrize(
    "text",
    ["999999999w", "99999999999999999999999d", "P999999999999W", "PT99999999999999999999.5S"],
)
def test_parse_duration_refuses_an_overflowing_duration(text: str) -> None:
    """A duration too large for a timedelta is refused as too long, not an OverflowError."""
    with pytest.raises(ValueError, match="longer than 10 years"):
        parse_duration(text)


def test_parse_duration_accepts_exactly_the_maximum() -> None:
    """MAX_DURATION itself (3650 days) is accepted; one second more is refused."""
    assert parse_duration("3650d") == MAX_DURATION == timedelta(days=3650)
    with pytest.raises(ValueError, match="longer than 10 years"):
        parse_duration("3650d1s")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (10**30, "longer than 10 years"),
        (1e300, "longer than 10 years"),
        (float("inf"), "longer than 10 years"),
        (float("nan"), "not a number"),
        (-float("inf"), "negative duration"),
        (timedelta.max, "longer than 10 years"),
    ],
)
def test_duration_type_refuses_numbers_out_of_range(raw: object, reason: str) -> None:
    """A number of seconds that is huge, infinite or NaN is refused with a reason."""
    with pytest.raises(ValidationError, match=reason):
        _Holder.model_validate({"value": raw})
