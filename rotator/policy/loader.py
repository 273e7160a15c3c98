"""Read policy files and turn them into validated policies, or into located problems.

:func:`load_policies` reads one YAML file or every ``*.yaml``/``*.yml`` file of
a directory and returns the policies, or raises :class:`PolicyError` with every
problem of every file at once, each as ``FILE:LINE:COL: field.path: reason``.

The YAML is screened before anything is built from it: oversized files,
anchors and aliases (an alias bomb is never expanded), custom tags, several
documents and duplicate keys are refused. Values are kept with the line and
column they were written at, so that a pydantic error can be reported where
the offending key or value is, including inside the file's ``defaults:``.

Each file is first read the quick way: libyaml's events are turned straight
into plain dicts and lists (no YAML nodes, no positions but the few a valid
file needs), secrets are merged with the file's defaults and validated, and
identical ``schedule:`` and ``issuer:`` blocks are validated once and shared
(policies are immutable). Only a file where that meets anything unusual
(anything the screen refuses, a duplicate key, a tag, an invalid secret) is
read again the located way described above, which reports every problem;
a file is never half-loaded one way and half the other.

Nothing here calls a provider: only the adapters' ``Config`` models are used.
"""

from __future__ import annotations

import contextlib
import difflib
import gc
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from rotator.adapters import discovery
from rotator.adapters.discovery import Registry
from rotator.errors import ConfigError, PolicyError, Problem
from rotator.policy.model import (
    NOTIFIER_NAME_PATTERN,
    IssuerSpec,
    LeakPolicy,
    NotifierSpec,
    Policy,
)
from rotator.policy.schedule import Schedule

MAX_FILE_BYTES = 1024 * 1024
"""Policy files larger than this are refused without being parsed."""

MAX_DEPTH = 32
"""Mappings and lists nested deeper than this are refused (a policy needs four or five)."""

POLICY_SUFFIXES = (".yaml", ".yml")

_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CORE_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")
)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_TOP_LEVEL = ("notifiers", "defaults", "secrets")
#: Policy fields the loader fills in; a policy file may not set them.
_INTERNAL_FIELDS = frozenset({"source_file", "source_line"})
_SECRET_FIELDS = tuple(name for name in Policy.model_fields if name not in _INTERNAL_FIELDS)
_DEFAULTABLE_FIELDS = tuple(name for name in _SECRET_FIELDS if name != "name")
_DEFAULTABLE = frozenset(_DEFAULTABLE_FIELDS)
_SCHEDULE_FIELDS = tuple(Schedule.model_fields)
#: The key naming the adapter in each adapter block, and its default.
_ADAPTER_KEYS: dict[str, tuple[str, str | None]] = {
    "store": ("provider", None),
    "issuer": ("kind", "random"),
}


@dataclass(frozen=True, slots=True)
class _Node:
    """A YAML value with the place it was written at (lines and columns 1-based)."""

    value: Any
    """A scalar, ``dict[str, _Node]`` or ``list[_Node]``."""
    line: int
    column: int
    key_line: int
    """Where the key naming this value starts (the value itself for list items)."""
    key_column: int
    origin: str | None = None
    """The value's path under ``defaults:`` if it came from there."""

    @property
    def is_scalar(self) -> bool:
        """Tell whether the value is a scalar rather than a mapping or a list."""
        return not isinstance(self.value, dict | list)

    def plain(self) -> Any:
        """Return the value as plain dicts, lists and scalars."""
        if isinstance(self.value, dict):
            return {key: child.plain() for key, child in self.value.items()}
        if isinstance(self.value, list):
            return [child.plain() for child in self.value]
        return self.value


def _path_text(parts: Iterable[str | int]) -> str:
    """Join a location as ``secrets[0].store.secret_id``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _unknown_field(key: str, known: Iterable[str]) -> str:
    """Say that ``key`` is unknown, suggesting the closest known field if any is close."""
    close = difflib.get_close_matches(key, list(known), n=1)
    return f"unknown field '{key}'" + (f"; did you mean '{close[0]}'?" if close else "")


def _kind_of(value: Any) -> str:
    """Name a YAML value's type the way a policy author thinks of it."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__} ({value})"


# ----------------------------------------------------------------- reading YAML


