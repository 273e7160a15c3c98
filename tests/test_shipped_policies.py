"""The policy files the repository ships are valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from rotator.loader import load_policies

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("path", "count"), [("schedules/demo.yaml", 5), ("schedules/examples", 6)])
def test_shipped_policies_validate(path: str, count: int) -> None:
    """The demo and the commented examples load without a single problem."""
    policies = load_policies(ROOT / path)
    assert len(policies) == count
    assert all(p.grace < p.schedule.every for p in policies if p.schedule.every)
