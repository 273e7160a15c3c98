"""rotator in a pipeline: the example workflow and job, and the run summary they keep."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import click
import pytest
import yaml
from click.testing import CliRunner

from rotator import clock
from rotator.cli.main import cli
from rotator.engine.report import Outcome, Result, RunReport
from rotator.lifecycle import State
from rotator.reports.summary import RunSummary
from tests import locks
from tests.conftest import AWS_REGION, START

ROOT = Path(__file__).resolve().parent.parent
GITHUB = ROOT / "deploy/ci/github-actions.yml"
GITLAB = ROOT / "deploy/ci/gitlab-ci.yml"
#: The pipelines' lock: rotator-keys and every package it needs, pinned and hashed.
LOCK = ROOT / "deploy/ci/requirements.txt"
#: Where each pipeline installs its copy of the lock from, in the repository of the policies.
LOCK_COPIES = {
    GITHUB.name: ".github/rotator-requirements.txt",
    GITLAB.name: "ci/rotator-requirements.txt",
}
#: The extras of rotator-keys the pipelines run with (their jobs use AWS, Vault, Azure, PostgreSQL).
PIPELINE_EXTRAS = {"aws", "vault", "azure", "postgres"}
_USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<action>[^@\s]+)@(?P<ref>\S+)(?P<rest>.*)$")
_FULL_SHA = re.compile(r"[0-9a-f]{40}")
_VERSION_COMMENT = re.compile(r"\s+# v\d+\.\d+\.\d+$")


def _github() -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(GITHUB.read_text())
    return loaded


def _gitlab() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(GITLAB.read_text())
    return loaded


def _shell_lines() -> Iterator[tuple[str, str]]:
    """Yield (file, command line) for every shell line of both examples."""
    for step in _github()["jobs"]["rotate"]["steps"]:
        for line in str(step.get("run", "")).splitlines():
            yield GITHUB.name, line
        # A folded (>-) block is one line already.
    job = _gitlab()["rotate-credentials"]
    for line in [*job["before_script"], *job["script"]]:
        yield GITLAB.name, line


def _rotator_commands() -> list[tuple[str, list[str]]]:
    """Return every rotator invocation of both examples as its argument list."""
    found = []
    for where, line in _shell_lines():
        words = shlex.split(line)
        if words and words[0] == "rotator":
            found.append((where, words[1:]))
    return found


def _resolve(args: list[str]) -> tuple[click.Command, list[str]]:
    """Walk the command tree along ``args``; return the command and the rest."""
    command: click.Command = cli
    rest = list(args)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        sub = command.get_command(click.Context(command), rest[0])
        assert sub is not None, f"no command {rest[0]!r} under {command.name!r}"
        command, rest = sub, rest[1:]
    return command, rest


def test_both_examples_parse_and_run_rotator_once() -> None:
    """The workflow and the job are valid YAML, and each runs `rotator run --once`."""
    workflow = _github()
    # YAML 1.1 reads the key `on` as true; GitHub reads it as "on".
    assert "schedule" in workflow[True] and workflow["permissions"]["id-token"] == "write"
    job = _gitlab()["rotate-credentials"]
    assert {"AWS_ID_TOKEN", "AZURE_ID_TOKEN", "VAULT_ID_TOKEN"} <= set(job["id_tokens"])
    commands = _rotator_commands()
    runs = [args for _, args in commands if args[:2] == ["run", "--once"]]
    assert len(runs) == 2, commands


def test_every_rotator_command_and_flag_they_use_exists() -> None:
    """Each rotator command of the examples exists, with every flag it is given."""
    commands = _rotator_commands()
    assert len(commands) >= 6
    for where, args in commands:
        command, rest = _resolve(args)
        known = {opt for param in command.params for opt in param.opts}
        for word in rest:
            if word.startswith("--"):
                assert word.split("=")[0] in known, f"{where}: {command.name} has no {word}"


def test_the_rotator_variables_they_set_are_read_by_rotator() -> None:
    """Every ROTATOR_* variable the examples set is one rotator reads (no dead settings)."""
    source = "\n".join(p.read_text() for p in (ROOT / "rotator").rglob("*.py"))
    used = set(re.findall(r"ROTATOR_[A-Z_]+", GITHUB.read_text() + GITLAB.read_text()))
    assert {"ROTATOR_STATE", "ROTATOR_KEY_FILE", "ROTATOR_ACTOR"} <= used
    secrets_only = {"ROTATOR_FINGERPRINT_KEY"}  # a CI secret the job copies into a file
    for name in used - secrets_only:
        assert name in source, f"{name} is set by an example but rotator never reads it"


def test_the_vault_variables_the_gitlab_job_sets_are_read_by_the_vault_client() -> None:
    """Every VAULT_* variable the GitLab job sets or exports is one rotator's Vault client reads."""
    source = (ROOT / "providers/vault/client.py").read_text()
    job = _gitlab()["rotate-credentials"]
    exported = re.findall(r"export (VAULT_[A-Z_]+)=", "\n".join(job["before_script"]))
    names = {name for name in job["variables"] if name.startswith("VAULT_")} | set(exported)
    assert {"VAULT_ADDR", "VAULT_JWT_ROLE", "VAULT_JWT"} <= names
    for name in names:
        assert f'"{name}"' in source, f"{name} is set by the GitLab job but never read"


