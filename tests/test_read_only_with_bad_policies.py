"""Read-only commands work while a policy file is invalid; commands that act still refuse.

During an incident caused by a bad edit, `status`, `history` and `audit
verify/export` warn on stderr with each problem's FILE:LINE:COL (as
`validate` prints them), show what the journal and the files that loaded
tell, and exit by their own result. `run` and `rotate` refuse (exit 2) and
change nothing. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from rotator.cli.main import cli
from tests.conftest import AWS_REGION, run_sql

GOOD = """
secrets:
  - name: app/db
    store: {provider: aws-secretsmanager, secret_id: app/db}
    issuer: {kind: random, length: 24}
    schedule: {every: 30d}
    grace: 1h
"""
OTHER = """
secrets:
  - name: app/api
    store: {provider: aws-secretsmanager, secret_id: app/api}
    issuer: {kind: random, length: 24}
    schedule: {every: 30d}
    grace: 1h
"""
#: OTHER after a bad edit: a misspelled field on line 7, column 5 (so grace is missing too).
BROKEN = OTHER.replace("grace: 1h", "grcae: 1h")
WHERE = "other.yaml:7:5: secrets[0].grcae: unknown field 'grcae'; did you mean 'grace'?"


@dataclass
class Setup:
    """Two policy files, each secret rotated once, then one file broken by an edit."""

    config: Path
    state: str
    key: Path

    def invoke(self, *args: str) -> Result:
        """Run the CLI with this setup's policy directory, journal and key file."""
        return CliRunner().invoke(
            cli,
            [
                *args,
                *("--config", str(self.config), "--state", self.state),
                *("--key-file", str(self.key), "--log-format", "json"),
            ],
        )


def _versions(name: str) -> int:
    listed = boto3.client("secretsmanager", region_name=AWS_REGION).list_secret_version_ids(
        SecretId=name, IncludeDeprecated=True
    )
    return len(listed["Versions"])


def _rotations(url: str) -> int:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM rotations")).scalar_one())
    finally:
        engine.dispose()


@pytest.fixture
def setup(aws_in_process: None, journal_url: str, tmp_path: Path) -> Iterator[Setup]:
    """Both secrets rotated with valid policies; then other.yaml gets a misspelled field."""
    sm = boto3.client("secretsmanager", region_name=AWS_REGION)
    for name in ("app/db", "app/api"):
        sm.create_secret(Name=name, SecretString=f"initial-value-of-{name}")
    config = tmp_path / "schedules"
    config.mkdir()
    (config / "good.yaml").write_text(GOOD)
    (config / "other.yaml").write_text(OTHER)
    key = tmp_path / "journal.key"
    key.write_text("3c" * 32 + "\n")
    key.chmod(0o600)
    made = Setup(config, journal_url, key)
    for name in ("app/db", "app/api"):
        rotated = made.invoke("rotate", name)
        assert rotated.exit_code == 0, rotated.output
    (config / "other.yaml").write_text(BROKEN)
    yield made


def _warned(result: Result) -> None:
    """The problem is on stderr, located as `validate` prints it, as a warning; stdout is clean."""
    warnings = [line for line in result.stderr.splitlines() if line.endswith(WHERE)]
    assert len(warnings) == 1 and warnings[0].startswith("rotator: warning: "), result.stderr
    assert "other.yaml:3:5: secrets[0].grace: missing required field" in result.stderr
    assert "2 problem(s)" in result.stderr
    assert WHERE not in result.stdout


def test_validate_names_the_problem_as_the_warnings_do(setup: Setup) -> None:
    """The warnings quote `validate`'s own lines."""
    result = setup.invoke("validate")
    assert result.exit_code == 2
    assert WHERE in result.stderr


