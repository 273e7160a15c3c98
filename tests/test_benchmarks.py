"""Every script in benchmarks/ run once at a tiny size: it works, and its counts hold.

Each runs as a user runs it (``python benchmarks/X.py``) with the smallest
arguments that still take it through its whole path, and must exit 0 and
print each of its figures lines. Times are matched as "a number", never
compared with anything; what is asserted is the shape of every line and the
counts the script states (policies loaded, audit records, requests per
secret, rotations per secret). ``benchmarks/database_rotations.py`` has its
own test, tests/databases/test_rotation_benchmark.py.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.databases.postgres import admin_url

ROOT = Path(__file__).resolve().parents[1]
#: What ``#`` stands for in an expected line: a figure, maybe negative, with thousands commas.
NUMBER = r"-?[\d,]+(?:\.\d+)?"


def run_benchmark(
    script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> str:
    """Run ``benchmarks/SCRIPT ARGS`` to its end and return what it printed; fail unless exit 0."""
    with subprocess.Popen(
        [sys.executable, f"benchmarks/{script}", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Its own group: the servers and services it starts go with it if it hangs.
        start_new_session=True,
    ) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            pytest.fail(f"benchmarks/{script} still ran after {timeout:.0f} s:\n{out}{err}")
    assert process.returncode == 0, out + err
    return out


def shape(line: str) -> re.Pattern[str]:
    """Return a pattern for a whole line: ``#`` is any figure, a space any run of spaces."""
    words = (NUMBER.join(re.escape(part) for part in word.split("#")) for word in line.split())
    return re.compile(r"^ *" + " +".join(words) + " *$", re.MULTILINE)


def assert_lines(output: str, *lines: str) -> None:
    """Assert that ``output`` has a line of each shape in ``lines``."""
    missing = [line for line in lines if not shape(line).search(output)]
    assert not missing, f"no line like {missing} in:\n{output}"


def test_the_audit_benchmark_runs_at_a_tiny_size() -> None:
    """20 steps (two rotations on one thread, five steps on each of four): 40 chained records."""
    out = run_benchmark("audit.py", "--steps", "20")
    assert_lines(
        out,
        "1 thread: 20 steps in #s, # steps/s",
        "4 threads: 20 steps in #s, # steps/s",
        "verify: 40 records in #s, # records/s, intact=True",
        "export: 40 records in #s, # bytes/record as JSON lines",
    )


def test_the_policies_benchmark_runs_at_a_tiny_size() -> None:
    """Ten policies over two files: every command it times exits 0."""
    out = run_benchmark("policies.py", "--count", "10", "--files", "2", "--runs", "1")
    assert_lines(
        out,
        "10 policies in 2 files; journal seeded in #s",
        "dependency imports (floor) median #s (min #s, max #s, 1 runs, exit 0); "
        "x floor # (median of paired ratios)",
        "import rotator.cli.main median #s (min #s, max #s, 1 runs, exit 0); "
        "x floor # (median of paired ratios)",
        "rotator validate median #s (min #s, max #s, 1 runs, exit 0); "
        "x floor # (median of paired ratios)",
        "rotator plan --json median #s (min #s, max #s, 1 runs, exit 0); "
        "x floor # (median of paired ratios)",
        "rotator run --once (none due) median #s (min #s, max #s, 1 runs, exit 0); "
        "x floor # (median of paired ratios)",
    )


def test_the_loading_benchmark_runs_at_a_tiny_size() -> None:
    """20 policies loaded (the script checks each run loads them all), traced and profiled too."""
    out = run_benchmark(
        "loading.py", "--counts", "20", "--runs", "1", "--tracemalloc", "--profile", "--top", "2"
    )
    assert_lines(
        out,
        "20 policies in 1 files (# MiB of YAML, generated in #s)",
        "load_policies median #s (min #s, max #s, 1 runs; # us/policy)",
        "imports #s, registry #s (not in the load time)",
        "RSS before # MiB peak (VmHWM) # MiB retained # MiB (+# MiB for the policies, # B each)",
        "tracemalloc: peak # MiB, alive after loading # MiB; top sites:",
        "-- cProfile, by cumulative --",
        "-- cProfile, by tottime --",
    )
    assert len(re.findall(rf"^ +{NUMBER} MiB +{NUMBER} blocks  \S+:\d+$", out, re.M)) == 2, out


def test_the_daemon_benchmark_runs_at_a_tiny_size() -> None:
    """The service over 20 policies: every stage measured, the gauge at 20, a clean SIGTERM."""
    out = run_benchmark("daemon.py", "--counts", "20", "--idle", "0.5", "--deadline", "60")
    assert "PARTIAL" not in out, out
    assert_lines(
        out,
        "# CPUs; daemon: rotator run --reconcile 30; idle window 0.5s",
        "20 policies measured in # s",
        "20 policies",
        "policies written # s",
        "journal seeded (bulk insert) # s",
        "service started (policies loaded) # s",
        "/healthz first 200 # s",
        "schedule built (logged) # s",
        "first pass done (CPU quiet) # s",
        "VmRSS after first pass # MiB",
        "VmHWM after first pass (load + schedule) # MiB",
        "idle CPU over # s # s (#% of a core)",
        "/metrics scrape # s, # MiB",
        "rotator_policies gauge 20",
        "VmRSS after the scrape # MiB",
        "VmHWM at the end (scrape included) # MiB",
        "SIGTERM (idle): exit code, time 0, # s",
        "warnings/errors logged 0",
        "bare APScheduler: jobs added (from spawn) # s",
        "bare APScheduler: VmRSS then # MiB",
        "first pass / bare APScheduler #x",
        "restart: schedule built # s",
        "restart: CPU quiet (first watch included) # s",
        "restart: VmRSS then # MiB",
        "restart schedule built / bare APScheduler #x",
        "VmRSS / bare APScheduler #x",
        "scrape / first pass #x",
        "peak raised by the scrape #%",
    )


