"""Measure the service (`rotator run`) with 10,000 and 100,000 policies, none of them due.

Prints figures; asserts nothing about time. Run: ``.venv/bin/python benchmarks/daemon.py``
(``--counts 1000`` for a quick look, ``--idle 60`` seconds of idle measurement).

For each count, policies are generated as in ``benchmarks/policies.py`` (random
issuer, ``aws-secretsmanager`` store, mixed every/cron/window/jitter), the
SQLite journal is seeded with one finished rotation an hour ago per secret (a
bulk insert, so that none is due), and the real daemon is started as a
subprocess::

    python -m rotator run --reconcile 30 --listen 127.0.0.1:0 --log-format json

with AWS pointed at a dead endpoint: nothing is due, so no provider call may
happen (one would fail and be logged). Measured, from the moment the process
is spawned:

- *service started*: the log event ``service started`` (interpreter, imports,
  policies loaded and validated, journal opened; the first pass starts now);
- */healthz 200*: the first 200 from ``/healthz`` (its URL is logged as
  ``health endpoint listening``). The probe answers 200 while no pass has
  finished yet (``last_pass is None`` counts as alive), so this is *not* the
  end of the first pass;
- *first pass done*: the first pass (``run_once``, the metrics refresh and the
  next wake-up's plan) has finished when the process stops using CPU: the
  start of the first 1 s window after ``service started`` in which its
  utime+stime (``/proc/PID/stat``) grew by at most 2 ticks. A ``/metrics``
  scrape after the idle window confirms that the pass refreshed the gauges
  (``rotator_policies`` = N);
- resident memory (``VmRSS``, and the peak so far ``VmHWM``: loading and
  scheduling) right after the first pass;
- CPU used over ``--idle`` seconds of idling (reconcile passes included: one
  every 30 s), and the CPU time of each burst seen in that window (one burst
  is one reconcile pass);
- one ``/metrics`` scrape: its time and size;
- SIGTERM, sent while the daemon is idle: exit code and time to exit;
- *restart*: the daemon started again over the journal the first one left,
  as a deploy restarts it: when it logs ``schedule built`` (every policy
  planned; also given for the first start), when its CPU goes quiet (its
  first watch pass, which checks every row, included) and its ``VmRSS``.

Beside it, in the same run, the naive daemon rotator must beat: bare
APScheduler 3 in a fresh interpreter adding as many jobs as there are
policies to a started ``BackgroundScheduler``'s memory store, with the same
mix of triggers (``IntervalTrigger`` of 30-89 days with an hour of jitter,
``CronTrigger`` at 03:MM on the policies' weekday, three days after today, in
three time zones), no journal and no
policies (:data:`BARE_APSCHEDULER`): its time from spawn to the last job
added and its ``VmRSS`` then. The ratios printed are rotator's first pass
and memory over those, the scrape over the first pass, and how much the
scrape raised the peak.

Every wait has a deadline (``--deadline`` seconds per count, all stages
included); when it runs out the figures measured so far are printed, marked
partial. The daemon is killed in any case before the script moves on.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from policies import as_installed, cron_day, write_policies  # benchmarks/policies.py, beside this

from rotator.journal.journal import Journal
from rotator.journal.records import Rotation, rotation_values
from rotator.journal.schema import rotations
from rotator.lifecycle import State

TICK = os.sysconf("SC_CLK_TCK")
#: Seconds between two samples of the daemon's CPU time.
SAMPLE = 0.1
#: The first pass is over at the start of a window this long ...
QUIET_WINDOW = 1.0
#: ... in which the process used at most this many clock ticks.
QUIET_TICKS = 2
#: Rows per INSERT statement when seeding (SQLite allows 32,766 bound parameters).
INSERT_BATCH = 1000


#: The naive daemon: APScheduler 3 adding one job per policy to its memory store.
#: argv[1] is the job count, argv[2] the cron weekday; prints seconds from interpreter
#: start and VmRSS (MiB).
BARE_APSCHEDULER = """
import sys, time
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

