"""``rotator permissions`` for Vault, proven against the Vault emulator's ACL enforcement.

The generated HCL is written as a policy, a token gets only that policy (not
even ``default``), and the engine, holding that token, rotates a random
value, an AppRole secret-id and a periodic token, each kept in KV v2: first
a rotation whose verification is made to fail (so the rollback, with its
recovery of what was minted, runs too), then two whole rotations through
grace and revoke. They all succeed. Then each path block is dropped in turn,
and each capability of each block: a rotation fails, at the engine step the
block's comment names, on that path. The few capabilities no rotation can
show (a replay after a crash, ``rotator check``) get tests of their own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import hvac
import pytest

from providers.vault.kv import CHECK_STEP, VaultKvConfig, VaultKvStore
from providers.vault.policy import vault_blocks, vault_policy
from providers.vault.token import TokenConfig, TokenIssuer
from rotator.adapters.secret import SecretValue
from rotator.adapters.values import Permission, Runtime
from rotator.engine import faults
from rotator.engine.preflight import Verdict
from rotator.engine.report import Result
from rotator.engine.runner import Engine
from rotator.errors import PermissionDeniedError, ProviderError
from rotator.journal.journal import Journal
from rotator.lifecycle import State
from rotator.policy.loader import load_policies
from rotator.reports.permissions import collect
from rotator.sandbox.vault import VaultEmulator
from tests.conftest import FakeClock
from tests.providers.failures import first_failure

SECRETS = ("app/db", "app/role", "app/token")
POLICIES = """
defaults:
  grace: 1h
  schedule: {every: 30d}
secrets:
  - name: app/db
    store: {provider: vault-kv, path: app/db}
    issuer: {kind: random, length: 24}
  - name: app/role
    store: {provider: vault-kv, path: app/role}
    issuer: {kind: vault-approle-secret-id, role: orders}
  - name: app/token
    store: {provider: vault-kv, path: app/token}
    issuer: {kind: vault-token, policies: [reports-read]}
"""

STAGED = "secret/{area}/.rotator-pending/app/{name}/+"


@dataclass(frozen=True)
class Expected:
    """A block's capabilities, the secret that fails without it, and at which engine step."""

    capabilities: tuple[str, ...]
    secret: str
    step: str


def _kv(name: str) -> dict[str, Expected]:
    """The KV blocks of one secret's store."""
    secret = f"app/{name}"
    return {
        f"secret/data/app/{name}": Expected(("create", "read", "update"), secret, "mint"),
        f"secret/metadata/app/{name}": Expected(("read", "update"), secret, "promote"),
        f"secret/delete/app/{name}": Expected(("update",), secret, "revoke"),
        STAGED.format(area="data", name=name): Expected(("read", "update"), secret, "store"),
        STAGED.format(area="metadata", name=name): Expected(
            ("create", "read", "update", "delete"), secret, "store"
        ),
    }


ROLE = "auth/approle/role/orders"
#: For each block of the generated policy: the secret that fails without it, and the step.
DROPPED = {
    **_kv("db"),
    **_kv("role"),
    **_kv("token"),
    f"{ROLE}/role-id": Expected(("read",), "app/role", "mint"),
    f"{ROLE}/secret-id": Expected(("update", "list"), "app/role", "mint"),
    f"{ROLE}/secret-id/lookup": Expected(("update",), "app/role", "mint"),
    f"{ROLE}/secret-id-accessor/lookup": Expected(("update",), "app/role", "rollback"),
    f"{ROLE}/secret-id-accessor/destroy": Expected(("update",), "app/role", "rollback"),
    "auth/token/create-orphan": Expected(("update", "sudo"), "app/token", "mint"),
    "auth/token/lookup-accessor": Expected(("update",), "app/token", "rollback"),
    "auth/token/revoke-accessor": Expected(("update",), "app/token", "rollback"),
}
#: Blocks no rotation fails without, each proven by a test of its own.
NOT_BY_ROTATION = {
    # Lists tokens so a token lost in a crash is found: test_token_lost_in_a_crash_is_found...
    "auth/token/accessors": ("list", "sudo"),
    # rotator check only: test_check_asks_capabilities_only_with_its_block.
    "sys/capabilities-self": ("update",),
}
#: Capabilities of a block that the rotations above cannot show, and why.
UNSEEN = {
    # Both paths exist already (seeded); app/db shows `create` is needed on a new path.
    ("secret/data/app/role", "create"),
    ("secret/data/app/token", "create"),
    # Only a write replayed after a crash between its two requests:
    # test_staging_metadata_update_is_for_a_replayed_write.
    (STAGED.format(area="metadata", name="db"), "update"),
    (STAGED.format(area="metadata", name="role"), "update"),
    (STAGED.format(area="metadata", name="token"), "update"),
}


