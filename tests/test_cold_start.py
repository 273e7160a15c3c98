"""A command imports what it uses: a cold start pays for nothing another command needs.

Each command runs as a user runs it (``python -m rotator ...``, a process of
its own), and what it imported is read from ``sys.modules`` as the process
exits. Nothing here measures time: benchmarks/policies.py does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path

import click

from rotator.adapters.discovery import ENTRY_POINT_GROUP
from rotator.cli.main import COMMANDS, cli
from tests.seeding import seed_finished

#: Runs rotator with the arguments after the first, then writes every module imported to the first.
PROBE = (
    "import atexit, json, runpy, sys\n"
    "out = sys.argv[1]\n"
    "atexit.register(lambda: open(out, 'w').write(json.dumps(sorted(sys.modules))))\n"
    "sys.argv = ['rotator', *sys.argv[2:]]\n"
    "runpy.run_module('rotator', run_name='__main__')\n"
)

POLICY = """\
secrets:
  - name: app/db
    store: {provider: aws-secretsmanager, secret_id: app/db, region: us-east-1}
    issuer: {kind: random, length: 32}
    schedule: {every: 30d}
    grace: 1h
  - name: app/api
    store: {provider: aws-secretsmanager, secret_id: app/api, region: us-east-1}
    issuer: {kind: random, length: 32}
    schedule: {every: 7d, jitter: 1h}
    grace: 1h
"""
CRON_POLICY = """\
  - name: app/cron
    store: {provider: aws-secretsmanager, secret_id: app/cron, region: us-east-1}
    issuer: {kind: random, length: 32}
    schedule: {cron: "0 3 * * MON", timezone: Europe/Berlin, window: "Mon-Fri 02:00-05:00"}
    grace: 1h
"""

#: Never needed to check or run policies, only to serve (or to build an engine).
SERVICE_ONLY = ("prometheus_client", "rotator.service")
#: The adapter modules the policies above name: the only ones a command over them imports.
NAMED_ADAPTERS = {"providers.aws.secretsmanager", "providers.random"}


def _adapter_modules() -> set[str]:
    """Return the module of every installed adapter (as its entry point names it)."""
    return {ep.module for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _imported(
    tmp_path: Path, *args: str, **settings: str
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``rotator ARGS`` with ``settings`` in a process of its own; return it and its modules."""
    written = tmp_path / "modules.json"
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("ROTATOR_", "AWS_"))
    }
    # No AWS endpoint on purpose: a command that called AWS would fail.
    env |= {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "none",
        "AWS_SECRET_ACCESS_KEY": "none",
        "AWS_DEFAULT_REGION": "us-east-1",
        **settings,
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(written), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return done, set(json.loads(written.read_text()))


def test_validate_imports_no_database_no_engine_no_service(tmp_path: Path) -> None:
    """`rotator validate` loads neither the journal (SQLAlchemy), the engine nor the service."""
    (tmp_path / "p.yaml").write_text(POLICY + CRON_POLICY)

    done, modules = _imported(tmp_path, "validate", "--config", "p.yaml")

    assert done.returncode == 0, done.stderr
    assert "3 policies in 1 file(s) are valid" in done.stdout
    for heavy in ("sqlalchemy", "rotator.journal", *SERVICE_ONLY, "rotator.watch"):
        assert not {m for m in modules if m == heavy or m.startswith(f"{heavy}.")}, heavy
    # Of the engine, only what reads ROTATOR_CONCURRENCY (the environment check's).
    assert {m for m in modules if m.startswith("rotator.engine.")} == {"rotator.engine.concurrency"}


def test_validate_imports_only_the_adapters_the_policies_name(tmp_path: Path) -> None:
    """Two adapters named, two imported: not every adapter installed, nor their SDKs."""
    (tmp_path / "p.yaml").write_text(POLICY)

    done, modules = _imported(tmp_path, "validate", "--config", "p.yaml")

    assert done.returncode == 0, done.stderr
    assert modules & _adapter_modules() == NAMED_ADAPTERS
    assert "boto3" not in modules


def test_an_unknown_provider_is_still_refused_with_every_known_one(tmp_path: Path) -> None:
    """A misspelt provider loads the store adapters to say which it meant and which there are."""
    misspelt = POLICY.replace(
        "provider: aws-secretsmanager, secret_id: app/db", "provider: aws-secretmanager"
    )
    (tmp_path / "p.yaml").write_text(misspelt)

    done, _ = _imported(tmp_path, "validate", "--config", "p.yaml")

    assert done.returncode == 2
    assert "did you mean 'aws-secretsmanager'?" in done.stderr
    assert "known: aws-secretsmanager, azure-keyvault, vault-kv" in done.stderr


def test_a_rate_limit_setting_is_judged_against_every_adapters_quotas(tmp_path: Path) -> None:
    """ROTATOR_RATE_LIMITS names quotas any installed adapter declares: all are asked."""
    (tmp_path / "p.yaml").write_text(POLICY)
    limits = "vault=10,secretsmanagr.write=5"

    done, _ = _imported(tmp_path, "validate", "--config", "p.yaml", ROTATOR_RATE_LIMITS=limits)

    assert done.returncode == 2
    assert "no installed adapter has a quota called 'secretsmanagr.write'" in done.stderr
    assert "did you mean 'secretsmanager.write'?" in done.stderr


def test_run_once_with_nothing_due_imports_no_service(tmp_path: Path) -> None:
    """`rotator run --once` opens the journal (SQLAlchemy), but never the service or its metrics."""
    (tmp_path / "p.yaml").write_text(POLICY)
    url = f"sqlite:///{tmp_path / 'rotator.db'}"
    seed_finished(url, ["app/db", "app/api"], datetime.now(UTC).replace(microsecond=0))

    done, modules = _imported(
        tmp_path, "run", "--once", "--config", "p.yaml", "--state", url, "--log-format", "json"
    )

    assert done.returncode == 0, done.stderr
    assert "nothing was due" in done.stdout
    assert "sqlalchemy" in modules
    for heavy in SERVICE_ONLY:
        assert not {m for m in modules if m == heavy or m.startswith(f"{heavy}.")}, heavy
    assert modules & _adapter_modules() == NAMED_ADAPTERS


def test_every_command_is_found_under_its_own_name() -> None:
    """Each lazily imported command is the one its name says, and help lists every one."""
    context = click.Context(cli)

    assert cli.list_commands(context) == sorted(COMMANDS)
    for name in COMMANDS:
        command = cli.get_command(context, name)
        assert command is not None and command.name == name, name
    assert cli.get_command(context, "nope") is None
