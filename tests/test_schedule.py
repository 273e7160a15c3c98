"""Schedule arithmetic: due dates, cron in time zones, windows, jitter and intervals.

Every test uses fixed datetimes; nothing reads the clock or sleeps.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from rotator.policy.cron import parse_window, validate_cron
from rotator.policy.schedule import Schedule, jitter_offset, max_age, min_interval, next_due

BERLIN = ZoneInfo("Europe/Berlin")


def _schedule(**fields: Any) -> Schedule:
    """Build a validated Schedule from policy-file style fields."""
    return Schedule.model_validate(fields)


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """Build an aware UTC datetime."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# ----------------------------------------------------------------------- every


def test_every_counts_from_the_last_rotation() -> None:
    """An `every` schedule is due its interval after the last rotation, with a clear reason."""
    due = next_due(_schedule(every="30d"), "db", _utc(2026, 10, 1, 3), now=_utc(2026, 10, 15))
    assert due.due_at == _utc(2026, 10, 31, 3)
    assert not due.is_due
    assert due.reason == "every 30d since last rotation 2026-10-01 03:00 UTC"


def test_every_is_due_once_the_interval_has_passed() -> None:
    """An `every` schedule is due at and after its due time."""
    schedule = _schedule(every="30d")
    assert next_due(schedule, "db", _utc(2026, 10, 1, 3), now=_utc(2026, 10, 31, 3)).is_due
    assert next_due(schedule, "db", _utc(2026, 10, 1, 3), now=_utc(2027, 1, 1)).is_due


def test_every_does_not_depend_on_when_it_is_asked() -> None:
    """The due time of an `every` schedule is the same whatever `now` is."""
    schedule = _schedule(every="12h")
    early = next_due(schedule, "db", _utc(2026, 1, 1), now=_utc(2026, 1, 1, 1))
    late = next_due(schedule, "db", _utc(2026, 1, 1), now=_utc(2026, 3, 1))
    assert early.due_at == late.due_at == _utc(2026, 1, 1, 12)


def test_never_rotated_is_due_now() -> None:
    """A secret with no last rotation is due at once, whatever its schedule."""
    now = _utc(2026, 5, 5, 12, 30)
    for schedule in (_schedule(every="30d", jitter="1h"), _schedule(cron="0 3 * * MON")):
        due = next_due(schedule, "db", None, now=now)
        assert (due.due_at, due.is_due, due.reason) == (now, True, "never rotated")


