"""Outputs cannot be hijacked: text from outside is shown, never obeyed, in every format.

Names, paths, reasons and remote errors reach the terminal (rich tables and
lines), CSV, Markdown and JSON. Each must keep ``[/]`` and ``[link=...]``
literal (rich markup), escape sequences harmless (terminal), ``=...`` a
string (spreadsheets), ``|`` and HTML inside their cell (Markdown), and the
text exact (JSON). Summary files go through an exclusive temporary file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from rotator.cli import console as cli_console
from rotator.cli.main import cli
from rotator.engine.report import Outcome, RunReport
from rotator.engine.report import Result as Fate
from rotator.journal.audit import AuditRecord, to_csv
from rotator.output.escaping import csv_cell, markdown_cell, markdown_code, printable
from rotator.reports.summary import RunSummary
from tests.conftest import AWS_REGION, START

#: What a remote error or a policy may carry: markup, formulas, Markdown, HTML, controls.
HOSTILE = (
    '[/] [bold red]x[/] [link=https://evil]y =HYPERLINK("http://evil","x") +1 -1 @SUM(A1) '
    "| `z` <b>&amp;</b> \x1b[31mRED\r\nnext\x9b2J"
)
#: How a terminal must show it: markup as written, controls as escapes.
SHOWN = (
    '[/] [bold red]x[/] [link=https://evil]y =HYPERLINK("http://evil","x") +1 -1 @SUM(A1) '
    "| `z` <b>&amp;</b> \\x1b[31mRED\\r\\nnext\\x9b2J"
)
#: A directory path holding rich's closing tag and an escape sequence.
MARKUP_DIR = Path("pol[") / "]icies \x1b[31m"
FORMULAS = ['=HYPERLINK("http://evil","x")', "+1", "-1", "@SUM(A1)", "\tx", "\rx"]


# -- the escaping functions ----------------------------------------------------------


def test_printable_writes_controls_as_escapes() -> None:
    """ESC, CR, LF, tab, C1 controls, DEL and bidi overrides become visible escapes."""
    assert printable("a\x1b[31mb\rc\nd\te\x9b\x7f\u202ef") == (
        "a\\x1b[31mb\\rc\\nd\\te\\x9b\\x7f\\u202ef"
    )
    assert printable("plain [text] é ✅") == "plain [text] é ✅"


def test_plain_is_never_read_as_markup() -> None:
    """The consoles show ``plain`` text as written, even a stray closing tag."""
    console = Console(file=io.StringIO(), width=1000, color_system=None)
    console.print(cli_console.plain(HOSTILE))
    assert console.file.getvalue() == SHOWN + "\n"  # type: ignore[attr-defined]


def test_markdown_cell_keeps_text_inside_its_cell() -> None:
    """Pipes, Markdown punctuation, HTML and newlines are escaped for a GFM table cell."""
    assert markdown_cell("a|b `c` *d* _e_ [f](g) <img> & \\ ~h~ $i$\nnext") == (
        "a\\|b \\`c\\` \\*d\\* \\_e\\_ \\[f\\](g) &lt;img&gt; &amp; \\\\ \\~h\\~ \\$i\\$ next"
    )
    assert markdown_code("partner|key") == "`partner\\|key`"
    # A backtick would end the code span: such text is escaped as a plain cell instead.
    assert markdown_code("a`b") == "a\\`b"


@pytest.mark.parametrize("text", FORMULAS)
def test_csv_cell_starting_like_a_formula_gets_a_quote(text: str) -> None:
    """OWASP: a cell starting with = + - @ tab or CR is prefixed with ``'``."""
    assert csv_cell(text) == "'" + text


def test_csv_cell_leaves_other_values_alone() -> None:
    """Ordinary text and numbers (a negative number is not text) are unchanged."""
    assert csv_cell("app/db") == "app/db"
    assert csv_cell(-1) == -1


