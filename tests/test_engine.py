"""The engine over real adapters: in-process moto for AWS, an injected clock."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import structlog
import structlog.testing
from moto import mock_aws

from providers.aws.secretsmanager import SecretsManagerStore
from providers.random import RandomIssuer
from rotator.adapters.discovery import Registry, registry
from rotator.adapters.secret import SecretValue
from rotator.adapters.values import Credential
from rotator.engine.concurrency import Limits
from rotator.engine.plan import STEP_RETRY_AFTER
from rotator.engine.preflight import Verdict
from rotator.engine.report import Action, Result
from rotator.engine.retry import RetryPolicy
from rotator.engine.runner import Engine
from rotator.errors import TransientError, VerificationError
from rotator.journal.journal import Journal
from rotator.journal.records import Rotation
from rotator.lifecycle import State
from rotator.policy.loader import load_policies
from tests.conftest import FakeClock

REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """In-process moto with fake credentials and a region."""
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield


@pytest.fixture
def real_clock() -> FakeClock:
    """A fake clock that starts at the real now (moto stamps last use with the real time)."""
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


def _policies(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "policies.yaml"
    path.write_text(body)
    return path


def _engine(
    tmp_path: Path, body: str, clock: FakeClock, adapters: Registry | None = None, **kw: Any
) -> Engine:
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}", clock)
    return Engine(
        load_policies(_policies(tmp_path, body)),
        journal,
        clock=clock,
        sleep=clock.sleep,
        adapters=adapters,
        **kw,
    )


def _sm() -> Any:
    return boto3.client("secretsmanager", region_name=REGION)


def _stages(secret_id: str) -> dict[str, list[str]]:
    described = _sm().describe_secret(SecretId=secret_id)
    return {v: s for v, s in described["VersionIdsToStages"].items() if s}


def _current(secret_id: str) -> str:
    value: str = _sm().get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")[
        "SecretString"
    ]
    return value


RANDOM_POLICY = """
secrets:
  - name: app/db
    store: {provider: aws-secretsmanager, secret_id: app/db, field: password}
    issuer: {kind: random, length: 20}
    schedule: {every: 30d}
    grace: 1h
"""


def test_random_rotation_promotes_then_retires_after_grace(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """A random rotation keeps other JSON fields, promotes, and retires the old version later."""
    _sm().create_secret(
        Name="app/db", SecretString=json.dumps({"user": "app", "password": "old" * 8})
    )
    engine = _engine(tmp_path, RANDOM_POLICY, clock)
    [outcome] = engine.rotate("app/db").outcomes
    assert outcome.result is Result.OK and outcome.state is State.GRACE
    doc = json.loads(_current("app/db"))
    assert doc["user"] == "app" and len(doc["password"]) == 20 and doc["password"] != "old" * 8
    stages = _stages("app/db")
    assert sorted(stages.values()) == [["AWSCURRENT"], ["AWSPREVIOUS"]]

    clock.advance(timedelta(minutes=59))
    assert engine.run_once().outcomes == []  # nothing due one minute before the deadline
    assert sorted(_stages("app/db").values()) == [["AWSCURRENT"], ["AWSPREVIOUS"]]

    clock.advance(timedelta(minutes=1))
    report = engine.run_once()
    assert [o.state for o in report.outcomes] == [State.DONE]
    assert list(_stages("app/db").values()) == [["AWSCURRENT"]]


def test_plan_and_run_once_agree(aws: None, tmp_path: Path, clock: FakeClock) -> None:
    """Exactly the secrets plan calls due are the ones run --once rotates."""
    body = "secrets:\n" + "".join(
        f"""  - name: s{i}
    store: {{provider: aws-secretsmanager, secret_id: s{i}}}
    schedule: {{every: {d}d}}
    grace: 1h
"""
        for i, d in enumerate((1, 10, 100))
    )
    for i in range(3):
        _sm().create_secret(Name=f"s{i}", SecretString="x" * 20)
    engine = _engine(tmp_path, body, clock)
    clock.advance(timedelta(days=5))  # moto stamps creation with the real time: it is the past
    clock.now = datetime.now(UTC) + timedelta(days=5)
    due = {i.secret for i in engine.plan() if i.due}
    assert due == {"s0"}
    ran = {o.secret for o in engine.run_once().outcomes}
    assert ran == due
    again = {i.secret for i in engine.plan() if i.due and i.action is Action.ROTATE}
    assert again == set()


IAM_POLICY = """
secrets:
  - name: deployer
    store: {{provider: aws-secretsmanager, secret_id: deployer}}
    issuer: {{kind: aws-iam-access-key, user: deployer, delete_after: {delete_after}}}
    schedule: {{every: 30d}}
    grace: 1h
    when_old_still_used: {when}