class _FileReader:
    """Turns one file's text into a located node tree, collecting its problems."""

    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.problems: list[Problem] = []
        self.unreadable = False
        self._constructor = yaml.constructor.SafeConstructor()

    def problem(self, line: int, column: int, path: str, reason: str) -> None:
        """Record a problem at a line and column of this file."""
        self.problems.append(Problem(self.shown, line, column, path, reason))

    def read(self, path: Path) -> _Node | None:
        """Read, screen and compose the file; None if it cannot be used at all."""
        text = self._text(path)
        if text is None or not self._screen(text):
            return None
        try:
            root = yaml.compose(text, Loader=_YAML_LOADER)
        except yaml.YAMLError as exc:
            self._yaml_problem(exc)
            return None
        if root is None:
            self.problem(1, 1, "", "the file is empty; expected a mapping with 'secrets'")
            return None
        tree = self._build(root, None, "")
        # a value that cannot be read would only cause follow-on errors
        return None if self.unreadable else tree

    def _text(self, path: Path) -> str | None:
        """Return the file's text, or None if it is too large, unreadable or not UTF-8."""
        try:
            with path.open("rb") as stream:
                data = stream.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            self.problem(1, 1, "", f"cannot read the file: {exc.strerror or exc}")
            return None
        if len(data) > MAX_FILE_BYTES:
            self.problem(
                1, 1, "", f"the file is larger than {MAX_FILE_BYTES} bytes (1 MiB); refused unread"
            )
            return None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
            bad = data[exc.start]
            self.problem(line, column, "", f"the file is not UTF-8 (byte 0x{bad:02x})")
            return None
        return text.removeprefix("\ufeff")

    def _yaml_problem(self, exc: yaml.YAMLError) -> None:
        """Record a PyYAML error at the place it points to."""
        if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
            mark = exc.problem_mark
            reason = exc.problem or "malformed YAML"
            if exc.context:
                reason = f"{exc.context}: {reason}"
            self.problem(mark.line + 1, mark.column + 1, "", f"invalid YAML: {reason}")
        else:
            self.problem(1, 1, "", f"invalid YAML: {exc}")

    def _screen(self, text: str) -> bool:
        """Refuse what must never be built: anchors, aliases, custom tags, several documents.

        Runs on the event stream, before any node exists, so an alias bomb is
        refused at its first anchor without being expanded.
        """
        documents = depth = 0
        try:
            for event in yaml.parse(text, Loader=_YAML_LOADER):
                mark = event.start_mark
                line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
                if isinstance(event, yaml.CollectionStartEvent):
                    depth += 1
                    if depth > MAX_DEPTH:
                        self.problem(
                            line, column, "", f"nested deeper than {MAX_DEPTH} levels; refused"
                        )
                        return False
                elif isinstance(event, yaml.CollectionEndEvent):
                    depth -= 1
                anchor = getattr(event, "anchor", None)
                if anchor is not None:
                    sigil = "*" if isinstance(event, yaml.AliasEvent) else "&"
                    self.problem(
                        line,
                        column,
                        "",
                        f"YAML anchors and aliases are not allowed (found {sigil}{anchor})",
                    )
                    return False
                tag = getattr(event, "tag", None)
                if tag is not None and tag != "!" and tag not in _CORE_TAGS:
                    self.problem(line, column, "", f"YAML tag {tag!r} is not allowed")
                    return False
                if isinstance(event, yaml.DocumentStartEvent):
                    documents += 1
                    if documents > 1:
                        self.problem(
                            line,
                            column,
                            "",
                            "a policy file holds one YAML document; found a second one",
                        )
                        return False
        except yaml.YAMLError as exc:
            self._yaml_problem(exc)
            return False
        return True

    def _build(self, node: yaml.Node, key: tuple[int, int] | None, path: str) -> _Node:
        """Turn a composed YAML node into a located node; ``key`` is where its key is."""
        line, column = node.start_mark.line + 1, node.start_mark.column + 1
        key_line, key_column = key or (line, column)
        if isinstance(node, yaml.MappingNode):
            value: Any = self._mapping(node, path)
        elif isinstance(node, yaml.SequenceNode):
            value = [self._build(item, None, f"{path}[{i}]") for i, item in enumerate(node.value)]
        else:
            try:
                value = self._constructor.construct_object(node)
            except yaml.YAMLError as exc:
                self._yaml_problem(exc)
                self.unreadable = True
                value = None
            except (ValueError, TypeError):  # an explicit tag on a value it cannot read
                tag = node.tag.rpartition(":")[2]
                self.problem(
                    line, column, path, f"invalid YAML: cannot read {node.value!r} as !!{tag}"
                )
                self.unreadable = True
                value = None
        return _Node(value, line, column, key_line, key_column)

    def _mapping(self, node: yaml.MappingNode, path: str) -> dict[str, _Node]:
        """Build a mapping's entries, refusing merge keys, non-scalar and duplicate keys."""
        items: dict[str, _Node] = {}
        for key_node, value_node in node.value:
            line, column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(line, column, path, "keys must be plain words, not lists or mappings")
                continue
            if key_node.tag == _MERGE_TAG:
                self.problem(line, column, path, "YAML merge keys ('<<') are not allowed")
                continue
            # keys are field names: the text as written (so 'on:' stays 'on', not True)
            key = key_node.value
            child_path = _path_text([path, key]) if path else key
            if key in items:
                first = items[key].key_line
                self.problem(
                    line, column, child_path, f"duplicate key '{key}' (first at line {first})"
                )
                continue
            items[key] = self._build(value_node, (line, column), child_path)
        return items


# ------------------------------------------------------------ defaults and merging


def _from_defaults(node: _Node, path: str) -> _Node:
    """Mark a node (and everything under it) as coming from ``path`` in ``defaults:``."""
    if isinstance(node.value, dict):
        value: Any = {k: _from_defaults(v, f"{path}.{k}") for k, v in node.value.items()}
    elif isinstance(node.value, list):
        value = [_from_defaults(v, f"{path}[{i}]") for i, v in enumerate(node.value)]
    else:
        value = node.value
    return replace(node, value=value, origin=path)


