"""A broken third-party plugin is reported and skipped; every other adapter still loads.

The plugin is a real distribution: a ``.dist-info`` directory with its
``entry_points.txt`` and its package, written to a temporary directory put on
``sys.path``, found by ``importlib.metadata`` as an installed one would be.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner

from rotator.adapters.discovery import registry
from rotator.cli.main import cli
from rotator.errors import PolicyError
from rotator.output import redact
from rotator.policy.loader import load_policies
from tests.conftest import restored_logging

DISTRIBUTION = "rotator-broken-plugin"
PACKAGE = "rotator_broken_plugin"
#: What the exploding module's import error quotes: a secret it should not have printed.
LEAKED = "plugin-token-0123456789abcdef"

ENTRY_POINTS = f"""\
[rotator.providers]
store.broken = {PACKAGE}.missing:Store
issuer.half = {PACKAGE}.half:HalfIssuer
target.stranger = {PACKAGE}.half:NotAnAdapter
verifier.exploding = {PACKAGE}.exploding:Verifier
verifier.quitting = {PACKAGE}.quitting:Verifier
notifier.fine = {PACKAGE}.half:FineNotifier
storage.typo = {PACKAGE}.half:FineNotifier
"""

HALF = """\
from rotator.adapters import Alert, Issuer, Notifier, ProviderConfig


class HalfIssuer(Issuer[ProviderConfig]):
    kind = "half"
    Config = ProviderConfig
    # mint() is missing: the class is abstract.


class NotAnAdapter:
    pass


class FineNotifier(Notifier[ProviderConfig]):
    kind = "fine"
    Config = ProviderConfig

    def describe(self) -> str:
        return "fine"

    def send(self, alert: Alert) -> None:
        pass
"""

EXPLODING = f'raise RuntimeError("login refused for token {LEAKED}")\n'

POLICY = """\
secrets:
  - name: db
    store: {provider: broken, secret_id: db}
    schedule: {every: 30d}
    grace: 1h
"""

GOOD_POLICY = """\
secrets:
  - name: db
    store: {provider: aws-secretsmanager, secret_id: db}
    schedule: {every: 30d}
    grace: 1h
"""


@pytest.fixture
def broken_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Install the broken plugin's distribution for the test, and forget it afterwards."""
    site = tmp_path / "site"
    info = site / f"{PACKAGE}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {DISTRIBUTION}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    package = site / PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "half.py").write_text(HALF)
    (package / "exploding.py").write_text(EXPLODING)
    (package / "quitting.py").write_text("import sys\nsys.exit(3)\n")
    redact.register(LEAKED)
    monkeypatch.syspath_prepend(str(site))
    registry.cache_clear()
    yield
    registry.cache_clear()
    for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
        del sys.modules[name]


def test_every_broken_entry_point_is_skipped_and_the_rest_load(broken_plugin: None) -> None:
    """Each fault is named with its entry point and distribution; built-ins and good ones load."""
    found = registry()

    reasons = {s.name: s.reason for s in found.skipped}
    assert set(reasons) == {
        "store.broken",
        "issuer.half",
        "target.stranger",
        "verifier.exploding",
        "verifier.quitting",
        "storage.typo",
    }
    assert reasons["store.broken"].startswith("cannot be imported: ModuleNotFoundError")
    assert reasons["issuer.half"] == "HalfIssuer does not implement mint"
    assert reasons["target.stranger"] == "NotAnAdapter does not extend rotator's Target"
    assert reasons["verifier.exploding"].startswith("cannot be imported: RuntimeError")
    # A plugin that exits as it is imported is reported, not the end of rotator.
    assert reasons["verifier.quitting"].startswith("cannot be imported: SystemExit")
    assert "ROLE.NAME" in reasons["storage.typo"]
    for skipped in found.skipped:
        assert skipped.distribution == f"{DISTRIBUTION} 1.0"
        assert skipped.target.startswith(f"{PACKAGE}.")
    assert "aws-secretsmanager" in found.stores
    assert {"random", "aws-iam-access-key"} <= set(found.issuers)
    assert {"file", "webhook"} <= set(found.targets)
    assert "fine" in found.notifiers
    assert "half" not in found.issuers


