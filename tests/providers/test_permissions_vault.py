"""``rotator permissions`` for Vault, proven under the ACLs of the emulator and of OpenBao.

The generated HCL is written as a policy, a token gets only that policy (not
even ``default``), and the engine, holding that token, rotates a random
value, an AppRole secret-id and a periodic token, each kept in KV v2: first
a rotation whose verification is made to fail (so the rollback, with its
recovery of what was minted, runs too), then two whole rotations through
grace and revoke. They all succeed. Then each capability of each block is
dropped in turn: a rotation fails on that path. Dropping each whole block
shows the engine step that fails is the one the block's comment names. The
few capabilities no rotation can show (a replay after a crash, ``rotator
check``) get tests of their own.

Each test runs on the Vault emulator and on a real server (the session's
OpenBao, or the Vault ``VAULT_ADDR`` names), in a KV v2 mount and an AppRole
mount of its own; the paths below are written for the default mounts
(``secret``, ``auth/approle``) and :meth:`World.on` moves them there.
"""

from __future__ import annotations

import re
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
from tests.conftest import FakeClock
from tests.providers.failures import first_failure
from tests.providers.vault.backends import (
    Backend,
    clean_vault_env,
    new_rotation_id,
    point_at,
)

pytest_plugins = ["tests.providers.vault.conftest_backends"]

SECRETS = ("app/db", "app/role", "app/token")
POLICIES = """
defaults:
  grace: 1h
  schedule: {{every: 30d}}
secrets:
  - name: app/db
    store: {{provider: vault-kv, mount: {kv}, path: app/db}}
    issuer: {{kind: random, length: 24}}
  - name: app/role
    store: {{provider: vault-kv, mount: {kv}, path: app/role}}
    issuer: {{kind: vault-approle-secret-id, mount: {approle}, role: orders}}
  - name: app/token
    store: {{provider: vault-kv, mount: {kv}, path: app/token}}
    issuer: {{kind: vault-token, policies: [{reports}]}}
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


@dataclass
class World:
    """A Vault with the test's mounts and policies, its root client, and what rotator needs."""

    backend: Backend
    kv: str
    approle: str
    reports: str
    config: Path
    needed: list[Permission]
    monkeypatch: pytest.MonkeyPatch

    @property
    def root(self) -> hvac.Client:
        """A client holding the admin (root) token."""
        client: hvac.Client = self.backend.admin()
        return client

    def on(self, path: str) -> str:
        """Move a path written for the default mounts to this test's mounts."""
        if path.startswith("secret/"):
            return f"{self.kv}/{path.removeprefix('secret/')}"
        if path.startswith("auth/approle/"):
            return f"auth/{self.approle}/{path.removeprefix('auth/approle/')}"
        return path

    def token_for(self, hcl: str, *also: str) -> str:
        """Write ``hcl`` as the test's policy ``rotator``; point VAULT_TOKEN at a token holding it.

        The token holds only that policy and ``also`` (not even ``default``).
        """
        policy = self.backend.policy("rotator", hcl)
        token = self.backend.token(policy, *also, ttl="24h", no_default_policy=True)
        point_at(self.monkeypatch, self.backend, token)
        return token