def test_audit_csv_quotes_formulas_and_keeps_rfc4180_quoting() -> None:
    """Every text field of a record is formula-safe; commas, quotes and newlines stay quoted."""
    record = AuditRecord(
        seq=1,
        at=START,
        actor="@SUM(A1)",
        action="=cmd|' /C calc'!A0",
        outcome="ok",
        secret="app/db",
        reason='+1, "quoted"\r\nnext',
        detail="-1",
    )
    text = "".join(to_csv([record]))
    [row] = list(csv.DictReader(io.StringIO(text, newline="")))
    assert row["actor"] == "'@SUM(A1)"
    assert row["action"] == "'=cmd|' /C calc'!A0"
    assert row["reason"] == '\'+1, "quoted"\r\nnext'
    assert row["detail"] == "'-1"
    assert row["secret"] == "app/db" and row["seq"] == "1"


# -- the commands ------------------------------------------------------------------


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Consoles wide enough that no cell wraps (the assertions look for whole strings)."""
    monkeypatch.setattr(cli_console.out, "width", 1000)
    monkeypatch.setattr(cli_console.err, "width", 1000)


@pytest.fixture
def hostile(aws_in_process: None, tmp_path: Path, wide: None) -> list[str]:
    """A policy whose deploy hook fails with HOSTILE in its error, in a directory with markup.

    The hook's program path is HOSTILE: the exec target names it in every
    error, as a remote API names what it refused.
    """
    boto3.client("secretsmanager", region_name=AWS_REGION).create_secret(
        Name="app/db", SecretString="first-value-of-app-db"
    )
    folder = tmp_path / MARKUP_DIR
    folder.mkdir(parents=True)
    command = json.dumps(f"/nonexistent/{HOSTILE}")
    (folder / "p.yaml").write_text(
        "secrets:\n"
        "  - name: app/db\n"
        "    store: {provider: aws-secretsmanager, secret_id: app/db}\n"
        "    issuer: {kind: random, length: 24}\n"
        f"    targets:\n      - {{kind: exec, command: [{command}]}}\n"
        "    schedule: {every: 30d}\n"
        "    grace: 1h\n"
    )
    return ["--config", str(folder / "p.yaml"), "--state", f"sqlite:///{tmp_path / 'j.db'}"]


def _invoke(args: list[str], **kw: Any) -> Result:
    return CliRunner().invoke(cli, args, **kw)


def _shown_literally(result: Result, code: int) -> None:
    """Assert the command ended normally with ``code`` and showed HOSTILE as SHOWN."""
    assert isinstance(result.exception, SystemExit | None), repr(result.exception)
    assert result.exit_code == code, result.output
    assert SHOWN in result.output
    for control in ("\x1b[31mRED", "\r", "\x9b"):
        assert control not in result.output


def test_remote_error_text_is_shown_literally_by_every_command(hostile: list[str]) -> None:
    """rotate, status, plan, history, check and run --once print the error without obeying it."""
    _shown_literally(_invoke(["rotate", "app/db", *hostile]), 1)
    _shown_literally(_invoke(["status", *hostile]), 0)
    _shown_literally(_invoke(["history", "app/db", *hostile]), 0)
    _shown_literally(_invoke(["check", *hostile]), 1)
    _shown_literally(_invoke(["run", "--once", *hostile]), 1)
    planned = _invoke(["plan", *hostile])  # the plan says why, not the error
    assert planned.exit_code == 0, planned.output


def test_json_outputs_keep_the_text_exactly(hostile: list[str]) -> None:
    """--json prints the same text unaltered, as valid JSON."""
    rotated = _invoke(["rotate", "app/db", "--json", *hostile])
    assert rotated.exit_code == 1
    [outcome] = json.loads(rotated.stdout)
    assert HOSTILE in outcome["message"]
    [row] = json.loads(_invoke(["status", "--json", *hostile]).stdout)
    assert HOSTILE in row["last_error"]
    [rotation] = json.loads(_invoke(["history", "app/db", "--json", *hostile]).stdout)
    assert any(HOSTILE in (step["detail"] or "") for step in rotation["steps"])


def _cells(row: str) -> list[str]:
    """Split a GFM table row on its unescaped pipes, as GitHub does."""
    return re.split(r"(?<!\\)\|", row)


def test_summary_files_escape_markdown_and_keep_json_exact(
    hostile: list[str], tmp_path: Path
) -> None:
    """--summary holds the exact text; --summary-markdown keeps it inside one literal cell."""
    summary, markdown = tmp_path / "s.json", tmp_path / "s.md"
    _invoke(["rotate", "app/db", *hostile])  # fails, so run --once resumes it
    result = _invoke(
        ["run", "--once", "--summary", str(summary), "--summary-markdown", str(markdown), *hostile]
    )
    _shown_literally(result, 1)
    [outcome] = json.loads(summary.read_text())["outcomes"]
    assert HOSTILE in outcome["message"]
    lines = markdown.read_text().splitlines()
    header = next(line for line in lines if line.startswith("| | secret"))
    [row] = [line for line in lines if line.startswith("| ❌")]
    assert len(_cells(row)) == len(_cells(header))
    assert "\\[link=https://evil\\]" in row and "\\[/\\]" in row
    assert "&lt;b&gt;&amp;amp;&lt;/b&gt;" in row and "<b>" not in row
    assert "\\`z\\`" in row and "\\x1b" in row and "\x1b" not in row


def test_csv_export_quotes_formulas_and_jsonl_keeps_them(
    aws_in_process: None, tmp_path: Path
) -> None:
    """A reason that looks like a formula is text in the CSV and exact in the JSON lines."""
    boto3.client("secretsmanager", region_name=AWS_REGION).create_secret(
        Name="app/db", SecretString="first-value-of-app-db"
    )
    (tmp_path / "p.yaml").write_text(
        "secrets:\n"
        "  - name: app/db\n"
        "    store: {provider: aws-secretsmanager, secret_id: app/db}\n"
        "    issuer: {kind: random, length: 24}\n"
        "    schedule: {every: 30d}\n"
        "    grace: 1h\n"
    )
    args = ["--config", str(tmp_path / "p.yaml"), "--state", f"sqlite:///{tmp_path / 'j.db'}"]
    for reason in FORMULAS:  # --emergency: each ends the grace of the one before
        rotated = _invoke(["rotate", "app/db", "--emergency", "--reason", reason, *args])
        assert rotated.exit_code == 0, rotated.output
    exported = _invoke(["audit", "export", "--format", "csv", *args])
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(io.StringIO(exported.stdout, newline="")))
    reasons = {row["reason"] for row in rows if row["reason"]}
    assert reasons == {"'" + reason for reason in FORMULAS}
    lines = _invoke(["audit", "export", *args]).stdout.splitlines()
    assert {json.loads(line)["reason"] for line in lines} - {None} == set(FORMULAS)


def test_a_journal_path_with_markup_is_printed_without_crashing(tmp_path: Path, wide: None) -> None:
    """db upgrade and audit verify name a journal at a path holding ``[/]`` (URL-quoted)."""
    folder = tmp_path / MARKUP_DIR
    folder.mkdir(parents=True)
    (tmp_path / "p.yaml").write_text("secrets: []\n")
    args = ["--config", str(tmp_path / "p.yaml"), "--state", f"sqlite:///{folder / 'j.db'}"]
    upgraded = _invoke(["db", "upgrade", *args])
    assert upgraded.exit_code == 0, repr(upgraded.exception)
    assert "pol%5B/%5Dicies" in upgraded.output and "\x1b[31m" not in upgraded.output
    verified = _invoke(["audit", "verify", *args])
    assert verified.exit_code == 0, repr(verified.exception)
    assert "audit trail intact" in verified.output


def test_validate_shows_a_policy_path_with_markup_and_controls_literally(
    tmp_path: Path, wide: None
) -> None:
    """A problem in a file under ``pol[/]icies \\x1b[31m`` is reported with that path, exit 2."""
    folder = tmp_path / MARKUP_DIR
    folder.mkdir(parents=True)
    (folder / "p.yaml").write_text("secrets:\n  - name: '[/]'\n")
    result = _invoke(["validate", "--config", str(folder / "p.yaml")])
    assert result.exit_code == 2, repr(result.exception)
    assert "pol[/]icies \\x1b[31m/p.yaml:2:" in result.output
    assert "\x1b[31m" not in result.output


def test_leaks_ingest_shows_report_text_literally(
    aws_in_process: None, tmp_path: Path, wide: None
) -> None:
    """A scanner report's paths and rule names, and its own path, are shown as written."""
    (tmp_path / "p.yaml").write_text("secrets: []\n")
    folder = tmp_path / MARKUP_DIR
    folder.mkdir(parents=True)
    finding = {
        "RuleID": "[bold red]rule[/]",
        "StartLine": 3,
        "Secret": "zzUnmanagedToken0123456789",
        "Match": "zzUnmanagedToken0123456789",
        "File": "[link=https://evil]src[/]\x1b[31m.py",
        "Commit": "1f4e0c2b9d7a3e5f8c6b4a2d0e9f7c5b3a1d8e6f",
    }
    report = folder / "scan.json"
    report.write_text(json.dumps([finding], indent=1) + "\n")
    args = ["--config", str(tmp_path / "p.yaml"), "--state", f"sqlite:///{tmp_path / 'j.db'}"]
    result = _invoke(["leaks", "ingest", str(report), *args])
    assert result.exit_code == 1, repr(result.exception)  # a finding nobody dealt with
    assert "[bold red]rule[/]" in result.output
    assert "[link=https://evil]src[/]" in result.output
    assert "pol[/]icies \\x1b[31m/scan.json" in result.output
    assert "\x1b[31m" not in result.output


def test_permissions_prints_ids_with_markup_without_crashing(
    tmp_path: Path, wide: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The document carries the id as written (valid JSON); the headings print normally."""
    (tmp_path / "p.yaml").write_text(
        "secrets:\n"
        "  - name: app/db\n"
        "    store: {provider: aws-secretsmanager, secret_id: 'app/[/][bold]x'}\n"
        "    issuer: {kind: random, length: 24}\n"
        "    schedule: {every: 30d}\n"
        "    grace: 1h\n"
    )
    args = ["--config", str(tmp_path / "p.yaml"), "--account", "123456789012"]
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_REGION)
    document = _invoke(["permissions", "--provider", "aws", *args])
    assert document.exit_code == 0, repr(document.exception)
    assert "app/[/][bold]x" in json.dumps(json.loads(document.stdout))
    everything = _invoke(["permissions", *args])
    assert everything.exit_code == 0, repr(everything.exception)
    assert "== aws: IAM policy" in everything.stderr


# -- summary files -----------------------------------------------------------------


def _summary() -> RunSummary:
    report = RunReport([Outcome("app/db", Fate.FAILED, HOSTILE, "c" * 32)])
    return RunSummary(report, START, START, "one-shot@ci")


def test_markdown_summary_keeps_the_text_in_one_literal_cell() -> None:
    """The Markdown row has the header's columns and shows no link, HTML or control."""
    lines = _summary().markdown().splitlines()
    header = next(line for line in lines if line.startswith("| | secret"))
    [row] = [line for line in lines if line.startswith("| ❌")]
    assert len(_cells(row)) == len(_cells(header))
    assert "\\[link=https://evil\\]y" in row and "&lt;b&gt;" in row and "\x1b" not in row


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_summary_is_never_written_through_a_planted_link(tmp_path: Path, umask: None) -> None:
    """A link at the old predictable temporary name (``.NAME.PID``) is neither followed nor used."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    target = tmp_path / "s.json"
    (tmp_path / f".s.json.{os.getpid()}").symlink_to(victim)
    _summary().write_json(str(target))
    assert victim.read_text() == "precious\n"
    assert json.loads(target.read_text())["outcomes"][0]["message"] == HOSTILE
    assert not target.is_symlink() and (target.stat().st_mode & 0o777) == 0o644
    leftovers = {p.name for p in tmp_path.iterdir()} - {
        "victim",
        "s.json",
        f".s.json.{os.getpid()}",
    }
    assert leftovers == set()


def test_a_link_at_the_summary_path_is_replaced_not_followed(tmp_path: Path, umask: None) -> None:
    """The summary replaces a link at its path; the file the link pointed at is untouched."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    target = tmp_path / "s.json"
    target.symlink_to(victim)
    _summary().write_json(str(target))
    assert victim.read_text() == "precious\n"
    assert not target.is_symlink() and json.loads(target.read_text())["exit_code"] == 1
