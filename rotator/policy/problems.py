"""Turn pydantic's validation errors into problems located in the policy file.

Each error is reworded the way a policy author thinks (``expected a whole
number, got a string``, ``unknown field 'secert_id'; did you mean
'secret_id'?``) and placed at the key or value it is about, following its
``loc`` into the :class:`~rotator.policy.located_yaml.LocatedNode` tree. A
problem inside ``defaults:`` is reported once, where it is written, naming
the secrets it breaks.
"""

from __future__ import annotations

import json
import shlex
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from pydantic_core import ErrorDetails

from rotator.adapters.discovery import Registry
from rotator.errors import Problem
from rotator.output.spelling import did_you_mean
from rotator.policy.layout import ADAPTER_NAME_KEYS, SCHEDULE_FIELDS, SECRET_FIELDS
from rotator.policy.located_yaml import LocatedNode, path_text
from rotator.policy.model import LeakPolicy


def unknown_field(key: str, known: Iterable[str]) -> str:
    """Say that ``key`` is unknown, suggesting the closest known field if any is close."""
    return f"unknown field '{key}'" + did_you_mean(key, known)


def kind_of(value: Any) -> str:
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


@dataclass(frozen=True)
class LocatedProblem:
    """A problem of one secret, and whether its place is inside ``defaults:``."""

    problem: Problem
    from_defaults: bool


def _walk(root: LocatedNode, loc: tuple[str | int, ...]) -> tuple[list[LocatedNode], int]:
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
        return list(SECRET_FIELDS)
    if parent == ("schedule",):
        return list(SCHEDULE_FIELDS)
    if parent == ("leaks",):
        return list(LeakPolicy.model_fields)
    if len(parent) == 1 and parent[0] in ADAPTER_NAME_KEYS and isinstance(data, dict):
        field = str(parent[0])
        key, default = ADAPTER_NAME_KEYS[field]
        block = data.get(field)
        name = block.get(key, default) if isinstance(block, dict) else None
        adapters = registry.stores if field == "store" else registry.issuers
        adapter = adapters.get(name) if isinstance(name, str) else None
        return [key, *(adapter.Config.model_fields if adapter else ())]
    return []


#: The longest value repeated in a suggestion.
_SUGGESTED = 200


def _as_list(field: str, value: Any) -> str:
    """Suggest the list a string meant: a command's words, or the one item (or ``""``)."""
    if not isinstance(value, str) or len(value) > _SUGGESTED:
        return ""
    if field == "command":
        try:
            words = shlex.split(value)
        except ValueError:
            words = value.split()
        return (
            f"; write {field}: {json.dumps(words)} (one item per argument: no shell runs it, "
            "so pipes, globs and $VARIABLES are not expanded)"
        )
    return f"; write {field}: {json.dumps([value])}"


def _reason(error: ErrorDetails, data: Any, registry: Registry) -> str:
    """Rewrite a pydantic error message in the words of a policy author."""
    kind, loc, ctx = error["type"], error["loc"], error.get("ctx") or {}
    value = error.get("input")
    field = loc[-1] if loc else ""
    if kind == "missing":
        return f"missing required field '{field}'"
    if kind == "extra_forbidden":
        return unknown_field(str(field), _known_fields(loc[:-1], data, registry))
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", error["msg"])).replace("NoneType", "null")
    if kind == "string_type":
        hint = "; put it in quotes" if isinstance(value, int | float | bool) else ""
        return f"expected a string, got {kind_of(value)}{hint}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected a whole number, got {kind_of(value)}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping, got {kind_of(value)}"
    if kind == "list_type":
        return f"expected a list, got {kind_of(value)}{_as_list(str(field), value)}"
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


def locate_secret_error(
    error: ErrorDetails,
    merged: LocatedNode,
    index: int,
    *,
    shown: str,
    data: Any,
    registry: Registry,
) -> LocatedProblem:
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
        return LocatedProblem(
            Problem(
                shown,
                enclosing.key_line,
                enclosing.key_column,
                path_text(prefix + loc),
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
        return LocatedProblem(
            Problem(shown, line, column, target.origin, reason), from_defaults=True
        )
    return LocatedProblem(
        Problem(shown, line, column, path_text(prefix + loc[:matched]), reason),
        from_defaults=False,
    )


def locate_notifier_error(
    error: ErrorDetails, name: str, node: LocatedNode, *, shown: str, registry: Registry
) -> Problem:
    """Place one validation error of the notifier ``name`` (declared at ``node``) in its file."""
    loc = tuple(error["loc"])
    chain, matched = _walk(node, loc)
    target = chain[-1]
    if error["type"] == "extra_forbidden":
        kind = node.plain().get("kind") if isinstance(node.value, dict) else None
        adapter = registry.notifiers.get(kind) if isinstance(kind, str) else None
        known = ["kind", "events", *(adapter.Config.model_fields if adapter else ())]
        reason = unknown_field(str(loc[-1]), known)
    else:
        reason = _reason(error, node.plain(), registry)
    scalar = target.is_scalar and error["type"] not in ("extra_forbidden", "missing")
    if scalar:
        line, column = target.line, target.column
    else:
        line, column = target.key_line, target.key_column
    shown_loc = loc if error["type"] == "missing" else loc[:matched]
    return Problem(shown, line, column, path_text(("notifiers", name, *shown_loc)), reason)


def _name_list(names: list[str]) -> str:
    """Name up to three secrets, then count the rest."""
    shown = ", ".join(f"'{n}'" for n in names[:3])
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return f"secret{'s' if len(names) > 1 else ''} {shown}{more}"


def fold_defaults_problems(located: list[tuple[LocatedProblem, str]]) -> list[Problem]:
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
