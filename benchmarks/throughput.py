"""Throughput of `rotator run --once` over 1,000 due Secrets Manager secrets on moto_server.

Prints figures; asserts nothing about time. Run: ``.venv/bin/python benchmarks/throughput.py``
(``--count 100`` for a quick look).

moto_server is started with :class:`providers.aws.sandbox.AwsSandbox`. Then,
``--runs`` times:

1. ``--count`` secrets are created (a 32-character string each); policies
   for them are written (``random`` issuer, ``aws-secretsmanager`` store,
   ``every: 1d``, ``grace: 1h``) with an empty journal, and the subprocess
   ``python -m rotator run --once --json --log-format json`` runs with
   ``ROTATOR_NOW`` pinned two days ahead, so every secret is due (never
   rotated; created, by the store's date, two days before "now");
2. moto_server is reset (``POST /moto-api/reset``), the secrets are created
   again, and a minimal hand-written boto3 script, also a subprocess, makes
   the *same* API calls, in the same order, one secret after the other (``run
   --once`` is sequential: concurrency 1 for both). The calls are listed in
   ``CALLS`` below, read from ``providers/aws/secretsmanager.py``,
   ``providers/random.py`` and ``rotator/engine.py``; moto_server's request
   log counts what each side really sent, so a drift between the list and
   the code shows as a count mismatch.

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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from providers.aws.sandbox import AwsSandbox

PREFIX = "bench/throughput-"
REGION = "us-east-1"
ANSI = re.compile(r"\x1b\[[0-9;]*m")

#: The Secrets Manager calls one scheduled rotation of a never-rotated secret
#: makes (store aws-secretsmanager without ``field``, issuer random, grace
#: not yet over, so no revoke in this run): what the hand-written script does.
CALLS = (
    ("GetSecretValue VersionStage=AWSCURRENT", "plan: Store.last_changed (no journal entry yet)"),
    ("GetSecretValue VersionStage=AWSCURRENT", "re-plan under the lease: Store.last_changed"),
    ("GetSecretValue VersionStage=AWSCURRENT", "mint: Store.current (old version, fingerprint)"),
    ("GetSecretValue VersionId=<rotation id>", "store: put_pending, is the version there? (404)"),
    ("DescribeSecret", "store: after the 404, does the secret exist at all?"),
    (
        "PutSecretValue ClientRequestToken=<rotation id>, VersionStages=[AWSPENDING]",
        "store: put_pending",
    ),
    ("GetSecretValue VersionId=<rotation id>", "verify: Store.pending, value read back"),
    ("DescribeSecret", "promote: version ids and their stages"),
    (
        "UpdateSecretVersionStage AWSCURRENT Move=<new> RemoveFrom=<old>",
        "promote: make the new version current",
    ),
    ("UpdateSecretVersionStage AWSPENDING RemoveFrom=<new>", "promote: drop the pending label"),
)

#: The hand-written rotation: the calls of CALLS, nothing else. argv: prefix, count.
HANDWRITTEN = """
import secrets, string, sys, time, uuid
import boto3
from botocore.config import Config

prefix, count = sys.argv[1], int(sys.argv[2])
names = [f"{prefix}{i:04}" for i in range(count)]
began = time.perf_counter()
sm = boto3.Session().client(
    "secretsmanager", config=Config(retries={"mode": "standard", "max_attempts": 3})
)
alphabet = string.ascii_letters + string.digits
for name in names:  # plan: what is due (every secret is read once first)
    sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
for name in names:
    sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")  # re-plan under the lease
    sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")  # the current version
    token = uuid.uuid4().hex
    value = "".join(secrets.choice(alphabet) for _ in range(32))
    try:
        sm.get_secret_value(SecretId=name, VersionId=token)
    except sm.exceptions.ResourceNotFoundException:
        sm.describe_secret(SecretId=name)
    sm.put_secret_value(
        SecretId=name, ClientRequestToken=token, SecretString=value, VersionStages=["AWSPENDING"]
    )
    if sm.get_secret_value(SecretId=name, VersionId=token)["SecretString"] != value:
        sys.exit(f"{name}: pending value differs")
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    old = next(v for v, labels in stages.items() if "AWSCURRENT" in labels)
    sm.update_secret_version_stage(
        SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=old
    )
    sm.update_secret_version_stage(
        SecretId=name, VersionStage="AWSPENDING", RemoveFromVersionId=token
    )
