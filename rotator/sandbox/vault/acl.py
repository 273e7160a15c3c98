"""Vault ACL policies: parsing the HCL (or JSON) text and deciding what a set of policies allows.

The matching follows ``vault/acl.go``: an exact path rule wins; otherwise the
longest glob (``*`` at the end) prefix competes with the segment-wildcard
(``+``) rules, ranked by the position of the first wildcard, then non-glob over
glob, then fewer ``+`` segments, then length. Several policies naming the same
path add up their capabilities, and ``deny`` on that path overrides them all.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

CAPABILITIES = frozenset(
    {"create", "read", "update", "delete", "list", "sudo", "deny", "patch", "subscribe", "recover"}
)
# The pre-0.9 ``policy = "..."`` shorthand, still accepted by Vault.
_LEGACY_POLICY = {
    "deny": frozenset({"deny"}),
    "read": frozenset({"read", "list"}),
    "write": frozenset({"read", "list", "create", "update", "delete"}),
    "sudo": frozenset({"read", "list", "create", "update", "delete", "sudo"}),
}
# What each request operation needs (vault/acl.go AllowOperation).
_OPERATION_CAPABILITY = {
    "read": "read",
    "list": "list",
    "update": "update",
    "create": "create",
    "delete": "delete",
    "patch": "patch",
}

# The "default" policy as current Vault writes it at initialisation (vault/policy_store.go).
DEFAULT_POLICY = """
# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own entity by id or name
path "identity/entity/id/{{identity.entity.id}}" {
  capabilities = ["read"]
}
path "identity/entity/name/{{identity.entity.name}}" {
  capabilities = ["read"]
}


# Allow a token to look up its resultant ACL from all policies. This is useful
# for UIs. It is an internal path because the format may change at any time
# based on how the internal ACL features and capabilities change.
path "sys/internal/ui/resultant-acl" {
    capabilities = ["read"]
}

# Allow a token to renew a lease via lease_id in the request body; old path for
# old clients, new path for newer
path "sys/renew" {
    capabilities = ["update"]
}
path "sys/leases/renew" {
    capabilities = ["update"]
}

# Allow looking up lease properties. This requires knowing the lease ID ahead
# of time and does not divulge any sensitive information.
path "sys/leases/lookup" {
    capabilities = ["update"]
}

# Allow a token to manage its own cubbyhole
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}

# Allow a token to look up the creation time and TTL of a given
# response-wrapping token
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}

# Allow a token to unwrap a response-wrapping token. This is a convenience to
# avoid client token swapping since this is also part of the response wrapping
# policy.
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

# Allow general purpose tools
path "sys/tools/hash" {
    capabilities = ["update"]
}
path "sys/tools/hash/*" {
    capabilities = ["update"]
}

# Allow checking the status of a Control Group request if the user has the
# accessor
path "sys/control-group/request" {
    capabilities = ["update"]
}

