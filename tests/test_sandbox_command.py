"""``rotator sandbox`` as a user runs it: from any directory, its closing commands, ``--keep``.

These run the real command (a subprocess, the servers it starts, the wall
clock it demonstrates on: the one place rotator waits in real time) for a few
seconds each.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client, config

from rotator.errors import ConfigError
from rotator.sandbox.postgresql.server import server_binaries
from rotator.sandbox.run import MARKER, prepare_workdir
from tests.conftest import empty_postgres

#: What a user's shell could hold that would point the sandbox or rotator elsewhere.
FOREIGN = ("ROTATOR_", "AWS_", "VAULT_", "AZURE_", "IDENTITY_", "KUBECONFIG", "REQUESTS_CA")
#: Seconds the sandbox may take to start every server and run its passes.
START_TIMEOUT = 180


def _clean_env(**extra: str) -> dict[str, str]:
    """Return this process's environment without anything naming a server or a journal."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN)}
    return env | extra


def _rotator(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``rotator ARGS`` as a user would, in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "rotator", *args],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
    )


def test_the_sandbox_runs_anywhere_and_its_closing_commands_work_as_printed(
    tmp_path: Path,
) -> None:
    """From a directory with no schedules/, the demo runs; what it prints last runs elsewhere."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    demo = _rotator("sandbox", "--duration", "2", cwd=tmp_path, env=_clean_env())
    assert demo.returncode == 0, demo.stderr[-3000:]
    kept = tmp_path / "rotator-sandbox"
    assert (kept / "rotator.db").is_file() and (kept / "policies" / "demo.yaml").is_file()
    with_postgresql = server_binaries() is not None or os.environ.get("CI") == "true"
    if with_postgresql:
        # A local PostgreSQL could be started: its rotation ran, and its log was kept.
        assert (kept / "policies" / "postgresql.yaml").is_file(), demo.stderr[-3000:]
        sent = re.findall(r"PASSWORD '([^']*)'", (kept / "postgresql.log").read_text())
        assert sent and all(p.startswith("SCRAM-SHA-256$4096:") for p in sent), sent
    printed = [
        line.strip() for line in demo.stdout.splitlines() if line.strip().startswith("rotator ")
    ]
    assert [shlex.split(c)[:3] for c in printed] == [
        ["rotator", "status", "--config"],
        ["rotator", "audit", "verify"],
    ]
    for command in printed:
        after = _rotator(*shlex.split(command)[1:], cwd=elsewhere, env=_clean_env())
        assert after.returncode == 0, (command, after.stdout, after.stderr)
    status = _rotator(*shlex.split(printed[0])[1:], cwd=elsewhere, env=_clean_env()).stdout
    assert "demo/apim-partner-key" in status
    assert ("demo/postgres-app" in status) is with_postgresql
    assert "export " not in demo.stdout  # credentials only with --keep


def test_keep_leaves_every_server_up_for_the_shell_it_prints_until_sigterm(
    tmp_path: Path,
) -> None:
    """``--keep``: the printed exports reach every server; SIGTERM stops them, exit 0."""
    workdir = tmp_path / "play"
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rotator",
            "sandbox",
            "--duration",
            "1",
            "--keep",
            "--workdir",
            str(workdir),
        ],
        cwd=tmp_path,
        env=_clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert demo.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(x) for x in demo.stdout], daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        exports: dict[str, str] = {}
        while True:
            line = lines.get(timeout=START_TIMEOUT)
            if line.startswith("# Serving until"):
                break
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                [exports[name]] = shlex.split(value)
        for name in (
            "AWS_ENDPOINT_URL",
            "VAULT_ADDR",
            "VAULT_TOKEN",
            "AZURE_KEYVAULT_URL",
            "REQUESTS_CA_BUNDLE",
            "IDENTITY_ENDPOINT",
            "ROTATOR_AZURE_VERIFY_CHALLENGE_RESOURCE",
            "KUBECONFIG",
            "ROTATOR_CONFIG",
            "ROTATOR_STATE",
        ):
            assert name in exports, name
        assert exports["ROTATOR_AZURE_VERIFY_CHALLENGE_RESOURCE"] == "false"
        shell = _clean_env(**exports)
        elsewhere = tmp_path / "shell"
        elsewhere.mkdir()
        # Every store, issuer and target of the demo (AWS, Vault, Key Vault, APIM) answers.
        check = _rotator("check", "--json", cwd=elsewhere, env=shell)
        verdicts = {(f["secret"], f["check"]): f["verdict"] for f in json.loads(check.stdout)}
        assert "failed" not in verdicts.values(), check.stdout + check.stderr
        # moto cannot simulate its identity's IAM policies: Secrets Manager write access
        # stays unknown, and check exits 1 for what it could not prove.
        unknown = {key for key, verdict in verdicts.items() if verdict == "unknown"}
        assert unknown and all(check == "store write" for _, check in unknown), unknown
        assert check.returncode == 1
        rotated = _rotator("rotate", "demo/apim-partner-key", cwd=elsewhere, env=shell)
        assert rotated.returncode == 0, rotated.stdout + rotated.stderr
        with_postgresql = server_binaries() is not None or os.environ.get("CI") == "true"
        if with_postgresql:
            # Alternating users on the sandbox's PostgreSQL: the clone is made and set.
            rotated = _rotator("rotate", "demo/postgres-app", cwd=elsewhere, env=shell)
            assert rotated.returncode == 0, rotated.stdout + rotated.stderr
            history = _rotator("history", "demo/postgres-app", cwd=elsewhere, env=shell).stdout
            assert "postgresql:demo_app|demo_app_clone@127.0.0.1" in history, history
            assert "minted demo_app_clone" in history, history
        # The Kubernetes emulator holds the sample Deployment and its Secret.
        api = config.new_client_from_config(config_file=exports["KUBECONFIG"])
        deployment = client.AppsV1Api(api).read_namespaced_deployment("demo-api", "demo")
        assert deployment.metadata.name == "demo-api"
        assert client.CoreV1Api(api).read_namespaced_secret("demo-api", "demo").data["token"]
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=60) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    with pytest.raises(OSError):
        urllib.request.urlopen(exports["AWS_ENDPOINT_URL"], timeout=5)
    assert (workdir / "rotator.db").is_file()
    if with_postgresql:
        log = (workdir / "postgresql.log").read_text()
        assert 'CREATE ROLE "demo_app_clone" WITH LOGIN PASSWORD \'SCRAM-SHA-256$' in log
        sent = re.findall(r"PASSWORD '([^']*)'", log)
        assert all(p.startswith("SCRAM-SHA-256$4096:") for p in sent), sent


def test_a_previous_sandbox_directory_is_emptied_and_anything_else_refused(
    tmp_path: Path,
) -> None:
    """A rerun starts afresh in its own directory and never empties one it did not make."""
    ours = prepare_workdir(tmp_path / "ours")
    (ours / "rotator.db").write_text("the last demo's journal")
    assert prepare_workdir(ours) == ours
    assert sorted(p.name for p in ours.iterdir()) == [MARKER]
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match=r"theirs: not empty and not a sandbox's directory"):
        prepare_workdir(theirs)
    assert (theirs / "notes.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="not a directory"):
        prepare_workdir(tmp_path / "file")


@pytest.mark.postgres
def test_a_postgresql_journal_needs_its_key_file_before_any_server_starts(
    tmp_path: Path,
) -> None:
    """--state postgresql:// without --key-file: exit 2 at once; with it, the demo runs."""
    url = empty_postgres()
    refused = _rotator("sandbox", "--state", url, "--duration", "1", cwd=tmp_path, env=_clean_env())
    assert refused.returncode == 2
    assert "needs its key file named" in refused.stderr
    assert not (tmp_path / "rotator-sandbox").exists()  # no server was started for nothing
    key = tmp_path / "journal.key"
    key.write_text("cd" * 32 + "\n")
    key.chmod(0o600)
    demo = _rotator(
        "sandbox",
        "--state",
        url,
        "--key-file",
        str(key),
        "--duration",
        "2",
        cwd=tmp_path,
        env=_clean_env(),
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    printed = [line for line in demo.stdout.splitlines() if line.strip().startswith("rotator ")]
    assert printed and all(f"--key-file {key}" in line for line in printed)
