"""The documentation keeps to the code: its command lines, its tables, its site, its tour.

``make docs`` builds the site strictly (a link to a missing page or anchor
fails it). These tests keep what the build cannot see: every command line a
shell block of README.md or docs/ shows is parsed by the real command-line
interface (a renamed or removed command or option fails here); the table of
docs/commands.md names every command, with options that exist; the quotas
table of docs/service.md is what the adapters declare; every page is
in the site's navigation; README.md's links resolve; every whole policy file
shown loads; and README.md's one-minute tour runs as written, on one sandbox.
"""

from __future__ import annotations

import argparse
import importlib
import os
import queue
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click
import pytest
import yaml

from rotator.adapters import Quota
from rotator.adapters.discovery import registry
from rotator.cli.main import cli
from rotator.policy.loader import load_policies
from tests.test_sandbox_command import START_TIMEOUT, _clean_env

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MKDOCS = ROOT / "mkdocs.yml"
#: The info strings of the fenced blocks that hold shell command lines.
SHELL_BLOCKS = {"sh", "bash", "console", "shell"}
#: A fenced block, indented as in a list item or not; its info string and its lines.
FENCE = re.compile(
    r"^(?P<indent>[ ]*)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ ]*$",
    re.MULTILINE | re.DOTALL,
)
#: A placeholder such as ``<rotator's principal id>``: one word, not a redirection.
PLACEHOLDER = re.compile(r"<[A-Za-z][^<>\n]*>")
#: rotator at the start of a shell command: what a line that does not lex may not hold.
AT_COMMAND = re.compile(r"(?:^|[|;&(]\s*)(?:\S*/)?rotator\s")
#: A token made of shell operators only (shlex with punctuation_chars splits them off).
OPERATOR = re.compile(r"[();<>|&]+")
#: A shell variable assignment before the command: ``ROTATOR_ACTOR=x rotator ...``.
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class Shown:
    """One rotator invocation a document shows: where, and the words after the command."""

    where: str
    #: ``rotator`` itself, or the module of ``python -m MODULE``.
    program: str
    args: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.where}: {self.program} {shlex.join(self.args)}"


def _pages() -> list[Path]:
    """README.md, every page of the site, and the READMEs beside the manifests in deploy/."""
    return [README, *sorted(DOCS.rglob("*.md")), *sorted((ROOT / "deploy").rglob("*.md"))]


def _blocks(path: Path) -> Iterator[tuple[int, str, str]]:
    """Yield (line of the block's first line, info string, dedented body) per fenced block."""
    text = path.read_text()
    for match in FENCE.finditer(text):
        indent = len(match["indent"])
        body = "\n".join(line[indent:] for line in match["body"].splitlines())
        first = text.count("\n", 0, match.start("body")) + 1
        yield first, match["lang"], body


def _command_lines(body: str, lang: str) -> Iterator[tuple[int, str]]:
    """Yield (offset, line) per command line of a shell block, continuations joined.

    A ``$ `` prompt is dropped; in a ``console`` block only prompted lines
    are commands, the others being their output.
    """
    pending: list[str] = []
    start = 0
    for offset, raw in enumerate(body.splitlines()):
        line = raw
        if not pending:
            if line.startswith("$ "):
                line = line[2:]
            elif lang == "console":
                continue  # output, not a command
            start = offset
        if line.rstrip().endswith("\\"):
            pending.append(line.rstrip()[:-1])
            continue
        yield start, " ".join([*pending, line])
        pending = []