# Allow a token to make requests to the Authorization Endpoint for OIDC providers.
path "identity/oidc/provider/+/authorize" {
    capabilities = ["read", "update"]
}
"""


class PolicyError(ValueError):
    """A policy text that does not parse."""


@dataclass(frozen=True)
class PathRule:
    """One ``path "..." { capabilities = [...] }`` stanza."""

    path: str
    capabilities: frozenset[str]


@dataclass(frozen=True)
class Policy:
    """A named policy: its original text and its path rules."""

    name: str
    raw: str
    rules: tuple[PathRule, ...]


def parse_policy(name: str, raw: str) -> Policy:
    """Parse a policy written in HCL or in JSON; raise PolicyError with the reason."""
    stripped = raw.strip()
    tree: Any
    if stripped.startswith("{"):
        try:
            tree = json.loads(stripped)
        except ValueError:
            tree = _HclParser(raw).parse()
    else:
        tree = _HclParser(raw).parse()
    if not isinstance(tree, dict):
        raise PolicyError("policy must be an object")
    rules = [_rule(path, body) for path, body in _path_blocks(tree.get("path"))]
    return Policy(name=name, raw=raw, rules=tuple(rules))


def _path_blocks(value: Any) -> list[tuple[str, Any]]:
    """Flatten the forms a ``path`` key takes in HCL and in HCL-JSON into (path, body) pairs."""
    if value is None:
        return []
    if isinstance(value, list):
        return [pair for item in value for pair in _path_blocks(item)]
    if isinstance(value, dict):
        return list(value.items())
    raise PolicyError("path must be an object")


def _rule(path: str, body: Any) -> PathRule:
    """Turn one path stanza into a rule, validating its capabilities."""
    if isinstance(body, list):
        merged: dict[str, Any] = {}
        for item in body:
            if isinstance(item, dict):
                merged.update(item)
        body = merged
    if not isinstance(body, dict):
        raise PolicyError(f"path {json.dumps(path)}: expected an object")
    caps: set[str] = set()
    legacy = body.get("policy")
    if isinstance(legacy, str):
        if legacy not in _LEGACY_POLICY:
            raise PolicyError(f"path {json.dumps(path)}: invalid policy {json.dumps(legacy)}")
        caps |= _LEGACY_POLICY[legacy]
    declared = body.get("capabilities", [])
    if not isinstance(declared, list):
        raise PolicyError(f"path {json.dumps(path)}: capabilities must be a list")
    for cap in declared:
        if not isinstance(cap, str) or cap.lower() not in CAPABILITIES:
            raise PolicyError(f"path {json.dumps(path)}: invalid capability {json.dumps(cap)}")
        caps.add(cap.lower())
    if "deny" in caps:
        caps = {"deny"}
    return PathRule(path=path.lstrip("/"), capabilities=frozenset(caps))


@dataclass
class _Perms:
    """The merged capabilities of every policy naming one path."""

    caps: set[str] = field(default_factory=set)

    def merge(self, caps: frozenset[str]) -> None:
        """Add a policy's capabilities; ``deny`` on either side leaves only ``deny``."""
        if "deny" in self.caps:
            return
        if "deny" in caps:
            self.caps = {"deny"}
            return
        self.caps |= caps


