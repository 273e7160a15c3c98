"""``rotator leaks ingest`` end to end: the real command, a subprocess, moto_server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import Rotator, client

DATA = Path(__file__).parent.parent / "data" / "leaks"
#: The payments token the fixture reports found.
LEAKED = "pK9v2mQx7LrT4wZs8NbY3cHdGf6J"
FIXTURE_KEY_ID = "AKIAZQ3DRSQ5LKFZ2K7V"
FIXTURE_SECRET_KEY = "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"

POLICIES = """
defaults: {schedule: {every: 30d}, grace: 1h}
secrets:
  - name: payments-api
    store: {provider: aws-secretsmanager, secret_id: payments-api}
    issuer: {kind: random, length: 32}
  - name: deployer
    store: {provider: aws-secretsmanager, secret_id: deployer}
    issuer: {kind: aws-iam-access-key, user: deployer, delete_after: 1d}
"""


def _seed(config: Path) -> dict[str, str]:
    """Create the payments token (the leaked value) and the deployer's key pair; write policies."""
    sm, iam = client("secretsmanager"), client("iam")
    sm.create_secret(Name="payments-api", SecretString=LEAKED)
    iam.create_user(UserName="deployer")
    key = iam.create_access_key(UserName="deployer")["AccessKey"]
    pair = {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
    sm.create_secret(Name="deployer", SecretString=json.dumps(pair))
    config.write_text(POLICIES)
    return pair


def _report(workdir: Path, name: str, pair: dict[str, str]) -> tuple[Path, str]:
    """Write a fixture report with the fixture's AWS pair replaced by the deployer's real one."""
    text = (DATA / name).read_text()
    text = text.replace(FIXTURE_KEY_ID, pair["AccessKeyId"])
    text = text.replace(FIXTURE_SECRET_KEY, pair["SecretAccessKey"])
    path = workdir / name
    path.write_text(text)
    return path, text


def _current(secret_id: str) -> str:
    value: str = client("secretsmanager").get_secret_value(
        SecretId=secret_id, VersionStage="AWSCURRENT"
    )["SecretString"]
    return value


def _keys() -> dict[str, str]:
    listed = client("iam").list_access_keys(UserName="deployer")["AccessKeyMetadata"]
    return {k["AccessKeyId"]: k["Status"] for k in listed}


@pytest.mark.e2e
def test_dry_run_then_ingest_then_ingest_again(rotator_cli: Rotator) -> None:
    """Dry run changes nothing, ingest rotates both leaked secrets, a rerun finds them revoked."""
    old = _seed(rotator_cli.config)
    report, _ = _report(rotator_cli.workdir, "trufflehog-git.jsonl", old)

    dry = rotator_cli("leaks", "ingest", str(report), "--dry-run", "--json")
    assert dry.code == 0, dry.stderr
    assert [(f["secret"], f["action"]) for f in dry.json()["findings"]] == [
        ("deployer", "would rotate (dry run)"),
        ("payments-api", "would rotate (dry run)"),
    ]
    assert _current("payments-api") == LEAKED and _keys() == {old["AccessKeyId"]: "Active"}

    done = rotator_cli("leaks", "ingest", str(report))
    assert done.code == 0, done.stderr
    assert done.stdout.count("rotated (emergency)") == 3  # two rows and the summary
    assert "deploy/ci.env:3" in done.stdout and "config/settings.py:12" in done.stdout
    assert _current("payments-api") != LEAKED
    new_pair = json.loads(_current("deployer"))
    assert _keys() == {old["AccessKeyId"]: "Inactive", new_pair["AccessKeyId"]: "Active"}
    [rotation] = rotator_cli("history", "deployer", "--json").json()
    assert rotation["emergency"] and rotation["trigger"] == "emergency"
    assert rotation["reason"] == "leak: trufflehog AWS at deploy/ci.env:3 (commit 7b2d9e4)"

    again = rotator_cli("leaks", "ingest", str(report), "--json")
    assert again.code == 0, again.stderr
    document = again.json()
    assert [(f["secret"], f["action"]) for f in document["findings"]] == [
        ("deployer", "already revoked"),
        ("payments-api", "already revoked"),
    ]
    assert document["summary"]["rotated"] == []


@pytest.mark.e2e
def test_unmatched_finding_exits_1_with_its_place(rotator_cli: Rotator) -> None:
    """A finding of no managed secret is listed with its file and line, and the exit code is 1."""
    old = _seed(rotator_cli.config)
    report, _ = _report(rotator_cli.workdir, "trufflehog-filesystem.jsonl", old)
    result = rotator_cli("leaks", "ingest", str(report))
    assert result.code == 1, result.stderr
    assert "/srv/app/.env:4" in result.stdout and "no match" in result.stdout
    assert _current("payments-api") == LEAKED


@pytest.mark.e2e
def test_no_leaked_value_in_output_logs_or_journal(rotator_cli: Rotator) -> None:
    """Canary: at DEBUG no leaked value, Match, Raw or RawV2 is in stdout, stderr or the journal."""
    old = _seed(rotator_cli.config)
    gitleaks, gitleaks_text = _report(rotator_cli.workdir, "gitleaks.json", old)
    trufflehog, trufflehog_text = _report(rotator_cli.workdir, "trufflehog-git.jsonl", old)
    runs = [
        rotator_cli("leaks", "ingest", str(gitleaks), "--dry-run", log_level="debug"),
        rotator_cli("leaks", "ingest", str(trufflehog), "--json", log_level="debug"),
        rotator_cli("leaks", "ingest", str(gitleaks), log_level="debug"),
        rotator_cli("leaks", "ingest", str(trufflehog), log_level="debug"),
    ]
    assert [r.code for r in runs] == [0, 0, 0, 0], [r.stderr[-2000:] for r in runs]
    output = "\n".join(r.stdout + r.stderr for r in runs)
    assert '"level": "debug"' in output, "no debug line was written"

    leaked = {LEAKED, old["SecretAccessKey"]}
    for finding in json.loads(gitleaks_text):
        leaked |= {finding["Match"], finding["Secret"]}
    for line in trufflehog_text.splitlines():
        finding = json.loads(line)
        leaked |= {finding["Raw"], finding["RawV2"]} - {""}
    # An AWS finding's Raw is the access key id: a ref, which the journal records and the
    # engine logs by design. Only the command's own output must not carry it.
    refs = {old["AccessKeyId"]}
    journal = b"".join(p.read_bytes() for p in rotator_cli.workdir.glob("rotator.db*"))
    assert journal, "the journal was not written"
    for value in leaked - refs:
        assert value not in output, "a leaked value reached the output or a log line"
        assert value.encode() not in journal, "a leaked value reached the journal"
        assert json.dumps(value)[1:-1].encode() not in journal
    for ref in refs:
        assert all(ref not in r.stdout for r in runs), "the command printed a whole key id"
