"""Rotations per second with 1 and 3 service replicas on one PostgreSQL journal.

Prints figures; asserts nothing about time. Run (PostgreSQL running, as in
``.ci/run``)::

    ROTATOR_TEST_POSTGRES_URL=postgresql://rotator:rotator@127.0.0.1:5432/rotator_test \\
        .venv/bin/python benchmarks/replicas.py --count 300 --replicas 1 3

For each replica count: moto_server is reset and ``--count`` secrets are
created; the journal's tables are dropped and ``rotator db upgrade`` run;
then N ``rotator run`` services start at once (their clock pinned to 2099,
so every secret is due: the services run through the test harness,
``python -m tests.harness`` with ``ROTATOR_TEST_NOW``, since the installed
``rotator`` cannot be given another "now") and the script polls the journal until
every secret has a promoted rotation. Reported: seconds from the spawn of
the services to the last promotion, rotations per second, and a check that
every secret was rotated exactly once. ``--no-rate-limits`` turns off
rotator's own Secrets Manager limits (45 writes/s per process), which
otherwise bound each replica.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import boto3
import sqlalchemy as sa

from rotator.journal.schema import metadata, schema_migrations
from rotator.sandbox.aws.sandbox import AwsSandbox

ROOT = Path(__file__).resolve().parent.parent


def journal_engine(url: str) -> sa.Engine:
    """Return an engine on the journal at ``url`` (``postgresql://`` is read with psycopg 3)."""
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def fresh_journal(url: str, env: dict[str, str], workdir: Path) -> Path:
    """Drop the journal's tables at ``url``, migrate it anew; return its new key file.

    ``env`` is the environment ``rotator db upgrade`` runs in (``ROTATOR_STATE`` set).
    """
    engine = journal_engine(url)
    with engine.begin() as conn:
        metadata.drop_all(conn)
        schema_migrations.drop(conn, checkfirst=True)
    engine.dispose()
    # No command makes the key of a PostgreSQL journal: made here, once per fresh journal,
    # before any process starts, and shared by every replica (docs/operations.md).
    key = workdir / "fingerprint.key"
    key.write_text(secrets.token_hex(32) + "\n")
    key.chmod(0o600)
    subprocess.run(
        [sys.executable, "-m", "rotator", "db", "upgrade"],
        env={**env, "ROTATOR_KEY_FILE": str(key)},
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return key


def _promoted(url: str) -> tuple[int, int]:
    with journal_engine(url).connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT count(DISTINCT secret), count(*) FROM rotations "
                "WHERE promoted_at IS NOT NULL"
            )
        ).one()
    return int(row[0]), int(row[1])


def run(url: str, env: dict[str, str], count: int, replicas: int, workdir: Path) -> None:
    """Time ``replicas`` services rotating ``count`` due secrets; print one line."""
    request = urllib.request.Request(env["AWS_ENDPOINT_URL"] + "/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()
    sm = boto3.client(
        "secretsmanager",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    for i in range(count):
        sm.create_secret(Name=f"s{i:04d}", SecretString=f"initial-value-{i:05d}")
    config = workdir / "policies.yaml"
    config.write_text(
        "defaults: {schedule: {every: 1d}, grace: 1h}\nsecrets:\n"
        + "".join(
            f"  - name: s{i:04d}\n"
            f"    store: {{provider: aws-secretsmanager, secret_id: s{i:04d}}}\n"
            for i in range(count)
        )
    )
    full = {**os.environ, **env, "ROTATOR_CONFIG": str(config), "ROTATOR_STATE": url}
    full.pop("ROTATOR_TEST_FAULT", None)
    full["ROTATOR_KEY_FILE"] = str(fresh_journal(url, full, workdir))
    pinned = {
        **full,
        "ROTATOR_TEST_NOW": "2099-01-01T00:00:00+00:00",
        "PYTHONPATH": str(ROOT),  # where ``tests.harness`` is found
    }
    log = (workdir / f"replicas-{replicas}.log").open("w")
    began = time.monotonic()
    services = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.harness", "run", "--reconcile", "1", "--listen", ""],
            env=pinned,
            stdout=log,
            stderr=log,
        )
        for _ in range(replicas)
    ]
    tick = threading.Event()
    try:
        while _promoted(url)[0] < count and time.monotonic() - began < 600:
            tick.wait(0.1)
        took = time.monotonic() - began
    finally:
        for service in services:
            service.send_signal(signal.SIGTERM)
        codes = [service.wait(timeout=60) for service in services]
    secrets_done, rotations = _promoted(url)
    print(
        f"{replicas} replica(s): {count} secrets in {took:.1f} s = {count / took:.1f} rotations/s; "
        f"{secrets_done} secrets promoted by {rotations} rotations; exit codes {codes}",
        flush=True,
    )


def main() -> None:
    """Parse the options and run each replica count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--no-rate-limits", action="store_true")
    opts = parser.parse_args()
    url = os.environ.get("ROTATOR_TEST_POSTGRES_URL")
    if not url:
        sys.exit("set ROTATOR_TEST_POSTGRES_URL (see .ci/run)")
    sandbox = AwsSandbox()
    with tempfile.TemporaryDirectory() as tmp:
        env = sandbox.start(Path(tmp))
        if opts.no_rate_limits:
            env["ROTATOR_RATE_LIMITS"] = "secretsmanager.write=0,secretsmanager.read=0"
        print(
            f"{os.cpu_count()} CPUs; moto_server and PostgreSQL on this machine; rate limits "
            f"{'off' if opts.no_rate_limits else 'default (45 Secrets Manager writes/s a process)'}"
        )
        try:
            for replicas in opts.replicas:
                run(url, env, opts.count, replicas, Path(tmp))
        finally:
            sandbox.stop()


if __name__ == "__main__":
    main()
