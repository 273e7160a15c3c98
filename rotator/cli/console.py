"""Where commands print: the two consoles, text shown as written, exit codes, relative times."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from typing import NoReturn

import click
from rich.console import Console
from rich.text import Text

from rotator.adapters.durations import format_duration
from rotator.output.escaping import bytes_repr, printable

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2

# Off a terminal (a CronJob's log, a CI job) tables get room instead of 80 columns.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else 160)


def plain(text: object, style: str = "") -> Text:
    """Return text for the consoles that is shown as written: never markup, emoji or controls.

    Every name, path, reason and error rotator prints may come from outside
    (a policy file, a remote API): ``[/]`` in it must not crash rich, and
    ``[link=...]`` or an escape sequence must not restyle the terminal.
    """
    return Text(printable(str(text)), style=style)


def print_json(data: object) -> None:
    """Print ``data`` as indented JSON on stdout (what every ``--json`` prints)."""
    click.echo(json.dumps(data, indent=2, default=bytes_repr))


def fail(message: str, code: int = EXIT_INVALID) -> NoReturn:
    """Say ``rotator: error: MESSAGE`` on stderr and exit with ``code`` (2: nothing changed)."""
    err.print(plain(f"rotator: error: {message}"))
    sys.exit(code)


def warn(message: str) -> None:
    """Say ``rotator: warning: MESSAGE`` on stderr (stdout may be a pipe of JSON)."""
    err.print(plain(f"rotator: warning: {message}"))


def when(at: datetime | None, now: datetime) -> str:
    """Say when, relative to now: ``in 3d4h``, ``5m ago``, ``now``."""
    if at is None:
        return "-"
    delta = at - now
    if abs(delta) < timedelta(seconds=1):
        return "now"
    words = format_duration(timedelta(seconds=round(abs(delta.total_seconds()))))
    return f"in {words}" if delta > timedelta(0) else f"{words} ago"
