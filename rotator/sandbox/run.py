"""``rotator sandbox``: local emulators, seeded, and whole rotations in under a minute.

Each installed sandbox (the ``rotator.sandboxes`` entry-point group: AWS on
``moto_server``, Vault on OpenBao or the emulator, Azure Key Vault with API
Management, Kubernetes) starts its server on loopback and seeds it. The demo
policies (``demo.yaml``, packaged beside this module, with intervals and grace
windows of seconds) then run pass after pass, so a newcomer watches mint,
store as pending, verify, promote, grace, revoke, and finally the status
table. Everything is kept in one working directory that outlives the run
(``./rotator-sandbox`` by default), so the journal can be read afterwards;
with ``--keep`` the servers stay up too, for exploring by hand."""

from __future__ import annotations

import os
import shlex
import shutil
import string
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Protocol

import structlog

from rotator.adapters.discovery import SANDBOX_GROUP
from rotator.clock import system_clock, system_sleep
from rotator.engine.runner import Engine
from rotator.errors import ConfigError
from rotator.journal.journal import Journal
from rotator.policy.loader import load_policies
from rotator.sandbox.core.shell import stop_on_signals, wait_for

log = structlog.get_logger("rotator.sandbox")


def demo_policy() -> Traversable:
    """Return the packaged demo policy template (``${DEMO_...}`` placeholders unfilled)."""
    # Package data, not a path from the working directory: the sandbox runs from anywhere.
    return files("rotator.sandbox").joinpath("demo.yaml")


class Sandbox(Protocol):
    """An emulator a sandbox entry point starts, seeds and stops."""

    def start(self, workdir: Path) -> dict[str, str]:
        """Start the emulator; return the environment variables that point at it."""

    def seed(self, env: dict[str, str]) -> None:
        """Create the example secrets and credentials the demo policies rotate."""

    def policy_substitutions(self) -> dict[str, str]:
        """Return ``${NAME}`` values for the demo policy (ids known only after seeding)."""

    def stop(self) -> None:
        """Stop the emulator."""


def extra_policies(sandbox: Sandbox) -> Traversable | None:
    """Return a sandbox's own policy template, if it offers one now (``demo_policies``).

    A sandbox whose server may be missing on a machine (PostgreSQL) keeps its
    policies apart from ``demo.yaml`` and offers them only once it started.
    """
    offered = getattr(sandbox, "demo_policies", None)
    found: Traversable | None = offered() if callable(offered) else None
    return found


#: The file that marks a directory as a sandbox's own: only such a directory is emptied.
MARKER = ".rotator-sandbox"
#: Where the sandbox works when not told otherwise (relative to the working directory).
DEFAULT_WORKDIR = Path("rotator-sandbox")


@dataclass(frozen=True)
class Session:
    """A running sandbox: the policy file and journal URL to use with it, and where it works.

    ``exports`` is the environment a shell needs to use the emulators (their
    addresses, the throwaway credentials they accept) and the demo's policy
    and journal; ``state_is_own`` says whether the journal is the sandbox's
    own (a file in ``workdir``) rather than one the caller named.
    """

    config: str
    state: str
    workdir: Path
    exports: dict[str, str] = field(default_factory=dict)
    state_is_own: bool = True
    #: The journal's key file, when one was named (None: beside a SQLite journal).
    key_file: Path | None = None


def prepare_workdir(workdir: Path) -> Path:
    """Make ``workdir`` an empty sandbox directory and return its absolute path.

    A new or empty directory is taken; one a previous sandbox left (it holds
    :data:`MARKER`) is emptied, since its journal describes emulators that are
    gone. Anything else is refused rather than overwritten.

    Raises:
        ConfigError: ``workdir`` is a file, or a non-empty directory that is
            not a sandbox's.
    """
    workdir = workdir.absolute()
    if workdir.exists() and not workdir.is_dir():
        raise ConfigError(f"{workdir}: not a directory (name another with --workdir)")
    if workdir.is_dir() and any(workdir.iterdir()):
        if not (workdir / MARKER).is_file():
            raise ConfigError(
                f"{workdir}: not empty and not a sandbox's directory (no {MARKER} in it); "
                "name a new or empty one with --workdir"
            )
        for child in workdir.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    # The journal's key, the demo's file target and the kubeconfig live here.
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    (workdir / MARKER).write_text("Made by `rotator sandbox`, which empties it on its next run.\n")
    return workdir


