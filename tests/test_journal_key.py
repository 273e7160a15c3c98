"""The journal's key file: named where it must be, checked at start, never a per-secret failure.

Each problem with the key (not named for a journal that is not a SQLite
file, missing, unreadable, readable by others, not hex) is one start-up
error, exit 2, naming the file and the expected format, before any provider
is called and with nothing changed; the key's bytes appear nowhere.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from rotator.adapters.secret import SecretValue
from rotator.cli.main import cli
from rotator.errors import JournalError
from rotator.journal.journal import Journal
from tests.conftest import AWS_REGION, FakeClock, empty_postgres

POLICY = """
secrets:
  - name: app/db
    store: {provider: aws-secretsmanager, secret_id: app/db}
    issuer: {kind: random, length: 24}
    schedule: {every: 30d}
    grace: 1h
"""

#: A well-formed key (as rotator makes them), and the same bytes in base64.
HEX_KEY = "5f" * 32
BASE64_KEY = base64.b64encode(bytes.fromhex(HEX_KEY)).decode()


@pytest.fixture
def store(aws_in_process: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """One secret in moto and its policy; the working directory is an empty folder of its own."""
    boto3.client("secretsmanager", region_name=AWS_REGION).create_secret(
        Name="app/db", SecretString="initial-value-of-app-db"
    )
    (tmp_path / "p.yaml").write_text(POLICY)
    elsewhere = tmp_path / "started-here"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("ROTATOR_KEY_FILE", raising=False)
    yield tmp_path / "p.yaml"


def _versions() -> int:
    """How many versions the secret has (a rotation adds one)."""
    listed = boto3.client("secretsmanager", region_name=AWS_REGION).list_secret_version_ids(
        SecretId="app/db", IncludeDeprecated=True
    )
    return len(listed["Versions"])


def _rotations(url: str) -> int:
    """How many rotations the journal records (0 when it has no tables yet)."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("rotations"):
                return 0
            return int(conn.execute(sa.text("SELECT count(*) FROM rotations")).scalar_one())
    finally:
        engine.dispose()


def _rotate(policy: Path, url: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        cli,
        ["rotate", "app/db", "--config", str(policy), "--state", url, "--log-format", "json"],
        env=env,
    )


def _key_beside_or_named(url: str, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """Where a test puts the key: beside a SQLite journal, else named by ROTATOR_KEY_FILE."""
    if url.startswith("sqlite"):
        return tmp_path / "journal.db.key", {}
    key = tmp_path / "shared.key"
    return key, {"ROTATOR_KEY_FILE": str(key)}


def _assert_one_startup_error(result: Result, *words: str) -> None:
    """Exit 2 with one ``rotator: error:`` naming each word, and no per-secret failure."""
    assert result.exit_code == 2, result.output
    assert "failed unexpectedly" not in result.output
    assert "ValueError" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("rotator: error:")]
    assert len(errors) == 1, result.output
    for word in words:
        assert word in errors[0], errors[0]


# -- PostgreSQL: the key must be named ----------------------------------------------------


def test_postgresql_without_a_named_key_refuses_and_writes_no_key(store: Path) -> None:
    """No key file named for a PostgreSQL journal: exit 2 saying how to make and share one.

    Before, the first run silently wrote ./rotator.key wherever it was
    started, and later runs from elsewhere were refused.
    """
    journal_url = empty_postgres()
    result = _rotate(store, journal_url)
    _assert_one_startup_error(result, "--key-file", "ROTATOR_KEY_FILE", "token_hex(32)", "replica")
    assert list(Path.cwd().iterdir()) == []  # no ./rotator.key
    assert _versions() == 1 and _rotations(journal_url) == 0


def test_postgresql_with_a_named_key_that_is_missing_says_how_to_make_it(
    store: Path, tmp_path: Path
) -> None:
    """A named key file that does not exist is not made on PostgreSQL: every run must share one."""
    journal_url = empty_postgres()
    key = tmp_path / "keys" / "journal.key"
    result = _rotate(store, journal_url, {"ROTATOR_KEY_FILE": str(key)})
    _assert_one_startup_error(result, str(key), "does not exist", "token_hex(32)")
    assert not key.exists() and not key.parent.exists()
    assert _versions() == 1 and _rotations(journal_url) == 0