def rotate(name):
    pass

zones = ("UTC", "Europe/Berlin", "America/New_York")
scheduler = BackgroundScheduler()
scheduler.start()
for n in range(int(sys.argv[1])):
    if n % 2:
        trigger = IntervalTrigger(days=30 + n % 60, jitter=3600)
    else:
        trigger = CronTrigger(
            minute=n % 60, hour=3, day_of_week=sys.argv[2], timezone=zones[n % 3]
        )
    scheduler.add_job(rotate, trigger, args=[f"service-{n}"], id=f"service-{n}")
rss = next(l for l in open("/proc/self/status") if l.startswith("VmRSS:")).split()[1]
print(time.perf_counter(), int(rss) / 1024)
scheduler.shutdown(wait=False)
"""


def bare_apscheduler(count: int, day: str, budget: float) -> tuple[float, float] | None:
    """Run :data:`BARE_APSCHEDULER` for ``count`` jobs, cron on ``day``; return (seconds, MiB).

    The seconds from spawn to the last job added, and VmRSS then.
    """
    spawned = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-c", BARE_APSCHEDULER, str(count), day.lower()],
            capture_output=True,
            text=True,
            timeout=budget,
            check=True,
        )
    except (subprocess.TimeoutExpired, subprocess.CalledProcessError):
        return None
    finished_at, rss = (float(x) for x in done.stdout.split())
    # perf_counter is the same clock in both processes (CLOCK_MONOTONIC on Linux).
    return finished_at - spawned, rss


class TimedOut(Exception):
    """The per-count deadline ran out at some stage."""


@dataclass
class Figures:
    """What one daemon run measured (None: not reached)."""

    count: int
    generated: float | None = None
    seeded: float | None = None
    started: float | None = None
    healthz: float | None = None
    first_pass: float | None = None
    #: The log event ``schedule built``: every policy planned, the first pass's plan made.
    schedule_built: float | None = None
    rss_mb: float | None = None
    #: The peak up to the end of the first pass: loading and scheduling.
    hwm_first_pass_mb: float | None = None
    hwm_mb: float | None = None
    idle_cpu: float | None = None
    idle_seconds: float | None = None
    bursts: list[float] = field(default_factory=list)
    scrape_s: float | None = None
    scrape_mb: float | None = None
    gauge_policies: int | None = None
    rss_after_scrape_mb: float | None = None
    exit_code: int | None = None
    exit_s: float | None = None
    warnings: int = 0
    partial: str | None = None
    #: The same daemon started again over the journal the first left (a restart).
    restart_schedule_built: float | None = None
    restart_first_pass: float | None = None
    restart_rss_mb: float | None = None
    #: Bare APScheduler adding ``count`` jobs: seconds from spawn, and VmRSS then.
    bare_s: float | None = None
    bare_mb: float | None = None


class Deadline:
    """A wall-clock budget shared by every wait of one run."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        """Return the seconds left (never negative)."""
        return max(self.end - time.monotonic(), 0.0)

    def check(self, stage: str) -> None:
        """Raise TimedOut naming ``stage`` when the budget is spent."""
        if self.left() <= 0:
            raise TimedOut(stage)


class LogWatcher:
    """Reads the daemon's JSON log (stderr) in a thread; remembers when each event came."""

    def __init__(self, stream: Any) -> None:
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.other: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            at = time.monotonic()
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            with self._lock:
                if isinstance(event, dict):
                    self.events.append((at, event))
                else:
                    self.other.append(line.rstrip())

    def find(self, name: str) -> tuple[float, dict[str, Any]] | None:
        """Return the first event called ``name`` with its arrival time, if seen."""
        with self._lock:
            return next(((t, e) for t, e in self.events if e.get("event") == name), None)

    def noisy(self) -> list[dict[str, Any]]:
        """Return the events logged at warning level or above."""
        with self._lock:
            return [e for _, e in self.events if e.get("level") in ("warning", "error", "critical")]


