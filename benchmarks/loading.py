"""Measure `rotator.policy.loader.load_policies` alone on 10,000 and 100,000 generated policies.

Prints figures; asserts nothing about time. Run: ``.venv/bin/python benchmarks/loading.py``
(``--counts 1000`` for a quick look, ``--tracemalloc`` for the top allocations
still alive after loading, ``--profile`` for the functions that take the time).

For each count, policies are generated as in ``benchmarks/daemon.py`` (1,000
per file: random issuer, ``aws-secretsmanager`` store, mixed every/cron/window/
jitter, a ``defaults:`` grace), then, ``--runs`` times, a fresh interpreter
(this script with ``--child DIR``) imports rotator, loads the installed
adapters (timed apart: the registry is read once per process whatever the
number of policies), and times one ``load_policies(DIR)``. Measured in that
process, from ``/proc/self/status``:

- *before*: ``VmRSS`` after imports and the registry, before loading;
- *peak*: ``VmHWM``, the highest resident size the process ever reached;
- *retained*: ``VmRSS`` after loading, with the list of policies still alive
  (after a full garbage collection), and the same less *before*: what the
  policies themselves cost.

With ``--tracemalloc`` tracing starts just before ``load_policies`` (which
makes it several times slower, so the time of that run is not comparable);
the top allocation sites of what is still alive are printed, with the
traced peak. With ``--profile`` one extra run is made under cProfile and
its top functions by cumulative and by own time are printed.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from policies import write_policies  # benchmarks/policies.py, beside this script

#: Policies per generated file, as benchmarks/daemon.py writes them.
PER_FILE = 1000


def memory_mib() -> tuple[float, float]:
    """Return this process's VmRSS and VmHWM, in MiB."""
    values: dict[str, float] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def child(directory: str, *, trace: bool, profile: str | None, top: int) -> None:
    """Load the policies of ``directory`` once and print the figures as one JSON line."""
    started = time.perf_counter()
    from rotator.adapters.discovery import registry
    from rotator.policy.loader import load_policies

    imported = time.perf_counter()
    # Adapters are imported when first looked up: import them all here, so
    # that loading is timed (and traced) without them, as before.
    registry().skipped  # noqa: B018 (the lookup is the point)
    registry_s = time.perf_counter() - imported
    gc.collect()
    before, _ = memory_mib()
    profiler = cProfile.Profile() if profile else None
    if trace:
        tracemalloc.start(1)
    if profiler is not None:
        profiler.enable()
    start = time.perf_counter()
    policies = load_policies(directory)
    elapsed = time.perf_counter() - start
    if profiler is not None:
        profiler.disable()
    _, peak = memory_mib()
    gc.collect()
    retained, _ = memory_mib()
    figures: dict[str, Any] = {
        "policies": len(policies),
        "import_s": imported - started,
        "registry_s": registry_s,
        "load_s": elapsed,
        "before_mib": before,
        "peak_mib": peak,
        "retained_mib": retained,
    }
    if trace:
        snapshot = tracemalloc.take_snapshot()
        figures["traced_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        stats = snapshot.statistics("lineno")
        figures["traced_alive_mib"] = sum(s.size for s in stats) / 2**20
        figures["top"] = [
            f"{s.size / 2**20:8.2f} MiB {s.count:>9} blocks  "
            f"{s.traceback[0].filename}:{s.traceback[0].lineno}"
            for s in stats[:top]
        ]
    if profiler is not None and profile is not None:
        profiler.dump_stats(profile)
    # the policies stay alive until the figures are out
    figures["alive"] = len(policies) == figures["policies"]
    print(json.dumps(figures))


def run_child(directory: Path, *, trace: bool, profile: str | None, top: int) -> dict[str, Any]:
    """Run :func:`child` in a fresh interpreter and return its figures."""
    args = [sys.executable, __file__, "--child", str(directory), "--top", str(top)]
    if trace:
        args.append("--tracemalloc")
    if profile:
        args += ["--profile-out", profile]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"the loading subprocess failed with exit code {proc.returncode}")
    figures: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return figures


def print_profile(path: str, lines: int) -> None:
    """Print the top functions of a cProfile dump, by cumulative and by own time."""
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        stats = pstats.Stats(path, stream=out)
        stats.strip_dirs().sort_stats(order).print_stats(lines)
        text = out.getvalue()
        # skip pstats' preamble down to the table
        print(f"  -- cProfile, by {order} --")
        print(text[text.find("   ncalls") :].rstrip())


def measure(count: int, opts: argparse.Namespace) -> None:
    """Generate ``count`` policies, load them ``opts.runs`` times, print the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        start = time.perf_counter()
        write_policies(directory, count, max(1, count // PER_FILE))
        generated = time.perf_counter() - start
        size = sum(f.stat().st_size for f in directory.iterdir()) / 2**20
        print(
            f"{count} policies in {max(1, count // PER_FILE)} files ({size:.1f} MiB of YAML, "
            f"generated in {generated:.1f}s)"
        )
        runs = [run_child(directory, trace=False, profile=None, top=0) for _ in range(opts.runs)]
        loads = [r["load_s"] for r in runs]
        last = runs[-1]
        assert all(r["policies"] == count for r in runs), "not every policy loaded"
        print(
            f"  load_policies  median {statistics.median(loads):7.2f}s "
            f"(min {min(loads):.2f}s, max {max(loads):.2f}s, {opts.runs} runs; "
            f"{statistics.median(loads) / count * 1e6:.0f} us/policy)"
        )
        print(
            f"  imports {last['import_s']:.2f}s, registry {last['registry_s']:.2f}s (not in the "
            "load time)"
        )
        print(
            f"  RSS  before {last['before_mib']:6.1f} MiB   "
            f"peak (VmHWM) {last['peak_mib']:6.1f} MiB   retained {last['retained_mib']:6.1f} MiB"
            f" (+{last['retained_mib'] - last['before_mib']:.1f} MiB for the policies, "
            f"{(last['retained_mib'] - last['before_mib']) * 2**20 / count:.0f} B each)"
        )
        if opts.tracemalloc:
            traced = run_child(directory, trace=True, profile=None, top=opts.top)
            print(
                f"  tracemalloc: peak {traced['traced_peak_mib']:.1f} MiB, alive after loading "
                f"{traced['traced_alive_mib']:.1f} MiB; top sites:"
            )
            for line in traced["top"]:
                print(f"    {line}")
        if opts.profile:
            dump = str(directory / "load.prof")
            run_child(directory, trace=False, profile=dump, top=0)
            print_profile(dump, opts.top)


def main() -> None:
    """Parse the options; run one child, or measure every count."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--counts", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tracemalloc", action="store_true", help="print top allocations")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one load")
    parser.add_argument("--top", type=int, default=15, help="lines of tracemalloc/cProfile")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        child(opts.child, trace=opts.tracemalloc, profile=opts.profile_out, top=opts.top)
        return
    for count in opts.counts:
        measure(count, opts)


if __name__ == "__main__":
    main()
