"""What an operator reaches for: filters, describe, did-you-mean, completion, plain messages.

Three secrets of two teams in moto; every command through the CLI as a user
types it. Each behaviour was missing (or worded in a library's words) before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner, Result

from rotator.cli.main import cli
from tests.conftest import AWS_REGION, restored_logging

POLICIES = """\
secrets:
  - name: payments/db
    owner: team-payments
    labels: {team: payments, tier: "1"}
    store: {provider: aws-secretsmanager, secret_id: payments/db}
    schedule: {every: 30d}
    grace: 1h
  - name: payments/api
    owner: team-payments
    labels: {team: payments}
    store: {provider: aws-secretsmanager, secret_id: payments/api}
    schedule: {every: 30d}
    grace: 1h
  - name: search/db
    owner: team-search
    labels: {team: search}
    store: {provider: aws-secretsmanager, secret_id: search/db}
    schedule: {every: 30d}
    grace: 1h
"""


@pytest.fixture
def config(aws_in_process: None, tmp_path: Path) -> Iterator[Path]:
    """The three secrets in moto, their policy file, and a journal beside it."""
    client = boto3.client("secretsmanager", region_name=AWS_REGION)
    for name in ("payments/db", "payments/api", "search/db"):
        client.create_secret(Name=name, SecretString=f"initial-value-of-{name}")
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "teams.yaml").write_text(POLICIES)
    with restored_logging():
        yield tmp_path / "policies"


def _run(config: Path, *args: str) -> Result:
    state = f"sqlite:///{config.parent / 'journal.db'}"
    return CliRunner().invoke(
        cli, [*args, "--config", str(config), "--state", state, "--log-format", "json"]
    )


def _json(result: Result) -> object:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _secrets(rows: object) -> list[str]:
    assert isinstance(rows, list)
    return [row["secret"] for row in rows]


@pytest.mark.parametrize(
    ("args", "chosen"),
    [
        ((), ["payments/api", "payments/db", "search/db"]),
        (("payments/*",), ["payments/api", "payments/db"]),
        (("search/db", "payments/api"), ["payments/api", "search/db"]),
        (("--label", "team=payments"), ["payments/api", "payments/db"]),
        (("--label", "team=payments", "--label", "tier=1"), ["payments/db"]),
        (("--owner", "team-search"), ["search/db"]),
        (("payments/*", "--owner", "team-search"), []),
    ],
)
def test_status_and_plan_take_names_patterns_labels_and_an_owner(
    config: Path, args: tuple[str, ...], chosen: list[str]
) -> None:
    """status and plan show the chosen secrets only; status JSON carries owner and labels."""
    rows = _json(_run(config, "status", "--json", *args))
    assert _secrets(rows) == chosen
    planned = _json(_run(config, "plan", "--json", *args))
    assert sorted(_secrets(planned)) == chosen
    assert isinstance(rows, list)
    for row in rows:
        assert row["owner"].startswith("team-") and row["labels"]["team"] in row["secret"]


def test_status_filters_by_state(config: Path) -> None:
    """--in-state keeps the rows in that state; --state stays the journal."""
    assert _run(config, "rotate", "payments/db").exit_code == 0
    assert _secrets(_json(_run(config, "status", "--json", "--in-state", "grace"))) == [
        "payments/db"
    ]
    never = _json(_run(config, "status", "--json", "--in-state", "never rotated"))
    assert _secrets(never) == ["payments/api", "search/db"]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("status", "payments/bd"), "no policy named 'payments/bd'; did you mean 'payments/db'?"),
        (("plan", "serch/db"), "did you mean 'search/db'?"),
        (("check", "payments/ap"), "did you mean 'payments/api'?"),
        (("rotate", "payment/db"), "did you mean 'payments/db'?"),
        (("history", "search/bd"), "did you mean 'search/db'?"),
        (("describe", "search/bd"), "did you mean 'search/db'?"),
        (("status", "--label", "team"), "--label 'team': expected KEY=VALUE"),
        (("status", "--in-state", "grcae"), "did you mean 'grace'?"),
    ],
)
def test_a_mistyped_name_is_refused_with_a_suggestion(
    config: Path, args: tuple[str, ...], said: str
) -> None:
    """Exit 2, the closest name suggested, nothing read or changed."""
    result = _run(config, *args)
    assert result.exit_code == 2, result.output
    assert said in result.output
    if args[0] == "rotate":
        assert not (config.parent / "journal.db").exists()  # refused before the journal


def test_describe_shows_the_policy_as_loaded_and_everything_known(config: Path) -> None:
    """describe NAME: defaults filled in, state, plan and why, credentials, rotations, alerts."""
    assert _run(config, "rotate", "payments/db").exit_code == 0
    found = _json(_run(config, "describe", "payments/db", "--json"))
    assert isinstance(found, dict)
    policy = found["policy"]
    assert policy["issuer"]["kind"] == "random"  # the default, filled in
    assert policy["store"]["config"]["secret_id"] == "payments/db"  # each adapter's fields
    assert policy["issuer"]["config"]["length"] == 32  # a default of the adapter's own
    assert policy["when_old_still_used"] == "extend"
    assert policy["labels"] == {"team": "payments", "tier": "1"}
    assert found["status"]["state"] == "grace"
    [item] = found["plan"]
    assert item["action"] == "revoke" and "grace until" in item["reason"]
    current = found["credentials"]["current"]
    assert current["version"] == found["rotations"][0]["rotation_id"]
    assert "old, in grace" in found["credentials"]
    assert [r["state"] for r in found["rotations"]] == ["grace"]
    assert found["alerts"] == []
    assert "initial-value-of" not in json.dumps(found)  # identifiers only, never a value
    text = _run(config, "describe", "payments/db")
    assert text.exit_code == 0
    assert "\\n" not in text.stdout  # the policy is shown as YAML lines, not one escaped line
    assert "      secret_id: payments/db" in text.stdout.splitlines()
    for said in (
        "secret payments/db",
        "when_old_still_used: extend",
        "state: grace",
        "next: revoke",
    ):
        assert said in text.stdout


def test_describe_works_from_the_journal_while_the_policy_file_is_broken(config: Path) -> None:
    """During the incident a bad edit caused, describe still shows the secret's history."""
    assert _run(config, "rotate", "search/db").exit_code == 0
    (config / "teams.yaml").write_text(POLICIES.replace("grace: 1h", "grace: soon", 1))
    result = _run(config, "describe", "search/db", "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["policy"] is None and found["rotations"][0]["state"] == "grace"
    assert "teams.yaml:7" in result.stderr


def test_secret_names_complete_in_the_shell(config: Path) -> None:
    """The completion script's request for `rotator describe pay<TAB>` answers the names."""
    result = CliRunner().invoke(
        cli,
        [],
        prog_name="rotator",
        env={
            "_ROTATOR_COMPLETE": "bash_complete",
            "COMP_WORDS": f"rotator describe --config {config} pay",
            "COMP_CWORD": "4",
        },
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == ["plain,payments/api", "plain,payments/db"]


@pytest.mark.parametrize(
    ("state", "said", "unsaid"),
    [
        (
            "mysql://u:p@localhost/db",
            "rotator keeps its journal in SQLite (sqlite:///PATH) or PostgreSQL",
            "MySQLdb",
        ),
        (
            "postgresql://rotator:not-the-password@127.0.0.1:1/db",
            "Connection refused",
            "Background on this error",
        ),
        # A slash short: where a scheme should be stands the whole URL, password and all.
        ("postgresql:/rotator:not-the-password@db/rot", "not a database URL", "@db/rot"),
    ],
)
def test_journal_errors_are_said_in_rotators_words(
    config: Path, tmp_path: Path, state: str, said: str, unsaid: str
) -> None:
    """A library's module names, classes and help links stay out; the password too."""
    key = tmp_path / "journal.key"
    key.write_text("ab" * 32 + "\n")
    key.chmod(0o600)
    result = CliRunner().invoke(
        cli, ["status", "--config", str(config), "--state", state, "--key-file", str(key)]
    )
    assert result.exit_code == 2
    assert said in result.output and unsaid not in result.output
    assert "psycopg.OperationalError" not in result.output
    assert "not-the-password" not in result.output.lower()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_documented_completion_scripts_are_printed(shell: str) -> None:
    """docs/operations.md's `_ROTATOR_COMPLETE=<shell>_source rotator` prints a script."""
    guide = (Path(__file__).parent.parent / "docs" / "operations.md").read_text()
    assert f"_ROTATOR_COMPLETE={shell}_source rotator" in guide
    result = CliRunner().invoke(
        cli, [], prog_name="rotator", env={"_ROTATOR_COMPLETE": f"{shell}_source"}
    )
    assert result.exit_code == 0
    assert "_ROTATOR_COMPLETE" in result.stdout and f"{shell}_complete" in result.stdout