def seed_journal_bulk(url: str, names: list[str], now: datetime) -> None:
    """Record a finished rotation one hour ago for every policy, so none is due.

    The schema comes from the journal's own migration; the rows go straight
    into the ``rotations`` table in one transaction (no events: planning
    reads only rotations).
    """
    journal = Journal(url, lambda: now)
    journal.migrate()
    # Sealed with the journal's key as the journal seals them (a row without
    # its seal is refused as tampered with, which is not what is measured).
    key = journal.database.keys.row()
    journal.close()
    done = now - timedelta(hours=1)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for start in range(0, len(names), INSERT_BATCH):
                rows = [
                    rotation_values(
                        Rotation(
                            id=f"{start + i:032x}",
                            secret=name,
                            state=State.DONE,
                            trigger="schedule",
                            created_at=done,
                            updated_at=done,
                            promoted_at=done,
                            grace_deadline=done,
                            delete_at=done,
                            finished_at=done,
                        ),
                        key,
                    )
                    for i, name in enumerate(names[start : start + INSERT_BATCH])
                ]
                conn.execute(rotations.insert().values(rows))
    finally:
        engine.dispose()


def cpu_ticks(pid: int) -> int:
    """Return utime + stime of a process, in clock ticks."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    rest = stat[stat.rfind(")") + 2 :].split()
    return int(rest[11]) + int(rest[12])


def memory_mb(pid: int) -> tuple[float, float]:
    """Return VmRSS and VmHWM of a process, in MiB."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def http_get(url: str, timeout: float) -> tuple[int, bytes]:
    """Return the status and body of a GET (status 0: nothing answered)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # a loopback URL
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except OSError:
        return 0, b""


def wait_quiet(pid: int, deadline: Deadline, stage: str, alive: Any) -> float:
    """Sample CPU time until a quiet window; return when that window started (monotonic)."""
    samples: list[tuple[float, int]] = []
    per_window = round(QUIET_WINDOW / SAMPLE)
    while True:
        deadline.check(stage)
        if alive() is not None:
            raise TimedOut(f"{stage}: the daemon exited")
        samples.append((time.monotonic(), cpu_ticks(pid)))
        if len(samples) > per_window:
            start_at, start_ticks = samples[-per_window - 1]
            if samples[-1][1] - start_ticks <= QUIET_TICKS:
                return start_at
        time.sleep(SAMPLE)


def idle_profile(pid: int, seconds: float, deadline: Deadline) -> tuple[int, float, list[int]]:
    """Sample CPU for ``seconds``; return ticks used, the real span and ticks per busy burst."""
    start_at, start_ticks = time.monotonic(), cpu_ticks(pid)
    last = start_ticks
    bursts: list[int] = []
    current = 0
    quiet_samples = 0
    while time.monotonic() - start_at < seconds:
        deadline.check("idle measurement")
        time.sleep(SAMPLE)
        now = cpu_ticks(pid)
        delta, last = now - last, now
        if delta > 1:
            current += delta
            quiet_samples = 0
        else:
            quiet_samples += 1
            if current and quiet_samples >= 3:
                bursts.append(current)
                current = 0
    if current:
        bursts.append(current)
    return last - start_ticks, time.monotonic() - start_at, bursts


def measure(count: int, idle: float, budget: float) -> Figures:
    """Generate, seed, start the daemon, measure it, stop it; return what was measured."""
    figures = Figures(count)
    deadline = Deadline(budget)
    # One weekday for the policies and the baseline, even across midnight.
    day = cron_day()
    process: subprocess.Popen[str] | None = None
    logs: LogWatcher | None = None
    with tempfile.TemporaryDirectory(prefix="rotator-daemon-bench-") as tmp:
        workdir = Path(tmp)
        config = workdir / "policies"
        config.mkdir()
        try:
            began = time.perf_counter()
            names = write_policies(config, count, max(1, count // 1000), day)
            figures.count = len(names)
            figures.generated = time.perf_counter() - began
            url = f"sqlite:///{workdir / 'rotator.db'}"
            began = time.perf_counter()
            seed_journal_bulk(url, names, datetime.now(UTC).replace(microsecond=0))
            figures.seeded = time.perf_counter() - began
            deadline.check("seeding")
            env = {
                **as_installed(os.environ),
                "ROTATOR_CONFIG": str(config),
                "ROTATOR_STATE": url,
                # A dead endpoint: nothing is due, so no call may be made.
                "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
                "AWS_ACCESS_KEY_ID": "none",
                "AWS_SECRET_ACCESS_KEY": "none",
                "AWS_DEFAULT_REGION": "us-east-1",
            }
            env.pop("ROTATOR_LISTEN", None)
            args = [sys.executable, "-m", "rotator", "run", "--reconcile", "30"]
            args += ["--listen", "127.0.0.1:0", "--log-format", "json"]
            spawned = time.monotonic()
            process = spawn(args, env, workdir)
            logs = LogWatcher(process.stderr)
            pid = process.pid

            # Health endpoint, then "service started" (the CLI logs them in that order).
            health_url = None
            started = None
            while started is None:
                deadline.check("loading the policies")
                if process.poll() is not None:
                    raise TimedOut(f"the daemon exited with status {process.returncode}")
                if health_url is None and (found := logs.find("health endpoint listening")):
                    health_url = found[1]["url"] + "/healthz"
                if health_url is not None and figures.healthz is None:
                    status, _ = http_get(health_url, timeout=min(5.0, deadline.left() + 0.1))
                    if status == 200:
                        figures.healthz = time.monotonic() - spawned
                if found_started := logs.find("service started"):
                    started = found_started[0]
                    figures.started = started - spawned
                time.sleep(0.05)
            while figures.healthz is None and health_url is not None:
                deadline.check("/healthz")
                status, _ = http_get(health_url, timeout=min(5.0, deadline.left() + 0.1))
                if status == 200:
                    figures.healthz = time.monotonic() - spawned
                time.sleep(0.05)

            quiet_at = wait_quiet(pid, deadline, "first pass", process.poll)
            figures.first_pass = quiet_at - spawned
            if built := logs.find("schedule built"):
                figures.schedule_built = built[0] - spawned
            figures.rss_mb, figures.hwm_first_pass_mb = memory_mb(pid)

            ticks, span, bursts = idle_profile(pid, idle, deadline)
            figures.idle_cpu = ticks / TICK
            figures.idle_seconds = span
            figures.bursts = [b / TICK for b in bursts]

            assert health_url is not None
            metrics_url = health_url.removesuffix("/healthz") + "/metrics"
            began = time.perf_counter()
            status, body = http_get(metrics_url, timeout=max(deadline.left(), 1.0))
            if status == 200:
                figures.scrape_s = time.perf_counter() - began
                figures.scrape_mb = len(body) / 2**20
                for line in body.decode().splitlines():
                    if line.startswith("rotator_policies "):
                        figures.gauge_policies = int(float(line.split()[1]))
            figures.rss_after_scrape_mb, figures.hwm_mb = memory_mb(pid)

            # Stop it while it is idle (not in the middle of a reconcile pass).
            wait_quiet(pid, deadline, "quiet before SIGTERM", process.poll)
            stopping = time.monotonic()
            process.send_signal(signal.SIGTERM)
            try:
                figures.exit_code = process.wait(timeout=max(min(deadline.left(), 60.0), 1.0))
                figures.exit_s = time.monotonic() - stopping
            except subprocess.TimeoutExpired:
                figures.partial = "did not exit within 60 s of SIGTERM"
            figures.warnings = len(logs.noisy())
            for event in logs.noisy()[:5]:
                print(f"  [{count}] logged: {json.dumps(event)[:300]}", file=sys.stderr)
            if figures.partial is None:  # exited: the journal is the restart's alone
                process = None
                built, quiet, rss, noisy = restart(args, env, workdir, deadline)
                figures.restart_schedule_built, figures.restart_first_pass = built, quiet
                figures.restart_rss_mb = rss
                figures.warnings += noisy
        except TimedOut as exc:
            figures.partial = f"deadline ({budget:.0f}s) reached at: {exc}"
            if logs is not None:
                for line in logs.other[-10:]:
                    print(f"  [{count}] stderr: {line}", file=sys.stderr)
        finally:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    # The daemon is gone: the baseline has the machine to itself, as the daemon had.
    bare = bare_apscheduler(count, day, max(deadline.left(), 60.0))
    if bare is not None:
        figures.bare_s, figures.bare_mb = bare
    return figures


def spawn(args: list[str], env: dict[str, str], workdir: Path) -> subprocess.Popen[str]:
    """Start the daemon: its JSON log on a pipe (stderr), nothing on stdin or stdout."""
    return subprocess.Popen(
        args,
        env=env,
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def restart(
    args: list[str], env: dict[str, str], workdir: Path, deadline: Deadline
) -> tuple[float, float, float, int]:
    """Start the daemon again over the same journal; return when its schedule was built, when
    its CPU went quiet (both from spawn), its VmRSS then, and the warnings it logged.

    What a deploy or a node move does: the journal is the one the first
    daemon checked and left (with the digest its check kept), so this
    first pass is the one a service meets in practice; the first start
    over a never-checked journal is the rarer case. Its CPU goes quiet
    later than its schedule is built: the first watch pass, in its own
    thread, checks every row and the whole chain, as the first start's
    first pass did before planning.
    """
    spawned = time.monotonic()
    process = spawn(args, env, workdir)
    try:
        logs = LogWatcher(process.stderr)
        while not (built := logs.find("schedule built")):
            deadline.check("restart: the first pass's plan")
            if process.poll() is not None:
                raise TimedOut(f"the restarted daemon exited with status {process.returncode}")
            time.sleep(0.05)
        quiet_at = wait_quiet(process.pid, deadline, "restart: first pass", process.poll)
        rss, _ = memory_mb(process.pid)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=max(min(deadline.left(), 60.0), 1.0))
        except subprocess.TimeoutExpired:
            raise TimedOut("restart: no exit within 60 s of SIGTERM") from None
        for event in logs.noisy()[:5]:
            print(f"  [restart] logged: {json.dumps(event)[:300]}", file=sys.stderr)
        return built[0] - spawned, quiet_at - spawned, rss, len(logs.noisy())
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def _fmt(value: float | None, unit: str, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def _ratio(
    top: float | None, bottom: float | None, *, offset: float = 0.0, percent: bool = False
) -> str:
    if top is None or not bottom:
        return "-"
    value = top / bottom + offset
    return f"{100 * value:.0f}%" if percent else f"{value:.2f}x"


def print_table(results: list[Figures], idle: float) -> None:
    """Print one column of figures per policy count."""
    rows: list[tuple[str, list[str]]] = [
        ("policies written", [_fmt(r.generated, " s") for r in results]),
        ("journal seeded (bulk insert)", [_fmt(r.seeded, " s") for r in results]),
        ("service started (policies loaded)", [_fmt(r.started, " s") for r in results]),
        ("/healthz first 200", [_fmt(r.healthz, " s") for r in results]),
        ("schedule built (logged)", [_fmt(r.schedule_built, " s") for r in results]),
        ("first pass done (CPU quiet)", [_fmt(r.first_pass, " s") for r in results]),
        ("VmRSS after first pass", [_fmt(r.rss_mb, " MiB", 0) for r in results]),
        (
            "VmHWM after first pass (load + schedule)",
            [_fmt(r.hwm_first_pass_mb, " MiB", 0) for r in results],
        ),
        (
            f"idle CPU over {idle:.0f} s",
            [
                "-"
                if r.idle_cpu is None or not r.idle_seconds
                else f"{r.idle_cpu:.2f} s ({100 * r.idle_cpu / r.idle_seconds:.1f}% of a core)"
                for r in results
            ],
        ),
        (
            "  CPU per burst (reconcile pass)",
            [", ".join(f"{b:.2f}" for b in r.bursts) + " s" if r.bursts else "-" for r in results],
        ),
        (
            "/metrics scrape",
            [
                "-"
                if r.scrape_s is None or r.scrape_mb is None
                else f"{r.scrape_s:.2f} s, {r.scrape_mb:.1f} MiB"
                for r in results
            ],
        ),
        (
            "  rotator_policies gauge",
            ["-" if r.gauge_policies is None else str(r.gauge_policies) for r in results],
        ),
        ("VmRSS after the scrape", [_fmt(r.rss_after_scrape_mb, " MiB", 0) for r in results]),
        ("VmHWM at the end (scrape included)", [_fmt(r.hwm_mb, " MiB", 0) for r in results]),
        (
            "SIGTERM (idle): exit code, time",
            [
                "-" if r.exit_code is None else f"{r.exit_code}, {_fmt(r.exit_s, ' s', 2)}"
                for r in results
            ],
        ),
        ("warnings/errors logged", [str(r.warnings) for r in results]),
        ("bare APScheduler: jobs added (from spawn)", [_fmt(r.bare_s, " s") for r in results]),
        ("bare APScheduler: VmRSS then", [_fmt(r.bare_mb, " MiB", 0) for r in results]),
        ("first pass / bare APScheduler", [_ratio(r.first_pass, r.bare_s) for r in results]),
        ("restart: schedule built", [_fmt(r.restart_schedule_built, " s") for r in results]),
        (
            "restart: CPU quiet (first watch included)",
            [_fmt(r.restart_first_pass, " s") for r in results],
        ),
        ("restart: VmRSS then", [_fmt(r.restart_rss_mb, " MiB", 0) for r in results]),
        (
            "restart schedule built / bare APScheduler",
            [_ratio(r.restart_schedule_built, r.bare_s) for r in results],
        ),
        ("VmRSS / bare APScheduler", [_ratio(r.rss_mb, r.bare_mb) for r in results]),
        ("scrape / first pass", [_ratio(r.scrape_s, r.first_pass) for r in results]),
        (
            "peak raised by the scrape",
            [_ratio(r.hwm_mb, r.hwm_first_pass_mb, offset=-1.0, percent=True) for r in results],
        ),
    ]
    width = max(len(label) for label, _ in rows)
    columns = [
        max(len(f"{r.count:,} policies"), *(len(v[i]) for _, v in rows))
        for i, r in enumerate(results)
    ]
    header = "  ".join(
        f"{f'{r.count:,} policies':>{w}}" for r, w in zip(results, columns, strict=True)
    )
    print(f"{'':{width}}  {header}")
    for label, values in rows:
        print(
            f"{label:{width}}  "
            + "  ".join(f"{v:>{w}}" for v, w in zip(values, columns, strict=True))
        )
    for r in results:
        if r.partial:
            print(f"{r.count:,} policies: PARTIAL, {r.partial}")


def main() -> None:
    """Measure each count in turn, then print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idle measurement")
    parser.add_argument(
        "--deadline", type=float, default=480.0, help="seconds allowed per count, all stages"
    )
    opts = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; daemon: rotator run --reconcile 30; idle window {opts.idle}s")
    results: list[Figures] = []
    for count in opts.counts:
        began = time.perf_counter()
        results.append(measure(count, opts.idle, opts.deadline))
        print(f"{count:,} policies measured in {time.perf_counter() - began:.0f} s", flush=True)
    print()
    print_table(results, opts.idle)


if __name__ == "__main__":
    main()