def _invocations(line: str) -> list[tuple[str, list[str]]]:
    """Return (program, args) for every rotator command on one shell line.

    A line is cut at the shell's operators (pipes, ``&&``, ``;``, subshells)
    and its redirections dropped; ``VAR=value`` before a command is skipped.
    ``rotator`` (or a path ending in it) and ``python -m rotator...`` count.
    """
    lexer = shlex.shlex(PLACEHOLDER.sub("PLACEHOLDER", line), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError:
        assert not AT_COMMAND.search(line), f"a rotator command that does not lex: {line}"
        return []
    found: list[tuple[str, list[str]]] = []
    segment: list[str] = []
    for word in [*words, ";"]:
        if OPERATOR.fullmatch(word) and not word.startswith((">", "<")):
            found += _invocation(segment)
            segment = []
        else:
            segment.append(word)
    return found


def _invocation(segment: list[str]) -> list[tuple[str, list[str]]]:
    """Return the rotator command of one simple command, if it is one (redirections dropped)."""
    words: list[str] = []
    skip = False
    for index, word in enumerate(segment):
        after = segment[index + 1] if index + 1 < len(segment) else ""
        if skip:
            skip = False
        elif word.startswith((">", "<")):
            skip = True  # the redirection's file
        elif not (word.isdigit() and after.startswith((">", "<"))):  # not 2>&1's 2
            words.append(word)
    if any(w.startswith("_ROTATOR_COMPLETE=") for w in words):
        # A request for the completion script, not a command: each documented
        # one is run by tests/test_operator_commands.py.
        return []
    while words and ASSIGNMENT.match(words[0]):
        words.pop(0)
    if words and (words[0] == "rotator" or words[0].endswith("/rotator")):
        return [("rotator", words[1:])]
    python = words[:1] and re.fullmatch(r"(?:\S*/)?python3?", words[0])
    if python and words[1:2] == ["-m"] and re.fullmatch(r"rotator(\.\w+)*", words[2]):
        return [(words[2], words[3:])]
    return []


def shown_commands() -> list[Shown]:
    """Every rotator invocation of every shell block of README.md, docs/ and deploy/."""
    shown: list[Shown] = []
    for path in _pages():
        for first, lang, body in _blocks(path):
            if lang not in SHELL_BLOCKS:
                continue
            for offset, line in _command_lines(body, lang):
                where = f"{path.relative_to(ROOT)}:{first + offset}"
                for program, args in _invocations(line):
                    shown.append(Shown(where, program, tuple(args)))
    return shown


def parse_rotator(args: list[str]) -> None:
    """Parse ARGS as ``rotator ARGS`` would, running no command; raise click's error if wrong.

    Each group resolves its subcommand (click's did-you-mean for an unknown
    one), and the command found parses its options and arguments with their
    types, as ``main`` would before calling it.
    """
    group: click.Group = cli
    ctx = click.Context(cli, info_name="rotator")
    rest = list(args)
    while rest and not rest[0].startswith("-"):
        name, command, rest = group.resolve_command(ctx, rest)
        assert name is not None and command is not None
        if not isinstance(command, click.Group):
            with suppress(click.exceptions.Exit):  # --help
                command.make_context(name, rest, parent=ctx)
            return
        group, ctx = command, click.Context(command, info_name=name, parent=ctx)
    # Options of a group, or a group with no command (click refuses that: a usage error).
    with suppress(click.exceptions.Exit):  # --help, --version
        group.make_context(ctx.info_name, rest, parent=ctx.parent)


class _Parsed(Exception):
    """Raised in place of serving, once an emulator's command line has parsed."""


def parse_module(module: str, args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse ``python -m MODULE ARGS`` with the module's own parser, serving nothing.

    The emulators build their parser inside ``main``: parse_args is wrapped
    to stop right after it parsed. A wrong line exits 2, as argparse does.
    """
    parse_args = argparse.ArgumentParser.parse_args

    def parse_then_stop(self: argparse.ArgumentParser, *a: Any, **kw: Any) -> NoReturn:
        parse_args(self, *a, **kw)
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    main = importlib.import_module(f"{module}.__main__").main
    with pytest.raises(_Parsed):
        main(list(args))


@pytest.fixture(autouse=True)
def _no_rotator_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse against defaults: a ROTATOR_* variable of the shell running the tests is no doc's."""
    for name in [n for n in os.environ if n.startswith("ROTATOR_")]:
        monkeypatch.delenv(name)


def check(shown: Shown, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse one shown invocation with the parser its program really uses."""
    if shown.program == "rotator":
        parse_rotator(list(shown.args))
    else:
        parse_module(shown.program, list(shown.args), monkeypatch)


SHOWN = shown_commands()


@pytest.mark.parametrize("shown", SHOWN, ids=str)
def test_every_command_line_the_docs_show_parses(
    shown: Shown, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each rotator command of a shell block names real commands and options, and parses."""
    try:
        check(shown, monkeypatch)
    except (click.UsageError, click.BadParameter) as exc:
        pytest.fail(f"{shown}\n  {exc.format_message()}")
    except SystemExit as exc:
        pytest.fail(f"{shown}\n  refused by its parser (exit {exc.code})")


def test_the_collector_finds_every_form_of_command_line() -> None:
    """Plain lines, continued lines, pipes, assignments, console prompts and python -m count."""
    lines = {
        "rotator status": [("rotator", ["status"])],
        "X=1 .venv/bin/rotator rotate NAME --reason 'a b' > out.txt 2>&1": [
            ("rotator", ["rotate", "NAME", "--reason", "a b"])
        ],
        "rotator permissions --provider vault | vault policy write rotator -": [
            ("rotator", ["permissions", "--provider", "vault"])
        ],
        "cd x && python3 -m rotator run --once; echo done": [("rotator", ["run", "--once"])],
        "python -m rotator.sandbox.vault --port 0  # a comment, --not-an-option": [
            ("rotator.sandbox.vault", ["--port", "0"])
        ],
        "az role assignment create --assignee <rotator's principal id>": [],
        "jq -c '.[]' rotator-roles.json": [],
        "python -m tests.harness status": [],
    }
    for line, expected in lines.items():
        assert _invocations(line) == expected, line
    body = "rotator permissions --provider aws \\\n  --account 1 \\\n  | jq .\n$ rotator plan"
    joined = [(offset, _invocations(line)) for offset, line in _command_lines(body, "sh")]
    assert joined == [
        (0, [("rotator", ["permissions", "--provider", "aws", "--account", "1"])]),
        (3, [("rotator", ["plan"])]),
    ]
    console = "$ rotator status\nrotator status of nothing: output\n"
    assert list(_command_lines(console, "console")) == [(0, "rotator status")]
    # And in the pages: the tour, a continued pipe, an emulator, a python -m rotator line.
    seen = {str(s) for s in SHOWN}
    assert len(SHOWN) >= 20, seen
    for expected in (
        "README.md:",
        "rotator permissions --provider aws --account 111122223333",
        "rotator.sandbox.vault --port 8200",
        "rotator run --reconcile 30",
    ):
        assert any(expected in s for s in seen), expected


@pytest.mark.parametrize(
    ("program", "args"),
    [
        ("rotator", ["statu"]),
        ("rotator", ["status", "--no-such-option"]),
        ("rotator", ["rotate"]),
        ("rotator", ["rotate", "NAME", "EXTRA"]),
        ("rotator", ["run", "--concurrency", "0"]),
        ("rotator", ["run", "--listen", "nowhere"]),
        ("rotator", ["audit"]),
        ("rotator", ["audit", "verfiy"]),
        ("rotator.sandbox.vault", ["--no-such-option"]),
        ("rotator.sandbox.kubernetes", ["--deployment", "no-namespace"]),
    ],
)
def test_a_wrong_command_line_is_refused(
    program: str, args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check itself: a misspelt command, an unknown option, a missing argument fail."""
    with pytest.raises((click.UsageError, click.BadParameter, SystemExit)):
        check(Shown("test", program, tuple(args)), monkeypatch)


def test_a_right_command_line_with_placeholders_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Placeholders are arguments like any other; --help parses too."""
    for program, args in [
        ("rotator", ["rotate", "NAME", "--emergency", "--reason", "PLACEHOLDER"]),
        ("rotator", ["audit", "export", "--since", "7d", "-o", "FILE"]),
        ("rotator", ["--help"]),
        ("rotator", ["db", "upgrade", "--help"]),
        ("rotator.sandbox.azure", ["--port", "0", "--apim-subscription", "shop/partner"]),
    ]:
        check(Shown("test", program, tuple(args)), monkeypatch)


def _leaf_commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    """Every command a user can run, by its words after ``rotator``."""
    found: dict[str, click.Command] = {}
    for name in group.list_commands(click.Context(group)):
        command = group.get_command(click.Context(group), name)
        assert command is not None
        if command.hidden:
            continue
        if isinstance(command, click.Group):
            found |= _leaf_commands(command, f"{prefix}{name} ")
        else:
            found[f"{prefix}{name}"] = command
    return found


def _table_synopses() -> list[str]:
    """The first cell of each row of the commands table of docs/commands.md."""
    return re.findall(r"^\| `rotator ([^`]+)` \|", (DOCS / "commands.md").read_text(), re.M)


def test_the_commands_table_has_every_command_and_only_real_options() -> None:
    """A row per command of the CLI; every option a row names is an option of that command."""
    commands = _leaf_commands(cli)
    named: set[str] = set()
    for synopsis in _table_synopses():
        words = synopsis.split()
        name = next(
            " ".join(words[:n]) for n in (2, 1) if " ".join(words[:n]) in commands
        )  # StopIteration: a row for no command
        named.add(name)
        options = {
            opt for param in commands[name].params for opt in (*param.opts, *param.secondary_opts)
        }
        for option in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", synopsis.replace("\\|", " ")):
            assert option in options, f"`rotator {synopsis}`: {name} has no {option}"
    assert sorted(set(commands) - named) == [], "commands missing from docs/commands.md"


#: A row of docs/service.md's quotas table: name, (provider,) scope, rate, calls, figure.
QUOTA_ROW = re.compile(
    r"^\| `([^`|]+)` \| [^|]+ \| ([^|]+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$", re.M
)


def _declared_quotas() -> dict[str, Quota]:
    """Every ``Quota`` the modules of the installed adapters declare (``QUOTAS``), by name."""
    base = registry()
    found: dict[str, Quota] = {}
    for role in (base.stores, base.issuers, base.targets, base.verifiers, base.notifiers):
        for adapter in role.values():
            for quota in getattr(sys.modules[adapter.__module__], "QUOTAS", ()):
                found[quota.name] = quota
    return found


def test_the_quotas_table_is_what_the_adapters_declare() -> None:
    """A row per declared quota, with its scope, default rate, counted calls and figure."""
    text = (DOCS / "service.md").read_text()
    section = text.split("\n## Provider quotas\n", 1)[1].split("\n## ", 1)[0]
    rows = QUOTA_ROW.findall(section)
    declared = _declared_quotas()
    assert sorted(name for name, *_ in rows) == sorted(declared), "quotas table of docs/service.md"
    for name, scope, rate, calls, documented in rows:
        quota = declared[name]
        assert (scope, rate, documented) == (quota.scope, f"{quota.rate:g}", quota.documented), name
        # A quota counting every call names none; one counting some names exactly those.
        assert set(re.findall(r"`([^`]+)`", calls)) == quota.calls, name


class _MkDocsLoader(yaml.SafeLoader):
    """Reads mkdocs.yml: its ``!!python/name:`` tags are kept as the names they give."""


_MkDocsLoader.add_multi_constructor(
    "tag:yaml.org,2002:python/name:", lambda _loader, suffix, _node: suffix
)


def _nav_pages(nav: Any) -> Iterator[str]:
    """Yield every page file the nav names, at any depth."""
    if isinstance(nav, str):
        yield nav
    elif isinstance(nav, list):
        for item in nav:
            yield from _nav_pages(item)
    elif isinstance(nav, dict):
        for value in nav.values():
            yield from _nav_pages(value)


def test_every_page_is_in_the_nav_and_every_nav_entry_is_a_page() -> None:
    """No page of docs/ is left out of the site's navigation, and the nav names no ghost."""
    config = yaml.load(MKDOCS.read_text(), Loader=_MkDocsLoader)
    assert config["docs_dir"] == "docs" and config["strict"] is True
    in_nav = list(_nav_pages(config["nav"]))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert len(in_nav) == len(set(in_nav)), "a page is in the nav twice"
    assert sorted(pages - set(in_nav)) == [], "pages missing from mkdocs.yml's nav"
    assert sorted(set(in_nav) - pages) == [], "nav entries with no page"
    assert in_nav[0] == "index.md"


def test_the_readme_links_point_at_files_that_exist() -> None:
    """README.md is read on the forge, outside the site: each relative link names a file."""
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README.read_text())
    relative = [link for link in links if "://" not in link]
    assert relative, "README.md links to no page"
    for link in relative:
        assert (ROOT / link).exists(), link


def test_every_policy_file_the_docs_show_loads(tmp_path: Path) -> None:
    """A whole policy file shown in a page (secrets or notifiers at the top) loads as shown."""
    loaded = 0
    for path in _pages():
        for first, lang, body in _blocks(path):
            if lang not in {"yaml", "yml"}:
                continue
            document = yaml.safe_load(body)
            if not (isinstance(document, dict) and {"secrets", "notifiers"} & set(document)):
                continue  # a fragment of a policy
            file = tmp_path / f"{path.stem}-{first}.yaml"
            file.write_text(body)
            load_policies(file, registry())
            loaded += 1
    assert loaded >= 5


def _tour(path: Path) -> list[list[str]]:
    """The command lines of each shell block of the page's "A one-minute tour" section."""
    text = path.read_text()
    start = text.index("\n## A one-minute tour\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else len(text)]
    blocks = []
    for match in FENCE.finditer(section):
        assert match["lang"] in SHELL_BLOCKS, match["lang"]
        blocks.append([line for _, line in _command_lines(match["body"], match["lang"])])
    return blocks


def test_the_tour_on_the_site_is_the_readme_tour() -> None:
    """The site's getting-started page shows the very tour README.md shows (and the test runs)."""
    assert _tour(DOCS / "getting-started.md") == _tour(README)


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    """The one-minute tour: the sandbox in one shell, then each command in another, exit 0.

    The first block starts the servers; the test takes the ``export`` lines
    it prints as the second shell's environment, runs every line of the
    second block there, in another directory, then stops the servers with
    SIGTERM. The only change to the tour: ``--duration 1``, since the demo's
    45 s of rotations before the servers are handed over are
    tests/test_sandbox_command.py's subject, not this one's.
    """
    first, second = (
        [shlex.split(line, comments=True) for line in block] for block in _tour(README)
    )
    [sandbox] = first
    assert sandbox[:3] == ["rotator", "sandbox", "--keep"], sandbox
    assert all(words[0] == "rotator" for words in second), second
    assert "rotate" in {words[1] for words in second}, "the tour rotates nothing"
    server = subprocess.Popen(
        [sys.executable, "-m", "rotator", *sandbox[1:], "--duration", "1"],
        cwd=tmp_path,
        env=_clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert server.stdout is not None
    stdout = server.stdout
    threading.Thread(target=lambda: [lines.put(x) for x in stdout], daemon=True).start()
    try:
        exports: dict[str, str] = {}
        while not (line := lines.get(timeout=START_TIMEOUT)).startswith("# Serving until"):
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                [exports[name]] = shlex.split(value)
        assert {"ROTATOR_CONFIG", "ROTATOR_STATE"} <= set(exports), exports
        shell = tmp_path / "second-shell"
        shell.mkdir()
        for words in second:
            done = subprocess.run(
                [sys.executable, "-m", "rotator", *words[1:]],
                cwd=shell,
                env=_clean_env(**exports),
                capture_output=True,
                text=True,
                timeout=START_TIMEOUT,
                check=False,
            )
            assert done.returncode == 0, (words, done.stdout[-2000:], done.stderr[-2000:])
            assert done.stdout.strip(), words
        server.terminate()
        assert server.wait(timeout=60) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
