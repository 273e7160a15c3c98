"""Cron expressions and rotation windows on the wall clock.

This is the only module of rotator that imports APScheduler (3.x). It does no
I/O and never reads the clock: every function takes the times it needs, so
that ``plan`` and ``run --once`` compute exactly the same due dates.

Cron expressions have the five crontab fields and crontab's meaning, which
APScheduler 3.x's ``CronTrigger.from_crontab`` does not quite share: there
day-of-week 0 is Monday (crontab: Sunday), and a restricted day-of-month and
day-of-week must both match (crontab: either). :func:`validate_cron` and the
due-date functions translate, so ``0 3 * * 0`` fires on Sundays.
"""

from __future__ import annotations

import bisect
import difflib
import functools
import itertools
import re
import threading
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

#: Crontab's day-of-week numbering: 0 (and 7) is Sunday.
_CRONTAB_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
#: Window day names, Monday first as ``datetime.weekday()`` counts.
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_CRON_FIELDS = ("minute", "hour", "day", "month", "day_of_week")
_CRON_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
#: Where :func:`cron_min_interval` starts counting cron fires: fixed, so the answer never drifts.
_REFERENCE = datetime(2025, 1, 1)
_REFERENCE_FIRES = 50
#: A cron expression that does not fire within this many years is refused.
_HORIZON_YEARS = 30
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


# --------------------------------------------------------------------- time zones


@functools.cache
def _zone_names() -> frozenset[str]:
    """Return every IANA zone name installed (read once, only to suggest a spelling)."""
    return frozenset(zoneinfo.available_timezones())


@functools.lru_cache(maxsize=1024)
def validate_timezone(name: str) -> zoneinfo.ZoneInfo:
    """Return the IANA time zone called ``name``; raise ValueError naming a close match."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass
    close = difflib.get_close_matches(name, _zone_names(), n=1)
    hint = (
        f"; did you mean {close[0]!r}?" if close else "; use an IANA name such as 'Europe/Berlin'"
    )
    raise ValueError(f"unknown time zone {name!r}{hint}")


# --------------------------------------------------------------------------- cron


def _crontab_day(token: str, item: str) -> int:
    """Return crontab's number (0-7, Sunday 0 and 7) of a day-of-week token."""
    low = token.lower()
    if low.isdigit() and int(low) <= 7:
        return int(low)
    if low in _CRONTAB_DAYS:
        return _CRONTAB_DAYS.index(low)
    raise ValueError(
        f"invalid day-of-week {item!r}: use 0-7 (0 and 7 are Sunday) or sun, mon, ..., sat"
    )


def _crontab_days_of_week(field: str) -> str:
    """Translate a crontab day-of-week field into APScheduler's day names.

    Crontab counts Sunday as 0 (and 7) and steps from Sunday; APScheduler 3.x
    counts Monday as 0. Spelling the days out removes the difference.
    """
    if field == "*":
        return "*"
    days: set[int] = set()
    for item in field.split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"invalid day-of-week step in {item!r}: use a number above 0")
            step = int(step_text)
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            low, _, high = base.partition("-")
            first, last = _crontab_day(low, item), _crontab_day(high, item)
            if first > last:
                raise ValueError(f"day-of-week range {item!r} runs backwards")
        else:
            first = _crontab_day(base, item)
            last = 7 if slash else first
        days.update(day % 7 for day in range(first, last + 1, step))
    # APScheduler's names, Monday first; crontab day d is _CRONTAB_DAYS[d].
    return ",".join(_CRONTAB_DAYS[d] for d in (1, 2, 3, 4, 5, 6, 0) if d in days)


