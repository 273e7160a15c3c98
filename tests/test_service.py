"""The service loop: wake-ups from due times, reloads that keep a good set, graceful stop."""

from __future__ import annotations

import os
import re
import threading
from collections import Counter
from collections.abc import Collection, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from structlog.testing import capture_logs

from providers.aws.secretsmanager import SecretsManagerStore
from providers.random import RandomIssuer
from providers.transport import commands
from rotator.adapters.discovery import Registry, registry
from rotator.adapters.values import Credential
from rotator.cli.serving import run_until_stopped
from rotator.engine.concurrency import Limits
from rotator.engine.report import Action, PlanItem
from rotator.engine.runner import Engine
from rotator.errors import TransientError, VerificationError
from rotator.journal.journal import Journal
from rotator.journal.records import Lease, SecretSummary
from rotator.policy.loader import load_policies
from rotator.service.loop import Service, ServiceSettings
from rotator.service.metrics import Metrics
from tests.conftest import FakeClock, calls_of, run_sql

ENTRY = """  - name: {name}
    store: {{provider: aws-secretsmanager, secret_id: {name}}}
    schedule: {{every: 1h}}
    grace: 1m
"""
POLICY = "secrets:\n" + ENTRY


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """In-process moto with fake credentials."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield


def _service(tmp_path: Path, clock: FakeClock, *names: str) -> Service:
    config = tmp_path / "policies.yaml"
    config.write_text(
        "".join(POLICY.format(name=n) for n in names).replace("\nsecrets:\n", "\n", len(names) - 1)
        if names
        else "secrets: []\n"
    )
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    for name in names:
        sm.create_secret(Name=name, SecretString="initial-value-long-enough")
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}", clock)
    engine = Engine(load_policies(config), journal, clock=clock, sleep=clock.sleep)
    return Service(engine, config, settings=ServiceSettings(reconcile=30.0), clock=clock)


def test_wakes_at_the_nearer_of_deadline_and_tick(aws: None, tmp_path: Path) -> None:
    """After a rotation the service sleeps until the grace deadline or the tick, whichever first."""
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2))
    service = _service(tmp_path, clock, "app")
    service.run_pass()
    [rotation] = service.engine.journal.open_rotations("app")
    assert rotation.grace_deadline == clock() + timedelta(minutes=1)
    assert service.next_wait() == 30.0  # the deadline is 60s away: the reconcile tick comes first
    clock.advance(timedelta(seconds=50))
    assert service.next_wait() == 10.0  # now the deadline is nearer than the tick


def test_nothing_due_after_restart(aws: None, tmp_path: Path) -> None:
    """A new service over the same journal finds nothing due: a restart starts no wave."""
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2))
    first = _service(tmp_path, clock, "app")
    first.run_pass()
    clock.advance(timedelta(minutes=2))
    first.run_pass()  # revoke after the grace
    engine = Engine(load_policies(first.config), first.engine.journal, clock=clock)
    again = Service(engine, first.config, clock=clock)
    assert not any(i.due for i in engine.plan())
    again.run_pass()
    assert len(engine.journal.history("app")) == 1


def _restarted(service: Service, clock: FakeClock) -> Service:
    """Return a new service (a new process) over the same policies and journal."""
    engine = Engine(
        load_policies(service.config), service.engine.journal, clock=clock, sleep=clock.sleep
    )
    return Service(engine, service.config, clock=clock)


def _first_pass_and_watch(service: Service) -> None:
    """Run the first pass, then the watch pass it starts, to its end."""
    service.run_pass()
    assert service._watcher is not None
    service._watcher.join(timeout=30)
    assert not service._watcher.is_alive()


def test_the_first_watch_checks_every_row_unless_the_first_pass_just_did(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At start, the rows and the whole chain are checked once, by the first pass or the watch.

    A journal changed since its last check is checked whole before the
    first pass plans (so the full watch check due at start is not made
    again); one found unchanged is taken as checked by the first pass, and
    checked whole by the watch.
    """
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2))
    first = _service(tmp_path, clock, "app")
    _first_pass_and_watch(first)  # rotates app: the journal changes after its check
    # Where each row-by-row check of the journal starts (None: the chain's start).
    verify = calls_of(monkeypatch, first.engine.journal.trail, "verify")
    changed = _restarted(first, clock)
    _first_pass_and_watch(changed)
    assert [kwargs["start"] for _, kwargs in verify] == [
        None
    ]  # once, from the chain's start: the first pass's check
    clock.advance(timedelta(seconds=1))
    unchanged = _restarted(first, clock)
    assert unchanged.engine.check_state().unchanged  # what its first pass will find
    unchanged.engine.trust._audit_verified = None  # as the new process starts
    _first_pass_and_watch(unchanged)
    assert [kwargs["start"] for _, kwargs in verify] == [
        None,
        None,
    ]  # the first pass took the digest; the watch checked whole