def test_next_due_refuses_naive_datetimes() -> None:
    """A naive `now` or last rotation is refused rather than guessed at."""
    schedule = _schedule(every="1d")
    with pytest.raises(ValueError, match="timezone-aware"):
        next_due(schedule, "db", None, now=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        next_due(schedule, "db", datetime(2026, 1, 1), now=_utc(2026, 1, 2))


# ------------------------------------------------------------------------ cron


def test_cron_fires_in_the_policy_time_zone() -> None:
    """Cron 0 3 * * MON in Berlin fires at 03:00 CET, i.e. 02:00 UTC, with a clear reason."""
    schedule = _schedule(cron="0 3 * * MON", timezone="Europe/Berlin")
    due = next_due(schedule, "db", _utc(2026, 1, 1), now=_utc(2026, 1, 2))
    assert due.due_at == _utc(2026, 1, 5, 2)
    assert "cron 0 3 * * MON (Europe/Berlin)" in due.reason


def test_cron_is_due_strictly_after_the_last_rotation() -> None:
    """A rotation exactly at a fire time makes the next fire the following one."""
    schedule = _schedule(cron="0 3 * * MON", timezone="Europe/Berlin")
    due = next_due(schedule, "db", _utc(2026, 1, 5, 2), now=_utc(2026, 1, 6))
    assert due.due_at == _utc(2026, 1, 12, 2)
    assert not due.is_due


def test_cron_follows_the_spring_dst_change_in_berlin() -> None:
    """Across the March change, 03:00 Berlin moves from 02:00 UTC to 01:00 UTC."""
    schedule = _schedule(cron="0 3 * * SUN", timezone="Europe/Berlin")
    due = next_due(schedule, "db", _utc(2026, 3, 22, 2), now=_utc(2026, 3, 23))
    assert due.due_at == _utc(2026, 3, 29, 1)
    assert due.due_at.astimezone(BERLIN).hour == 3


def test_cron_in_the_skipped_hour_fires_after_the_jump() -> None:
    """02:30 Berlin does not exist on 2026-03-29; the fire happens at 03:30 summer time."""
    schedule = _schedule(cron="30 2 * * *", timezone="Europe/Berlin")
    on_the_night = next_due(schedule, "db", _utc(2026, 3, 28, 1, 30), now=_utc(2026, 3, 28, 2))
    assert on_the_night.due_at == _utc(2026, 3, 29, 1, 30)
    after = next_due(schedule, "db", on_the_night.due_at, now=_utc(2026, 3, 29, 2))
    assert after.due_at == _utc(2026, 3, 30, 0, 30)


def test_cron_in_the_repeated_hour_fires_once() -> None:
    """01:30 New York happens twice on 2026-11-01; the cron fires only at the first."""
    schedule = _schedule(cron="30 1 * * *", timezone="America/New_York")
    first = next_due(schedule, "db", _utc(2026, 10, 31, 5, 30), now=_utc(2026, 10, 31, 6))
    assert first.due_at == _utc(2026, 11, 1, 5, 30)
    following = next_due(schedule, "db", first.due_at, now=_utc(2026, 11, 1, 6))
    assert following.due_at == _utc(2026, 11, 2, 6, 30)


@pytest.mark.parametrize("sunday", ["0", "7", "sun", "SUN"])
def test_cron_day_of_week_counts_sunday_as_zero_like_crontab(sunday: str) -> None:
    """Day-of-week 0 and 7 mean Sunday as in crontab (not Monday as in APScheduler 3)."""
    schedule = _schedule(cron=f"0 3 * * {sunday}")
    due = next_due(schedule, "db", _utc(2026, 1, 5), now=_utc(2026, 1, 5))
    assert due.due_at == _utc(2026, 1, 11, 3)
    assert due.due_at.weekday() == 6


def test_cron_day_of_week_steps_count_from_sunday() -> None:
    """A day-of-week step */2 means Sunday, Tuesday, Thursday, Saturday as in crontab."""
    schedule = _schedule(cron="0 0 * * */2")
    fires = []
    last = _utc(2026, 1, 4, 12)  # a Sunday
    for _ in range(4):
        last = next_due(schedule, "db", last, now=last).due_at
        fires.append(last.strftime("%a"))
    assert fires == ["Tue", "Thu", "Sat", "Sun"]


def test_cron_with_day_of_month_and_day_of_week_fires_on_either() -> None:
    """As in crontab, 0 0 13 * FRI fires on every Friday and on every 13th."""
    schedule = _schedule(cron="0 0 13 * FRI")
    assert next_due(schedule, "db", _utc(2026, 1, 1), now=_utc(2026, 1, 1)).due_at == _utc(
        2026, 1, 2
    )
    assert next_due(schedule, "db", _utc(2026, 1, 10), now=_utc(2026, 1, 10)).due_at == _utc(
        2026, 1, 13
    )


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("0 3 * *", "must have 5 fields (minute hour day-of-month month day-of-week), got 4"),
        ("0 3 * * * *", "must have 5 fields"),
        ("61 3 * * *", "minute '61'"),
        ("0 24 * * *", "hour '24'"),
        ("0 3 32 * *", "day-of-month '32'"),
        ("0 3 * 13 *", "month '13'"),
        ("0 3 * * funday", "invalid day-of-week 'funday'"),
        ("0 3 * * 8", "invalid day-of-week '8'"),
        ("0 3 * * fri-mon", "runs backwards"),
        ("*/0 * * * *", "minute '*/0'"),
        ("0 0 30 2 *", "never fires"),
    ],
)
def test_validate_cron_names_what_is_wrong(expr: str, reason: str) -> None:
    """Malformed cron expressions are refused with a reason naming the field."""
    with pytest.raises(ValueError, match=None) as caught:
        validate_cron(expr, "UTC")
    assert reason in str(caught.value)


