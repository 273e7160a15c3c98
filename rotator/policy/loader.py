"""Read policy files and turn them into validated policies, or into located problems.

:func:`load_policies` reads one YAML file or every ``*.yaml``/``*.yml`` file of
a directory and returns the policies, or raises :class:`PolicyError` with every
problem of every file at once, each as ``FILE:LINE:COL: field.path: reason``.

Each file is first read the quick way (:mod:`.quick_load`: libyaml's events
straight into plain values, repeated blocks validated once). Only a file
where that meets anything unusual is read again the located way
(:mod:`.located_file`): screened and composed with every value's line and
column (:mod:`.located_yaml`), merged with its ``defaults:``
(:mod:`.defaults`), each validation error placed where it is written
(:mod:`.problems`). Then the set is judged as a whole (:mod:`.conflicts`):
names used twice across files, alerts naming undeclared notifiers.

Nothing here calls a provider: only the adapters' ``Config`` models are used.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rotator.adapters import discovery
from rotator.adapters.discovery import Registry
from rotator.errors import ConfigError, PolicyError, Problem
from rotator.policy.conflicts import PolicySetConflicts
from rotator.policy.located_file import LocatedFileLoader
from rotator.policy.model import NotifierSpec, Policy
from rotator.policy.quick_load import SharedModels, load_quickly

POLICY_SUFFIXES = (".yaml", ".yml")


class PolicySet(list[Policy]):
    """The policies loaded, and the notifiers declared beside them (by name)."""

    def __init__(self, policies: Iterable[Policy], notifiers: dict[str, NotifierSpec]) -> None:
        super().__init__(policies)
        self.notifiers = notifiers


def _policy_files(path: Path) -> list[Path]:
    """Return the file named, or the policy files of the directory named, sorted."""
    if not path.exists():
        raise ConfigError(f"policy path {str(path)!r} does not exist")
    if not path.is_dir():
        return [path]
    files = sorted(
        child for child in path.iterdir() if child.suffix in POLICY_SUFFIXES and child.is_file()
    )
    if not files:
        raise ConfigError(f"no policy files (*.yaml, *.yml) in {str(path)!r}")
    return files


def load_policies(path: str | Path, registry: Registry | None = None) -> PolicySet:
    """Load and validate every policy in a file or a directory of ``*.yaml``/``*.yml`` files.

    Returns the policies, with the notifiers declared in any of the files
    (``notifiers:``, one namespace across files) as ``.notifiers``. Raises
    :class:`ConfigError` if the path does not exist or a directory holds no
    policy file, and :class:`PolicyError` with every problem of every file
    if anything is invalid (a secret's ``alerts`` naming an undeclared
    notifier included). Adapters come from ``registry`` (the installed ones
    by default); none is called.
    """
    files = _policy_files(Path(path))
    adapters = registry if registry is not None else discovery.registry()
    with _automatic_collection_paused():
        return _load_files(files, adapters)


@contextlib.contextmanager
def _automatic_collection_paused() -> Iterator[None]:
    """Keep the cyclic garbage collector from running automatically inside the block.

    Loading keeps every policy it builds (five tracked objects each), so
    automatic collections keep walking an ever larger heap that holds no
    garbage: a fifth of the time of loading 100,000 policies. Reference
    counting still frees everything; a collection after the block finds
    whatever cycle an error left. Restored only if it was enabled on entry,
    so overlapping loads on two threads leave it enabled once both are done.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True)
class ReadablePolicies:
    """What read-only commands can use of a policy set that may hold problems.

    ``policies`` are those of the files without any problem (with every
    notifier declared validly in any file); ``problems`` are every problem
    of every file, sorted, as :class:`PolicyError` would list them;
    ``skipped_files`` name the files left out.
    """

    policies: PolicySet
    problems: list[Problem]
    skipped_files: list[str]


def load_readable_policies(path: str | Path, registry: Registry | None = None) -> ReadablePolicies:
    """Load every policy file, keeping the files that are valid and the problems of the others.

    For the commands that only read (``status``, ``history``, ``audit``):
    an invalid file, during the incident a bad edit caused, must not keep
    them from showing what the journal and the other files tell. A file
    with any problem is left out whole (part of a file that is being
    edited is no policy to show); a secret named in two files is kept from
    the first, the second file being the one with the problem. Raises
    :class:`ConfigError` as :func:`load_policies` does when there is no
    file to read at all.
    """
    files = _policy_files(Path(path))
    adapters = registry if registry is not None else discovery.registry()
    with _automatic_collection_paused():
        return _load_files_leniently(files, adapters)


def _load_files(files: list[Path], registry: Registry, *, quickly: bool = True) -> PolicySet:
    """Load the files, each the quick way if it allows (``quickly``) or else the located way."""
    loaded = _read_files(files, registry, quickly=quickly, keep_all=False)
    if loaded.problems:
        raise PolicyError(loaded.problems)
    return PolicySet([policy for _, policy in loaded.policies], loaded.notifiers)


def _load_files_leniently(files: list[Path], registry: Registry) -> ReadablePolicies:
    """Load the files; keep the policies of those without problems, and every problem."""
    loaded = _read_files(files, registry, quickly=True, keep_all=True)
    skipped = {problem.file for problem in loaded.problems}
    kept = [policy for shown, policy in loaded.policies if shown not in skipped]
    return ReadablePolicies(
        PolicySet(kept, loaded.notifiers),
        PolicyError(loaded.problems).problems if loaded.problems else [],
        [str(file) for file in files if str(file) in skipped],
    )


@dataclass
class _FilesRead:
    """The policies read (with the file each came from), the notifiers, every problem."""

    policies: list[tuple[str, Policy]]
    notifiers: dict[str, NotifierSpec]
    problems: list[Problem]


def _read_files(
    files: list[Path], registry: Registry, *, quickly: bool, keep_all: bool
) -> _FilesRead:
    """Read the files, each the quick way if it allows (``quickly``) or else the located way.

    Policies are kept after a problem only if ``keep_all``: a load that
    fails whole has no use for them.
    """
    shared = SharedModels(registry)
    conflicts = PolicySetConflicts()
    problems: list[Problem] = []
    policies: list[tuple[str, Policy]] = []
    notifiers: dict[str, NotifierSpec] = {}
    for file in files:
        shown = str(file)
        secrets = load_quickly(file, shown, shared) if quickly else None
        if secrets is None:
            located = LocatedFileLoader(file, shown, registry)
            located.load()
            problems.extend(located.problems)
            secrets = located.secrets
            for declared in located.notifiers:
                duplicate = conflicts.notifier_declared(shown, declared)
                if duplicate is not None:
                    problems.append(duplicate)
                elif declared.spec is not None:
                    notifiers[declared.name] = declared.spec
        for named in secrets:
            duplicate = conflicts.secret_named(shown, named)
            if duplicate is not None:
                problems.append(duplicate)
            elif named.policy is not None and (keep_all or not problems):
                # once anything is wrong a strict load returns no policy: stop keeping them
                policies.append((shown, shared.compact(named.policy)))
    problems.extend(conflicts.unknown_notifiers())
    problems.extend(conflicts.unknown_secrets())
    return _FilesRead(policies, notifiers, problems)
