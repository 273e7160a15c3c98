"""``rotator validate``: check every policy file, changing nothing and calling no provider."""

from __future__ import annotations

from typing import Any

import click

from rotator.adapters.discovery import registry
from rotator.cli import environment
from rotator.cli.console import err, fail, out, plain, print_json
from rotator.cli.options import config_options, json_option, policies
from rotator.errors import ConfigError, PolicyError, Problem


@click.command()
@json_option("Print the result as JSON: valid, counts, and each problem's file, line and reason.")
@config_options
def validate(config: str, state: str, as_json: bool) -> None:
    """Check every policy file and rotator's environment variables; print every problem.

    A policy problem reads FILE:LINE:COL: field.path: reason; an environment
    problem, ``environment: NAME=value: reason``. Exit 0: all is valid; 2: at
    least one problem. With --json the problems go to stdout as JSON and
    stderr gets one line saying how many. A third-party adapter that failed
    to load is named on stderr, and skipped.
    """
    # Every plugin is loaded to find the broken ones; rotator's own adapters
    # load only as a policy names one (a policy naming a broken one is refused).
    for skipped in registry().skipped_plugins:
        err.print(plain(f"rotator: warning: {skipped}"))
    settings = environment.problems(registry())
    if not as_json:
        for problem in settings:
            err.print(plain(f"environment: {problem}"))
        loaded = policies(config)
        _refuse_bad(settings)
        files = {p.source_file for p in loaded}
        out.print(f"{len(loaded)} policies in {len(files)} file(s) are valid", highlight=False)
        return
    try:
        loaded = policies(config)
    except PolicyError as exc:
        print_json(_verdict(problems=exc.problems, settings=settings))
        also = f" and {len(settings)} in the environment" if settings else ""
        fail(f"{len(exc.problems)} problem(s) in the policy files{also}; nothing was changed")
    except ConfigError as exc:
        print_json(_verdict(error=str(exc), settings=settings))
        fail(str(exc))
    files = {p.source_file for p in loaded}
    print_json(_verdict(policies=len(loaded), files=len(files), settings=settings))
    _refuse_bad(settings)


def _refuse_bad(settings: list[str]) -> None:
    """Exit 2 if the environment has problems (the policies themselves are valid)."""
    if settings:
        fail(
            f"the policies are valid, but {len(settings)} environment variable(s) are not; "
            "nothing was changed"
        )


def _verdict(
    *,
    policies: int = 0,
    files: int = 0,
    problems: list[Problem] | None = None,
    error: str | None = None,
    settings: list[str] | None = None,
) -> dict[str, Any]:
    """Return the JSON form of a validation: valid, counts, located problems, an unlocated error."""
    found = problems or []
    return {
        "valid": not found and error is None and not settings,
        "policies": policies,
        "files": files,
        "problems": [
            {
                "file": p.file,
                "line": p.line,
                "column": p.column,
                "field": p.path,
                "reason": p.reason,
            }
            for p in found
        ],
        "error": error,
        "environment": settings or [],
    }
