"""``rotator permissions``: the least privilege the policies need (placeholder)."""

from __future__ import annotations

import click


@click.command()
def permissions() -> None:
    """Print the minimal permissions the configured policies need."""
