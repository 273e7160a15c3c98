"""Whatever a policy file holds, loading it gives policies or located problems, never a crash.

Property tests (Hypothesis) feed the loader arbitrary bytes, YAML-ish text,
random YAML documents made of policy words, and valid policy files mutated
value by value and line by line. Each must load, or be refused with a
:class:`PolicyError` whose every problem points into the file; through the
CLI, ``rotator validate`` exits 0 or 2 with ``FILE:LINE:COL:`` lines, and
never with a traceback. The quick and the located way of reading a file
must agree on what they load.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rotator.adapters.discovery import registry
from rotator.cli.main import cli
from rotator.errors import PolicyError
from rotator.policy.loader import PolicySet, _load_files, load_policies
from tests.conftest import restored_logging

#: Modest, so the whole module runs in seconds; no example database in the tree.
FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

REGISTRY = registry()

#: A valid file using most policy fields; the mutations start from it.
VALID = """\
notifiers:
  ops: {kind: slack, url_env: SLACK_WEBHOOK_URL}

defaults:
  grace: 24h
  schedule: {every: 30d, jitter: 1h}

secrets:
  - name: payments-db
    description: Payments database password
    owner: team-payments
    labels: {env: prod}
    store:
      provider: aws-secretsmanager
      secret_id: prod/payments/db
      region: us-east-1
      field: password
    issuer:
      kind: random
      length: 32
      alphabet: alphanumeric
    schedule:
      cron: "0 3 * * MON"
      timezone: Europe/Berlin
      window: "Mon-Fri 02:00-05:00"
      max_age: 60d
    grace: 24h
    when_old_still_used: extend
    alerts: [ops]
    leaks: {on_identifier_only: alert}
  - name: deployer
    store: {provider: vault-kv, mount: secret, path: app/deployer}
    issuer: {kind: aws-iam-access-key, user: deployer}
    schedule: {every: P30D, jitter: 0s}
    grace: PT12H
    targets:
      - {provider: vault-kv, path: apps/deployer}
      - {kind: file, path: /run/secrets/deployer.env, format: env, key: KEY, mode: "0600"}
      - {kind: webhook, url: "https://ci.internal/reload", secret_env: HOOK_KEY, timeout: 10s}
      - {kind: exec, command: [/usr/local/bin/reload], timeout: 30s}
    verify:
      - {kind: http, url: "https://api.internal/health", expect_status: [200, 204], attempts: 3}
    propagation_delay: 30s
