"""Kill rotations of database passwords at each fault point; the next run must converge.

Invariants 1, 3 and 6 of docs/design.md for the ``postgresql-password`` and
``mysql-password`` issuers, as tests/e2e/test_crash_safety.py proves them
for an IAM key: the CLI runs as a subprocess through the test harness
(``tests/harness.py``) against moto_server's Secrets Manager and a real
server, every run's clock pinned: the PostgreSQL of
``ROTATOR_TEST_POSTGRES_URL``, and the session's throwaway MariaDB. The
matrix speaks to either through :class:`tests.databases.rotation.ServerAccounts`.
An armed fault point ends the process there with ``os._exit``, as SIGKILL would.

One secret goes through a rotation per fault point: killed at the point,
then run again unarmed, which must end the rotation promoted. The next
rotation starts past the grace deadline, so its run first revokes the old
credential; a point of that revoke or of the delete after it is armed on a
run of its own, resumed by the next rotation's run. After every run:

- the store has exactly one current version, and the consumer's current
  credential (``AWSCURRENT``) logs in; with a single user, the one window
  where it cannot is the strategy's own (the server has the new password,
  the store has it pending, and a run has yet to promote it);
- the live user's password on the server is one a store version holds;
- the server holds the original user, and its clone once a run has made it, no other;
- with two users, the previous credential logs in until its grace deadline;
  with either strategy, not after it.

Then rotations fail verification, killed at either end of their rollback:
the old credential stays current and working, no pending version is left.

``propagate:target1`` (after the issuer's own target, the password change,
before the journal records it) is not in ``faults.POINTS``; it is armed too,
on the first rotation of two users, the one that creates the clone. A run
takes about a second, so single-user is killed only at the points where its
server can hold a password the store does not hold as current (its mint and
its revoke touch no server); alternating-users at every point. Each engine
runs that same matrix, about a minute of CLI runs (alternating-users 45 s,
single-user 15 s).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rotator.engine.faults import POINTS
from tests.databases.mysql_users import Users
from tests.databases.postgres import Roles, admin_url
from tests.databases.rotation import GRACE, ServerAccounts, policy
from tests.e2e.conftest import Completed, Rotator, client

KILLED = 137
#: Inside the password change: the server has it, the journal does not know yet.
PASSWORD_SET = "propagate:target1"
#: The points of a rotation up to its promotion, in the order a run meets them.
UP_TO_PROMOTE = (
    "before:mint",
    "mint:issued",
    "after:mint",
    "before:store",
    "store:written",
    "after:store",
    "before:propagate",
    PASSWORD_SET,
    "after:propagate",
    "before:verify",
    "after:verify",
    "before:promote",
    "promote:moved",
    "after:promote",
)
#: The points of the revoke at the grace deadline, and of the delete after it.
AT_DEADLINE = ("before:revoke", "revoke:revoked", "after:revoke", "before:delete", "after:delete")
ROLLBACK = ("before:rollback", "after:rollback")
#: Where a single user's server may hold a password the store does not hold as current
#: (after:propagate stands for before:verify, after:verify and before:promote: a run
#: killed at any of them leaves the same journal, store and server).
SINGLE_USER_POINTS = (
    "store:written",
    "before:propagate",
    PASSWORD_SET,
    "after:propagate",
    "promote:moved",
)
#: The first rotation creates the clone: killed right after it is made, then every point.
ALTERNATING_POINTS = (PASSWORD_SET, *(p for p in UP_TO_PROMOTE if p != PASSWORD_SET))
#: The stages a Secrets Manager version may carry (a consumer reads AWSCURRENT).
STAGES = ("AWSCURRENT", "AWSPENDING", "AWSPREVIOUS")


def test_the_points_named_here_are_the_engines() -> None:
    """A fault point added to the engine is added here too (or this fails)."""
    assert {*UP_TO_PROMOTE, *AT_DEADLINE, *ROLLBACK} == {*POINTS, PASSWORD_SET}


@dataclass
class Scene:
    """One secret rotated by the CLI, and what the test has seen of it."""

    cli: Rotator
    accounts: ServerAccounts
    strategy: str
    now: datetime
    #: Each credential made current, in order (the seeded one first).
    current: list[dict[str, Any]] = field(default_factory=list)

    @property
    def alternating(self) -> bool:
        return self.strategy == "alternating-users"

    @property
    def users(self) -> set[str]:
        """Return the users the server holds once the first rotation is promoted."""
        return (
            {self.accounts.user, self.accounts.clone} if self.alternating else {self.accounts.user}
        )

    def run(self, *args: str, fault: str | None = None) -> Completed:
        """Run the CLI at the scene's instant, with ``fault`` armed."""
        return self.cli(*args, now=self.now, fault=fault)

    def staged(self) -> dict[str, dict[str, Any]]:
        """Return the value of each stage the store's versions carry now."""
        sm = client("secretsmanager")
        found: dict[str, dict[str, Any]] = {}
        stages = sm.describe_secret(SecretId="app/db")["VersionIdsToStages"]
        assert sum("AWSCURRENT" in s for s in stages.values()) == 1, stages
        for version, names in stages.items():
            text = sm.get_secret_value(SecretId="app/db", VersionId=version)["SecretString"]
            found |= {name: json.loads(text) for name in names if name in STAGES}
        return found

    def works(self, value: dict[str, Any]) -> bool:
        """Tell whether ``value`` logs in on a new connection."""
        return self.accounts.logs_in(value["username"], value["password"])

    def observe(self, when: str, *, killed: bool = False) -> dict[str, Any]:
        """Check what must hold after a run (``killed``: one ended at a fault point).

        Returns the current value.
        """
        staged = self.staged()
        current = staged["AWSCURRENT"]
        live = current["username"]
        working = [s for s, v in staged.items() if v["username"] == live and self.works(v)]
        assert working, f"{when}: {live}'s password on the server is in no store version"
        # One user, killed between its password change and the promotion: the server holds
        # the pending password (the strategy's own window, closed by the next run). Two
        # users: the consumers' user is never the one a rotation changes.
        window = killed and not self.alternating and working == ["AWSPENDING"]
        if not window:
            assert working == ["AWSCURRENT"], f"{when}: the current credential does not log in"
        existing = self.accounts.existing()
        assert self.accounts.user in existing <= self.users, f"{when}: the server holds {existing}"
        return current

    def promoted(self, when: str) -> None:
        """Check that a rotation ended promoted; the previous credential is in its grace."""
        current = self.observe(when)
        assert current != self.current[-1], f"{when}: the rotation did not converge"
        existing = self.accounts.existing()
        assert existing == self.users, f"{when}: the server holds {existing}"
        if self.alternating:
            assert self.works(self.current[-1]), f"{when}: revoked before its grace ended"
        self.current.append(current)

    def revoked_at_deadline(self, when: str) -> None:
        """Check that the credential before the current one no longer logs in."""
        if len(self.current) >= 2:
            assert not self.works(self.current[-2]), f"{when}: not revoked after its grace"


