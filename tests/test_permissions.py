"""``rotator permissions``: merging and rendering (sorted, merged, stable) and the command line."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from click.testing import CliRunner, Result

from providers.aws.permissions import AWS_ACCOUNT
from providers.aws.policy import IamPolicy, aws_policy, grants, sid_of
from providers.azure.rbac import vault_name
from providers.kubernetes.rbac import kubernetes_roles, kubernetes_yaml
from providers.vault.policy import VaultPolicy, vault_policy
from rotator.adapters import permissions as renderer_registry
from rotator.adapters.replica import StoreReplica
from rotator.adapters.roles import Issuer, Store, Target, Verifier
from rotator.adapters.secret import SecretValue
from rotator.adapters.values import Credential, Permission, ProviderConfig, Runtime, Version
from rotator.cli.main import cli
from rotator.errors import ConfigError
from rotator.reports import permissions as perms
from rotator.reports.permissions import collect, documents, needed, summary, systems, text
from rotator.sandbox.vault.acl import parse_policy
from tests.conftest import FakeClock

ACCOUNT = "111122223333"


def _aws(step: str, resource: str, *actions: str) -> Permission:
    return Permission("aws", actions, resource=resource, step=step)


def test_sid_is_the_step_in_camel_case() -> None:
    """A step's words become an IAM statement id: letters and digits only."""
    assert sid_of("store: write pending") == "StoreWritePending"
    assert sid_of("issuer: mint api key") == "IssuerMintApiKey"
    assert sid_of("replica: read current") == "ReplicaReadCurrent"


def test_aws_policy_merges_per_step_and_resource() -> None:
    """Actions add up per step and resource; resources with equal actions share a statement."""
    policy = aws_policy(
        [
            _aws("store: promote", "arn:b", "sm:Describe"),
            _aws("store: promote", "arn:b", "sm:Stage"),
            _aws("store: promote", "arn:a", "sm:Stage", "sm:Describe"),
            _aws("store: promote", "arn:c", "sm:Stage"),
            _aws("store: read current", "arn:a", "sm:Get"),
        ]
    )
    assert policy == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "StorePromote",
                "Effect": "Allow",
                "Action": ["sm:Describe", "sm:Stage"],
                "Resource": ["arn:a", "arn:b"],
            },
            {
                "Sid": "StorePromote2",
                "Effect": "Allow",
                "Action": ["sm:Stage"],
                "Resource": ["arn:c"],
            },
            {
                "Sid": "StoreReadCurrent",
                "Effect": "Allow",
                "Action": ["sm:Get"],
                "Resource": ["arn:a"],
            },
        ],
    }


def test_rendering_is_stable_whatever_the_order() -> None:
    """The same permissions in any order, duplicated or not, render the same bytes."""
    every = [
        _aws("store: promote", "arn:b", "sm:Stage"),
        _aws("issuer: mint", "arn:u", "iam:Create", "iam:List"),
        Permission("vault", ("read",), resource="secret/data/x", step="store: read current"),
        Permission("vault", ("update", "create"), resource="secret/data/x", step="store: promote"),
        Permission(
            "azure",
            ("A/getSecret/action",),
            resource="https://v.vault.azure.net",
            step="store: read",
        ),
        Permission(
            "kubernetes", ("get",), resource="namespaces/n/secrets/s", step="target: write secret"
        ),
    ]
    expected = {s: text(s, every) for s in ("aws", "vault", "azure", "kubernetes")}
    shuffled = every * 2
    random.Random(7).shuffle(shuffled)
    assert {s: text(s, shuffled) for s in expected} == expected
    assert json.dumps(documents(shuffled)) == json.dumps(documents(every))


def test_vault_policy_parses_as_vault_reads_it() -> None:
    """The HCL has one block per path, capabilities merged in Vault's order, steps in comments."""
    hcl = vault_policy(
        [
            Permission("vault", ("read",), resource="secret/data/x", step="store: read current"),
            Permission(
                "vault", ("update", "create"), resource="secret/data/x", step="store: promote"
            ),
            Permission(
                "vault",
                ("list", "sudo"),
                resource="auth/token/accessors",
                step="issuer: list tokens",
            ),
            Permission("vault", (), resource="holding policy p", step="issuer: mint token"),
        ]
    )
    assert "# store: promote [create, update]; store: read current [read]" in hcl
    assert 'path "secret/data/x" { capabilities = ["create", "read", "update"] }' in hcl
    assert "# NOTE issuer: mint token: holding policy p" in hcl
    rules = {r.path: set(r.capabilities) for r in parse_policy("rotator", hcl).rules}
    assert rules == {
        "secret/data/x": {"create", "read", "update"},
        "auth/token/accessors": {"list", "sudo"},
    }