@pytest.fixture
def world(vault_backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    """Mounts, the role, the token policy, the current secret-id and token, and the needs.

    No other Vault settings are left in the environment.
    """
    clean_vault_env(monkeypatch, tmp_path / "home")
    backend = vault_backend
    kv, approle = backend.enable_kv("secret"), backend.enable_approle()
    reports = backend.policy(
        "reports-read", f'path "{kv}/data/reports/*" {{ capabilities = ["read"] }}'
    )
    root = backend.admin()
    root.auth.approle.create_or_update_approle(
        "orders", token_policies=["default"], mount_point=approle
    )
    role_id = root.auth.approle.read_role_id("orders", mount_point=approle)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id("orders", mount_point=approle)["data"][
        "secret_id"
    ]
    root.secrets.kv.v2.create_or_update_secret(
        path="app/role",
        secret={"value": {"role_id": role_id, "secret_id": secret_id}},
        mount_point=kv,
    )
    token = root.auth.token.create_orphan(policies=[reports], period="24h")
    backend.accessors.append(token["auth"]["accessor"])
    root.secrets.kv.v2.create_or_update_secret(
        path="app/token", secret={"value": token["auth"]["client_token"]}, mount_point=kv
    )
    config = tmp_path / "policies.yaml"
    config.write_text(POLICIES.format(kv=kv, approle=approle, reports=reports))
    point_at(monkeypatch, backend, backend.root_token)
    engine = _engine(tmp_path / "generate.db", config, FakeClock())
    needed = collect((engine.binding(n) for n in sorted(engine.policies)), ("vault",))
    return World(backend, kv, approle, reports, config, needed, monkeypatch)


def _engine(journal: Path, config: Path, clock: FakeClock) -> Engine:
    return Engine(
        load_policies(config),
        Journal(f"sqlite:///{journal}", clock),
        clock=clock,
        sleep=clock.sleep,
    )


def _rotate_all(
    world: World, hcl: str, tmp_path: Path
) -> tuple[Engine, dict[str, list[State | None]]]:
    """Run the scenario holding only ``hcl``: a rolled-back rotation, then two whole ones.

    Returns where each round left each secret (``None``: failed).
    """
    world.token_for(hcl)
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


def test_blocks_are_the_ones_the_tests_know(world: World) -> None:
    """Every block of the generated policy has an expectation here, and each comment names steps."""
    blocks = vault_blocks(world.needed)
    expected = {world.on(p): e.capabilities for p, e in DROPPED.items()} | NOT_BY_ROTATION
    assert {b.path: b.capabilities for b in blocks} == expected
    assert all(b.steps for b in blocks)
    hcl = vault_policy(world.needed)
    assert "# check: rotator check asks the token's capabilities [update]" in hcl
    assert 'path "auth/token/create-orphan" { capabilities = ["update", "sudo"] }' in hcl


def test_rotations_succeed_with_exactly_the_generated_policy(world: World, tmp_path: Path) -> None:
    """Holding only the generated policy, KV, AppRole and token rotations roll back and complete."""
    engine, ended = _rotate_all(world, vault_policy(world.needed), tmp_path)
    assert ended == dict.fromkeys(SECRETS, SUCCESS)
    assert all(first_failure(engine.journal, name) is None for name in SECRETS)
    approle = world.root.auth.approle
    role_ids = approle.list_secret_id_accessors("orders", mount_point=world.approle)["data"]["keys"]
    assert len(role_ids) == 1  # the rolled-back and the replaced secret-ids are destroyed


def test_without_the_policy_nothing_rotates(world: World, tmp_path: Path) -> None:
    """A token whose policy grants nothing fails at the first step: the ACL is enforced."""
    engine, ended = _rotate_all(world, 'path "nothing" { capabilities = ["read"] }', tmp_path)
    assert ended == {name: [None, None, None] for name in SECRETS}
    failure = first_failure(engine.journal, "app/db")
    assert failure is not None and failure.step == "mint"


# On a real server the capability matrix below refuses every block already (a block less is a
# capability less, or more); which step then fails is the engine's: the emulator shows it.
@pytest.mark.parametrize("vault_backend", ["emulator"], indirect=True)
@pytest.mark.parametrize("path", sorted(DROPPED))
def test_each_block_is_needed_by_the_step_it_names(path: str, world: World, tmp_path: Path) -> None:
    """Without one block a rotation fails at the expected step, on that path; the rest succeed."""
    expected = DROPPED[path]
    path = world.on(path)
    engine, ended = _rotate_all(world, _without(world.needed, path), tmp_path)
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
    path: str, capability: str, world: World, tmp_path: Path
) -> None:
    """Without one capability of a block, a step of that block's secret fails on that path."""
    expected = DROPPED[path]
    path = world.on(path)
    engine, _ended = _rotate_all(world, _without(world.needed, path, capability), tmp_path)
    # A step failed on that path (the rotation may still end well: a promote whose
    # labels could not be written is found promoted by its rollback).
    failure = first_failure(engine.journal, expected.secret)
    assert failure is not None, f"{capability} on {path} is not needed"
    assert _names(failure.detail, path), failure


def test_unseen_capabilities_are_in_the_policy(world: World) -> None:
    """Each capability the rotations cannot show is one the generated policy really holds."""
    held = {(b.path, c) for b in vault_blocks(world.needed) for c in b.capabilities}
    assert held >= {(world.on(path), capability) for path, capability in UNSEEN}


def _runtime() -> Runtime:
    clock = FakeClock()
    return Runtime(clock=clock, sleep=clock.sleep)


