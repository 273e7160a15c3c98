"""Merge a file's ``defaults:`` under each of its secrets.

Mappings merge key by key and anything else is replaced, with two
exceptions: a ``store:`` or ``issuer:`` block naming another adapter than
the default's replaces the default whole (the other adapter's fields would
only be refused as unknown), and a schedule's ``every`` or ``cron`` replaces
the default's choice of the two. The located way merges
:class:`~rotator.policy.located_yaml.LocatedNode` trees and the quick way
plain values; both merge alike, so that they build the same policy.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rotator.policy.layout import ADAPTER_NAME_KEYS, EVERY_OR_CRON
from rotator.policy.located_yaml import LocatedNode

# ---------------------------------------------------------------- located nodes


def from_defaults(node: LocatedNode, path: str) -> LocatedNode:
    """Mark a node (and everything under it) as coming from ``path`` in ``defaults:``."""
    if isinstance(node.value, dict):
        value: Any = {k: from_defaults(v, f"{path}.{k}") for k, v in node.value.items()}
    elif isinstance(node.value, list):
        value = [from_defaults(v, f"{path}[{i}]") for i, v in enumerate(node.value)]
    else:
        value = node.value
    return replace(node, value=value, origin=path)


def _deep_merge(base: LocatedNode, own: LocatedNode) -> LocatedNode:
    """Merge ``own`` over ``base``: mappings key by key, anything else replaced."""
    if not isinstance(base.value, dict) or not isinstance(own.value, dict):
        return own
    merged = dict(base.value)
    for key, node in own.value.items():
        merged[key] = _deep_merge(merged[key], node) if key in merged else node
    return replace(own, value=merged)


def _adapter_name(block: LocatedNode, key: str, default: str | None) -> Any:
    """Return the adapter a ``store:``/``issuer:`` block names (``default`` if none)."""
    if not isinstance(block.value, dict):
        return None
    named = block.value.get(key)
    return default if named is None else named.value


def _merge_field(field: str, base: LocatedNode, own: LocatedNode) -> LocatedNode:
    """Merge one top-level field of a secret over the same field in ``defaults:``."""
    if field in ADAPTER_NAME_KEYS:
        key, default = ADAPTER_NAME_KEYS[field]
        named = _adapter_name(own, key, None)
        if named is not None and named != _adapter_name(base, key, default):
            # another adapter's fields would only be refused as unknown
            return own
    if (
        field == "schedule"
        and isinstance(base.value, dict)
        and isinstance(own.value, dict)
        and own.value.keys() & EVERY_OR_CRON
    ):
        # every and cron are one choice: the secret's choice replaces the default's
        kept = {k: v for k, v in base.value.items() if k not in EVERY_OR_CRON}
        base = replace(base, value=kept)
    return _deep_merge(base, own)


def merge_secret(defaults: dict[str, LocatedNode], secret: LocatedNode) -> LocatedNode:
    """Return the secret with the file's defaults merged under it."""
    merged = dict(defaults)
    for field, node in secret.value.items():
        merged[field] = _merge_field(field, merged[field], node) if field in merged else node
    return replace(secret, value=merged)


# ------------------------------------------------------------------ plain values


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


def merge_plain_field(field: str, base: Any, own: Any) -> Any:
    """Merge one plain field of a secret over its default, as the located way merges nodes."""
    if field in ADAPTER_NAME_KEYS:
        key, default = ADAPTER_NAME_KEYS[field]
        named = _plain_adapter_name(own, key, None)
        if named is not None and named != _plain_adapter_name(base, key, default):
            return own
    if (
        field == "schedule"
        and isinstance(base, dict)
        and isinstance(own, dict)
        and own.keys() & EVERY_OR_CRON
    ):
        base = {k: v for k, v in base.items() if k not in EVERY_OR_CRON}
    return _plain_deep_merge(base, own)