def test_no_cloud_key_is_stored_and_the_summary_is_kept() -> None:
    """No static cloud credential appears; the summary is uploaded even when the run fails."""
    for text in (GITHUB.read_text(), GITLAB.read_text()):
        for stored in ("AWS_SECRET_ACCESS_KEY", "AZURE_CLIENT_SECRET", "VAULT_SECRET_ID"):
            assert stored not in text
    upload = next(s for s in _github()["jobs"]["rotate"]["steps"] if "upload-artifact" in str(s))
    assert upload["if"] == "always()" and upload["with"]["path"] == "rotator-summary.json"
    artifacts = _gitlab()["rotate-credentials"]["artifacts"]
    assert artifacts["when"] == "always" and "rotator-summary.json" in artifacts["paths"]


# -- supply chain: actions by commit, packages by version and hash ---------------------------


def test_every_action_is_pinned_by_full_commit_sha_with_its_version() -> None:
    """Each ``uses:`` names a 40-hex commit (a tag can be moved) and says its release (# vX.Y.Z)."""
    lines = [m for m in map(_USES.match, GITHUB.read_text().splitlines()) if m]
    steps = [s for s in _github()["jobs"]["rotate"]["steps"] if "uses" in s]
    assert len(lines) == len(steps) >= 5
    for found in lines:
        where = f"{found['action']}@{found['ref']}"
        assert _FULL_SHA.fullmatch(found["ref"]), f"{where}: not pinned by a full commit SHA"
        assert _VERSION_COMMENT.fullmatch(found["rest"]), f"{where}: no '# vX.Y.Z' comment"


def _pip_installs() -> list[tuple[str, list[str]]]:
    """Return every ``pip install`` of both pipelines as (file, the words after install)."""
    found = []
    for where, line in _shell_lines():
        words = shlex.split(line)
        for start in range(len(words)):
            if words[start] in {"pip", "pip3"} and words[start + 1 : start + 2] == ["install"]:
                found.append((where, words[start + 2 :]))
    return found


def test_every_pip_install_requires_hashes_from_the_lock() -> None:
    """Each pipeline installs only from its copy of the lock, hashes required, no source builds."""
    installs = _pip_installs()
    assert {where for where, _ in installs} == set(LOCK_COPIES)
    for where, words in installs:
        assert "--require-hashes" in words, f"{where}: pip install without --require-hashes"
        assert locks.option(words, "--only-binary") == ":all:", f"{where}: may build from source"
        assert locks.option(words, "-r") == LOCK_COPIES[where], f"{where}: not from the lock"
        values = {":all:", LOCK_COPIES[where]}
        named = [w for w in words if not w.startswith("-") and w not in values]
        assert named == [], f"{where}: installs {named} outside the lock"
        for option in ("--index-url", "--extra-index-url", "-i", "--find-links", "-f", "-e"):
            assert locks.option(words, option) is None, f"{where}: {option}"
    for path in (GITHUB, GITLAB):
        text = path.read_text()
        assert "deploy/ci/requirements.txt" in text and LOCK_COPIES[path.name] in text


def test_the_lock_pins_and_hashes_every_requirement() -> None:
    """Every requirement of the lock is ``name==version`` with sha256 hashes; no option, no URL."""
    requirements = locks.requirements(LOCK)
    assert len(requirements) >= 30
    for requirement in requirements:
        assert locks.LOCKED.fullmatch(requirement), f"unpinned, unhashed or odd: {requirement}"


def test_the_lock_installs_this_rotator_with_the_pipeline_extras() -> None:
    """The lock names rotator-keys at pyproject's version with the extras the pipelines use."""
    rotator = locks.pins(LOCK)["rotator-keys"]
    assert rotator.version == locks.project()["project"]["version"]
    assert rotator.extras == PIPELINE_EXTRAS


