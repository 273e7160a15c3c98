"""What every adapter does around a request: pace it, report it, and slow down when throttled."""

from __future__ import annotations

import pytest

from providers.metering import answered, bucket, take
from rotator.adapters import Runtime
from tests.conftest import FakeClock

LIMITS = {"vault": 50.0, "free": 0.0}


@pytest.fixture
def runtime() -> Runtime:
    """A runtime whose sleeps advance a fake clock, counting what it is told."""
    clock = FakeClock()
    seen: list[tuple[str, str, str]] = []
    made = Runtime(clock=clock, sleep=clock.sleep, on_request=lambda *a: seen.append(a))
    made.cache["seen"] = seen
    return made


def test_a_throttled_answer_slows_its_quotas_pace_for_that_scope_only(runtime: Runtime) -> None:
    """One 429 from one Vault cuts that address's pace; another address keeps its own."""
    bucket(runtime, "vault", "https://a:8200", 50)  # made, nothing sent yet: cut from its rate
    take(runtime, LIMITS, "vault", "https://b:8200")
    answered(
        runtime,
        "vault",
        "kv.read",
        "throttled",
        limits=LIMITS,
        quota="vault",
        scope="https://a:8200",
    )
    assert bucket(runtime, "vault", "https://a:8200", 50).rate == pytest.approx(35)
    assert bucket(runtime, "vault", "https://b:8200", 50).rate == 50
    assert runtime.cache["seen"] == [("vault", "kv.read", "throttled")]


@pytest.mark.parametrize("outcome", ["ok", "transient", "permanent"])
def test_other_answers_leave_the_pace_alone(runtime: Runtime, outcome: str) -> None:
    """Only "slow down" slows down: an error is not a quota signal."""
    answered(runtime, "vault", "kv.read", outcome, limits=LIMITS, quota="vault", scope="a")
    assert bucket(runtime, "vault", "a", 50).rate == 50


def test_an_unlimited_quota_has_no_pace_to_slow(runtime: Runtime) -> None:
    """A quota set to 0 (or absent) is not paced: a throttled answer is only reported."""
    answered(runtime, "x", "op", "throttled", limits=LIMITS, quota="free", scope="s")
    answered(runtime, "x", "op", "throttled", limits=LIMITS, quota="absent", scope="s")
    assert runtime.pacing.buckets() == {}
    assert len(runtime.cache["seen"]) == 2
