"""A policy naming an adapter whose SDK is not installed is refused at validation, with the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from providers.aws.secretsmanager import SecretsManagerStore
from rotator.adapters.discovery import Registry, missing_requirement, registry
from rotator.errors import PolicyError
from rotator.policy.loader import load_policies


class _NeedsMissingSdk(SecretsManagerStore):
    """The Secrets Manager store, pretending its SDK is a module nobody has."""

    requires = ("rotator-no-such-sdk",)
    extra = "imaginary"


def test_missing_sdk_is_a_located_policy_problem(tmp_path: Path) -> None:
    """The problem names the file, line, provider and the pip command that fixes it."""
    path = tmp_path / "p.yaml"
    path.write_text(
        "secrets:\n"
        "  - name: db\n"
        "    store: {provider: aws-secretsmanager, secret_id: db}\n"
        "    schedule: {every: 30d}\n"
        "    grace: 1h\n"
    )
    base = registry()
    adapters = Registry({**base.stores, "aws-secretsmanager": _NeedsMissingSdk}, base.issuers)
    with pytest.raises(PolicyError) as caught:
        load_policies(path, adapters)
    [problem] = caught.value.problems
    assert (problem.line, problem.path) == (3, "secrets[0].store.provider")
    assert "rotator-no-such-sdk" in problem.reason
    assert "pip install 'rotator-keys[imaginary]'" in problem.reason


def test_installed_adapters_have_what_they_need() -> None:
    """In the test environment every built-in adapter's SDK is installed."""
    base = registry()
    for adapter in [*base.stores.values(), *base.issuers.values(), *base.notifiers.values()]:
        assert missing_requirement(adapter) is None, adapter
