"""The ``rotator`` command: its group, and every command group wired into it.

Each command lives with its group: :mod:`.rotation` (plan, run, rotate,
check), :mod:`.state` (status, history, describe, db upgrade), :mod:`.validate`,
:mod:`.init`, :mod:`.audit`, :mod:`.leaks`, :mod:`.permissions` and :mod:`.sandbox`.
Exit codes (docs/commands.md): 0 everything succeeded or nothing was due;
1 at least one rotation failed (the others still ran) or a secret needs
attention; 2 invalid configuration or usage, nothing changed.
"""

from __future__ import annotations

import os

import click

from rotator import __version__
from rotator.adapters.discovery import registry
from rotator.cli import (
    audit,
    environment,
    init,
    leaks,
    permissions,
    rotation,
    sandbox,
    state,
    validate,
)


class _Rotator(click.Group):
    """The command group, whose help ends with every environment variable rotator reads."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Write the examples, then rotator's and the installed adapters' settings."""
        with formatter.section("Examples"):
            formatter.write_dl(EXAMPLES)
        with formatter.section("Environment (checked at start: see `rotator validate`)"):
            known = environment.Known.of(registry())
            formatter.write_dl([(s.name, s.help) for s in known.settings.values()])


#: What a first hour with rotator looks like, shown under ``rotator --help``.
EXAMPLES = [
    ("rotator sandbox", "Rotate demo secrets on local servers (no cloud account)."),
    ("rotator init --store vault-kv", "Print a commented starter policy (-o FILE: write it)."),
    ("rotator validate", "Check the policies in ./schedules and the environment."),
    ("rotator plan", "Say what is due, and why, changing nothing."),
    ("rotator run --once", "Do what is due now, then exit (cron, a Kubernetes CronJob)."),
    ("rotator rotate NAME", "Rotate one secret now, due or not."),
    ("rotator status --json", "Every secret's state, for scripts."),
]


@click.group(
    cls=_Rotator,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="rotator")
def cli() -> None:
    """Rotate credentials on a schedule: mint, store, verify, promote, revoke."""


for command in (
    init.init,
    validate.validate,
    rotation.plan,
    rotation.run,
    state.db,
    rotation.check,
    rotation.rotate,
    state.status,
    state.history,
    state.describe,
    sandbox.sandbox,
    audit.audit,
    leaks.leaks,
    permissions.permissions,
):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    cli(prog_name="rotator")
