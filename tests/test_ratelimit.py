"""Client-side rate limits: the token bucket and the per-quota limits."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from rotator.adapters.ratelimit import BEAT, IDLE, Pacing, TokenBucket, limits, parse
from rotator.errors import ConfigError, JournalError


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


def test_a_share_divides_the_ceiling_and_a_returned_share_restores_it() -> None:
    """Three holders: a third of the quota, paced at it; alone again: the whole quota."""
    t = _Time()
    bucket = TokenBucket(60, monotonic=t.monotonic, sleep=t.sleep)
    bucket.share(3)
    assert (bucket.ceiling, bucket.rate, bucket.burst) == (20, 20, 20)
    for _ in range(41):
        bucket.acquire()
    assert t.now == pytest.approx(1.0, abs=0.06)  # a 20-token burst, then 20 a second
    bucket.share(1)
    assert (bucket.ceiling, bucket.rate) == (60, 60)


def test_a_share_never_lifts_a_rate_still_recovering_from_a_cut() -> None:
    """After a cut, a larger share raises the ceiling; the rate keeps growing 5% a second to it."""
    t = _Time()
    bucket = TokenBucket(60, monotonic=t.monotonic, sleep=t.sleep)
    bucket.share(2)
    bucket.throttled()
    assert bucket.rate == pytest.approx(21)  # 70% of 30
    bucket.share(1)
    assert bucket.rate == pytest.approx(21) and bucket.ceiling == 60
    t.now += 2
    bucket.acquire()
    assert bucket.rate == pytest.approx(21 + 2 * 3)  # 5% of the new ceiling a second
    bucket.share(4)
    assert bucket.rate == 15  # a smaller share caps the rate at once


class _Holders:
    """What the journal would say: a fixed number of other runs per quota; records each ask."""

    def __init__(self, others: int = 0) -> None:
        self.others = others
        self.asked: list[list[str]] = []
        self.fail = False

    def __call__(self, quotas: Collection[str]) -> dict[str, int]:
        self.asked.append(list(quotas))
        if self.fail:
            raise JournalError("the journal is down")
        return {q: 1 + self.others for q in quotas}


def test_a_quota_is_joined_before_its_first_call_and_shared_from_it() -> None:
    """Beside three runs the first call already paces at a quarter, its burst a quarter too."""
    t = _Time()
    holders = _Holders(others=3)
    pacing = Pacing(holders, monotonic=t.monotonic)
    waits = [pacing.take("secretsmanager.write", "eu-west-1", 40, sleep=t.sleep) for _ in range(12)]
    assert holders.asked == [["secretsmanager.write@eu-west-1"]]
    assert pacing.bucket("secretsmanager.write", "eu-west-1", 40).ceiling == 10
    assert waits == pytest.approx([0.0] * 10 + [0.1, 0.1])  # a burst of 10, then 10 a second


def test_a_renewal_holds_what_was_used_lately_and_drops_what_went_idle() -> None:
    """Each renewal names the quotas called in the last IDLE seconds; a call between joins none."""
    t = _Time()
    holders = _Holders()
    pacing = Pacing(holders, monotonic=t.monotonic)
    pacing.take("vault", "a", 100, sleep=t.sleep)
    pacing.take("keyvault", "b", 100, sleep=t.sleep)  # a second quota joins: renewed with both
    pacing.take("vault", "a", 100, sleep=t.sleep)  # joined already: nothing asked
    assert holders.asked == [["vault@a"], ["keyvault@b", "vault@a"]]
    t.now += BEAT
    pacing.take("vault", "a", 100, sleep=t.sleep)
    pacing.renew()  # the heartbeat
    assert holders.asked[-1] == ["keyvault@b", "vault@a"]
    t.now += IDLE + 0.1
    pacing.take("vault", "a", 100, sleep=t.sleep)
    pacing.renew()  # keyvault unused for longer than IDLE: its share is given back
    assert holders.asked[-1] == ["vault@a"]
    pacing.take("keyvault", "b", 100, sleep=t.sleep)  # used again: joins again at once
    assert holders.asked[-1] == ["keyvault@b", "vault@a"]


def test_a_rejoin_makes_each_quota_ask_again_at_its_next_call() -> None:
    """After a rejoin the next call of a joined quota asks the holders before it is paced."""
    t = _Time()
    holders = _Holders(others=1)
    pacing = Pacing(holders, monotonic=t.monotonic)
    pacing.take("vault", "a", 100, sleep=t.sleep)
    pacing.take("vault", "a", 100, sleep=t.sleep)
    assert holders.asked == [["vault@a"]]
    pacing.rejoin()
    holders.others = 3
    pacing.take("vault", "a", 100, sleep=t.sleep)
    assert holders.asked == [["vault@a"], ["vault@a"]]
    assert pacing.bucket("vault", "a", 100).ceiling == 25


def test_a_rejoin_during_a_renewal_is_not_undone_by_it() -> None:
    """A renewal whose answer predates a rejoin (it only counted) leaves the quota to be joined
    again at its next call."""
    t = _Time()
    holders = _Holders()
    pacing = Pacing(holders, monotonic=t.monotonic)

    def rejoined_meanwhile(quotas: Collection[str]) -> dict[str, int]:
        pacing.rejoin()  # a rotation began while the journal answered
        return holders(quotas)

    pacing.take("vault", "a", 100, sleep=t.sleep)
    pacing.holders = rejoined_meanwhile
    pacing.renew()
    pacing.holders = holders
    pacing.take("vault", "a", 100, sleep=t.sleep)
    assert holders.asked == [["vault@a"], ["vault@a"], ["vault@a"]]


def test_more_holders_slow_every_bucket_of_the_quota_at_the_next_renewal() -> None:
    """A run joining elsewhere is seen at the next renewal: this run's ceiling halves."""
    t = _Time()
    holders = _Holders()
    pacing = Pacing(holders, monotonic=t.monotonic)
    pacing.take("vault", "a", 100, sleep=t.sleep)
    assert pacing.bucket("vault", "a", 100).ceiling == 100
    holders.others = 1
    pacing.renew()
    assert pacing.bucket("vault", "a", 100).ceiling == 50