"""


def _iam_user() -> dict[str, str]:
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="deployer")
    key = iam.create_access_key(UserName="deployer")["AccessKey"]
    pair = {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
    _sm().create_secret(Name="deployer", SecretString=json.dumps(pair))
    return pair


def _keys() -> dict[str, str]:
    iam = boto3.client("iam", region_name=REGION)
    return {
        k["AccessKeyId"]: k["Status"]
        for k in iam.list_access_keys(UserName="deployer")["AccessKeyMetadata"]
    }


def test_iam_key_rotation_deactivates_then_deletes(
    aws: None, tmp_path: Path, real_clock: FakeClock
) -> None:
    """An IAM rotation keeps two keys in grace, deactivates the old at its end, deletes later."""
    old = _iam_user()
    engine = _engine(tmp_path, IAM_POLICY.format(delete_after="1d", when="extend"), real_clock)
    [outcome] = engine.rotate("deployer").outcomes
    assert outcome.state is State.GRACE
    new = json.loads(_current("deployer"))
    assert new["AccessKeyId"] != old["AccessKeyId"]
    assert _keys() == {old["AccessKeyId"]: "Active", new["AccessKeyId"]: "Active"}

    real_clock.advance(timedelta(hours=1))
    [outcome] = engine.run_once().outcomes
    assert outcome.state is State.REVOKED
    assert _keys() == {old["AccessKeyId"]: "Inactive", new["AccessKeyId"]: "Active"}

    real_clock.advance(timedelta(days=1))
    [outcome] = engine.run_once().outcomes
    assert outcome.state is State.DONE
    assert _keys() == {new["AccessKeyId"]: "Active"}


def test_old_key_still_used_extends_grace(aws: None, tmp_path: Path, real_clock: FakeClock) -> None:
    """An old key used after promotion is kept at the deadline under extend; the run fails."""
    old = _iam_user()
    engine = _engine(tmp_path, IAM_POLICY.format(delete_after="0s", when="extend"), real_clock)
    engine.rotate("deployer")
    boto3.client(
        "sts",
        region_name=REGION,
        aws_access_key_id=old["AccessKeyId"],
        aws_secret_access_key=old["SecretAccessKey"],
    ).get_caller_identity()
    real_clock.advance(timedelta(hours=1, seconds=1))
    [outcome] = engine.run_once().outcomes
    # Held past its original deadline: alerted, and the run exits 1 until it is quiet.
    assert outcome.result is Result.ATTENTION and outcome.state is State.GRACE and outcome.alerted
    assert _keys()[old["AccessKeyId"]] == "Active"
    rotation = engine.journal.open_rotations("deployer")[0]
    assert rotation.extensions == 1
    assert rotation.grace_deadline == real_clock() + timedelta(hours=1)


def test_old_key_still_used_alerts(aws: None, tmp_path: Path, real_clock: FakeClock) -> None:
    """With when_old_still_used: alert, a used old key is held and the run fails loudly."""
    old = _iam_user()
    engine = _engine(tmp_path, IAM_POLICY.format(delete_after="0s", when="alert"), real_clock)
    engine.rotate("deployer")
    boto3.client(
        "sts",
        region_name=REGION,
        aws_access_key_id=old["AccessKeyId"],
        aws_secret_access_key=old["SecretAccessKey"],
    ).get_caller_identity()
    real_clock.advance(timedelta(hours=2))
    report = engine.run_once()
    assert report.exit_code == 1 and report.failed == []  # held, alerted: attention
    assert "was used" in report.attention[0].message
    assert _keys()[old["AccessKeyId"]] == "Active"


def test_emergency_rotation_revokes_old_key_at_once(
    aws: None, tmp_path: Path, real_clock: FakeClock
) -> None:
    """--emergency promotes and revokes the leaked key in the same call, recorded as such."""
    old = _iam_user()
    engine = _engine(tmp_path, IAM_POLICY.format(delete_after="0s", when="extend"), real_clock)
    [outcome] = engine.rotate("deployer", emergency=True, reason="leaked in a log").outcomes
    assert outcome.state is State.DONE
    assert old["AccessKeyId"] not in _keys()
    [(rotation, events)] = engine.journal.history("deployer")
    assert rotation.emergency and rotation.reason == "leaked in a log"
    assert any("emergency" in (e.detail or "") for e in events)


def test_manual_rotation_during_grace_is_refused(
    aws: None, tmp_path: Path, real_clock: FakeClock
) -> None:
    """A second manual rotation while the old key is in grace fails; --emergency cuts the grace."""
    first = _iam_user()
    engine = _engine(tmp_path, IAM_POLICY.format(delete_after="0s", when="extend"), real_clock)
    engine.rotate("deployer")
    report = engine.rotate("deployer")
    assert report.exit_code == 1 and "--emergency" in report.failed[0].message
    assert len(_keys()) == 2
    report = engine.rotate("deployer", emergency=True)
    assert report.exit_code == 0
    assert first["AccessKeyId"] not in _keys() and len(_keys()) == 1


class _FailingVerify(RandomIssuer):
    """A random issuer whose credentials never verify (stands in for a broken consumer)."""

    def verify(self, credential: Credential) -> None:
        raise VerificationError("refused by the test", provider="test")


class _FlakyMint(RandomIssuer):
    """A random issuer that is throttled twice before minting."""

    failures = 2

    def mint(self, rotation_id: str) -> Credential:
        if _FlakyMint.failures:
            _FlakyMint.failures -= 1
            raise TransientError("throttled", provider="test", operation="mint")
        return super().mint(rotation_id)


def _with_issuer(kind: str, cls: type[RandomIssuer]) -> Registry:
    base = registry()
    return Registry(dict(base.stores), {**base.issuers, kind: cls})


def test_failed_verification_rolls_back(aws: None, tmp_path: Path, clock: FakeClock) -> None:
    """A credential failing verification is never promoted: pending removed, old stays."""
    _sm().create_secret(Name="app/db", SecretString="original-value-123")
    adapters = _with_issuer("random", _FailingVerify)
    engine = _engine(tmp_path, RANDOM_POLICY.replace(", field: password", ""), clock, adapters)
    report = engine.rotate("app/db")
    assert report.exit_code == 1
    assert report.outcomes[0].state is State.ROLLED_BACK
    assert _current("app/db") == "original-value-123"
    assert list(_stages("app/db").values()) == [["AWSCURRENT"]]
    [(rotation, events)] = engine.journal.history("app/db")
    assert "refused by the test" in (rotation.error or "")
    assert [e.step for e in events][-2:] == ["verify", "rollback"]


def _flaky_engine(tmp_path: Path, clock: FakeClock, *, failures: int, attempts: int) -> Engine:
    """An engine whose random issuer is throttled ``failures`` times, retrying ``attempts``."""
    _sm().create_secret(Name="app/db", SecretString="original-value-123")
    _FlakyMint.failures = failures
    return _engine(
        tmp_path,
        RANDOM_POLICY.replace(", field: password", ""),
        clock,
        _with_issuer("random", _FlakyMint),
        retry=RetryPolicy(attempts=attempts, base_delay=1.0),
    )


def test_transient_errors_are_retried_with_backoff(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """A throttled mint is retried after 1s then 2s (injected sleep) and the rotation succeeds."""
    engine = _flaky_engine(tmp_path, clock, failures=2, attempts=4)
    report = engine.rotate("app/db")
    assert report.exit_code == 0
    assert clock.slept == [1.0, 2.0]
    [(_, events)] = engine.journal.history("app/db")
    assert [e.outcome for e in events if e.step == "mint"].count("retry") == 2


def test_transient_errors_exhausted_leave_rotation_resumable(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """When retries run out the rotation stays where it was; a run after the pause finishes it."""
    engine = _flaky_engine(tmp_path, clock, failures=5, attempts=2)
    report = engine.rotate("app/db")
    assert report.exit_code == 1 and report.outcomes[0].state is State.PLANNED
    _FlakyMint.failures = 0
    [waiting] = engine.plan()
    assert not waiting.due and "last attempt failed" in waiting.reason
    events = len(engine.journal.history("app/db")[0][1])
    # Not tried on every pass (the provider may be down), but not quiet either:
    # the run says the rotation is stuck, and exits 1 until it is not.
    stuck = engine.run_once()
    assert [(o.result, o.rotation_id) for o in stuck.outcomes] == [
        (Result.ATTENTION, report.outcomes[0].rotation_id)
    ]
    assert "last attempt failed" in stuck.outcomes[0].message and stuck.exit_code == 1
    assert len(engine.journal.history("app/db")[0][1]) == events
    clock.advance(STEP_RETRY_AFTER)
    report = engine.run_once()
    assert [o.state for o in report.outcomes] == [State.GRACE]
    assert _current("app/db") != "original-value-123"


def test_busy_secret_is_skipped(aws: None, tmp_path: Path, real_clock: FakeClock) -> None:
    """A due secret leased by another live run is skipped by run --once, refused by rotate."""
    _sm().create_secret(Name="app/db", SecretString=json.dumps({"password": "p" * 20}))
    engine = _engine(tmp_path, RANDOM_POLICY, real_clock)
    real_clock.advance(timedelta(days=31))
    engine.journal.migrate()
    assert engine.journal.leases.acquire("app/db", "elsewhere:1:x", timedelta(hours=5))
    report = engine.run_once()
    assert [o.result for o in report.outcomes] == [Result.SKIPPED]
    assert report.exit_code == 0
    report = engine.rotate("app/db")
    assert report.exit_code == 1 and "lease" in report.failed[0].message
    assert json.loads(_current("app/db"))["password"] == "p" * 20


def test_a_secret_rotated_by_another_run_since_the_plan_is_passed_over_without_its_lease(
    aws: None, tmp_path: Path, real_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs planned the same due secret; the second to reach it reads the journal, finds
    the other's rotation and nothing due, and takes no lease: nothing reported, nothing minted."""
    _sm().create_secret(Name="app/db", SecretString=json.dumps({"password": "p" * 20}))
    real_clock.advance(timedelta(days=31))
    late = _engine(tmp_path, RANDOM_POLICY, real_clock)
    late.journal.migrate()
    plan = late.plan(late.journal.summaries())
    assert any(i.due and i.action is Action.ROTATE for i in plan)
    other = _engine(tmp_path, RANDOM_POLICY, real_clock)
    assert other.rotate("app/db").exit_code == 0
    taken: list[str] = []
    acquire = late.journal.leases.acquire

    def counted(secret: str, owner: str, ttl: timedelta) -> Any:
        taken.append(secret)
        return acquire(secret, owner, ttl)

    monkeypatch.setattr(late.journal.leases, "acquire", counted)
    report = late.execute(plan)
    assert report.outcomes == [] and taken == []
    assert len(late.journal.history("app/db")) == 1


