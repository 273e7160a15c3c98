"""``postgresql-password`` rotations through the engine, against the real PostgreSQL.

The rotations every engine performs alike are :class:`RotationSuite`'s
(tests/databases/rotation.py); PostgreSQL's own checks follow. The test
role of .ci/run may create roles: it is the admin here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FakeClock
from tests.databases.postgres import Roles, admin_url
from tests.databases.rotation import RotationSuite, engine, policy, stored


@pytest.fixture
def roles(monkeypatch: pytest.MonkeyPatch) -> Iterator[Roles]:
    """Fresh roles on the test server, and the admin credential in APP_DB_ADMIN."""
    url = admin_url()
    monkeypatch.setenv("APP_DB_ADMIN", url)
    with Roles(url) as made:
        yield made


class TestPostgreSqlRotation(RotationSuite):
    """What every engine does, done by ``postgresql-password``."""

    kind = "postgresql-password"
    engine = "postgres"

    @pytest.fixture
    def accounts(self, roles: Roles) -> Roles:
        return roles


def test_check_names_a_missing_privilege(
    aws_sm: Any, roles: Roles, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An admin without CREATEROLE is reported by name, and nothing is changed."""
    old = stored(aws_sm, roles)
    weak = roles.create(f"{roles.user}_weak")
    monkeypatch.setenv(
        "APP_DB_ADMIN",
        json.dumps({"username": f"{roles.user}_weak", "password": weak}),
    )
    rotator = engine(tmp_path, policy("postgresql-password", roles, "alternating-users"), clock)
    [finding] = [f for f in rotator.check(["app/db"]) if "postgresql:" in f.check]
    assert "lacks: CREATEROLE" in finding.detail
    assert roles.logs_in(roles.user, old)
