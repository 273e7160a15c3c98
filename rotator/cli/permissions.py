"""``rotator permissions``: print the least privilege the configured policies need.

The documents go to stdout, so one can be piped where it is applied::

    rotator permissions --provider aws | aws iam put-user-policy --user-name rotator \\
        --policy-name rotator --policy-document file:///dev/stdin
    rotator permissions --provider vault | vault policy write rotator -

Without ``--provider`` every system's document is printed, each after a
heading on stderr; ``--json`` prints one object keyed by system instead.
Nothing is changed anywhere; the only call a provider may get is STS
``GetCallerIdentity`` for the AWS account id when ``--account`` is not given.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from rotator.cli.console import err, plain, print_json
from rotator.cli.engines import engine_for
from rotator.cli.options import config_options, json_option
from rotator.errors import ConfigError, RotatorError
from rotator.policy.selection import Selection
from rotator.reports import permissions as perms


class _SystemChoice(click.Choice[str]):
    """``--provider``: a system whose renderer is installed, read when click first asks.

    Not at import: loading the renderers costs every command a tenth of a
    second, and a broken third-party renderer must not stop the others.
    """

    def __init__(self) -> None:
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        """Return the systems whose documents can be rendered, in print order."""
        return perms.systems()

    @choices.setter
    def choices(self, _given: Sequence[str]) -> None:
        """Ignore what ``click.Choice`` sets: the installed systems are read instead."""


@click.command()
@click.argument("names", nargs=-1)
@click.option(
    "--provider",
    "system",
    type=_SystemChoice(),
    default=None,
    help="Print only this system's document (default: every system's).",
)
@click.option(
    "--account",
    default=None,
    metavar="ID",
    help="AWS account id for the ARNs (default: asked of STS GetCallerIdentity).",
)
@json_option("Print one JSON object keyed by system.")
@config_options
def permissions(
    config: str,
    state: str,
    names: tuple[str, ...],
    system: str | None,
    account: str | None,
    as_json: bool,
) -> None:
    """Print the minimal permissions the policies (or NAMES) need, per system."""
    engine = engine_for(config, state)
    chosen = Selection(names).chosen(engine.policies)  # shell patterns too: 'payments/*'

    if account is not None:
        try:
            perms.use_account(engine.runtime, account)
        except ConfigError as exc:
            raise ConfigError(f"--account {account!r}: {exc}") from None
    systems = (system,) if system else None
    try:
        needed = perms.collect((engine.binding(name) for name in chosen), systems)
    except ConfigError:
        raise
    except RotatorError as exc:
        # An adapter that cannot say what it needs: the configuration is at fault.
        raise ConfigError(f"cannot tell the permissions: {exc}") from None
    found = perms.documents(needed)
    if as_json:
        print_json(found)
        return
    if not found:
        err.print(plain(f"nothing is needed at {system or 'any outside system'} by these policies"))
        return
    for name in found:
        if system is None:
            # The heading on stderr must come out before its document on stdout.
            sys.stdout.flush()
            err.print(plain(f"== {perms.summary(name, needed)} =="))
        # click.echo, not the rich console: the document must reach a pipe byte for byte.
        click.echo(perms.text(name, needed), nl=False)
