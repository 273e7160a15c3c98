"""Client-side rate limits: the token bucket and the per-quota limits."""

from __future__ import annotations

import pytest

from rotator.adapters.ratelimit import TokenBucket, limits, parse
from rotator.errors import ConfigError


class _Time:
    """A monotonic clock the test moves, whose sleep advances it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_burst_passes_then_calls_are_paced_at_the_rate() -> None:
    """With rate 5/s and burst 5, five calls pass at once and the next ones wait 0.2s each."""
    t = _Time()
    bucket = TokenBucket(5, monotonic=t.monotonic, sleep=t.sleep)
    waits = [bucket.acquire() for _ in range(8)]
    assert waits[:5] == [0.0] * 5
    assert waits[5:] == pytest.approx([0.2, 0.2, 0.2])
    assert t.now == pytest.approx(0.6)


def test_tokens_refill_with_time_up_to_the_burst() -> None:
    """After a quiet second the bucket is full again, but never fuller than its burst."""
    t = _Time()
    bucket = TokenBucket(2, burst=2, monotonic=t.monotonic, sleep=t.sleep)
    bucket.acquire()
    bucket.acquire()
    t.now += 10
    assert [bucket.acquire(), bucket.acquire(), bucket.acquire()] == pytest.approx([0, 0, 0.5])


def test_sustained_throughput_stays_at_the_rate() -> None:
    """1,000 calls through a 50/s bucket take 19.9s of (injected) time, whatever the burst."""
    t = _Time()
    bucket = TokenBucket(50, monotonic=t.monotonic, sleep=t.sleep)
    for _ in range(1000):
        bucket.acquire()
    assert t.now == pytest.approx((1000 - 50) / 50)


def _send(bucket: TokenBucket, t: _Time, per_second: float, seconds: float) -> None:
    """Call ``acquire`` ``per_second`` times a second for ``seconds`` of injected time."""
    for _ in range(round(per_second * seconds)):
        bucket.acquire()
        t.now += 1 / per_second


def test_a_throttling_answer_lowers_the_pace() -> None:
    """Sending at the ceiling, a throttling answer cuts to 70%; the next calls wait for it."""
    t = _Time()
    bucket = TokenBucket(50, monotonic=t.monotonic, sleep=t.sleep)
    _send(bucket, t, 50, 1.0)
    bucket.throttled()
    assert bucket.rate == pytest.approx(35, rel=0.03)
    waits = [bucket.acquire() for _ in range(5)]
    # The one token kept, then one call every 1/35 s: no burst of 50 saved up.
    assert waits == pytest.approx([0.0] + [1 / 35] * 4, rel=0.05)


def test_a_caller_below_the_ceiling_is_slowed_from_what_it_sends() -> None:
    """At 10 calls a second under a 50/s ceiling, a throttle cuts to 7/s, not to 35/s."""
    t = _Time()
    bucket = TokenBucket(50, monotonic=t.monotonic, sleep=t.sleep)
    _send(bucket, t, 10, 2.0)
    bucket.throttled()
    assert bucket.rate == pytest.approx(7, rel=0.15)  # ~10/s counted over the last second


def test_the_answers_of_one_burst_cut_the_rate_once() -> None:
    """Ten throttling answers within a second are one signal: one cut, ten counted."""
    t = _Time()
    bucket = TokenBucket(50, monotonic=t.monotonic, sleep=t.sleep)
    for _ in range(10):
        bucket.throttled()
        t.now += 0.05
    # One cut to 35, then 0.45 quiet-enough seconds of growth (5% of 50 a second).
    assert (bucket.rate, bucket.cuts, bucket.throttles) == (pytest.approx(35 + 2.5 * 0.45), 1, 10)
    t.now += 1.0
    bucket.throttled()  # a second later: a new signal
    assert bucket.cuts == 2 and bucket.rate < 35


def test_quiet_time_gives_the_rate_back_up_to_the_ceiling_never_past_it() -> None:
    """After a cut each quiet second adds 5% of the ceiling, until the ceiling."""
    t = _Time()
    bucket = TokenBucket(40, monotonic=t.monotonic, sleep=t.sleep)
    bucket.throttled()
    assert bucket.rate == pytest.approx(28)
    t.now += 2
    bucket.acquire()
    assert bucket.rate == pytest.approx(28 + 2 * 2)  # 5% of 40 a second
    t.now += 60
    bucket.acquire()
    assert bucket.rate == 40


def test_the_rate_never_falls_below_its_floor() -> None:
    """However many throttling answers, the rate stays at 5% of the ceiling or more."""
    t = _Time()
    bucket = TokenBucket(20, monotonic=t.monotonic, sleep=t.sleep)
    seen = []
    for _ in range(50):
        bucket.throttled()
        seen.append(bucket.rate)
        t.now += 0.5
        bucket.throttled()  # inside the reaction time: no cut
        seen.append(bucket.rate)
        t.now += 0.5
    assert min(seen) >= 20 * 0.05
    # A cut a second, a second's growth (1/s) between: it settles where r = 0.7 (r + 1).
    assert seen[-2] == pytest.approx(0.7 / 0.3, rel=0.01)
    low = TokenBucket(20, monotonic=t.monotonic, sleep=t.sleep)
    low.rate = 1.2  # a rate a cut would take below the floor
    low.throttled()
    assert low.rate == pytest.approx(1.0)


def test_environment_overrides_and_turns_off_limits() -> None:
    """ROTATOR_RATE_LIMITS changes a limit, adds one, or turns one off with 0."""
    got = limits({"a": 1.0, "b": 2.0}, {"ROTATOR_RATE_LIMITS": "a=5, b=0,c=3"})
    assert got == {"a": 5.0, "b": 0.0, "c": 3.0}


@pytest.mark.parametrize("raw", ["a", "a=", "a=fast", "=3", "a=-1", "a=nan", "a=inf"])
def test_malformed_limits_are_refused_and_never_fail_a_call(raw: str) -> None:
    """A malformed entry is refused where it is judged (at start); adapters keep the defaults.

    An adapter reading the variable later paces at its defaults rather than
    fail a rotation half-way (every command judged it before its first call).
    """
    with pytest.raises(ConfigError, match="ROTATOR_RATE_LIMITS"):
        parse(raw)
    assert limits({"a": 1.0}, {"ROTATOR_RATE_LIMITS": raw}) == {"a": 1.0}