@contextmanager
def session(
    config: str | None,
    state: str | None,
    workdir: Path = DEFAULT_WORKDIR,
    key_file: Path | None = None,
) -> Iterator[Session]:
    """Start and seed every installed sandbox in ``workdir``; stop them all on exit.

    The filled-in policies (``workdir/policies``: the template, and with the
    packaged demo the policies of each sandbox that started, such as
    PostgreSQL's) and the journal (unless ``state`` names another) stay in
    ``workdir`` after the emulators stop, for ``status`` and ``audit
    verify`` to read. ``key_file`` is the journal's key (a
    PostgreSQL journal needs one named).
    """
    template: Path | Traversable = Path(config) if config else demo_policy()
    if not template.is_file():
        raise ConfigError(f"{template}: no such policy file")
    workdir = prepare_workdir(workdir)
    with ExitStack() as stack:
        # The demo's file target lives in the sandbox's own directory.
        substitutions: dict[str, Any] = {"DEMO_WORKDIR": str(workdir)}
        exports: dict[str, str] = {}
        templates: dict[str, Path | Traversable] = {template.name: template}
        for ep in sorted(entry_points(group=SANDBOX_GROUP), key=lambda e: e.name):
            sandbox: Sandbox = ep.load()()
            env = sandbox.start(workdir)
            stack.callback(sandbox.stop)
            os.environ.update(env)
            exports.update(env)
            sandbox.seed(env)
            substitutions.update(sandbox.policy_substitutions())
            own = extra_policies(sandbox) if config is None else None
            if own is not None:
                templates[f"{ep.name}.yaml"] = own
            log.info(
                "sandbox ready",
                sandbox=ep.name,
                **{k: v for k, v in env.items() if k.endswith("_URL")},
            )
        policies = workdir / "policies"
        policies.mkdir()
        for name, source in templates.items():
            filled = string.Template(source.read_text()).safe_substitute(substitutions)
            (policies / name).write_text(filled)
        journal = state or f"sqlite:///{workdir / 'rotator.db'}"
        exports["ROTATOR_CONFIG"] = str(policies)
        if state is None:
            exports["ROTATOR_STATE"] = journal
        if key_file is not None:
            exports["ROTATOR_KEY_FILE"] = str(key_file)
        yield Session(
            str(policies), journal, workdir, exports, state_is_own=state is None, key_file=key_file
        )


def export_lines(exports: dict[str, str]) -> list[str]:
    """Return ``export NAME=VALUE`` lines a POSIX shell can paste, values quoted for it."""
    return [f"export {name}={shlex.quote(value)}" for name, value in sorted(exports.items())]


def serve_until_stopped(stop: threading.Event | None = None) -> None:
    """Keep the emulators serving until Ctrl-C or SIGTERM (or ``stop`` is set)."""
    wait_for(stop if stop is not None else stop_on_signals())


def run_passes(current: Session, duration: float, tick: float = 1.0) -> int:
    """Run the engine pass after pass for ``duration`` seconds; return 1 if any pass said so.

    A pass says 1 for a failed rotation, and for a secret needing attention
    (an old credential held past its grace): the demo is not quiet then.
    """
    engine = Engine(
        load_policies(current.config),
        Journal(current.state, system_clock, key_file=current.key_file),
        clock=system_clock,
        sleep=system_sleep,
    )
    code = 0
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        code = max(code, engine.run_once().exit_code)
        system_sleep(tick)
    return code
