"""Targets and verifiers in the engine: written before promote, restored on rollback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from rotator.adapters.discovery import Registry, registry
from rotator.adapters.secret import SecretValue
from rotator.engine.preflight import Verdict
from rotator.engine.report import Result
from rotator.engine.runner import Engine
from rotator.journal.journal import Journal
from rotator.lifecycle import State
from rotator.policy.loader import load_policies
from rotator.testing import MemoryTarget, MemoryVerifier, forget, service
from tests.conftest import FakeClock

REGION = "us-east-1"
POLICY = """
secrets:
  - name: app
    store: {provider: aws-secretsmanager, secret_id: app}
    schedule: {every: 30d}
    grace: 1h
    targets:
      - provider: aws-secretsmanager
        secret_id: replica
EXTRA"""


#: The in-memory service the policy's reference target and verifier use.
SERVICE = "test-targets"
#: A policy's second target: place ``app`` of that service.
TARGET = "      - kind: memory\n        service: test-targets\n        place: app\n"
#: A policy's check: that service's consumer, which accepts nothing it was not given.
VERIFY = "    verify:\n      - kind: memory\n        service: test-targets\n"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """In-process moto with the primary and the replica secret created."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    forget(SERVICE)
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name=REGION)
        sm.create_secret(Name="app", SecretString="old-value-of-the-app")
        sm.create_secret(Name="replica", SecretString="old-value-of-the-app")
        yield sm
    forget(SERVICE)


def _engine(tmp_path: Path, extra: str = "") -> tuple[Engine, FakeClock]:
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0) + timedelta(days=31))
    base = registry()
    adapters = Registry(
        base.stores,
        base.issuers,
        {**base.targets, "memory": MemoryTarget},
        {**base.verifiers, "memory": MemoryVerifier},
    )
    config = tmp_path / "policies.yaml"
    config.write_text(POLICY.replace("EXTRA", extra))
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}", clock)
    policies = load_policies(config, registry=adapters)
    return Engine(policies, journal, clock=clock, sleep=clock.sleep, adapters=adapters), clock


def _current(sm: Any, name: str) -> str:
    value: str = sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"]
    return value


def test_a_store_target_carries_the_new_value_when_it_is_promoted(aws: Any, tmp_path: Path) -> None:
    """The replica holds the primary's new value once the rotation is promoted."""
    engine, _ = _engine(tmp_path)
    [outcome] = engine.run_once().outcomes
    assert outcome.result is Result.OK and outcome.state is State.GRACE
    assert _current(aws, "app") != "old-value-of-the-app"
    assert _current(aws, "replica") == _current(aws, "app")
    [(_, events)] = engine.journal.history("app")
    per_target, propagated = [e for e in events if e.step == "propagate"]
    assert per_target.detail == "target 1: aws-secretsmanager:replica"
    assert per_target.state_from == per_target.state_to == "pending"
    assert "aws-secretsmanager:replica" in (propagated.detail or "")


def test_a_failing_check_rolls_every_target_back_and_names_itself(aws: Any, tmp_path: Path) -> None:
    """A verifier refusing the new key restores the replica and the other target, last first."""
    extra = TARGET + VERIFY
    engine, _ = _engine(tmp_path, extra)
    [outcome] = engine.run_once().outcomes
    assert outcome.result is Result.FAILED and outcome.state is State.ROLLED_BACK
    assert "check memory:test-targets" in outcome.message
    assert "refused the credential" in outcome.message
    assert _current(aws, "app") == "old-value-of-the-app"
    assert _current(aws, "replica") == "old-value-of-the-app"
    new, restored = service(SERVICE).history("app")
    assert new is not None and new.text() != "old-value-of-the-app"
    assert restored == SecretValue("old-value-of-the-app")


def test_a_failing_target_rolls_back_the_ones_before_it(aws: Any, tmp_path: Path) -> None:
    """Target 2 refusing the value rolls back target 1 and names target 2 in the failure."""
    service(SERVICE).read_only.add("app")
    engine, _ = _engine(tmp_path, TARGET)
    [outcome] = engine.run_once().outcomes
    assert outcome.state is State.ROLLED_BACK
    assert "target 2 (memory:test-targets/app)" in outcome.message
    assert _current(aws, "replica") == "old-value-of-the-app"
    assert _current(aws, "app") == "old-value-of-the-app"


def test_verify_waits_the_propagation_delay(aws: Any, tmp_path: Path) -> None:
    """Verification starts once the propagation delay has passed since the targets were written."""
    engine, clock = _engine(tmp_path, "    propagation_delay: 45s\n")
    [outcome] = engine.run_once().outcomes
    assert outcome.result is Result.OK
    assert clock.slept == [45.0]
    [(_, events)] = engine.journal.history("app")
    at = {e.step: e.at for e in events if e.outcome == "ok"}
    assert at["verify"] - at["propagate"] == timedelta(seconds=45)


def test_check_reports_each_part_and_changes_nothing(aws: Any, tmp_path: Path) -> None:
    """The preflight reads the store, issuer and targets, tries the checks, and writes nothing."""
    engine, _ = _engine(tmp_path, VERIFY)
    versions = len(aws.describe_secret(SecretId="app")["VersionIdsToStages"])
    findings = {f.check: f for f in engine.check(["app"])}
    assert list(findings) == [
        "store read",
        "store write",
        "issuer",
        "target 1 aws-secretsmanager:replica",
        "verify memory:test-targets",
    ]
    assert findings["store read"].verdict is Verdict.OK
    assert findings["target 1 aws-secretsmanager:replica"].verdict is Verdict.OK
    refused = findings["verify memory:test-targets"]
    assert refused.verdict is Verdict.FAILED and "refused the credential" in refused.detail
    assert len(aws.describe_secret(SecretId="app")["VersionIdsToStages"]) == versions
    assert not engine.journal.exists()  # not even the journal was created


def test_check_skips_what_depends_on_an_unreadable_store(aws: Any, tmp_path: Path) -> None:
    """A missing secret fails the store read and skips the issuer and the checks."""
    aws.delete_secret(SecretId="app", ForceDeleteWithoutRecovery=True)
    engine, _ = _engine(tmp_path, VERIFY)
    verdicts = {f.check: f.verdict for f in engine.check(["app"])}
    assert verdicts["store read"] is Verdict.FAILED
    assert verdicts["issuer"] is Verdict.SKIPPED
    assert verdicts["verify memory:test-targets"] is Verdict.SKIPPED


def test_old_credential_outlives_every_target_write_by_the_grace(aws: Any, tmp_path: Path) -> None:
    """The grace deadline is at least a full grace after the last target was written."""
    engine, _ = _engine(tmp_path, TARGET + "    propagation_delay: 10m\n")
    [outcome] = engine.run_once().outcomes
    assert outcome.state is State.GRACE
    [(rotation, events)] = engine.journal.history("app")
    *_, propagated = [e for e in events if e.step == "propagate" and e.outcome == "ok"]
    assert propagated.state_to == "propagated"
    assert rotation.grace_deadline is not None
    assert rotation.grace_deadline - propagated.at >= timedelta(hours=1, minutes=10)
