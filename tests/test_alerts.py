"""Alerts, usage anomalies, reminder-only policies and emergencies, over in-process moto."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from rotator.adapters.secret import SecretValue
from rotator.cli.main import cli
from rotator.engine.report import Action, Result
from rotator.engine.runner import Engine
from rotator.errors import ConfigError, PolicyError
from rotator.journal.journal import Journal
from rotator.journal.records import Rotation
from rotator.lifecycle import State
from rotator.policy.loader import load_policies
from rotator.watch.usage import watch_usage
from tests.conftest import AWS_REGION, FakeClock

REGION = AWS_REGION
#: An exec notifier appending each alert's JSON to $OUT, or failing with $FAIL's exit status.
RECORDER = (
    "import os, sys\n"
    "if os.path.exists(os.environ['FAIL']): sys.exit(int(open(os.environ['FAIL']).read()))\n"
    "open(os.environ['OUT'], 'a').write(sys.stdin.read().strip() + '\\n')\n"
)


@pytest.fixture
def aws(aws_in_process: None) -> Any:
    """In-process moto; yields a Secrets Manager client."""
    return boto3.client("secretsmanager", region_name=REGION)


def _notifiers(tmp_path: Path, events: str = "") -> str:
    script = tmp_path / "recorder.py"
    script.write_text(RECORDER)
    return f"""
notifiers:
  ops:
    kind: exec
    command: [{sys.executable}, {script}]
    env: {{OUT: {tmp_path / "alerts.jsonl"}, FAIL: {tmp_path / "fail"}}}
    {events}
"""


def _engine(tmp_path: Path, body: str, clock: FakeClock) -> Engine:
    (tmp_path / "p.yaml").write_text(body)
    loaded = load_policies(tmp_path / "p.yaml")
    return Engine(
        loaded,
        Journal(f"sqlite:///{tmp_path / 'j.db'}", clock, actor="operator:test@host"),
        clock=clock,
        sleep=clock.sleep,
        notifiers=loaded.notifiers,
    )


def _alerts(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "alerts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _refusing_check(tmp_path: Path) -> str:
    flag = tmp_path / "refuse"
    flag.write_text("")
    code = f"import os, sys; sys.exit(1 if os.path.exists({str(flag)!r}) else 0)"
    return f"""    verify:
      - kind: exec
        command: [{sys.executable}, -c, "{code}"]
"""


def _policy(tmp_path: Path, extra: str = "", events: str = "") -> str:
    return (
        _notifiers(tmp_path, events)
        + """
secrets:
  - name: app/db
    owner: team-payments
    store: {provider: aws-secretsmanager, secret_id: app/db}
    schedule: {every: 30d}
    grace: 1h
    alerts: [ops]
