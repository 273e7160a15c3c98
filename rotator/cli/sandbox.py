"""``rotator sandbox``: the emulators, seeded, and whole rotations watched in under a minute."""

from __future__ import annotations

import sys

import click

from rotator.cli.console import err, fail, out, plain
from rotator.cli.options import engine_for
from rotator.cli.state import print_status
from rotator.errors import ConfigError, JournalError, PolicyError
from rotator.output import logs
from rotator.reports.status import read_status
from rotator.watch.usage import watch_usage


@click.command()
@click.option(
    "--duration",
    default=45.0,
    show_default=True,
    help="Seconds to keep rotating before printing the status and exiting.",
)
@click.option(
    "--config",
    "config",
    default=None,
    help="Policy template (default: the packaged demo policy, rotator/sandbox/demo.yaml).",
)
@click.option(
    "--state",
    "state",
    default=None,
    help="Journal URL (default: a fresh one in a temporary directory).",
)
@click.option("--log-format", type=click.Choice(["json", "console"]), default=None)
def sandbox(duration: float, config: str | None, state: str | None, log_format: str | None) -> None:
    """Start local emulators, seed them, and watch whole rotations in under a minute."""
    # Imported here: the emulators pull in moto and the SDKs, which no other command needs.
    from rotator.sandbox import run as emulators

    logs.configure(log_format or "console", "info")
    try:
        with emulators.session(config, state) as current:
            code = emulators.run_passes(current, duration)
            out.rule("rotator status")
            watched = engine_for(current.config, current.state)
            watch_usage(watched)  # last use of the IAM keys, for the status below
            print_status(read_status(watched))
            chain = watched.journal.trail.verify()
            out.print(
                plain(
                    f"audit trail: {chain.records} records, "
                    + ("intact" if chain.intact else f"BROKEN at {chain.broken_at}")
                    + f" (`rotator audit verify --state {current.state}`)"
                )
            )
    except PolicyError as exc:
        for problem in exc.problems:
            err.print(plain(problem))
        fail("the sandbox policy is invalid")
    except (ConfigError, JournalError) as exc:
        fail(str(exc))
    sys.exit(code)