@dataclass(frozen=True)
class Server:
    """A real database server: the issuer that rotates its users, and fresh users on it."""

    kind: str
    accounts: ServerAccounts


@pytest.fixture(
    params=[
        pytest.param("postgresql-password", marks=pytest.mark.postgres, id="postgresql"),
        pytest.param("mysql-password", id="mariadb"),
    ]
)
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """Fresh users on each server, the issuer's admin able to create and alter them.

    On the test PostgreSQL, its test role (CREATEROLE) is the admin; on the
    session's MariaDB, its ``admin`` (every privilege). Either is given to the
    CLI in the RDS shape (:meth:`ServerAccounts.admin_value`).
    """
    kind: str = request.param
    if kind == "postgresql-password":
        accounts: Roles | Users = Roles(admin_url())
    else:
        accounts = Users(request.getfixturevalue("mariadb"))
    with accounts:
        yield Server(kind, accounts)


def _scene(cli: Rotator, server: Server, strategy: str) -> Scene:
    """Seed the user, its secret and the policy; return the scene at the real now."""
    accounts = server.accounts
    old = accounts.create(accounts.user)
    client("secretsmanager").create_secret(
        Name="app/db", SecretString=json.dumps(accounts.value(accounts.user, old))
    )
    cli.env["APP_DB_ADMIN"] = json.dumps(accounts.admin_value())
    cli.config.write_text(policy(server.kind, accounts, strategy))
    scene = Scene(cli, accounts, strategy, datetime.now(UTC).replace(microsecond=0))
    scene.current.append(scene.observe("seeded"))
    return scene