def _deep_merge(base: _Node, own: _Node) -> _Node:
    """Merge ``own`` over ``base``: mappings key by key, anything else replaced."""
    if not isinstance(base.value, dict) or not isinstance(own.value, dict):
        return own
    merged = dict(base.value)
    for key, node in own.value.items():
        merged[key] = _deep_merge(merged[key], node) if key in merged else node
    return replace(own, value=merged)


def _adapter_name(block: _Node, key: str, default: str | None) -> Any:
    """Return the adapter a ``store:``/``issuer:`` block names (``default`` if none)."""
    if not isinstance(block.value, dict):
        return None
    named = block.value.get(key)
    return default if named is None else named.value


def _merge_field(field: str, base: _Node, own: _Node) -> _Node:
    """Merge one top-level field of a secret over the same field in ``defaults:``."""
    if field in _ADAPTER_KEYS:
        key, default = _ADAPTER_KEYS[field]
        named = _adapter_name(own, key, None)
        if named is not None and named != _adapter_name(base, key, default):
            # another adapter's fields would only be refused as unknown
            return own
    choice = {"every", "cron"}
    if (
        field == "schedule"
        and isinstance(base.value, dict)
        and isinstance(own.value, dict)
        and own.value.keys() & choice
    ):
        # every and cron are one choice: the secret's choice replaces the default's
        kept = {k: v for k, v in base.value.items() if k not in choice}
        base = replace(base, value=kept)
    return _deep_merge(base, own)


def _merge_secret(defaults: dict[str, _Node], secret: _Node) -> _Node:
    """Return the secret with the file's defaults merged under it."""
    merged = dict(defaults)
    for field, node in secret.value.items():
        merged[field] = _merge_field(field, merged[field], node) if field in merged else node
    return replace(secret, value=merged)


# --------------------------------------------------------- pydantic errors, located


@dataclass(frozen=True)
class _Located:
    """A problem of one secret, and whether its place is inside ``defaults:``."""

    problem: Problem
    from_defaults: bool


def _walk(root: _Node, loc: tuple[str | int, ...]) -> tuple[list[_Node], int]:
    """Follow ``loc`` into the node tree; return the nodes passed and how many parts matched."""
    chain = [root]
    for part in loc:
        value = chain[-1].value
        found = (isinstance(value, dict) and isinstance(part, str) and part in value) or (
            isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value)
        )
        if not found:
            break
        chain.append(value[part])
    return chain, len(chain) - 1


def _known_fields(parent: tuple[str | int, ...], data: Any, registry: Registry) -> list[str]:
    """Return the fields the mapping at ``parent`` may hold, for a did-you-mean."""
    if parent == ():
        return list(_SECRET_FIELDS)
    if parent == ("schedule",):
        return list(_SCHEDULE_FIELDS)
    if parent == ("leaks",):
        return list(LeakPolicy.model_fields)
    if len(parent) == 1 and parent[0] in _ADAPTER_KEYS and isinstance(data, dict):
        field = str(parent[0])
        key, default = _ADAPTER_KEYS[field]
        block = data.get(field)
        name = block.get(key, default) if isinstance(block, dict) else None
        adapters = registry.stores if field == "store" else registry.issuers
        adapter = adapters.get(name) if isinstance(name, str) else None
        return [key, *(adapter.Config.model_fields if adapter else ())]
    return []


def _reason(error: ErrorDetails, data: Any, registry: Registry) -> str:
    """Rewrite a pydantic error message in the words of a policy author."""
    kind, loc, ctx = error["type"], error["loc"], error.get("ctx") or {}
    value = error.get("input")
    field = loc[-1] if loc else ""
    if kind == "missing":
        return f"missing required field '{field}'"
    if kind == "extra_forbidden":
        return _unknown_field(str(field), _known_fields(loc[:-1], data, registry))
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", error["msg"])).replace("NoneType", "null")
    if kind == "string_type":
        hint = "; put it in quotes" if isinstance(value, int | float | bool) else ""
        return f"expected a string, got {_kind_of(value)}{hint}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected a whole number, got {_kind_of(value)}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping, got {_kind_of(value)}"
    if kind == "list_type":
        return f"expected a list, got {_kind_of(value)}"
    if kind in ("literal_error", "enum"):
        return f"expected one of {ctx.get('expected')}, got {value!r}"
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        return f"must be at least {bound}, got {value!r}"
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        return f"must be at most {bound}, got {value!r}"
    if kind == "string_too_short":
        least = ctx.get("min_length", 1)
        return "must not be empty" if least == 1 else f"must be at least {least} characters long"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters long"
    if kind == "too_short":
        least = ctx.get("min_length", 1)
        return f"must have at least {least} item{'s' if least != 1 else ''}"
    if kind == "string_pattern_mismatch":
        return f"{value!r} does not match the pattern {ctx.get('pattern')}"
    return str(error["msg"])


