"""rotator's environment variables are judged at start, before any provider call.

A malformed ``ROTATOR_RATE_LIMITS`` used to be found in the middle of a
rotation (which then rolled back and alerted), and a misspelt quota name was
ignored. Now every variable is checked when a command starts, against rotator's
own settings and what every installed adapter declares, with did-you-mean:
exit 2 with nothing recorded and nothing called; the read-only commands warn
and go on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import boto3
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from rotator.adapters import ProviderConfig, Setting, Target
from rotator.adapters.discovery import Registry, registry
from rotator.cli import environment
from rotator.cli.main import cli
from tests.conftest import AWS_REGION

POLICY = """
secrets:
  - name: app/db
    store: {provider: aws-secretsmanager, secret_id: app/db}
    issuer: {kind: random, length: 24}
    schedule: {every: 30d}
    grace: 1h
"""


@pytest.fixture
def policy(aws_in_process: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """One due secret in moto and its policy; no rotator variable set but the key file's."""
    boto3.client("secretsmanager", region_name=AWS_REGION).create_secret(
        Name="app/db", SecretString="initial-value-of-app-db"
    )
    for name in list(environment.os.environ):
        if name.startswith("ROTATOR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text(POLICY)
    yield tmp_path / "p.yaml"


def _invoke(policy: Path, *args: str, env: dict[str, str]) -> Result:
    state = f"sqlite:///{policy.parent / 'journal.db'}"
    return CliRunner().invoke(
        cli, [*args, "--config", str(policy), "--state", state, "--log-format", "json"], env=env
    )


def _versions() -> int:
    listed = boto3.client("secretsmanager", region_name=AWS_REGION).list_secret_version_ids(
        SecretId="app/db", IncludeDeprecated=True
    )
    return len(listed["Versions"])


def _rotations(policy: Path) -> int:
    """Rotations the journal records (0 if the command never made it)."""
    path = policy.parent / "journal.db"
    if not path.exists():
        return 0
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("rotations"):
            return 0
        return int(conn.execute(sa.text("SELECT count(*) FROM rotations")).scalar_one())


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        # The case of the report: a malformed value, which rolled back a rotation.
        ("ROTATOR_RATE_LIMITS", "secretsmanager.write=fast", "'secretsmanager.write=fast' is not"),
        # A misspelt quota, silently ignored before.
        (
            "ROTATOR_RATE_LIMITS",
            "secretsmanger.write=5",
            "no installed adapter has a quota called 'secretsmanger.write'; "
            "did you mean 'secretsmanager.write'?",
        ),
        ("ROTATOR_RATE_LIMIT", "secretsmanager.write=5", "did you mean ROTATOR_RATE_LIMITS?"),
        ("ROTATOR_CONCURRENCY", "0", "ROTATOR_CONCURRENCY='0': '0' is not a positive number"),
        (
            "ROTATOR_CONCURRENCY",
            "aws-secretmanager=2",
            "no installed store provider is called 'aws-secretmanager'; "
            "did you mean 'aws-secretsmanager'?",
        ),
        ("ROTATOR_LEASE_TTL", "1s", "ROTATOR_LEASE_TTL='1s': must be at least 5s"),
        ("ROTATOR_LEASE_TTL", "fifteen", "ROTATOR_LEASE_TTL='fifteen': "),
        ("ROTATOR_LISTEN", "localhost", "ROTATOR_LISTEN='localhost': expected HOST:PORT"),
        ("ROTATOR_AUDIT_LOG", "/no/such/folder/audit.jsonl", "its folder /no/such/folder"),
        ("ROTATOR_AUDIT_ANCHOR", "-", "must name a file"),
        ("ROTATOR_AUDIT_LOG", "/dev/stdin", "is a symbolic link"),
        # An installed adapter's own settings (Azure's), though no policy uses Azure.
        ("ROTATOR_AZURE_CREDENTIAL", "workloads", "not one of default, workload, managed"),
        ("ROTATOR_AZURE_VERIFY_CHALLENGE_RESOURCE", "flase", "expected true or false"),
    ],
)
@pytest.mark.parametrize("command", [("rotate", "app/db"), ("run", "--once")])
def test_a_bad_setting_stops_a_command_that_acts_before_anything_happens(
    policy: Path, name: str, value: str, said: str, command: tuple[str, ...]
) -> None:
    """Exit 2 naming the variable, the value and the reason; no rotation, no provider write."""
    result = _invoke(policy, *command, env={name: value})
    assert result.exit_code == 2, result.output
    assert said in result.output
    if command[0] == "run" and name == "ROTATOR_LISTEN":
        # run reads it as its --listen option: click's usage error, naming the variable.
        assert "Invalid value for '--listen'" in result.output
    else:
        assert "rotator: error:" in result.output and "nothing was done" in result.output
    assert "unexpectedly" not in result.output
    assert _rotations(policy) == 0
    assert _versions() == 1