"""

#: Values that have broken parsers before, or could: huge, odd, empty, typed.
NASTY = [
    "999999999w",
    '"999999999w"',
    "99999999999999999999999d",
    "P999999999999W",
    "PT99999999999999999999.5S",
    "1e400",
    "-1e400",
    ".inf",
    "-.inf",
    ".nan",
    "99999999999999999999999999999",
    "-1",
    "0",
    "0s",
    "-5s",
    "1.5",
    "true",
    "null",
    "~",
    '""',
    "[]",
    "{}",
    "[1, [2, [3]]]",
    "{a: {b: c}}",
    "2026-01-01",
    "2026-01-01T00:00:00Z",
    "0x7fffffffffffffff",
    "0o777",
    "1_000",
    "!!binary aGVsbG8=",
    "!!int 12x",
    "!!float abc",
    "!!timestamp 2026-13-45",
    "!custom x",
    "&a x",
    "*a",
    '"0 0 99999999999 * *"',
    '"*/0 * * * *"',
    '"0 0 31 2 *"',
    '"99999999999999999999 * * * *"',
    '"0 3 * * 9-99999999999999"',
    '"0 3 * * */99999999999999999999"',
    '"0 3 * * MON-FOO"',
    '"Mon-Fri 99:99-05:00"',
    '"Mon-Fri 02:00-05:00 extra"',
    '"Funday 02:00-05:00"',
    '"-"',
    "Mars/Olympus",
    '"../../etc/passwd"',
    '"\\0"',
    '"\\U0010ffff"',
    "x" * 300,
    "ä€𝄞",
    "'",
    '"',
    ":",
    "- -",
    "? x",
    "|",
    ">-",
    "%YAML 1.1",
    "---",
    "...",
]

NAMES = [
    "notifiers",
    "defaults",
    "secrets",
    "name",
    "store",
    "provider",
    "issuer",
    "kind",
    "schedule",
    "every",
    "cron",
    "timezone",
    "window",
    "jitter",
    "max_age",
    "grace",
    "when_old_still_used",
    "alerts",
    "targets",
    "verify",
    "propagation_delay",
    "labels",
    "secret_id",
    "length",
    "alphabet",
    "events",
    "url_env",
    "source_file",
    "<<",
]

LOCATION = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<column>\d+): ", re.MULTILINE)


# ---------------------------------------------------------------- the checks


@pytest.fixture(scope="module", autouse=True)
def _restore_logging() -> Iterator[None]:
    """Give the logging set-up back after ``rotator validate`` configured it for the runner."""
    with restored_logging():
        yield


@pytest.fixture(scope="module")
def policy_file() -> Iterator[Path]:
    """One scratch file, written anew by every example (examples never run at once)."""
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory) / "policies.yaml"


def _load(path: Path, data: bytes) -> PolicySet | PolicyError:
    """Write ``data`` and load it; return the policies or the PolicyError, raise anything else."""
    path.write_bytes(data)
    try:
        return load_policies(path, REGISTRY)
    except PolicyError as exc:
        return exc


def _assert_located(path: Path, outcome: PolicySet | PolicyError) -> None:
    """Assert that a refusal names at least one problem, each inside this file."""
    if isinstance(outcome, PolicySet):
        return
    assert outcome.problems, "a PolicyError without problems"
    for problem in outcome.problems:
        assert problem.file == str(path), problem
        assert problem.line >= 1 and problem.column >= 1, problem
        assert problem.reason, problem


def _assert_both_ways_agree(path: Path, outcome: PolicySet | PolicyError) -> None:
    """Assert that reading the file the located way gives what load_policies gave."""
    try:
        located: PolicySet | PolicyError = _load_files([path], REGISTRY, quickly=False)
    except PolicyError as exc:
        located = exc
    if isinstance(outcome, PolicySet):
        assert isinstance(located, PolicySet), (
            f"located way refuses what the quick way loads: {located}"
        )
        assert list(located) == list(outcome)
        assert located.notifiers == outcome.notifiers
    else:
        assert isinstance(located, PolicyError)
        assert located.problems == outcome.problems


def _assert_cli_validates(path: Path) -> None:
    """Assert that ``rotator validate`` exits 0, or 2 with every error line located in the file."""
    result = CliRunner().invoke(cli, ["validate", "--config", str(path)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        problems = [
            line
            for line in result.output.splitlines()
            if line and not line.startswith("rotator: error:")
        ]
        assert problems, result.output
        for line in problems:
            found = LOCATION.match(line)
            assert found and found["file"] == str(path), line


# --------------------------------------------------------------- strategies


def _yaml_scalar() -> st.SearchStrategy[object]:
    """Scalars a policy might hold, plus hostile ones."""
    return st.one_of(
        st.sampled_from(NASTY),
        st.sampled_from(NAMES),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.none(),
        st.text(max_size=20),
    )


def _documents() -> st.SearchStrategy[object]:
    """Nested mappings and lists keyed by policy field names, as YAML would build them."""
    return st.recursive(
        _yaml_scalar(),
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.sampled_from(NAMES), children, max_size=6),
        ),
        max_leaves=25,
    )


#: Text of YAML punctuation, duration letters, policy words and hostile values.
_YAMLISH = st.lists(
    st.sampled_from(list(" \n\n  \t-:{}[],'\"#&*!|>%@`?~.0123456789abcdwhmsPTW") + NAMES + NASTY),
    max_size=60,
).map("".join)


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    """Return the valid file with a few values, lines or characters changed."""
    lines = VALID.splitlines()
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        index = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        line = lines[index]
        how = draw(
            st.sampled_from(["value", "value", "value", "delete", "copy", "indent", "chars"])
        )
        if how == "value" and ":" in line:
            key, _, _ = line.partition(":")
            lines[index] = f"{key}: {draw(st.sampled_from(NASTY))}"
        elif how == "delete" and len(lines) > 1:
            del lines[index]
        elif how == "copy":
            lines.insert(index, line)
        elif how == "indent":
            lines[index] = " " * draw(st.integers(min_value=0, max_value=8)) + line.lstrip()
        else:
            at = draw(st.integers(min_value=0, max_value=len(line)))
            lines[index] = line[:at] + draw(_YAMLISH) + line[at:]
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------- tests


def test_the_starting_file_is_valid(policy_file: Path) -> None:
    """The file the mutations start from loads, so a mutation is what breaks it."""
    outcome = _load(policy_file, VALID.encode())
    assert isinstance(outcome, PolicySet) and len(outcome) == 2


@FUZZ
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes_load_or_are_located(policy_file: Path, data: bytes) -> None:
    """Any bytes at all load or are refused with located problems."""
    _assert_located(policy_file, _load(policy_file, data))


@FUZZ
@given(text=_YAMLISH)
def test_yamlish_text_loads_or_is_located(policy_file: Path, text: str) -> None:
    """Text made of YAML punctuation and policy words loads or is refused with located problems."""
    _assert_located(policy_file, _load(policy_file, text.encode()))


@FUZZ
@given(document=_documents())
def test_random_documents_load_or_are_located(policy_file: Path, document: object) -> None:
    """Any YAML document of policy words loads or is refused, the same either way of reading."""
    text = yaml.safe_dump({"secrets": [document]} if isinstance(document, dict) else document)
    outcome = _load(policy_file, text.encode())
    _assert_located(policy_file, outcome)
    _assert_both_ways_agree(policy_file, outcome)


@FUZZ
@given(text=_mutated())
def test_mutated_policy_files_load_or_are_located(policy_file: Path, text: str) -> None:
    """A valid file with values, lines or characters changed loads or is refused where wrong."""
    outcome = _load(policy_file, text.encode())
    _assert_located(policy_file, outcome)
    _assert_both_ways_agree(policy_file, outcome)


@settings(FUZZ, max_examples=50)
@given(text=_mutated())
def test_validate_exits_0_or_2_with_located_lines(policy_file: Path, text: str) -> None:
    """``rotator validate`` on a mutated file exits 0, or 2 printing FILE:LINE:COL per problem."""
    policy_file.write_text(text, encoding="utf-8")
    _assert_cli_validates(policy_file)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('"999999999w"', "longer than 10 years"),
        ("99999999999999999999999", "longer than 10 years"),
        (".inf", "longer than 10 years"),
        (".nan", "not a number"),
    ],
)
def test_overflowing_every_is_located_by_validate(
    policy_file: Path, value: str, reason: str
) -> None:
    """``every: 999999999w`` (or a huge number) is a located problem, exit 2, not a traceback."""
    policy_file.write_text(VALID.replace("every: P30D", f"every: {value}"), encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", "--config", str(policy_file)])
    assert result.exit_code == 2, result.output
    line = VALID.splitlines().index("    schedule: {every: P30D, jitter: 0s}") + 1
    assert f"{policy_file}:{line}:" in result.output
    assert "secrets[1].schedule.every" in result.output and reason in result.output