def _locate(
    error: ErrorDetails, merged: _Node, index: int, *, shown: str, data: Any, registry: Registry
) -> _Located:
    """Place one pydantic error of the secret at ``secrets[index]`` in its file."""
    loc = tuple(error["loc"])
    prefix: tuple[str | int, ...] = ("secrets", index)
    reason = _reason(error, data, registry)
    chain, matched = _walk(merged, loc)
    if error["type"] == "missing":
        # at the mapping that lacks the field; a mapping taken whole from
        # defaults is not where the author will add it, so the secret is
        enclosing = chain[min(matched, len(loc) - 1)] if loc else merged
        if enclosing.origin is not None:
            enclosing = merged
        return _Located(
            Problem(
                shown,
                enclosing.key_line,
                enclosing.key_column,
                _path_text(prefix + loc),
                reason,
            ),
            from_defaults=False,
        )
    target = chain[-1]
    if target.is_scalar and error["type"] != "extra_forbidden":
        line, column = target.line, target.column
    else:
        line, column = target.key_line, target.key_column
    if target.origin is not None:
        return _Located(Problem(shown, line, column, target.origin, reason), from_defaults=True)
    return _Located(
        Problem(shown, line, column, _path_text(prefix + loc[:matched]), reason),
        from_defaults=False,
    )


def _name_list(names: list[str]) -> str:
    """Name up to three secrets, then count the rest."""
    shown = ", ".join(f"'{n}'" for n in names[:3])
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return f"secret{'s' if len(names) > 1 else ''} {shown}{more}"


def _fold_defaults_problems(located: list[tuple[_Located, str]]) -> list[Problem]:
    """Report a problem in ``defaults:`` once, naming the secrets it breaks."""
    problems: list[Problem] = []
    affected: dict[Problem, list[str]] = defaultdict(list)
    for item, secret in located:
        if item.from_defaults:
            if secret not in affected[item.problem]:
                affected[item.problem].append(secret)
        else:
            problems.append(item.problem)
    for problem, secrets in affected.items():
        problems.append(replace(problem, reason=f"{problem.reason} (in {_name_list(secrets)})"))
    return problems


# ------------------------------------------------------------------- one file


class _NamedPolicy(NamedTuple):
    """A secret's name as written, where it was written, and its policy if valid."""

    name: str
    line: int
    column: int
    position: int
    """The secret's index in the file's ``secrets`` list."""
    policy: Policy | None


class _Declared(NamedTuple):
    """A notifier declared under ``notifiers:``, where, and its spec if valid."""

    name: str
    line: int
    column: int
    spec: NotifierSpec | None


class PolicySet(list[Policy]):
    """The policies loaded, and the notifiers declared beside them (by name)."""

    def __init__(self, policies: Iterable[Policy], notifiers: dict[str, NotifierSpec]) -> None:
        super().__init__(policies)
        self.notifiers = notifiers


