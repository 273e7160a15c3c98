"""Fixtures for the AWS adapter tests: fake credentials, in-process moto, a step clock."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rotator.adapters.values import Runtime
from tests.providers.helpers import StepClock


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Point boto3 at fake credentials and us-east-1, with no config file or endpoint."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture
def aws(aws_env: None) -> Iterator[None]:
    """Run the test inside moto's in-process AWS mock."""
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def step_clock() -> StepClock:
    """Return a clock whose sleep advances it instead of waiting."""
    return StepClock()


@pytest.fixture
def runtime(step_clock: StepClock) -> Runtime:
    """Return a Runtime with the step clock and sleeper and an empty cache."""
    return Runtime(clock=step_clock, sleep=step_clock.sleep, cache={})
