"""``rotator validate``: check every policy file, changing nothing and calling no provider."""

from __future__ import annotations

import click

from rotator.cli.console import out
from rotator.cli.options import config_options, policies


@click.command()
@config_options
def validate(config: str, state: str) -> None:
    """Check every policy file; print every problem as FILE:LINE:COL: field.path: reason."""
    loaded = policies(config)
    files = {p.source_file for p in loaded}
    out.print(f"{len(loaded)} policies in {len(files)} file(s) are valid", highlight=False)