class _FileLoader:
    """Validates every notifier and secret of one file."""

    def __init__(self, path: Path, shown: str, registry: Registry) -> None:
        self.path = path
        self.shown = shown
        self.registry = registry
        self.reader = _FileReader(shown)
        self.secrets: list[_NamedPolicy] = []
        self.notifiers: list[_Declared] = []
        self.problems: list[Problem] = []

    def problem(self, node: _Node, path: str, reason: str, *, at_key: bool = False) -> None:
        """Record a problem at a node's value (or at its key)."""
        line, column = (node.key_line, node.key_column) if at_key else (node.line, node.column)
        self.problems.append(Problem(self.shown, line, column, path, reason))

    def load(self) -> None:
        """Read the file and validate each secret, collecting policies and problems."""
        root = self.reader.read(self.path)
        self.problems.extend(self.reader.problems)
        if root is None:
            return
        if not isinstance(root.value, dict):
            self.problem(
                root,
                "",
                "the top level must be a mapping with 'defaults' and 'secrets', "
                f"got {_kind_of(root.plain())}",
            )
            return
        for key, node in root.value.items():
            if key not in _TOP_LEVEL:
                self.problem(node, key, _unknown_field(key, _TOP_LEVEL), at_key=True)
        notifiers = root.value.get("notifiers")
        if notifiers is not None:
            self._notifiers(notifiers)
        defaults = self._defaults(root.value.get("defaults"))
        secrets = root.value.get("secrets")
        if secrets is None:
            if notifiers is None:  # a file of notifiers alone is fine
                self.problem(root, "secrets", "missing required field 'secrets'")
            return
        if secrets.value is None:
            return
        if not isinstance(secrets.value, list):
            self.problem(
                secrets,
                "secrets",
                f"'secrets' must be a list of secrets, got {_kind_of(secrets.plain())}",
            )
            return
        located: list[tuple[_Located, str]] = []
        for index, secret in enumerate(secrets.value):
            located.extend(self._secret(index, secret, defaults))
        self.problems.extend(_fold_defaults_problems(located))

    def _notifiers(self, node: _Node) -> None:
        """Validate each notifier under ``notifiers:``, reporting problems where they are."""
        if node.value is None:
            return
        if not isinstance(node.value, dict):
            self.problem(
                node,
                "notifiers",
                "'notifiers' must be a mapping of names to notifiers, "
                f"got {_kind_of(node.plain())}",
            )
            return
        for name, child in node.value.items():
            path = f"notifiers.{name}"
            if not NOTIFIER_NAME_PATTERN.fullmatch(name):
                self.problem(
                    child,
                    path,
                    f"invalid notifier name {name!r}: use 1 to 64 lowercase letters, digits, "
                    "_ and -, starting with a letter or digit",
                    at_key=True,
                )
                continue
            spec: NotifierSpec | None = None
            try:
                spec = NotifierSpec.model_validate(
                    child.plain(), context={"registry": self.registry}
                )
            except ValidationError as exc:
                for error in exc.errors(include_url=False):
                    self._notifier_problem(name, child, error)
            self.notifiers.append(_Declared(name, child.key_line, child.key_column, spec))

    def _notifier_problem(self, name: str, node: _Node, error: ErrorDetails) -> None:
        """Place one validation error of notifier ``name`` in the file."""
        loc = tuple(error["loc"])
        chain, matched = _walk(node, loc)
        target = chain[-1]
        if error["type"] == "extra_forbidden":
            kind = node.plain().get("kind") if isinstance(node.value, dict) else None
            adapter = self.registry.notifiers.get(kind) if isinstance(kind, str) else None
            known = ["kind", "events", *(adapter.Config.model_fields if adapter else ())]
            reason = _unknown_field(str(loc[-1]), known)
        else:
            reason = _reason(error, node.plain(), self.registry)
        scalar = target.is_scalar and error["type"] not in ("extra_forbidden", "missing")
        line, column = (
            (target.line, target.column)
            if scalar
            else (
                target.key_line,
                target.key_column,
            )
        )
        shown_loc = loc if error["type"] == "missing" else loc[:matched]
        self.problems.append(
            Problem(self.shown, line, column, _path_text(("notifiers", name, *shown_loc)), reason)
        )

    def _defaults(self, node: _Node | None) -> dict[str, _Node]:
        """Return the usable entries of ``defaults:``, reporting the others."""
        if node is None or node.value is None:
            return {}
        if not isinstance(node.value, dict):
            self.problem(
                node, "defaults", f"'defaults' must be a mapping, got {_kind_of(node.plain())}"
            )
            return {}
        kept: dict[str, _Node] = {}
        for key, child in node.value.items():
            path = f"defaults.{key}"
            if key == "name":
                self.problem(child, path, "'name' cannot have a default", at_key=True)
            elif key not in _DEFAULTABLE_FIELDS:
                self.problem(child, path, _unknown_field(key, _DEFAULTABLE_FIELDS), at_key=True)
            else:
                kept[key] = _from_defaults(child, path)
        return kept

    def _secret(
        self, index: int, secret: _Node, defaults: dict[str, _Node]
    ) -> list[tuple[_Located, str]]:
        """Validate one secret; return its located problems with the secret's label."""
        path = f"secrets[{index}]"
        if not isinstance(secret.value, dict):
            self.problem(
                secret, path, f"each secret must be a mapping, got {_kind_of(secret.value)}"
            )
            return []
        own = dict(secret.value)
        for key in _INTERNAL_FIELDS & own.keys():
            self.problem(own.pop(key), f"{path}.{key}", _unknown_field(key, ()), at_key=True)
        merged = _merge_secret(defaults, replace(secret, value=own))
        data = merged.plain()
        name_node = own.get("name")
        name = name_node.value if name_node is not None else None
        label = name if isinstance(name, str) else path
        policy: Policy | None = None
        located: list[tuple[_Located, str]] = []
        try:
            policy = Policy.model_validate(
                {**data, "source_file": self.shown, "source_line": secret.line},
                context={"registry": self.registry},
            )
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                where = _locate(
                    error, merged, index, shown=self.shown, data=data, registry=self.registry
                )
                located.append((where, label))
        if name_node is not None and isinstance(name, str):
            self.secrets.append(_NamedPolicy(name, name_node.line, name_node.column, index, policy))
        return located


# ------------------------------------------------------------- the quick way


class _Unusual(Exception):
    """The quick way met something that only the located way may judge and report."""


#: Marks "no key read yet" in an open mapping, and "not cached yet".
_NOTHING: Any = object()
#: A secret's ``every`` and ``cron`` are one choice (see :func:`_merge_field`).
_EVERY_OR_CRON = frozenset({"every", "cron"})
#: The implicit resolvers the located way's YAML loader applies to plain scalars.
_IMPLICIT: dict[Any, list[tuple[str, Any]]] = _YAML_LOADER.yaml_implicit_resolvers
_STR_TAG: str = _YAML_LOADER.DEFAULT_SCALAR_TAG
#: Block values a shared model may be keyed by (their type is part of the key: 1 == True).
_HASHABLE_SCALARS = (str, int, float, bool, type(None))