def test_validate_cron_refuses_an_unknown_time_zone() -> None:
    """A cron expression in an unknown zone is refused with a suggestion."""
    with pytest.raises(ValueError, match="did you mean 'Europe/Berlin'"):
        validate_cron("0 3 * * *", "Europe/Berln")


# ---------------------------------------------------------------------- windows


def test_window_mon_fri_contains_only_weekday_nights() -> None:
    """Mon-Fri 02:00-05:00 contains weekday times from 02:00 up to but not including 05:00."""
    window = parse_window("Mon-Fri 02:00-05:00")
    assert window.contains(datetime(2026, 1, 5, 2, 0))  # Monday
    assert window.contains(datetime(2026, 1, 9, 4, 59))  # Friday
    assert not window.contains(datetime(2026, 1, 5, 5, 0))
    assert not window.contains(datetime(2026, 1, 5, 1, 59))
    assert not window.contains(datetime(2026, 1, 10, 3, 0))  # Saturday


def test_window_without_days_opens_every_day() -> None:
    """A window with no day list opens on all seven days."""
    window = parse_window("02:00-05:00")
    assert window.days == frozenset(range(7))
    assert all(window.contains(datetime(2026, 1, day, 3)) for day in range(5, 12))


def test_window_crossing_midnight_belongs_to_the_day_it_opens() -> None:
    """Fri 22:00-02:00 runs from Friday 22:00 to Saturday 02:00, and no other night."""
    window = parse_window("Fri 22:00-02:00")
    assert window.crosses_midnight
    assert window.contains(datetime(2026, 1, 9, 22, 0))  # Friday
    assert window.contains(datetime(2026, 1, 10, 1, 59))  # Saturday morning
    assert not window.contains(datetime(2026, 1, 10, 2, 0))
    assert not window.contains(datetime(2026, 1, 9, 21, 59))
    assert not window.contains(datetime(2026, 1, 8, 23, 0))  # Thursday night
    assert not window.contains(datetime(2026, 1, 10, 22, 30))  # Saturday night


@pytest.mark.parametrize(
    ("text", "days", "opens", "closes"),
    [
        ("Sat,Sun 00:00-06:00", {5, 6}, 0, 360),
        ("Fri-Mon 22:00-02:00", {4, 5, 6, 0}, 1320, 120),
        ("mon,wed-fri 9:30-10:00", {0, 2, 3, 4}, 570, 600),
        ("Monday 00:00-24:00", {0}, 0, 1440),
    ],
)
def test_parse_window_reads_day_lists_and_times(
    text: str, days: set[int], opens: int, closes: int
) -> None:
    """Day lists, wrapping ranges, full day names and 24:00 are understood."""
    window = parse_window(text)
    assert (set(window.days), window.opens, window.closes) == (days, opens, closes)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Mon-Fri", "expected a time range HH:MM-HH:MM"),
        ("02:00", "expected a time range HH:MM-HH:MM"),
        ("Mon-Fri 25:00-05:00", "'25:00' is not a time of day"),
        ("Mon-Fri 02:00-05:61", "'05:61' is not a time of day"),
        ("Mon-Fry 02:00-05:00", "unknown day 'Fry'"),
        ("Mon,,Tue 02:00-05:00", "empty day"),
        ("Mon-Fri 02:00-02:00", "opens and closes at the same time"),
        ("Mon-Fri 2am-5am", "malformed time '2am'"),
        ("Mon - Fri 02:00-05:00", "expected [DAYS] HH:MM-HH:MM"),
    ],
)
def test_parse_window_names_what_is_wrong(text: str, reason: str) -> None:
    """Malformed windows are refused with a reason naming the bad part."""
    with pytest.raises(ValueError, match=None) as caught:
        parse_window(text)
    assert reason in str(caught.value)