def test_the_known_quotas_are_every_installed_adapters_not_only_those_in_use(
    policy: Path,
) -> None:
    """The policy uses only AWS; the list names Vault's, Kubernetes' and GitLab's quotas too."""
    result = _invoke(policy, "rotate", "app/db", env={"ROTATOR_RATE_LIMITS": "valut=3"})
    assert result.exit_code == 2
    assert "did you mean 'vault'?" in result.output
    known = result.output.split("known: ", 1)[1]
    for quota in ("secretsmanager.write", "vault", "kubernetes", "gitlab", "keyvault"):
        assert quota in known


def test_good_settings_and_foreign_names_let_the_rotation_run(policy: Path) -> None:
    """Valid values pass; a ROTATOR_* name close to none of rotator's is somebody else's."""
    env = {
        "ROTATOR_RATE_LIMITS": "secretsmanager.write=0,vault=3.5",
        "ROTATOR_CONCURRENCY": "4,aws-secretsmanager=2,per-provider=1",
        "ROTATOR_LEASE_TTL": "10m",
        "ROTATOR_LISTEN": "",
        "ROTATOR_AZURE_VERIFY_CHALLENGE_RESOURCE": "TRUE",
        "ROTATOR_TEST_POSTGRES_URL": "postgresql://somewhere/else",
        "ROTATOR_SECRET": "set by a parent rotator for its hook",
    }
    result = _invoke(policy, "rotate", "app/db", env=env)
    assert result.exit_code == 0, result.output
    assert _versions() == 2


def test_a_bad_listen_option_is_a_usage_error(policy: Path) -> None:
    """``--listen`` given on the command line is checked as it is read, like its variable."""
    result = _invoke(policy, "run", "--listen", "127.0.0.1:99999", env={})
    assert result.exit_code == 2
    assert "expected HOST:PORT" in result.output
    assert _rotations(policy) == 0


@pytest.mark.parametrize("rates", ["secretsmanger.write=5", "secretsmanager.write=fast"])
def test_read_only_commands_warn_and_go_on_with_the_defaults(policy: Path, rates: str) -> None:
    """During an incident a bad variable must not hide the journal: status warns, exits 0.

    The never-rotated secret is planned from its store, whose client reads the
    malformed variable too: it takes the default rate, so the due date shows.
    """
    bad = {"ROTATOR_RATE_LIMITS": rates, "ROTATOR_LEASE_TTL": "1s"}
    result = _invoke(policy, "status", env=bad)
    assert result.exit_code == 0, result.output
    assert "rotator: warning: ROTATOR_RATE_LIMITS" in result.output
    assert "ROTATOR_LEASE_TTL='1s': must be at least 5s" in result.output
    assert "goes on with the default where it can" in result.output
    as_json = _invoke(policy, "status", "--json", env=bad)
    [row] = json.loads(as_json.stdout)
    assert row["secret"] == "app/db" and row["next_due"] is not None, row
    assert row["last_error"] is None


