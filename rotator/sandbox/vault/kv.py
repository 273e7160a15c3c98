"""The KV version 2 secrets engine (hashicorp/vault-plugin-secrets-kv path_*.go)."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from rotator.sandbox.vault.backends import KvKey, KvStore, KvVersion
from rotator.sandbox.vault.fields import get_bool, get_int, get_int_list, get_map, parse_duration
from rotator.sandbox.vault.protocol import (
    JSONDict,
    Reply,
    VaultError,
    after,
    go_duration,
    go_quote,
    go_time,
    no_content,
)
from rotator.sandbox.vault.routing import Call, Route, route

DEFAULT_MAX_VERSIONS = 10
_MAX_CUSTOM_KEYS = 64
_MAX_CUSTOM_KEY_LENGTH = 128
_MAX_CUSTOM_VALUE_LENGTH = 512


def _store(call: Call) -> KvStore:
    assert call.mount is not None
    store: KvStore = call.mount.backend
    return store


def _key(call: Call) -> str:
    return call.param("path")


def _time(moment: datetime | None) -> str:
    """A timestamp as the plugin prints it: RFC 3339 with nanoseconds, or "" when unset."""
    return go_time(moment) if moment is not None else ""


def _deleted(version: KvVersion, now: datetime) -> bool:
    """Whether a version reads as deleted: its deletion_time has come.

    Vault tests ``deletion_time.Before(now)``; with a real clock time has always moved on by
    the next request, but with a frozen test clock a soft delete would never take effect, so
    the deadline itself counts as passed (the same rule as token and secret-id expiry here).
    """
    return version.deletion_time is not None and version.deletion_time <= now


def _version_metadata(key: KvKey, number: int, version: KvVersion) -> JSONDict:
    return {
        "version": number,
        "created_time": _time(version.created_time),
        "deletion_time": _time(version.deletion_time),
        "destroyed": version.destroyed,
        "custom_metadata": dict(key.custom_metadata) if key.custom_metadata is not None else None,
    }


def _deletion_time(store: KvStore, key: KvKey, start: datetime) -> datetime | None:
    """When a version written (or undeleted) at ``start`` gets deleted: the smaller non-zero of
    the engine's and the key's delete_version_after, unless the engine disabled it."""
    if store.delete_version_after == -1:
        return None
    mount_value = store.delete_version_after or 0
    meta_value = key.delete_version_after
    if mount_value == 0 and meta_value == 0:
        return None
    chosen = meta_value
    if (mount_value != 0 and mount_value < chosen) or chosen == 0:
        chosen = mount_value
    return after(start, chosen)


def _check_cas(call: Call, store: KvStore, key: KvKey) -> None:
    """The check-and-set rules of ``validateCheckAndSetOption``."""
    options = get_map(call.data, "options") or {}
    if "cas" in options:
        raw = options["cas"]
        try:
            if isinstance(raw, bool) or raw is None:
                raise ValueError(raw)
            cas = int(raw) if not isinstance(raw, str) else int(raw.strip())
        except (TypeError, ValueError) as exc:
            raise VaultError.respond(400, "error parsing check-and-set parameter") from exc
        if cas != key.current_version:
            raise VaultError.respond(
                400, "check-and-set parameter did not match the current version"
            )
    elif store.cas_required or key.cas_required:
        raise VaultError.respond(400, "check-and-set parameter required for this call")


def _add_version(store: KvStore, key: KvKey, version: KvVersion) -> None:
    """``KeyMetadata.AddVersion``: append, then prune past the larger of the two max_versions."""
    key.current_version += 1
    key.versions[key.current_version] = version
    key.updated_time = version.created_time
    if key.created_time is None:
        key.created_time = version.created_time
    limit = max(key.max_versions, store.max_versions) or DEFAULT_MAX_VERSIONS
    if key.current_version - key.oldest_version >= limit:
        to_delete = key.current_version - limit
        for number in range(key.oldest_version, to_delete + 1):
            key.versions.pop(number, None)
        key.oldest_version = to_delete + 1


def _write_response(key: KvKey) -> Reply:
    version = key.versions[key.current_version]
    return Reply(data=_version_metadata(key, key.current_version, version) | {})


# --------------------------------------------------------------------------- config


def config_read(call: Call) -> Reply:
    """GET config: the engine-wide max_versions, cas_required, delete_version_after."""
    store = _store(call)
    dva = store.delete_version_after
    return Reply(
        data={
            "cas_required": store.cas_required,
            "delete_version_after": go_duration(0 if dva is None else dva),
            "max_versions": store.max_versions,
        }
    )


def config_write(call: Call) -> Reply:
    """POST config (204)."""
    store = _store(call)
    if "max_versions" in call.data:
        store.max_versions = get_int(call.data, "max_versions")
    if "cas_required" in call.data:
        store.cas_required = get_bool(call.data, "cas_required")
    if "delete_version_after" in call.data:
        dva = parse_duration(call.data["delete_version_after"], "delete_version_after")
        store.delete_version_after = -1 if dva < 0 else (dva or None)
    return no_content()


# --------------------------------------------------------------------------- data


def _exists(call: Call) -> bool:
    return _key(call) in _store(call).keys


def data_read(call: Call) -> Reply:
    """GET data/:path[?version=N]: the data, or 404 (full envelope when deleted or destroyed)."""
    key = _store(call).keys.get(_key(call))
    if key is None:
        raise VaultError.not_found()
    number = get_int(call.data, "version")
    if number <= 0:
        number = key.current_version
    version = key.versions.get(number)
    if version is None:
        raise VaultError.not_found()
    body: JSONDict = {"data": None, "metadata": _version_metadata(key, number, version)}
    if _deleted(version, call.now) or version.destroyed:
        return Reply(data=body, status=404)
    body["data"] = copy.deepcopy(version.data)
    return Reply(data=body)


def data_write(call: Call) -> Reply:
    """POST data/:path: a new version, honouring CAS, max_versions and delete_version_after."""
    store = _store(call)
    if call.data.get("data") is None:
        raise VaultError.respond(400, "no data provided")
    data = get_map(call.data, "data")
    name = _key(call)
    key = store.keys.get(name) or KvKey()
    _check_cas(call, store, key)
    version = KvVersion(data=copy.deepcopy(data), created_time=call.now)
    version.deletion_time = _deletion_time(store, key, call.now)
    _add_version(store, key, version)
    store.keys[name] = key
    return _write_response(key)


def data_patch(call: Call) -> Reply:
    """PATCH data/:path (JSON merge patch): a new version merged onto the current one."""
    store = _store(call)
    if call.data.get("data") is None:
        raise VaultError.respond(400, "no data provided")
    patch = get_map(call.data, "data") or {}
    key = store.keys.get(_key(call))
    if key is None:
        raise VaultError.not_found()
    _check_cas(call, store, key)
    current = key.versions.get(key.current_version)
    if current is None:
        raise VaultError.not_found()
    if _deleted(current, call.now) or current.destroyed:
        return Reply(data=_version_metadata(key, key.current_version, current), status=404)
    merged = _merge_patch(copy.deepcopy(current.data or {}), patch)
    version = KvVersion(data=merged, created_time=call.now)
    version.deletion_time = _deletion_time(store, key, call.now)
    _add_version(store, key, version)
    return _write_response(key)


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for name, value in patch.items():
        if value is None:
            target.pop(name, None)
        else:
            target[name] = _merge_patch(target.get(name), value)
    return target


def data_delete(call: Call) -> Reply:
    """DELETE data/:path: soft-delete the latest version (204)."""
    key = _store(call).keys.get(_key(call))
    if key is not None:
        latest = key.versions.get(key.current_version)
        if latest is not None and not latest.destroyed and not _deleted(latest, call.now):
            latest.deletion_time = call.now
    return no_content()


# --------------------------------------------------------------------------- metadata


def metadata_read(call: Call) -> Reply:
    """GET metadata/:path: every version's timestamps and the key's settings."""
    key = _store(call).keys.get(_key(call))
    if key is None:
        raise VaultError.not_found()
    versions = {
        str(number): {
            "created_time": _time(version.created_time),
            "deletion_time": _time(version.deletion_time),
            "destroyed": version.destroyed,
        }
        for number, version in sorted(key.versions.items())
    }
    return Reply(
        data={
            "versions": versions,
            "current_version": key.current_version,
            "oldest_version": key.oldest_version,
            "created_time": _time(key.created_time),
            "updated_time": _time(key.updated_time),
            "max_versions": key.max_versions,
            "cas_required": key.cas_required,
            "delete_version_after": go_duration(key.delete_version_after),
            "custom_metadata": (
                dict(key.custom_metadata) if key.custom_metadata is not None else None
            ),
        }
    )


def _custom_metadata(raw: JSONDict) -> dict[str, str]:
    """Validate custom_metadata the way ``validateCustomMetadata`` does."""
    prefix = "custom_metadata validation failed"
    values = {
        str(k): "" if v is None else (str(v).lower() if isinstance(v, bool) else str(v))
        for k, v in raw.items()
    }
    if len(values) > _MAX_CUSTOM_KEYS:
        raise VaultError.respond(
            400,
            f"1 error occurred:\n\t* {prefix}: payload must contain at most {_MAX_CUSTOM_KEYS} "
            f"keys, provided {len(values)}\n\n",
        )
    problems = []
    for name, value in values.items():
        if not 0 < len(name) <= _MAX_CUSTOM_KEY_LENGTH:
            problems.append(
                f"{prefix}: length of key {go_quote(name)} is {len(name)} but must be "
                f"0 < len(key) <= {_MAX_CUSTOM_KEY_LENGTH}"
            )
        if not 0 < len(value) <= _MAX_CUSTOM_VALUE_LENGTH:
            problems.append(
                f"{prefix}: length of value for key {go_quote(name)} is {len(value)} but must be "
                f"0 < len(value) <= {_MAX_CUSTOM_VALUE_LENGTH}"
            )
    if problems:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        listed = "".join(f"\t* {problem}\n" for problem in problems)
        raise VaultError.respond(400, f"{count} {noun} occurred:\n{listed}\n")
    return values


def metadata_write(call: Call) -> Reply:
    """POST metadata/:path: key settings and custom_metadata (204; creates the key if needed)."""
    store = _store(call)
    name = _key(call)
    if not name:
        raise VaultError.respond(400, "missing path")
    fields = ("max_versions", "cas_required", "delete_version_after", "custom_metadata")
    if not any(field in call.data for field in fields):
        return no_content()
    custom = None
    if "custom_metadata" in call.data:
        custom = _custom_metadata(get_map(call.data, "custom_metadata") or {})
    warnings = []
    if (
        "cas_required" in call.data
        and store.cas_required
        and not get_bool(call.data, "cas_required")
    ):
        warnings.append(
            '"cas_required" set to false, but is mandated by backend config. '
            "This value will be ignored."
        )
    key = store.keys.get(name)
    if key is None:
        key = KvKey(created_time=call.now, updated_time=call.now)
    if "max_versions" in call.data:
        key.max_versions = get_int(call.data, "max_versions")
    if "cas_required" in call.data:
        key.cas_required = get_bool(call.data, "cas_required")
    if "delete_version_after" in call.data:
        key.delete_version_after = parse_duration(
            call.data["delete_version_after"], "delete_version_after"
        )
    if custom is not None:
        key.custom_metadata = custom
    store.keys[name] = key
    return no_content(warnings)


def metadata_delete(call: Call) -> Reply:
    """DELETE metadata/:path: the key and all its versions, permanently (204)."""
    _store(call).keys.pop(_key(call), None)
    return no_content()


def metadata_list(call: Call) -> Reply:
    """LIST metadata/:prefix: the next path segment of every key below it; empty is a 404."""
    prefix = _key(call)
    children = set()
    for name in _store(call).keys:
        if name.startswith(prefix) and name != prefix:
            rest = name[len(prefix) :]
            head, slash, _ = rest.partition("/")
            children.add(head + slash)
    if not children:
        raise VaultError.not_found()
    return Reply(data={"keys": sorted(children)})


# --------------------------------------------------------------------------- versions


def _versions(call: Call, message: str) -> list[int]:
    numbers = get_int_list(call.data, "versions")
    if not numbers:
        raise VaultError.respond(400, message)
    return numbers


def delete_versions(call: Call) -> Reply:
    """POST delete/:path {versions}: soft-delete those versions (204)."""
    numbers = _versions(call, "No version number provided")
    key = _store(call).keys.get(_key(call))
    if key is not None:
        for number in numbers:
            version = key.versions.get(number)
            if version is None or version.destroyed or _deleted(version, call.now):
                continue
            version.deletion_time = call.now
    return no_content()


def undelete_versions(call: Call) -> Reply:
    """POST undelete/:path {versions}: restore soft-deleted versions (204)."""
    numbers = _versions(call, "No version number provided")
    store = _store(call)
    key = store.keys.get(_key(call))
    if key is not None:
        for number in numbers:
            version = key.versions.get(number)
            if version is None or version.destroyed:
                continue
            version.deletion_time = _deletion_time(store, key, call.now)
    return no_content()


def destroy_versions(call: Call) -> Reply:
    """POST destroy/:path {versions}: erase those versions' data for good (204)."""
    numbers = _versions(call, "no version number provided")
    key = _store(call).keys.get(_key(call))
    if key is not None:
        for number in numbers:
            version = key.versions.get(number)
            if version is None or version.destroyed:
                continue
            version.destroyed = True
            version.data = None
    return no_content()