class ACL:
    """What a token's policies allow, built like Vault's ``NewACL``."""

    def __init__(self, policies: list[Policy], root: bool = False) -> None:
        self.root = root
        self.exact: dict[str, _Perms] = {}
        self.prefix: dict[str, _Perms] = {}
        self.segment: dict[str, _Perms] = {}
        for policy in policies:
            for rule in policy.rules:
                if "{{" in rule.path:
                    # Templated paths need an identity entity; the emulator has none, and Vault
                    # skips templates it cannot resolve.
                    continue
                if "+" in rule.path.split("/"):
                    table, key = self.segment, rule.path
                elif rule.path.endswith("*"):
                    table, key = self.prefix, rule.path[:-1]
                else:
                    table, key = self.exact, rule.path
                table.setdefault(key, _Perms()).merge(rule.capabilities)

    def capabilities_for(self, path: str, operation: str = "list") -> set[str]:
        """The capabilities that apply to a path (list lookups also try the path without ``/``)."""
        if path in self.exact:
            return set(self.exact[path].caps)
        if operation == "list" and path.endswith("/") and path[:-1] in self.exact:
            return set(self.exact[path[:-1]].caps)
        return self._non_exact(path)

    def allows(self, path: str, operation: str) -> tuple[bool, bool]:
        """Return (operation allowed, sudo granted) for a request path and operation."""
        if self.root:
            return True, True
        caps = self.capabilities_for(path, operation)
        if "deny" in caps:
            return False, False
        needed = _OPERATION_CAPABILITY.get(operation)
        return (needed is not None and needed in caps), "sudo" in caps

    def capabilities(self, path: str) -> list[str]:
        """The capability list ``sys/capabilities-self`` reports for a path."""
        if self.root:
            return ["root"]
        caps = self.capabilities_for(path.lstrip("/"))
        if "deny" in caps or not caps:
            return ["deny"]
        return sorted(caps)

    def _non_exact(self, path: str) -> set[str]:
        """Rank the glob and segment-wildcard rules matching a path; return the winner's caps."""
        candidates: list[tuple[tuple[int, bool, int, int, str], set[str]]] = []
        best_prefix = max((p for p in self.prefix if path.startswith(p)), key=len, default=None)
        if best_prefix is not None:
            if not self.segment:
                return set(self.prefix[best_prefix].caps)
            rank = (len(best_prefix), False, 0, len(best_prefix), best_prefix)
            candidates.append((rank, self.prefix[best_prefix].caps))
        parts = path.split("/")
        for full, perms in self.segment.items():
            first = full.index("+")
            current = full[:-1] if full.endswith("*") else full
            is_prefix = full.endswith("*")
            segments = current.split("/")
            if len(parts) < len(segments) or (not is_prefix and len(segments) != len(parts)):
                continue
            wildcards = 0
            matched = True
            for index, acl_part in enumerate(segments):
                if acl_part == "+":
                    wildcards += 1
                elif acl_part == parts[index] or (
                    is_prefix and index == len(segments) - 1 and parts[index].startswith(acl_part)
                ):
                    continue
                else:
                    matched = False
                    break
            if matched:
                # Higher sorts later: later first wildcard, non-glob, fewer '+', longer, larger.
                rank = (first, not is_prefix, -wildcards, len(current), current)
                candidates.append((rank, perms.caps))
        if not candidates:
            return set()
        return set(max(candidates, key=lambda item: item[0])[1])


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
    |(?P<comment>\#[^\n]*|//[^\n]*|/\*.*?\*/)
    |(?P<string>"(?:[^"\\]|\\.)*")
    |(?P<number>-?\d+(?:\.\d+)?)
    |(?P<ident>[A-Za-z_][A-Za-z0-9_\-.]*)
    |(?P<punct>[{}\[\]=,:])
    """,
    re.VERBOSE | re.DOTALL,
)


class _HclParser:
    """A small parser for the HCL subset Vault policies use (blocks, lists, strings, numbers)."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None:
                line = text.count("\n", 0, position) + 1
                raise PolicyError(f"At {line}: illegal character {text[position]!r}")
            kind = match.lastgroup or ""
            if kind not in {"ws", "comment"}:
                self.tokens.append((kind, match.group()))
            position = match.end()
        self.index = 0

    def parse(self) -> dict[str, Any]:
        """Parse the whole text as a body."""
        body = self._body(top=True)
        return body

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise PolicyError("unexpected end of policy")
        self.index += 1
        return token

    def _expect(self, value: str) -> None:
        kind, text = self._take()
        if text != value or kind != "punct":
            raise PolicyError(f"expected {value!r}, got {text!r}")

    def _body(self, top: bool) -> dict[str, Any]:
        result: dict[str, Any] = {}
        while True:
            token = self._peek()
            if token is None:
                if top:
                    return result
                raise PolicyError("unexpected end of policy: missing '}'")
            if token == ("punct", "}"):
                if top:
                    raise PolicyError("unexpected '}'")
                self.index += 1
                return result
            if token == ("punct", ","):
                self.index += 1
                continue
            key = self._key()
            labels: list[str] = []
            while (nxt := self._peek()) is not None and nxt[0] in {"string", "ident"}:
                labels.append(self._key())
            nxt = self._take()
            if nxt in {("punct", "="), ("punct", ":")}:
                if labels:
                    raise PolicyError(f"unexpected label before '=' for {key!r}")
                result[key] = self._value()
            elif nxt == ("punct", "{"):
                value: Any = self._body(top=False)
                for label in reversed(labels):
                    value = {label: value}
                _merge_into(result, key, value)
            else:
                raise PolicyError(f"unexpected {nxt[1]!r} after {key!r}")

    def _key(self) -> str:
        kind, text = self._take()
        if kind == "string":
            return str(json.loads(text))
        if kind == "ident":
            return text
        raise PolicyError(f"expected a key, got {text!r}")

    def _value(self) -> Any:
        kind, text = self._take()
        if kind == "string":
            return json.loads(text)
        if kind == "number":
            return float(text) if "." in text else int(text)
        if kind == "ident":
            if text in {"true", "false"}:
                return text == "true"
            raise PolicyError(f"unexpected identifier {text!r}")
        if (kind, text) == ("punct", "["):
            items: list[Any] = []
            while True:
                token = self._peek()
                if token == ("punct", "]"):
                    self.index += 1
                    return items
                if token == ("punct", ","):
                    self.index += 1
                    continue
                items.append(self._value())
        if (kind, text) == ("punct", "{"):
            return self._body(top=False)
        raise PolicyError(f"unexpected {text!r}")


def _merge_into(target: dict[str, Any], key: str, value: Any) -> None:
    """Merge repeated labelled blocks (``path "a" {}`` then ``path "b" {}``) under one key."""
    existing = target.get(key)
    if isinstance(existing, dict) and isinstance(value, dict):
        for inner_key, inner_value in value.items():
            _merge_into(existing, inner_key, inner_value)
    else:
        target[key] = value
