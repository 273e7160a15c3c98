"""The command line's flags mean one thing everywhere.

--json is on every command that prints data and refused where it cannot
apply; --format names an output format only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from rotator.cli.main import cli
from tests.conftest import restored_logging

VALID = """\
secrets:
  - name: app/db
    store: {provider: aws-secretsmanager, secret_id: app/db}
    schedule: {every: 30d}
    grace: 1h
"""
#: Two problems: an unknown field on line 4, a grace that is not a duration on line 6.
INVALID = """\
secrets:
  - name: app/db
    store: {provider: aws-secretsmanager, secret_id: app/db}
    colour: blue
    schedule: {every: 30d}
    grace: soon
"""

#: Every command that prints data; each takes --json.
PRINTS_DATA = {
    "validate",
    "plan",
    "run",
    "rotate",
    "check",
    "status",
    "history",
    "describe",
    "db upgrade",
    "audit verify",
    "audit accept",
    "leaks ingest",
    "permissions",
}
#: The commands without --json, and why.
NO_JSON = {
    "init": "prints a YAML policy to edit, not data about anything",
    "sandbox": "a demo for a person: logs, then the status table",
    "audit export": "prints records in the --format asked for (jsonl is JSON already)",
}


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Give the logging set-up back after a command configured it for the runner's streams."""
    with restored_logging():
        yield


def _commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    # Asked as click asks (rotator's own commands are imported when first asked for).
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            yield from _commands(command, f"{path} ")
        else:
            yield path, command


def _options(command: click.Command) -> dict[str, click.Option]:
    return {
        name: param
        for param in command.params
        if isinstance(param, click.Option)
        for name in param.opts
    }


def _invoke(tmp_path: Path, *args: str) -> Result:
    state = f"sqlite:///{tmp_path / 'j.db'}"
    return CliRunner().invoke(cli, [*args, "--state", state, "--log-format", "json"])


def test_every_command_that_prints_data_takes_json() -> None:
    """--json is on every data command, and each command without it is so on purpose."""
    commands = dict(_commands(cli))
    assert set(commands) == PRINTS_DATA | set(NO_JSON)
    for name in PRINTS_DATA:
        option = _options(commands[name]).get("--json")
        assert option is not None and option.is_flag and option.name == "as_json", name
        assert not option.hidden, name
    for name in NO_JSON:
        assert "--json" not in _options(commands[name]), name


def test_format_names_an_output_format_only() -> None:
    """--format is visible only on audit export; leaks ingest keeps it hidden (deprecated)."""
    visible = {
        name
        for name, command in _commands(cli)
        if (option := _options(command).get("--format")) is not None and not option.hidden
    }
    assert visible == {"audit export"}
    ingest = _options(dict(_commands(cli))["leaks ingest"])
    assert ingest["--format"].hidden and not ingest["--scanner"].hidden


def test_validate_json_on_valid_policies(tmp_path: Path) -> None:
    """validate --json: valid, how many policies in how many files, no problems; exit 0."""
    (tmp_path / "p.yaml").write_text(VALID)
    result = _invoke(tmp_path, "validate", "--json", "--config", str(tmp_path / "p.yaml"))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "valid": True,
        "policies": 1,
        "files": 1,
        "problems": [],
        "error": None,
        "environment": [],
    }


def test_validate_json_lists_each_problem_with_its_place(tmp_path: Path) -> None:
    """Each problem is an object with file, line, column, field and reason; exit 2 as before."""
    policy = tmp_path / "p.yaml"
    policy.write_text(INVALID)
    result = _invoke(tmp_path, "validate", "--json", "--config", str(policy))
    assert result.exit_code == 2
    verdict = json.loads(result.stdout)
    assert verdict["valid"] is False and verdict["error"] is None
    problems = verdict["problems"]
    assert [(p["file"], p["line"]) for p in problems] == [(str(policy), 4), (str(policy), 6)]
    assert set(problems[0]) == {"file", "line", "column", "field", "reason"}
    assert problems[1]["field"].endswith("grace") and problems[1]["reason"]
    assert "2 problem(s) in the policy files" in result.stderr
    # Without --json the same problems go to stderr as FILE:LINE:COL lines, with the same code.
    human = _invoke(tmp_path, "validate", "--config", str(policy))
    assert human.exit_code == 2 and f"{policy}:4:" in human.stderr and human.stdout == ""


def test_validate_json_on_a_missing_config_says_why(tmp_path: Path) -> None:
    """A configuration that cannot be read at all: valid false, the error, exit 2."""
    missing = tmp_path / "nowhere"
    result = _invoke(tmp_path, "validate", "--json", "--config", str(missing))
    assert result.exit_code == 2
    verdict = json.loads(result.stdout)
    assert verdict["valid"] is False and verdict["problems"] == []
    assert "nowhere" in verdict["error"] and "nowhere" in result.stderr


@pytest.mark.parametrize(
    "options",
    [
        ["--json"],
        ["--summary", "s.json"],
        ["--summary-markdown", "s.md"],
        ["--json", "--summary", "s.json"],
    ],
)
def test_one_shot_options_are_refused_by_the_service(tmp_path: Path, options: list[str]) -> None:
    """run --json (or a summary) without --once is a usage error, not silently ignored."""
    (tmp_path / "p.yaml").write_text(VALID)
    args = [str(tmp_path / o) if o.startswith("s.") else o for o in options]
    result = _invoke(tmp_path, "run", *args, "--config", str(tmp_path / "p.yaml"))
    assert result.exit_code == 2
    assert "only with --once" in result.stderr and options[0] in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "j.db").exists()  # nothing started


def test_db_upgrade_json_names_the_journal_and_its_version(tmp_path: Path) -> None:
    """db upgrade --json prints the journal and the schema version it is at."""
    first = _invoke(tmp_path, "db", "upgrade", "--json")
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert set(data) == {"journal", "schema_version"}
    assert "j.db" in data["journal"] and data["schema_version"] >= 1
    again = _invoke(tmp_path, "db", "upgrade", "--json")
    assert json.loads(again.stdout) == data
