"""A starter policy (``rotator init``): one secret for the adapters named, commented, validated.

Each adapter gives the fields of its block (its ``example``) and where they
are explained (its ``docs``); every optional field it leaves out is listed
below its block as a comment, at its default. The document is built with
PyYAML, never by formatting strings, so a name cannot break it, and it is
loaded with the real loader before anyone sees it: an adapter's example
that does not validate on its own is a bug (:class:`BrokenStarter`), and
adapters that cannot go together are refused with the loader's problems
(:class:`~rotator.errors.PolicyError`).
"""

from __future__ import annotations

import shlex
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn

import yaml
from pydantic import ValidationError
from pydantic_core import PydanticUndefined

from rotator.adapters.discovery import Registry
from rotator.adapters.durations import format_duration
from rotator.adapters.roles import Adapter, Issuer
from rotator.errors import ConfigError, PolicyError
from rotator.output.escaping import printable
from rotator.output.spelling import did_you_mean
from rotator.policy.loader import load_policies
from rotator.policy.model import NAME_PATTERN, Policy

#: The secret's name when none is given.
DEFAULT_NAME = "app/credential"
#: How the header's commands name the policy file when it is printed, not written.
UNNAMED_FILE = "FILE"

#: Where every field of a policy is explained.
POLICY_DOCS = "docs/policies.md"

#: The policy fields a starter leaves at their defaults, listed as comments with what they do.
_OPTIONAL_POLICY_FIELDS = {
    "propagation_delay": "wait between writing the targets and verifying",
    "when_old_still_used": "extend | alert | revoke: an old credential used at grace end",
    "leaks": "alert | rotate | emergency: a leak of its identifier alone",
}

#: What each role's block is for, as a comment above it.
_ROLE_PURPOSE = {
    "store": "where the live credential is kept, versioned",
    "issuer": "mints the new credential",
    "target": "where consumers read it, written before the new one is current",
    "replica": "another store consumers read, written before the new one is current",
    "verifier": "a check the new credential passes before it is current",
    "notifier": "where alerts go",
}

#: Widest line PyYAML may write before folding a value (never, in practice).
_NO_FOLDING = 1000


class BrokenStarter(Exception):
    """The starter does not validate for a reason that is rotator's or an adapter's, not yours.

    An adapter's ``example`` refused by its own ``Config``, or a document
    that loads as something else than the one secret asked for.
    """


@dataclass(frozen=True)
class StarterRequest:
    """What ``rotator init`` was asked for: the adapters of one secret, and its name."""

    store: str
    issuer: str = "random"
    targets: tuple[str, ...] = ()
    verify: tuple[str, ...] = ()
    notifiers: tuple[str, ...] = ()
    name: str = DEFAULT_NAME
    #: The policy file, as the header's commands name it (``FILE`` when printed).
    file: str = UNNAMED_FILE


@dataclass(frozen=True)
class _Block:
    """One adapter block: the key naming the adapter, its name, its adapter class, its role."""

    key: str
    name: str
    adapter: type[Adapter[Any]]
    role: str

    def fields(self) -> dict[str, Any]:
        """Return the block as written: the adapter's name, then its example fields."""
        return {self.key: self.name, **_plain(dict(self.adapter.example))}


@dataclass(frozen=True)
class _Chosen:
    """The blocks of the starter, each adapter found in the registry."""

    store: _Block
    issuer: _Block
    #: The issuer's class, as an issuer (what it can tell, what it needs).
    minter: type[Issuer[Any]]
    targets: tuple[_Block, ...]
    verify: tuple[_Block, ...]
    notifiers: tuple[_Block, ...]

    def all(self) -> list[_Block]:
        """Return every block, in the order they are written."""
        return [*self.notifiers, self.store, self.issuer, *self.targets, *self.verify]


def starter_policy(request: StarterRequest, registry: Registry) -> str:
    """Return the starter policy's text, loaded and checked with the real loader first.

    Raises:
        ConfigError: an unknown (or unloadable) adapter, one asked for twice,
            or a name a policy cannot have; nothing was built.
        PolicyError: the adapters asked for cannot go together (or one lacks
            its SDK), with the loader's problems.
        BrokenStarter: an adapter's example does not validate on its own, or
            the document is not the one secret asked for.
    """
    _check_name(request.name)
    chosen = _choose(request, registry)
    for block in chosen.all():
        _check_example(block)
    text = _render(request, chosen)
    _check_loads(text, request, registry)
    return text


# ------------------------------------------------------------------ choosing


def _check_name(name: str) -> None:
    """Refuse a name no policy may have, as the loader words it (ConfigError)."""
    if not NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            f"--name {name!r}: use 1 to 128 lowercase letters, digits and . _ / -, "
            "starting with a letter or digit (such as payments/db-password)"
        )


