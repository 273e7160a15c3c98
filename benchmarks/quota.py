"""Quota use: rotator behind Secrets Manager's write quota of 50 a second per account and Region.

Prints figures; asserts nothing about time. Run::

    .venv/bin/python benchmarks/quota.py --secrets 1000 --regions 1
    .venv/bin/python benchmarks/quota.py --secrets 1000 --regions 4
    ROTATOR_TEST_POSTGRES_URL=postgresql://rotator:rotator@127.0.0.1:5432/rotator_test \\
        .venv/bin/python benchmarks/quota.py --secrets 1000 --replicas 3 --oneshots 2

moto_server is started with :class:`rotator.sandbox.aws.sandbox.AwsSandbox`,
and rotator talks to it through a :class:`tests.throttle.ThrottlingProxy` in
this process enforcing :data:`tests.throttle.SECRETS_MANAGER_WRITES`: 50
writes a second per account and Region (PutSecretValue, UpdateSecret,
UpdateSecretVersionStage and the replication calls combined), in bursts of
one second's worth; a write beyond it is answered HTTP 400
``ThrottlingException``, as AWS does. Reads are not limited. ``--secrets``
secrets are created straight in moto, spread in turn over ``--regions``
Regions, with one policy each (``every: 1d``, ``grace: 1h``, random issuer).

``--quota N`` lowers the proxy's quota to N writes a second per account
and Region, and sets ``ROTATOR_RATE_LIMITS=secretsmanager.write=N``, as an
operator whose account allows less would: at 50 a second this machine's
CPUs (``moto_server`` answers about 90 writes a second on 2 vCPUs), not the
quota, bound a run over four Regions, and a lower quota shows whether the
Regions proceed side by side.

Then ``--replicas`` services (``rotator run --reconcile 1``) and
``--oneshots`` one-shot runs (``rotator run --once --json``) start at once,
with rotator's own defaults: its built-in ``ROTATOR_RATE_LIMITS`` and
concurrency (any ``ROTATOR_RATE_LIMITS`` or ``ROTATOR_CONCURRENCY`` in the
caller's environment is ignored; ``--concurrency N`` sets both
``--concurrency N`` and ``ROTATOR_CONCURRENCY=per-provider=N``). They run
through the test harness (``python -m tests.harness`` with
``ROTATOR_TEST_NOW``, its clock pinned 36 hours after the secrets were made:
every secret is due, none overdue, which would raise an alert), since
the installed ``rotator`` cannot be given another "now". One process uses a
SQLite journal in a temporary directory; several share the PostgreSQL
journal at ``ROTATOR_TEST_POSTGRES_URL`` (its tables dropped, ``rotator db
upgrade`` run, one key file for all), as ``benchmarks/replicas.py`` does.
The run ends when every one-shot run has exited and, with services, when
the journal holds a promoted rotation for every secret (services are then
stopped with SIGTERM), or at ``--deadline``.

Reported, per Region: the writes the proxy admitted, the seconds from the
first to the last of them, their rate and its share of the quota (bursts
let a short run pass 100%), and the writes throttled. Then the journal's
and the store's view: rotations promoted, not promoted, secrets with a new
``AWSCURRENT``, secrets with more than two versions. The last line is::

    quota used P% failed F throttled T% double D

P: the lowest Region's share of the quota (so ``≥ 95%`` holds in every
Region); F: rotations the journal records as never promoted, plus secrets
whose ``AWSCURRENT`` is still the seeded version with no such rotation,
plus outcomes ``failed`` or ``attention`` in the one-shot runs' JSON
summaries (for secrets without such a rotation; the first ten outcomes
other than ``ok`` and ``skipped`` are printed);
T: throttled writes ÷ every write request that reached the proxy; D:
secrets rotated more than once (two promoted rotations in the journal, or
more than two versions in the store). The script exits 1 after printing if
F or D is not 0.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import sqlalchemy as sa
from policies import as_installed  # benchmarks/policies.py, beside this script
from replicas import fresh_journal, journal_engine  # benchmarks/replicas.py, beside this script

from rotator.sandbox.aws.sandbox import AwsSandbox

ROOT = Path(__file__).resolve().parent.parent
# The throttling proxy and the test harness live in tests/, which is no installed
# package: a script run as ``python benchmarks/quota.py`` finds it at the root.
sys.path.insert(0, str(ROOT))

from tests import harness  # noqa: E402
from tests.throttle import SECRETS_MANAGER_WRITES, Quota, ThrottlingProxy  # noqa: E402

#: The Regions secrets are spread over, in this order.
REGIONS = (
    "us-east-1",
    "eu-west-1",
    "ap-southeast-2",
    "us-west-2",
    "eu-central-1",
    "ap-northeast-1",
    "sa-east-1",
    "ca-central-1",
)
#: How far after seeding rotator's clock is pinned: past the daily schedule,
#: short of twice it (overdue).
AHEAD = timedelta(hours=36)
#: One-shot results that count as failed rotations (``rotator.engine.report.Result``).
FAILURES = ("failed", "attention")
#: Variables of the caller's environment that would change what is measured.
IGNORED = ("ROTATOR_RATE_LIMITS", "ROTATOR_CONCURRENCY", harness.NOW, harness.FAULT)


@dataclass
class Seeded:
    """One secret as created: its Region and first version."""

    name: str
    region: str
    version: str


def seed(endpoint: str, env: dict[str, str], count: int, regions: int) -> list[Seeded]:
    """Create ``count`` secrets straight in moto, in turn over the first ``regions`` Regions."""
    clients = {region: _client(endpoint, env, region) for region in REGIONS[:regions]}
    made = []
    for i in range(count):
        name, region = f"q{i:05d}", REGIONS[i % regions]
        created = clients[region].create_secret(Name=name, SecretString=secrets.token_urlsafe(18))
        made.append(Seeded(name, region, created["VersionId"]))
    return made


def _client(endpoint: str, env: dict[str, str], region: str) -> Any:
    return boto3.client(
        "secretsmanager",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def write_policies(path: Path, seeded: list[Seeded]) -> None:
    """Write one policy per secret, each naming its Region."""
    lines = ["defaults: {schedule: {every: 1d}, grace: 1h}", "secrets:"]
    for secret in seeded:
        lines += [
            f"  - name: {secret.name}",
            f"    store: {{provider: aws-secretsmanager, secret_id: {secret.name}, "
            f"region: {secret.region}}}",
            "    issuer: {kind: random, length: 24}",
        ]
    path.write_text("\n".join(lines) + "\n")


def journal_rotations(url: str) -> list[tuple[str, bool]]:
    """Return (secret, promoted) for every rotation the journal records."""
    engine = journal_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("rotations"):
                return []  # stopped (--deadline) before the journal was made
            rows = conn.execute(sa.text("SELECT secret, promoted_at IS NOT NULL FROM rotations"))
            return [(str(secret), bool(promoted)) for secret, promoted in rows]
    finally:
        engine.dispose()


def promoted_secrets(url: str) -> int:
    """Return how many secrets have a promoted rotation in the journal."""
    return len({secret for secret, promoted in journal_rotations(url) if promoted})


def store_versions(endpoint: str, env: dict[str, str], seeded: list[Seeded]) -> dict[str, int]:
    """Return each secret's version count, or -1 where AWSCURRENT is still the seeded version."""
    clients = {s.region: _client(endpoint, env, s.region) for s in seeded}
    found = {}
    for secret in seeded:
        versions = clients[secret.region].list_secret_version_ids(
            SecretId=secret.name, IncludeDeprecated=True, MaxResults=100
        )["Versions"]
        current = [v["VersionId"] for v in versions if "AWSCURRENT" in v.get("VersionStages", ())]
        found[secret.name] = -1 if current == [secret.version] else len(versions)
    return found