def test_kubernetes_yaml_is_the_roles_as_yaml() -> None:
    """The YAML documents load to exactly the Role objects the JSON form gives."""
    permissions = [
        Permission(
            "kubernetes",
            ("get", "patch"),
            resource="namespaces/pay/secrets/db",
            step="target: write",
        ),
        Permission(
            "kubernetes", ("delete",), resource="namespaces/pay/secrets/db", step="target: undo"
        ),
        Permission(
            "kubernetes", ("create",), resource="namespaces/pay/secrets", step="target: create"
        ),
        Permission(
            "kubernetes",
            ("get", "patch"),
            resource="namespaces/pay/deployments.apps/api",
            step="t: r",
        ),
        Permission(
            "kubernetes", ("get",), resource="contexts/eu/namespaces/ops/secrets/x", step="t: w"
        ),
    ]
    loaded = [d for d in yaml.safe_load_all(kubernetes_yaml(permissions)) if d]
    roles = kubernetes_roles(permissions)
    assert loaded == roles
    [pay, ops] = roles  # sorted by (context, namespace): no context first
    assert ops["metadata"]["annotations"] == {"rotator.io/kubeconfig-context": "eu"}
    assert pay["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["db"],
            "verbs": ["delete", "get", "patch"],
        },
        {
            "apiGroups": ["apps"],
            "resources": ["deployments"],
            "resourceNames": ["api"],
            "verbs": ["get", "patch"],
        },
    ]


def test_vault_name_is_the_first_label_of_the_host() -> None:
    """A vault URL names its vault by the host's first label; an address stays whole."""
    assert vault_name("https://billing-prod.vault.azure.net") == "billing-prod"
    assert vault_name("https://127.0.0.1:8443") == "127.0.0.1"


def test_grants_leave_out_requirements_without_actions() -> None:
    """A requirement with no actions is no grant (it is rendered as a note instead)."""
    assert grants([Permission("vault", (), resource="hold p", step="issuer: mint")], "vault") == []


# -- collecting ---------------------------------------------------------------------------


class _Config(ProviderConfig):
    """No fields."""


class _Store(Store[_Config]):
    """A store that only says what it needs (its extra says which system it talks to)."""

    provider = "fake"
    Config = _Config
    extra = "vault"
    asked: ClassVar[list[str]] = []

    def describe(self) -> str:
        return "fake:store"

    def permissions(self) -> list[Permission]:
        _Store.asked.append(self.secret)
        return [
            Permission(
                "vault", ("update",), resource=f"kv/{self.secret}", step="store: write pending"
            )
        ]

    def current(self) -> Version | None:
        return None

    def last_changed(self) -> datetime | None:
        return None

    def put_pending(self, rotation_id: str, value: SecretValue) -> str:
        return rotation_id

    def pending(self, rotation_id: str) -> SecretValue | None:
        return None

    def promote(self, rotation_id: str, *, expires_on: datetime | None = None) -> str | None:
        return None

    def discard(self, rotation_id: str) -> None:
        """Nothing to discard."""

    def retire(self, version_id: str) -> None:
        """Nothing to retire."""


class _AwsIssuer(Issuer[_Config]):
    """An issuer of the aws extra that cannot say what it needs without AWS."""

    kind = "fake-aws"
    Config = _Config
    extra = "aws"

    def mint(self, rotation_id: str) -> Credential:
        return Credential(SecretValue("x"))

    def permissions(self) -> list[Permission]:
        raise AssertionError("asked although aws was not wanted")


class _Bound:
    """A policy's adapters, as Engine.binding gives them."""

    def __init__(self, store: Store[Any], issuer: Issuer[Any], targets: list[Target[Any]]) -> None:
        self.store = store
        self.issuer = issuer
        self.targets = targets
        self.verifiers: list[Verifier[Any]] = []


