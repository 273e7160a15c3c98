"""Throughput of `rotator run --once` over 1,000 due Secrets Manager secrets on moto_server.

Prints figures; asserts nothing about time. Run: ``.venv/bin/python benchmarks/throughput.py``
(``--count 100`` for a quick look; ``--concurrency 1`` for one secret at a
time; ``--no-rate-limits`` to lift rotator's client-side rate limits).

moto_server is started with :class:`rotator.sandbox.aws.sandbox.AwsSandbox`. Then,
``--runs`` times:

1. ``--count`` secrets are created (a 32-character string each); policies
   for them are written (``random`` issuer, ``aws-secretsmanager`` store,
   ``every: 1d``, ``grace: 1h``) with an empty journal, and the subprocess
   ``rotator run --once --json --log-format json --concurrency N`` runs with
   ``ROTATOR_CONCURRENCY=per-provider=N`` (the default per-provider limit is
   4, so ``--concurrency`` alone would not raise it past 4) and its clock
   pinned two days ahead, so every secret is due (never rotated;
   created, by the store's date, two days before "now"). The installed
   ``rotator`` cannot be given another "now", so this command runs through
   the test harness (``python -m tests.harness``, ``tests/harness.py``, with
   ``ROTATOR_TEST_NOW``): the same CLI, the clock pinned first;
2. moto_server is reset (``POST /moto-api/reset``), the secrets are created
   again, and a minimal hand-written boto3 script, also a subprocess, makes
   the *same* API calls, in the same order. The calls are listed in
   ``CALLS`` below, read from ``providers/aws/secretsmanager.py``,
   ``providers/random.py``, ``rotator/engine/runner.py`` (the plan) and
   ``rotator/engine/steps.py`` (the steps); moto_server's request log
   counts what each side really sent, and a count other than ``len(CALLS)``
   per secret, or any 4xx, is flagged as a mismatch. A rotation that is not
   ``ok`` is flagged too (its outcome and rotator's error log lines are
   printed); either way the script exits 1 once the figures are printed.

Concurrency (``--concurrency N``, default 4: what ``run --once`` uses by
default for secrets that all live in one store provider, 8 in total but 4
per provider). Both sides first read every secret's ``AWSCURRENT`` one after
the other (rotator's plan is sequential), then rotate at most N secrets at
once: rotator with its worker threads (``rotator/engine/concurrency.py``; at
``--concurrency 1`` it runs them inline), the hand-written script with a
``ThreadPoolExecutor`` of N threads sharing **one** boto3 client, as rotator's
threads share its cached client per service and region. Both clients use the
same botocore settings (standard retries, 3 attempts, the same timeouts, the
default pool of 10 connections, so above N = 10 both sides queue for a
connection).

Rate limits: rotator paces its own calls (``providers/aws/clients.py``;
Secrets Manager writes, 3 per rotation here, at 50/s per region in bursts of
50, adapting when throttled; reads at 1000/s); the
hand-written script has **no** rate limiter. The
least time those limits alone impose on rotator's calls is printed as the
"rate-limit floor"; ``--no-rate-limits`` runs rotator with
``ROTATOR_RATE_LIMITS=secretsmanager.write=0,secretsmanager.read=0``, so the
two settings can be compared. Any ``ROTATOR_RATE_LIMITS`` or
``ROTATOR_CONCURRENCY`` in the caller's environment is ignored.

Both wall times include interpreter start and imports (rotator's also its
policy loading: ``rotator validate`` on the same files is timed for scale).
Reported: wall times, secrets per second, and the ratio rotator / hand-written.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from policies import as_installed  # benchmarks/policies.py, beside this script

from providers.aws.clients import RATE_LIMITS, quota
from rotator.adapters.ratelimit import TokenBucket, limits
from rotator.sandbox.aws.sandbox import AwsSandbox

PREFIX = "bench/throughput-"
ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: ``ROTATOR_RATE_LIMITS`` for ``--no-rate-limits``: the Secrets Manager limits off.
NO_RATE_LIMITS = "secretsmanager.write=0,secretsmanager.read=0"

#: The Secrets Manager calls one scheduled rotation of a never-rotated secret
#: makes (store aws-secretsmanager without ``field``, issuer random, grace
#: not yet over, so no revoke in this run): what the hand-written script does.
#: No re-plan under the lease (the journal knows nothing of the secret, so
#: the store is not asked again) and no read before the put (PutSecretValue
#: is idempotent by its ClientRequestToken). Each entry starts with the API
#: operation, which decides its rate limit (see ``rate_floor``).
CALLS = (
    ("GetSecretValue VersionStage=AWSCURRENT", "plan: Store.last_changed (no journal entry yet)"),
    ("GetSecretValue VersionStage=AWSCURRENT", "mint: Store.current (old version, fingerprint)"),
    (
        "PutSecretValue ClientRequestToken=<rotation id>, VersionStages=[AWSPENDING]",
        "store: put_pending",
    ),
    ("GetSecretValue VersionId=<rotation id>", "verify: Store.pending, value read back"),
    ("DescribeSecret", "promote: which version holds AWSCURRENT"),
    (
        "UpdateSecretVersionStage AWSCURRENT Move=<new> RemoveFrom=<old>",
        "promote: make the new version current",
    ),
    ("UpdateSecretVersionStage AWSPENDING RemoveFrom=<new>", "promote: drop the pending label"),
)

#: The hand-written rotation: the calls of CALLS, nothing else, N secrets at
#: a time on threads sharing one client; no rate limiter. argv: prefix, count, N.
HANDWRITTEN = """
import secrets, string, sys, time, uuid
from concurrent.futures import ThreadPoolExecutor
import boto3
from botocore.config import Config

