"""``postgresql-password`` rotations through the engine: the policy, the engine, the store's view.

The store is Secrets Manager (in-process moto, the ``aws_sm`` fixture)
holding the AWS RDS JSON value at ``app/db``; the admin credential is in
``APP_DB_ADMIN``.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from rotator.engine.runner import Engine
from rotator.journal.journal import Journal
from rotator.policy.loader import load_policies
from tests.conftest import FakeClock
from tests.databases.postgres import Roles

#: The grace of the policies :func:`policy_for` writes.
GRACE = timedelta(hours=1)


def policy_for(roles: Roles, strategy: str, **extra: str) -> str:
    """Return a policy set rotating ``roles.user`` at ``app/db`` (``extra``: issuer fields)."""
    fields = "".join(f"\n      {k}: {v}" for k, v in extra.items())
    return f"""
secrets:
  - name: app/db
    store: {{provider: aws-secretsmanager, secret_id: app/db}}
    issuer:
      kind: postgresql-password
      strategy: {strategy}
      host: {roles.host}
      port: {roles.port}
      database: {roles.database}
      username: {roles.user}
      admin: {{env: APP_DB_ADMIN}}{fields}
    schedule: {{every: 30d}}
    grace: {int(GRACE.total_seconds())}s
"""


def engine_for(tmp_path: Path, body: str, clock: FakeClock) -> Engine:
    """Return an engine over the policy set ``body``, its journal in ``tmp_path``."""
    path = tmp_path / "policies.yaml"
    path.write_text(body)
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}", clock)
    return Engine(load_policies(path), journal, clock=clock, sleep=clock.sleep)


def current_value(sm: Any) -> dict[str, Any]:
    """Return the RDS-shaped value the store holds as current."""
    value: dict[str, Any] = json.loads(
        sm.get_secret_value(SecretId="app/db", VersionStage="AWSCURRENT")["SecretString"]
    )
    return value