def test_broken_reload_keeps_the_old_set(aws: None, tmp_path: Path) -> None:
    """A reload of an invalid file is refused and counted; the policies in force stay."""
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    service = _service(tmp_path, clock, "app")
    service.config.write_text("secrets:\n  - name: Bad Name\n")
    assert service.reload() is False
    assert service.reloads_failed == 1
    assert set(service.engine.policies) == {"app"}


def test_reload_of_an_overflowing_duration_keeps_the_old_set(aws: None, tmp_path: Path) -> None:
    """A reload of ``every: 999999999w`` is refused with the problem logged; nothing crashes."""
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    service = _service(tmp_path, clock, "app")
    huge = POLICY.format(name="other").replace("every: 1h", 'every: "999999999w"')
    service.config.write_text(huge)
    with capture_logs() as logs:
        assert service.reload() is False
    assert service.reloads_failed == 1
    assert set(service.engine.policies) == {"app"}
    [refused] = [e for e in logs if e["event"].startswith("reload refused")]
    assert any("policies.yaml:4:" in p and "longer than 10 years" in p for p in refused["problems"])


def test_reload_survives_any_error_while_loading(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception while loading is logged and counted; the old policies stay."""
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    service = _service(tmp_path, clock, "app")
    service.metrics = Metrics(clock)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise OverflowError("Python int too large to convert to C int")

    monkeypatch.setattr("rotator.service.loop.load_policies", broken)
    with capture_logs() as logs:
        assert service.reload() is False
    assert service.reloads_failed == 1
    assert set(service.engine.policies) == {"app"}
    [refused] = [e for e in logs if e["event"].startswith("reload refused")]
    assert refused["log_level"] == "error"
    assert "OverflowError" in refused["problems"][0]
    with capture_logs() as after:
        service.run_pass()  # and the service goes on with the old set
    assert [e for e in after if e["event"] == "pass failed"] == []
    assert service.last_pass == clock()


def test_valid_reload_adds_and_removes(aws: None, tmp_path: Path) -> None:
    """A valid reload schedules added secrets and drops removed ones."""
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    service = _service(tmp_path, clock, "app")
    service.config.write_text(POLICY.format(name="other"))
    assert service.reload() is True
    assert set(service.engine.policies) == {"other"}


def test_edited_file_is_noticed(aws: None, tmp_path: Path) -> None:
    """Changing a policy file's contents makes the loop reload before its next pass."""
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    service = _service(tmp_path, clock, "app")
    assert not service._files_changed()
    service.config.write_text(POLICY.format(name="other") + "\n# edited\n")
    stat = service.config.stat()
    os.utime(service.config, (stat.st_atime, stat.st_mtime + 5))
    assert service._files_changed()


def test_stop_ends_the_loop_with_exit_0(aws: None, tmp_path: Path) -> None:
    """stop() from another thread ends run() with 0 after the current pass."""
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    service = _service(tmp_path, clock, "app")
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(service.run()))
    worker.start()
    passed = threading.Event()
    for _ in range(3000):  # poll, with a deadline, for the first pass to finish
        if service.last_pass is not None or passed.wait(0.01):
            break
    service.stop()
    worker.join(timeout=30)
    assert result == [0]
    assert service.last_pass is not None


def test_stop_is_asked_between_secrets(aws: None, tmp_path: Path) -> None:
    """A pass told to stop handles no further secret."""
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2))
    service = _service(tmp_path, clock, "a1", "a2", "a3")
    service.engine.limits = Limits(total=1)
    calls: list[int] = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 1

    report = service.engine.run_once(stop=stop)
    assert len(report.outcomes) == 1  # the first secret (each run starts at its own offset)


class CountingJournal(Journal):
    """A real journal that remembers how many secrets each summaries() call asked for."""

    def __init__(self, url: str, clock: FakeClock) -> None:
        super().__init__(url, clock)
        self.asked: list[int] = []

    def summaries(
        self, secret: str | None = None, *, names: Collection[str] | None = None
    ) -> dict[str, SecretSummary]:
        """Count, then read as usual."""
        self.asked.append(-1 if names is None and secret is None else len(names or [secret]))
        return super().summaries(secret, names=names)