prefix, count, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
names = [f"{prefix}{i:04}" for i in range(count)]
began = time.perf_counter()
sm = boto3.Session().client(  # one client, shared by the threads (boto3 clients are thread-safe)
    "secretsmanager",
    config=Config(
        retries={"mode": "standard", "max_attempts": 3}, connect_timeout=10, read_timeout=30
    ),
)
alphabet = string.ascii_letters + string.digits
for name in names:  # plan: what is due (every secret is read once first, one after the other)
    sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")


def rotate(name):
    sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")  # the current version
    token = uuid.uuid4().hex
    value = "".join(secrets.choice(alphabet) for _ in range(32))
    sm.put_secret_value(
        SecretId=name, ClientRequestToken=token, SecretString=value, VersionStages=["AWSPENDING"]
    )
    if sm.get_secret_value(SecretId=name, VersionId=token)["SecretString"] != value:
        raise SystemExit(f"{name}: pending value differs")
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    old = next(v for v, labels in stages.items() if "AWSCURRENT" in labels)
    sm.update_secret_version_stage(
        SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=old
    )
    sm.update_secret_version_stage(
        SecretId=name, VersionStage="AWSPENDING", RemoveFromVersionId=token
    )


with ThreadPoolExecutor(max_workers=workers) as pool:
    for _ in pool.map(rotate, names):  # re-raises the first failure
        pass
print(f"{time.perf_counter() - began:.3f}")
"""


def names_of(count: int) -> list[str]:
    """Return the secret names, the same on both sides."""
    return [f"{PREFIX}{i:04}" for i in range(count)]


def rate_floor(count: int, rates: Mapping[str, float]) -> tuple[float, str]:
    """Return the least seconds rotator's rate limits impose on ``count`` rotations, and why.

    Each quota's bucket starts full (its burst) and refills at its rate (the
    whole quota: one run on the journal), so ``calls`` calls need at least
    ``(calls - burst) / rate`` seconds.
    """
    per_quota = Counter(quota("secretsmanager", call.split()[0]) for call, _ in CALLS)
    floor, parts = 0.0, []
    for name, per_secret in sorted(per_quota.items()):
        rate = rates.get(name, 0.0)
        if rate <= 0:
            parts.append(f"{name} off")
            continue
        seconds = max(0.0, per_secret * count - TokenBucket(rate).burst) / rate
        floor = max(floor, seconds)
        parts.append(f"{name} {rate:g}/s x {per_secret * count} calls: {seconds:.2f} s")
    return floor, "; ".join(parts)


def create_secrets(sm: Any, names: list[str]) -> float:
    """Create one secret per name with a random value; return the seconds taken."""
    began = time.perf_counter()
    for name in names:
        sm.create_secret(Name=name, SecretString=secrets.token_urlsafe(24))
    return time.perf_counter() - began


def write_policies(path: Path, names: list[str]) -> None:
    """Write one policy file: every secret rotated daily, random values."""
    lines = [
        "defaults:",
        "  grace: 1h",
        "  schedule: {every: 1d, timezone: UTC}",
        "secrets:",
    ]
    for name in names:
        lines += [
            f"  - name: {name}",
            f"    store: {{provider: aws-secretsmanager, secret_id: {name}, region: {REGION}}}",
            "    issuer: {kind: random, length: 32}",
        ]
    path.write_text("\n".join(lines) + "\n")


def requests_logged(log: Path) -> tuple[int, int]:
    """Return the API requests moto_server logged so far, and how many got a 4xx."""
    total = errors = 0
    marker = '"POST / HTTP/1.1" '
    for raw in log.read_text(errors="replace").splitlines():
        line = ANSI.sub("", raw)  # werkzeug colours the lines of error answers
        if marker in line:
            total += 1
            errors += line.split(marker, 1)[1].startswith("4")
    return total, errors


def settle(log: Path) -> tuple[int, int]:
    """Count moto_server's requests once its log has stopped growing."""
    size = -1
    while size != log.stat().st_size:
        size = log.stat().st_size
        time.sleep(0.2)
    return requests_logged(log)


