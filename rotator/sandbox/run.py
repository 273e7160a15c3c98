"""``rotator sandbox``: local emulators, seeded, and whole rotations in under a minute.

Each installed sandbox (the ``rotator.sandboxes`` entry-point group; AWS via
``moto_server`` today) starts its emulator on loopback and seeds it. The
demo policies (``demo.yaml``, packaged beside this module, with intervals and
grace windows of seconds) then run pass after pass, so a newcomer watches mint, store as
pending, verify, promote, grace, revoke, and finally the status table.
"""

from __future__ import annotations

import os
import string
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib.metadata import entry_points
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Protocol

import structlog

from rotator.adapters.discovery import SANDBOX_GROUP
from rotator.clock import system_clock, system_sleep
from rotator.engine.report import Result
from rotator.engine.runner import Engine
from rotator.errors import ConfigError
from rotator.journal.journal import Journal
from rotator.policy.loader import load_policies

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


@dataclass(frozen=True)
class Session:
    """A running sandbox: the policy file and journal URL to use with it."""

    config: str
    state: str


@contextmanager
def session(config: str | None, state: str | None) -> Iterator[Session]:
    """Start and seed every installed sandbox; stop them all on exit."""
    template: Path | Traversable = Path(config) if config else demo_policy()
    if not template.is_file():
        raise ConfigError(f"{template}: no such policy file")
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rotator-sandbox-")))
        # The demo's file target lives in the sandbox's own directory.
        substitutions: dict[str, Any] = {"DEMO_WORKDIR": str(workdir)}
        for ep in sorted(entry_points(group=SANDBOX_GROUP), key=lambda e: e.name):
            sandbox: Sandbox = ep.load()()
            env = sandbox.start(workdir)
            stack.callback(sandbox.stop)
            os.environ.update(env)
            sandbox.seed(env)
            substitutions.update(sandbox.policy_substitutions())
            log.info(
                "sandbox ready",
                sandbox=ep.name,
                **{k: v for k, v in env.items() if k.endswith("_URL")},
            )
        policy = workdir / template.name
        policy.write_text(string.Template(template.read_text()).safe_substitute(substitutions))
        yield Session(str(policy), state or f"sqlite:///{workdir / 'rotator.db'}")


def run_passes(current: Session, duration: float, tick: float = 1.0) -> int:
    """Run the engine pass after pass for ``duration`` seconds; return 1 if anything failed."""
    engine = Engine(
        load_policies(current.config),
        Journal(current.state, system_clock),
        clock=system_clock,
        sleep=system_sleep,
    )
    failed = 0
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        report = engine.run_once()
        failed += sum(1 for o in report.outcomes if o.result is Result.FAILED)
        system_sleep(tick)
    return 1 if failed else 0
