"""The ``file`` target on real files: atomic writes, modes, formats, restore and check."""

from __future__ import annotations

import errno
import grp
import json
import os
import stat
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from providers import file as file_module
from providers.file import FileConfig, FileTarget
from rotator.adapters import Target
from rotator.adapters.discovery import Registry, registry
from rotator.adapters.secret import SecretValue
from rotator.adapters.values import Runtime
from rotator.errors import NotFoundError, PermanentError, PermissionDeniedError, PolicyError
from rotator.policy.loader import load_policies
from rotator.testing import TargetContract
from tests.providers.threads import run_together

ROTATION = "0123456789abcdef0123456789abcdef"
NEW = "new-Credential-9f8e7d6c"
OLD = "old-Credential-1a2b3c4d"


def target(runtime: Runtime, path: Path, **fields: Any) -> FileTarget:
    """Return a file target for ``path`` with the given policy fields."""
    return FileTarget(FileConfig(path=str(path), **fields), runtime, "payments-db")


def identity(path: Path) -> tuple[int, int]:
    """Return what changes when a file is rewritten: its inode and mtime."""
    status = path.stat()
    return status.st_ino, status.st_mtime_ns


@pytest.fixture
def umask() -> Iterator[None]:
    """Restore the process umask after a test that changes it."""
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


# -- writing ------------------------------------------------------------------


def test_raw_write_holds_the_value_alone_with_mode_0600(runtime: Runtime, tmp_path: Path) -> None:
    """A raw file holds exactly the value's text, mode 0600, and no temporary file is left."""
    path = tmp_path / "db-password"
    target(runtime, path).write(ROTATION, SecretValue(NEW))
    assert path.read_bytes() == NEW.encode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db-password"]


def test_raw_mapping_value_is_compact_json(runtime: Runtime, tmp_path: Path) -> None:
    """A mapping value in a raw file is its compact sorted JSON text."""
    path = tmp_path / "key.json"
    value = SecretValue({"SecretAccessKey": "s3cr3t-access-key", "AccessKeyId": "AKIAEXAMPLE"})
    target(runtime, path).write(ROTATION, value)
    assert path.read_text() == value.text()
    assert json.loads(path.read_text())["AccessKeyId"] == "AKIAEXAMPLE"