def reset(endpoint: str) -> None:
    """Forget every resource moto_server holds."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=30):  # a loopback URL
        pass


def check_rotated(sm: Any, names: list[str]) -> int:
    """Return how many secrets have a current version that is not their first one."""
    rotated = 0
    for name in names:
        stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
        labels = sorted(tuple(sorted(v)) for v in stages.values())
        rotated += labels == [("AWSCURRENT",), ("AWSPREVIOUS",)]
    return rotated


def check_calls(side: str, requests: int, errors: int, count: int) -> str | None:
    """Return why one side's request count disagrees with CALLS, or None if it agrees."""
    expected = len(CALLS) * count
    if requests == expected and errors == 0:
        return None
    return (
        f"{side}: {requests} requests ({errors} 4xx), expected {expected} "
        f"({len(CALLS)} per secret, no 4xx)"
    )


def explain_failures(proc: Any, outcomes: list[dict[str, Any]]) -> None:
    """Print the outcomes that were not ok and rotator's error log lines (a few of each)."""
    failed = [o for o in outcomes if o.get("result") != "ok"]
    for outcome in failed[:5]:
        print(
            f"  not ok: {outcome.get('secret')}: {outcome.get('result')} "
            f"at {outcome.get('state')}: {outcome.get('message')}"
        )
    errors = [line for line in proc.stderr.splitlines() if '"level": "error"' in line]
    for line in errors[:5]:
        print(f"  log: {line[:300]}")
    if not outcomes:  # no JSON summary: rotator itself failed
        sys.stderr.write(proc.stdout[-1000:] + proc.stderr[-2000:])
    elif len(failed) > 5 or len(errors) > 5:
        print(f"  ({len(failed)} not ok, {len(errors)} error log lines in all)")


def run_timed(args: list[str], env: dict[str, str], timeout: float) -> tuple[float, Any]:
    """Run a subprocess; return its wall time and the CompletedProcess."""
    began = time.perf_counter()
    proc = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return time.perf_counter() - began, proc