"""
        + extra
    )


def test_a_failed_rotation_is_alerted_once_per_failure(
    aws: Any, tmp_path: Path, clock: FakeClock
) -> None:
    """A rollback alerts once; the same failure again is not resent; success clears it."""
    aws.create_secret(Name="app/db", SecretString="the-current-value-123")
    engine = _engine(tmp_path, _policy(tmp_path, _refusing_check(tmp_path)), clock)
    [outcome] = engine.rotate("app/db").outcomes
    assert outcome.result is Result.FAILED
    [alert] = _alerts(tmp_path)
    assert alert["event"] == "rotation-failed" and alert["secret"] == "app/db"
    assert alert["owner"] == "team-payments" and alert["rotation_id"] == outcome.rotation_id
    assert "the-current-value-123" not in json.dumps(alert)
    engine.driver.advance_safely(engine.journal.get(outcome.rotation_id or "") or _never())
    assert len(_alerts(tmp_path)) == 1  # the same condition is not sent twice
    engine.rotate("app/db")
    assert [a["event"] for a in _alerts(tmp_path)] == ["rotation-failed"] * 2
    (tmp_path / "refuse").unlink()
    [ok] = engine.rotate("app/db").outcomes
    assert ok.result is Result.OK
    assert engine.journal.alerts.rows("app/db", "rotation-failed") == []


def _never() -> Rotation:
    raise AssertionError("the rotation should be in the journal")


def test_successes_go_only_to_notifiers_that_ask(
    aws: Any, tmp_path: Path, clock: FakeClock
) -> None:
    """rotation-succeeded is sent only to a notifier whose events name it."""
    aws.create_secret(Name="app/db", SecretString="the-current-value-123")
    engine = _engine(tmp_path, _policy(tmp_path), clock)
    engine.rotate("app/db")
    assert _alerts(tmp_path) == []
    tmp = tmp_path / "asks"
    tmp.mkdir()
    engine = _engine(tmp, _policy(tmp, events="events: [rotation-succeeded]"), clock)
    aws.put_secret_value(SecretId="app/db", SecretString="x" * 20)
    engine.rotate("app/db")
    [alert] = _alerts(tmp)
    assert alert["event"] == "rotation-succeeded" and alert["severity"] == "info"


def test_an_undelivered_alert_is_kept_and_sent_later(
    aws: Any, tmp_path: Path, clock: FakeClock
) -> None:
    """A notifier failing (exit 75) is retried with backoff, then the watch pass delivers."""
    aws.create_secret(Name="app/db", SecretString="the-current-value-123")
    engine = _engine(tmp_path, _policy(tmp_path), clock)
    (tmp_path / "fail").write_text("75")
    engine.rotate("app/db", emergency=True, reason="key pasted in a ticket")
    assert _alerts(tmp_path) == []
    assert clock.slept[:2] == [1.0, 2.0]  # backoff between the three attempts
    [row] = engine.journal.alerts.rows(unsent=True)
    assert row.event == "emergency-rotation" and row.attempts == 1
    (tmp_path / "fail").unlink()
    assert watch_usage(engine).alerts_resent == 1
    [alert] = _alerts(tmp_path)
    assert alert["event"] == "emergency-rotation"
    assert "key pasted in a ticket" in alert["summary"]
    assert engine.journal.alerts.rows(unsent=True) == []
    assert watch_usage(engine).alerts_resent == 0


def test_an_overdue_credential_is_alerted(aws: Any, tmp_path: Path, clock: FakeClock) -> None:
    """A credential older than max_age is alerted once, with when it became overdue."""
    aws.create_secret(Name="app/db", SecretString="the-current-value-123")
    engine = _engine(tmp_path, _policy(tmp_path, _refusing_check(tmp_path)), clock)
    clock.now = datetime.now(UTC) + timedelta(days=61)  # moto stamped the creation just now
    [item] = engine.plan()
    assert item.overdue_since is not None
    engine.run_once()
    events = [a["event"] for a in _alerts(tmp_path)]
    assert events.count("overdue") == 1 and "rotation-failed" in events
    engine.execute(engine.plan())
    assert [a["event"] for a in _alerts(tmp_path)].count("overdue") == 1


MANUAL = """
secrets:
  - name: partner/api
    owner: team-partners
    store: {provider: aws-secretsmanager, secret_id: partner/api}
    issuer: {kind: manual, instructions: "https://partner.example.com/settings/keys"}
    schedule: {every: 90d}
    grace: 1d
    alerts: [ops]
