"""The policies the repository ships are valid: ./schedules as it is, the packaged demo filled."""

from __future__ import annotations

import fnmatch
import string
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from rotator.cli.main import cli
from rotator.journal.journal import Journal
from rotator.policy.loader import load_policies
from rotator.sandbox.run import demo_policy
from tests.conftest import FakeClock

ROOT = Path(__file__).resolve().parent.parent

#: What the sandbox substitutes into the demo policy once it has seeded the emulators.
SANDBOX_VALUES = {
    "DEMO_USAGE_PLAN_ID": "a1b2c3",
    "DEMO_AZURE_VAULT_URL": "https://127.0.0.1:8443",
    "DEMO_WORKDIR": "/tmp/rotator-sandbox",
    "DEMO_AZURE_MANAGEMENT_URL": "https://127.0.0.1:8443",
    "DEMO_AZURE_SUBSCRIPTION_ID": "5d1c0a7e-3b2f-4e69-8c1d-0f9e8d7c6b5a",
    "DEMO_AZURE_CA_FILE": "/tmp/rotator-sandbox/ca.pem",
    "DEMO_APIM_GATEWAY_URL": "https://127.0.0.1:8443/apim/demo-apim/echo",
}


def test_demo_policy_validates_once_the_sandbox_fills_it_in(tmp_path: Path) -> None:
    """The demo policy, with the sandbox's values substituted, loads without a problem."""
    template = demo_policy().read_text()
    filled = tmp_path / "demo.yaml"
    filled.write_text(string.Template(template).substitute(SANDBOX_VALUES))
    policies = load_policies(filled)
    assert len(policies) == 8
    assert {p.store.provider for p in policies} == {
        "aws-secretsmanager",
        "vault-kv",
        "azure-keyvault",
    }
    [shared] = [p for p in policies if p.targets]
    assert [t.name for t in shared.targets] == ["vault-kv", "azure-keyvault", "file"]
    assert all(p.grace < p.schedule.every for p in policies if p.schedule.every)
    [apim] = [p for p in policies if p.issuer.kind == "azure-apim-subscription"]
    assert apim.store.provider == "azure-keyvault"
    assert [v.kind for v in apim.verify] == ["http"]


def test_the_demo_policy_ships_inside_the_package() -> None:
    """The demo policy lives in rotator.sandbox and the wheel's package data names it."""
    policy = demo_policy()
    package = ROOT / "rotator"
    assert Path(str(policy)).resolve().is_relative_to(package), policy
    relative = Path(str(policy)).resolve().relative_to(package).as_posix()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["rotator"]
    assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), patterns
    # Nothing under ./schedules is a sandbox template any more.
    assert not any("${DEMO_" in p.read_text() for p in (ROOT / "schedules").rglob("*.y*ml"))


def test_the_schedules_directory_validates_as_it_is() -> None:
    """./schedules (the default --config) holds the commented examples, every one valid."""
    policies = load_policies(ROOT / "schedules")
    assert len(policies) == 8
    assert sorted(policies.notifiers) == ["change-log", "pager", "platform-slack"]
    [manual] = [p for p in policies if p.issuer.kind == "manual"]
    assert manual.alerts == ("platform-slack", "pager", "change-log")
    assert all(p.grace < p.schedule.every for p in policies if p.schedule.every)


@pytest.mark.parametrize(
    "command",
    [["validate"], ["status"], ["history", "payments/db"], ["audit", "verify"]],
    ids=["validate", "status", "history", "audit-verify"],
)
def test_commands_with_the_default_config_succeed_in_the_repository_root(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a fresh clone's root, the default ``--config schedules`` is no reason to fail."""
    state = f"sqlite:///{tmp_path / 'rotator.db'}"
    Journal(state, FakeClock()).migrate()  # a journal exists, as after a first run
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("ROTATOR_CONFIG", raising=False)
    result = CliRunner().invoke(cli, [*command, "--state", state])
    assert result.exit_code == 0, result.output
    assert "problem" not in result.output
