"""Bounded grace: an old credential still in use is kept alive at most ``max_grace``.

A stolen old key must not be kept alive forever by using it: each use at the
deadline extends the grace by one grace (at least an hour), each extension is
alerted again, never past ``max_grace`` after promotion, where
``when_old_still_used_after_max`` revokes it (the default) or holds it with a
critical alert; ``run --once`` fails while an old credential is held past its
original deadline.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rotator.engine.runner import Engine
from rotator.errors import PolicyError
from rotator.lifecycle import State
from rotator.policy.loader import load_policies
from rotator.policy.model import default_max_grace
from rotator.service.loop import Service
from rotator.service.metrics import Metrics
from tests.conftest import FakeClock
from tests.watched import WatchedIssuer, recorded_alerts, watched_engine, watched_secret


@pytest.fixture
def watched(aws_in_process: None) -> type[WatchedIssuer]:
    return watched_secret()


def _old_ref(engine: Engine) -> str:
    [rotation] = engine.journal.open_rotations("app/key")
    assert rotation.old_ref is not None
    return rotation.old_ref


def _use_old(engine: Engine, clock: FakeClock) -> None:
    """The old credential is used (by a forgotten consumer, or a thief) just now."""
    WatchedIssuer.used[_old_ref(engine)] = clock() - timedelta(seconds=1)


def test_the_default_bound_is_three_graces_and_at_least_an_hour_more() -> None:
    """Documented default: max(3 x grace, grace + 1h)."""
    assert default_max_grace(timedelta(hours=24)) == timedelta(hours=72)
    assert default_max_grace(timedelta(0)) == timedelta(hours=1)
    assert default_max_grace(timedelta(minutes=10)) == timedelta(minutes=70)


def test_extensions_stop_at_max_grace_and_the_old_key_is_revoked(
    watched: type[WatchedIssuer], tmp_path: Path, clock: FakeClock
) -> None:
    """Used at every deadline: extended twice (re-alerted each time), revoked at 3h, critical."""
    engine = watched_engine(tmp_path, clock)
    engine.rotate("app/key")
    old = _old_ref(engine)
    promoted = clock()
    deadlines = []
    for _ in range(2):
        clock.advance(timedelta(hours=1, seconds=1))
        _use_old(engine, clock)
        report = engine.run_once()
        assert report.exit_code == 1  # held past its original deadline
        [rotation] = engine.journal.open_rotations("app/key")
        deadlines.append(rotation.grace_deadline)
    assert deadlines[1] is not None and deadlines[1] <= promoted + timedelta(hours=3)
    assert old not in watched.revoked
    clock.advance(timedelta(hours=2))  # past max_grace (3h after promotion)
    _use_old(engine, clock)
    report = engine.run_once()
    assert watched.revoked == [old]
    assert [r.state for r in engine.journal.open_rotations("app/key")] in ([], [State.REVOKED])
    still_used = [a for a in recorded_alerts(tmp_path) if a["event"] == "old-still-in-use"]
    assert [a["severity"] for a in still_used] == ["warning", "warning", "critical"]
    assert "revoked anyway (past max_grace)" in still_used[-1]["summary"]


def test_a_pass_while_held_fails_even_when_nothing_is_due(
    watched: type[WatchedIssuer], tmp_path: Path, clock: FakeClock
) -> None:
    """Between extensions nothing is due, but run --once still exits 1 (and says why)."""
    engine = watched_engine(tmp_path, clock)
    engine.rotate("app/key")
    clock.advance(timedelta(hours=1, seconds=1))
    _use_old(engine, clock)
    engine.run_once()
    clock.advance(timedelta(minutes=10))
    report = engine.run_once()
    assert report.exit_code == 1
    assert report.failed == []  # nothing failed in this run: it is held, and says so
    [held] = report.attention
    assert "held past its original grace deadline" in held.message


def test_an_old_key_no_longer_used_is_revoked_and_the_run_succeeds(
    watched: type[WatchedIssuer], tmp_path: Path, clock: FakeClock
) -> None:
    """Once quiet at the extended deadline, the old key is revoked and the run exits 0."""
    engine = watched_engine(tmp_path, clock)
    engine.rotate("app/key")
    clock.advance(timedelta(hours=1, seconds=1))
    _use_old(engine, clock)
    engine.run_once()
    clock.advance(timedelta(hours=1, seconds=1))
    report = engine.run_once()
    assert report.exit_code == 0
    assert len(watched.revoked) == 1


def test_an_extension_lasts_at_least_an_hour_when_the_grace_is_shorter(
    watched: type[WatchedIssuer], tmp_path: Path, clock: FakeClock
) -> None:
    """docs/policies.md: an extension is one grace, at least an hour; so it is, not only for 0s."""
    engine = watched_engine(tmp_path, clock, grace="5m", extra="    max_grace: 1d\n")
    engine.rotate("app/key")
    clock.advance(timedelta(minutes=5, seconds=1))
    _use_old(engine, clock)
    engine.run_once()
    [rotation] = engine.journal.open_rotations("app/key")
    assert rotation.grace_deadline == clock() + timedelta(hours=1)


def test_after_max_alert_holds_with_a_critical_alert(
    watched: type[WatchedIssuer], tmp_path: Path, clock: FakeClock
) -> None:
    """when_old_still_used_after_max: alert keeps the key, alerting critically at every check."""
    engine = watched_engine(
        tmp_path,
        clock,
        extra="    max_grace: 2h\n    when_old_still_used_after_max: alert\n",
    )
    engine.rotate("app/key")
    for _ in range(5):  # one extension to the limit (2h), then four checks past it
        clock.advance(timedelta(hours=1, seconds=1))
        _use_old(engine, clock)
        report = engine.run_once()
        assert report.exit_code == 1
    assert watched.revoked == []
    still_used = [a for a in recorded_alerts(tmp_path) if a["event"] == "old-still-in-use"]
    assert [a["severity"] for a in still_used] == ["warning"] + ["critical"] * 4
    assert all("past max_grace" in a["summary"] for a in still_used[1:])


def test_a_max_grace_shorter_than_the_grace_is_a_located_error(tmp_path: Path) -> None:
    """max_grace below grace is refused at validation, with file and line."""
    (tmp_path / "p.yaml").write_text(
        "secrets:\n  - name: a\n    store: {provider: aws-secretsmanager, secret_id: a}\n"
        "    schedule: {every: 30d}\n    grace: 2h\n    max_grace: 1h\n"
    )
    with pytest.raises(PolicyError) as raised:
        load_policies(tmp_path / "p.yaml")
    [problem] = raised.value.problems
    assert "p.yaml:6" in str(problem) and "max_grace 1h must be at least the grace 2h" in str(
        problem
    )


def test_held_rotations_are_recorded_as_extended_or_held_never_cut_short(
    watched: type[WatchedIssuer], tmp_path: Path, clock: FakeClock
) -> None:
    """The audit trail says grace-extended for an extension and grace-cut-short for --emergency."""
    engine = watched_engine(tmp_path, clock)
    engine.rotate("app/key")
    clock.advance(timedelta(hours=1, seconds=1))
    _use_old(engine, clock)
    engine.run_once()
    engine.rotate("app/key", emergency=True, reason="leaked")
    actions = [r.action for r in engine.journal.trail.records(secret="app/key")]
    assert "grace-extended" in actions and "grace-cut-short" in actions
    assert actions.index("grace-extended") < actions.index("grace-cut-short")


def test_a_held_credential_is_recorded_as_held_not_extended(
    watched: type[WatchedIssuer], tmp_path: Path, clock: FakeClock
) -> None:
    """Past max_grace with ``alert``, each check is written to the trail as grace-held."""
    engine = watched_engine(
        tmp_path,
        clock,
        extra="    max_grace: 2h\n    when_old_still_used_after_max: alert\n",
    )
    engine.rotate("app/key")
    for _ in range(3):  # one extension to the limit, then two checks past it
        clock.advance(timedelta(hours=1, seconds=1))
        _use_old(engine, clock)
        engine.run_once()
    actions = [r.action for r in engine.journal.trail.records(secret="app/key")]
    grace = [a for a in actions if a.startswith("grace-")]
    assert grace == ["grace-extended", "grace-held", "grace-held"]


def _rotations_counted(service: Service) -> dict[str, float]:
    """Return rotator_rotations_total of app/key, by outcome."""
    assert service.metrics is not None
    payload = service.metrics.render()[0].decode()
    return {
        s.labels["outcome"]: s.value
        for family in text_string_to_metric_families(payload)
        for s in family.samples
        if s.name == "rotator_rotations_total" and s.labels["secret"] == "app/key"
    }


def test_the_service_counts_a_held_old_credential_by_its_own_word_never_as_failed(
    watched: type[WatchedIssuer], tmp_path: Path, clock: FakeClock
) -> None:
    """An extension and a hold count once each, in the trail's words; never as a failed rotation."""
    engine = watched_engine(
        tmp_path,
        clock,
        extra="    max_grace: 2h\n    when_old_still_used_after_max: alert\n",
    )
    engine.rotate("app/key")  # promoted by an operator, before the service runs
    service = Service(engine, tmp_path / "p.yaml", clock=clock)
    service.metrics = Metrics(clock)
    service.run_pass()
    assert _rotations_counted(service) == {}
    clock.advance(timedelta(hours=1, seconds=1))
    _use_old(engine, clock)
    service.run_pass()  # extended, to max_grace
    clock.advance(timedelta(minutes=10))
    service.run_pass()  # still held past its original deadline: nothing happened
    assert _rotations_counted(service) == {"grace-extended": 1}
    clock.advance(timedelta(hours=1))
    _use_old(engine, clock)
    service.run_pass()  # past max_grace: held, with a critical alert
    assert _rotations_counted(service) == {"grace-extended": 1, "grace-held": 1}
    clock.advance(timedelta(minutes=10))
    service.run_pass()  # quiet since: revoked, which is no rotation's outcome
    assert len(watched.revoked) == 1
    assert _rotations_counted(service) == {"grace-extended": 1, "grace-held": 1}
