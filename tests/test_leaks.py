"""``rotator leaks ingest``: scanner reports parsed, matched to managed secrets, rotated.

Parsers run on reports shaped as gitleaks and trufflehog v3 write them
(``tests/data/leaks``); matching and rotation run on in-process moto with an
injected clock; the command itself runs in-process through click's runner.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, MutableMapping
from datetime import UTC, datetime, timedelta
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import boto3
import pytest
import structlog
import structlog.testing
from click.testing import CliRunner, Result
from moto import mock_aws

from providers.aws.leaks import AccessKeyFormat
from rotator.adapters import scanning
from rotator.adapters.scanning import (
    FORMAT_GROUP,
    CredentialFormat,
    LeakedPair,
    credential_formats,
)
from rotator.adapters.secret import SecretValue
from rotator.cli.leaks import leaks
from rotator.engine.runner import Engine
from rotator.errors import ConfigError, PolicyError
from rotator.journal.journal import Journal
from rotator.lifecycle import State
from rotator.policy.loader import load_policies
from rotator.watch.credentials import Standing
from rotator.watch.findings import ReportError
from rotator.watch.leaks import Action, Triage, triage
from rotator.watch.scanners import parse_report
from tests.conftest import FakeClock, restored_logging, run_sql

REGION = "us-east-1"
DATA = Path(__file__).parent / "data" / "leaks"
#: The payments token the fixture reports found (gitleaks' first finding, trufflehog's second).
LEAKED = "pK9v2mQx7LrT4wZs8NbY3cHdGf6J"
#: The AWS key pair of the fixture reports (replaced by a moto key where one is needed).
FIXTURE_KEY_ID = "AKIAZQ3DRSQ5LKFZ2K7V"
FIXTURE_SECRET_KEY = "Jx4rT8v1Lm2Qp7Ws9Zb3Nc6Yd0Hf5Kg+Ua/Ee1Ri"

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


# -- report builders ---------------------------------------------------------------


def _gitleaks_findings() -> list[dict[str, Any]]:
    findings: list[dict[str, Any]] = json.loads((DATA / "gitleaks.json").read_text())
    return findings


def _gitleaks(findings: list[dict[str, Any]]) -> bytes:
    """Write findings as ``gitleaks detect --report-format json`` does (one-space indent)."""
    return (json.dumps(findings, indent=1) + "\n").encode()


def _finding(index: int = 0, **changes: Any) -> dict[str, Any]:
    """Return a fixture gitleaks finding with ``changes`` (a field set to None is dropped)."""
    finding = {**_gitleaks_findings()[index], **changes}
    return {k: v for k, v in finding.items() if v is not None}


def _trufflehog_lines() -> list[dict[str, Any]]:
    text = (DATA / "trufflehog-git.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def _trufflehog(*findings: dict[str, Any]) -> bytes:
    """Write findings as ``trufflehog git --json`` does: compact, one object per line."""
    return "".join(json.dumps(f, separators=(",", ":")) + "\n" for f in findings).encode()


def _swap(data: bytes, swaps: dict[str, str]) -> bytes:
    text = data.decode()
    for old, new in swaps.items():
        text = text.replace(old, new)
    return text.encode()


def _start_line(text: str, number: int) -> int:
    """Return the line on which gitleaks finding ``number`` (1-based) opens."""
    opening = [i for i, line in enumerate(text.splitlines(), start=1) if line == " {"]
    return opening[number - 1]


# -- parsing -------------------------------------------------------------------------


def test_gitleaks_report_gives_place_rule_commit_and_masks_the_value() -> None:
    """A gitleaks finding keeps file, line, rule, commit and fingerprint; its value stays masked."""
    data = (DATA / "gitleaks.json").read_bytes()
    report = parse_report(data, "gitleaks.json")
    assert report.tool == "gitleaks"
    first, second = report.findings
    assert (first.location, first.rule, first.short_commit) == (
        "config/settings.py:12",
        "generic-api-key",
        "1f4e0c2",
    )
    assert first.report_line == _start_line(data.decode(), 1) == 2
    assert second.report_line == _start_line(data.decode(), 2)
    assert first.fingerprint.endswith(":config/settings.py:generic-api-key:12")
    assert first.values == (SecretValue(LEAKED),) and first.key_ids == ()
    assert LEAKED not in repr(first) and LEAKED not in repr(first.values)
    # The aws-access-token rule reports the key id: an identifier, compared as a ref.
    assert second.key_ids == (FIXTURE_KEY_ID,) and second.values == ()
    assert first.reason() == (
        "leak: gitleaks generic-api-key at config/settings.py:12 (commit 1f4e0c2)"
    )


def test_trufflehog_git_lines_give_the_aws_key_id_and_pair() -> None:
    """An AWS finding yields its key id as a ref and RawV2, the secret key and the stored pair."""
    report = parse_report((DATA / "trufflehog-git.jsonl").read_bytes(), "th.jsonl")
    assert report.tool == "trufflehog"
    aws, custom = report.findings
    assert (aws.rule, aws.location, aws.short_commit, aws.verified) == (
        "AWS",
        "deploy/ci.env:3",
        "7b2d9e4",
        False,
    )
    assert aws.key_ids == (FIXTURE_KEY_ID,)
    assert SecretValue(FIXTURE_SECRET_KEY) in aws.values
    pair = SecretValue({"AccessKeyId": FIXTURE_KEY_ID, "SecretAccessKey": FIXTURE_SECRET_KEY})
    assert pair in aws.values
    assert (custom.number, custom.report_line, custom.rule) == (2, 2, "CustomRegex")
    assert custom.values == (SecretValue(LEAKED),) and custom.key_ids == ()


def test_trufflehog_raw_v2_without_separator_is_still_an_aws_pair() -> None:
    """Older trufflehog joined key id and secret key with nothing between; both are recognised."""
    aws = _trufflehog_lines()[0]
    aws["RawV2"] = FIXTURE_KEY_ID + FIXTURE_SECRET_KEY
    [finding] = parse_report(_trufflehog(aws), "th.jsonl").findings
    assert finding.key_ids == (FIXTURE_KEY_ID,)
    assert SecretValue(FIXTURE_SECRET_KEY) in finding.values


def test_what_an_identifier_is_the_providers_say() -> None:
    """The core knows no key format: without the installed formats, an AWS key id is a value."""
    assert [type(f) for f in credential_formats()] == [AccessKeyFormat]
    data = (DATA / "gitleaks.json").read_bytes()
    _, alone = parse_report(data, "gitleaks.json", formats=()).findings
    assert alone.key_ids == () and alone.values == (SecretValue(FIXTURE_KEY_ID),)
    _, read = parse_report(data, "gitleaks.json").findings
    assert read.key_ids == (FIXTURE_KEY_ID,) and read.values == ()


def test_the_aws_format_reads_key_ids_and_key_pairs() -> None:
    """An access key id is an identifier; id and secret key together give the secret key twice."""
    keys = AccessKeyFormat()
    assert keys.is_identifier(FIXTURE_KEY_ID) and keys.is_identifier("ASIA" + FIXTURE_KEY_ID[4:])
    assert not keys.is_identifier(FIXTURE_KEY_ID + "Z") and not keys.is_identifier(LEAKED)
    stored = SecretValue({"AccessKeyId": FIXTURE_KEY_ID, "SecretAccessKey": FIXTURE_SECRET_KEY})
    for written in (f"{FIXTURE_KEY_ID}:{FIXTURE_SECRET_KEY}", FIXTURE_KEY_ID + FIXTURE_SECRET_KEY):
        found = keys.pair(written)
        assert found is not None and found.identifier == FIXTURE_KEY_ID
        assert found.values == (SecretValue(FIXTURE_SECRET_KEY), stored)
        assert FIXTURE_SECRET_KEY not in repr(found)
    assert keys.pair(FIXTURE_KEY_ID) is None and keys.pair(LEAKED) is None


class _TokenFormat(CredentialFormat):
    """A third party's token: ``tid_`` and 8 hex digits, then ``.`` and its secret."""

    def is_identifier(self, text: str) -> bool:
        return re.fullmatch(r"tid_[0-9a-f]{8}", text) is not None

    def pair(self, text: str) -> LeakedPair | None:
        identifier, dot, secret = text.partition(".")
        if not dot or not self.is_identifier(identifier):
            return None
        return LeakedPair(identifier, (SecretValue(secret),))


