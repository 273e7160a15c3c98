"""One secret whose old credential's last use the test sets, and the alerts it raised.

Shared by the bounded-grace and tamper-evidence tests: a random issuer whose
credentials have refs, report a last use the test chooses and record their
revocations, over in-process moto, with an exec notifier appending every
alert to ``alerts.jsonl``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import boto3

from providers.random import RandomIssuer
from rotator.adapters.discovery import registry
from rotator.adapters.secret import SecretValue
from rotator.adapters.values import Credential
from rotator.engine.runner import Engine
from rotator.journal.journal import Journal
from rotator.policy.loader import load_policies
from tests.conftest import AWS_REGION, FakeClock

#: An exec notifier appending each alert's JSON to $OUT.
RECORDER = "import os, sys\nopen(os.environ['OUT'], 'a').write(sys.stdin.read().strip() + '\\n')\n"


class WatchedIssuer(RandomIssuer):
    """A random issuer whose credentials have refs and a last use the test sets."""

    reports_last_use = True
    used: ClassVar[dict[str, datetime]] = {}
    revoked: ClassVar[list[str]] = []

    def ref_of(self, value: SecretValue) -> str | None:
        return "ref-" + hashlib.sha256(value.text().encode()).hexdigest()[:8]

    def mint(self, rotation_id: str) -> Credential:
        credential = super().mint(rotation_id)
        return Credential(credential.value, self.ref_of(credential.value))

    def last_used(self, ref: str) -> datetime | None:
        return self.used.get(ref)

    def revoke(self, ref: str) -> None:
        self.revoked.append(ref)


def watched_secret() -> type[WatchedIssuer]:
    """Create the secret ``app/key`` in moto and forget earlier uses and revocations."""
    WatchedIssuer.used, WatchedIssuer.revoked = {}, []
    boto3.client("secretsmanager", region_name=AWS_REGION).create_secret(
        Name="app/key", SecretString="the-first-value-of-the-key"
    )
    return WatchedIssuer


def watched_engine(tmp_path: Path, clock: FakeClock, extra: str = "", grace: str = "1h") -> Engine:
    """Return an engine over ``app/key`` (policy lines ``extra`` added), alerting to a file."""
    script = tmp_path / "recorder.py"
    script.write_text(RECORDER)
    (tmp_path / "p.yaml").write_text(f"""
notifiers:
  ops:
    kind: exec
    command: [{sys.executable}, {script}]
    env: {{OUT: {tmp_path / "alerts.jsonl"}}}
secrets:
  - name: app/key
    store: {{provider: aws-secretsmanager, secret_id: app/key}}
    schedule: {{every: 30d}}
    grace: {grace}
    alerts: [ops]
{extra}""")
    loaded = load_policies(tmp_path / "p.yaml")
    base = registry()
    return Engine(
        loaded,
        Journal(f"sqlite:///{tmp_path / 'j.db'}", clock),
        adapters=replace(base, issuers={**base.issuers, "random": WatchedIssuer}),
        clock=clock,
        sleep=clock.sleep,
        notifiers=loaded.notifiers,
    )


def recorded_alerts(tmp_path: Path) -> list[dict[str, Any]]:
    """Return every alert the notifier received, oldest first."""
    path = tmp_path / "alerts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