def test_due_time_outside_the_window_moves_to_the_next_opening() -> None:
    """A due time on a Saturday moves to Monday 02:00 and waits for the window."""
    schedule = _schedule(every="7d", window="Mon-Fri 02:00-05:00")
    due = next_due(schedule, "db", _utc(2026, 1, 3, 3), now=_utc(2026, 1, 11))
    assert due.due_at == _utc(2026, 1, 12, 2)
    assert not due.is_due
    assert due.reason.endswith("; waiting for window Mon-Fri 02:00-05:00")


def test_inside_the_window_and_past_due_is_due() -> None:
    """Once the window opens after the due time, the rotation is due."""
    schedule = _schedule(every="7d", window="Mon-Fri 02:00-05:00")
    due = next_due(schedule, "db", _utc(2026, 1, 3, 3), now=_utc(2026, 1, 12, 3))
    assert (due.due_at, due.is_due) == (_utc(2026, 1, 12, 2), True)


def test_past_due_outside_the_window_waits_for_the_next_opening() -> None:
    """Past due but after the window closed, the due time is the next opening after now."""
    schedule = _schedule(every="7d", window="Mon-Fri 02:00-05:00")
    due = next_due(schedule, "db", _utc(2026, 1, 3, 3), now=_utc(2026, 1, 12, 6))
    assert (due.due_at, due.is_due) == (_utc(2026, 1, 13, 2), False)


def test_never_rotated_outside_the_window_waits() -> None:
    """A secret never rotated still waits for its window to open."""
    schedule = _schedule(every="30d", window="Sat,Sun 00:00-06:00")
    due = next_due(schedule, "db", None, now=_utc(2026, 1, 7, 12))  # a Wednesday
    assert (due.due_at, due.is_due) == (_utc(2026, 1, 10), False)
    assert due.reason == "never rotated; waiting for window Sat,Sun 00:00-06:00"


def test_window_is_read_in_the_policy_time_zone() -> None:
    """A 02:00-05:00 window in Berlin opens at 01:00 UTC in winter."""
    schedule = _schedule(every="1d", timezone="Europe/Berlin", window="02:00-05:00")
    due = next_due(schedule, "db", _utc(2026, 1, 5, 12), now=_utc(2026, 1, 6, 12))
    assert due.due_at == _utc(2026, 1, 7, 1)
    assert next_due(schedule, "db", _utc(2026, 1, 5, 12), now=_utc(2026, 1, 7, 1, 30)).is_due


def test_midnight_crossing_window_accepts_a_due_time_after_midnight() -> None:
    """A due time at Saturday 01:00 lies inside Fri 22:00-02:00 and is not moved."""
    schedule = _schedule(every="1d", window="Fri 22:00-02:00")
    due = next_due(schedule, "db", _utc(2026, 1, 9, 1), now=_utc(2026, 1, 10, 1, 30))
    assert (due.due_at, due.is_due) == (_utc(2026, 1, 10, 1), True)


# ------------------------------------------------------------------------ jitter


def test_jitter_is_deterministic_and_within_its_bound() -> None:
    """The same secret and last rotation always give one due time, within [base, base+jitter)."""
    schedule = _schedule(every="1d", jitter="1h")
    last = _utc(2026, 2, 1, 4)
    first = next_due(schedule, "payments-db", last, now=_utc(2026, 2, 1, 5))
    again = next_due(schedule, "payments-db", last, now=_utc(2026, 2, 1, 23))
    assert first.due_at == again.due_at
    offset = first.due_at - _utc(2026, 2, 2, 4)
    assert timedelta(0) <= offset < timedelta(hours=1)
    assert offset == jitter_offset("payments-db", _utc(2026, 2, 2, 4), timedelta(hours=1))


def test_jitter_spreads_secrets_apart() -> None:
    """Different secret names get different offsets, all within [0, jitter)."""
    base = _utc(2026, 2, 2, 4)
    offsets = {jitter_offset(f"svc-{i}", base, timedelta(minutes=10)) for i in range(50)}
    assert len(offsets) > 10
    assert all(timedelta(0) <= o < timedelta(minutes=10) for o in offsets)


def test_zero_jitter_adds_nothing() -> None:
    """Without jitter the due time is the base due time exactly."""
    assert jitter_offset("db", _utc(2026, 1, 1), timedelta(0)) == timedelta(0)
    due = next_due(_schedule(every="1d"), "db", _utc(2026, 1, 1), now=_utc(2026, 1, 1))
    assert due.due_at == _utc(2026, 1, 2)