def _plain_scalar(text: str) -> Any:
    """Return what a plain (unquoted, untagged) scalar means, as the located way reads it.

    The same resolver table and constructor as composing with the YAML
    loader; raises :class:`_Unusual` where that would report a problem.
    """
    # what yaml.resolver.BaseResolver.resolve does for a plain scalar
    candidates = _IMPLICIT.get(text[:1], []) + _IMPLICIT.get(None, [])
    tag = next((name for name, pattern in candidates if pattern.match(text)), _STR_TAG)
    if tag == _STR_TAG:
        return text
    try:
        return yaml.constructor.SafeConstructor().construct_object(yaml.ScalarNode(tag, text))
    except (yaml.YAMLError, ValueError, TypeError):
        raise _Unusual from None


class _PlainFile(NamedTuple):
    """One file read the quick way: its plain data and where each secret and name starts."""

    root: Any
    secret_lines: list[int]
    """The line each item of the top-level ``secrets`` list starts at."""
    name_marks: dict[int, tuple[int, int]]
    """Line and column of each secret's ``name`` value, by index in ``secrets``."""


def _read_plain(text: str) -> _PlainFile:  # noqa: PLR0915 (one loop: a call per event costs)
    """Turn one YAML document into plain dicts, lists and scalars straight from its events.

    Raises :class:`_Unusual` on anything the screen or the located reader
    would refuse or treat specially: anchors, aliases, tags, several
    documents, nesting deeper than ``MAX_DEPTH``, keys that are not scalars,
    duplicate or merge keys, malformed YAML. Repeated texts of the file are
    kept once (a thousand secrets of one owner share one string).
    """
    parser = _YAML_LOADER(text)
    get_event = parser.get_event
    # The open collection, whether it is a mapping, and the key read in it
    # that waits for its value (_NOTHING if none); ``parents`` holds the same
    # for each enclosing collection. Locals, not a stack lookup per event:
    # a policy file is about 30 events per secret.
    top: Any = None
    in_mapping = False
    key: Any = _NOTHING
    parents: list[tuple[Any, bool]] = []
    root: Any = _NOTHING
    secrets: Any = None  # the list under the top-level 'secrets'
    secret: Any = None  # the last secret opened in it
    secret_lines: list[int] = []
    name_marks: dict[int, tuple[int, int]] = {}
    plain: dict[str, Any] = {}  # plain scalar text -> its value
    texts: dict[str, str] = {}  # quoted scalar and key text -> one string
    documents = 0
    try:
        while True:
            event = get_event()
            kind = type(event)
            if kind is ScalarEvent:
                if event.anchor is not None or event.tag is not None:
                    raise _Unusual
                text_ = event.value
                if in_mapping and key is _NOTHING:
                    if text_ in top or text_ == "<<":
                        raise _Unusual
                    key = texts.setdefault(text_, text_)
                    continue
                if event.implicit[0]:
                    value = plain.get(text_, _NOTHING)
                    if value is _NOTHING:
                        value = plain[text_] = _plain_scalar(text_)
                else:
                    value = texts.setdefault(text_, text_)
                if in_mapping:
                    top[key] = value
                    if top is secret and key == "name":
                        mark = event.start_mark
                        name_marks[len(secret_lines) - 1] = (mark.line + 1, mark.column + 1)
                    key = _NOTHING
                elif top is None:
                    root = value
                elif top is secrets:
                    raise _Unusual  # a secret that is not a mapping
                else:
                    top.append(value)
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                if event.anchor is not None or event.tag is not None:
                    raise _Unusual
                new: Any = {} if kind is MappingStartEvent else []
                if in_mapping:
                    if key is _NOTHING:
                        raise _Unusual  # a mapping or list as a key
                    top[key] = new
                    if key == "secrets" and len(parents) == 1:  # under the root mapping
                        secrets = new
                elif top is None:
                    root = new
                else:
                    if top is secrets:
                        if kind is not MappingStartEvent:
                            raise _Unusual  # a secret that is not a mapping
                        secret = new
                        secret_lines.append(event.start_mark.line + 1)
                    top.append(new)
                parents.append((top, in_mapping))
                if len(parents) > MAX_DEPTH:
                    raise _Unusual
                top, in_mapping, key = new, kind is MappingStartEvent, _NOTHING
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                # a mapping's value is complete: its parent waits for a key again
                top, in_mapping = parents.pop()
                key = _NOTHING
            elif kind is DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _Unusual
            elif kind is AliasEvent:
                raise _Unusual
            elif kind is StreamEndEvent or event is None:
                break
    except yaml.YAMLError:
        raise _Unusual from None
    finally:
        parser.dispose()
    return _PlainFile(root, secret_lines, name_marks)


def _plain_adapter_name(block: Any, key: str, default: str | None) -> Any:
    """Return the adapter a plain ``store:``/``issuer:`` block names, as :func:`_adapter_name`."""
    if not isinstance(block, dict):
        return None
    return block.get(key, default)


def _plain_deep_merge(base: Any, own: Any) -> Any:
    """Merge plain ``own`` over ``base``, as :func:`_deep_merge` merges nodes."""
    if not isinstance(base, dict) or not isinstance(own, dict):
        return own
    merged = dict(base)
    for key, value in own.items():
        merged[key] = _plain_deep_merge(merged[key], value) if key in merged else value
    return merged


