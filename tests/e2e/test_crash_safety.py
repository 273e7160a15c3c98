"""Kill the process at every step boundary; the next run must converge safely.

Invariant 3 of docs/design.md (and 1, 2 and 6 along the way).

Each case rotates an IAM access key stored in Secrets Manager (the hardest
issuer: two slots, and a secret that AWS shows only once) with the CLI as a
subprocess against moto_server, through the test harness (``tests/harness.py``):
an armed fault point ends the process with ``os._exit`` at that point, as
SIGKILL would, and each run's clock is pinned, so the grace deadline is
crossed without waiting.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rotator.engine.faults import POINTS
from tests.e2e.conftest import Rotator, client

GRACE = timedelta(hours=1)
POLICY = """
secrets:
  - name: deployer
    store: {provider: aws-secretsmanager, secret_id: ci/deployer}
    issuer: {kind: aws-iam-access-key, user: deployer, delete_after: 0s}
    schedule: {every: 30d}
    grace: 1h
"""
AFTER_PROMOTE = ("revoke", "delete", "revoke:revoked")
#: The rollback step is not on the path of a successful rotation.
HAPPY_POINTS = [p for p in POINTS if "rollback" not in p]


def _seed() -> dict[str, str]:
    iam = client("iam")
    iam.create_user(UserName="deployer")
    key = iam.create_access_key(UserName="deployer")["AccessKey"]
    pair = {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
    client("secretsmanager").create_secret(Name="ci/deployer", SecretString=json.dumps(pair))
    return pair


def _keys() -> dict[str, str]:
    listed = client("iam").list_access_keys(UserName="deployer")["AccessKeyMetadata"]
    return {k["AccessKeyId"]: k["Status"] for k in listed}


def _current() -> dict[str, str]:
    value = client("secretsmanager").get_secret_value(
        SecretId="ci/deployer", VersionStage="AWSCURRENT"
    )["SecretString"]
    pair: dict[str, str] = json.loads(value)
    return pair


def _works(pair: dict[str, str]) -> bool:
    """The key pair authenticates as the deployer user (moto answers unknown keys as root)."""
    arn = client(
        "sts", aws_access_key_id=pair["AccessKeyId"], aws_secret_access_key=pair["SecretAccessKey"]
    ).get_caller_identity()["Arn"]
    return str(arn).endswith(":user/deployer")


def _journal_steps(workdir: Path) -> list[tuple[str, str | None]]:
    with sqlite3.connect(workdir / "rotator.db") as db:
        return list(
            db.execute("SELECT step, state_to FROM events WHERE outcome = 'ok' ORDER BY id")
        )


def _assert_invariants(old: dict[str, str]) -> dict[str, str]:
    keys = _keys()
    assert len(keys) <= 2, f"more than two IAM keys: {keys}"
    current = _current()
    assert current["AccessKeyId"] in keys and keys[current["AccessKeyId"]] == "Active"
    assert _works(current), "the current credential does not work"
    stages = client("secretsmanager").describe_secret(SecretId="ci/deployer")["VersionIdsToStages"]
    assert sum("AWSCURRENT" in s for s in stages.values()) == 1
    return current


@pytest.mark.e2e
@pytest.mark.parametrize("point", HAPPY_POINTS)
def test_kill_at_step_boundary_converges(rotator_cli: Rotator, point: str) -> None:
    """A run killed at this point is finished by the next: one new key, old revoked at grace end."""
    rotator_cli.config.write_text(POLICY)
    old = _seed()
    t0 = datetime.now(UTC).replace(microsecond=0)
    late = any(point.endswith(s) or point == s for s in AFTER_PROMOTE)

    first = rotator_cli("rotate", "deployer", now=t0, fault=None if late else point)
    if not late:
        assert first.code == 137, first.stderr
        # Not _works(old): signing with the old key would record a use after
        # promotion and (rightly) extend its grace.
        assert _keys()[old["AccessKeyId"]] == "Active"
        resumed = rotator_cli("run", "--once", now=t0)
        assert resumed.code == 0, resumed.stderr
    else:
        assert first.code == 0, first.stderr

    current = _assert_invariants(old)
    assert current["AccessKeyId"] != old["AccessKeyId"], "the rotation did not converge"
    assert set(_keys()) == {old["AccessKeyId"], current["AccessKeyId"]}
    assert _keys()[old["AccessKeyId"]] == "Active", "old key revoked before its grace ended"
    steps = [s for s, _ in _journal_steps(rotator_cli.workdir)]
    assert steps.index("verify") < steps.index("promote"), "promoted before verification"

    before_deadline = rotator_cli("run", "--once", now=t0 + GRACE - timedelta(seconds=1))
    assert before_deadline.code == 0, before_deadline.stderr
    assert _keys()[old["AccessKeyId"]] == "Active", "old key revoked before its grace ended"

    at_deadline = t0 + GRACE + timedelta(seconds=1)
    if late:
        killed = rotator_cli("run", "--once", now=at_deadline, fault=point)
        assert killed.code == 137, killed.stderr
        _assert_invariants(old)
    final = rotator_cli("run", "--once", now=at_deadline + timedelta(seconds=1))
    assert final.code == 0, final.stderr
    assert _assert_invariants(old) == current
    assert _keys() == {current["AccessKeyId"]: "Active"}, "old key not deleted after grace"
    history = rotator_cli("history", "deployer", "--json").json()
    assert [r["state"] for r in history] == ["done"]


@pytest.mark.e2e
@pytest.mark.parametrize("crash", [None, "before:rollback", "after:rollback"])
def test_failed_verification_rolls_back_even_across_a_crash(
    rotator_cli: Rotator, crash: str | None
) -> None:
    """A key failing verification is deleted, never promoted, even if the rollback is killed."""
    rotator_cli.config.write_text(POLICY)
    old = _seed()
    t0 = datetime.now(UTC).replace(microsecond=0)
    faults = ",".join(filter(None, ["fail:verify", crash]))

    first = rotator_cli("rotate", "deployer", now=t0, fault=faults)
    assert first.code == (137 if crash else 1), first.stderr
    if crash == "before:rollback":
        assert len(_keys()) == 2  # the new key is still there, awaiting the rollback
        resumed = rotator_cli("run", "--once", now=t0)
        assert resumed.code == 1, resumed.stderr  # the resumed rotation ends rolled back
    elif crash == "after:rollback":
        resumed = rotator_cli("run", "--once", now=t0)
        assert resumed.code == 0, resumed.stderr  # nothing left to do

    assert _current() == old, "an unverified key was promoted"
    assert _keys() == {old["AccessKeyId"]: "Active"}, "the unverified key was not deleted"
    assert _works(old)
    stages = client("secretsmanager").describe_secret(SecretId="ci/deployer")["VersionIdsToStages"]
    assert not any("AWSPENDING" in s for s in stages.values())
    history = rotator_cli("history", "deployer", "--json").json()
    assert [r["state"] for r in history] == ["rolled_back"]
    assert "fault injected" in history[0]["error"]