"""


def test_a_reminder_only_secret_reminds_and_takes_a_value(
    aws: Any, tmp_path: Path, clock: FakeClock
) -> None:
    """Due: the owner is reminded and nothing is minted; a supplied value is then rotated in."""
    aws.create_secret(Name="partner/api", SecretString="partner-key-one-123")
    engine = _engine(tmp_path, _notifiers(tmp_path) + MANUAL, clock)
    clock.now = datetime.now(UTC) + timedelta(days=91)
    [item] = engine.plan()
    assert item.action is Action.REMIND and item.due
    [outcome] = engine.run_once().outcomes
    assert outcome.result is Result.WAITING and "reminded" in outcome.message
    [reminder] = _alerts(tmp_path)
    assert reminder["event"] == "rotation-due"
    assert "partner.example.com/settings/keys" in reminder["summary"]
    engine.run_once()
    assert len(_alerts(tmp_path)) == 1  # once per due date
    with pytest.raises(ConfigError, match="--value-from-stdin"):
        engine.rotate("partner/api")
    [done] = engine.rotate("partner/api", value=SecretValue("partner-key-two-456")).outcomes
    assert done.result is Result.OK and done.state is State.GRACE
    current = aws.get_secret_value(SecretId="partner/api", VersionStage="AWSCURRENT")
    assert current["SecretString"] == "partner-key-two-456"
    clock.advance(timedelta(days=1, seconds=1))
    engine.run_once()
    revoke = _alerts(tmp_path)[-1]
    assert revoke["event"] == "rotation-due" and "revoke it by hand" in revoke["summary"]


def test_a_value_is_refused_by_an_issuer_that_mints(
    aws: Any, tmp_path: Path, clock: FakeClock
) -> None:
    """--value-from-stdin is a usage error for a random or IAM issuer; nothing changes."""
    aws.create_secret(Name="app/db", SecretString="the-current-value-123")
    engine = _engine(tmp_path, _policy(tmp_path), clock)
    with pytest.raises(ConfigError, match="mints its own"):
        engine.rotate("app/db", value=SecretValue("chosen-by-hand-123"))
    assert not engine.journal.exists()  # refused before anything was written


def test_cli_value_from_stdin(aws: Any, tmp_path: Path, clock: FakeClock) -> None:
    """`rotate --value-from-stdin` stores stdin without its newline; empty stdin exits 2."""
    aws.create_secret(Name="partner/api", SecretString="partner-key-one-123")
    (tmp_path / "p.yaml").write_text(_notifiers(tmp_path) + MANUAL)
    args = ["--config", str(tmp_path / "p.yaml"), "--state", f"sqlite:///{tmp_path / 'j.db'}"]
    runner = CliRunner()
    empty = runner.invoke(cli, ["rotate", "partner/api", "--value-from-stdin", *args], input="")
    assert empty.exit_code == 2 and "empty" in empty.output
    result = runner.invoke(
        cli, ["rotate", "partner/api", "--value-from-stdin", *args], input="partner-key-2\n"
    )
    assert result.exit_code == 0, result.output
    assert "partner-key-2" not in result.output
    current = aws.get_secret_value(SecretId="partner/api", VersionStage="AWSCURRENT")
    assert current["SecretString"] == "partner-key-2"


def test_undeclared_notifiers_are_refused_with_their_place(tmp_path: Path) -> None:
    """An alerts entry naming no declared notifier is a located policy error."""
    (tmp_path / "a.yaml").write_text(_notifiers(tmp_path))
    (tmp_path / "b.yaml").write_text(
        """secrets:
  - name: app/db
    store: {provider: aws-secretsmanager, secret_id: app/db}
    schedule: {every: 30d}
    grace: 1h
    alerts: [opz]
"""
    )
    with pytest.raises(PolicyError) as caught:
        load_policies(tmp_path)
    [problem] = caught.value.problems
    assert problem.file.endswith("b.yaml") and problem.line == 2
    assert "unknown notifier 'opz'; did you mean 'ops'?" in problem.reason


def test_notifier_problems_are_located(tmp_path: Path) -> None:
    """A bad notifier field, an unknown event and a duplicate name are each reported in place."""
    (tmp_path / "a.yaml").write_text(
        """notifiers:
  ops:
    kind: slack
    url: https://hooks.slack.com/services/T/B/X
  pager:
    kind: webhook
    url: https://alerts.example.com/hook
    events: [rotation-failed, everything]
"""
    )
    (tmp_path / "b.yaml").write_text(
        """notifiers:
  pager:
    kind: exec
    command: [/bin/true]