def _cron_fields(expr: str) -> list[str]:
    """Split a cron expression into its five fields; ValueError if there are not five."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(
            "cron expression must have 5 fields (minute hour day-of-month month day-of-week), "
            f"got {len(fields)}"
        )
    return fields


def _cron_triggers(
    fields: list[str], weekdays: str, end_date: datetime | None = None
) -> list[CronTrigger]:
    """Build the wall-clock triggers whose union fires as crontab would."""
    minute, hour, day, month, day_of_week = fields
    common: dict[str, Any] = {
        "minute": minute,
        "hour": hour,
        "month": month,
        "second": 0,
        "timezone": UTC,
        "end_date": end_date,
    }
    if not day.startswith("*") and not day_of_week.startswith("*"):
        # crontab fires when either day field matches (APScheduler: when both do)
        return [CronTrigger(day=day, **common), CronTrigger(day_of_week=weekdays, **common)]
    return [CronTrigger(day=day, day_of_week=weekdays, **common)]


def _name_bad_field(fields: list[str], weekdays: str) -> str:
    """Return which cron field APScheduler refuses, for a message that names it."""
    values = [*fields[:4], weekdays]
    for field, label, value, text in zip(
        _CRON_FIELDS, _CRON_FIELD_NAMES, values, fields, strict=True
    ):
        try:
            CronTrigger(**{field: value}, timezone=UTC)
        except ValueError as exc:
            return f"{label} {text!r}: {exc}"
    return "the fields do not combine"


@functools.lru_cache(maxsize=4096)
def _cron_trigger(expr: str) -> Any:
    """Return the (cached) wall-clock trigger of a cron expression; ValueError if invalid.

    The trigger runs in UTC over local wall-clock times: :func:`_next_wall_fire`
    maps its fires into the policy's zone. APScheduler 3.x's own DST handling
    can return a fire time earlier than asked for in a repeated hour.
    """
    fields = _cron_fields(expr)
    try:
        weekdays = _crontab_days_of_week(fields[4])
    except ValueError as exc:
        raise ValueError(f"invalid cron expression {expr!r}: {exc}") from None
    try:
        triggers = _cron_triggers(fields, weekdays)
    except ValueError:
        reason = _name_bad_field(fields, weekdays)
        raise ValueError(f"invalid cron expression {expr!r}: {reason}") from None
    start = _REFERENCE.replace(tzinfo=UTC)
    horizon = start.replace(year=start.year + _HORIZON_YEARS)
    bounded = _cron_triggers(fields, weekdays, end_date=horizon)
    if all(t.get_next_fire_time(None, start) is None for t in bounded):
        raise ValueError(f"cron expression {expr!r} never fires")
    return triggers[0] if len(triggers) == 1 else OrTrigger(triggers)


def validate_cron(expr: str, timezone: str) -> None:
    """Check a 5-field cron expression in a time zone; raise ValueError saying what is wrong."""
    validate_timezone(timezone)
    _cron_trigger(" ".join(expr.split()))


def _next_wall_fire(
    trigger: Any, zone: zoneinfo.ZoneInfo, after: datetime, *, strictly: bool
) -> datetime:
    """Return, in UTC, the first fire of a wall-clock trigger after the instant ``after``.

    A wall time repeated when clocks go back fires once, at its first
    occurrence; a wall time skipped when they go forward fires as zoneinfo
    reads it (02:30 on the night of the change is 03:30 summer time).
    """
    after_utc = after.astimezone(UTC)
    wall = after_utc.astimezone(zone).replace(tzinfo=UTC)
    # APScheduler gives the first fire at or after a time rounded up to the second
    probe = wall + timedelta(microseconds=1) if strictly else wall
    for _ in range(10_000):
        fire: datetime | None = trigger.get_next_fire_time(None, probe)
        if fire is None:
            break
        instant = fire.replace(tzinfo=zone).astimezone(UTC)
        if instant > after_utc or (instant == after_utc and not strictly):
            return instant
        # still inside a repeated hour whose first occurrence is already past
        probe = fire + timedelta(microseconds=1)
    raise ValueError(f"no fire time after {after.isoformat()}")


#: Consecutive fire times computed at once and kept, per cron expression and zone, at most.
_RUN_LENGTH = 32
#: The first run's length: a key asked for once needs one fire; each run computed
#: after a miss is twice as long, up to :data:`_RUN_LENGTH`.
_FIRST_RUN = 2
#: Runs kept per expression and zone (the oldest is dropped first).
_RUNS_KEPT = 4
_runs: dict[tuple[str, str], list[tuple[datetime, tuple[datetime, ...]]]] = {}
_runs_lock = threading.Lock()


def next_fire(expr: str, timezone: str, after: datetime) -> datetime:
    """Return, in UTC, the first fire time of ``expr`` strictly after ``after``.

    Planning asks this for every cron policy, and policies share a few
    expressions while their last rotations cluster within one interval: so
    a run of consecutive fires is computed once and answered from by
    bisection (a run starting at ``start`` holds every fire after it up to
    its last), instead of stepping APScheduler's trigger per policy. Runs
    start short and double with each miss, so an expression only one
    policy uses costs two fires, not a whole run.
    """
    key = (expr, timezone)
    moment = after.astimezone(UTC)
    kept = _runs.get(key, ())
    for start, fires in kept:
        if start <= moment < fires[-1]:
            return fires[bisect.bisect_right(fires, moment)]
    trigger, zone = _cron_trigger(expr), validate_timezone(timezone)
    found: list[datetime] = []
    probe = moment
    longest = max((len(fires) for _, fires in kept), default=_FIRST_RUN // 2)
    for _ in range(min(_RUN_LENGTH, 2 * longest)):
        probe = _next_wall_fire(trigger, zone, probe, strictly=True)
        found.append(probe)
    with _runs_lock:
        _runs[key] = [*_runs.get(key, [])[-(_RUNS_KEPT - 1) :], (moment, tuple(found))]
    return found[0]


@functools.lru_cache(maxsize=4096)
def _reference_wall_fires(expr: str) -> tuple[datetime, ...]:
    """Return the first 50 wall-clock fires of ``expr`` from the reference date."""
    trigger = _cron_trigger(expr)
    fires: list[datetime] = []
    probe = _REFERENCE.replace(tzinfo=UTC)
    while len(fires) < _REFERENCE_FIRES:
        fire: datetime | None = trigger.get_next_fire_time(None, probe)
        if fire is None:
            break
        fires.append(fire)
        probe = fire + timedelta(microseconds=1)
    return tuple(fires)


@functools.lru_cache(maxsize=4096)
def cron_wall_interval(expr: str) -> timedelta:
    """Return the shortest wall-clock gap between the reference fires of ``expr``.

    What the expression says, the same in every zone: 7d for ``0 3 * * 0``,
    though a week across a daylight-saving change lasts 167h or 169h (that
    real gap is :func:`cron_min_interval`'s).
    """
    fires = _reference_wall_fires(expr)
    return min(
        (later - earlier for earlier, later in itertools.pairwise(fires)), default=timedelta.max
    )


@functools.lru_cache(maxsize=4096)
def cron_min_interval(expr: str, timezone: str) -> timedelta:
    """Return the shortest real gap between the reference fires of ``expr`` in a zone."""
    # the wall-clock fires are shared by every zone; only their instants differ
    zone = validate_timezone(timezone)
    shortest = timedelta.max
    previous: datetime | None = None
    for wall in _reference_wall_fires(expr):
        instant = wall.replace(tzinfo=zone).astimezone(UTC)
        if previous is not None:
            if instant <= previous:
                continue  # a skipped wall time read past a later one: fires once, as in next_due
            shortest = min(shortest, instant - previous)
        previous = instant
    return shortest


# ------------------------------------------------------------------------ windows


def _window_day(token: str, text: str) -> int:
    """Return the weekday number (0 is Monday) of a day name in a window."""
    low = token.strip().lower()
    if low in _WEEKDAYS:
        return _WEEKDAYS.index(low)
    if low in _FULL_WEEKDAYS:
        return _FULL_WEEKDAYS.index(low)
    raise ValueError(
        f"window {text!r}: unknown day {token.strip()!r}; use Mon, Tue, Wed, Thu, Fri, Sat, Sun"
    )


def _window_days(spec: str, text: str) -> frozenset[int]:
    """Return the weekdays named by a window's day list, such as ``Mon-Fri`` or ``Sat,Sun``."""
    days: set[int] = set()
    for item in spec.split(","):
        if not item.strip():
            raise ValueError(f"window {text!r}: empty day in the day list {spec!r}")
        low, dash, high = item.partition("-")
        first = _window_day(low, text)
        if not dash:
            days.add(first)
            continue
        last = _window_day(high, text)
        # a range may wrap around the week end: Fri-Mon is Fri, Sat, Sun, Mon
        days.update((first + i) % 7 for i in range((last - first) % 7 + 1))
    return frozenset(days)


def _window_minute(token: str, text: str, *, closing: bool) -> int:
    """Return the minutes after midnight of ``HH:MM`` (24:00 only as a closing time)."""
    match = _TIME.match(token)
    if not match:
        raise ValueError(f"window {text!r}: malformed time {token!r}; expected HH:MM")
    hour, minute = int(match[1]), int(match[2])
    if minute > 59 or hour > 24 or (hour == 24 and (minute or not closing)):
        raise ValueError(f"window {text!r}: {token!r} is not a time of day (00:00 to 23:59)")
    return hour * 60 + minute


@dataclass(frozen=True)
class Window:
    """The hours in which rotations may start, in the policy's time zone.

    ``days`` are the weekdays (0 is Monday) on which the window opens; a
    window that crosses midnight closes on the following day.
    """

    text: str
    days: frozenset[int]
    opens: int
    """Minutes after midnight when the window opens."""
    closes: int
    """Minutes after midnight when the window closes (1440 for 24:00)."""

    @property
    def crosses_midnight(self) -> bool:
        """Tell whether the window closes on the day after it opens."""
        return self.closes <= self.opens

    def contains(self, local_dt: datetime) -> bool:
        """Tell whether a wall-clock time in the policy's time zone lies inside the window."""
        minute = local_dt.hour * 60 + local_dt.minute
        weekday = local_dt.weekday()
        if not self.crosses_midnight:
            return weekday in self.days and self.opens <= minute < self.closes
        opened_today = weekday in self.days and minute >= self.opens
        opened_yesterday = (weekday - 1) % 7 in self.days and minute < self.closes
        return opened_today or opened_yesterday

    def next_opening(self, after: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
        """Return, in UTC, the first opening at or after the aware time ``after`` in ``zone``."""
        return _next_wall_fire(_opening_trigger(self), zone, after, strictly=False)

    def __str__(self) -> str:
        """Return the window as the policy wrote it."""
        return self.text


@functools.lru_cache(maxsize=1024)
def _opening_trigger(window: Window) -> Any:
    """Return the wall-clock trigger that fires when the window opens."""
    return CronTrigger(
        day_of_week=",".join(_WEEKDAYS[d] for d in sorted(window.days)),
        hour=window.opens // 60,
        minute=window.opens % 60,
        second=0,
        timezone=UTC,
    )


@functools.lru_cache(maxsize=1024)
def parse_window(text: str) -> Window:
    """Parse a window such as ``Mon-Fri 02:00-05:00`` or ``22:00-02:00``; ValueError if malformed.

    Without a day list the window opens every day. A window that crosses
    midnight belongs to the day it opens on.
    """
    parts = text.split()
    if len(parts) == 1 and ":" not in parts[0]:
        raise ValueError(
            f"window {text!r}: expected a time range HH:MM-HH:MM, e.g. 'Mon-Fri 02:00-05:00'"
        )
    if len(parts) == 1:
        days, times = frozenset(range(7)), parts[0]
    elif len(parts) == 2:
        days, times = _window_days(parts[0], text), parts[1]
    else:
        raise ValueError(
            f"window {text!r}: expected [DAYS] HH:MM-HH:MM, e.g. 'Mon-Fri 02:00-05:00'"
        )
    opening, dash, closing = times.partition("-")
    if not dash:
        raise ValueError(f"window {text!r}: expected a time range HH:MM-HH:MM, got {times!r}")
    opens = _window_minute(opening, text, closing=False)
    closes = _window_minute(closing, text, closing=True)
    if closes == opens:
        raise ValueError(f"window {text!r}: opens and closes at the same time")
    return Window(text=" ".join(parts), days=days, opens=opens, closes=closes)


# ---------------------------------------------------------------------- due dates