@pytest.fixture
def vault(monkeypatch: pytest.MonkeyPatch) -> Iterator[VaultEmulator]:
    """A started emulator, with no other Vault settings in the environment."""
    for name in ("VAULT_ADDR", "VAULT_TOKEN", "VAULT_NAMESPACE", "VAULT_ROLE_ID", "VAULT_K8S_ROLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", "/nonexistent-home-for-vault-token")
    with VaultEmulator() as emulator:
        yield emulator


@dataclass
class World:
    """The emulator, its root client, the policy file and what the policies need."""

    vault: VaultEmulator
    root: hvac.Client
    config: Path
    needed: list[Permission]


def _engine(journal: Path, config: Path, clock: FakeClock) -> Engine:
    return Engine(
        load_policies(config),
        Journal(f"sqlite:///{journal}", clock),
        clock=clock,
        sleep=clock.sleep,
    )


def _seed(vault: VaultEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    """Create the role, the token policy, the current secret-id and token; generate the needs."""
    root = hvac.Client(url=vault.url, token=vault.root_token)
    root.sys.create_or_update_policy(
        name="reports-read", policy='path "secret/data/reports/*" { capabilities = ["read"] }'
    )
    root.auth.approle.create_or_update_approle("orders", token_policies=["default"])
    role_id = root.auth.approle.read_role_id("orders")["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id("orders")["data"]["secret_id"]
    root.secrets.kv.v2.create_or_update_secret(
        path="app/role", secret={"value": {"role_id": role_id, "secret_id": secret_id}}
    )
    token = root.auth.token.create_orphan(policies=["reports-read"], period="24h")
    root.secrets.kv.v2.create_or_update_secret(
        path="app/token", secret={"value": token["auth"]["client_token"]}
    )
    config = tmp_path / "policies.yaml"
    config.write_text(POLICIES)
    monkeypatch.setenv("VAULT_ADDR", vault.url)
    engine = _engine(tmp_path / "generate.db", config, FakeClock())
    needed = collect((engine.binding(n) for n in sorted(engine.policies)), ("vault",))
    return World(vault, root, config, needed)


def _token_for(world: World, hcl: str) -> str:
    """Write ``hcl`` as policy ``rotator``; return a token holding only it (no default policy)."""
    world.root.sys.create_or_update_policy(name="rotator", policy=hcl)
    made = world.root.auth.token.create(policies=["rotator"], no_default_policy=True, ttl="24h")
    token: str = made["auth"]["client_token"]
    return token


def _rotate_all(
    world: World, hcl: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Engine, dict[str, list[State | None]]]:
    """Run the scenario holding only ``hcl``: a rolled-back rotation, then two whole ones.

    Returns where each round left each secret (``None``: failed).
    """
    monkeypatch.setenv("VAULT_TOKEN", _token_for(world, hcl))
    clock = FakeClock()
    engine = _engine(tmp_path / "run.db", world.config, clock)
    ended: dict[str, list[State | None]] = {name: [] for name in SECRETS}
    with faults.armed("fail:verify"):
        for name in SECRETS:
            [outcome] = engine.rotate(name).outcomes
            ended[name].append(outcome.state if outcome.state is State.ROLLED_BACK else None)
    for _round in range(2):
        for name in SECRETS:
            outcomes = engine.rotate(name).outcomes
            clock.advance(timedelta(hours=2))
            outcomes += engine.run_once().outcomes
            last = [o for o in outcomes if o.secret == name][-1]
            ended[name].append(last.state if last.result is Result.OK else None)
    return engine, ended


SUCCESS = [State.ROLLED_BACK, State.DONE, State.DONE]


def _without(needed: list[Permission], path: str, capability: str | None = None) -> str:
    """Render the policy without ``path``'s block, or without one capability of it."""
    kept: list[Permission] = []
    for p in needed:
        if p.resource != path:
            kept.append(p)
        elif capability is not None and capability in p.actions:
            rest = tuple(a for a in p.actions if a != capability)
            if rest:
                kept.append(replace(p, actions=rest))
        elif capability is not None:
            kept.append(p)
    return vault_policy(kept)


def _names(detail: str, path: str) -> bool:
    """Tell whether a failure's text names ``path`` (a ``+`` matching one segment)."""
    pattern = re.escape(path).replace(r"\+", r"[^/\s]+")
    return re.search(pattern, detail) is not None


def test_blocks_are_the_ones_the_tests_know(
    vault: VaultEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every block of the generated policy has an expectation here, and each comment names steps."""
    world = _seed(vault, tmp_path, monkeypatch)
    blocks = vault_blocks(world.needed)
    expected = {p: e.capabilities for p, e in DROPPED.items()} | NOT_BY_ROTATION
    assert {b.path: b.capabilities for b in blocks} == expected
    assert all(b.steps for b in blocks)
    hcl = vault_policy(world.needed)
    assert "# check: rotator check asks the token's capabilities [update]" in hcl
    assert 'path "auth/token/create-orphan" { capabilities = ["update", "sudo"] }' in hcl


def test_rotations_succeed_with_exactly_the_generated_policy(
    vault: VaultEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Holding only the generated policy, KV, AppRole and token rotations roll back and complete."""
    world = _seed(vault, tmp_path, monkeypatch)
    engine, ended = _rotate_all(world, vault_policy(world.needed), tmp_path, monkeypatch)
    assert ended == dict.fromkeys(SECRETS, SUCCESS)
    assert all(first_failure(engine.journal, name) is None for name in SECRETS)
    role_ids = world.root.auth.approle.list_secret_id_accessors("orders")["data"]["keys"]
    assert len(role_ids) == 1  # the rolled-back and the replaced secret-ids are destroyed


def test_without_the_policy_nothing_rotates(
    vault: VaultEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token whose policy grants nothing fails at the first step: the ACL is enforced."""
    world = _seed(vault, tmp_path, monkeypatch)
    engine, ended = _rotate_all(
        world, 'path "nothing" { capabilities = ["read"] }', tmp_path, monkeypatch
    )
    assert ended == {name: [None, None, None] for name in SECRETS}
    failure = first_failure(engine.journal, "app/db")
    assert failure is not None and failure.step == "mint"


@pytest.mark.parametrize("path", sorted(DROPPED))
def test_each_block_is_needed_by_the_step_it_names(
    path: str, vault: VaultEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without one block a rotation fails at the expected step, on that path; the rest succeed."""
    world = _seed(vault, tmp_path, monkeypatch)
    expected = DROPPED[path]
    engine, ended = _rotate_all(world, _without(world.needed, path), tmp_path, monkeypatch)
    assert ended[expected.secret] != SUCCESS
    failure = first_failure(engine.journal, expected.secret)
    assert failure is not None
    assert failure.step == expected.step, failure
    assert _names(failure.detail, path), failure
    for name in SECRETS:
        if name != expected.secret:
            assert ended[name] == SUCCESS, f"{name} needs {path}"


def _capabilities() -> list[tuple[str, str]]:
    """Every (block, capability) a rotation is expected to need."""
    return [
        (path, capability)
        for path, expected in sorted(DROPPED.items())
        for capability in expected.capabilities
        if (path, capability) not in UNSEEN
    ]


@pytest.mark.parametrize(("path", "capability"), _capabilities())
def test_each_capability_is_needed(
    path: str,
    capability: str,
    vault: VaultEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without one capability of a block, a step of that block's secret fails on that path."""
    world = _seed(vault, tmp_path, monkeypatch)
    expected = DROPPED[path]
    engine, _ended = _rotate_all(
        world, _without(world.needed, path, capability), tmp_path, monkeypatch
    )
    # A step failed on that path (the rotation may still end well: a promote whose
    # labels could not be written is found promoted by its rollback).
    failure = first_failure(engine.journal, expected.secret)
    assert failure is not None, f"{capability} on {path} is not needed"
    assert _names(failure.detail, path), failure


def test_unseen_capabilities_are_in_the_policy(
    vault: VaultEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each capability the rotations cannot show is one the generated policy really holds."""
    world = _seed(vault, tmp_path, monkeypatch)
    held = {(b.path, c) for b in vault_blocks(world.needed) for c in b.capabilities}
    assert held >= UNSEEN


def _runtime() -> Runtime:
    clock = FakeClock()
    return Runtime(clock=clock, sleep=clock.sleep)


def test_staging_metadata_update_is_for_a_replayed_write(
    vault: VaultEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pending write replayed after a crash between its two requests needs update on metadata."""
    world = _seed(vault, tmp_path, monkeypatch)
    staged = STAGED.format(area="metadata", name="db")
    rotation_id = "0123456789abcdef0123456789abcdef"
    store_config = VaultKvConfig(path="app/db")
    outcomes: dict[str, str] = {}
    for label, hcl in (
        ("generated", vault_policy(world.needed)),
        ("without update", _without(world.needed, staged, "update")),
    ):
        # The crash left the staging path's metadata written and its data not.
        world.root.secrets.kv.v2.delete_metadata_and_all_versions(
            path=f".rotator-pending/app/db/{rotation_id}"
        )
        world.root.secrets.kv.v2.update_metadata(
            path=f".rotator-pending/app/db/{rotation_id}", custom_metadata={"crashed": "yes"}
        )
        monkeypatch.setenv("VAULT_TOKEN", _token_for(world, hcl))
        store = VaultKvStore(store_config, _runtime(), "app/db")
        try:
            store.put_pending(rotation_id, SecretValue("a-new-value-of-24-chars!"))
            outcomes[label] = "written"
        except PermissionDeniedError as exc:
            outcomes[label] = str(exc)
    assert outcomes["generated"] == "written"
    assert "permission denied" in outcomes["without update"]
    assert f".rotator-pending/app/db/{rotation_id}" in outcomes["without update"]


def test_token_lost_in_a_crash_is_found_only_with_the_accessors_block(
    vault: VaultEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token minted but never stored is revoked by recover only if rotator may list accessors."""
    world = _seed(vault, tmp_path, monkeypatch)
    alive: dict[str, bool] = {}
    for label, hcl in (
        ("generated", vault_policy(world.needed)),
        ("without accessors", _without(world.needed, "auth/token/accessors")),
    ):
        monkeypatch.setenv("VAULT_TOKEN", _token_for(world, hcl))
        issuer = TokenIssuer(TokenConfig(policies=["reports-read"]), _runtime(), "app/token")
        rotation_id = f"{label.replace(' ', '-')}-rotation"
        known = issuer.inventory()
        lost = issuer.mint(rotation_id)  # the process dies before the store has it
        assert issuer.recover(rotation_id, known=known, pending=None) is None
        try:
            world.root.auth.token.lookup_accessor(lost.ref)
            alive[label] = True
        except hvac.exceptions.InvalidRequest:
            alive[label] = False
    assert alive == {"generated": False, "without accessors": True}


def test_check_asks_capabilities_only_with_its_block(
    vault: VaultEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``rotator check`` proves write access with sys/capabilities-self, and cannot without it."""
    world = _seed(vault, tmp_path, monkeypatch)
    said: dict[str, str] = {}
    for label, hcl in (
        ("generated", vault_policy(world.needed)),
        ("without", _without(world.needed, "sys/capabilities-self")),
    ):
        monkeypatch.setenv("VAULT_TOKEN", _token_for(world, hcl))
        engine = _engine(tmp_path / f"check-{label}.db", world.config, FakeClock())
        [write] = [f for f in engine.check(["app/db"]) if f.check == "store write"]
        assert write.verdict is Verdict.OK
        said[label] = write.detail
    assert said["generated"].startswith("sys/capabilities-self: the token may")
    assert said["without"].startswith("write access could not be checked")
    assert CHECK_STEP.startswith("check:")


def test_ttl_token_needs_no_sudo_but_must_hold_its_policies(
    vault: VaultEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ttl only, create-orphan needs no sudo, and the note's policies must be held."""
    world = _seed(vault, tmp_path, monkeypatch)
    config = TokenConfig(policies=["reports-read"], ttl=timedelta(hours=8))
    needed = TokenIssuer(config, _runtime(), "app/ttl").permissions()
    hcl = vault_policy(needed)
    assert 'path "auth/token/create-orphan" { capabilities = ["update"] }' in hcl
    assert (
        "# NOTE issuer: mint token: rotator's own token must hold the policies reports-read" in hcl
    )
    world.root.sys.create_or_update_policy(name="rotator", policy=hcl)
    minted: dict[str, str] = {}
    for label, policies in (("holding", ["rotator", "reports-read"]), ("not holding", ["rotator"])):
        made = world.root.auth.token.create(policies=policies, no_default_policy=True, ttl="1h")
        monkeypatch.setenv("VAULT_TOKEN", made["auth"]["client_token"])
        issuer = TokenIssuer(config, _runtime(), "app/ttl")
        try:
            minted[label] = issuer.mint("ttl-rotation").ref or ""
        except ProviderError as exc:
            minted[label] = f"refused: {exc}"
    assert not minted["holding"].startswith("refused")
    assert minted["not holding"].startswith("refused")
    assert "auth/token/create-orphan" in minted["not holding"]