def test_a_failed_renewal_keeps_the_last_shares_and_never_fails_a_call() -> None:
    """The journal down: calls go on at the shares last known."""
    t = _Time()
    holders = _Holders(others=1)
    pacing = Pacing(holders, monotonic=t.monotonic)
    pacing.take("vault", "a", 100, sleep=t.sleep)
    holders.fail = True
    pacing.renew()
    assert pacing.take("vault", "a", 100, sleep=t.sleep) >= 0
    assert pacing.bucket("vault", "a", 100).ceiling == 50


def test_a_quota_joined_while_the_journal_is_down_is_never_paced_at_the_whole_quota() -> None:
    """A failed join paces at the most holders any renewal reported, not alone."""
    t = _Time()
    holders = _Holders(others=3)
    pacing = Pacing(holders, monotonic=t.monotonic)
    pacing.take("vault", "a", 100, sleep=t.sleep)
    holders.fail = True
    pacing.take("secretsmanager.write", "eu-west-1", 50, sleep=t.sleep)
    assert pacing.bucket("secretsmanager.write", "eu-west-1", 50).ceiling == 12.5
    assert len(holders.asked) == 2


def test_a_bug_in_the_holders_never_fails_a_call() -> None:
    """Whatever the count raises, the call is paced and made."""
    t = _Time()

    def broken(quotas: Collection[str]) -> dict[str, int]:
        raise KeyError("a bug")

    pacing = Pacing(broken, monotonic=t.monotonic)
    assert pacing.take("vault", "a", 100, sleep=t.sleep) == 0.0


def test_without_holders_a_process_paces_every_quota_alone() -> None:
    """No journal to share with (an adapter's own runtime): the whole quota, nothing asked."""
    t = _Time()
    pacing = Pacing(monotonic=t.monotonic)
    pacing.take("vault", "a", 100, sleep=t.sleep)
    assert pacing.bucket("vault", "a", 100).ceiling == 100