def _choose(request: StarterRequest, registry: Registry) -> _Chosen:
    """Find every adapter asked for, in the order of the options; ConfigError at the first wrong."""
    store = _find("--store", request.store, registry, "stores", "provider", "store")
    issuer = _find("--issuer", request.issuer, registry, "issuers", "kind", "issuer")
    targets = []
    for name in _once(request.targets, "--target"):
        if name in registry.targets:
            targets.append(_Block("kind", name, registry.targets[name], "target"))
        elif name in registry.stores:
            targets.append(_Block("provider", name, registry.stores[name], "replica"))
        else:
            _unknown("--target", name, registry, [*registry.targets, *registry.stores], "target")
    return _Chosen(
        store=store,
        issuer=issuer,
        minter=registry.issuers[request.issuer],
        targets=tuple(targets),
        verify=tuple(
            _find("--verify", name, registry, "verifiers", "kind", "verifier")
            for name in _once(request.verify, "--verify")
        ),
        notifiers=tuple(
            _find("--notifier", name, registry, "notifiers", "kind", "notifier")
            for name in _once(request.notifiers, "--notifier")
        ),
    )


def _once(names: Sequence[str], option: str) -> Sequence[str]:
    """Return ``names``, refusing one given twice (a starter writes one block of each)."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ConfigError(
                f"{option} {name} is given twice: a starter has one block of each "
                "(copy the block in the file for a second one)"
            )
        seen.add(name)
    return names


def _find(option: str, name: str, registry: Registry, table: str, key: str, role: str) -> _Block:
    """Return the block of the adapter ``name`` in the registry's ``table``; ConfigError if none."""
    adapters: dict[str, type[Adapter[Any]]] = getattr(registry, table)
    adapter = adapters.get(name)
    if adapter is None:
        _unknown(option, name, registry, adapters, role)
    return _Block(key, name, adapter, role)


def _unknown(
    option: str, name: str, registry: Registry, known: Sequence[str] | Mapping[str, Any], role: str
) -> NoReturn:
    """Refuse an adapter name: why it was skipped, or the closest and every known one."""
    skipped = registry.skipped_as(role, name)
    if skipped is not None:
        raise ConfigError(f"{option} {name}: {skipped}")
    names = sorted(known)
    raise ConfigError(
        f"{option} {name}: no such {role}{did_you_mean(name, names)} "
        f"(known: {', '.join(names) or 'none installed'})"
    )


# ------------------------------------------------------------------ checking


def _check_example(block: _Block) -> None:
    """Refuse (BrokenStarter) an adapter whose example its own Config does not accept."""
    try:
        block.adapter.Config.model_validate(dict(block.adapter.example))
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'example'}: {error['msg']}"
            for error in exc.errors(include_url=False)
        )
        given = "its example" if block.adapter.example else "it gives no example, and"
        raise BrokenStarter(
            f"{block.role} {block.name} ({block.adapter.__module__}.{block.adapter.__name__}): "
            f"{given} does not validate: {reasons}"
        ) from None


def _check_loads(text: str, request: StarterRequest, registry: Registry) -> None:
    """Load ``text`` as a policy file; it must be the one secret asked for.

    The loader's problems name the file as the header does (``request.file``).
    """
    with tempfile.TemporaryDirectory(prefix="rotator-init-") as directory:
        path = Path(directory) / "starter.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            loaded = load_policies(path, registry)
        except PolicyError as exc:
            raise PolicyError(
                [replace(problem, file=request.file) for problem in exc.problems]
            ) from None
    names = [policy.name for policy in loaded]
    if names != [request.name]:
        raise BrokenStarter(f"the starter loads as {names!r}, not as the one secret asked for")


# ------------------------------------------------------------------ writing


def _render(request: StarterRequest, chosen: _Chosen) -> str:
    """Return the commented document: header, notifiers, then the secret."""
    lines = _header(request)
    if chosen.notifiers:
        lines += ["", "notifiers:"]
        for block in chosen.notifiers:
            lines += _about(block, 2)
            lines += _mapping({block.name: block.fields()}, 2, blocks=2)
            lines += _optional(block, 4)
    lines += ["", "secrets:"]
    lines += _secret(request, chosen)
    return "\n".join(lines) + "\n"


def _header(request: StarterRequest) -> list[str]:
    """Return the comment saying what the file is and what to run next."""
    # a comment ends at a line break: the file's name is shown with its controls escaped
    config = f"--config {printable(shlex.quote(request.file))}"
    commands = [
        (f"rotator validate {config}", "check every field (exit 0: valid)"),
        (f"rotator plan {config}", "when it is due, and why; changes nothing"),
        (f"rotator check {config} {request.name}", "prove every part works; changes nothing"),
        (f"rotator rotate {config} {request.name}", "rotate it now"),
    ]
    width = max(len(command) for command, _ in commands)
    return [
        "# A starter policy for one secret, written by `rotator init`.",
        "# Every value validates as written, but names things that are not yours",
        "# (ids, paths, users, URLs): change them, then run",
        *(f"#   {command.ljust(width)}  {why}" for command, why in commands),
        "# No credential belongs in this file: adapters read theirs from the",
        "# environment variables that their *_env fields name. Lines such as",
        "# `# field: value` are optional fields at their defaults. Every policy",
        f"# field: {POLICY_DOCS}",
    ]


