"""Read policy files and turn them into validated policies, or into located problems.

:func:`load_policies` reads one YAML file or every ``*.yaml``/``*.yml`` file of
a directory and returns the policies, or raises :class:`PolicyError` with every
problem of every file at once, each as ``FILE:LINE:COL: field.path: reason``.

The YAML is screened before anything is built from it: oversized files,
anchors and aliases (an alias bomb is never expanded), custom tags, several
documents and duplicate keys are refused. Values are kept with the line and
column they were written at, so that a pydantic error can be reported where
the offending key or value is, including inside the file's ``defaults:``.

Nothing here calls a provider: only the adapters' ``Config`` models are used.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from rotator import interfaces
from rotator.errors import ConfigError, PolicyError, Problem
from rotator.interfaces import Registry
from rotator.policy import Policy, Schedule

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
_TOP_LEVEL = ("defaults", "secrets")
#: Policy fields the loader fills in; a policy file may not set them.
_INTERNAL_FIELDS = frozenset({"source_file", "source_line"})
_SECRET_FIELDS = tuple(name for name in Policy.model_fields if name not in _INTERNAL_FIELDS)
_DEFAULTABLE_FIELDS = tuple(name for name in _SECRET_FIELDS if name != "name")
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
    if kind == "literal_error":
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


@dataclass(frozen=True)
class _NamedPolicy:
    """A secret's name as written, where it was written, and its policy if valid."""

    name: str
    line: int
    column: int
    index: int
    policy: Policy | None


class _FileLoader:
    """Validates every secret of one file."""

    def __init__(self, path: Path, shown: str, registry: Registry) -> None:
        self.path = path
        self.shown = shown
        self.registry = registry
        self.reader = _FileReader(shown)
        self.secrets: list[_NamedPolicy] = []
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
        defaults = self._defaults(root.value.get("defaults"))
        secrets = root.value.get("secrets")
        if secrets is None:
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


def _installed_registry() -> Registry:
    """Load the installed adapters; a broken installation is a ConfigError."""
    try:
        return interfaces.registry()
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load the provider adapters: {exc}") from exc


def load_policies(path: str | Path, registry: Registry | None = None) -> list[Policy]:
    """Load and validate every policy in a file or a directory of ``*.yaml``/``*.yml`` files.

    Raises :class:`ConfigError` if the path does not exist or a directory holds
    no policy file, and :class:`PolicyError` with every problem of every file
    if anything is invalid. Adapters come from ``registry`` (the installed ones
    by default); none is called.
    """
    files = _policy_files(Path(path))
    adapters = registry if registry is not None else _installed_registry()
    problems: list[Problem] = []
    policies: list[Policy] = []
    first_seen: dict[str, tuple[str, int, int]] = {}
    for file in files:
        loader = _FileLoader(file, str(file), adapters)
        loader.load()
        problems.extend(loader.problems)
        for named in loader.secrets:
            here = (loader.shown, named.line, named.index)
            first = first_seen.setdefault(named.name, here)
            if first != here:
                problems.append(
                    Problem(
                        loader.shown,
                        named.line,
                        named.column,
                        f"secrets[{named.index}].name",
                        f"duplicate secret name '{named.name}'; "
                        f"first defined at {first[0]}:{first[1]}",
                    )
                )
            elif named.policy is not None:
                policies.append(named.policy)
    if problems:
        raise PolicyError(problems)
    return policies
