"""The policy files the repository ships are valid."""

from __future__ import annotations

import string
from pathlib import Path

from rotator.policy.loader import load_policies

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
    template = (ROOT / "schedules/demo.yaml").read_text()
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


def test_example_policies_validate() -> None:
    """The commented examples load without a single problem."""
    policies = load_policies(ROOT / "schedules/examples")
    assert len(policies) == 8
    assert sorted(policies.notifiers) == ["change-log", "pager", "platform-slack"]
    [manual] = [p for p in policies if p.issuer.kind == "manual"]
    assert manual.alerts == ("platform-slack", "pager", "change-log")
    assert all(p.grace < p.schedule.every for p in policies if p.schedule.every)