# -------------------------------------------------------------------- intervals


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"every": "30d"}, timedelta(days=30)),
        ({"cron": "0 3 * * MON"}, timedelta(days=7)),
        ({"cron": "0 */6 * * *"}, timedelta(hours=6)),
        ({"cron": "0 3 1,15 * *"}, timedelta(days=14)),
        ({"cron": "*/5 9-17 * * 1-5"}, timedelta(minutes=5)),
        ({"cron": "0 3 * * SUN", "timezone": "Europe/Berlin"}, timedelta(days=6, hours=23)),
        ({"cron": "17 3 * * SUN", "timezone": "Europe/Berlin"}, timedelta(days=6, hours=23)),
    ],
)
def test_min_interval_is_the_shortest_gap_between_fires(
    fields: dict[str, str], expected: timedelta
) -> None:
    """min_interval is `every` itself, or the shortest real gap between cron fires, DST included."""
    assert min_interval(_schedule(**fields)) == expected


# ---------------------------------------------------------------- maximum age


def test_window_holds_a_rotation_back_up_to_the_maximum_age() -> None:
    """A weekend-only window delays a 2d rotation, but never past max_age; then it says why."""
    schedule = _schedule(every="2d", window="Sat,Sun 00:00-06:00", max_age="3d")
    last = _utc(2026, 1, 5, 12)  # a Monday; due Wed 12:00, the window opens Sat
    due = next_due(schedule, "db", last, now=_utc(2026, 1, 7, 12))
    assert (due.due_at, due.is_due) == (_utc(2026, 1, 8, 12), False)
    assert "rotating outside the window" in due.reason
    assert next_due(schedule, "db", last, now=_utc(2026, 1, 8, 12)).is_due


def test_default_maximum_age_is_twice_the_interval() -> None:
    """Without max_age a window may hold a rotation back by one more interval at most."""
    schedule = _schedule(every="1d", window="Sat 01:00-02:00")
    last = _utc(2026, 1, 5, 12)  # Monday; due Tuesday 12:00; next Saturday is too far
    due = next_due(schedule, "db", last, now=_utc(2026, 1, 6, 13))
    assert due.due_at == _utc(2026, 1, 7, 12)
    assert "maximum age" in due.reason


def test_max_age_shorter_than_the_interval_is_refused() -> None:
    """max_age below the interval is a validation error naming both."""
    with pytest.raises(ValueError, match="max_age 1d must be at least the rotation interval 7d"):
        _schedule(every="7d", max_age="1d")


WEEKLY_IN_NEW_YORK = {"cron": "0 3 * * 0", "timezone": "America/New_York"}


def test_a_weekly_cron_across_daylight_saving_is_shown_as_weekly() -> None:
    """A person reads 7d, and why the bound is an hour less; never a bare 6d23h."""
    with pytest.raises(ValueError, match="max_age") as raised:
        _schedule(**WEEKLY_IN_NEW_YORK, max_age="6d")
    assert (
        "max_age 6d must be at least the rotation interval 7d (the shortest gap of cron "
        "'0 3 * * 0' in America/New_York; 6d23h across a daylight-saving change)"
    ) in str(raised.value)


def test_a_weekly_cron_is_checked_against_its_real_shortest_gap() -> None:
    """A week across the spring change really lasts 167h: max_age 6d23h is enough."""
    schedule = _schedule(**WEEKLY_IN_NEW_YORK, max_age="6d23h")
    assert min_interval(schedule) == timedelta(days=6, hours=23)
    with pytest.raises(ValueError, match="max_age 6d22h59m must be at least"):
        _schedule(**WEEKLY_IN_NEW_YORK, max_age="6d22h59m")


def test_the_default_maximum_age_of_a_weekly_cron_is_two_weeks() -> None:
    """Twice the interval the expression states (14d), as the overdue alert says it."""
    assert max_age(_schedule(**WEEKLY_IN_NEW_YORK)) == timedelta(days=14)
    assert max_age(_schedule(cron="*/5 9-17 * * 1-5")) == timedelta(minutes=10)


