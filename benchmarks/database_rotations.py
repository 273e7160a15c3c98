"""Alternating-users rotations of ``postgresql-password`` through the engine, on a real PostgreSQL.

Prints figures; asserts nothing about time. Run (PostgreSQL running, as in
``.ci/run``; the URL's user is the admin and needs CREATEROLE)::

    ROTATOR_TEST_POSTGRES_URL=postgresql://rotator:rotator@127.0.0.1:5432/rotator_test \\
        .venv/bin/python benchmarks/database_rotations.py            # --count 200

A fresh role ``bench_<hex>`` is made with a password, and its credential is
stored, as the AWS RDS JSON object, in Secrets Manager (in-process moto, as
in tests/databases/test_postgresql_rotation.py). One policy rotates it with
``strategy: alternating-users`` (grace 1h); the engine runs in this process
with an injected clock, a SQLite journal and rotator's Secrets Manager rate
limits off (their pacing is ``benchmarks/throughput.py``'s subject). Then,
``--count`` times:

1. ``Engine.rotate`` (inventory, mint, store as pending, the server learns
   the password, login with it, promote): the first one creates the clone,
   the next ones set the password of the user consumers do not hold;
2. the clock moves past the grace deadline and ``Engine.run_once`` revokes
   the other user (``revoke_by: random-password``).

Each phase is timed with ``time.perf_counter`` (median, p95, min, max; and
the median of the first and of the last tenth of the rotations, since the
engine checks a secret's journal rows, its whole history, before it acts on
it), and the requests every adapter reports to ``Runtime.on_request`` (which
the engine is given as ``on_request=``) are counted per rotation. Every
PostgreSQL operation of the issuer opens exactly one connection, and closes
it (``providers/databases/postgresql.py``: one ``_connect`` per method, each
reported once), so PostgreSQL requests are connections opened. A rotation
that is not ``ok``, or a pair that does not end with the live user logging
in and the other refused, is flagged, and the script exits 1 once the
figures are printed. Last, 50 connections are opened one after the other as
the live user, as the issuer opens them here (``sslmode=prefer``, SCRAM), to
show what one costs. The role, its clone and their sessions are dropped at
the end.

``make test`` runs it once with ``--count 2``
(tests/databases/test_rotation_benchmark.py), which checks the counts.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from threading import Lock
from typing import Any
from urllib.parse import urlsplit

import boto3
import psycopg
from moto import mock_aws
from psycopg import sql

from rotator.engine.report import Result
from rotator.engine.runner import Engine
from rotator.journal.journal import Journal
from rotator.lifecycle import State
from rotator.output import logs
from rotator.policy.loader import load_policies

SECRET = "bench/db"
GRACE = timedelta(hours=1)
#: The admin credential's variable (the test server's URL, as the policy reads it).
ADMIN_ENV = "BENCH_DB_ADMIN"


@dataclass
class InjectedClock:
    """The engine's clock: moved by this script, and by the engine's waits (never slept)."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Requests:
    """Every request the adapters report (``Runtime.on_request``), in order, thread-safe."""

    seen: list[tuple[str, str, str]] = field(default_factory=list)
    lock: Lock = field(default_factory=Lock)

    def __call__(self, provider: str, operation: str, outcome: str) -> None:
        with self.lock:
            self.seen.append((provider, operation, outcome))

    def since(self, start: int) -> list[tuple[str, str, str]]:
        """Return the requests reported after the first ``start``."""
        with self.lock:
            return self.seen[start:]


@contextmanager
def bench_role(url: str) -> Iterator[tuple[str, str]]:
    """Make a login role with a random password; drop it and its clone (and sessions) after."""
    role = f"bench_{secrets.token_hex(4)}"
    password = secrets.token_hex(16)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
        try:
            yield role, password
        finally:
            for name in (f"{role}_clone", role):
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                    [name],
                )
                admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def connect(url: str, user: str, password: str) -> psycopg.Connection[Any]:
    """Open a connection as ``user`` as the issuer does on loopback (``sslmode=prefer``)."""
    parts = urlsplit(url)
    return psycopg.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        dbname=parts.path.lstrip("/"),
        user=user,
        password=password,
        connect_timeout=5,
        sslmode="prefer",
    )


def logs_in(url: str, user: str, password: str) -> bool:
    """Tell whether ``user`` logs in with ``password`` on a new connection."""
    try:
        connect(url, user, password).close()
    except psycopg.OperationalError:
        return False
    return True


def connection_cost(url: str, login: dict[str, Any], times: int = 50) -> list[float]:
    """Time opening (and closing) ``times`` connections as ``login``, one after the other."""
    taken: list[float] = []
    for _ in range(times):
        began = time.perf_counter()
        connect(url, login["username"], login["password"]).close()
        taken.append(time.perf_counter() - began)
    return taken


def policy(url: str, role: str) -> str:
    """Return the policy file: one alternating-users secret, grace 1h."""
    parts = urlsplit(url)
    return f"""secrets:
  - name: {SECRET}
    store: {{provider: aws-secretsmanager, secret_id: {SECRET}}}
    issuer:
      kind: postgresql-password
      strategy: alternating-users
      host: {parts.hostname}
      port: {parts.port or 5432}
      database: {parts.path.lstrip("/")}
      username: {role}
      admin: {{env: {ADMIN_ENV}}}
    schedule: {{every: 30d}}
    grace: {int(GRACE.total_seconds())}s
"""