def test_a_third_party_format_is_read_as_the_aws_one_is() -> None:
    """Another provider's format: its Raw is a ref, its RawV2 pair gives the secret to compare."""
    line = {**_trufflehog_lines()[0], "Raw": "tid_0123abcd", "RawV2": "tid_0123abcd.s3cr3t-part"}
    [finding] = parse_report(_trufflehog(line), "th.jsonl", formats=(_TokenFormat(),)).findings
    assert finding.key_ids == ("tid_0123abcd",)
    assert finding.values == (SecretValue("tid_0123abcd.s3cr3t-part"), SecretValue("s3cr3t-part"))
    [plain] = parse_report(_trufflehog(line), "th.jsonl").findings
    assert plain.key_ids == () and SecretValue("tid_0123abcd") in plain.values


def test_a_misregistered_format_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry point of the formats group that is no CredentialFormat is refused, named."""
    wrong = EntryPoint(
        name="aws-access-key", value="providers.aws.iam:AccessKeyIssuer", group=FORMAT_GROUP
    )
    monkeypatch.setattr(scanning, "entry_points", lambda group: [wrong])
    credential_formats.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"'aws-access-key' .* is not a CredentialFormat"):
            credential_formats()
    finally:
        credential_formats.cache_clear()


def test_trufflehog_filesystem_finding_has_a_place_but_no_commit() -> None:
    """A filesystem scan names the file and line; the reason then carries no commit."""
    report = parse_report((DATA / "trufflehog-filesystem.jsonl").read_bytes(), "fs.jsonl")
    [finding] = report.findings
    assert (finding.location, finding.commit, finding.rule) == ("/srv/app/.env:4", "", "Github")
    assert finding.reason() == "leak: trufflehog Github at /srv/app/.env:4"


def test_trufflehog_log_lines_blank_lines_and_crlf_are_skipped() -> None:
    """trufflehog log lines merged into the report, blank lines and CRLF are not findings."""
    log_line = {
        "level": "info-0",
        "ts": "2026-10-31T09:45:01Z",
        "logger": "trufflehog",
        "msg": "finished scanning",
        "chunks": 12,
        "verified_secrets": 0,
        "unverified_secrets": 2,
    }
    data = _trufflehog(log_line, *_trufflehog_lines()).replace(b"\n", b"\r\n") + b"\r\n \r\n"
    report = parse_report(data, "th.jsonl")
    assert [(f.number, f.report_line) for f in report.findings] == [(1, 2), (2, 3)]


@pytest.mark.parametrize(
    ("data", "tool", "count"),
    [
        ((DATA / "gitleaks.json").read_bytes(), "gitleaks", 2),
        (b"[]\n", "gitleaks", 0),
        (b"null\n", "gitleaks", 0),
        ((DATA / "trufflehog-git.jsonl").read_bytes(), "trufflehog", 2),
        ((DATA / "trufflehog-filesystem.jsonl").read_bytes(), "trufflehog", 1),
        (b"", "trufflehog", 0),
        ("\ufeff".encode() + (DATA / "gitleaks.json").read_bytes(), "gitleaks", 2),
    ],
    ids=["gitleaks", "gitleaks-empty", "gitleaks-null", "trufflehog", "filesystem", "empty", "bom"],
)
def test_format_is_detected_from_content(data: bytes, tool: str, count: int) -> None:
    """A JSON array is gitleaks, JSON lines (or nothing, trufflehog's clean scan) trufflehog."""
    report = parse_report(data, "report")
    assert (report.tool, len(report.findings)) == (tool, count)


def _bad_gitleaks_json() -> tuple[bytes, int]:
    text = (DATA / "gitleaks.json").read_text()
    bad = text.replace('"StartLine": 12,', '"StartLine": 12,,', 1)
    return bad.encode(), text.splitlines().index('  "StartLine": 12,') + 1


def _gitleaks_case(index: int, **changes: Any) -> tuple[bytes, int]:
    findings = _gitleaks_findings()
    findings[index] = _finding(index, **changes)
    data = _gitleaks(findings)
    return data, _start_line(data.decode(), index + 1)


def _missing_comma() -> tuple[bytes, int]:
    data = _gitleaks(_gitleaks_findings())
    bad = data.decode().replace(" },\n {", " }\n {")
    return bad.encode(), _start_line(bad, 2)


def _trufflehog_case(change: Callable[[dict[str, Any]], None]) -> tuple[bytes, int]:
    lines = _trufflehog_lines()
    change(lines[1])
    return _trufflehog(*lines), 2


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda finding: finding.pop(key)


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda finding: finding.update({key: value})


def _set_line(value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda finding: finding["SourceMetadata"]["Data"]["Git"].update({"line": value})


TRUFFLEHOG = (DATA / "trufflehog-git.jsonl").read_bytes()
GITLEAKS = (DATA / "gitleaks.json").read_bytes()

BAD_REPORTS: list[tuple[str, str | None, tuple[bytes, int], str]] = [
    ("gitleaks-bad-json", None, _bad_gitleaks_json(), "not valid JSON: Expecting property name"),
    ("gitleaks-no-secret", None, _gitleaks_case(1, Secret=None), 'finding 2: has no "Secret"'),
    ("gitleaks-empty-secret", None, _gitleaks_case(0, Secret=""), 'finding 1: "Secret" is empty'),
    (
        "gitleaks-secret-number",
        None,
        _gitleaks_case(0, Secret=12345),
        'finding 1: "Secret" must be a string, not number',
    ),
    (
        "gitleaks-startline-string",
        None,
        _gitleaks_case(1, StartLine="3"),
        'finding 2: "StartLine" must be an integer, not string',
    ),
    (
        "gitleaks-file-null",
        None,
        _gitleaks_case(0, File=[]),
        'finding 1: "File" must be a string, not array',
    ),
    ("gitleaks-not-object", None, (b'[\n "oops"\n]\n', 2), "finding 1 is a JSON string"),
    ("gitleaks-missing-comma", None, _missing_comma(), "expected ',' or ']'"),
    ("gitleaks-unclosed", None, (b'[\n {"Secret": "x"}\n', 3), "the array is not closed"),
    ("gitleaks-extra-data", None, (GITLEAKS + b"[]\n", 44), "extra data after the array"),
    ("gitleaks-forced-on-lines", "gitleaks", (TRUFFLEHOG, 1), "--scanner trufflehog"),
    ("trufflehog-bad-json", None, (TRUFFLEHOG[:-40], 2), "not valid JSON"),
    ("trufflehog-no-raw", None, _trufflehog_case(_drop("Raw")), 'finding 2: has no "Raw"'),
    (
        "trufflehog-raw-number",
        None,
        _trufflehog_case(_set("Raw", 7)),
        'finding 2: "Raw" must be a string, not number',
    ),
    (
        "trufflehog-metadata-string",
        None,
        _trufflehog_case(_set("SourceMetadata", "git")),
        '"SourceMetadata" must be an object, not string',
    ),
    (
        "trufflehog-line-string",
        None,
        _trufflehog_case(_set_line("12")),
        'SourceMetadata.Data.Git: "line" must be an integer, not string',
    ),
    (
        "trufflehog-verified-string",
        None,
        _trufflehog_case(_set("Verified", "yes")),
        '"Verified" must be true or false',
    ),
    ("trufflehog-array-line", None, (TRUFFLEHOG + b"[1, 2]\n", 3), "a JSON array, not an object"),
    ("trufflehog-forced-on-array", "trufflehog", (GITLEAKS, 1), "a gitleaks report?"),
    (
        "trufflehog-pretty-object",
        None,
        (json.dumps(_trufflehog_lines()[0], indent=2).encode(), 1),
        "one JSON object over several lines",
    ),
    ("not-utf8", None, (TRUFFLEHOG.splitlines()[0] + b"\n\xff\xfe{}\n", 2), "not UTF-8 text"),
]


@pytest.mark.parametrize(
    ("tool", "case", "reason"),
    [(tool, case, reason) for _, tool, case, reason in BAD_REPORTS],
    ids=[name for name, *_ in BAD_REPORTS],
)
def test_bad_report_is_refused_with_its_line_and_reason(
    tool: str | None, case: tuple[bytes, int], reason: str
) -> None:
    """A report its tool could not have written is refused naming the file, the line and why."""
    data, line = case
    with pytest.raises(ReportError) as refused:
        parse_report(data, "scan.json", tool)
    assert (refused.value.source, refused.value.line) == ("scan.json", line)
    assert reason in refused.value.reason
    assert str(refused.value).startswith(f"scan.json:{line}: ")
    for value in (LEAKED, FIXTURE_SECRET_KEY):
        assert value not in str(refused.value)


# -- the engine on in-process moto ---------------------------------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """In-process moto with fake credentials and a region, no config file or endpoint."""
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    with mock_aws():
        yield


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock starting at the real now (moto stamps versions and keys with real time)."""
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


def _sm() -> Any:
    return boto3.client("secretsmanager", region_name=REGION)


def _iam() -> Any:
    return boto3.client("iam", region_name=REGION)


def _current(secret_id: str) -> str:
    value: str = _sm().get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")[
        "SecretString"
    ]
    return value


def _stages(secret_id: str) -> list[list[str]]:
    described = _sm().describe_secret(SecretId=secret_id)
    return sorted(described["VersionIdsToStages"].values())


def _keys() -> dict[str, str]:
    listed = _iam().list_access_keys(UserName="deployer")["AccessKeyMetadata"]
    return {k["AccessKeyId"]: k["Status"] for k in listed}


def _seed() -> dict[str, str]:
    """Create the payments token (the leaked value) and the deployer's IAM key pair."""
    _sm().create_secret(Name="payments-api", SecretString=LEAKED)
    _iam().create_user(UserName="deployer")
    key = _iam().create_access_key(UserName="deployer")["AccessKey"]
    pair = {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
    _sm().create_secret(Name="deployer", SecretString=json.dumps(pair))
    return pair


def _replace_by_hand(secret_id: str, value: str) -> None:
    """Make ``value`` current the way a person would, moving AWSCURRENT explicitly.

    (moto's PutSecretValue leaves AWSCURRENT also on the version it replaces.)
    """
    stages = _sm().describe_secret(SecretId=secret_id)["VersionIdsToStages"]
    [current] = [v for v, labels in stages.items() if "AWSCURRENT" in labels]
    new = _sm().put_secret_value(SecretId=secret_id, SecretString=value, VersionStages=["BYHAND"])
    _sm().update_secret_version_stage(
        SecretId=secret_id,
        VersionStage="AWSCURRENT",
        MoveToVersionId=new["VersionId"],
        RemoveFromVersionId=current,
    )


def _policies(tmp_path: Path, body: str = POLICIES) -> Path:
    path = tmp_path / "policies.yaml"
    path.write_text(body)
    return path


def _engine(tmp_path: Path, clock: FakeClock, body: str = POLICIES) -> Engine:
    return Engine(
        load_policies(_policies(tmp_path, body)),
        Journal(f"sqlite:///{tmp_path / 'rotator.db'}", clock),
        clock=clock,
        sleep=clock.sleep,
    )


def _triage(engine: Engine, data: bytes, *, dry_run: bool = False) -> Triage:
    return triage(engine, parse_report(data, "scan.json"), dry_run=dry_run)


def _rotations(engine: Engine, name: str) -> list[Any]:
    if not engine.journal.exists():
        return []
    return [r for r, _ in engine.journal.history(name)]


def test_leaked_current_value_is_rotated_in_an_emergency(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """gitleaks finding the current value: new AWSCURRENT, old retired at once, leak recorded."""
    _seed()
    engine = _engine(tmp_path, clock)
    result = _triage(engine, _gitleaks([_finding(0)]))
    [row] = result.rows
    assert (row.secret, row.known and row.known.standing, row.action) == (
        "payments-api",
        Standing.CURRENT,
        Action.ROTATED,
    )
    assert result.exit_code == 0
    assert _current("payments-api") != LEAKED and len(_current("payments-api")) == 32
    # Emergency: no grace, the old version lost its label in the same run.
    assert _stages("payments-api") == [[], ["AWSCURRENT"]]
    [rotation] = _rotations(engine, "payments-api")
    assert rotation.trigger == "emergency" and rotation.emergency
    assert rotation.reason == (
        "leak: gitleaks generic-api-key at config/settings.py:12 (commit 1f4e0c2)"
    )
    assert rotation.state is State.DONE and row.rotation_id == rotation.id
    assert _rotations(engine, "deployer") == []


def test_one_secret_with_a_row_rotator_cannot_read_leaves_the_others_triaged(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """A row edited to hold a state rotator has not: that secret unchecked, the leak still rotated.

    Before, reading every secret's rotations failed for all, and no leaked
    secret was rotated.
    """
    _seed()
    engine = _engine(tmp_path, clock)
    assert engine.rotate("deployer").exit_code == 0
    run_sql(engine.journal.url, "UPDATE rotations SET state = 'revoked-early'")
    result = _triage(engine, _gitleaks([_finding(0)]))
    [row] = result.rows
    assert (row.secret, row.action) == ("payments-api", Action.ROTATED)
    assert _current("payments-api") != LEAKED
    assert "state holds no state rotator has" in result.unchecked["deployer"]
    assert result.exit_code == 1  # a secret unchecked: a human must look


def test_trufflehog_aws_pair_rotates_the_iam_key_and_deactivates_the_leaked_one(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """A trufflehog AWS finding (Raw: the key id) rotates the IAM secret; the leaked key is off."""
    old = _seed()
    data = _swap(
        _trufflehog(_trufflehog_lines()[0]),
        {FIXTURE_KEY_ID: old["AccessKeyId"], FIXTURE_SECRET_KEY: old["SecretAccessKey"]},
    )
    engine = _engine(tmp_path, clock)
    result = _triage(engine, data)
    [row] = result.rows
    assert (row.secret, row.action, result.exit_code) == ("deployer", Action.ROTATED, 0)
    new = json.loads(_current("deployer"))
    assert new["AccessKeyId"] != old["AccessKeyId"]
    assert _keys() == {old["AccessKeyId"]: "Inactive", new["AccessKeyId"]: "Active"}
    [rotation] = _rotations(engine, "deployer")
    assert rotation.emergency and rotation.reason == (
        "leak: trufflehog AWS at deploy/ci.env:3 (commit 7b2d9e4)"
    )
    assert rotation.old_ref == old["AccessKeyId"] and rotation.state is State.REVOKED


def test_secret_key_alone_matches_the_stored_pair(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """A finding of only the SecretAccessKey matches the IAM secret by its field (dry run)."""
    old = _seed()
    engine = _engine(tmp_path, clock)
    result = _triage(engine, _gitleaks([_finding(0, Secret=old["SecretAccessKey"])]), dry_run=True)
    [row] = result.rows
    assert (row.secret, row.action) == ("deployer", Action.WOULD_ROTATE)
    assert _keys() == {old["AccessKeyId"]: "Active"}


def test_dry_run_changes_nothing(aws: None, tmp_path: Path, clock: FakeClock) -> None:
    """--dry-run says what would be rotated and leaves store, keys and journal as they were."""
    old = _seed()
    key_finding = _finding(1, Secret=old["AccessKeyId"], Match=old["AccessKeyId"])
    engine = _engine(tmp_path, clock)
    result = _triage(engine, _gitleaks([_finding(0), key_finding]), dry_run=True)
    assert [(r.secret, r.action) for r in result.rows] == [
        ("payments-api", Action.WOULD_ROTATE),
        ("deployer", Action.WOULD_ROTATE_WITH_GRACE),  # the key id alone: with grace
    ]
    assert result.exit_code == 0
    assert _current("payments-api") == LEAKED and _stages("payments-api") == [["AWSCURRENT"]]
    assert _keys() == {old["AccessKeyId"]: "Active"}
    assert _rotations(engine, "payments-api") == [] and _rotations(engine, "deployer") == []
    assert not (tmp_path / "rotator.db").exists() and not (tmp_path / "rotator.db.key").exists()
    assert "1 secret(s) would be rotated (dry run)" in result.summary()
    assert "1 secret(s) would be rotated with grace (dry run)" in result.summary()


def test_unmatched_finding_is_listed_for_a_human_and_exits_1(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """A finding of no managed secret is kept with its place and makes the exit code 1."""
    _seed()
    engine = _engine(tmp_path, clock)
    stranger = _finding(0, Secret="zzUnmanagedToken0123456789", File="lib/vendor.js", StartLine=7)
    result = _triage(engine, _gitleaks([stranger]))
    [row] = result.rows
    assert (row.secret, row.action) == (None, Action.NO_MATCH)
    assert row.finding.location == "lib/vendor.js:7"
    assert result.exit_code == 1
    assert _current("payments-api") == LEAKED


def test_value_revoked_earlier_is_reported_already_revoked(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """A leaked value rotated away and revoked before is reported with when; nothing is rotated."""
    _seed()
    engine = _engine(tmp_path, clock)
    engine.rotate("payments-api")
    clock.advance(timedelta(hours=1))
    revoked_at = clock()
    engine.run_once()
    clock.advance(timedelta(days=2))
    result = _triage(engine, _gitleaks([_finding(0)]))
    [row] = result.rows
    assert (row.secret, row.known and row.known.standing, row.action) == (
        "payments-api",
        Standing.REVOKED,
        Action.ALREADY_REVOKED,
    )
    assert row.known is not None and row.known.at == revoked_at
    assert row.says() == f"already revoked at {revoked_at:%Y-%m-%d %H:%M:%S} UTC"
    assert result.exit_code == 0
    assert len(_rotations(engine, "payments-api")) == 1


def test_value_in_grace_is_revoked_now_by_an_emergency_rotation(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """A leaked old value still in its grace cuts the grace short: revoked now, secret rotated."""
    _seed()
    engine = _engine(tmp_path, clock)
    engine.rotate("payments-api")
    clock.advance(timedelta(minutes=10))
    result = _triage(engine, _gitleaks([_finding(0)]))
    [row] = result.rows
    assert (row.known and row.known.standing, row.action) == (Standing.GRACE, Action.ROTATED)
    first, second = engine.journal.history("payments-api")
    assert first[0].state is State.DONE
    assert any(e.detail == "emergency rotation: grace cut short" for e in first[1])
    assert second[0].emergency and second[0].state is State.DONE
    assert _stages("payments-api") == [[], [], ["AWSCURRENT"]]


def test_two_findings_of_one_secret_rotate_it_once(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """Two findings of the same value make one emergency rotation, reported on both rows."""
    _seed()
    engine = _engine(tmp_path, clock)
    again = _finding(0, File="docs/setup.md", StartLine=40)
    result = _triage(engine, _gitleaks([_finding(0), again]))
    assert [r.action for r in result.rows] == [Action.ROTATED, Action.ROTATED]
    [rotation] = _rotations(engine, "payments-api")
    assert {r.rotation_id for r in result.rows} == {rotation.id}
    assert rotation.reason is not None and "config/settings.py:12" in rotation.reason
    assert "1 secret(s) rotated (emergency)" in result.summary()


def test_unreadable_store_is_reported_and_the_others_still_rotate(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """A secret whose store cannot be read is 'could not be checked' (exit 1); others go on."""
    _seed()
    body = POLICIES + (
        "  - name: vanished\n    store: {provider: aws-secretsmanager, secret_id: vanished}\n"
    )
    engine = _engine(tmp_path, clock, body)
    result = _triage(engine, _gitleaks([_finding(0)]))
    assert list(result.unchecked) == ["vanished"]
    assert "does not exist" in result.unchecked["vanished"]
    assert [(r.secret, r.action) for r in result.rows] == [("payments-api", Action.ROTATED)]
    assert _current("payments-api") != LEAKED
    assert result.exit_code == 1
    assert "1 secret(s) could not be checked" in result.summary()


def test_failed_emergency_rotation_is_reported_and_exits_1(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """When the IAM user has no room for a new key, the row says the rotation failed; exit 1."""
    old = _seed()
    _iam().create_access_key(UserName="deployer")  # an active key rotator does not manage
    engine = _engine(tmp_path, clock)
    key_finding = _finding(0, Secret=old["SecretAccessKey"])
    result = _triage(engine, _gitleaks([key_finding]))
    [row] = result.rows
    assert (row.secret, row.action) == ("deployer", Action.FAILED)
    assert "two access keys" in row.says()
    assert result.exit_code == 1
    assert _keys()[old["AccessKeyId"]] == "Active"


def test_leaked_key_only_a_person_can_change_says_how(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """A leaked manual-issuer secret cannot be minted: the row says how to hand one over; exit 1."""
    _seed()
    body = POLICIES + (
        "  - name: partner-portal\n"
        "    store: {provider: aws-secretsmanager, secret_id: partner-portal}\n"
        "    issuer: {kind: manual, instructions: 'https://partner.example/keys'}\n"
    )
    _sm().create_secret(Name="partner-portal", SecretString="PartnerPortalKey0123456789")
    engine = _engine(tmp_path, clock, body)
    result = _triage(engine, _gitleaks([_finding(0, Secret="PartnerPortalKey0123456789")]))
    [row] = result.rows
    assert (row.secret, row.action) == ("partner-portal", Action.FAILED)
    assert "--value-from-stdin" in row.says()
    assert result.exit_code == 1
    assert _current("partner-portal") == "PartnerPortalKey0123456789"


def test_value_replaced_outside_rotator_is_left_to_a_human(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """A value rotator minted, since replaced by hand and never revoked, is not rotated; exit 1."""
    _seed()
    engine = _engine(tmp_path, clock, POLICIES.replace("grace: 1h", "grace: 0s"))
    engine.rotate("payments-api")
    minted = _current("payments-api")
    _replace_by_hand("payments-api", "ReplacedByHand0123456789abcdef")
    result = _triage(engine, _gitleaks([_finding(0, Secret=minted)]))
    [row] = result.rows
    assert (row.known and row.known.standing, row.action) == (Standing.SUPERSEDED, Action.BY_HAND)
    assert result.exit_code == 1
    assert len(_rotations(engine, "payments-api")) == 1


# -- reports holding only a public identifier ------------------------------------------


def _key_id_finding(key_id: str) -> dict[str, Any]:
    """Return gitleaks' aws-access-token finding of ``key_id`` alone (no secret part)."""
    return _finding(1, Secret=key_id, Match=key_id)


def _on_identifier_only(mode: str) -> str:
    """Return the test policies with ``leaks.on_identifier_only`` set to ``mode`` for all."""
    return POLICIES.replace(
        "defaults: {schedule: {every: 30d}, grace: 1h}",
        f"defaults: {{schedule: {{every: 30d}}, grace: 1h, leaks: {{on_identifier_only: {mode}}}}}",
    )


def _identifier_alerts(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e.get("event") == "alert" and e.get("alert") == "identifier-leaked"]


def test_identifier_only_alerts_and_rotates_with_grace_by_default(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """A key id without its secret key: an alert, a normal rotation; the old key keeps working."""
    old = _seed()
    engine = _engine(tmp_path, clock)
    with structlog.testing.capture_logs() as logs:
        result = _triage(engine, _gitleaks([_key_id_finding(old["AccessKeyId"])]))
    [row] = result.rows
    assert (row.secret, row.known and row.known.standing, row.action) == (
        "deployer",
        Standing.CURRENT,
        Action.ROTATED_WITH_GRACE,
    )
    assert result.exit_code == 0
    [rotation] = _rotations(engine, "deployer")
    assert not rotation.emergency and rotation.trigger == "manual"
    assert rotation.state is State.GRACE and row.rotation_id == rotation.id
    assert rotation.reason == (
        "leak (identifier only): gitleaks aws-access-token at deploy/ci.env:3 (commit 7b2d9e4)"
    )
    new = json.loads(_current("deployer"))
    # With grace: the leaked key is still active until the grace deadline.
    assert _keys() == {old["AccessKeyId"]: "Active", new["AccessKeyId"]: "Active"}
    [alert] = _identifier_alerts(logs)
    assert alert["alert_secret"] == "deployer" and alert["log_level"] == "warning"
    assert old["AccessKeyId"] not in alert["summary"]
    assert "1 secret(s) rotated with grace (identifier only)" in result.summary()
    assert not [e for e in logs if e.get("alert") == "emergency-rotation"]


def test_identifier_only_with_alert_policy_only_alerts(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """``on_identifier_only: alert``: the alert is raised, nothing is rotated; exit 0."""
    old = _seed()
    engine = _engine(tmp_path, clock, _on_identifier_only("alert"))
    with structlog.testing.capture_logs() as logs:
        result = _triage(engine, _gitleaks([_key_id_finding(old["AccessKeyId"])]))
    [row] = result.rows
    assert (row.secret, row.action) == ("deployer", Action.ALERTED)
    assert "only its identifier leaked" in row.says()
    assert result.exit_code == 0
    assert _rotations(engine, "deployer") == []
    assert _keys() == {old["AccessKeyId"]: "Active"}
    assert len(_identifier_alerts(logs)) == 1
    assert "1 finding(s) alerted (identifier only)" in result.summary()


def test_identifier_only_with_emergency_policy_rotates_in_an_emergency(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """``on_identifier_only: emergency`` keeps the old behaviour: no grace, the key is off."""
    old = _seed()
    engine = _engine(tmp_path, clock, _on_identifier_only("emergency"))
    result = _triage(engine, _gitleaks([_key_id_finding(old["AccessKeyId"])]))
    [row] = result.rows
    assert (row.secret, row.action) == ("deployer", Action.ROTATED)
    [rotation] = _rotations(engine, "deployer")
    assert rotation.emergency and rotation.state is State.REVOKED
    assert _keys()[old["AccessKeyId"]] == "Inactive"


def test_a_forged_secret_part_beside_a_real_key_id_is_identifier_only(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """A real key id with a secret key that is not its own does not start an emergency."""
    old = _seed()
    forged = "Zz" * 20
    data = _swap(
        _trufflehog(_trufflehog_lines()[0]),
        {FIXTURE_KEY_ID: old["AccessKeyId"], FIXTURE_SECRET_KEY: forged},
    )
    engine = _engine(tmp_path, clock)
    result = _triage(engine, data)
    [row] = result.rows
    assert (row.secret, row.action) == ("deployer", Action.ROTATED_WITH_GRACE)
    [rotation] = _rotations(engine, "deployer")
    assert not rotation.emergency
    assert _keys()[old["AccessKeyId"]] == "Active"


def test_identifier_of_a_key_in_grace_is_alerted_and_its_grace_kept(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """The key id of an old key in grace: alerted, revoked at its deadline as planned."""
    old = _seed()
    engine = _engine(tmp_path, clock)
    engine.rotate("deployer")
    clock.advance(timedelta(minutes=10))
    result = _triage(engine, _gitleaks([_key_id_finding(old["AccessKeyId"])]))
    [row] = result.rows
    assert (row.known and row.known.standing, row.action) == (Standing.GRACE, Action.ALERTED)
    assert "revoked at its grace deadline" in row.says()
    [rotation] = _rotations(engine, "deployer")
    assert rotation.state is State.GRACE and not rotation.emergency
    assert _keys()[old["AccessKeyId"]] == "Active"
    assert result.exit_code == 0


def test_identifier_only_dry_run_says_what_it_would_do(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """A dry run names the normal rotation it would start and raises no alert."""
    old = _seed()
    engine = _engine(tmp_path, clock)
    with structlog.testing.capture_logs() as logs:
        result = _triage(engine, _gitleaks([_key_id_finding(old["AccessKeyId"])]), dry_run=True)
    [row] = result.rows
    assert row.action is Action.WOULD_ROTATE_WITH_GRACE
    assert not _identifier_alerts(logs)
    assert _rotations(engine, "deployer") == []
    assert "1 secret(s) would be rotated with grace (dry run)" in result.summary()


def test_a_full_leak_beside_an_identifier_only_one_makes_one_emergency(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """The secret key and, elsewhere, the key id alone: one emergency rotation for both rows."""
    old = _seed()
    engine = _engine(tmp_path, clock)
    full = _finding(0, Secret=old["SecretAccessKey"])
    result = _triage(engine, _gitleaks([_key_id_finding(old["AccessKeyId"]), full]))
    assert [(r.secret, r.action) for r in result.rows] == [
        ("deployer", Action.ROTATED),
        ("deployer", Action.ROTATED),
    ]
    [rotation] = _rotations(engine, "deployer")
    assert rotation.emergency


@pytest.mark.parametrize(
    ("leaks_block", "line", "column", "path", "reason"),
    [
        (
            "{on_identifier_only: emergancy}",
            5,
            33,
            "secrets[0].leaks.on_identifier_only",
            "did you mean 'emergency'?",
        ),
        (
            "{on_identifer_only: alert}",
            5,
            13,
            "secrets[0].leaks.on_identifer_only",
            "unknown field 'on_identifer_only'; did you mean 'on_identifier_only'?",
        ),
        ("alert", 5, 12, "secrets[0].leaks", "expected a mapping"),
    ],
)
def test_bad_leaks_setting_is_located(
    tmp_path: Path, leaks_block: str, line: int, column: int, path: str, reason: str
) -> None:
    """A misspelt ``leaks`` setting is refused at its file:line:col with a did-you-mean."""
    body = (
        "secrets:\n"
        "  - name: deployer\n"
        "    store: {provider: aws-secretsmanager, secret_id: deployer}\n"
        "    schedule: {every: 30d}\n"
        f"    leaks: {leaks_block}\n"
        "    grace: 1h\n"
    )
    file = _policies(tmp_path, body)
    with pytest.raises(PolicyError) as caught:
        load_policies(file)
    [problem] = caught.value.problems
    assert (problem.file, problem.line, problem.column, problem.path) == (
        str(file),
        line,
        column,
        path,
    )
    assert reason in problem.reason


def test_leaks_setting_defaults_to_rotate_and_merges_from_defaults(tmp_path: Path) -> None:
    """Without ``leaks`` a policy says ``rotate``; ``defaults.leaks`` applies to every secret."""
    [payments, deployer] = load_policies(_policies(tmp_path))
    assert payments.leaks.on_identifier_only == deployer.leaks.on_identifier_only == "rotate"
    [payments, _] = load_policies(_policies(tmp_path, _on_identifier_only("alert")))
    assert payments.leaks.on_identifier_only == "alert"


# -- the command, in process ---------------------------------------------------------


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Give the logging set-up back after a command configured it for the runner's streams."""
    with restored_logging():
        yield


def _ingest(tmp_path: Path, *args: str, stdin: bytes | None = None) -> Result:
    """Run ``rotator leaks ingest ARGS`` in process against tmp_path's policies and journal."""
    return CliRunner().invoke(
        leaks,
        [
            "ingest",
            *args,
            "--config",
            str(_policies(tmp_path)),
            "--state",
            f"sqlite:///{tmp_path / 'rotator.db'}",
            "--log-format",
            "json",
            "--log-level",
            "debug",
        ],
        input=stdin,
        catch_exceptions=False,
    )


@pytest.mark.parametrize(
    ("tool", "case", "reason"),
    [(tool, case, reason) for _, tool, case, reason in BAD_REPORTS],
    ids=[name for name, *_ in BAD_REPORTS],
)
def test_bad_report_exits_2_and_rotates_nothing(
    aws: None, tmp_path: Path, tool: str | None, case: tuple[bytes, int], reason: str
) -> None:
    """The command refuses a bad report with exit 2, FILE:LINE: reason, and touches nothing."""
    _seed()
    data, line = case
    report = tmp_path / "scan.json"
    report.write_bytes(data)
    result = _ingest(tmp_path, str(report), *(["--scanner", tool] if tool else []))
    assert result.exit_code == 2
    assert f"{report}:{line}: " in result.stderr and reason in result.stderr
    assert _current("payments-api") == LEAKED
    assert not (tmp_path / "rotator.db").exists()


def test_report_from_stdin(aws: None, tmp_path: Path) -> None:
    """'-' reads the report from stdin; a dry run lists what would be rotated and exits 0."""
    _seed()
    result = _ingest(tmp_path, "-", "--dry-run", stdin=_gitleaks([_finding(0)]))
    assert result.exit_code == 0, result.stderr
    assert "config/settings.py:12" in result.stdout
    assert "would rotate (dry run)" in result.stdout
    assert "payments-api" in result.stdout
    assert _current("payments-api") == LEAKED


def test_the_old_format_option_still_names_the_scanner_with_a_warning(
    aws: None, tmp_path: Path
) -> None:
    """--format (the old spelling of --scanner) is taken, with a warning on stderr only."""
    _seed()
    report = _gitleaks([_finding(0)])
    scanner = _ingest(tmp_path, "-", "--dry-run", "--scanner", "gitleaks", stdin=report)
    old = _ingest(tmp_path, "-", "--dry-run", "--format", "gitleaks", stdin=report)
    assert scanner.exit_code == old.exit_code == 0, old.stderr
    assert old.stdout == scanner.stdout and "would rotate (dry run)" in old.stdout
    assert "--format` is deprecated" in old.stderr and "--scanner" in old.stderr
    assert "deprecated" not in scanner.stderr
    forced = _ingest(tmp_path, "-", "--format", "trufflehog", stdin=report)
    assert forced.exit_code == 2 and "not valid JSON" in forced.stderr
    clash = _ingest(tmp_path, "-", "--scanner", "gitleaks", "--format", "trufflehog", stdin=report)
    assert clash.exit_code == 2 and "disagree" in clash.stderr
    assert _current("payments-api") == LEAKED


def test_bad_report_from_stdin_is_named_stdin(aws: None, tmp_path: Path) -> None:
    """A bad report on stdin is refused as <stdin>:LINE with exit 2."""
    result = _ingest(tmp_path, "-", stdin=TRUFFLEHOG + b"{oops\n")
    assert result.exit_code == 2
    assert "<stdin>:3: not valid JSON" in result.stderr


def test_missing_report_file_exits_2(aws: None, tmp_path: Path) -> None:
    """A report that cannot be read is a usage error: exit 2, its path named."""
    result = _ingest(tmp_path, str(tmp_path / "nowhere.json"))
    assert result.exit_code == 2
    assert "nowhere.json: cannot read the report" in result.stderr


def test_command_prints_a_table_and_exits_1_on_an_unmatched_finding(
    aws: None, tmp_path: Path
) -> None:
    """The table shows every finding's place, rule, commit and fate; an unmatched one exits 1."""
    _seed()
    report = tmp_path / "scan.json"
    stranger = _finding(0, Secret="zzUnmanagedToken0123456789", File="lib/vendor.js", StartLine=7)
    report.write_bytes(_gitleaks([_finding(0), stranger]))
    result = _ingest(tmp_path, str(report))
    assert result.exit_code == 1, result.stderr
    for text in ("config/settings.py:12", "generic-api-key", "1f4e0c2", "payments-api"):
        assert text in result.stdout
    assert "rotated (emergency)" in result.stdout
    assert "lib/vendor.js:7" in result.stdout and "no match" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1].startswith("2 finding(s) in ")
    assert _current("payments-api") != LEAKED


def test_command_json_output_names_everything_but_the_values(aws: None, tmp_path: Path) -> None:
    """--json gives each finding's place and fate and a summary, and no leaked value."""
    old = _seed()
    data = _swap(
        TRUFFLEHOG,
        {FIXTURE_KEY_ID: old["AccessKeyId"], FIXTURE_SECRET_KEY: old["SecretAccessKey"]},
    )
    report = tmp_path / "scan.jsonl"
    report.write_bytes(data)
    result = _ingest(tmp_path, str(report), "--json")
    assert result.exit_code == 0, result.stderr
    document = result.stdout
    parsed = json.loads(document)
    assert parsed["format"] == "trufflehog"
    assert [(f["file"], f["line"], f["secret"], f["action"]) for f in parsed["findings"]] == [
        ("deploy/ci.env", 3, "deployer", "rotated (emergency)"),
        ("config/settings.py", 12, "payments-api", "rotated (emergency)"),
    ]
    assert parsed["findings"][0]["key_id"] == f"{old['AccessKeyId'][:4]}…{old['AccessKeyId'][-4:]}"
    assert parsed["summary"]["rotated"] == ["deployer", "payments-api"]
    assert parsed["summary"]["exit_code"] == 0
    for value in (LEAKED, old["SecretAccessKey"]):
        assert value not in document and value not in result.stderr
    # The key id is a ref: the engine logs it by design, the command's output shortens it.
    assert old["AccessKeyId"] not in document


def test_command_rotates_a_leaked_key_id_alone_with_grace(aws: None, tmp_path: Path) -> None:
    """``leaks ingest`` of a key id alone exits 0, says 'rotated with grace' and keeps the key."""
    old = _seed()
    report = tmp_path / "scan.json"
    report.write_bytes(_gitleaks([_key_id_finding(old["AccessKeyId"])]))
    result = _ingest(tmp_path, str(report), "--json")
    assert result.exit_code == 0, result.stderr
    parsed = json.loads(result.stdout)
    assert [(f["secret"], f["action"]) for f in parsed["findings"]] == [
        ("deployer", "rotated with grace (identifier only)")
    ]
    assert parsed["summary"]["rotated"] == []
    assert parsed["summary"]["rotated_with_grace"] == ["deployer"]
    assert _keys()[old["AccessKeyId"]] == "Active"
    again = _ingest(tmp_path, str(report))  # the leaked key is in grace now: alerted only
    assert again.exit_code == 0, again.stderr
    assert "1 finding(s) alerted (identifier only)" in again.stdout
    assert _keys()[old["AccessKeyId"]] == "Active"


def test_an_identifier_leak_alert_goes_where_the_secrets_labels_route_it(
    aws: None, tmp_path: Path, clock: FakeClock
) -> None:
    """A notifier matching the secret's labels gets identifier-leaked, labels in the payload."""
    from tests.test_alerts import _alerts, _notifiers

    old = _seed()
    body = _notifiers(tmp_path, "match: {labels: {team: platform}}") + POLICIES.replace(
        "    issuer: {kind: aws-iam-access-key",
        "    labels: {team: platform}\n    issuer: {kind: aws-iam-access-key",
    )
    (tmp_path / "policies.yaml").write_text(body)
    loaded = load_policies(tmp_path / "policies.yaml")
    engine = Engine(
        loaded,
        Journal(f"sqlite:///{tmp_path / 'rotator.db'}", clock),
        clock=clock,
        sleep=clock.sleep,
        notifiers=loaded.notifiers,
    )
    _triage(engine, _gitleaks([_key_id_finding(old["AccessKeyId"])]))
    [alert] = [a for a in _alerts(tmp_path) if a["event"] == "identifier-leaked"]
    assert alert["secret"] == "deployer" and alert["labels"] == {"team": "platform"}