"""
    )
    with pytest.raises(PolicyError) as caught:
        load_policies(tmp_path)
    text = "\n".join(str(p) for p in caught.value.problems)
    assert "a.yaml:2:3: notifiers.ops: url: " in text and "url_env" in text
    assert "a.yaml:8:31: notifiers.pager.events[1]: expected one of" in text
    assert "got 'everything'" in text
    assert "b.yaml:2:" in text and "duplicate notifier name 'pager'" in text
    assert "hooks.slack.com/services/T/B/X" not in text


def test_a_file_of_notifiers_alone_is_valid(tmp_path: Path) -> None:
    """A notifiers-only file needs no secrets, and defaults may carry alerts."""
    (tmp_path / "notifiers.yaml").write_text(_notifiers(tmp_path))
    (tmp_path / "app.yaml").write_text(
        """defaults:
  alerts: [ops]
secrets:
  - name: app/db
    store: {provider: aws-secretsmanager, secret_id: app/db}
    schedule: {every: 30d}
    grace: 1h
"""
    )
    loaded = load_policies(tmp_path)
    assert list(loaded.notifiers) == ["ops"]
    assert loaded[0].alerts == ("ops",)


IAM = """
secrets:
  - name: deployer
    store: {provider: aws-secretsmanager, secret_id: deployer}
    issuer: {kind: aws-iam-access-key, user: deployer, delete_after: 7d}
    schedule: {every: 30d}
    grace: 1h
    alerts: [ops]