def summary_path(workdir: Path, oneshot: int) -> Path:
    """Where one-shot run number ``oneshot`` writes its JSON summary."""
    return workdir / f"oneshot-{oneshot}.json"


def oneshot_outcomes(workdir: Path, oneshots: int) -> list[tuple[str, str, str]]:
    """Return (secret, result, message) of every outcome not ``ok`` in the one-shot summaries.

    A summary that is not JSON (the run died) counts as one ``failed`` outcome.
    """
    found = []
    for i in range(oneshots):
        try:
            outcomes = json.loads(summary_path(workdir, i).read_text())
        except ValueError:
            found.append(("", "failed", f"one-shot run {i} wrote no JSON summary"))
            continue
        found += [(o["secret"], o["result"], o["message"]) for o in outcomes if o["result"] != "ok"]
    return found


def logged_problems(log: Path) -> Counter[str]:
    """Count the warnings and errors rotator logged (JSON lines), by level and event."""
    found: Counter[str] = Counter()
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("warning", "error"):
            # An alert's kind is in its own field (rotator/engine/alerts.py).
            kind = f" {entry['alert']}" if "alert" in entry else ""
            found[f"{entry['level']} {entry.get('event', '?')}{kind}"] += 1
    return found


def run_processes(
    env: dict[str, str],
    state: str,
    opts: argparse.Namespace,
    workdir: Path,
    count: int,
) -> tuple[float, list[int], list[int]]:
    """Start the services and one-shot runs; return the wall seconds and their exit codes."""
    pinned = harness.environment(env, now=datetime.now(UTC) + AHEAD)
    concurrency = [] if opts.concurrency is None else ["--concurrency", str(opts.concurrency)]
    log = (workdir / "rotator.log").open("w")
    began = time.monotonic()
    services = [
        subprocess.Popen(
            harness.command(
                "run", "--reconcile", "1", "--listen", "", "--log-format", "json", *concurrency
            ),
            env=pinned,
            stdout=log,
            stderr=log,
        )
        for _ in range(opts.replicas)
    ]
    summaries = [summary_path(workdir, i).open("w") for i in range(opts.oneshots)]
    oneshots = [
        subprocess.Popen(
            harness.command("run", "--once", "--json", "--log-format", "json", *concurrency),
            env=pinned,
            stdout=summary,
            stderr=log,
        )
        for summary in summaries
    ]
    tick = threading.Event()
    try:
        while time.monotonic() - began < opts.deadline:
            done = all(p.poll() is not None for p in oneshots)
            if done and (not services or promoted_secrets(state) >= count):
                break
            tick.wait(0.2)
        took = time.monotonic() - began
        if took >= opts.deadline:
            print(f"deadline of {opts.deadline:g} s reached: processes stopped", flush=True)
    finally:
        for process in (*services, *oneshots):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        service_codes = [p.wait(timeout=60) for p in services]
        oneshot_codes = [p.wait(timeout=60) for p in oneshots]
        for sink in (log, *summaries):
            sink.close()
    return took, oneshot_codes, service_codes