def _secret(request: StarterRequest, chosen: _Chosen) -> list[str]:
    """Return the ``secrets:`` item: name and owner, each block, schedule, grace, alerts."""
    lines = [
        *_item(_mapping({"name": request.name}, 0), 2),
        *_mapping({"description": "What this credential is for, and who uses it"}, 4),
        "    # who answers for it: named in status and alerts (--owner selects by it)",
        *_mapping({"owner": "platform-team"}, 4),
        "    # --label env=prod selects by them (status, plan, check); a notifier's match: too",
        *_mapping({"labels": {"env": "prod"}}, 4),
    ]
    for block, field in ((chosen.store, "store"), (chosen.issuer, "issuer")):
        lines += ["", *_about(block, 4), f"    {field}:"]
        lines += _mapping(block.fields(), 6) + _optional(block, 6)
    lines += [
        "",
        "    # every 30 days, counted from the last successful rotation (or cron:",
        '    # "0 3 * * MON", with timezone, window and jitter: see docs/policies.md)',
        *_mapping({"schedule": {"every": "30d"}}, 4),
        "    # how long the old credential keeps working once the new one is current",
        *_mapping({"grace": "1h"}, 4),
    ]
    for field, blocks in (("targets", chosen.targets), ("verify", chosen.verify)):
        if blocks:
            lines += ["", f"    {field}:"]
            for block in blocks:
                lines += _about(block, 6)
                lines += _item(_mapping(block.fields(), 0), 6) + _optional(block, 8)
    lines.append("")
    if chosen.notifiers:
        lines += [
            "    # the notifiers (declared above) told of this secret's alerts",
            *_mapping({"alerts": [block.name for block in chosen.notifiers]}, 4),
        ]
    elif chosen.minter.reminder_only:
        lines.append("    # its owner is reminded when it is due through notifiers: see --notifier")
    lines += _policy_defaults(chosen)
    return lines


def _policy_defaults(chosen: _Chosen) -> list[str]:
    """Return the optional policy fields left at their defaults, as comments saying what they do."""
    fields = [
        (field, what)
        for field, what in _OPTIONAL_POLICY_FIELDS.items()
        # only an issuer that reports last use can tell whether the old credential is used
        if field != "when_old_still_used" or chosen.minter.reports_last_use
    ]
    written = [
        _mapping({field: _plain(Policy.model_fields[field].get_default())}, 0)[0]
        for field, _ in fields
    ]
    width = max(len(line) for line in written)
    return [
        "    # optional, at their defaults:",
        *(
            f"    # {line.ljust(width)}  # {what}"
            for line, (_, what) in zip(written, fields, strict=True)
        ),
    ]


def _about(block: _Block, indent: int) -> list[str]:
    """Return the comment above a block: the adapter, what the block is for, its docs."""
    pad = " " * indent
    # a third-party adapter's name and docs would end the comment at a line break: escaped
    lines = [f"{pad}# {printable(block.role)} {printable(block.name)}: {_ROLE_PURPOSE[block.role]}"]
    if block.adapter.docs:
        lines.append(f"{pad}# its fields: {printable(block.adapter.docs)}")
    return lines


def _optional(block: _Block, indent: int) -> list[str]:
    """Return the adapter's optional fields the example leaves out, commented, at their defaults."""
    lines = []
    for field, info in block.adapter.Config.model_fields.items():
        if field in block.adapter.example or info.is_required():
            continue
        default = info.get_default(call_default_factory=True)
        if default is PydanticUndefined:
            continue
        try:
            shown = _mapping({field: _plain(default)}, 0)
        except yaml.YAMLError:
            continue  # a default only Python can spell (a third-party adapter's) is left out
        lines += [f"{' ' * indent}# {line}" for line in shown]
    return lines


def _mapping(data: Mapping[str, Any], indent: int, *, blocks: int = 1) -> list[str]:
    """Return ``data`` as YAML lines, indented: ``blocks`` levels as blocks, leaves on one line.

    PyYAML writes every value, so a quote, a colon or a newline in one
    cannot end it early.
    """
    representer = yaml.representer.SafeRepresenter(default_flow_style=False, sort_keys=False)
    node = representer.represent_data(data)
    _flow_leaves(node, blocks)
    text = yaml.serialize(node, Dumper=yaml.SafeDumper, width=_NO_FOLDING)
    return [f"{' ' * indent}{line}" for line in text.splitlines()]


def _flow_leaves(node: yaml.Node, blocks: int) -> None:
    """Write on one line each collection of scalars below the first ``blocks`` levels."""
    if isinstance(node, yaml.MappingNode):
        children = [value for _, value in node.value]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    else:
        return
    if blocks <= 0 and all(isinstance(child, yaml.ScalarNode) for child in children):
        node.flow_style = True
    for child in children:
        _flow_leaves(child, blocks - 1)


def _item(lines: list[str], indent: int) -> list[str]:
    """Return a mapping's lines as one item of a list, at ``indent``."""
    pad = " " * indent
    return [f"{pad}{'- ' if i == 0 else '  '}{line}" for i, line in enumerate(lines)]


def _plain(value: Any) -> Any:
    """Return ``value`` as plain YAML data: durations as policies write them, tuples as lists."""
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "model_dump"):
        return _plain(value.model_dump())
    return value
