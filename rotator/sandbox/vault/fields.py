"""Request fields read the way Vault's framework reads them: weak typing, durations, lists."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from typing import Any

from rotator.sandbox.vault.protocol import JSONDict, VaultError, go_quote

_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d)")


def parse_duration(value: Any, field: str) -> int:
    """Parse a duration like Vault's ``parseutil.ParseDurationSecond``; return whole seconds."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise field_error(value, field, "cannot parse a boolean as a duration")
    if isinstance(value, int | float):
        return int(value)
    if not isinstance(value, str):
        raise field_error(value, field, "unsupported type")
    text = value.strip()
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    total = 0.0
    position = 0
    for match in _DURATION_PART.finditer(body):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(body) or not body:
        raise field_error(value, field, f"time: invalid duration {go_quote(text)}")
    return sign * int(total)


def field_error(value: Any, field: str, reason: str) -> VaultError:
    """The 400 Vault's framework answers when a request field does not convert to its type."""
    return VaultError.respond(
        400, f"error converting input {value} for field {go_quote(field)}: {reason}"
    )


def get_str(data: JSONDict, field: str, default: str = "") -> str:
    """A string field (numbers are accepted and converted, as mapstructure's weak decoding does)."""
    value = data.get(field)
    if value is None:
        return default
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise field_error(value, field, "expected a string")


def get_int(data: JSONDict, field: str, default: int = 0) -> int:
    """An integer field; numeric strings are accepted like Vault's weak decoding."""
    value = data.get(field)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
        return int(value)
    raise field_error(value, field, "cannot parse as an integer")


def get_bool(data: JSONDict, field: str, default: bool = False) -> bool:
    """A boolean field; "true"/"false"/"1"/"0" strings are accepted like Vault's parser."""
    value = data.get(field)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str) and value.strip().lower() in {"true", "t", "1"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "f", "0"}:
        return False
    raise field_error(value, field, "cannot parse as a boolean")


def get_str_list(data: JSONDict, field: str) -> list[str] | None:
    """A comma-separated string or a list of strings (Vault's ``TypeCommaStringSlice``)."""
    value = data.get(field)
    if value is None:
        return None
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return [str(item).strip() for item in value if str(item).strip()]
    raise field_error(value, field, "expected a list or a comma-separated string")


def get_int_list(data: JSONDict, field: str) -> list[int]:
    """A list of integers or a comma-separated string of them (``TypeCommaIntSlice``)."""
    value = data.get(field)
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        items = [items]
    result = []
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        result.append(get_int({field: item}, field))
    return result


def get_map(data: JSONDict, field: str) -> JSONDict | None:
    """A JSON object field, or None when absent."""
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise field_error(value, field, "expected a map")
    return value


def sanitize_policies(policies: list[str], add_default: bool) -> list[str]:
    """Vault's ``policyutil.SanitizePolicies``: root alone wins; else dedupe, lowercase, sort."""
    if any(policy.strip().lower() == "root" for policy in policies):
        return ["root"]
    names = list(policies) + (["default"] if add_default else [])
    return sorted({name.strip().lower() for name in names if name.strip()})


def ip_in_cidrs(address: str, cidrs: list[str]) -> bool:
    """Whether an IP address lies in any of the CIDR blocks (a bare address means /32)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for block in cidrs:
        try:
            if ip in ipaddress.ip_network(block, strict=False):
                return True
        except ValueError:
            continue
    return False


def valid_cidrs(cidrs: list[str]) -> bool:
    """Whether every entry parses as an IP network or address."""
    try:
        for block in cidrs:
            ipaddress.ip_network(block, strict=False)
    except ValueError:
        return False
    return True


def parse_key_values(text: str) -> dict[str, str]:
    """Vault's ``strutil.ParseArbitraryKeyValues``: a JSON object (maybe base64), or ``k=v,...``."""
    text = text.strip()
    if not text:
        return {}
    candidate = text
    try:
        candidate = base64.b64decode(text, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        candidate = text
    try:
        parsed = json.loads(candidate)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        if not all(isinstance(value, str) for value in parsed.values()):
            raise ValueError("json: cannot unmarshal non-string value into Go value of type string")
        return {str(key): value for key, value in parsed.items()}
    result: dict[str, str] = {}
    for pair in text.split(","):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"invalid key/value pair {go_quote(pair)}")
        result[key.strip()] = value.strip()
    return result