def current(sm: Any) -> dict[str, Any]:
    """Return the store's current value (read with this script's own client: not counted)."""
    value: dict[str, Any] = json.loads(
        sm.get_secret_value(SecretId=SECRET, VersionStage="AWSCURRENT")["SecretString"]
    )
    return value


def nearest_rank(values: Sequence[float], share: float) -> float:
    """Return the nearest-rank percentile (``share`` of 1) of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def spread(label: str, seconds: Sequence[float]) -> str:
    """Return one line: median, p95, min and max in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return (
        f"{label:<28} median {statistics.median(ms):7.1f} ms   p95 {nearest_rank(ms, 0.95):7.1f} ms"
        f"   min {min(ms):7.1f} ms   max {max(ms):7.1f} ms"
    )


def run(url: str, count: int, workdir: Path) -> bool:
    """Rotate ``count`` times, each followed by its grace end; print the figures; True if sound."""
    sound = True
    requests = Requests()
    clock = InjectedClock(datetime.now(UTC).replace(microsecond=0))  # moto stamps real time
    with bench_role(url) as (role, password), mock_aws():
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        parts = urlsplit(url)
        first = {
            "engine": "postgres",
            "host": parts.hostname,
            "port": parts.port or 5432,
            "username": role,
            "password": password,
            "dbname": parts.path.lstrip("/"),
        }
        sm.create_secret(Name=SECRET, SecretString=json.dumps(first))
        path = workdir / "policies.yaml"
        path.write_text(policy(url, role))
        journal = Journal(f"sqlite:///{workdir / 'journal.db'}", clock)
        engine = Engine(
            load_policies(path), journal, clock=clock, sleep=clock.sleep, on_request=requests
        )
        rotations: list[float] = []
        grace_ends: list[float] = []
        connections: list[int] = []
        store_calls: list[int] = []
        operations: Counter[str] = Counter()
        previous: dict[str, Any] = first
        for number in range(1, count + 1):
            previous = current(sm)
            start = len(requests.seen)
            began = time.perf_counter()
            [rotated] = engine.rotate(SECRET).outcomes
            promoted = time.perf_counter()
            clock.now += GRACE
            ended = time.perf_counter()
            revoked = [o for o in engine.run_once().outcomes if o.secret == SECRET]
            done = time.perf_counter()
            rotations.append(promoted - began)
            grace_ends.append(done - ended)
            made = requests.since(start)
            postgres = [op for provider, op, _ in made if provider == "postgresql"]
            connections.append(len(postgres))
            operations.update(postgres)
            store_calls.append(sum(1 for provider, _, _ in made if provider.startswith("aws-")))
            states = [o.state for o in revoked]
            if rotated.result is not Result.OK or states != [State.DONE]:
                sound = False
                print(
                    f"rotation {number}: {rotated.result.value} ({rotated.message}); "
                    f"grace end: {[s.value for s in states]}",
                    flush=True,
                )
            clock.now += timedelta(minutes=1)
        live = current(sm)
        revoked_ok = previous["username"] != live["username"] and not logs_in(
            url, previous["username"], previous["password"]
        )
        if not logs_in(url, live["username"], live["password"]) or not revoked_ok:
            sound = False
            print("the live user does not log in, or the revoked one still does", flush=True)
        journal.close()
        opening = connection_cost(url, live)
    errors = sum(1 for _, _, outcome in requests.seen if outcome != "ok")
    print(f"{count} rotations, each followed by its grace end:")
    print(spread("rotation (mint to promote)", rotations))
    print(spread("grace end (revoke)", grace_ends))
    both = [a + b for a, b in zip(rotations, grace_ends, strict=True)]
    print(spread("both", both))
    tenth = max(1, count // 10)
    print(
        f"both, first {tenth} / last {tenth}: median "
        f"{statistics.median(both[:tenth]) * 1000:.1f} / "
        f"{statistics.median(both[-tenth:]) * 1000:.1f} ms"
    )
    print(spread("one connection opened", opening))
    print(
        f"PostgreSQL connections per rotation: median {statistics.median(connections):g}, "
        f"min {min(connections)}, max {max(connections)} "
        f"({sum(connections)} in all: "
        + ", ".join(f"{op} {n}" for op, n in sorted(operations.items()))
        + ")"
    )
    print(
        f"Secrets Manager requests per rotation: median {statistics.median(store_calls):g}, "
        f"min {min(store_calls)}, max {max(store_calls)}; requests not ok: {errors}"
    )
    return sound and errors == 0


def main() -> None:
    """Parse the options, run the rotations, print the figures; exit 1 if any was not sound."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    opts = parser.parse_args()
    url = os.environ.get("ROTATOR_TEST_POSTGRES_URL")
    if not url:
        sys.exit("set ROTATOR_TEST_POSTGRES_URL (see .ci/run)")
    os.environ[ADMIN_ENV] = url
    os.environ["ROTATOR_RATE_LIMITS"] = "secretsmanager.write=0,secretsmanager.read=0"
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(name, None)
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    logs.configure("console", "warning", sys.stderr)
    with psycopg.connect(url) as conn:
        server = conn.execute("SHOW server_version").fetchone()
    print(
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"PostgreSQL {server[0] if server else '?'} on this machine; moto in-process"
    )
    with tempfile.TemporaryDirectory() as tmp:
        sound = run(url, opts.count, Path(tmp))
    sys.exit(0 if sound else 1)


if __name__ == "__main__":
    main()
