"""Time `rotator validate` and `rotator run --once` (nothing due) on 1,000 generated policies.

Prints figures; asserts nothing about time. Run: ``.venv/bin/python benchmarks/policies.py``.
Each command runs as a subprocess, as a user would run it (interpreter start
and imports included), ``--runs`` times; the median and the spread are printed,
and each command's time over the floor: merely importing rotator's dependencies
(:data:`FLOOR`), run in the same round, so the two are measured side by side.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import providers
import rotator

# The journal's seeding lives in tests/, which is no installed package: a
# script run as ``python benchmarks/policies.py`` finds it at the root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.seeding import seed_finished

ZONES = ("UTC", "Europe/Berlin", "America/New_York")


#: Weekday names in Python's order (Monday is 0), as cron and windows spell them.
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def cron_day(now: datetime | None = None) -> str:
    """Return the weekday the cron policies fire on: three days after today's (UTC).

    A secret seeded as rotated just before the run is then not due during
    it, whatever the day and hour the benchmark runs at; with a fixed
    Monday, a run early on a Monday found due every policy whose fire fell
    between the seeded rotation and the run.
    """
    today = (now or datetime.now(UTC)).weekday()
    return WEEKDAYS[(today + 3) % 7]


def write_policies(directory: Path, count: int, files: int, day: str | None = None) -> list[str]:
    """Write ``count`` policies spread over ``files`` files; return their names.

    ``day``: the weekday the cron policies fire on (:func:`cron_day` by default).
    """
    names: list[str] = []
    per_file = count // files
    day = day or cron_day()
    for f in range(files):
        lines = ["defaults:", "  grace: 1h", "secrets:"]
        for i in range(per_file):
            n = f * per_file + i
            name = f"team{n % 17}/service-{n}"
            names.append(name)
            if n % 2:
                schedule = f"{{every: {30 + n % 60}d, jitter: 1h}}"
            else:
                schedule = (
                    f'{{cron: "{n % 60} 3 * * {day}", timezone: {ZONES[n % 3]}, '
                    f'window: "{day.title()} 02:00-05:00"}}'
                )
            lines += [
                f"  - name: {name}",
                f"    owner: team{n % 17}",
                f"    store: {{provider: aws-secretsmanager, secret_id: prod/{name}, "
                f"region: us-east-1}}",
                "    issuer: {kind: random, length: 32}",
                f"    schedule: {schedule}",
            ]
        (directory / f"policies-{f:03}.yaml").write_text("\n".join(lines) + "\n")
    return names


def as_installed(env: Mapping[str, str]) -> dict[str, str]:
    """Return ``env`` for running rotator as an installed copy runs: from compiled bytecode.

    pip compiles a wheel's modules when it installs them; an editable
    checkout under ``PYTHONDONTWRITEBYTECODE=1`` would instead compile every
    rotator module on every start, adding about 0.3 s to each command timed
    here. So rotator's packages are compiled once, now, and the variable is
    left out of the commands' environment.
    """
    for package in (rotator, providers):
        for folder in package.__path__:
            compileall.compile_dir(folder, quiet=1)
    return {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}


#: What merely importing rotator's dependencies costs: the floor a cold start is measured against.
FLOOR = "import sqlalchemy, pydantic, structlog, yaml, click, rich, prometheus_client, apscheduler"


def paired(
    commands: dict[str, list[str]], env: dict[str, str], runs: int
) -> dict[str, list[tuple[float, int]]]:
    """Run every command once per round, ``runs`` rounds; return each one's (seconds, exit code).

    Interleaved, so that a ratio between two commands compares runs made side
    by side (the machine's load drifts between rounds, not within one).
    """
    found: dict[str, list[tuple[float, int]]] = {label: [] for label in commands}
    for _ in range(runs):
        for label, args in commands.items():
            start = time.perf_counter()
            proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
            found[label].append((time.perf_counter() - start, proc.returncode))
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr[-2000:])
    return found


def main() -> None:
    """Generate, seed, time, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    opts = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        names = write_policies(workdir, opts.count, opts.files)
        url = f"sqlite:///{workdir / 'rotator.db'}"
        now = datetime.now(UTC).replace(microsecond=0)
        start = time.perf_counter()
        seed_finished(url, names, now)
        seeded = time.perf_counter() - start
        env = {
            **as_installed(os.environ),
            "ROTATOR_CONFIG": str(workdir),
            "ROTATOR_STATE": url,
            # No AWS endpoint on purpose: a run that called AWS would fail.
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_ACCESS_KEY_ID": "none",
            "AWS_SECRET_ACCESS_KEY": "none",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        rotator = [sys.executable, "-m", "rotator"]
        print(f"{opts.count} policies in {opts.files} files; journal seeded in {seeded:.1f}s")
        commands = {
            "dependency imports (floor)": [sys.executable, "-c", FLOOR],
            "import rotator.cli.main": [sys.executable, "-c", "import rotator.cli.main"],
            "rotator validate": [*rotator, "validate"],
            "rotator plan --json": [*rotator, "plan", "--json", "--log-format", "json"],
            "rotator run --once (none due)": [*rotator, "run", "--once", "--log-format", "json"],
        }
        found = paired(commands, env, opts.runs)
        floors = [seconds for seconds, _ in found["dependency imports (floor)"]]
        for label, results in found.items():
            times = [seconds for seconds, _ in results]
            ratios = [t / f for t, f in zip(times, floors, strict=True)]
            print(
                f"{label:32} median {statistics.median(times):.3f}s  (min {min(times):.3f}s, "
                f"max {max(times):.3f}s, {opts.runs} runs, exit {results[-1][1]}); "
                f"x floor {statistics.median(ratios):.2f} (median of paired ratios)"
            )


if __name__ == "__main__":
    main()