def invalid_path(call: Call) -> Reply:
    """Anything else under the mount: 404 with the plugin's hint (``pathInvalid``)."""
    if call.relative.rstrip("/") in {"metadata", "data", "delete", "undelete", "destroy"}:
        warning = "Non-listing operations on the root of a K/V v2 mount are not supported."
    else:
        verb = {
            "create": "put",
            "update": "put",
            "patch": "patch",
            "read": "get",
            "list": "list",
            "delete": "delete",
        }.get(call.operation, "")
        warning = (
            "Invalid path for a versioned K/V secrets engine. See the API docs for the "
            "appropriate API endpoints to use. If using the Vault CLI, use "
            f"'vault kv {verb}' for this operation."
        )
    return Reply(data=None, warnings=[warning], status=404)


_INVALID = {op: invalid_path for op in ("read", "update", "create", "delete", "list", "patch")}

ROUTES: list[Route] = [
    route(r"config", {"read": config_read, "update": config_write}),
    route(
        r"data/(?P<path>.*[^/])",
        {
            "read": data_read,
            "create": data_write,
            "update": data_write,
            "delete": data_delete,
            "patch": data_patch,
        },
        _exists,
    ),
    route(
        r"metadata/(?P<path>.*)",
        {
            "read": metadata_read,
            "create": metadata_write,
            "update": metadata_write,
            "delete": metadata_delete,
            "list": metadata_list,
        },
        _exists,
    ),
    route(r"delete/(?P<path>.*)", {"update": delete_versions}),
    route(r"undelete/(?P<path>.*)", {"update": undelete_versions}),
    route(r"destroy/(?P<path>.*)", {"update": destroy_versions}),
    route(r".*", _INVALID),
]