def test_staging_metadata_update_is_for_a_replayed_write(world: World) -> None:
    """A pending write replayed after a crash between its two requests needs update on metadata."""
    staged = world.on(STAGED.format(area="metadata", name="db"))
    rotation_id = "0123456789abcdef0123456789abcdef"
    staging = f".rotator-pending/app/db/{rotation_id}"
    store_config = VaultKvConfig(mount=world.kv, path="app/db")
    kv = world.root.secrets.kv.v2
    outcomes: dict[str, str] = {}
    for label, hcl in (
        ("generated", vault_policy(world.needed)),
        ("without update", _without(world.needed, staged, "update")),
    ):
        # The crash left the staging path's metadata written and its data not.
        kv.delete_metadata_and_all_versions(path=staging, mount_point=world.kv)
        kv.update_metadata(path=staging, custom_metadata={"crashed": "yes"}, mount_point=world.kv)
        world.token_for(hcl)
        store = VaultKvStore(store_config, _runtime(), "app/db")
        try:
            store.put_pending(rotation_id, SecretValue("a-new-value-of-24-chars!"))
            outcomes[label] = "written"
        except PermissionDeniedError as exc:
            outcomes[label] = str(exc)
    assert outcomes["generated"] == "written"
    assert "permission denied" in outcomes["without update"]
    assert f"{world.kv}/metadata/{staging}" in outcomes["without update"]


def test_token_lost_in_a_crash_is_found_only_with_the_accessors_block(world: World) -> None:
    """A token minted but never stored is revoked by recover only if rotator may list accessors."""
    alive: dict[str, bool] = {}
    for label, hcl in (
        ("generated", vault_policy(world.needed)),
        ("without accessors", _without(world.needed, "auth/token/accessors")),
    ):
        world.token_for(hcl)
        issuer = TokenIssuer(TokenConfig(policies=[world.reports]), _runtime(), "app/token")
        rotation_id = new_rotation_id()
        known = issuer.inventory()
        lost = issuer.mint(rotation_id)  # the process dies before the store has it
        assert lost.ref is not None
        world.backend.accessors.append(lost.ref)
        assert issuer.recover(rotation_id, known=known, pending=None) is None
        try:
            world.root.auth.token.lookup_accessor(lost.ref)
            alive[label] = True
        except hvac.exceptions.InvalidRequest:
            alive[label] = False
    assert alive == {"generated": False, "without accessors": True}


def test_check_asks_capabilities_only_with_its_block(world: World, tmp_path: Path) -> None:
    """``rotator check`` proves write access with sys/capabilities-self, and cannot without it."""
    said: dict[str, str] = {}
    for label, hcl, verdict in (
        ("generated", vault_policy(world.needed), Verdict.OK),
        # Not ok: what could not be checked is no proof (rotator check exits 1).
        ("without", _without(world.needed, "sys/capabilities-self"), Verdict.UNKNOWN),
    ):
        world.token_for(hcl)
        engine = _engine(tmp_path / f"check-{label}.db", world.config, FakeClock())
        [write] = [f for f in engine.check(["app/db"]) if f.check == "store write"]
        assert write.verdict is verdict
        said[label] = write.detail
    assert said["generated"].startswith("sys/capabilities-self: the token may")
    assert said["without"].startswith("write access could not be checked")
    assert CHECK_STEP.startswith("check:")


def test_ttl_token_needs_no_sudo_but_must_hold_its_policies(world: World) -> None:
    """With ttl only, create-orphan needs no sudo, and the note's policies must be held."""
    config = TokenConfig(policies=[world.reports], ttl=timedelta(hours=8))
    needed = TokenIssuer(config, _runtime(), "app/ttl").permissions()
    hcl = vault_policy(needed)
    assert 'path "auth/token/create-orphan" { capabilities = ["update"] }' in hcl
    assert (
        "# NOTE issuer: mint token: rotator's own token must hold the policies "
        f"{world.reports}" in hcl
    )
    minted: dict[str, str] = {}
    for label, also in (("holding", [world.reports]), ("not holding", [])):
        world.token_for(hcl, *also)
        issuer = TokenIssuer(config, _runtime(), "app/ttl")
        try:
            credential = issuer.mint(new_rotation_id())
        except ProviderError as exc:
            minted[label] = f"refused: {exc}"
        else:
            minted[label] = credential.ref or ""
            world.backend.accessors.append(minted[label])
    assert not minted["holding"].startswith("refused")
    assert minted["not holding"].startswith("refused")
    assert "auth/token/create-orphan" in minted["not holding"]
