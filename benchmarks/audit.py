"""Measure the audit trail: journal writes with their chained record, and verifying the chain.

Usage: python benchmarks/audit.py [--steps N] [--state URL]

Writes N journal steps (one rotation created, then recorded steps, as the
engine does), each with its audit record in the same transaction, from one
thread and from four at once; then verifies the whole chain and exports it.
Prints steps per second, records verified per second and the export size.
SQLite in a temporary directory by default; pass a PostgreSQL URL to
measure the shared journal (its tables are dropped first).
"""

from __future__ import annotations

import argparse
import io
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from rotator.journal.audit import to_jsonl
from rotator.journal.journal import Journal
from rotator.journal.records import Rotation
from rotator.journal.schema import metadata, schema_migrations
from rotator.lifecycle import State, Step


def _steps(journal: Journal, prefix: str, count: int) -> None:
    """Write ``count`` steps: a rotation per ten steps, nine recorded events each."""
    now = journal.clock()
    done = 0
    number = 0
    while done < count:
        rotation = journal.create(
            Rotation(
                id=f"{prefix}-{number}",
                secret=f"{prefix}/s{number % 50}",
                state=State.PLANNED,
                trigger="schedule",
                created_at=now,
                updated_at=now,
            )
        )
        done += 1
        for _ in range(min(9, count - done)):
            rotation = journal.record(rotation, Step.MINT, "retry", "throttled (attempt 1 of 4)")
            done += 1
        number += 1


def main() -> None:
    """Run the measurements and print them."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--state", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.state or f"sqlite:///{Path(tmp) / 'journal.db'}"
        if url.startswith("postgresql"):
            engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
            with engine.begin() as conn:
                metadata.drop_all(conn)
                schema_migrations.drop(conn, checkfirst=True)
            engine.dispose()
        journal = Journal(url, lambda: datetime.now(UTC), key_file=Path(tmp) / "key")
        journal.migrate()

        started = time.perf_counter()
        _steps(journal, "one", args.steps)
        one = time.perf_counter() - started
        print(f"1 thread:  {args.steps} steps in {one:.2f}s, {args.steps / one:,.0f} steps/s")

        started = time.perf_counter()
        threads = [
            threading.Thread(target=_steps, args=(journal, f"t{n}", args.steps // 4))
            for n in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        four = time.perf_counter() - started
        written = args.steps // 4 * 4
        print(f"4 threads: {written} steps in {four:.2f}s, {written / four:,.0f} steps/s")

        started = time.perf_counter()
        report = journal.trail.verify()
        verify = time.perf_counter() - started
        print(
            f"verify:    {report.records} records in {verify:.2f}s, "
            f"{report.records / verify:,.0f} records/s, intact={report.intact}"
        )

        started = time.perf_counter()
        out = io.StringIO()
        for line in to_jsonl(journal.trail.records()):
            out.write(line)
        export = time.perf_counter() - started
        size = len(out.getvalue().encode())
        print(
            f"export:    {report.records} records in {export:.2f}s, "
            f"{size / report.records:.0f} bytes/record as JSON lines"
        )
        journal.close()


if __name__ == "__main__":
    main()