def _verified_before_promoted(cli: Rotator) -> None:
    """Check that every rotation's journal records verify before promote."""
    with sqlite3.connect(cli.workdir / "rotator.db") as db:
        rows = list(
            db.execute("SELECT rotation_id, step FROM events WHERE outcome = 'ok' ORDER BY id")
        )
    steps: dict[str, list[str]] = {}
    for rotation, step in rows:
        steps.setdefault(rotation, []).append(step)
    for rotation, done in steps.items():
        if "promote" in done:
            assert done.index("verify") < done.index("promote"), f"{rotation} promoted unverified"


def _rotation_states(cli: Rotator) -> list[str]:
    """Return the state of each rotation the journal holds, sorted."""
    with sqlite3.connect(cli.workdir / "rotator.db") as db:
        return sorted(state for (state,) in db.execute("SELECT state FROM rotations"))


def _killed_then_resumed(scene: Scene, point: str) -> None:
    """A rotation killed at ``point`` (the last grace over: its run revokes first), then run."""
    killed = scene.run("rotate", "app/db", fault=point)
    assert killed.code == KILLED, (point, killed.stderr[-2000:])
    scene.observe(f"killed at {point}", killed=True)
    scene.revoked_at_deadline(f"killed at {point}")
    resumed = scene.run("run", "--once")
    assert resumed.code == 0, (point, resumed.stderr[-2000:])
    scene.promoted(f"resumed after {point}")


def _rolled_back_across(scene: Scene, point: str) -> Completed:
    """A rotation failing verification, killed at ``point`` of its rollback, then run."""
    old = scene.current[-1]
    killed = scene.run("rotate", "app/db", fault=f"fail:verify,{point}")
    assert killed.code == KILLED, (point, killed.stderr[-2000:])
    scene.observe(f"killed at {point}", killed=True)
    resumed = scene.run("run", "--once")
    assert scene.observe(f"resumed after {point}") == old, "an unverified password went live"
    assert "AWSPENDING" not in scene.staged(), f"{point}: the pending version was left behind"
    return resumed


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("strategy", "points", "at_deadline", "rollback"),
    [
        ("alternating-users", ALTERNATING_POINTS, AT_DEADLINE, ROLLBACK),
        # Its rollback puts the old password back: killed before it. (Killed after it,
        # the journal has recorded the end: the next run has nothing left to do.)
        ("single-user", SINGLE_USER_POINTS, (), ("before:rollback",)),
    ],
    ids=["alternating-users", "single-user"],
)
def test_a_rotation_killed_at_each_point_is_finished_by_the_next_run(
    rotator_cli: Rotator,
    server: Server,
    strategy: str,
    points: tuple[str, ...],
    at_deadline: tuple[str, ...],
    rollback: tuple[str, ...],
) -> None:
    """Killed at every point in turn: each next run converges; old users revoked on time.

    Then two rotations fail verification and are killed at either end of
    their rollback: the old credential stays current and working.
    """
    scene = _scene(rotator_cli, server, strategy)
    for number, point in enumerate(points):
        _killed_then_resumed(scene, point)
        scene.now += GRACE + timedelta(seconds=1)
        if number < len(at_deadline):
            late = at_deadline[number]
            killed = scene.run("run", "--once", fault=late)  # resumed by the next rotation
            assert killed.code == KILLED, (late, killed.stderr[-2000:])
            scene.observe(f"killed at {late}", killed=True)

    for point in rollback:
        resumed = _rolled_back_across(scene, point)
        # Resumed before its rollback, a rotation ends rolled back: that run fails.
        assert resumed.code == (1 if point == "before:rollback" else 0), resumed.stderr[-2000:]
        scene.revoked_at_deadline(f"rolled back across {point}")
    assert _rotation_states(rotator_cli) == sorted(
        ["done"] * len(points) + ["rolled_back"] * len(rollback)
    )
    _verified_before_promoted(rotator_cli)
