"""``rotator leaks``: emergency rotation from secret-scanner reports (placeholder)."""

from __future__ import annotations

import click


@click.group()
def leaks() -> None:
    """Act on leak reports from secret scanners (gitleaks, trufflehog)."""