"""


def test_a_revoked_key_used_after_revocation_is_alerted(aws: Any, tmp_path: Path) -> None:
    """The watch pass records last use and alerts when a deactivated key is used."""
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="deployer")
    key = iam.create_access_key(UserName="deployer")["AccessKey"]
    old = {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
    aws.create_secret(Name="deployer", SecretString=json.dumps(old))
    # moto stamps last use with the real time: the rotation happens in the past.
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3))
    engine = _engine(tmp_path, _notifiers(tmp_path) + IAM, clock)
    engine.rotate("deployer")
    clock.advance(timedelta(hours=1, seconds=1))
    [revoked] = engine.run_once().outcomes
    assert revoked.state is State.REVOKED
    assert watch_usage(engine).checked == 2
    assert _alerts(tmp_path) == []
    # moto lets an inactive key sign requests (notes D13); AWS would refuse it
    # but still record the attempt's last use.
    boto3.client(
        "sts",
        region_name=REGION,
        aws_access_key_id=old["AccessKeyId"],
        aws_secret_access_key=old["SecretAccessKey"],
    ).get_caller_identity()
    watch_usage(engine)
    [alert] = _alerts(tmp_path)
    assert alert["event"] == "revoked-credential-used" and alert["severity"] == "critical"
    assert old["AccessKeyId"] in alert["summary"]
    assert old["SecretAccessKey"] not in json.dumps(alert)
    watch_usage(engine)
    assert len(_alerts(tmp_path)) == 1
    usage = engine.journal.usage.of(["deployer"])
    assert usage["deployer", old["AccessKeyId"]].last_used is not None
    actions = [r.action for r in engine.journal.trail.records()]
    assert "revoked-credential-used" in actions


def test_status_shows_last_use(aws: Any, tmp_path: Path) -> None:
    """`rotator status --json` carries the recorded last use of the current credential."""
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="deployer")
    key = iam.create_access_key(UserName="deployer")["AccessKey"]
    pair = {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
    aws.create_secret(Name="deployer", SecretString=json.dumps(pair))
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3))
    engine = _engine(tmp_path, _notifiers(tmp_path) + IAM, clock)
    engine.rotate("deployer")
    new = json.loads(
        aws.get_secret_value(SecretId="deployer", VersionStage="AWSCURRENT")["SecretString"]
    )
    boto3.client(
        "sts",
        region_name=REGION,
        aws_access_key_id=new["AccessKeyId"],
        aws_secret_access_key=new["SecretAccessKey"],
    ).get_caller_identity()
    watch_usage(engine)
    args = ["--config", str(tmp_path / "p.yaml"), "--state", f"sqlite:///{tmp_path / 'j.db'}"]
    result = CliRunner().invoke(cli, ["status", "--json", *args])
    [row] = json.loads(result.stdout)
    assert row["current_ref"] == new["AccessKeyId"]
    assert row["current_last_used"] is not None
    assert row["old_ref"] == pair["AccessKeyId"]


def test_an_emergency_rolls_back_an_unfinished_rotation(
    aws: Any, tmp_path: Path, clock: FakeClock
) -> None:
    """An emergency meeting a rotation stopped before promote rolls it back and replaces at once."""
    aws.create_secret(Name="app/db", SecretString="the-leaked-value-1234")
    engine = _engine(tmp_path, _policy(tmp_path), clock)
    engine.journal.migrate()
    now = clock()
    stuck = engine.journal.create(
        Rotation(
            id="interrupted",
            secret="app/db",
            state=State.PLANNED,
            trigger="schedule",
            created_at=now,
            updated_at=now,
        )
    )
    assert stuck.state is State.PLANNED
    report = engine.rotate("app/db", emergency=True, reason="leaked")
    assert report.exit_code == 0, [o.message for o in report.outcomes]
    rolled, replaced = report.outcomes
    assert rolled.rotation_id == "interrupted" and rolled.state is State.ROLLED_BACK
    assert replaced.state in (State.REVOKED, State.DONE)
    current = aws.get_secret_value(SecretId="app/db", VersionStage="AWSCURRENT")
    assert current["SecretString"] != "the-leaked-value-1234"
    assert [a["event"] for a in _alerts(tmp_path)] == ["emergency-rotation"]


def test_a_notifier_takes_the_alerts_of_the_secrets_its_match_selects(
    aws: Any, tmp_path: Path, clock: FakeClock
) -> None:
    """`match: {labels: ...}` routes a team's alerts without each policy naming the notifier."""
    for name in ("app/db", "search/db"):
        aws.create_secret(Name=name, SecretString=f"the-current-value-of-{name}")
    refusing = _refusing_check(tmp_path)  # both rotations fail: each raises rotation-failed
    body = _notifiers(tmp_path, "match: {labels: {team: payments}}") + (
        """
secrets:
  - name: app/db
    owner: team-payments
    labels: {team: payments, tier: "1"}
    store: {provider: aws-secretsmanager, secret_id: app/db}
    schedule: {every: 30d}
    grace: 1h
"""
        + refusing
        + """
  - name: search/db
    labels: {team: search}
    store: {provider: aws-secretsmanager, secret_id: search/db}
    schedule: {every: 30d}
    grace: 1h
"""
        + refusing
    )
    engine = _engine(tmp_path, body, clock)
    engine.rotate("app/db")
    engine.rotate("search/db")
    alerts = _alerts(tmp_path)
    assert [(a["event"], a["secret"]) for a in alerts] == [("rotation-failed", "app/db")]
    assert alerts[0]["labels"] == {"team": "payments", "tier": "1"}
    assert alerts[0]["owner"] == "team-payments"


def test_an_empty_match_is_refused_with_its_place(tmp_path: Path) -> None:
    """A match that names nothing would match every secret: a located error instead."""
    (tmp_path / "p.yaml").write_text(
        "notifiers:\n  ops:\n    kind: webhook\n    url: https://alerts.example.com/x\n"
        "    match: {}\n"
        "secrets:\n  - name: a\n    store: {provider: aws-secretsmanager, secret_id: a}\n"
        "    schedule: {every: 30d}\n    grace: 1h\n"
    )
    with pytest.raises(PolicyError) as caught:
        load_policies(tmp_path / "p.yaml")
    [problem] = caught.value.problems
    assert problem.line == 5 and "match must name labels or an owner" in problem.reason