def _runtime() -> Runtime:
    clock = FakeClock()
    return Runtime(clock=clock, sleep=clock.sleep)


def test_a_replica_store_is_named_as_a_replica() -> None:
    """A store used as a target needs what the store needs, its steps named ``replica:``."""
    runtime = _runtime()
    bound = _Bound(
        _Store(_Config(), runtime, "main"),
        _AwsIssuer(_Config(), runtime, "main"),
        [StoreReplica(_Store(_Config(), runtime, "copy"))],
    )
    found = needed(bound, ("vault",))
    assert found == [
        Permission("vault", ("update",), resource="kv/main", step="store: write pending"),
        Permission("vault", ("update",), resource="kv/copy", step="replica: write pending"),
    ]


def test_adapters_of_other_systems_are_not_asked() -> None:
    """Asking for vault only never asks an aws adapter (no AWS credentials or region needed)."""
    runtime = _runtime()
    _Store.asked.clear()
    bindings = [
        _Bound(_Store(_Config(), runtime, n), _AwsIssuer(_Config(), runtime, n), [])
        for n in ("b", "a", "b")
    ]
    found = collect(bindings, ("vault",))
    assert [p.resource for p in found] == ["kv/a", "kv/b"]
    assert sorted(_Store.asked) == ["a", "b", "b"]
    with pytest.raises(AssertionError, match="not wanted"):
        collect(bindings, ("aws", "vault"))


# -- the command line ---------------------------------------------------------------------

POLICIES = """
defaults:
  grace: 1h
  schedule: {every: 30d}
secrets:
  - name: app/db
    store: {provider: aws-secretsmanager, secret_id: prod/app/db, region: eu-west-1}
  - name: app/iam
    store: {provider: vault-kv, path: app/iam}
    issuer: {kind: aws-iam-access-key, user: svc-app}
  - name: app/role
    store: {provider: azure-keyvault, vault_url: https://billing-prod.vault.azure.net, name: role}
    issuer: {kind: vault-approle-secret-id, role: orders}
    targets:
      - kind: kubernetes-secret
        namespace: payments
        name: role-creds
        key: creds
        restart: [deployment/payments-api]
"""


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS credentials, region, endpoint or instance metadata: STS cannot be asked."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")


@pytest.fixture
def config(tmp_path: Path) -> Iterator[list[str]]:
    """The common options of a command over the policies above."""
    path = tmp_path / "policies.yaml"
    path.write_text(POLICIES)
    yield ["--config", str(path), "--state", f"sqlite:///{tmp_path / 'j.db'}"]


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["permissions", *args])


def test_provider_aws_prints_only_the_iam_policy(no_aws: None, config: list[str]) -> None:
    """--provider aws prints the IAM policy alone on stdout, with the given account in its ARNs."""
    result = _run("--provider", "aws", "--account", ACCOUNT, *config)
    assert result.exit_code == 0, result.output
    policy = json.loads(result.stdout)
    sids = [s["Sid"] for s in policy["Statement"]]
    assert sids == sorted(sids) and "StoreWritePending" in sids and "IssuerMintAccessKey" in sids
    resources = {r for s in policy["Statement"] for r in s["Resource"]}
    assert f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:prod/app/db-??????" in resources
    assert f"arn:aws:iam::{ACCOUNT}:user/svc-app" in resources
    assert "==" not in result.stderr  # no heading when one system is asked for


