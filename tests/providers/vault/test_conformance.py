"""The emulator against a real server: one script of requests, every difference accounted for.

The script is :mod:`tests.providers.vault.conformance`. A difference between
the emulator's answers and OpenBao's fails the test unless docs/providers/vault.md
lists it, with a reason, under "The emulator against OpenBao: known
divergences"; a listed divergence that no longer occurs fails it too.

Always against OpenBao, even when VAULT_ADDR names a Vault: the list documents OpenBao's answers.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from rotator.sandbox.vault import VaultEmulator
from rotator.sandbox.vault.openbao import OpenBaoServer
from tests.providers.vault import conformance
from tests.providers.vault.conformance import SCRIPT, Difference, Observation

DOCS = Path(__file__).resolve().parents[3] / "docs" / "providers" / "vault.md"
HEADING = "## The emulator against OpenBao: known divergences"
ASPECTS = ("status", "content type", "errors", "data.error", "warnings")


@dataclass(frozen=True)
class Divergence:
    """One row of the documented divergence list."""

    #: Request id patterns (``*`` matches any text).
    requests: tuple[str, ...]
    #: ``status``, ``content type``, ``errors``, ``data.error``, ``warnings`` or ``key``.
    aspect: str
    #: Key path patterns (``key`` rows only).
    keys: tuple[str, ...]
    emulator: str
    server: str
    changes_adapters: bool
    reason: str

    def explains(self, difference: Difference) -> bool:
        """Whether this row accounts for one observed difference."""
        return (
            any(fnmatch.fnmatchcase(difference.step, pattern) for pattern in self.requests)
            and self.aspect == difference.aspect
            and (
                self.aspect != "key"
                or any(fnmatch.fnmatchcase(difference.key, pattern) for pattern in self.keys)
            )
            and self.emulator == difference.emulator
            and self.server == difference.server
        )


def _ticked(cell: str) -> tuple[str, ...]:
    return tuple(re.findall(r"`([^`]+)`", cell))


def _value(cell: str) -> str:
    cell = cell.strip()
    return cell[1:-1] if len(cell) > 1 and cell[0] == cell[-1] == "`" else cell


def parse_divergences(text: str) -> list[Divergence]:
    """Read the divergence table that follows :data:`HEADING` in the docs."""
    lines = text.splitlines()
    start = lines.index(HEADING)
    rows: list[list[str]] = []
    for line in lines[start + 1 :]:
        if line.startswith("## "):
            break
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    divergences = []
    for cells in rows[2:]:  # the header row and the |---| row
        assert len(cells) == 6, f"a divergence row needs 6 cells: {cells}"
        requests, what, emulator, server, changes, reason = cells
        aspect = "key" if what.startswith("key") else what
        assert aspect in (*ASPECTS, "key"), f"unknown aspect {what!r}"
        assert changes in {"yes", "no"}, f"'changes what the adapters do' is yes or no: {cells}"
        divergences.append(
            Divergence(
                requests=_ticked(requests),
                aspect=aspect,
                keys=_ticked(what) if aspect == "key" else (),
                emulator=_value(emulator),
                server=_value(server),
                changes_adapters=changes == "yes",
                reason=reason,
            )
        )
    return divergences


def documented() -> list[Divergence]:
    """The divergences docs/providers/vault.md lists."""
    return parse_divergences(DOCS.read_text())


def test_the_emulator_answers_the_script_as_openbao_does(openbao: OpenBaoServer) -> None:
    """Every difference from OpenBao is a documented divergence, and every one still occurs."""
    names = conformance.names()
    with VaultEmulator() as emulator:
        ours = conformance.run(emulator.url, emulator.root_token, names)
    theirs = conformance.run(openbao.url, openbao.root_token, names)
    found = conformance.differences(ours, theirs)
    listed = documented()
    unexplained = [str(d) for d in found if not any(row.explains(d) for row in listed)]
    stale = [row for row in listed if not any(row.explains(d) for d in found)]
    assert not unexplained and not stale, (
        "the emulator answers differently from OpenBao (fix the emulator, or list the "
        f"divergence with its reason in {DOCS.name}):\n"
        + "\n".join(unexplained)
        + f"\nlisted in {DOCS.name} but no longer seen:\n"
        + "\n".join(map(str, stale))
    )


def test_every_divergence_names_requests_of_the_script_and_a_reason() -> None:
    """A row whose pattern matches no request id (a typo, a renamed step) is caught offline."""
    ids = [step.id for step in SCRIPT]
    rows = documented()
    assert rows
    for row in rows:
        assert row.requests, row
        assert row.reason.strip(), row
        for pattern in row.requests:
            assert fnmatch.filter(ids, pattern), f"{pattern!r} matches no request of the script"
        if row.aspect == "key":
            assert row.keys and {row.emulator, row.server} == {"present", "absent"}, row


def test_step_ids_are_unique() -> None:
    """Divergences are listed by step id, so two steps may not share one."""
    ids = [step.id for step in SCRIPT]
    assert len(ids) == len(set(ids))


def _same_everywhere(observation: Observation) -> dict[str, Observation]:
    return {step.id: observation for step in SCRIPT}


def test_differences_report_status_content_type_errors_and_keys() -> None:
    """The comparison sees each aspect, per step, and the rows explain only what they name."""
    base = Observation(200, "application/json", None, frozenset({"data", "data.keys"}))
    ours = _same_everywhere(base)
    theirs = _same_everywhere(base)
    assert conformance.differences(ours, theirs) == []
    theirs["kv.read.missing"] = Observation(
        404, None, ("namespace not found",), frozenset({"errors"})
    )
    found = conformance.differences(ours, theirs)
    assert [str(d) for d in found] == [
        "kv.read.missing: status: emulator 200, OpenBao 404",
        "kv.read.missing: content type: emulator application/json, OpenBao none",
        'kv.read.missing: errors: emulator none, OpenBao ["namespace not found"]',
        "kv.read.missing: key data: emulator present, OpenBao absent",
        "kv.read.missing: key data.keys: emulator present, OpenBao absent",
        "kv.read.missing: key errors: emulator absent, OpenBao present",
    ]
    row = Divergence(("kv.read.*",), "key", ("data*",), "present", "absent", False, "r")
    assert [d.key for d in found if row.explains(d)] == ["data", "data.keys"]
    other_step = Divergence(("kv.write.*",), "status", (), "200", "404", False, "r")
    assert not any(other_step.explains(d) for d in found)


def test_differences_report_the_texts_the_adapters_match_on() -> None:
    """``data.error`` (split as the adapters split it) and ``warnings`` are compared too."""
    keys = frozenset({"data", "data.error", "warnings"})
    base = Observation(404, "application/json", None, keys, ("no such accessor",), ("w",))
    ours = _same_everywhere(base)
    theirs = _same_everywhere(base)
    theirs["approle.secret-id-accessor.lookup.missing"] = Observation(
        404, "application/json", None, keys, ("another text",), None
    )
    theirs["token.revoke-accessor.missing"] = Observation(
        404, "application/json", None, keys, ("no such accessor",), ("w", "v")
    )
    assert [str(d) for d in conformance.differences(ours, theirs)] == [
        'token.revoke-accessor.missing: warnings: emulator ["w"], OpenBao ["w", "v"]',
        "approle.secret-id-accessor.lookup.missing: data.error: "
        'emulator ["no such accessor"], OpenBao ["another text"]',
        'approle.secret-id-accessor.lookup.missing: warnings: emulator ["w"], OpenBao none',
    ]


def test_an_observation_holds_data_error_split_and_the_warnings() -> None:
    """``data.error`` is split as the adapters split it; no warnings (``null``) is none."""
    body = {
        "data": {"error": '2 errors occurred:\n\t* first "abcdefgh"\n\t* second\n\n'},
        "warnings": ["look out"],
    }
    seen = conformance.observation(404, "application/json", body, {"sid": "abcdefgh"})
    assert seen.error == ('first "${sid}"', "second")
    assert seen.warnings == ("look out",)
    assert seen.errors is None
    seen = conformance.observation(404, None, {"data": {"error": 7}, "warnings": None}, {})
    assert (seen.error, seen.warnings) == (None, None)


def test_the_parser_reads_a_table_and_refuses_a_bad_row() -> None:
    """The docs table is read cell by cell; an answer other than yes/no is refused."""
    table = (
        f"{HEADING}\n\nText.\n\n"
        "| requests | what differs | emulator | OpenBao | changes | why |\n"
        "|---|---|---|---|---|---|\n"
        "| `a.b`, `c.*` | keys `x`, `*y` | present | absent | yes | because |\n"
        "| `d` | status | `204` | `200` | no | other |\n"
        '| `e` | warnings | none | `["w"]` | no | third |\n'
        "\n## Next\n| `z` | status | `1` | `2` | no | not read |\n"
    )
    assert parse_divergences(table) == [
        Divergence(("a.b", "c.*"), "key", ("x", "*y"), "present", "absent", True, "because"),
        Divergence(("d",), "status", (), "204", "200", False, "other"),
        Divergence(("e",), "warnings", (), "none", '["w"]', False, "third"),
    ]
    with pytest.raises(AssertionError, match="yes or no"):
        parse_divergences(table.replace("| yes |", "| maybe |"))
