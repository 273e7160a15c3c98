"""Load a valid policy file the quick way, and share what many of its policies repeat.

libyaml's events are turned straight into plain dicts and lists (no YAML
nodes, no positions but the few a valid file needs), secrets are merged with
the file's defaults and validated, and identical ``schedule:`` and
``issuer:`` blocks are validated once and shared (policies are immutable).
Anything unusual (anything the located reader's screen refuses, a duplicate
key, a tag, an invalid secret) makes :func:`load_quickly` give the file up,
so that :mod:`.located_file` reads it again and reports every problem; a
file is never half-loaded one way and half the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import yaml
from pydantic import BaseModel, ValidationError
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

from rotator.adapters.discovery import Registry
from rotator.policy.conflicts import NamedPolicy
from rotator.policy.defaults import merge_plain_field
from rotator.policy.layout import DEFAULTABLE, LOADER_FIELDS, TOP_LEVEL_KEYS
from rotator.policy.located_yaml import MAX_DEPTH, MAX_FILE_BYTES, YAML_LOADER
from rotator.policy.model import IssuerSpec, Policy
from rotator.policy.schedule import Schedule


class _Unusual(Exception):
    """The quick way met something that only the located way may judge and report."""


#: Marks "no key read yet" in an open mapping, and "not cached yet".
_NOTHING: Any = object()
#: The implicit resolvers the located way's YAML loader applies to plain scalars.
_IMPLICIT: dict[Any, list[tuple[str, Any]]] = YAML_LOADER.yaml_implicit_resolvers
_STR_TAG: str = YAML_LOADER.DEFAULT_SCALAR_TAG
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
    parser = YAML_LOADER(text)
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


def _block_key(block: dict[str, Any]) -> tuple[Any, ...] | None:
    """Return a key telling identical flat blocks apart, or None if a value is not a scalar."""
    key: list[Any] = []
    for name, value in block.items():
        if not isinstance(value, _HASHABLE_SCALARS):
            return None
        key += (name, type(value), value)
    return tuple(key)


class SharedModels:
    """What one :func:`~rotator.policy.loader.load_policies` call validates once and shares.

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
    """Return the file's text, or None where the located reader reports a problem with it."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            return None
        return data.decode("utf-8").removeprefix("\ufeff")
    except (OSError, UnicodeDecodeError):
        return None


def load_quickly(path: Path, shown: str, shared: SharedModels) -> list[NamedPolicy] | None:
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
    if type(root) is not dict or not root.keys() <= set(TOP_LEVEL_KEYS) or "secrets" not in root:
        return None
    if "notifiers" in root:
        return None  # notifiers need their lines (across files): the located way has them
    defaults = root.get("defaults")
    if defaults is None:
        defaults = {}
    elif type(defaults) is not dict or not defaults.keys() <= DEFAULTABLE:
        return None
    secrets = root["secrets"]
    if secrets is None:
        return []
    if type(secrets) is not list or len(plain.secret_lines) != len(secrets):
        return None
    loaded: list[NamedPolicy] = []
    for index, secret in enumerate(secrets):
        if type(secret) is not dict or not LOADER_FIELDS.isdisjoint(secret):
            return None
        if defaults:
            data = dict(defaults)
            for field, value in secret.items():
                data[field] = (
                    merge_plain_field(field, data[field], value) if field in data else value
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
        loaded.append(NamedPolicy(policy.name, mark[0], mark[1], index, policy))
    return loaded