def main() -> None:
    """Start moto_server, time both sides, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1, help="pairs of runs (median reported)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="secrets rotated at once on both sides (rotator's default here: 4)",
    )
    parser.add_argument(
        "--no-rate-limits",
        action="store_true",
        help=f"run rotator with ROTATOR_RATE_LIMITS={NO_RATE_LIMITS}",
    )
    parser.add_argument("--deadline", type=float, default=600.0, help="seconds in all")
    opts = parser.parse_args()
    if opts.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    end: float = time.monotonic() + opts.deadline

    def left() -> float:
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise SystemExit("deadline reached")
        return remaining

    n = opts.count
    workers = opts.concurrency
    names = names_of(n)
    rate_env = {"ROTATOR_RATE_LIMITS": NO_RATE_LIMITS} if opts.no_rate_limits else {}
    floor, floor_why = rate_floor(n, limits(RATE_LIMITS, rate_env))
    print(
        f"{os.cpu_count()} CPUs; {n} secrets; concurrency {workers} on both sides "
        f"(rotator: --concurrency {workers}, ROTATOR_CONCURRENCY=per-provider={workers}; "
        f"hand-written: {workers} thread(s), one shared client)"
    )
    print(
        "rotator rate limits: "
        + (f"off (ROTATOR_RATE_LIMITS={NO_RATE_LIMITS})" if opts.no_rate_limits else "defaults")
        + f"; rate-limit floor {floor:.2f} s ({floor_why}); hand-written: no rate limiter"
    )
    print(f"Secrets Manager calls per secret assumed ({len(CALLS)}):")
    for number, (call, why) in enumerate(CALLS, 1):
        print(f"  {number:2}. {call:<76} {why}")
    mismatches: list[str] = []
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rotator-throughput-") as tmp:
        workdir = Path(tmp)
        sandbox = AwsSandbox()
        try:
            aws = sandbox.start(workdir / "moto")
            moto_log = workdir / "moto" / "moto_server.log"
            sm = boto3.Session(
                aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
                region_name=REGION,
            ).client("secretsmanager", endpoint_url=aws["AWS_ENDPOINT_URL"])
            policies = workdir / "policies.yaml"
            write_policies(policies, names)
            script = workdir / "handwritten.py"
            script.write_text(HANDWRITTEN)
            env = {k: v for k, v in as_installed(os.environ).items() if not k.startswith("AWS_")}
            env.update(aws)
            env["ROTATOR_CONFIG"] = str(policies)
            for name in ("ROTATOR_TEST_FAULT", "ROTATOR_RATE_LIMITS", "ROTATOR_CONCURRENCY"):
                env.pop(name, None)
            rotator = [sys.executable, "-m", "rotator"]
            # The CLI with its clock pinned: only the test harness can do that.
            harness = [sys.executable, "-m", "tests.harness"]

            validate, proc = run_timed([*rotator, "validate", "--log-format", "json"], env, left())
            print(f"rotator validate (start-up and policy loading): {validate:.2f} s")

            rotator_times: list[float] = []
            script_times: list[float] = []
            script_loops: list[float] = []
            for run in range(1, opts.runs + 1):
                # rotator run --once
                reset(aws["AWS_ENDPOINT_URL"])
                created = create_secrets(sm, names)
                before, before_4xx = settle(moto_log)
                state = workdir / f"rotator-{run}.db"
                now = datetime.now(UTC) + timedelta(days=2)
                run_env = {
                    **env,
                    **rate_env,
                    "ROTATOR_CONCURRENCY": f"per-provider={workers}",
                    "ROTATOR_STATE": f"sqlite:///{state}",
                    "ROTATOR_TEST_NOW": now.isoformat(),
                    "PYTHONPATH": str(ROOT),  # where ``tests.harness`` is found
                }
                wall, proc = run_timed(
                    [
                        *harness,
                        *("run", "--once", "--json", "--log-format", "json"),
                        *("--concurrency", str(workers)),
                    ],
                    run_env,
                    left(),
                )
                after, after_4xx = settle(moto_log)
                try:
                    outcomes = json.loads(proc.stdout)
                except ValueError:
                    outcomes = []
                ok = sum(1 for o in outcomes if o.get("result") == "ok")
                rotated = check_rotated(sm, names)
                rotator_times.append(wall)
                requests, errors = after - before, after_4xx - before_4xx
                mismatch = check_calls(f"run {run}, rotator", requests, errors, n)
                if mismatch is not None:
                    mismatches.append(mismatch)
                print(
                    f"run {run}: rotator run --once  {wall:7.2f} s  exit {proc.returncode}, "
                    f"{ok} ok, {rotated} rotated (checked in moto), {requests} requests "
                    f"({errors} 4xx); secrets created in {created:.1f} s"
                )
                if proc.returncode != 0 or ok != n:
                    explain_failures(proc, outcomes)
                    problems.append(f"run {run}, rotator: exit {proc.returncode}, {ok} of {n} ok")

                # the hand-written script, on fresh secrets
                reset(aws["AWS_ENDPOINT_URL"])
                created = create_secrets(sm, names)
                before, before_4xx = settle(moto_log)
                wall, proc = run_timed(
                    [sys.executable, str(script), PREFIX, str(n), str(workers)], env, left()
                )
                after, after_4xx = settle(moto_log)
                if proc.returncode != 0:
                    sys.stderr.write(proc.stderr[-2000:])
                rotated = check_rotated(sm, names)
                if proc.returncode != 0 or rotated != n:
                    problems.append(
                        f"run {run}, hand-written: exit {proc.returncode}, {rotated} of {n} rotated"
                    )
                script_times.append(wall)
                loop = float(proc.stdout.strip() or "nan")
                script_loops.append(loop)
                requests, errors = after - before, after_4xx - before_4xx
                mismatch = check_calls(f"run {run}, hand-written", requests, errors, n)
                if mismatch is not None:
                    mismatches.append(mismatch)
                print(
                    f"run {run}: hand-written boto3    {wall:7.2f} s  exit {proc.returncode}, "
                    f"{rotated} rotated (checked in moto), {requests} requests "
                    f"({errors} 4xx); calls alone {loop:.2f} s"
                )
        finally:
            sandbox.stop()

    r = statistics.median(rotator_times)
    h = statistics.median(script_times)
    limited = "rate limits off" if opts.no_rate_limits else f"rate-limit floor {floor:.2f} s"
    print()
    print(f"{'':28}{'wall':>10}{'secrets/s':>12}{'ms/secret':>12}")
    print(f"{'rotator run --once':28}{r:9.2f}s{n / r:12.1f}{1000 * r / n:12.2f}  ({limited})")
    print(f"{'hand-written boto3':28}{h:9.2f}s{n / h:12.1f}{1000 * h / n:12.2f}")
    print(
        f"ratio rotator / hand-written: {r / h:.2f}  (median of {opts.runs} run(s) each, "
        f"concurrency {workers})"
    )
    if mismatches:
        print("call count check: MISMATCH with CALLS (a failed rotation also shows here)")
        for why in mismatches:
            print(f"  {why}")
    else:
        print(f"call count check: ok, {len(CALLS)} requests per secret on both sides, no 4xx")
    for why in problems:
        print(f"FAILED ROTATIONS: {why}")
    if mismatches or problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
