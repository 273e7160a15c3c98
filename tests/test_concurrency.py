"""Bounded parallelism: total and per-provider limits, failures kept apart, stop and deadline."""

from __future__ import annotations

import threading

import pytest

from rotator.engine.concurrency import DEFAULT_PER_PROVIDER, DEFAULT_TOTAL, Limits, run_bounded
from rotator.errors import ConfigError

WAIT = 10.0  # seconds a test waits for another thread before calling it stuck


class Gauge:
    """Counts items running at once, overall and per key, and keeps the peaks."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.total = 0
        self.peak_total = 0

    def enter(self, key: str) -> None:
        """Count one more item of ``key`` running."""
        with self.lock:
            self.now[key] = self.now.get(key, 0) + 1
            self.total += 1
            self.peak[key] = max(self.peak.get(key, 0), self.now[key])
            self.peak_total = max(self.peak_total, self.total)

    def leave(self, key: str) -> None:
        """Count one item of ``key`` finished."""
        with self.lock:
            self.now[key] -= 1
            self.total -= 1


def _fail(item: str, exc: Exception) -> str:
    return f"{item}: {type(exc).__name__}"


def test_total_limit_is_reached_and_never_exceeded() -> None:
    """Three slots run three items at once (a barrier of three passes) and never four."""
    gauge = Gauge()
    barrier = threading.Barrier(3, timeout=WAIT)

    def work(item: str) -> str:
        gauge.enter("k")
        try:
            if item in ("i0", "i1", "i2"):
                barrier.wait()  # breaks (and fails the item) unless three run together
            return item
        finally:
            gauge.leave("k")

    items = [f"i{n}" for n in range(10)]
    done = run_bounded(
        items, work, key=lambda _: "k", limits=Limits(total=3, per_key=5), on_error=_fail
    )
    assert sorted(done.results) == sorted(items)
    assert gauge.peak_total == 3


def test_a_busy_provider_does_not_hold_up_another() -> None:
    """With ``a`` at its per-provider limit, ``b`` items still start and finish."""
    gauge = Gauge()
    b_finished = threading.Event()
    b_count = 0
    lock = threading.Lock()

    def work(item: str) -> str:
        nonlocal b_count
        key = item[0]
        gauge.enter(key)
        try:
            if key == "a":
                # Every a-item waits for the b-items: if they queued behind a, this times out.
                if not b_finished.wait(WAIT):
                    return f"{item}: stuck"
            else:
                with lock:
                    b_count += 1
                    if b_count == 2:
                        b_finished.set()
            return item
        finally:
            gauge.leave(key)

    items = ["a1", "a2", "a3", "a4", "a5", "a6", "b1", "b2"]
    done = run_bounded(
        items,
        work,
        key=lambda item: item[0],
        limits=Limits(total=4, per_key=2),
        on_error=_fail,
    )
    assert sorted(done.results) == sorted(items)
    assert gauge.peak["a"] == 2
    assert gauge.peak_total <= 4


def test_override_raises_one_provider_above_the_default() -> None:
    """An override lets one key run more items than the per-key default."""
    barrier = threading.Barrier(3, timeout=WAIT)

    def work(item: str) -> str:
        if item[0] == "a":
            barrier.wait()
        return item

    limits = Limits(total=4, per_key=1, overrides={"a": 3})
    done = run_bounded(["a1", "a2", "a3"], work, key=lambda i: i[0], limits=limits, on_error=_fail)
    assert sorted(done.results) == ["a1", "a2", "a3"]


def test_each_quota_scope_of_a_provider_has_its_own_limit() -> None:
    """``PROVIDER@SCOPE`` keys (two Regions) each run up to the provider's limit, side by side."""
    barrier = threading.Barrier(4, timeout=WAIT)  # two of each Region at once, or a timeout

    def work(item: str) -> str:
        barrier.wait()
        return item

    items = ["sm@us-east-1:1", "sm@us-east-1:2", "sm@eu-west-1:1", "sm@eu-west-1:2"]
    limits = Limits(total=8, per_key=1, overrides={"sm": 2})
    assert limits.of("sm@us-east-1") == 2 and limits.of("other@x") == 1
    done = run_bounded(items, work, key=lambda i: i.split(":")[0], limits=limits, on_error=_fail)
    assert sorted(done.results) == sorted(items)


def test_one_failure_does_not_stop_the_others() -> None:
    """An exception becomes that item's result; the other items still run."""

    def work(item: str) -> str:
        if item == "bad":
            raise RuntimeError("boom")
        return item

    for total in (1, 4):
        done = run_bounded(
            ["x", "bad", "y"], work, key=lambda _: "k", limits=Limits(total=total), on_error=_fail
        )
        assert sorted(done.results) == ["bad: RuntimeError", "x", "y"]


def test_stop_starts_nothing_more_and_lists_what_was_left() -> None:
    """Once stop is asked for, pending items are reported as not started."""
    stopping = threading.Event()

    def work(item: str) -> str:
        stopping.set()
        return item

    done = run_bounded(
        ["a", "b", "c"],
        work,
        key=lambda _: "k",
        limits=Limits(total=1),
        on_error=_fail,
        stop=stopping.is_set,
    )
    assert done.results == ["a"]
    assert done.not_started == ["b", "c"]


def test_deadline_gives_up_on_a_stuck_item() -> None:
    """After stop, an item still running at the deadline is returned as abandoned."""
    release = threading.Event()
    started = threading.Event()

    def work(item: str) -> str:
        if item == "slow":
            started.set()
            release.wait(WAIT)
        return item

    try:
        done = run_bounded(
            ["slow", "fast"],
            work,
            key=lambda _: "k",
            limits=Limits(total=2),
            on_error=_fail,
            stop=started.is_set,
            deadline=0.05,
            poll=0.01,
        )
    finally:
        release.set()
    assert done.abandoned == ["slow"]
    assert "slow" not in done.results


def test_limits_parse_the_environment_form() -> None:
    """``ROTATOR_CONCURRENCY`` sets the total, the per-provider default and overrides."""
    limits = Limits.parse("16, per-provider=3, vault-kv=1")
    assert (limits.total, limits.of("aws-secretsmanager"), limits.of("vault-kv")) == (16, 3, 1)
    assert Limits.parse("16", total=2).total == 2
    default = Limits.parse("")
    assert (default.total, default.of("x")) == (DEFAULT_TOTAL, DEFAULT_PER_PROVIDER)


@pytest.mark.parametrize("text", ["0", "vault-kv=0", "=3", "x=y", "many"])
def test_limits_refuse_bad_entries(text: str) -> None:
    """A malformed ``ROTATOR_CONCURRENCY`` entry is a configuration error naming it."""
    with pytest.raises(ConfigError, match="ROTATOR_CONCURRENCY"):
        Limits.parse(text)
