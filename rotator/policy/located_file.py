"""Validate one policy file the located way, reporting every problem at its line and column.

The file is read by :class:`~rotator.policy.located_yaml.LocatedYamlReader`;
each notifier under ``notifiers:`` is validated on its own, and each secret
with the file's ``defaults:`` merged under it (:mod:`.defaults`). Every
validation error becomes a problem placed where the offending key or value
is written (:mod:`.problems`), including inside ``defaults:``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pydantic import ValidationError

from rotator.adapters.discovery import Registry
from rotator.errors import Problem
from rotator.policy.conflicts import DeclaredNotifier, NamedPolicy
from rotator.policy.defaults import from_defaults, merge_secret
from rotator.policy.layout import DEFAULTABLE_FIELDS, LOADER_FIELDS, TOP_LEVEL_KEYS
from rotator.policy.located_yaml import LocatedNode, LocatedYamlReader
from rotator.policy.model import NOTIFIER_NAME_PATTERN, NotifierSpec, Policy
from rotator.policy.problems import (
    LocatedProblem,
    fold_defaults_problems,
    kind_of,
    locate_notifier_error,
    locate_secret_error,
    unknown_field,
)


class LocatedFileLoader:
    """Validates every notifier and secret of one file, placing each problem where it is written."""

    def __init__(self, path: Path, shown: str, registry: Registry) -> None:
        self.path = path
        self.shown = shown
        self.registry = registry
        self.reader = LocatedYamlReader(shown)
        self.secrets: list[NamedPolicy] = []
        self.notifiers: list[DeclaredNotifier] = []
        self.problems: list[Problem] = []

    def problem(self, node: LocatedNode, path: str, reason: str, *, at_key: bool = False) -> None:
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
                f"got {kind_of(root.plain())}",
            )
            return
        for key, node in root.value.items():
            if key not in TOP_LEVEL_KEYS:
                self.problem(node, key, unknown_field(key, TOP_LEVEL_KEYS), at_key=True)
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
                f"'secrets' must be a list of secrets, got {kind_of(secrets.plain())}",
            )
            return
        located: list[tuple[LocatedProblem, str]] = []
        for index, secret in enumerate(secrets.value):
            located.extend(self._secret(index, secret, defaults))
        self.problems.extend(fold_defaults_problems(located))

    def _notifiers(self, node: LocatedNode) -> None:
        """Validate each notifier under ``notifiers:``, reporting problems where they are."""
        if node.value is None:
            return
        if not isinstance(node.value, dict):
            self.problem(
                node,
                "notifiers",
                f"'notifiers' must be a mapping of names to notifiers, got {kind_of(node.plain())}",
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
                    self.problems.append(
                        locate_notifier_error(
                            error, name, child, shown=self.shown, registry=self.registry
                        )
                    )
            self.notifiers.append(DeclaredNotifier(name, child.key_line, child.key_column, spec))

    def _defaults(self, node: LocatedNode | None) -> dict[str, LocatedNode]:
        """Return the usable entries of ``defaults:``, reporting the others."""
        if node is None or node.value is None:
            return {}
        if not isinstance(node.value, dict):
            self.problem(
                node, "defaults", f"'defaults' must be a mapping, got {kind_of(node.plain())}"
            )
            return {}
        kept: dict[str, LocatedNode] = {}
        for key, child in node.value.items():
            path = f"defaults.{key}"
            if key == "name":
                self.problem(child, path, "'name' cannot have a default", at_key=True)
            elif key not in DEFAULTABLE_FIELDS:
                self.problem(child, path, unknown_field(key, DEFAULTABLE_FIELDS), at_key=True)
            else:
                kept[key] = from_defaults(child, path)
        return kept

    def _secret(
        self, index: int, secret: LocatedNode, defaults: dict[str, LocatedNode]
    ) -> list[tuple[LocatedProblem, str]]:
        """Validate one secret; return its located problems with the secret's label."""
        path = f"secrets[{index}]"
        if not isinstance(secret.value, dict):
            self.problem(
                secret, path, f"each secret must be a mapping, got {kind_of(secret.value)}"
            )
            return []
        own = dict(secret.value)
        for key in LOADER_FIELDS & own.keys():
            self.problem(own.pop(key), f"{path}.{key}", unknown_field(key, ()), at_key=True)
        merged = merge_secret(defaults, replace(secret, value=own))
        data = merged.plain()
        name_node = own.get("name")
        name = name_node.value if name_node is not None else None
        label = name if isinstance(name, str) else path
        policy: Policy | None = None
        located: list[tuple[LocatedProblem, str]] = []
        try:
            policy = Policy.model_validate(
                {**data, "source_file": self.shown, "source_line": secret.line},
                context={"registry": self.registry},
            )
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                where = locate_secret_error(
                    error, merged, index, shown=self.shown, data=data, registry=self.registry
                )
                located.append((where, label))
        if name_node is not None and isinstance(name, str):
            self.secrets.append(NamedPolicy(name, name_node.line, name_node.column, index, policy))
        return located