JITTERED = """  - name: {name}
    store: {{provider: aws-secretsmanager, secret_id: {name}}}
    schedule: {{every: 1d, jitter: 6h}}
    grace: 1m
"""


def _jittered_service(
    tmp_path: Path, clock: FakeClock, count: int, journal: Journal | None = None
) -> Service:
    config = tmp_path / "policies.yaml"
    config.write_text("secrets:\n" + "".join(JITTERED.format(name=f"s{i}") for i in range(count)))
    if journal is None:
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        for i in range(count):
            sm.create_secret(Name=f"s{i}", SecretString=f"initial-value-{i:04d}")
        journal = CountingJournal(f"sqlite:///{tmp_path / 'j.db'}", clock)
    engine = Engine(load_policies(config), journal, clock=clock, sleep=clock.sleep)
    return Service(engine, config, settings=ServiceSettings(reconcile=30.0), clock=clock)


def _rotations(service: Service, count: int) -> list[int]:
    return [len(service.engine.journal.history(f"s{i}")) for i in range(count)]


def _run_until(service: Service, clock: FakeClock, until: datetime) -> int:
    """Drive the service loop on the fake clock: pass, sleep next_wait, until ``until``."""
    passes = 0
    while clock() < until:
        service.run_pass()
        passes += 1
        clock.advance(timedelta(seconds=service.next_wait()))
    return passes


def test_a_pass_plans_only_what_it_touches(aws: None, tmp_path: Path) -> None:
    """After the first pass, a pass with nothing due reads the journal for no secret at all."""
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0) + timedelta(days=2))
    service = _jittered_service(tmp_path, clock, 30)
    journal = service.engine.journal
    assert isinstance(journal, CountingJournal)
    _run_until(service, clock, clock() + timedelta(hours=7))  # all rotated, all revoked
    assert _rotations(service, 30) == [1] * 30
    journal.asked.clear()
    clock.advance(timedelta(minutes=1))
    service.run_pass()
    assert journal.asked == []  # no secret's summary read, let alone all 30
    assert len(service.index) == 30


def test_restart_after_a_week_catches_up_spread_over_the_jitter(aws: None, tmp_path: Path) -> None:
    """A service back after a week rotates the missed secrets across the 6h jitter, each once."""
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    # Come back half-way through a 6h catch-up slot (slots start at the epoch),
    # whatever the time of day the test runs: about half the secrets are due
    # at once. Near a slot's end nearly all would be, by design.
    back = (start + timedelta(hours=7)).timestamp() % (6 * 3600)
    start += timedelta(seconds=(3 * 3600 - back) % (6 * 3600))
    clock = FakeClock(start)
    first = _jittered_service(tmp_path, clock, 40)
    _run_until(first, clock, clock() + timedelta(hours=7))
    assert _rotations(first, 40) == [1] * 40

    clock.advance(timedelta(days=8))  # the service was stopped for a week
    again = _jittered_service(tmp_path, clock, 40, journal=first.engine.journal)
    again.run_pass()
    after_first_pass = _rotations(again, 40)
    assert 0 < after_first_pass.count(2) < 40  # some now, not a wave of all 40
    _run_until(again, clock, clock() + timedelta(hours=6, minutes=1))
    assert _rotations(again, 40) == [2] * 40  # every one caught up within the jitter, once


def test_grace_deadline_survives_a_restart(aws: None, tmp_path: Path) -> None:
    """A service restarted during a grace revokes at the recorded deadline, not a grace later."""
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2))
    first = _service(tmp_path, clock, "app")
    first.run_pass()
    [rotation] = first.engine.journal.open_rotations("app")
    deadline = rotation.grace_deadline
    assert deadline is not None
    clock.advance(timedelta(seconds=20))
    engine = Engine(load_policies(first.config), first.engine.journal, clock=clock)
    again = Service(engine, first.config, clock=clock)
    again.run_pass()
    assert again.index.get("app") == deadline
    clock.advance(deadline - clock() - timedelta(seconds=1))
    again.run_pass()
    assert engine.journal.open_rotations("app")[0].state.value == "grace"
    clock.advance(timedelta(seconds=1))
    again.run_pass()
    assert engine.journal.open_rotations("app") == []  # revoked (and done) at the deadline
    [(_, events)] = engine.journal.history("app")
    assert [e.at for e in events if e.step == "revoke"] == [deadline]