print(f"{time.perf_counter() - began:.3f}")
"""


def names_of(count: int) -> list[str]:
    """Return the secret names, the same on both sides."""
    return [f"{PREFIX}{i:04}" for i in range(count)]


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
    parser.add_argument("--deadline", type=float, default=600.0, help="seconds in all")
    opts = parser.parse_args()
    end = time.monotonic() + opts.deadline

    def left() -> float:
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise SystemExit("deadline reached")
        return remaining

    names = names_of(opts.count)
    print(f"{os.cpu_count()} CPUs; {opts.count} secrets; concurrency 1 on both sides")
    print(f"Secrets Manager calls per secret assumed ({len(CALLS)}):")
    for n, (call, why) in enumerate(CALLS, 1):
        print(f"  {n:2}. {call:<74} {why}")
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
            env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
            env.update(aws)
            env["ROTATOR_CONFIG"] = str(policies)
            env.pop("ROTATOR_FAULT", None)
            rotator = [sys.executable, "-m", "rotator"]

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
                    "ROTATOR_STATE": f"sqlite:///{state}",
                    "ROTATOR_NOW": now.isoformat(),
                }
                wall, proc = run_timed(
                    [*rotator, "run", "--once", "--json", "--log-format", "json"], run_env, left()
                )
                after, after_4xx = settle(moto_log)
                try:
                    outcomes = json.loads(proc.stdout)
                except ValueError:
                    outcomes = []
                ok = sum(1 for o in outcomes if o.get("result") == "ok")
                if proc.returncode != 0 or ok != len(names):
                    sys.stderr.write(proc.stdout[-1000:] + proc.stderr[-2000:])
                rotated = check_rotated(sm, names)
                rotator_times.append(wall)
                print(
                    f"run {run}: rotator run --once  {wall:7.2f} s  exit {proc.returncode}, "
                    f"{ok} ok, {rotated} rotated (checked in moto), {after - before} requests "
                    f"({after_4xx - before_4xx} 4xx); secrets created in {created:.1f} s"
                )

                # the hand-written script, on fresh secrets
                reset(aws["AWS_ENDPOINT_URL"])
                created = create_secrets(sm, names)
                before, before_4xx = settle(moto_log)
                wall, proc = run_timed(
                    [sys.executable, str(script), PREFIX, str(opts.count)], env, left()
                )
                after, after_4xx = settle(moto_log)
                if proc.returncode != 0:
                    sys.stderr.write(proc.stderr[-2000:])
                rotated = check_rotated(sm, names)
                script_times.append(wall)
                loop = float(proc.stdout.strip() or "nan")
                script_loops.append(loop)
                print(
                    f"run {run}: hand-written boto3    {wall:7.2f} s  exit {proc.returncode}, "
                    f"{rotated} rotated (checked in moto), {after - before} requests "
                    f"({after_4xx - before_4xx} 4xx); loop alone {loop:.2f} s"
                )
        finally:
            sandbox.stop()

    r = statistics.median(rotator_times)
    h = statistics.median(script_times)
    n = opts.count
    print()
    print(f"{'':28}{'wall':>10}{'secrets/s':>12}{'ms/secret':>12}")
    print(f"{'rotator run --once':28}{r:9.2f}s{n / r:12.1f}{1000 * r / n:12.2f}")
    print(f"{'hand-written boto3':28}{h:9.2f}s{n / h:12.1f}{1000 * h / n:12.2f}")
    print(f"ratio rotator / hand-written: {r / h:.2f}  (median of {opts.runs} run(s) each)")


if __name__ == "__main__":
    main()