def test_the_throughput_benchmark_runs_at_a_tiny_size() -> None:
    """Three secrets on moto_server: both sides rotate all three with seven requests each."""
    out = run_benchmark("throughput.py", "--count", "3", "--deadline", "100")
    assert_lines(
        out,
        "# CPUs; 3 secrets; concurrency 4 on both sides (rotator: --concurrency 4, "
        "ROTATOR_CONCURRENCY=per-provider=4; hand-written: 4 thread(s), one shared client)",
        "rotator rate limits: defaults; rate-limit floor # s (secretsmanager.read 1000/s x 12 "
        "calls: # s; secretsmanager.write 50/s x 9 calls: # s); hand-written: no rate limiter",
        "Secrets Manager calls per secret assumed (7):",
        "rotator validate (start-up and policy loading): # s",
        "run 1: rotator run --once # s exit 0, 3 ok, 3 rotated (checked in moto), "
        "21 requests (0 4xx); secrets created in # s",
        "run 1: hand-written boto3 # s exit 0, 3 rotated (checked in moto), "
        "21 requests (0 4xx); calls alone # s",
        "wall secrets/s ms/secret",
        "rotator run --once #s # # (rate-limit floor # s)",
        "hand-written boto3 #s # #",
        "ratio rotator / hand-written: # (median of 1 run(s) each, concurrency 4)",
        "call count check: ok, 7 requests per secret on both sides, no 4xx",
    )


def test_the_replicas_benchmark_runs_at_a_tiny_size() -> None:
    """Three secrets by one service, then by two on one PostgreSQL journal: each rotated once."""
    out = run_benchmark(
        "replicas.py",
        *("--count", "3", "--replicas", "1", "2"),
        env={"ROTATOR_TEST_POSTGRES_URL": admin_url()},
    )
    assert_lines(
        out,
        # The default pace is the adapter's to set (providers/aws/clients.py).
        "# CPUs; moto_server and PostgreSQL on this machine; rate limits default "
        "(# Secrets Manager writes/s a process)",
        "1 replica(s): 3 secrets in # s = # rotations/s; 3 secrets promoted by 3 rotations; "
        "exit codes [0]",
        "2 replica(s): 3 secrets in # s = # rotations/s; 3 secrets promoted by 3 rotations; "
        "exit codes [0, 0]",
    )


def test_the_quota_benchmark_runs_at_a_tiny_size() -> None:
    """Six secrets over two Regions behind the write quota, one run: each rotated once."""
    out = run_benchmark("quota.py", "--secrets", "6", "--regions", "2")
    assert_lines(
        out,
        "# CPUs; 6 secrets in 2 Region(s); 0 service(s) and 1 one-shot run(s) on one SQLite "
        "journal; rotator's default rate limits, concurrency default; quota 50 writes/s per "
        "account and Region",
        "run: # s; one-shot exit codes [0]; service exit codes []",
        # Three writes a rotation, three secrets a Region.
        "us-east-1: 9 writes admitted in # s (first to last) = # writes/s = #% of the quota; "
        "# throttled",
        "eu-west-1: 9 writes admitted in # s (first to last) = # writes/s = #% of the quota; "
        "# throttled",
        "journal: 6 rotations promoted for 6 secrets, 0 not promoted; store: 6 secrets with a "
        "new AWSCURRENT, 0 with more than two versions",
        "one-shot outcomes other than ok: none",
        "warnings/errors logged 0",
    )
    assert shape("quota used #% failed 0 throttled #% double 0").fullmatch(out.splitlines()[-1])


def test_the_quota_benchmark_runs_services_and_oneshots_on_one_journal() -> None:
    """One service and two one-shot runs on one PostgreSQL journal: still one rotation each."""
    out = run_benchmark(
        "quota.py",
        *("--secrets", "6", "--regions", "2", "--replicas", "1", "--oneshots", "2"),
        env={"ROTATOR_TEST_POSTGRES_URL": admin_url()},
    )
    assert_lines(
        out,
        "run: # s; one-shot exit codes [0, 0]; service exit codes [0]",
        "journal: 6 rotations promoted for 6 secrets, 0 not promoted; store: 6 secrets with a "
        "new AWSCURRENT, 0 with more than two versions",
        "warnings/errors logged 0",
    )
    assert shape("quota used #% failed 0 throttled #% double 0").fullmatch(out.splitlines()[-1])