def test_provider_vault_needs_no_aws_at_all(
    no_aws: None, config: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--provider vault prints parseable HCL without AWS credentials or region."""
    monkeypatch.delenv("AWS_REGION")
    result = _run("--provider", "vault", *config)
    assert result.exit_code == 0, result.output
    paths = {r.path for r in parse_policy("rotator", result.stdout).rules}
    assert "secret/data/app/iam" in paths and "auth/approle/role/orders/secret-id" in paths
    assert not any(p.startswith("arn:") for p in paths)


def test_every_system_without_provider_headings_on_stderr(no_aws: None, config: list[str]) -> None:
    """Without --provider each document goes to stdout, its heading to stderr, in system order."""
    result = _run("--account", ACCOUNT, *config)
    assert result.exit_code == 0, result.output
    headings = [line for line in result.stderr.splitlines() if line.startswith("==")]
    assert [h.split(":")[0] for h in headings] == [
        "== aws",
        "== vault",
        "== azure",
        "== kubernetes",
    ]
    assert result.stdout.startswith("{") and "Microsoft.KeyVault/vaults/secrets/" in result.stdout
    assert "kind: Role" in result.stdout and "==" not in result.stdout


def test_json_is_one_object_keyed_by_system(no_aws: None, config: list[str]) -> None:
    """--json prints one object: the IAM policy, the HCL text, the Azure roles, the Roles."""
    result = _run("--json", "--account", ACCOUNT, *config)
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert list(found) == ["aws", "vault", "azure", "kubernetes"]
    assert found["aws"]["Version"] == "2012-10-17"
    assert found["vault"].startswith("# Vault policy for rotator")
    scopes = sorted(s for role in found["azure"] for s in role["AssignableScopes"])
    assert [s.rsplit("/vaults/", 1)[1] for s in scopes] == [
        "billing-prod/secrets/role",
        "billing-prod/secrets/role--pending",
    ]
    assert found["kubernetes"][0]["metadata"]["namespace"] == "payments"
    filtered = json.loads(_run("--json", "--provider", "azure", *config).stdout)
    assert list(filtered) == ["azure"] and filtered["azure"] == found["azure"]


def test_names_select_policies(no_aws: None, config: list[str]) -> None:
    """NAMES limit the documents to those policies' needs."""
    result = _run("--json", "app/db", "--account", ACCOUNT, *config)
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert list(found) == ["aws"]
    assert {s["Sid"] for s in found["aws"]["Statement"]} == {
        "StorePromote",
        "StoreReadCurrent",
        "StoreWritePending",
    }


def test_output_is_the_same_every_time(no_aws: None, config: list[str], tmp_path: Path) -> None:
    """Two runs, and the policies written in another order, print the same bytes."""
    first = _run("--account", ACCOUNT, *config).stdout
    assert _run("--account", ACCOUNT, *config).stdout == first
    head, _, body = POLICIES.partition("secrets:\n")
    entries = body.split("  - name: ")[1:]
    reordered = tmp_path / "reordered.yaml"
    reordered.write_text(head + "secrets:\n" + "".join(f"  - name: {e}" for e in entries[::-1]))
    again = _run("--account", ACCOUNT, "--config", str(reordered), *config[2:]).stdout
    assert again == first


def test_unknown_name_exits_2(no_aws: None, config: list[str]) -> None:
    """A NAME no policy has is bad usage: exit 2, nothing printed on stdout."""
    result = _run("app/nope", "--account", ACCOUNT, *config)
    assert result.exit_code == 2
    assert "no policy named 'app/nope'" in result.stderr and result.stdout == ""


def test_bad_account_exits_2(no_aws: None, config: list[str]) -> None:
    """An --account that is not 12 digits is refused with exit 2."""
    result = _run("--account", "12345", *config)
    assert result.exit_code == 2 and "12 digits" in result.stderr


def test_no_account_and_no_sts_exits_2_saying_how(no_aws: None, config: list[str]) -> None:
    """Without --account and with no AWS identity, the command says to pass --account (exit 2)."""
    result = _run("--provider", "aws", *config)
    assert result.exit_code == 2
    assert "pass --account ID" in result.stderr and result.stdout == ""


def test_invalid_policy_exits_2(no_aws: None, tmp_path: Path) -> None:
    """A malformed policy file is refused with its location, exit 2."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("secrets:\n  - name: x\n    store: {provider: nope}\n")
    result = _run("--config", str(bad), "--state", f"sqlite:///{tmp_path / 'j.db'}")
    assert result.exit_code == 2 and "bad.yaml" in result.stderr


def test_nothing_needed_at_the_system_asked_for(no_aws: None, tmp_path: Path) -> None:
    """A system no policy talks to gets no document and a note on stderr, exit 0."""
    path = tmp_path / "p.yaml"
    path.write_text(
        "secrets:\n  - name: x\n    store: {provider: vault-kv, path: x}\n"
        "    schedule: {every: 30d}\n    grace: 1h\n"
    )
    result = _run("--provider", "azure", "--config", str(path), "--state", f"sqlite:///{path}.db")
    assert result.exit_code == 0 and result.stdout == ""
    assert "nothing is needed at azure" in result.stderr


def test_command_pipes_documents_from_a_real_process(tmp_path: Path) -> None:
    """``python -m rotator permissions`` writes the HCL on stdout and only headings on stderr."""
    path = tmp_path / "policies.yaml"
    path.write_text(POLICIES)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VAULT_"))}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rotator",
            "permissions",
            "--provider",
            "vault",
            "--config",
            str(path),
            "--state",
            f"sqlite:///{tmp_path / 'j.db'}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert parse_policy("rotator", done.stdout).rules
    assert done.stdout.startswith("# Vault policy for rotator")


def test_azure_role_puts_arm_actions_apart_from_data_actions() -> None:
    """An APIM subscription's actions are control-plane Actions scoped to its service."""
    from providers.azure.rbac import azure_role
    from rotator.adapters.values import Permission

    sub = (
        "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ApiManagement/service/gw"
        "/subscriptions/partner"
    )
    role = azure_role(
        [
            Permission(
                "azure",
                ("Microsoft.KeyVault/vaults/secrets/getSecret/action",),
                resource="https://payments.vault.azure.net",
                step="store: read current",
            ),
            Permission(
                "azure",
                ("Microsoft.ApiManagement/service/subscriptions/regeneratePrimaryKey/action",),
                resource=sub,
                step="issuer: mint",
            ),
        ]
    )
    assert role["Actions"] == [
        "Microsoft.ApiManagement/service/subscriptions/regeneratePrimaryKey/action"
    ]
    assert role["DataActions"] == ["Microsoft.KeyVault/vaults/secrets/getSecret/action"]
    scopes = role["AssignableScopes"]
    assert "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ApiManagement/service/gw" in (
        scopes
    )
    assert any("payments" in s for s in scopes) and len(scopes) == 2
    assert "API Management subscriptions" in role["Description"]


CI_TARGETS = """
secrets:
  - name: deploy-token
    store: {provider: vault-kv, path: ci/deploy-token}
    schedule: {every: 30d}
    grace: 1h
    targets:
      - {kind: github-actions, repository: acme/api, name: DEPLOY_TOKEN}
      - {kind: github-actions, repository: acme/api, environment: prod, name: DEPLOY_TOKEN}
      - {kind: gitlab-ci, project: acme/api, key: DEPLOY_TOKEN}
"""


def test_ci_targets_print_the_token_permissions_they_need(tmp_path: Path) -> None:
    """GitHub and GitLab targets print each resource's token permissions and the steps."""
    path = tmp_path / "policies.yaml"
    path.write_text(CI_TARGETS)
    args = ["--config", str(path), "--state", f"sqlite:///{tmp_path / 'j.db'}"]
    github = _run("--provider", "github", *args)
    assert github.exit_code == 0, github.output
    lines = github.stdout.splitlines()
    assert lines[0].startswith("# GitHub: a fine-grained personal access token")
    assert any(line.startswith("repos/acme/api: secrets:write") for line in lines)
    assert any(
        line.startswith("repos/acme/api/environments/prod: environments:write, secrets:write")
        for line in lines
    )
    both = json.loads(_run("--json", *args).stdout)
    assert {"github", "gitlab", "vault"} <= set(both)
    [grant] = both["gitlab"]["grants"]
    assert grant["permissions"] == ["api"] and "acme/api" in grant["resource"]
    assert any("Maintainer" in note for note in both["gitlab"]["notes"])


# -- renderers: each provider renders its own system's document ---------------------------


def test_every_shipped_system_is_rendered_by_its_provider_in_print_order() -> None:
    """The installed renderers are found through entry points, printed in their order."""
    assert systems() == (
        "aws",
        "vault",
        "azure",
        "kubernetes",
        "github",
        "gitlab",
        "mysql",
        "postgresql",
    )
    found = renderer_registry.renderers()
    assert type(found["aws"]).__module__ == "providers.aws.policy"
    assert type(found["vault"]).__module__ == "providers.vault.policy"
    assert type(found["azure"]).__module__ == "providers.azure.rbac"
    assert type(found["kubernetes"]).__module__ == "providers.kubernetes.rbac"
    assert type(found["github"]).__module__ == "providers.github"
    assert type(found["gitlab"]).__module__ == "providers.gitlab"


def _gcp() -> Permission:
    return Permission(
        "gcp", ("secretmanager.versions.add",), resource="projects/p/secrets/s", step="store: w"
    )


class _GcpStore(_Store):
    """A third party's store needing something at a system no installed package renders."""

    extra = "gcp"

    def permissions(self) -> list[Permission]:
        return [_gcp()]


def test_a_system_without_a_renderer_is_refused_saying_what_to_install() -> None:
    """Permissions at a system nothing renders are gathered, then refused: never dropped."""
    runtime = _runtime()
    bound = _Bound(_GcpStore(_Config(), runtime, "x"), _AwsIssuer(_Config(), runtime, "x"), [])
    found = collect([bound], ("gcp",))
    assert found == [_gcp()]
    vault = Permission("vault", ("read",), resource="secret/data/x", step="store: read current")
    for call in (
        lambda: documents([vault, *found]),
        lambda: text("gcp", found),
        lambda: summary("gcp", found),
    ):
        with pytest.raises(ConfigError) as refused:
            call()
        message = str(refused.value)
        assert "no installed package renders the permissions needed at 'gcp'" in message
        assert "'rotator.permissions' entry-point group" in message
        assert (
            "--provider (aws, vault, azure, kubernetes, github, gitlab, mysql, postgresql)"
            in message
        )


def test_the_command_exits_2_on_a_system_without_a_renderer(
    no_aws: None, config: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every system asked for, one of them unrenderable: exit 2, nothing printed on stdout."""
    asked: list[object] = []

    def gathered(bindings: object, wanted: object = None) -> list[Permission]:
        asked.append(wanted)
        return [_gcp(), _aws("store: read current", "arn:a", "sm:Get")]

    monkeypatch.setattr(perms, "collect", gathered)
    result = _run("--account", ACCOUNT, *config)
    assert result.exit_code == 2 and result.stdout == ""
    assert "renders the permissions needed at 'gcp'" in result.stderr
    assert asked == [None]  # every system is asked, not only those with a renderer


def test_the_command_line_loads_no_renderer_until_asked() -> None:
    """Starting rotator loads no renderer: ``--provider``'s choices are read when it is parsed."""
    code = (
        "import sys\n"
        "import rotator.cli.main\n"
        "print(sorted(m for m in sys.modules if m.startswith('providers')))\n"
        "from rotator.reports.permissions import systems\n"
        "print(','.join(systems()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.splitlines() == [
        "[]",
        "aws,vault,azure,kubernetes,github,gitlab,mysql,postgresql",
    ]


@pytest.fixture
def fresh_renderers() -> Iterator[None]:
    """Load the renderers again in the test, and again after it."""
    renderer_registry.renderers.cache_clear()
    yield
    renderer_registry.renderers.cache_clear()


def _entry_point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=renderer_registry.RENDERER_GROUP)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("aws", "providers.vault.policy:VaultPolicy", "renders 'vault', not 'aws'"),
        ("aws", "providers.aws.iam:AccessKeyIssuer", "is not a PermissionRenderer"),
    ],
)
def test_a_misregistered_renderer_is_refused(
    fresh_renderers: None, monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    """An entry point naming another system's renderer, or no renderer at all, is refused."""
    monkeypatch.setattr(
        renderer_registry, "entry_points", lambda group: [_entry_point(name, value)]
    )
    with pytest.raises(ConfigError, match=says):
        renderer_registry.renderers()


def test_the_account_reaches_the_aws_adapters_only() -> None:
    """``--account`` is kept where the AWS adapters read it; other systems ignore it."""
    runtime = _runtime()
    VaultPolicy().use_account(runtime, ACCOUNT)
    assert runtime.cache == {}
    with pytest.raises(ConfigError, match="an AWS account id is 12 digits"):
        IamPolicy().use_account(runtime, "12345")
    assert runtime.cache == {}
    perms.use_account(runtime, ACCOUNT)
    assert runtime.cache == {AWS_ACCOUNT: ACCOUNT}