def test_the_first_pass_acts_on_the_plan_made_at_start(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planning everything at start finds what is due and the first pass rotates it as planned:
    each store the journal knows nothing of is asked when it last changed once, not twice."""
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2))
    service = _service(tmp_path, clock, "a", "b")
    asked: Counter[str] = Counter()
    last_changed = SecretsManagerStore.last_changed

    def counted(store: SecretsManagerStore) -> datetime | None:
        asked[store.config.secret_id] += 1
        return last_changed(store)

    monkeypatch.setattr(SecretsManagerStore, "last_changed", counted)
    service.run_pass()
    assert asked == {"a": 1, "b": 1}
    assert [len(service.engine.journal.history(n)) for n in ("a", "b")] == [1, 1]


@pytest.mark.parametrize(
    "forge", ["state = 'revoked-early'", "updated_at = 'zzz'", "updated_at = x'00'"]
)
def test_a_row_rotator_cannot_read_sets_its_secret_aside_and_the_service_goes_on(
    aws: None, tmp_path: Path, forge: str
) -> None:
    """A value rotator never writes, in one secret's unfinished rotation: the others are rotated.

    Before, reading the journal's unfinished rotations (or the summaries)
    failed with a bare ValueError at the service's start; a time that is no
    time in ``updated_at`` (which SQLite sorts after every time) failed
    every pass's look for rotations made elsewhere.
    """
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2))
    service = _service(tmp_path, clock, "app")
    service.run_pass()
    assert service.engine.journal.open_rotations("app")  # in grace
    run_sql(f"sqlite:///{tmp_path / 'j.db'}", f"UPDATE rotations SET {forge}")
    config = tmp_path / "policies.yaml"
    config.write_text(config.read_text() + ENTRY.format(name="other"))
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="other", SecretString="initial-value-long-enough"
    )
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}", clock)
    engine = Engine(load_policies(config), journal, clock=clock, sleep=clock.sleep)
    restarted = Service(engine, config, settings=ServiceSettings(reconcile=30.0), clock=clock)
    restarted.run_pass()
    assert len(restarted.engine.journal.history("other")) == 1
    clock.advance(timedelta(minutes=5))
    restarted.run_pass()  # the next pass too, past the old key's grace
    assert restarted.engine.journal.open_rotations("other") == []  # revoked: the pass went on
    [item] = restarted.engine.plan(names=["app"])
    assert item.action is Action.ATTENTION and "of app does not match its seal" in item.reason


def test_a_store_unreadable_while_planning_everything_is_asked_again_by_the_first_pass(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that did not answer the start-up plan is not failed on the strength of it: the
    first pass asks it again, and rotates the secret when it answers."""
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2))
    service = _service(tmp_path, clock, "app")
    last_changed = SecretsManagerStore.last_changed
    down = [True]

    def answering(store: SecretsManagerStore) -> datetime | None:
        if down[0]:
            raise TransientError("unreachable", provider="test", operation="last_changed")
        return last_changed(store)

    plan_everything = service._plan_everything

    def back_after_it() -> dict[str, list[PlanItem]]:
        planned = plan_everything()  # every retry of the store failed
        down[0] = False
        return planned

    monkeypatch.setattr(SecretsManagerStore, "last_changed", answering)
    service._plan_everything = back_after_it  # type: ignore[method-assign]
    service.run_pass()
    assert len(service.engine.journal.history("app")) == 1


def test_a_secret_changed_elsewhere_while_planning_is_planned_again(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret another process rotated after the start-up plan saw it due is not acted on by
    that plan: the pass plans it again from the journal, finds nothing due, takes no lease."""
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2))
    service = _service(tmp_path, clock, "app")
    journal = service.engine.journal
    other = Engine(load_policies(service.config), journal, clock=clock)
    plan_everything = service._plan_everything
    taken: list[str] = []
    acquire = journal.leases.acquire

    def counted(secret: str, owner: str, ttl: timedelta) -> Lease | None:
        if owner == service.engine.owner:
            taken.append(secret)
        return acquire(secret, owner, ttl)

    monkeypatch.setattr(journal.leases, "acquire", counted)

    def rotated_meanwhile() -> dict[str, list[PlanItem]]:
        planned = plan_everything()
        assert any(i.due for i in planned["app"])
        assert other.rotate("app").exit_code == 0  # `rotator rotate app` elsewhere
        return planned

    service._plan_everything = rotated_meanwhile  # type: ignore[method-assign]
    service.run_pass()
    assert len(journal.history("app")) == 1  # the other run's, not a second
    assert taken == []


def test_rotation_by_another_process_is_noticed(aws: None, tmp_path: Path) -> None:
    """A rotation made by hand elsewhere moves the service's next due time at its next pass."""
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2))
    service = _service(tmp_path, clock, "app")
    service.run_pass()
    clock.advance(timedelta(minutes=5))
    service.run_pass()  # revoked after the 1m grace
    due_before = service.index.get("app")
    assert due_before is not None
    clock.advance(timedelta(minutes=10))
    other = Engine(load_policies(service.config), service.engine.journal, clock=clock)
    assert other.rotate("app").exit_code == 0  # `rotator rotate app` in another process
    service.run_pass()
    assert service.index.get("app") == clock() + timedelta(minutes=1)  # its grace deadline