def main() -> int:
    """Seed, run, measure; print the figures and return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets", type=int, default=1000)
    parser.add_argument("--regions", type=int, default=1, choices=range(1, len(REGIONS) + 1))
    parser.add_argument("--replicas", type=int, default=0, help="rotator run services")
    parser.add_argument("--oneshots", type=int, default=1, help="rotator run --once runs")
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument(
        "--quota", type=float, default=SECRETS_MANAGER_WRITES.rate, help="writes/s per Region"
    )
    parser.add_argument("--deadline", type=float, default=900.0, help="seconds")
    opts = parser.parse_args()
    if opts.secrets < 1 or opts.replicas < 0 or opts.oneshots < 0:
        parser.error("--secrets must be at least 1, --replicas and --oneshots at least 0")
    if opts.concurrency is not None and opts.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    if opts.replicas + opts.oneshots < 1:
        parser.error("nothing would rotate: give --replicas or --oneshots")
    shared = opts.replicas + opts.oneshots > 1
    url = os.environ.get("ROTATOR_TEST_POSTGRES_URL", "")
    if shared and not url:
        parser.error("several processes share a PostgreSQL journal: set ROTATOR_TEST_POSTGRES_URL")

    if not opts.quota > 0:
        parser.error("--quota must be positive")
    quota = replace(SECRETS_MANAGER_WRITES, rate=opts.quota)
    sandbox = AwsSandbox()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        aws = sandbox.start(workdir)
        try:
            with ThrottlingProxy(aws["AWS_ENDPOINT_URL"], quotas=[quota]) as proxy:
                return measure(opts, aws, proxy, quota, workdir, url if shared else "")
        finally:
            sandbox.stop()


def measure(
    opts: argparse.Namespace,
    aws: dict[str, str],
    proxy: ThrottlingProxy,
    quota: Quota,
    workdir: Path,
    postgres: str,
) -> int:
    """Run rotator through ``proxy`` enforcing ``quota``; print figures, return the exit code."""
    moto = aws["AWS_ENDPOINT_URL"]
    journal = "PostgreSQL" if postgres else "SQLite"
    limits = "default" if quota.rate == SECRETS_MANAGER_WRITES.rate else "quota's"
    print(
        f"{os.cpu_count()} CPUs; {opts.secrets} secrets in {opts.regions} Region(s); "
        f"{opts.replicas} service(s) and {opts.oneshots} one-shot run(s) on one {journal} "
        f"journal; rotator's {limits} rate limits, concurrency "
        f"{'default' if opts.concurrency is None else opts.concurrency}; quota "
        f"{quota.rate:g} writes/s per account and Region",
        flush=True,
    )
    began = time.monotonic()
    seeded = seed(moto, aws, opts.secrets, opts.regions)
    print(f"seeded in {time.monotonic() - began:.1f} s", flush=True)
    config = workdir / "policies.yaml"
    write_policies(config, seeded)
    env = {k: v for k, v in as_installed(os.environ).items() if k not in IGNORED}
    env.update(aws)
    env.update({"AWS_ENDPOINT_URL": proxy.url, "ROTATOR_CONFIG": str(config)})
    if quota.rate != SECRETS_MANAGER_WRITES.rate:
        env["ROTATOR_RATE_LIMITS"] = f"secretsmanager.write={quota.rate:g}"
    if opts.concurrency is not None:
        env["ROTATOR_CONCURRENCY"] = f"per-provider={opts.concurrency}"
    if postgres:
        env["ROTATOR_STATE"] = postgres
        env["ROTATOR_KEY_FILE"] = str(fresh_journal(postgres, env, workdir))
        state = postgres
    else:
        state = f"sqlite:///{workdir / 'rotator.db'}"
        env["ROTATOR_STATE"] = state

    took, oneshot_codes, service_codes = run_processes(env, state, opts, workdir, opts.secrets)
    print(
        f"run: {took:.1f} s; one-shot exit codes {oneshot_codes}; "
        f"service exit codes {service_codes}",
        flush=True,
    )

    shares, admitted, throttled = [], 0, 0
    usage = proxy.usage()
    for region in REGIONS[: opts.regions]:
        uses = [use for m, use in usage.items() if m.region == region and m.quota == quota.name]
        stamps = sorted(t for use in uses for t in use.admitted_at)
        refused = sum(use.throttled for use in uses)
        span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
        rate = len(stamps) / span if span > 0 else 0.0
        shares.append(rate / quota.rate)
        admitted += len(stamps)
        throttled += refused
        print(
            f"{region}: {len(stamps)} writes admitted in {span:.1f} s (first to last) = "
            f"{rate:.1f} writes/s = {100 * rate / quota.rate:.1f}% of the quota; "
            f"{refused} throttled",
            flush=True,
        )

    rotations = journal_rotations(state)
    promoted = Counter(secret for secret, done in rotations if done)
    unpromoted = [secret for secret, done in rotations if not done]
    versions = store_versions(moto, aws, seeded)
    not_rotated = {name for name, n in versions.items() if n < 0}
    outcomes = oneshot_outcomes(workdir, opts.oneshots)
    # Skipped (another process holds the secret's lease) is expected beside other runs.
    unusual = [outcome for outcome in outcomes if outcome[1] != "skipped"]
    for secret, result, message in unusual[:10]:
        # rotator's messages name error codes and request ids, never a value.
        print(f"one-shot outcome {result}: {secret}: {message}", flush=True)
    reported = [secret for secret, result, _ in outcomes if result in FAILURES]
    others = ", ".join(f"{r} {n}" for r, n in sorted(Counter(r for _, r, _ in outcomes).items()))
    failed = (
        len(unpromoted)
        + len(not_rotated - set(unpromoted))
        + len([secret for secret in reported if secret not in unpromoted])
    )
    double = {s for s, n in promoted.items() if n > 1} | {s for s, n in versions.items() if n > 2}
    print(
        f"journal: {sum(promoted.values())} rotations promoted for {len(promoted)} secrets, "
        f"{len(unpromoted)} not promoted; store: {opts.secrets - len(not_rotated)} secrets "
        f"with a new AWSCURRENT, {sum(n > 2 for n in versions.values())} with more than "
        "two versions",
        flush=True,
    )
    print(f"one-shot outcomes other than ok: {others or 'none'}", flush=True)
    problems = logged_problems(workdir / "rotator.log")
    print(
        f"warnings/errors logged {sum(problems.values())}"
        + "".join(f"; {what} x{n}" for what, n in problems.most_common(5)),
        flush=True,
    )
    used = 100 * min(shares)
    share_throttled = 100 * throttled / (admitted + throttled) if admitted + throttled else 0.0
    print("last line: P is the lowest Region's share of the quota")
    print(
        f"quota used {used:.1f}% failed {failed} throttled {share_throttled:.2f}% "
        f"double {len(double)}",
        flush=True,
    )
    return 1 if failed or double else 0


if __name__ == "__main__":
    sys.exit(main())