def _plain_merge_field(field: str, base: Any, own: Any) -> Any:
    """Merge one plain field of a secret over its default, as :func:`_merge_field`."""
    if field in _ADAPTER_KEYS:
        key, default = _ADAPTER_KEYS[field]
        named = _plain_adapter_name(own, key, None)
        if named is not None and named != _plain_adapter_name(base, key, default):
            return own
    if (
        field == "schedule"
        and isinstance(base, dict)
        and isinstance(own, dict)
        and own.keys() & _EVERY_OR_CRON
    ):
        base = {k: v for k, v in base.items() if k not in _EVERY_OR_CRON}
    return _plain_deep_merge(base, own)


def _block_key(block: dict[str, Any]) -> tuple[Any, ...] | None:
    """Return a key telling identical flat blocks apart, or None if a value is not a scalar."""
    key: list[Any] = []
    for name, value in block.items():
        if not isinstance(value, _HASHABLE_SCALARS):
            return None
        key += (name, type(value), value)
    return tuple(key)


class _Shared:
    """What one :func:`load_policies` call validates once and shares between policies.

    Policies are frozen, so a ``schedule:`` or ``issuer:`` block written the
    same way by many secrets becomes one model that all of them hold, which
    is validated once instead of once per secret (the random issuer's
    alphabet check alone cost a third of a millisecond per policy).
    """

    def __init__(self, registry: Registry) -> None:
        self.context = {"registry": registry}
        self._models: dict[tuple[type[BaseModel], tuple[Any, ...]], BaseModel | None] = {}
        self._fields_sets: dict[frozenset[str], set[str]] = {}

    def model(self, cls: type[BaseModel], block: Any) -> Any:
        """Return the shared ``cls`` validated from a flat block, or the block itself.

        The block is returned as it is when it is not a flat mapping or does
        not validate, so that validating the policy reports it as usual.
        """
        if type(block) is not dict:
            return block
        key = _block_key(block)
        if key is None:
            return block
        found = self._models.get((cls, key), _NOTHING)
        if found is _NOTHING:
            try:
                found = cls.model_validate(block, context=self.context)
            except ValidationError:
                found = None
            self._models[cls, key] = found
        return block if found is None else found

    def compact(self, policy: Policy) -> Policy:
        """Make the policy's per-instance field sets one shared set per distinct content.

        pydantic keeps with every model the set of fields given to it
        (``model_fields_set``), 200 to 700 bytes a model: more than a third of
        a policy. The models are frozen, so pydantic never changes that set
        in place (``model_copy`` copies it first); sharing equal sets saves
        about 1.1 KiB per policy.
        """
        for model in (policy, policy.store, policy.store.config):
            fields = model.__pydantic_fields_set__
            if type(fields) is set:  # as pydantic keeps it; anything else is left alone
                shared = self._fields_sets.setdefault(frozenset(fields), fields)
                if shared is not fields:
                    object.__setattr__(model, "__pydantic_fields_set__", shared)
        return policy