def test_the_key_file_flag_names_the_key(store: Path, journal_url: str, tmp_path: Path) -> None:
    """--key-file names the key (on SQLite too, over the default beside the file); it rotates."""
    key = tmp_path / "named.key"
    key.write_text(HEX_KEY + "\n")
    key.chmod(0o600)
    result = CliRunner().invoke(
        cli,
        [
            *("rotate", "app/db", "--config", str(store), "--state", journal_url),
            *("--key-file", str(key), "--log-format", "json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert _versions() == 2 and _rotations(journal_url) == 1
    assert not (tmp_path / "journal.db.key").exists()
    assert HEX_KEY not in result.output


def test_sqlite_keeps_its_key_beside_the_journal_wherever_it_starts(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SQLite default is kept: the key is made beside the file, and found from elsewhere."""
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    assert _rotate(store, url).exit_code == 0
    assert (tmp_path / "journal.db.key").stat().st_mode & 0o777 == 0o600
    monkeypatch.chdir(tmp_path)
    again = CliRunner().invoke(cli, ["audit", "verify", "--config", str(store), "--state", url])
    assert again.exit_code == 0, again.output  # every record checked under the same key
    assert _versions() == 2 and list((tmp_path / "started-here").iterdir()) == []


# -- a bad key: one start-up error, before any provider call ---------------------------------


@pytest.mark.parametrize(
    ("content", "mode", "words"),
    [
        (BASE64_KEY, 0o600, ("not in the expected format", "64 hexadecimal characters")),
        ("", 0o600, ("not in the expected format", "64 hexadecimal characters")),
        ("ab" * 8, 0o600, ("not in the expected format", "64 hexadecimal characters")),
        (HEX_KEY, 0o640, ("its group or others", "chmod 600")),
        (HEX_KEY, 0o604, ("its group or others", "chmod 600")),
    ],
    ids=["base64", "empty", "too-short", "group-readable", "world-readable"],
)
def test_a_bad_key_is_one_startup_error(
    store: Path, journal_url: str, tmp_path: Path, content: str, mode: int, words: tuple[str, ...]
) -> None:
    """A malformed or exposed key: exit 2 naming the file, nothing rotated, the key never shown.

    Before, a base64 key made the secret fail with "secret failed
    unexpectedly: ValueError".
    """
    key, env = _key_beside_or_named(journal_url, tmp_path)
    key.write_text(content + "\n")
    key.chmod(mode)
    result = _rotate(store, journal_url, env)
    _assert_one_startup_error(result, str(key), *words)
    if content:
        assert content not in result.output
    assert _versions() == 1 and _rotations(journal_url) == 0
    assert key.read_text() == content + "\n" and key.stat().st_mode & 0o777 == mode


def test_an_unreadable_key_is_one_startup_error(
    store: Path, journal_url: str, tmp_path: Path
) -> None:
    """A key path that cannot be read as a file: exit 2 naming it, nothing rotated."""
    key, env = _key_beside_or_named(journal_url, tmp_path)
    key.mkdir()
    result = _rotate(store, journal_url, env)
    _assert_one_startup_error(result, str(key), "cannot be read")
    assert _versions() == 1 and _rotations(journal_url) == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_a_key_the_user_may_not_read_is_one_startup_error(
    store: Path, journal_url: str, tmp_path: Path
) -> None:
    """A key file of mode 0000: exit 2 naming it, nothing rotated."""
    key, env = _key_beside_or_named(journal_url, tmp_path)
    key.write_text(HEX_KEY)
    key.chmod(0)
    result = _rotate(store, journal_url, env)
    _assert_one_startup_error(result, str(key), "cannot be read")
    assert _versions() == 1


def test_read_only_commands_refuse_a_malformed_key_too(
    store: Path, journal_url: str, tmp_path: Path
) -> None:
    """`status` and `audit verify` name a malformed key instead of reading with no key."""
    key, env = _key_beside_or_named(journal_url, tmp_path)
    key.write_text(BASE64_KEY)
    key.chmod(0o600)
    for command in (["status"], ["audit", "verify"], ["history", "app/db"]):
        result = CliRunner().invoke(
            cli, [*command, "--config", str(store), "--state", journal_url], env=env
        )
        _assert_one_startup_error(result, str(key), "64 hexadecimal characters")
        assert BASE64_KEY not in result.output


# -- the journal's own API -----------------------------------------------------------------


def test_a_malformed_key_is_a_journal_error_naming_the_file(
    journal_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    """The library raises JournalError (never ValueError) naming the file, not its content."""
    key = tmp_path / "b64.key"
    key.write_text(BASE64_KEY)
    key.chmod(0o600)
    journal = Journal(journal_url, clock, key_file=key)
    with pytest.raises(JournalError) as raised:
        journal.fingerprint(SecretValue("x" * 20))
    assert str(key) in str(raised.value) and BASE64_KEY not in str(raised.value)


def test_a_journal_that_is_no_file_needs_a_named_key(clock: FakeClock, tmp_path: Path) -> None:
    """Without a key file, a PostgreSQL journal refuses before touching the database."""
    journal = Journal("postgresql://rotator@127.0.0.1:1/rotator", clock)
    with pytest.raises(JournalError, match="needs its key file named"):
        journal.database.keys.check(writing=True)
    assert not (Path.cwd() / "rotator.key").exists()


def test_a_key_checked_at_start_is_the_one_used(
    journal_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    """After the start-up check, the key is read once: a later edit of the file changes nothing."""
    key = tmp_path / "k"
    key.write_text(HEX_KEY)
    key.chmod(0o600)
    journal = Journal(journal_url, clock, key_file=key)
    journal.database.keys.check(writing=True)
    before = journal.fingerprint(SecretValue("y" * 20))
    key.write_text("not hex")
    assert journal.fingerprint(SecretValue("y" * 20)) == before
