"""The ``rotator`` command: its group, and every command group wired into it.

Each command lives with its group: :mod:`.rotation` (plan, run, rotate,
check), :mod:`.state` (status, history, db upgrade), :mod:`.validate`,
:mod:`.audit`, :mod:`.leaks`, :mod:`.permissions` and :mod:`.sandbox`.
Exit codes (README, "Commands"): 0 everything succeeded or nothing was due;
1 at least one rotation failed (the others still ran); 2 invalid
configuration or usage, nothing changed.
"""

from __future__ import annotations

import os

import click

from rotator import __version__
from rotator.cli import audit, leaks, permissions, rotation, sandbox, state, validate


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="rotator")
def cli() -> None:
    """Rotate credentials on a schedule: mint, store, verify, promote, revoke."""


for command in (
    validate.validate,
    rotation.plan,
    rotation.run,
    state.db,
    rotation.check,
    rotation.rotate,
    state.status,
    state.history,
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