def _read_text_quietly(path: Path) -> str | None:
    """Return the file's text, or None where :meth:`_FileReader._text` reports a problem."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            return None
        return data.decode("utf-8").removeprefix("\ufeff")
    except (OSError, UnicodeDecodeError):
        return None


def _load_quickly(path: Path, shown: str, shared: _Shared) -> list[_NamedPolicy] | None:
    """Load every secret of a valid file the quick way; None if the file needs the located way.

    None whenever the located way could report a problem in the file, so
    that what the quick way returns is always what the located way would.
    """
    text = _read_text_quietly(path)
    if text is None:
        return None
    try:
        plain = _read_plain(text)
    except _Unusual:
        return None
    del text  # no need to hold a megabyte while validating
    root = plain.root
    if type(root) is not dict or not root.keys() <= set(_TOP_LEVEL) or "secrets" not in root:
        return None
    if "notifiers" in root:
        return None  # notifiers need their lines (across files): the located way has them
    defaults = root.get("defaults")
    if defaults is None:
        defaults = {}
    elif type(defaults) is not dict or not defaults.keys() <= _DEFAULTABLE:
        return None
    secrets = root["secrets"]
    if secrets is None:
        return []
    if type(secrets) is not list or len(plain.secret_lines) != len(secrets):
        return None
    loaded: list[_NamedPolicy] = []
    for index, secret in enumerate(secrets):
        if type(secret) is not dict or not _INTERNAL_FIELDS.isdisjoint(secret):
            return None
        if defaults:
            data = dict(defaults)
            for field, value in secret.items():
                data[field] = (
                    _plain_merge_field(field, data[field], value) if field in data else value
                )
        else:
            data = secret  # read for this secret alone: free to change
        if "issuer" not in data:
            data["issuer"] = {"kind": "random"}  # as Policy._default_issuer would
        data["issuer"] = shared.model(IssuerSpec, data["issuer"])
        if "schedule" in data:
            data["schedule"] = shared.model(Schedule, data["schedule"])
        mark = plain.name_marks.get(index)
        if mark is None:
            return None  # no name, or one that is not a scalar: not valid
        data["source_file"] = shown
        data["source_line"] = plain.secret_lines[index]
        try:
            policy = Policy.model_validate(data, context=shared.context)
        except ValidationError:
            return None
        loaded.append(_NamedPolicy(policy.name, mark[0], mark[1], index, policy))
    return loaded


# ------------------------------------------------------------------ the entry


def _policy_files(path: Path) -> list[Path]:
    """Return the file named, or the policy files of the directory named, sorted."""
    if not path.exists():
        raise ConfigError(f"policy path {str(path)!r} does not exist")
    if not path.is_dir():
        return [path]
    files = sorted(
        child for child in path.iterdir() if child.suffix in POLICY_SUFFIXES and child.is_file()
    )
    if not files:
        raise ConfigError(f"no policy files (*.yaml, *.yml) in {str(path)!r}")
    return files


def load_policies(path: str | Path, registry: Registry | None = None) -> PolicySet:
    """Load and validate every policy in a file or a directory of ``*.yaml``/``*.yml`` files.

    Returns the policies, with the notifiers declared in any of the files
    (``notifiers:``, one namespace across files) as ``.notifiers``. Raises
    :class:`ConfigError` if the path does not exist or a directory holds no
    policy file, and :class:`PolicyError` with every problem of every file
    if anything is invalid (a secret's ``alerts`` naming an undeclared
    notifier included). Adapters come from ``registry`` (the installed ones
    by default); none is called.
    """
    files = _policy_files(Path(path))
    adapters = registry if registry is not None else discovery.registry()
    with _automatic_collection_paused():
        return _load_files(files, adapters)


@contextlib.contextmanager
def _automatic_collection_paused() -> Iterator[None]:
    """Keep the cyclic garbage collector from running automatically inside the block.

    Loading keeps every policy it builds (five tracked objects each), so
    automatic collections keep walking an ever larger heap that holds no
    garbage: a fifth of the time of loading 100,000 policies. Reference
    counting still frees everything; a collection after the block finds
    whatever cycle an error left. Restored only if it was enabled on entry,
    so overlapping loads on two threads leave it enabled once both are done.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _load_files(files: list[Path], registry: Registry, *, quickly: bool = True) -> PolicySet:
    """Load the files, each the quick way if it allows (``quickly``) or else the located way."""
    shared = _Shared(registry)
    problems: list[Problem] = []
    policies: list[Policy] = []
    first_seen: dict[str, tuple[str, int, int]] = {}
    notifiers: dict[str, NotifierSpec] = {}
    declared_at: dict[str, str] = {}
    alerting: list[tuple[str, _NamedPolicy]] = []
    for file in files:
        shown = str(file)
        secrets = _load_quickly(file, shown, shared) if quickly else None
        if secrets is None:
            loader = _FileLoader(file, shown, registry)
            loader.load()
            problems.extend(loader.problems)
            secrets = loader.secrets
            for declared in loader.notifiers:
                first_at = declared_at.setdefault(declared.name, f"{shown}:{declared.line}")
                if first_at != f"{shown}:{declared.line}":
                    problems.append(
                        Problem(
                            shown,
                            declared.line,
                            declared.column,
                            f"notifiers.{declared.name}",
                            f"duplicate notifier name '{declared.name}'; first defined at "
                            f"{first_at}",
                        )
                    )
                elif declared.spec is not None:
                    notifiers[declared.name] = declared.spec
        for named in secrets:
            if named.policy is not None and named.policy.alerts:
                alerting.append((shown, named))
            here = (shown, named.line, named.position)
            first = first_seen.setdefault(named.name, here)
            if first != here:
                problems.append(
                    Problem(
                        shown,
                        named.line,
                        named.column,
                        f"secrets[{named.position}].name",
                        f"duplicate secret name '{named.name}'; "
                        f"first defined at {first[0]}:{first[1]}",
                    )
                )
            elif named.policy is not None and not problems:
                # once anything is wrong no policy is returned: stop keeping them
                policies.append(shared.compact(named.policy))
    problems.extend(_unknown_notifiers(alerting, declared_at))
    if problems:
        raise PolicyError(problems)
    return PolicySet(policies, notifiers)


def _unknown_notifiers(
    alerting: list[tuple[str, _NamedPolicy]], declared: dict[str, str]
) -> list[Problem]:
    """Report every ``alerts`` entry naming a notifier no file declares."""
    problems: list[Problem] = []
    for shown, named in alerting:
        assert named.policy is not None  # only valid policies are collected
        for name in named.policy.alerts:
            if name in declared:
                continue
            close = difflib.get_close_matches(name, list(declared), n=1)
            hint = f" did you mean '{close[0]}'?" if close else ""
            known = ", ".join(sorted(declared)) or "none (add a top-level 'notifiers:' mapping)"
            problems.append(
                Problem(
                    shown,
                    named.line,
                    named.column,
                    f"secrets[{named.position}].alerts",
                    f"unknown notifier '{name}';{hint} declared: {known}",
                )
            )
    return problems
