"""Read one policy file's YAML into values that remember the line and column they were written at.

The YAML is screened before anything is built from it: oversized files,
anchors and aliases (an alias bomb is never expanded), custom tags, several
documents, nesting deeper than :data:`MAX_DEPTH` and duplicate keys are
refused, each as a :class:`~rotator.errors.Problem` at its line and column.
Values are kept with the place they were written at, so that a pydantic
error can later be reported where the offending key or value is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rotator.errors import Problem

MAX_FILE_BYTES = 1024 * 1024
"""Policy files larger than this are refused without being parsed."""

MAX_DEPTH = 32
"""Mappings and lists nested deeper than this are refused (a policy needs four or five)."""

YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""The safe YAML loader both ways of reading a file use: libyaml's where installed."""

_CORE_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")
)
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True, slots=True)
class LocatedNode:
    """A YAML value with the place it was written at (lines and columns 1-based)."""

    value: Any
    """A scalar, ``dict[str, LocatedNode]`` or ``list[LocatedNode]``."""
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


def path_text(parts: Iterable[str | int]) -> str:
    """Join a location as ``secrets[0].store.secret_id``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


class LocatedYamlReader:
    """Turns one file's text into a located node tree, collecting its problems."""

    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.problems: list[Problem] = []
        self.unreadable = False
        self._constructor = yaml.constructor.SafeConstructor()

    def problem(self, line: int, column: int, path: str, reason: str) -> None:
        """Record a problem at a line and column of this file."""
        self.problems.append(Problem(self.shown, line, column, path, reason))

    def read(self, path: Path) -> LocatedNode | None:
        """Read, screen and compose the file; None if it cannot be used at all."""
        text = self._text(path)
        if text is None or not self._screen(text):
            return None
        try:
            root = yaml.compose(text, Loader=YAML_LOADER)
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
            for event in yaml.parse(text, Loader=YAML_LOADER):
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

    def _build(self, node: yaml.Node, key: tuple[int, int] | None, path: str) -> LocatedNode:
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
        return LocatedNode(value, line, column, key_line, key_column)

    def _mapping(self, node: yaml.MappingNode, path: str) -> dict[str, LocatedNode]:
        """Build a mapping's entries, refusing merge keys, non-scalar and duplicate keys."""
        items: dict[str, LocatedNode] = {}
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
            child_path = path_text([path, key]) if path else key
            if key in items:
                first = items[key].key_line
                self.problem(
                    line, column, child_path, f"duplicate key '{key}' (first at line {first})"
                )
                continue
            items[key] = self._build(value_node, (line, column), child_path)
        return items
