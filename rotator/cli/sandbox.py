"""``rotator sandbox``: the emulators, seeded, and whole rotations watched in under a minute."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from rotator.adapters.discovery import registry
from rotator.cli import environment
from rotator.cli.console import err, fail, out, plain
from rotator.cli.engines import engine_for, journal_for
from rotator.cli.options import KEY_FILE
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
    help="Seconds to keep rotating before printing the status.",
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
    help="Journal URL (default: rotator.db in the working directory).",
)
@click.option(
    "--key-file",
    "key_file",
    # No ROTATOR_KEY_FILE: a shell set up for production must not hand its key
    # to a throwaway demo journal.
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The journal's key file (required with a PostgreSQL --state; default: beside "
    "the sandbox's SQLite journal).",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("rotator-sandbox"),
    show_default=True,
    help="Directory for the journal, the filled-in policy and the servers' files; "
    "kept after the run, emptied by the next one.",
)
@click.option(
    "--keep",
    is_flag=True,
    help="Leave every server up after the demo, print the `export` lines a shell needs "
    "to use them, and serve until Ctrl-C or SIGTERM.",
)
@click.option("--log-format", type=click.Choice(["json", "console"]), default=None)
def sandbox(
    duration: float,
    config: str | None,
    state: str | None,
    key_file: Path | None,
    workdir: Path,
    keep: bool,
    log_format: str | None,
) -> None:
    """Start local emulators, seed them, and watch whole rotations in under a minute.

    Runs from any directory. The journal and the filled-in policy stay in
    --workdir, so the commands printed at the end work after the servers stop.
    With --keep the servers (moto_server, OpenBao or the Vault emulator, the
    Azure Key Vault and API Management emulator, the Kubernetes emulator with
    Deployment demo/demo-api) stay up; the `export` lines printed then carry
    their local, throwaway credentials.
    """
    # Imported here: the emulators pull in moto and the SDKs, which no other command needs.
    from rotator.sandbox import run as emulators

    logs.configure(log_format or "console", "info")
    key_file = key_file.resolve() if key_file is not None else None  # printed for any directory
    # Read by engine_for below, as for every command (see rotator.cli.options).
    click.get_current_context().meta[KEY_FILE] = key_file
    try:
        # What would fail the demo half-way is refused before a server starts.
        environment.check(registry())
        if state is not None:
            # A journal the servers cannot help with is checked before they start.
            journal_for(state).close()
        with emulators.session(config, state, workdir, key_file) as current:
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
                )
            )
            _print_next_steps(
                current.config, current.state if current.state_is_own else None, key_file
            )
            if keep:
                _print_exports(emulators.export_lines(current.exports))
                emulators.serve_until_stopped()
    except PolicyError as exc:
        for problem in exc.problems:
            err.print(plain(problem))
        fail("the sandbox policy is invalid")
    except (ConfigError, JournalError) as exc:
        fail(str(exc))
    sys.exit(code)


def _print_next_steps(config: str, own_state: str | None, key_file: Path | None) -> None:
    """Print commands that read the demo's journal, runnable from any directory."""
    # A journal the caller named may carry a password in its URL: never echoed.
    state = shlex.quote(own_state) if own_state else "<the --state you gave>"
    where = f"--config {shlex.quote(config)} --state {state}"
    if key_file is not None:
        where += f" --key-file {shlex.quote(str(key_file))}"
    out.print(plain("the journal and the policy stay after the servers stop; read them with:"))
    out.print(plain(f"  rotator status {where}"))
    out.print(plain(f"  rotator audit verify {where}"))


def _print_exports(lines: list[str]) -> None:
    """Print the shell's export lines on stdout, unstyled, and say how to stop."""
    out.rule("servers kept up")
    # click.echo, not rich: the lines must reach the shell exactly as written.
    click.echo("# Paste these into another shell (local, throwaway credentials):")
    for line in lines:
        click.echo(line)
    click.echo("# Serving until Ctrl-C or SIGTERM.", nl=True)
    sys.stdout.flush()