def test_the_lock_satisfies_every_requirement_of_rotator_and_those_extras() -> None:
    """Each dependency pyproject declares (and those extras) is locked at a version it allows.

    So is every package those need in turn, as far as this environment has
    their metadata (the ones installed here at the locked version).
    """
    assert set(locks.options(locks.command(LOCK), "--extra")) == PIPELINE_EXTRAS
    python = locks.option(locks.command(LOCK), "--python-version")
    assert python is not None
    locked = locks.pins(LOCK)
    walked = locks.walk(locks.declared(PIPELINE_EXTRAS), locked, python)
    assert walked.problems == []
    assert "psycopg-binary" in locked  # psycopg[binary]: the C build, no compiler in the job


def _report() -> RunReport:
    return RunReport(
        [
            Outcome("app/db", Result.OK, "rotation grace", "a" * 32, State.GRACE),
            Outcome("partner|key", Result.FAILED, "rolled back: check\nrefused", "b" * 32),
        ]
    )


def test_the_summary_counts_and_lists_failures_first(tmp_path: Path) -> None:
    """JSON holds counts and outcomes; Markdown puts failures first and escapes table cells."""
    summary = RunSummary(_report(), START, START.replace(second=42), "one-shot@ci")
    data = summary.as_dict()
    assert data["exit_code"] == 1 and data["seconds"] == 42.0
    assert data["counts"] == {"ok": 1, "failed": 1, "attention": 0, "waiting": 0, "skipped": 0}
    text = summary.markdown()
    rows = [
        line for line in text.splitlines() if line.startswith("| ❌") or line.startswith("| ✅")
    ]
    assert rows[0].startswith("| ❌") and "`partner\\|key`" in rows[0]
    assert "rolled back: check refused" in rows[0]
    path = tmp_path / "step-summary.md"
    summary.append_markdown(str(path))
    summary.append_markdown(str(path))
    assert path.read_text().count("### rotator run --once failed") == 2


def test_run_once_writes_the_summary_files(aws_in_process: None, tmp_path: Path) -> None:
    """`run --once --summary F --summary-markdown M` writes both, and exits as the run did."""
    boto3.client("secretsmanager", region_name=AWS_REGION).create_secret(
        Name="app/db", SecretString="initial-value-of-app-db"
    )
    (tmp_path / "p.yaml").write_text(
        """secrets:
  - name: app/db
    store: {provider: aws-secretsmanager, secret_id: app/db}
    schedule: {every: 30d}
    grace: 1h
  - name: missing
    store: {provider: aws-secretsmanager, secret_id: missing}
    schedule: {every: 30d}
    grace: 1h
"""
    )
    args = ["--config", str(tmp_path / "p.yaml"), "--state", f"sqlite:///{tmp_path / 'j.db'}"]
    with clock.pinned(datetime(2099, 1, 1, tzinfo=UTC)):
        result = CliRunner().invoke(
            cli,
            [
                "run",
                "--once",
                "--summary",
                str(tmp_path / "s.json"),
                "--summary-markdown",
                str(tmp_path / "s.md"),
                *args,
            ],
        )
    assert result.exit_code == 1, result.output
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["exit_code"] == 1 and data["counts"]["failed"] == 1
    assert {o["secret"] for o in data["outcomes"]} == {"app/db", "missing"}
    assert "initial-value-of-app-db" not in (tmp_path / "s.json").read_text()
    assert "| ❌ | `missing` |" in (tmp_path / "s.md").read_text()


def test_summary_options_need_once(tmp_path: Path) -> None:
    """--summary without --once is a usage error (exit 2)."""
    (tmp_path / "p.yaml").write_text("secrets: []\n")
    result = CliRunner().invoke(
        cli, ["run", "--summary", str(tmp_path / "s.json"), "--config", str(tmp_path / "p.yaml")]
    )
    assert result.exit_code == 2 and "--once" in result.output


@pytest.mark.parametrize("path", [GITHUB, GITLAB], ids=lambda p: p.name)
def test_examples_name_no_secret_value(path: Path) -> None:
    """Secrets reach the examples only as references (secrets.X, $VARIABLE), never inline."""
    text = path.read_text()
    assert not re.search(r"(?i)(password|secret|token)\s*:\s*['\"]?[A-Za-z0-9+/]{20,}", text)


def test_an_unwritable_summary_fails_the_run_with_a_message(tmp_path: Path) -> None:
    """A summary that cannot be written exits 1 and says which file, even with [brackets]."""
    (tmp_path / "p.yaml").write_text("secrets: []\n")
    target = tmp_path / "no-such-dir [x]" / "s.json"
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "--once",
            "--summary",
            str(target),
            "--config",
            str(tmp_path / "p.yaml"),
            "--state",
            f"sqlite:///{tmp_path / 'j.db'}",
        ],
    )
    assert result.exit_code == 1
    assert "summary not written" in result.output and "[x]" in result.output