def test_a_secret_with_a_step_due_is_not_passed_over(
    aws: None, tmp_path: Path, real_clock: FakeClock
) -> None:
    """Another run's rotation left unfinished, its next step due again: the run reaching the
    secret takes the lease and finishes that rotation, as before."""
    other = _flaky_engine(tmp_path, real_clock, failures=5, attempts=2)
    real_clock.advance(timedelta(days=31))
    late = _engine(tmp_path, RANDOM_POLICY.replace(", field: password", ""), real_clock)
    late.journal.migrate()
    plan = late.plan(late.journal.summaries())
    assert other.rotate("app/db").exit_code == 1  # throttled past its retries
    [unfinished] = late.journal.open_rotations("app/db")
    real_clock.advance(STEP_RETRY_AFTER)
    report = late.execute(plan)
    assert [(o.rotation_id, o.result) for o in report.outcomes] == [(unfinished.id, Result.OK)]
    assert len(late.journal.history("app/db")) == 1


def test_manual_rotate_finishes_an_interrupted_rotation_instead_of_starting_another(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """rotate NAME after a crash finishes the interrupted rotation and mints nothing more."""
    _sm().create_secret(Name="app/db", SecretString=json.dumps({"password": "p" * 20}))
    engine = _engine(tmp_path, RANDOM_POLICY, clock)
    engine.journal.migrate()
    now = clock()
    engine.journal.create(
        Rotation(
            id="c" * 32,
            secret="app/db",
            state=State.PLANNED,
            trigger="manual",
            created_at=now,
            updated_at=now,
        )
    )
    report = engine.rotate("app/db")
    assert report.exit_code == 0
    assert [(o.rotation_id, o.state) for o in report.outcomes] == [("c" * 32, State.GRACE)]
    assert "finished interrupted rotation" in report.outcomes[0].message
    assert len(engine.journal.history("app/db")) == 1


def test_scheduled_retry_after_a_rollback_backs_off(
    aws: None, tmp_path: Path, real_clock: FakeClock
) -> None:
    """After a scheduled rotation rolls back, run --once waits before minting again."""
    _sm().create_secret(Name="app/db", SecretString="original-value-123")
    adapters = _with_issuer("random", _FailingVerify)
    engine = _engine(tmp_path, RANDOM_POLICY.replace(", field: password", ""), real_clock, adapters)
    real_clock.advance(timedelta(days=31))
    assert engine.run_once().exit_code == 1
    real_clock.advance(timedelta(minutes=59))
    waiting = engine.run_once()  # nothing tried, but the secret is still not rotated: exit 1
    assert [o.result for o in waiting.outcomes] == [Result.ATTENTION]
    assert waiting.exit_code == 1 and len(engine.journal.history("app/db")) == 1
    [item] = engine.plan()
    assert not item.due and item.failing and "rolled back" in item.reason
    real_clock.advance(timedelta(minutes=1))
    assert engine.run_once().exit_code == 1
    assert len(engine.journal.history("app/db")) == 2


def test_failure_streak_backs_off_then_needs_attention(
    aws: None, tmp_path: Path, real_clock: FakeClock
) -> None:
    """Retries wait 1h, 2h, 4h, 8h; after 5 rollbacks only a rotation by hand tries again."""
    _sm().create_secret(Name="app/db", SecretString="original-value-123")
    adapters = _with_issuer("random", _FailingVerify)
    engine = _engine(tmp_path, RANDOM_POLICY.replace(", field: password", ""), real_clock, adapters)
    real_clock.advance(timedelta(days=31))
    assert engine.run_once().exit_code == 1
    for wait_hours in (1, 2, 4, 8):
        real_clock.advance(timedelta(hours=wait_hours) - timedelta(seconds=1))
        waiting = engine.run_once()
        assert [o.result for o in waiting.outcomes] == [Result.ATTENTION], wait_hours
        real_clock.advance(timedelta(seconds=1))
        assert engine.run_once().exit_code == 1
    assert len(engine.journal.history("app/db")) == 5

    real_clock.advance(timedelta(days=3))
    report = engine.run_once()
    assert report.exit_code == 1 and "not retried on schedule" in report.attention[0].message
    assert len(engine.journal.history("app/db")) == 5  # no sixth attempt on schedule
    [item] = engine.plan()
    assert item.action is Action.ATTENTION

    engine.adapters = registry()  # the operator fixed the cause
    engine._bindings.clear()
    assert engine.rotate("app/db").exit_code == 0
    assert [i.action for i in engine.plan()] == [Action.REVOKE]  # the streak is over


def test_editing_the_policy_clears_needs_attention(
    aws: None, tmp_path: Path, real_clock: FakeClock
) -> None:
    """After five rollbacks a changed policy is tried again on schedule, at once."""
    _sm().create_secret(Name="app/db", SecretString="original-value-123")
    adapters = _with_issuer("random", _FailingVerify)
    policy = RANDOM_POLICY.replace(", field: password", "")
    engine = _engine(tmp_path, policy, real_clock, adapters)
    real_clock.advance(timedelta(days=31))
    for _ in range(5):
        engine.run_once()
        real_clock.advance(timedelta(hours=9))
    assert [i.action for i in engine.plan()] == [Action.ATTENTION]
    moved = _policies(tmp_path, "# a comment moves every line\n" + policy)
    engine.replace_policies(load_policies(moved))
    assert [i.action for i in engine.plan()] == [Action.ATTENTION]  # same rules: still stuck

    edited = _policies(tmp_path, policy.replace("length: 20", "length: 24"))
    engine.replace_policies(load_policies(edited))
    [item] = engine.plan()
    assert item.action is Action.ROTATE and item.due
    assert engine.run_once().exit_code == 1  # still broken: rolled back again
    assert len(engine.journal.history("app/db")) == 6
    assert [i.action for i in engine.plan()] == [Action.ATTENTION]


class _TogetherMint(RandomIssuer):
    """A random issuer whose first four mints wait for each other (proves they overlap)."""

    barrier = threading.Barrier(4, timeout=10.0)
    lock = threading.Lock()
    seen = 0

    def mint(self, rotation_id: str) -> Credential:
        with _TogetherMint.lock:
            _TogetherMint.seen += 1
            first_four = _TogetherMint.seen <= 4
        if first_four:
            _TogetherMint.barrier.wait()  # a broken barrier fails the rotation
        return super().mint(rotation_id)


def _many(count: int) -> str:
    return "secrets:\n" + "".join(
        f"""  - name: s{i}
    store: {{provider: aws-secretsmanager, secret_id: s{i}}}
    issuer: {{kind: random, length: 24}}
    schedule: {{every: 1d}}
    grace: 1h
"""
        for i in range(count)
    )


def test_due_secrets_rotate_concurrently(aws: None, tmp_path: Path, real_clock: FakeClock) -> None:
    """Twelve due secrets rotate four at a time on threads, every one promoted exactly once."""
    for i in range(12):
        _sm().create_secret(Name=f"s{i}", SecretString=f"initial-value-{i:04d}")
    real_clock.advance(timedelta(days=2))
    adapters = _with_issuer("random", _TogetherMint)
    engine = _engine(tmp_path, _many(12), real_clock, adapters, limits=Limits(total=4, per_key=4))
    report = engine.run_once()
    assert report.exit_code == 0
    assert sorted(o.secret for o in report.outcomes) == sorted(f"s{i}" for i in range(12))
    assert {o.state for o in report.outcomes} == {State.GRACE}
    for i in range(12):
        assert sorted(_stages(f"s{i}").values()) == [["AWSCURRENT"], ["AWSPREVIOUS"]]
        assert len(engine.journal.history(f"s{i}")) == 1


def test_interrupt_leaves_rotation_at_its_recorded_step(
    aws: None, tmp_path: Path, real_clock: FakeClock
) -> None:
    """An interrupted engine starts no further step; the next engine resumes and finishes."""
    _sm().create_secret(Name="app/db", SecretString="original-value-123")

    class _StopAfterMint(RandomIssuer):
        def mint(self, rotation_id: str) -> Credential:
            engine.interrupt()  # SIGTERM arrives while the issuer mints
            return super().mint(rotation_id)

    policy = RANDOM_POLICY.replace(", field: password", "")
    engine = _engine(tmp_path, policy, real_clock, _with_issuer("random", _StopAfterMint))
    real_clock.advance(timedelta(days=31))
    [outcome] = engine.run_once().outcomes
    assert outcome.result is Result.WAITING and outcome.state is State.MINTED
    assert "interrupted by shutdown" in outcome.message
    [(rotation, events)] = engine.journal.history("app/db")
    assert events[-1].outcome == "interrupted"
    assert list(_stages("app/db").values()) == [["AWSCURRENT"]]  # nothing stored yet

    again = _engine(tmp_path, policy, real_clock)
    [resumed] = again.run_once().outcomes
    assert resumed.rotation_id == rotation.id and resumed.state is State.GRACE
    assert sorted(_stages("app/db").values()) == [["AWSCURRENT"], ["AWSPREVIOUS"]]


class _StoreDownOnSecondLook(SecretsManagerStore):
    """A Secrets Manager store that stops answering after the plan's first read."""

    looks = 0

    def last_changed(self) -> datetime | None:
        _StoreDownOnSecondLook.looks += 1
        if _StoreDownOnSecondLook.looks > 1:
            raise TransientError("throttled", provider="test", operation="last_changed")
        return super().last_changed()


def test_a_secret_is_never_dropped_when_the_second_look_fails(
    aws: None, tmp_path: Path, real_clock: FakeClock
) -> None:
    """When the re-plan under the lease cannot read the store, the secret is reported failed."""
    _sm().create_secret(Name="app/db", SecretString="original-value-123")
    policy = RANDOM_POLICY.replace(", field: password", "")
    failing = _engine(tmp_path, policy, real_clock, _with_issuer("random", _FailingVerify))
    real_clock.advance(timedelta(days=31))
    assert failing.run_once().exit_code == 1  # one rollback: the journal knows the secret now
    base = registry()
    adapters = Registry({**base.stores, "aws-secretsmanager": _StoreDownOnSecondLook}, base.issuers)
    real_clock.advance(timedelta(days=2))
    engine = _engine(tmp_path, policy, real_clock, adapters, retry=RetryPolicy(attempts=1))
    report = engine.run_once()
    assert [(o.secret, o.result) for o in report.outcomes] == [("app/db", Result.FAILED)]
    assert "throttled" in report.outcomes[0].message


def test_rotate_during_grace_is_one_refusal_saying_until_when(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """`rotate NAME` while the last rotation is in grace: one failed row, not a status row too."""
    _sm().create_secret(Name="app/db", SecretString=json.dumps({"password": "p" * 20}))
    engine = _engine(tmp_path, RANDOM_POLICY, clock)
    [first] = engine.rotate("app/db").outcomes
    clock.advance(timedelta(minutes=10))
    report = engine.rotate("app/db")
    [refused] = report.outcomes
    assert refused.result is Result.FAILED and refused.rotation_id == first.rotation_id
    assert refused.state is State.GRACE
    assert f"rotation {first.rotation_id} is in grace until" in refused.message
    assert "--emergency" in refused.message
    assert len(engine.journal.history("app/db")) == 1


def test_a_run_reports_nothing_of_a_rotation_another_run_just_promoted(
    aws: None, tmp_path: Path, real_clock: FakeClock
) -> None:
    """Two replicas plan the same due secret; the one that finds it rotated lists nothing."""
    _sm().create_secret(Name="app/db", SecretString=json.dumps({"password": "p" * 20}))
    first = _engine(tmp_path, RANDOM_POLICY, real_clock)
    second = _engine(tmp_path, RANDOM_POLICY, real_clock)
    first.journal.migrate()
    real_clock.advance(timedelta(days=31))
    planned = second.plan()  # before the first replica rotates
    assert [(i.action, i.due) for i in planned] == [(Action.ROTATE, True)]
    [promoted] = first.run_once().outcomes
    assert promoted.state is State.GRACE
    assert second.execute(planned).outcomes == []
    assert len(first.journal.history("app/db")) == 1


@pytest.mark.parametrize(
    ("policy", "said"),
    [
        (RANDOM_POLICY, "promoted; the old value stays readable until 2026-11-02 10:00:00 UTC"),
        (
            RANDOM_POLICY.replace("kind: random, length: 20", "kind: manual"),
            "promoted; the old credential's grace ends at 2026-11-02 10:00:00 UTC: "
            "revoke it by hand then",
        ),
    ],
)
def test_what_a_promoted_rotation_says_is_to_come_is_in_the_future_tense(
    aws: None, tmp_path: Path, clock: FakeClock, policy: str, said: str
) -> None:
    """The old value is revoked later, not "revoked at" a time still to come; by hand if manual."""
    _sm().create_secret(Name="app/db", SecretString=json.dumps({"password": "p" * 20}))
    engine = _engine(tmp_path, policy, clock)
    value = SecretValue("a-value-typed-by-a-person") if "manual" in policy else None
    [outcome] = engine.rotate("app/db", value=value).outcomes
    assert outcome.result is Result.OK and outcome.message.startswith(said), outcome.message
    assert "revoked at" not in outcome.message


def test_a_new_rotation_logs_no_step_of_the_one_before_it(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """`rotation started` after an old rotation's revoke step carries no stale `step`."""
    _sm().create_secret(Name="app/db", SecretString=json.dumps({"password": "p" * 20}))
    engine = _engine(tmp_path, RANDOM_POLICY, clock)
    engine.rotate("app/db")
    clock.advance(timedelta(hours=2))  # the first rotation's revoke is due
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        engine.rotate("app/db")
    steps = [e.get("step") for e in logs if e["event"] == "revoked old credential"]
    assert steps == ["revoke"]  # the old rotation's step was logged with it...
    [started] = [e for e in logs if e["event"] == "rotation started"]
    assert "step" not in started  # ...and is gone when the next one starts


def test_check_fails_an_iam_user_whose_next_rotation_cannot_mint(
    aws: None, tmp_path: Path, real_clock: FakeClock
) -> None:
    """An active key rotator does not manage fills the second slot: check says so, not ok."""
    _iam_user()
    engine = _engine(tmp_path, IAM_POLICY.format(delete_after="0s", when="extend"), real_clock)
    [issuer] = [f for f in engine.check(["deployer"]) if f.check == "issuer"]
    assert issuer.verdict is Verdict.OK  # one key: room for the next
    stray = boto3.client("iam", region_name=REGION).create_access_key(UserName="deployer")
    [issuer] = [f for f in engine.check(["deployer"]) if f.check == "issuer"]
    assert issuer.verdict is Verdict.FAILED
    assert "the next rotation cannot mint" in issuer.detail
    assert stray["AccessKey"]["AccessKeyId"] in issuer.detail
    assert _keys()[stray["AccessKey"]["AccessKeyId"]] == "Active"  # check changed nothing


def test_check_leaves_room_for_a_key_in_grace(
    aws: None, tmp_path: Path, real_clock: FakeClock
) -> None:
    """During grace both keys are rotator's: check does not call the old one a stray."""
    _iam_user()
    engine = _engine(tmp_path, IAM_POLICY.format(delete_after="0s", when="extend"), real_clock)
    engine.rotate("deployer")
    assert len(_keys()) == 2
    [issuer] = [f for f in engine.check(["deployer"]) if f.check == "issuer"]
    assert issuer.verdict is Verdict.OK, issuer.detail


def test_a_failed_rotation_is_logged_with_the_step_it_failed_at(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """`rotation failed` still names its step: only the next rotation starts without it."""
    engine = _flaky_engine(tmp_path, clock, failures=5, attempts=2)
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        engine.rotate("app/db")
    _FlakyMint.failures = 0
    [failed] = [e for e in logs if e["event"] == "rotation failed"]
    assert failed["step"] == "mint"


def test_rotations_are_grouped_per_provider_and_region_and_a_broken_scope_falls_back(
    aws: None, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two Regions are two concurrency groups; a store whose scope fails is grouped by provider."""
    body = """
secrets:
  - {name: a, store: {provider: aws-secretsmanager, secret_id: a, region: eu-west-1}}
  - {name: b, store: {provider: aws-secretsmanager, secret_id: b}}
defaults: {schedule: {every: 30d}, grace: 1h}
"""
    engine = _engine(tmp_path, body, clock)
    assert engine._concurrency_key("a") == "aws-secretsmanager@eu-west-1"
    assert engine._concurrency_key("b") == f"aws-secretsmanager@{REGION}"

    def broken(self: SecretsManagerStore) -> str:
        raise RuntimeError("a plugin's bug")

    monkeypatch.setattr(SecretsManagerStore, "quota_scope", broken)
    assert engine._concurrency_key("a") == "aws-secretsmanager"


def test_runs_on_one_journal_divide_a_quota_and_give_their_shares_back(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """Beside a run writing to Secrets Manager, a rotation writes at half the quota; each run
    gives its share back when it ends."""
    _sm().create_secret(Name="app/db", SecretString='{"password": "original-value-123"}')
    other = _engine(tmp_path, RANDOM_POLICY, clock)
    rotating = _engine(tmp_path, RANDOM_POLICY, clock)
    key = f"secretsmanager.write@{REGION}"
    other.journal.migrate()
    with other.sharing.running(), other.sharing.rotating():
        other.runtime.pacing.take("secretsmanager.write", REGION, 50, sleep=clock.sleep)
        assert rotating.rotate("app/db").exit_code == 0
        written = rotating.runtime.pacing.bucket("secretsmanager.write", REGION, 50)
        assert written.ceiling == 25
        assert rotating.journal.shares.holders() == {key: 1}  # the rotation's given back
    assert rotating.journal.shares.holders() == {}


def test_outside_a_rotation_an_engine_paces_beside_the_runs_and_holds_no_share(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A plan or the watch between passes paces at its part of a quota another run holds,
    without writing a share of its own."""
    rotating = _engine(tmp_path, RANDOM_POLICY, clock)
    planning = _engine(tmp_path, RANDOM_POLICY, clock)
    rotating.journal.migrate()
    key = f"secretsmanager.write@{REGION}"
    with rotating.sharing.running(), rotating.sharing.rotating():
        rotating.runtime.pacing.take("secretsmanager.write", REGION, 50, sleep=clock.sleep)
        planning.runtime.pacing.take("secretsmanager.write", REGION, 50, sleep=clock.sleep)
        assert planning.runtime.pacing.bucket("secretsmanager.write", REGION, 50).ceiling == 25
        assert planning.journal.shares.holders() == {key: 1}


def test_a_rotation_holds_a_share_while_it_takes_steps_and_the_pass_leaves_it_after(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """Each write of a rotation is made with the run's share held; once no rotation is under
    way, the next renewal gives the share back though the pass goes on (it may only be looking
    at secrets others rotated): the runs still rotating divide the quota without it."""
    _sm().create_secret(Name="app/db", SecretString='{"password": "original-value-123"}')
    key = f"secretsmanager.write@{REGION}"
    held: list[dict[str, int]] = []

    def observe(provider: str, operation: str, outcome: str) -> None:
        if operation == "PutSecretValue":
            held.append(engine.journal.shares.holders())

    engine = _engine(tmp_path, RANDOM_POLICY, clock, on_request=observe)
    engine.journal.migrate()
    with engine.sharing.running():  # a pass going on after this rotation
        assert engine.rotate("app/db").exit_code == 0
        assert held and all(h.get(key) == 1 for h in held)
        assert engine.journal.shares.holders().get(key) == 1  # until the next renewal
        engine.runtime.pacing.renew()  # the heartbeat
        assert engine.journal.shares.holders() == {}


def test_a_pass_with_no_rotation_under_way_paces_beside_the_rotating_runs_and_rejoins(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A pass calling a quota between rotations only counts the holders; its next rotation's
    first call joins again at once, without waiting for a renewal."""
    rotating = _engine(tmp_path, RANDOM_POLICY, clock)
    passing = _engine(tmp_path, RANDOM_POLICY, clock)
    rotating.journal.migrate()
    key = f"secretsmanager.write@{REGION}"
    bucket = passing.runtime.pacing.bucket("secretsmanager.write", REGION, 50)
    with rotating.sharing.running(), rotating.sharing.rotating():
        rotating.runtime.pacing.take("secretsmanager.write", REGION, 50, sleep=clock.sleep)
        with passing.sharing.running():
            passing.runtime.pacing.take("secretsmanager.write", REGION, 50, sleep=clock.sleep)
            assert bucket.ceiling == 25
            assert passing.journal.shares.holders() == {key: 1}  # the rotating run's alone
            with passing.sharing.rotating():
                passing.runtime.pacing.take("secretsmanager.write", REGION, 50, sleep=clock.sleep)
                assert passing.journal.shares.holders() == {key: 2}
            passing.runtime.pacing.renew()
            assert passing.journal.shares.holders() == {key: 1}
            assert bucket.ceiling == 25


def test_plan_on_a_journal_not_made_yet_makes_none(tmp_path: Path, clock: FakeClock) -> None:
    """Pacing outside a rotation never creates the journal (plan and check change nothing)."""
    engine = _engine(tmp_path, RANDOM_POLICY, clock)
    engine.runtime.pacing.take("secretsmanager.write", REGION, 50, sleep=clock.sleep)
    assert not (tmp_path / "j.db").exists()