@pytest.mark.parametrize("mask", [0o000, 0o077])
def test_mode_is_exact_whatever_the_umask(
    runtime: Runtime, tmp_path: Path, umask: None, mask: int
) -> None:
    """The file gets exactly ``mode``: the umask neither widens nor narrows it."""
    os.umask(mask)
    path = tmp_path / "app.env"
    target(runtime, path, format="env", key="DB_PASSWORD", mode="0640").write(
        ROTATION, SecretValue(NEW)
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_rewrite_narrows_a_file_that_is_too_readable(runtime: Runtime, tmp_path: Path) -> None:
    """A file already holding the value but world-readable is rewritten with ``mode``."""
    path = tmp_path / "db-password"
    path.write_text(NEW)
    path.chmod(0o644)
    target(runtime, path).write(ROTATION, SecretValue(NEW))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == NEW


def test_group_is_given_to_the_file(runtime: Runtime, tmp_path: Path) -> None:
    """With ``group`` (by name), the written file belongs to that group."""
    gid = os.getgid()
    path = tmp_path / "db-password"
    target(runtime, path, mode="0640", group=grp.getgrgid(gid).gr_name).write(
        ROTATION, SecretValue(NEW)
    )
    assert path.stat().st_gid == gid
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_unknown_group_is_not_found_and_writes_nothing(runtime: Runtime, tmp_path: Path) -> None:
    """A group that does not exist raises NotFoundError naming it, before any file is created."""
    path = tmp_path / "db-password"
    with pytest.raises(NotFoundError, match="no-such-group-rotator"):
        target(runtime, path, group="no-such-group-rotator").write(ROTATION, SecretValue(NEW))
    assert list(tmp_path.iterdir()) == []


def test_env_keeps_other_lines_byte_for_byte(runtime: Runtime, tmp_path: Path) -> None:
    """Only the key's line changes; comments, blank lines, other keys and CRLF endings stay."""
    path = tmp_path / "app.env"
    path.write_bytes(
        b"# payments\nAPI_URL=https://api.internal\r\n\nexport DB_PASSWORD=old\nTAIL='x y'"
    )
    target(runtime, path, format="env", key="DB_PASSWORD").write(ROTATION, SecretValue(NEW))
    assert path.read_bytes() == (
        b"# payments\nAPI_URL=https://api.internal\r\n\nexport DB_PASSWORD="
        + NEW.encode()
        + b"\nTAIL='x y'"
    )


def test_env_appends_a_missing_key_and_drops_duplicates(runtime: Runtime, tmp_path: Path) -> None:
    """A missing key is appended on a new line; a later duplicate that would override it goes."""
    path = tmp_path / "app.env"
    path.write_text("A=1")
    env = target(runtime, path, format="env", key="DB_PASSWORD")
    env.write(ROTATION, SecretValue(NEW))
    assert path.read_text() == f"A=1\nDB_PASSWORD={NEW}\n"
    path.write_text("DB_PASSWORD=x\nB=2\nDB_PASSWORD=y\n")
    env.write(ROTATION, SecretValue(NEW))
    assert path.read_text() == f"DB_PASSWORD={NEW}\nB=2\n"


@pytest.mark.parametrize(
    "value",
    [
        "plain-Value_1234:/+=",
        "with spaces and $HOME and `id`",
        'quote\'s "double" back\\slash $(touch pwned)',
        "''leading-quotes''",
    ],
)
def test_env_value_reads_back_through_a_real_shell(
    runtime: Runtime, tmp_path: Path, value: str
) -> None:
    """What a POSIX shell reads from the env file is the value, unexpanded."""
    path = tmp_path / "app.env"
    path.write_text("OTHER=1\n")
    target(runtime, path, format="env", key="DB_PASSWORD").write(ROTATION, SecretValue(value))
    read = subprocess.run(
        ["/bin/sh", "-c", '. "$1"; printf %s "$DB_PASSWORD"', "sh", str(path)],
        capture_output=True,
        check=True,
        cwd=tmp_path,
    )
    assert read.stdout.decode() == value
    assert not (tmp_path / "pwned").exists()


def test_env_refuses_a_value_with_a_line_break(runtime: Runtime, tmp_path: Path) -> None:
    """A multi-line value is refused without quoting it, and the file is untouched."""
    path = tmp_path / "app.env"
    path.write_text("A=1\n")
    value = "first-line-secret\nsecond-line-secret"
    with pytest.raises(PermanentError, match="line break") as caught:
        target(runtime, path, format="env", key="DB_PASSWORD").write(ROTATION, SecretValue(value))
    assert "line-secret" not in str(caught.value)
    assert path.read_text() == "A=1\n"


def test_env_file_that_does_not_parse_is_left_alone(runtime: Runtime, tmp_path: Path) -> None:
    """A line that is not an assignment is reported by number (not content); nothing is written."""
    path = tmp_path / "app.env"
    path.write_text("A=1\nthis line holds hunter2-secret\n")
    with pytest.raises(PermanentError, match="line 2") as caught:
        target(runtime, path, format="env", key="DB_PASSWORD").write(ROTATION, SecretValue(NEW))
    assert "hunter2" not in str(caught.value)
    assert path.read_text() == "A=1\nthis line holds hunter2-secret\n"


def test_json_sets_the_key_and_keeps_the_others(runtime: Runtime, tmp_path: Path) -> None:
    """A JSON object keeps its other keys; a mapping value becomes a nested object."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"url": "https://api", "db": "old", "n": 3}))
    json_target = target(runtime, path, format="json", key="db")
    json_target.write(ROTATION, SecretValue(NEW))
    assert json.loads(path.read_text()) == {"url": "https://api", "db": NEW, "n": 3}
    pair = {"AccessKeyId": "AKIAEXAMPLE", "SecretAccessKey": "s3cr3t-access-key"}
    json_target.write(ROTATION, SecretValue(pair))
    assert json.loads(path.read_text()) == {"url": "https://api", "db": pair, "n": 3}


def test_json_file_that_is_not_an_object_is_refused(runtime: Runtime, tmp_path: Path) -> None:
    """A JSON array is not overwritten: PermanentError, file unchanged."""
    path = tmp_path / "config.json"
    path.write_text("[1, 2]")
    with pytest.raises(PermanentError, match="JSON object"):
        target(runtime, path, format="json", key="db").write(ROTATION, SecretValue(NEW))
    assert path.read_text() == "[1, 2]"


def test_symlink_is_refused_not_written_through(runtime: Runtime, tmp_path: Path) -> None:
    """A symbolic link at the path is refused; the file it points to is untouched."""
    real = tmp_path / "elsewhere"
    real.write_text("do not touch")
    link = tmp_path / "db-password"
    link.symlink_to(real)
    with pytest.raises(PermanentError, match="symbolic link"):
        target(runtime, link).write(ROTATION, SecretValue(NEW))
    assert real.read_text() == "do not touch"
    assert link.is_symlink()


def test_raw_file_of_any_bytes_is_replaced(runtime: Runtime, tmp_path: Path) -> None:
    """A raw file has no format: binary content is simply replaced, and check accepts it."""
    path = tmp_path / "db-password"
    path.write_bytes(b"\xff\xfe binary")
    raw = target(runtime, path)
    assert "readable as raw" in raw.check()
    raw.write(ROTATION, SecretValue(NEW))
    assert path.read_bytes() == NEW.encode()


def test_group_may_be_a_number(runtime: Runtime, tmp_path: Path) -> None:
    """A numeric group (as YAML writes it) is given to the file as is."""
    path = tmp_path / "db-password"
    target(runtime, path, mode="0640", group=os.getgid()).write(ROTATION, SecretValue(NEW))
    assert path.stat().st_gid == os.getgid()


def test_next_write_removes_a_crashed_writes_temporary(runtime: Runtime, tmp_path: Path) -> None:
    """A temporary file left by a crashed write (holding a value) is removed by the next write."""
    stale = tmp_path / ".db-password.rotator-0123abcd.tmp"
    stale.write_text("half-written-secret")
    other = tmp_path / ".other.rotator-0123abcd.tmp"
    other.write_text("belongs to another target")
    target(runtime, tmp_path / "db-password").write(ROTATION, SecretValue(NEW))
    assert not stale.exists()
    assert other.exists()


def test_missing_directory_is_not_found(runtime: Runtime, tmp_path: Path) -> None:
    """Writing into a directory that does not exist raises NotFoundError naming it."""
    path = tmp_path / "absent" / "db-password"
    with pytest.raises(NotFoundError, match="absent"):
        target(runtime, path).write(ROTATION, SecretValue(NEW))


@pytest.mark.parametrize(
    ("fields", "content"),
    [
        ({}, NEW),
        ({"format": "env", "key": "DB_PASSWORD"}, "A=1\n"),
        ({"format": "json", "key": "db"}, '{"a": 1}'),
    ],
)
def test_writing_the_same_value_again_touches_nothing(
    runtime: Runtime, tmp_path: Path, fields: dict[str, str], content: str
) -> None:
    """A second write of the same value leaves the file's bytes, inode and mtime as they were."""
    path = tmp_path / "target"
    path.write_text(content)
    file_target = target(runtime, path, **fields)
    file_target.write(ROTATION, SecretValue(NEW))
    before, seen = path.read_bytes(), identity(path)
    file_target.write(ROTATION, SecretValue(NEW))
    assert path.read_bytes() == before
    assert identity(path) == seen


def test_env_value_quoted_by_someone_else_is_not_rewritten(
    runtime: Runtime, tmp_path: Path
) -> None:
    """An env file already assigning the value (in double quotes) is left as it is."""
    path = tmp_path / "app.env"
    path.write_text(f'DB_PASSWORD="{NEW}"\n')
    path.chmod(0o600)
    seen = identity(path)
    target(runtime, path, format="env", key="DB_PASSWORD").write(ROTATION, SecretValue(NEW))
    assert identity(path) == seen


def test_readers_never_see_an_empty_or_partial_file(runtime: Runtime, tmp_path: Path) -> None:
    """While a writer alternates two large values, a reader only ever sees one whole file."""
    path = tmp_path / "app.env"
    values = [SecretValue("a" * 200_000 + "-first"), SecretValue("b" * 200_000 + "-second")]
    wholes = {f"KEEP=1\nDB_PASSWORD={v.text()}\n".encode() for v in values}
    path.write_text("KEEP=1\n")
    env = target(runtime, path, format="env", key="DB_PASSWORD")
    env.write(ROTATION, values[0])
    done = threading.Event()
    reads: list[int] = []
    wrong: list[int] = []

    def read() -> None:
        while not done.is_set():
            data = path.read_bytes()
            reads.append(len(data))
            if data not in wholes:
                wrong.append(len(data))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        for i in range(120):
            env.write(ROTATION, values[i % 2])
    finally:
        done.set()
        reader.join(timeout=30)
    assert not reader.is_alive()
    assert len(reads) > 10
    assert wrong == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.env"]


def test_two_secrets_sharing_an_env_file_keep_both_keys(runtime: Runtime, tmp_path: Path) -> None:
    """Targets of several secrets writing one env file at once lose none of the keys."""
    path = tmp_path / "app.env"
    keys = [f"KEY_{i}" for i in range(8)]

    def write(key: str) -> None:
        for round_ in range(10):
            value = SecretValue(f"value-of-{key}-round-{round_}")
            target(runtime, path, format="env", key=key).write(ROTATION, value)

    assert run_together(write, keys) == []
    lines = path.read_text().splitlines()
    assert sorted(lines) == sorted(f"{key}=value-of-{key}-round-9" for key in keys)


# -- restore ------------------------------------------------------------------


def test_restore_puts_previous_back_over_written(runtime: Runtime, tmp_path: Path) -> None:
    """When the file carries this rotation's value, restore writes the previous one back."""
    path = tmp_path / "app.env"
    path.write_text(f"A=1\nDB_PASSWORD={OLD}\n")
    env = target(runtime, path, format="env", key="DB_PASSWORD")
    env.write(ROTATION, SecretValue(NEW))
    env.restore(ROTATION, written=SecretValue(NEW), previous=SecretValue(OLD))
    assert path.read_text() == f"A=1\nDB_PASSWORD={OLD}\n"
    seen = identity(path)
    env.restore(ROTATION, written=SecretValue(NEW), previous=SecretValue(OLD))
    assert identity(path) == seen


def test_restore_leaves_a_value_it_did_not_write(runtime: Runtime, tmp_path: Path) -> None:
    """If the file holds something other than ``written``, restore leaves it."""
    path = tmp_path / "db-password"
    path.write_text("someone-elses-value")
    target(runtime, path).restore(ROTATION, written=SecretValue(NEW), previous=SecretValue(OLD))
    assert path.read_text() == "someone-elses-value"


def test_restore_when_write_never_ran_creates_nothing(runtime: Runtime, tmp_path: Path) -> None:
    """Restore with no file present (write never ran) creates no file."""
    path = tmp_path / "db-password"
    target(runtime, path).restore(ROTATION, written=SecretValue(NEW), previous=SecretValue(OLD))
    assert not path.exists()


def test_restore_without_previous_removes_a_raw_file(runtime: Runtime, tmp_path: Path) -> None:
    """With no previous value, the raw file this rotation wrote is removed (twice is fine)."""
    path = tmp_path / "db-password"
    raw = target(runtime, path)
    raw.write(ROTATION, SecretValue(NEW))
    raw.restore(ROTATION, written=SecretValue(NEW), previous=None)
    assert not path.exists()
    raw.restore(ROTATION, written=SecretValue(NEW), previous=None)
    assert not path.exists()


def test_restore_without_previous_removes_only_the_key(runtime: Runtime, tmp_path: Path) -> None:
    """With no previous value, env and json files lose the key but keep the rest (and exist)."""
    env_path, json_path = tmp_path / "app.env", tmp_path / "app.json"
    env_path.write_text("A=1\n")
    json_path.write_text('{"a": 1}')
    env = target(runtime, env_path, format="env", key="DB_PASSWORD")
    doc = target(runtime, json_path, format="json", key="db")
    for t in (env, doc):
        t.write(ROTATION, SecretValue(NEW))
        t.restore(ROTATION, written=SecretValue(NEW), previous=None)
    assert env_path.read_text() == "A=1\n"
    assert json.loads(json_path.read_text()) == {"a": 1}


def test_restore_of_the_only_key_keeps_an_empty_env_file(runtime: Runtime, tmp_path: Path) -> None:
    """An env file the write created is left empty, not deleted, when its only key is removed."""
    path = tmp_path / "app.env"
    env = target(runtime, path, format="env", key="DB_PASSWORD")
    env.write(ROTATION, SecretValue(NEW))
    env.restore(ROTATION, written=SecretValue(NEW), previous=None)
    assert path.read_text() == ""


def test_restore_with_written_lost_puts_previous(runtime: Runtime, tmp_path: Path) -> None:
    """When ``written`` was lost in a crash, ``previous`` (current in the store) is written."""
    path = tmp_path / "db-password"
    raw = target(runtime, path)
    raw.write(ROTATION, SecretValue(NEW))
    raw.restore(ROTATION, written=None, previous=SecretValue(OLD))
    assert path.read_text() == OLD


def test_restore_with_nothing_known_changes_nothing(runtime: Runtime, tmp_path: Path) -> None:
    """With neither ``written`` nor ``previous``, the file is left as it is."""
    path = tmp_path / "db-password"
    path.write_text(NEW)
    seen = identity(path)
    target(runtime, path).restore(ROTATION, written=None, previous=None)
    assert identity(path) == seen


# -- check --------------------------------------------------------------------


def test_check_reports_an_absent_file_and_creates_nothing(runtime: Runtime, tmp_path: Path) -> None:
    """check on a writable directory without the file says so and creates nothing."""
    path = tmp_path / "app.env"
    said = target(runtime, path, format="env", key="DB_PASSWORD").check()
    assert "absent" in said
    assert list(tmp_path.iterdir()) == []


def test_check_parses_an_existing_file_without_changing_it(
    runtime: Runtime, tmp_path: Path
) -> None:
    """check reads a well-formed file and leaves its inode and mtime alone."""
    path = tmp_path / "app.json"
    path.write_text('{"db": "x"}')
    seen = identity(path)
    assert "readable as json" in target(runtime, path, format="json", key="db").check()
    assert identity(path) == seen


@pytest.mark.parametrize(
    ("fields", "content", "reason"),
    [
        ({"format": "env", "key": "K"}, "K=1\nnot an assignment\n", "line 2"),
        ({"format": "json", "key": "k"}, "{not json", "not valid JSON"),
        ({"format": "env", "key": "K"}, b"K=\xff\xfe", "not UTF-8"),
    ],
)
def test_check_refuses_a_file_it_could_not_update(
    runtime: Runtime, tmp_path: Path, fields: dict[str, str], content: str | bytes, reason: str
) -> None:
    """check raises PermanentError for a file that does not parse in its format."""
    path = tmp_path / "target"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(PermanentError, match=reason):
        target(runtime, path, **fields).check()


def test_check_missing_directory_is_not_found(runtime: Runtime, tmp_path: Path) -> None:
    """check raises NotFoundError when the directory does not exist."""
    with pytest.raises(NotFoundError, match="does not exist"):
        target(runtime, tmp_path / "absent" / "x").check()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write any directory")
def test_check_read_only_directory_is_permission_denied(runtime: Runtime, tmp_path: Path) -> None:
    """check raises PermissionDeniedError when the directory is not writable."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(PermissionDeniedError):
            target(runtime, locked / "x").check()
    finally:
        locked.chmod(0o700)


def test_describe_names_path_and_key(runtime: Runtime, tmp_path: Path) -> None:
    """describe gives the path, and the key for env/json files."""
    path = tmp_path / "app.env"
    assert target(runtime, path, format="env", key="K").describe() == f"file:{path}#K"
    assert target(runtime, path).describe() == f"file:{path}"


# -- config -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"path": "run/secrets/x"}, "absolute"),
        ({"path": "/run/secrets/../x"}, "normalised"),
        ({"path": "/run/secrets/"}, "not a directory"),
        ({"path": "/run/x", "key": "K"}, "only used with format env or json"),
        ({"path": "/run/x", "format": "env"}, "needs key"),
        ({"path": "/run/x", "format": "json"}, "needs key"),
        ({"path": "/run/x", "format": "env", "key": "1BAD"}, "not a variable name"),
        ({"path": "/run/x", "mode": "0666"}, "group or others write"),
        ({"path": "/run/x", "mode": "0620"}, "group or others write"),
        ({"path": "/run/x", "mode": "0240"}, "owner read"),
        ({"path": "/run/x", "mode": "0999"}, "octal"),
        ({"path": "/run/x", "mode": "rw-------"}, "octal"),
        ({"path": "/run/x", "mode": 0o600}, "quoted octal string"),
        ({"path": "/run/x", "group": "bad name"}, "not a group name"),
        ({"path": "/run/x", "format": "yaml"}, "format"),
        ({"path": "/run/x", "owner": "root"}, "owner"),
    ],
)
def test_config_refuses_bad_fields(fields: dict[str, str], reason: str) -> None:
    """Each invalid policy is refused with a reason naming the problem."""
    with pytest.raises(ValidationError, match=reason):
        FileConfig(**fields)


def test_config_defaults() -> None:
    """A bare path is a raw file with mode 0600."""
    config = FileConfig(path="/run/secrets/db")
    assert (config.format, config.key, config.mode, config.bits()) == ("raw", None, "0600", 0o600)


def test_policy_block_is_validated_by_the_loader_with_its_location(tmp_path: Path) -> None:
    """A ``kind: file`` block loads through the policy loader; an unquoted mode is located."""
    base = registry()
    adapters = Registry(base.stores, base.issuers, {"file": FileTarget}, {})
    policy = tmp_path / "p.yaml"
    block = (
        "secrets:\n"
        "  - name: payments-db\n"
        "    store: {provider: aws-secretsmanager, secret_id: prod/payments/db}\n"
        "    schedule: {every: 30d}\n"
        "    grace: 1h\n"
        "    targets:\n"
        "      - kind: file\n"
        "        path: /run/secrets/payments.env\n"
        "        format: env\n"
        "        key: DB_PASSWORD\n"
        "        mode: {mode}\n"
    )
    policy.write_text(block.replace("{mode}", '"0640"'))
    [loaded] = load_policies(policy, adapters)
    config = loaded.targets[0].config
    assert isinstance(config, FileConfig)
    assert (config.format, config.key, config.bits()) == ("env", "DB_PASSWORD", 0o640)
    policy.write_text(block.replace("{mode}", "0600"))
    with pytest.raises(PolicyError) as caught:
        load_policies(policy, adapters)
    [problem] = caught.value.problems
    assert (problem.line, problem.path) == (11, "secrets[0].targets[0].mode")
    assert "quoted octal string" in problem.reason


# -- the Target contract ------------------------------------------------------


class TestFileContract(TargetContract):
    """The Target contract over a raw file target, on a real directory."""

    path: Path

    @pytest.fixture
    def target(self, runtime: Runtime, tmp_path: Path) -> Target[Any]:
        self.path = tmp_path / "app.secret"
        return target(runtime, self.path)

    def carried(self, target: Target[Any]) -> SecretValue | None:
        return SecretValue(self.path.read_text()) if self.path.exists() else None

    @contextmanager
    def unavailable(self, target: Target[Any]) -> Iterator[None]:
        """The disk is full: every write of the file's bytes fails with ENOSPC."""

        def full(fd: int, data: Any) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(file_module.os, "write", full)
            yield