def test_status_shows_every_secret_and_warns(setup: Setup) -> None:
    """`status`: exit 0, both secrets (app/api from the journal alone), the problem on stderr."""
    result = setup.invoke("status")
    assert result.exit_code == 0, result.output
    _warned(result)
    assert "app/db" in result.stdout and "app/api" in result.stdout
    assert "policy not loaded" in result.stdout

    as_json = setup.invoke("status", "--json")
    assert as_json.exit_code == 0, as_json.output
    _warned(as_json)
    rows = {row["secret"]: row for row in json.loads(as_json.stdout)}
    assert set(rows) == {"app/db", "app/api"}
    assert rows["app/db"]["policy_loaded"] is True and rows["app/db"]["state"] == "grace"
    assert rows["app/api"]["policy_loaded"] is False and rows["app/api"]["next_due"] is None
    assert rows["app/api"]["state"] == "grace" and rows["app/api"]["last_rotation"]


def test_history_shows_a_secret_of_the_broken_file(setup: Setup) -> None:
    """`history` of a secret whose file did not load: its rotations, from the journal."""
    result = setup.invoke("history", "app/api", "--json")
    assert result.exit_code == 0, result.output
    _warned(result)
    [entry] = json.loads(result.stdout)
    assert entry["state"] == "grace" and entry["steps"]
    unknown = setup.invoke("history", "app/nope")
    assert unknown.exit_code == 2
    assert "no policy and no history for 'app/nope'" in unknown.stderr
    assert "1 policy file(s) did not load" in unknown.stderr


def test_audit_verify_and_export_run_and_exit_by_their_own_result(setup: Setup) -> None:
    """`audit verify` exits 0 on an intact trail and 1 on a broken one, never 2; export works."""
    intact = setup.invoke("audit", "verify")
    assert intact.exit_code == 0, intact.output
    _warned(intact)
    assert "audit trail intact" in intact.stdout
    exported = setup.invoke("audit", "export")
    assert exported.exit_code == 0, exported.output
    assert {json.loads(line)["secret"] for line in exported.stdout.splitlines()} >= {
        "app/db",
        "app/api",
    }
    run_sql(setup.state, "UPDATE audit SET actor = 'someone else' WHERE seq = 2")
    broken = setup.invoke("audit", "verify")
    assert broken.exit_code == 1, broken.output
    _warned(broken)
    assert "BROKEN at record 2" in broken.stdout


@pytest.mark.parametrize(
    "command",
    [["run", "--once"], ["rotate", "app/db"], ["rotate", "app/db", "--emergency"]],
    ids=["run", "rotate", "emergency"],
)
def test_commands_that_act_still_refuse_and_change_nothing(
    setup: Setup, command: list[str]
) -> None:
    """`run` and `rotate`: exit 2 listing the problem, no provider call, no journal row."""
    before = _rotations(setup.state)
    result = setup.invoke(*command)
    assert result.exit_code == 2, result.output
    assert WHERE in result.stderr and "nothing was changed" in result.stderr
    assert "warning" not in result.stderr
    assert _rotations(setup.state) == before
    assert (_versions("app/db"), _versions("app/api")) == (2, 2)


def test_a_file_that_is_not_yaml_leaves_the_others_readable(setup: Setup) -> None:
    """A file that does not even parse: located on stderr; the other file's secrets shown."""
    (setup.config / "other.yaml").write_text("secrets: [\n  - name: app/api\n")
    result = setup.invoke("status", "--json")
    assert result.exit_code == 0, result.output
    assert "rotator: warning: " in result.stderr and "other.yaml:" in result.stderr
    rows = {row["secret"]: row["policy_loaded"] for row in json.loads(result.stdout)}
    assert rows == {"app/db": True, "app/api": False}


def test_escaped_problem_text_stays_on_one_line(setup: Setup) -> None:
    """A problem quoting a hostile field name cannot add lines or terminal codes to stderr."""
    (setup.config / "other.yaml").write_text(OTHER.replace("grace: 1h", '"gr\\x1b[2Jace\\n": 1h'))
    result = setup.invoke("status")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if "other.yaml:7:5" in line]
    assert len(warnings) == 1 and warnings[0].startswith("rotator: warning: ")