def test_validate_reports_the_environment_beside_valid_policies(policy: Path) -> None:
    """validate names every bad variable (text and JSON) and exits 2, though the policies pass."""
    bad = {"ROTATOR_RATE_LIMIT": "x=1", "ROTATOR_CONCURRENCY": "many"}
    text = _invoke(policy, "validate", env=bad)
    assert text.exit_code == 2
    assert "environment: ROTATOR_RATE_LIMIT is not a rotator setting" in text.output
    assert "environment: ROTATOR_CONCURRENCY='many'" in text.output
    assert "2 environment variable(s) are not" in text.output
    as_json = CliRunner().invoke(
        cli, ["validate", "--json", "--config", str(policy)], env=bad, catch_exceptions=False
    )
    assert as_json.exit_code == 2
    assert '"valid": false' in as_json.stdout
    assert "ROTATOR_CONCURRENCY='many'" in as_json.stdout


class _PagerTarget(Target[ProviderConfig]):
    """A third-party adapter declaring a quota and a secret setting of its own."""

    kind: ClassVar[str] = "pager"
    Config: ClassVar[type[ProviderConfig]] = ProviderConfig
    quotas: ClassVar[dict[str, float]] = {"pager.write": 5.0}
    settings: ClassVar[tuple[Setting, ...]] = (
        Setting("ROTATOR_PAGER_TOKEN", "The pager's API token.", check=int, secret=True),
    )


def _with_pager() -> Registry:
    installed = registry()
    return Registry(
        installed.stores,
        installed.issuers,
        {**installed.targets, "pager": _PagerTarget},
        installed.verifiers,
        installed.notifiers,
    )


def test_a_third_party_adapter_declares_its_quotas_and_settings() -> None:
    """A plugin's quota is a known name; its setting is checked, and a secret one never shown."""
    adapters = _with_pager()
    assert environment.problems(adapters, {"ROTATOR_RATE_LIMITS": "pager.write=2"}) == []
    for value in ("tok-3f9a-not-a-number", "pw12x"):  # short ones are not masked: not shown
        found = environment.problems(adapters, {"ROTATOR_PAGER_TOKEN": value})
        assert found == ["ROTATOR_PAGER_TOKEN (value hidden) is not valid: The pager's API token."]
    assert environment.problems(adapters, {"ROTATOR_PAGER_TOKN": "1"}) == [
        "ROTATOR_PAGER_TOKN is not a rotator setting; did you mean ROTATOR_PAGER_TOKEN?"
    ]
    # Without the plugin, its quota is unknown.
    assert environment.problems(registry(), {"ROTATOR_RATE_LIMITS": "pager.write=2"})


class _Unlisted(dict[str, type[Target[ProviderConfig]]]):
    """A role table that fails the test if anything lists the adapters in it."""

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("the adapters were listed")


def test_rotators_own_settings_are_judged_without_listing_the_adapters() -> None:
    """Only rotator's own names set: no adapter is imported to judge them (a cold start's cost)."""
    unlisted = Registry(_Unlisted(), _Unlisted(), _Unlisted(), _Unlisted(), _Unlisted())
    env = {"ROTATOR_CONFIG": "schedules", "ROTATOR_LEASE_TTL": "1s", "HOME": "/root"}

    assert environment.problems(unlisted, env) == ["ROTATOR_LEASE_TTL='1s': must be at least 5s"]
    # A name beyond rotator's own needs every adapter's settings to be judged.
    with pytest.raises(AssertionError, match="listed"):
        environment.problems(unlisted, {"ROTATOR_PAGER_TOKEN": "1"})


def test_the_operations_guide_lists_every_setting_and_quota() -> None:
    """docs/operations.md names each setting and each quota the shipped adapters declare."""
    guide = (Path(__file__).parent.parent / "docs" / "operations.md").read_text()
    table = guide.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    known = environment.Known.of(registry())
    for name in known.settings:
        assert f"| `{name}` |" in table
    for quota in known.quotas:
        assert f"`{quota}`" in table