class _RefusingIssuer(RandomIssuer):
    """A random issuer whose credentials never verify (a consumer that rejects them)."""

    def verify(self, credential: Credential) -> None:
        raise VerificationError("refused by the test", provider="test")


def test_needs_attention_is_exported_logged_once_and_left_alone(aws: None, tmp_path: Path) -> None:
    """After five rollbacks the secret is counted and left alone until a manual fix."""
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2))
    service = _service(tmp_path, clock, "app")
    base = registry()
    service.engine.adapters = Registry(base.stores, {**base.issuers, "random": _RefusingIssuer})
    service.metrics = Metrics(clock)
    with capture_logs() as logs:
        passes = _run_until(service, clock, clock() + timedelta(days=2))
    assert passes > 10
    assert len(service.engine.journal.history("app")) == 5  # then no sixth attempt
    text = service.metrics.render()[0].decode()
    assert "rotator_secrets_needing_attention 1.0" in text
    attention = [e for e in logs if e["event"] == "secret needs attention"]
    assert len(attention) == 1 and attention[0]["log_level"] == "error"

    fixed = Engine(load_policies(service.config), service.engine.journal, clock=clock)
    assert fixed.rotate("app").exit_code == 0  # the operator, from another process
    service.run_pass()
    assert "rotator_secrets_needing_attention 0.0" in service.metrics.render()[0].decode()
    assert service.index.get("app") is not None  # scheduled again


def test_not_ready_while_the_journal_is_unreachable(aws: None, tmp_path: Path) -> None:
    """/readyz's probe says not ready, naming the journal, when the database does not answer."""
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    service = _service(tmp_path, clock, "app")
    service.run_pass()
    assert service.ready() == (True, "ready")
    dead = Journal("postgresql://rotator:rotator@127.0.0.1:1/none", clock)
    service.engine.journal = dead
    ready, reason = service.ready()
    assert not ready and reason.startswith("journal unreachable")
    service.run_pass()  # a pass against a dead journal is logged, never raised
    assert service.last_pass == clock()


def test_a_due_reminder_is_looked_at_hourly_and_exported(aws: None, tmp_path: Path) -> None:
    """A due manual secret is reminded, looked at again in an hour (not each pass), and gauged."""
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2))
    service = _service(tmp_path, clock, "partner")
    config = Path(service.config)
    manual = "    grace: 1m\n    issuer: {kind: manual}\n"
    config.write_text(config.read_text().replace("    grace: 1m\n", manual))
    assert service.reload()
    service.metrics = Metrics(clock)
    with capture_logs() as logs:
        service.run_pass()
    assert service.index.get("partner") == clock() + timedelta(hours=1)
    assert service.engine.journal.open_rotations() == []  # nothing minted
    [reminder] = [e for e in logs if e.get("alert") == "rotation-due"]
    assert reminder["log_level"] == "warning" and reminder["alert_secret"] == "partner"
    text = service.metrics.render()[0].decode()
    gauge = [line for line in text.splitlines() if "next_rotation_timestamp" in line]
    assert any('secret="partner"' in line for line in gauge if not line.startswith("#"))


def test_serving_logs_where_the_health_endpoint_listens_once(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One start of `rotator run` says once where /metrics and the probes listen (the real port)."""
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    service = _service(tmp_path, clock, "app")
    monkeypatch.setattr(service, "install_signal_handlers", lambda: None)  # the test's own stay
    # run_until_stopped ends the hooks as it returns, which marks this process as stopping:
    # give that mark to this test only, not to every test after it.
    monkeypatch.setattr(commands, "_STOPPING", threading.Event())
    service.stop()  # run() returns at once: the start is what is looked at
    with capture_logs() as logs:
        assert run_until_stopped(service, Metrics(clock), "127.0.0.1:0", 30.0) == 0
    [listening] = [e for e in logs if e["event"] == "health endpoint listening"]
    assert re.fullmatch(r"http://127\.0\.0\.1:[1-9][0-9]*", listening["url"])