# --------------------------------------------------------------------- catch-up


def test_missed_secrets_are_spread_over_the_jitter_not_a_wave() -> None:
    """A week without runs: the overdue secrets fall due across one jitter window, not at once."""
    schedule = _schedule(every="1d", jitter="6h")
    last = _utc(2026, 3, 1, 12)
    now = _utc(2026, 3, 9, 13, 30)  # 8 days later; the 6h slot began at 12:00
    dues = [next_due(schedule, f"s{i}", last, now) for i in range(400)]
    times = [d.due_at for d in dues]
    assert min(times) >= _utc(2026, 3, 9, 12) and max(times) < _utc(2026, 3, 9, 18)
    due_now = sum(d.is_due for d in dues)
    assert 0 < due_now < 200  # about a quarter (1.5h of the 6h slot has passed)
    assert all(d.is_due == (d.due_at <= now) for d in dues)
    assert "caught up" in dues[0].reason


def test_catch_up_time_holds_still_while_its_slot_lasts() -> None:
    """Asking again later in the slot gives the same due times, so every secret's time comes."""
    schedule = _schedule(every="1d", jitter="6h")
    last = _utc(2026, 3, 1, 12)
    first = [next_due(schedule, f"s{i}", last, _utc(2026, 3, 9, 13)).due_at for i in range(50)]
    later = [next_due(schedule, f"s{i}", last, _utc(2026, 3, 9, 17, 59)).due_at for i in range(50)]
    assert first == later
    assert max(first) < _utc(2026, 3, 9, 18)  # every one falls due before the slot ends


def test_recently_due_secrets_are_not_delayed() -> None:
    """A secret that fell due less than one jitter window ago is due now, as always."""
    schedule = _schedule(every="1d", jitter="6h")
    last = _utc(2026, 3, 1, 12)
    base = next_due(schedule, "app", last, last).due_at
    due = next_due(schedule, "app", last, base + timedelta(hours=5))
    assert due.is_due and due.due_at == base and "caught up" not in due.reason


def test_without_jitter_missed_secrets_are_due_at_once() -> None:
    """With no jitter to spread over, every missed secret is simply due now."""
    schedule = _schedule(every="1d")
    last = _utc(2026, 3, 1, 12)
    now = _utc(2026, 3, 9, 13)
    assert all(next_due(schedule, f"s{i}", last, now).is_due for i in range(20))


@pytest.mark.parametrize(
    "zone", ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]
)
def test_cached_cron_fires_match_the_trigger_stepped_one_by_one(zone: str) -> None:
    """Answers from the cached runs equal APScheduler's own answer, across DST changes too."""
    from rotator.policy import cron as module

    expr = "30 2 * * *"  # 02:30 is skipped or repeated on DST nights in these zones
    trigger, tz = module._cron_trigger(expr), module.validate_timezone(zone)
    start = _utc(2026, 1, 1)
    # Out of order and spread over a year, so runs are built, reused and dropped.
    moments = [start + timedelta(hours=(h * 7919) % 8760, minutes=h % 60) for h in range(600)]
    for moment in moments:
        expected = module._next_wall_fire(trigger, tz, moment, strictly=True)
        assert module.next_fire(expr, zone, moment) == expected, moment


def test_cached_cron_runs_start_short_and_double_with_each_miss() -> None:
    """An expression asked for once costs two fires; one asked for again and again, longer runs."""
    from rotator.policy import cron as module

    expr, zone = "17 4 * * 3", "Europe/Berlin"
    module._runs.pop((expr, zone), None)
    start = _utc(2026, 1, 1)
    module.next_fire(expr, zone, start)
    assert [len(fires) for _, fires in module._runs[(expr, zone)]] == [2]
    for weeks in (3, 8, 30, 80, 200):  # each beyond every run kept: a miss
        module.next_fire(expr, zone, start + timedelta(weeks=weeks))
    assert [len(fires) for _, fires in module._runs[(expr, zone)]] == [8, 16, 32, 32]
