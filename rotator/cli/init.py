"""``rotator init``: print (or write) a commented starter policy for the adapters named.

The policy is built and checked by :mod:`rotator.policy.starter`; this
command only reads the options and says how it went. It reads no policy
file, opens no journal and calls no provider: it writes the starter to
stdout, or to ``--output`` when no file is there yet.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path

import click

from rotator.adapters.discovery import registry
from rotator.cli.console import EXIT_FAILED, err, fail, plain
from rotator.errors import ConfigError, PolicyError
from rotator.output.files import create_file
from rotator.policy.starter import (
    DEFAULT_NAME,
    UNNAMED_FILE,
    BrokenStarter,
    StarterRequest,
    starter_policy,
)


def _names(role: str) -> Callable[[click.Context, click.Parameter, str], list[str]]:
    """Return a shell completion of the installed adapters of ``role`` (and stores, for targets)."""

    def complete(_ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
        found = registry()
        tables: dict[str, Mapping[str, object]] = {
            "store": found.stores,
            "issuer": found.issuers,
            "target": {**found.targets, **found.stores},
            "verifier": found.verifiers,
            "notifier": found.notifiers,
        }
        return sorted(name for name in tables[role] if name.startswith(incomplete))

    return complete


@click.command()
@click.option(
    "--store",
    metavar="PROVIDER",
    default=None,
    shell_complete=_names("store"),
    help="Where the credential is kept: aws-secretsmanager, vault-kv, azure-keyvault...",
)
@click.option(
    "--issuer",
    metavar="KIND",
    default="random",
    show_default=True,
    shell_complete=_names("issuer"),
    help="What mints it: random, aws-iam-access-key, vault-token, manual...",
)
@click.option(
    "--target",
    "targets",
    metavar="KIND",
    multiple=True,
    shell_complete=_names("target"),
    help="Where consumers read it (repeatable): file, kubernetes-secret, github-actions, "
    "a store provider as a replica...",
)
@click.option(
    "--verify",
    metavar="KIND",
    multiple=True,
    shell_complete=_names("verifier"),
    help="A check the new credential must pass (repeatable): http, exec.",
)
@click.option(
    "--notifier",
    "notifiers",
    metavar="KIND",
    multiple=True,
    shell_complete=_names("notifier"),
    help="Where its alerts go (repeatable): slack, webhook, exec.",
)
@click.option(
    "--name",
    metavar="NAME",
    default=DEFAULT_NAME,
    show_default=True,
    help="The secret's name in the policy.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file, which must not exist yet (default: standard output).",
)
def init(
    store: str | None,
    issuer: str,
    targets: tuple[str, ...],
    verify: tuple[str, ...],
    notifiers: tuple[str, ...],
    name: str,
    output: Path | None,
) -> None:
    """Print a commented starter policy for one secret, for the adapters named.

    Every value in it validates as written (it is loaded before it is
    printed) and names things that are not yours: change them, then run
    the commands its header lists. Exit 0: printed or written; 2: an
    unknown adapter, a bad name, adapters that cannot go together, or
    --output names an existing file (nothing was written); 1: an adapter's
    example does not validate (a bug: please report it).
    """
    found = registry()
    if store is None:
        fail(f"--store is needed: one of {', '.join(sorted(found.stores))}")
    if output is not None and os.path.lexists(output):
        fail(f"--output {output} exists; nothing was written (init never overwrites a file)")
    request = StarterRequest(
        store=store,
        issuer=issuer,
        targets=targets,
        verify=verify,
        notifiers=notifiers,
        name=name,
        file=str(output) if output is not None else UNNAMED_FILE,
    )
    try:
        text = starter_policy(request, found)
    except PolicyError as exc:
        for problem in exc.problems:
            err.print(plain(problem))
        fail(
            f"{len(exc.problems)} problem(s): these adapters do not make a valid policy "
            "together; nothing was written"
        )
    except ConfigError as exc:
        fail(str(exc))
    except BrokenStarter as exc:
        fail(f"the starter does not validate (a bug: please report it): {exc}", EXIT_FAILED)
    if output is None:
        # click.echo, not the rich console: the document must reach a pipe byte for byte.
        click.echo(text, nl=False)
        return
    try:
        create_file(output, text)
    except FileExistsError:
        fail(f"--output {output} exists; nothing was written (init never overwrites a file)")
    except FileNotFoundError:
        fail(
            f"--output {output}: its folder {output.parent} does not exist (make it first: "
            f"mkdir -p {shlex.quote(str(output.parent))}); nothing was written"
        )
    except OSError as exc:
        fail(f"--output {output}: cannot write it: {exc.strerror or exc}; nothing was written")
    err.print(plain(f"wrote {output}: next, rotator validate --config {output}"))