def test_the_skip_is_logged_with_the_secret_scrubbed(broken_plugin: None) -> None:
    """The warning names the entry point and distribution; the plugin's leaked token is masked."""
    with structlog.testing.capture_logs() as logs:
        skipped = registry().skipped

    warnings = {e["entry_point"]: e for e in logs if e["event"] == "adapter skipped"}
    assert set(warnings) == {s.name for s in skipped}
    exploding = warnings["verifier.exploding"]
    assert exploding["log_level"] == "warning"
    assert exploding["distribution"] == f"{DISTRIBUTION} 1.0"
    assert redact.MASK in exploding["reason"]
    assert all(LEAKED not in str(s) for s in skipped)
    assert all(LEAKED not in str(e) for e in logs)


def test_a_policy_naming_a_skipped_adapter_gets_a_located_problem(
    broken_plugin: None, tmp_path: Path
) -> None:
    """Not a crash: the problem is at the provider's line and says why the adapter is missing."""
    path = tmp_path / "p.yaml"
    path.write_text(POLICY)

    with pytest.raises(PolicyError) as caught:
        load_policies(path)

    [problem] = caught.value.problems
    assert (problem.line, problem.path) == (3, "secrets[0].store.provider")
    assert "provider 'broken' could not be loaded" in problem.reason
    assert f"store.broken ({PACKAGE}.missing:Store)" in problem.reason
    assert f"{DISTRIBUTION} 1.0" in problem.reason
    assert "ModuleNotFoundError" in problem.reason


def test_validate_prints_the_warning_and_exits_2_only_when_a_policy_uses_it(
    broken_plugin: None, tmp_path: Path
) -> None:
    """`rotator validate` shows every skipped entry point; a policy using one fails, located."""
    (tmp_path / "bad.yaml").write_text(POLICY)
    (tmp_path / "good.yaml").write_text(GOOD_POLICY)
    runner = CliRunner()

    with restored_logging():
        bad = runner.invoke(cli, ["validate", "--config", str(tmp_path / "bad.yaml")])
        good = runner.invoke(cli, ["validate", "--config", str(tmp_path / "good.yaml")])

    assert bad.exit_code == 2, bad.output
    assert "rotator: warning: adapter store.broken" in bad.output
    assert "bad.yaml:3:" in bad.output
    assert good.exit_code == 0, good.output
    assert "rotator: warning: adapter verifier.exploding" in good.output
    assert f"of distribution {DISTRIBUTION} 1.0 was skipped" in good.output
    assert "1 policies in 1 file(s) are valid" in good.output
    assert LEAKED not in bad.output + good.output


def test_an_adapter_is_imported_when_first_looked_up(broken_plugin: None) -> None:
    """Looking one adapter up tries no other entry point; asking for the skips tries them all."""
    found = registry()

    with structlog.testing.capture_logs() as logs:
        assert found.stores["aws-secretsmanager"].provider == "aws-secretsmanager"
        assert "broken" not in found.stores
    tried = {e["entry_point"] for e in logs if e["event"] == "adapter skipped"}
    assert tried == {"store.broken"}
    assert f"{PACKAGE}.half" not in sys.modules and f"{PACKAGE}.exploding" not in sys.modules

    with structlog.testing.capture_logs() as logs:
        plugins = {s.name for s in found.skipped_plugins}
    assert (
        plugins
        == {s.name for s in found.skipped}
        == {
            "store.broken",
            "issuer.half",
            "target.stranger",
            "verifier.exploding",
            "verifier.quitting",
            "storage.typo",
        }
    )
    # Each skip is logged once, when first tried: store.broken was already.
    logged = [e["entry_point"] for e in logs if e["event"] == "adapter skipped"]
    assert sorted(logged) == sorted(plugins - {"store.broken"})
