"""The service loop: wake-ups from due times, reloads that keep a good set, graceful stop."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from rotator.concurrency import Limits
from rotator.engine import Engine
from rotator.journal import Journal
from rotator.loader import load_policies
from rotator.service import Service, ServiceSettings
from tests.conftest import FakeClock

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


def test_broken_reload_keeps_the_old_set(aws: None, tmp_path: Path) -> None:
    """A reload of an invalid file is refused and counted; the policies in force stay."""
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    service = _service(tmp_path, clock, "app")
    service.config.write_text("secrets:\n  - name: Bad Name\n")
    assert service.reload() is False
    assert service.reloads_failed == 1
    assert set(service.engine.policies) == {"app"}


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
    assert [o.secret for o in report.outcomes] == ["a1"]
