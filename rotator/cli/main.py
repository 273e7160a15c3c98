"""The ``rotator`` command: its group, and every command group wired into it.

Each command lives with its group: :mod:`.rotation` (plan, run, rotate,
check), :mod:`.state` (status, history, describe, db upgrade), :mod:`.validate`,
:mod:`.init`, :mod:`.audit`, :mod:`.leaks`, :mod:`.permissions` and :mod:`.sandbox`.
A command's module is imported only when that command runs (or ``--help``
lists them all): ``rotator validate`` never pays for the journal's database
layer, the service or the engine, which other commands need.
Exit codes (docs/commands.md): 0 everything succeeded or nothing was due;
1 at least one rotation failed (the others still ran) or a secret needs
attention; 2 invalid configuration or usage, nothing changed.
"""

from __future__ import annotations

import importlib
import os

import click

from rotator import __version__
from rotator.adapters.discovery import registry
from rotator.cli import environment

#: Every command, by name: the module that defines it and its name there.
COMMANDS = {
    "init": "rotator.cli.init:init",
    "validate": "rotator.cli.validate:validate",
    "plan": "rotator.cli.rotation:plan",
    "run": "rotator.cli.rotation:run",
    "db": "rotator.cli.state:db",
    "check": "rotator.cli.rotation:check",
    "rotate": "rotator.cli.rotation:rotate",
    "status": "rotator.cli.state:status",
    "history": "rotator.cli.state:history",
    "describe": "rotator.cli.state:describe",
    "sandbox": "rotator.cli.sandbox:sandbox",
    "audit": "rotator.cli.audit:audit",
    "leaks": "rotator.cli.leaks:leaks",
    "permissions": "rotator.cli.permissions:permissions",
}


class _Rotator(click.Group):
    """The command group: commands imported when run, help ending with every setting read."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Return every command's name, sorted (as a group lists the commands it holds)."""
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Return the command called ``cmd_name``, importing its module on first use."""
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, _, attribute = COMMANDS[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{COMMANDS[cmd_name]} is not a click command")
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

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


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    cli(prog_name="rotator")
