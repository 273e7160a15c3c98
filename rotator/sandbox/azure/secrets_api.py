"""The secrets REST API (Key Vault 7.x): routes, request bodies, response bundles, paging."""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from rotator.sandbox.azure.protocol import JSONDict, KeyVaultError, bad_parameter
from rotator.sandbox.azure.store import (
    Attributes,
    DeletedSecret,
    Secret,
    SecretStore,
    SecretVersion,
    check_name,
)

T = TypeVar("T")

# Service limits (about-secrets.md): 25 KB values, 255-character content types, 15 tags of
# up to 512-character names and values; list pages of 1-25 items (the REST spec's maxresults).
MAX_VALUE_BYTES = 25 * 1024
MAX_CONTENT_TYPE = 255
MAX_TAGS = 15
MAX_TAG_LENGTH = 512
MAX_PAGE = 25


@dataclass
class Call:
    """One authenticated request to the vault."""

    method: str
    path: str
    groups: dict[str, str]
    params: dict[str, str]
    body: bytes
    base_url: str
    api_version: str
    #: The emulator clock: whole Unix seconds (what bundles show) and the exact instant.
    now: int
    instant: float
    store: SecretStore


@dataclass
class Reply:
    """A successful answer; ``body`` None means 204 without content."""

    status: int
    body: JSONDict | None


Handler = Callable[[Call], Reply]


@dataclass(frozen=True)
class Route:
    """A path pattern (over the raw, still percent-encoded path) and its verbs."""

    pattern: re.Pattern[str]
    operations: dict[str, Handler]


# -- request bodies


def _json_body(call: Call) -> JSONDict:
    if not call.body.strip():
        raise bad_parameter("The request body is required.")
    try:
        parsed = json.loads(call.body)
    except ValueError:
        raise bad_parameter("The request body is not valid JSON.") from None
    if not isinstance(parsed, dict):
        raise bad_parameter("The request body must be a JSON object.")
    return parsed


def _optional_int(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_parameter(f"Invalid value for '{field}': expected seconds since 1970-01-01.")
    return int(value)


def _attributes(body: JSONDict) -> Attributes:
    raw = body.get("attributes")
    if raw is None:
        return Attributes()
    if not isinstance(raw, dict):
        raise bad_parameter("Invalid value for 'attributes': expected an object.")
    enabled = raw.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise bad_parameter("Invalid value for 'enabled': expected a boolean.")
    return Attributes(
        enabled=enabled,
        nbf=_optional_int(raw.get("nbf"), "nbf"),
        exp=_optional_int(raw.get("exp"), "exp"),
    )


def _content_type(body: JSONDict) -> str | None:
    value = body.get("contentType")
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_parameter("Invalid value for 'contentType': expected a string.")
    if len(value) > MAX_CONTENT_TYPE:
        raise bad_parameter(f"'contentType' is longer than {MAX_CONTENT_TYPE} characters.")
    return value


def _tags(body: JSONDict) -> dict[str, str] | None:
    value = body.get("tags")
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise bad_parameter("Invalid value for 'tags': expected an object of strings.")
    if len(value) > MAX_TAGS:
        raise bad_parameter(f"A secret can have at most {MAX_TAGS} tags.")
    if any(len(k) > MAX_TAG_LENGTH or len(v) > MAX_TAG_LENGTH for k, v in value.items()):
        raise bad_parameter(f"Tag names and values are limited to {MAX_TAG_LENGTH} characters.")
    return dict(value)


# -- response bundles


def _object_id(call: Call, collection: str, name: str, version: str | None = None) -> str:
    suffix = f"/{version}" if version else ""
    return f"{call.base_url}/{collection}/{name}{suffix}"


def _attributes_json(store: SecretStore, version: SecretVersion) -> JSONDict:
    attributes: JSONDict = {"enabled": version.enabled}
    if version.nbf is not None:
        attributes["nbf"] = version.nbf
    if version.exp is not None:
        attributes["exp"] = version.exp
    attributes["created"] = version.created
    attributes["updated"] = version.updated
    attributes["recoveryLevel"] = store.recovery_level
    if store.soft_delete:
        attributes["recoverableDays"] = store.recoverable_days
    return attributes


def _properties(
    call: Call, secret: Secret, version: SecretVersion, *, with_version: bool
) -> JSONDict:
    body: JSONDict = {
        "id": _object_id(call, "secrets", secret.name, version.version if with_version else None),
        "attributes": _attributes_json(call.store, version),
    }
    if version.content_type is not None:
        body["contentType"] = version.content_type
    if version.tags is not None:
        body["tags"] = dict(version.tags)
    return body


def _bundle(call: Call, secret: Secret, version: SecretVersion, *, value: bool) -> JSONDict:
    """A SecretBundle: the versioned id, attributes, tags, content type, and maybe the value."""
    body = _properties(call, secret, version, with_version=True)
    return {"value": version.value, **body} if value else body


def _deleted_fields(call: Call, deleted: DeletedSecret) -> JSONDict:
    return {
        "recoveryId": _object_id(call, "deletedsecrets", deleted.secret.name),
        "deletedDate": deleted.deleted_date,
        "scheduledPurgeDate": deleted.scheduled_purge_date,
    }


def _deleted_bundle(call: Call, deleted: DeletedSecret) -> JSONDict:
    """A DeletedSecretBundle: the latest version's bundle (no value) plus the recovery fields."""
    secret = deleted.secret
    return {
        **_deleted_fields(call, deleted),
        **_bundle(call, secret, secret.current(), value=False),
    }


# -- paging


def _skiptoken(marker: str) -> str:
    payload = json.dumps({"NextMarker": marker, "TargetLocation": 0}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode()


def _marker(token: str) -> str:
    try:
        padded = token + "=" * (-len(token) % 4)
        marker = json.loads(base64.urlsafe_b64decode(padded))["NextMarker"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise bad_parameter("The $skiptoken is not valid.") from None
    if not isinstance(marker, str):
        raise bad_parameter("The $skiptoken is not valid.")
    return marker


def _page(
    call: Call, items: list[T], key: Callable[[T], str], render: Callable[[T], JSONDict]
) -> Reply:
    """One page of ``items`` (already in order) and a ``nextLink`` carrying a skip token."""
    given = call.params.get("maxresults")
    size = MAX_PAGE
    if given is not None:
        try:
            size = int(given)
        except ValueError:
            raise bad_parameter(f"Invalid value for maxresults: {given}.") from None
        if not 1 <= size <= MAX_PAGE:
            raise bad_parameter(f"maxresults must be between 1 and {MAX_PAGE}.")
    token = call.params.get("$skiptoken")
    remaining = items
    if token:
        marker = _marker(token)
        remaining = [item for item in items if key(item) > marker]
    page = remaining[:size]
    next_link: str | None = None
    if len(remaining) > size:
        query = {"api-version": call.api_version, "$skiptoken": _skiptoken(key(page[-1]))}
        if given is not None:
            query["maxresults"] = str(size)
        next_link = f"{call.base_url}{call.path}?{urllib.parse.urlencode(query, safe='$')}"
    return Reply(200, {"value": [render(item) for item in page], "nextLink": next_link})


# -- operations


def _name(call: Call) -> str:
    name = call.groups["name"]
    check_name(name)
    return name


def _version(call: Call) -> str | None:
    return call.groups.get("version") or None


def set_secret(call: Call) -> Reply:
    """PUT /secrets/{name}: a new version, current from now on."""
    name = _name(call)
    body = _json_body(call)
    value = body.get("value")
    if not isinstance(value, str):
        raise bad_parameter("The secret value ('value') is required and must be a string.")
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise bad_parameter(f"The secret value is larger than {MAX_VALUE_BYTES} bytes.")
    secret, version = call.store.set(
        name, value, _content_type(body), _tags(body), _attributes(body), call.now
    )
    return Reply(200, _bundle(call, secret, version, value=True))


def get_secret(call: Call) -> Reply:
    """GET /secrets/{name}[/] (latest) or /secrets/{name}/{version}."""
    secret, version = call.store.get(_name(call), _version(call), for_value=True)
    return Reply(200, _bundle(call, secret, version, value=True))


def update_secret(call: Call) -> Reply:
    """PATCH /secrets/{name}/{version} (or the latest): attributes, tags, content type."""
    name = _name(call)
    body = _json_body(call)
    secret, version = call.store.update(
        name, _version(call), _content_type(body), _tags(body), _attributes(body), call.now
    )
    return Reply(200, _bundle(call, secret, version, value=False))


def delete_secret(call: Call) -> Reply:
    """DELETE /secrets/{name}: all versions; recoverable when soft delete is on."""
    secret, deleted = call.store.delete(_name(call), call.now, call.instant)
    if deleted is None:
        return Reply(200, _bundle(call, secret, secret.current(), value=False))
    return Reply(200, _deleted_bundle(call, deleted))


def list_secrets(call: Call) -> Reply:
    """GET /secrets: the latest version of each secret, without values, ids without version."""
    return _page(
        call,
        call.store.list_active(),
        lambda s: s.name.upper(),
        lambda s: _properties(call, s, s.current(), with_version=False),
    )


def list_versions(call: Call) -> Reply:
    """GET /secrets/{name}/versions: every version, without values."""
    secret, versions = call.store.list_versions(_name(call))
    return _page(
        call,
        versions,
        lambda v: v.version,
        lambda v: _properties(call, secret, v, with_version=True),
    )


def get_deleted(call: Call) -> Reply:
    """GET /deletedsecrets/{name}."""
    return Reply(200, _deleted_bundle(call, call.store.get_deleted(_name(call))))


def list_deleted(call: Call) -> Reply:
    """GET /deletedsecrets: the deleted secrets' latest versions, ids without version."""

    def render(deleted: DeletedSecret) -> JSONDict:
        secret = deleted.secret
        return {
            **_deleted_fields(call, deleted),
            **_properties(call, secret, secret.current(), with_version=False),
        }

    return _page(call, call.store.list_deleted(), lambda d: d.secret.name.upper(), render)


def purge_deleted(call: Call) -> Reply:
    """DELETE /deletedsecrets/{name}: gone for good; 204 without a body."""
    call.store.purge(_name(call))
    return Reply(204, None)


def recover_deleted(call: Call) -> Reply:
    """POST /deletedsecrets/{name}/recover: back with every version; the latest's bundle."""
    secret = call.store.recover(_name(call), call.instant)
    return Reply(200, _bundle(call, secret, secret.current(), value=False))


_SEGMENT = r"(?P<name>[^/]+)"
ROUTES: list[Route] = [
    Route(re.compile(r"/secrets/?"), {"GET": list_secrets}),
    Route(re.compile(rf"/secrets/{_SEGMENT}/versions/?"), {"GET": list_versions}),
    Route(
        re.compile(rf"/secrets/{_SEGMENT}/?"),
        {"GET": get_secret, "PUT": set_secret, "PATCH": update_secret, "DELETE": delete_secret},
    ),
    Route(
        re.compile(rf"/secrets/{_SEGMENT}/(?P<version>[^/]+)/?"),
        {"GET": get_secret, "PATCH": update_secret},
    ),
    Route(re.compile(r"/deletedsecrets/?"), {"GET": list_deleted}),
    Route(
        re.compile(rf"/deletedsecrets/{_SEGMENT}/?"), {"GET": get_deleted, "DELETE": purge_deleted}
    ),
    Route(re.compile(rf"/deletedsecrets/{_SEGMENT}/recover/?"), {"POST": recover_deleted}),
]


def match(path: str) -> tuple[Route, dict[str, str]] | None:
    """The route whose pattern matches the raw path, and its groups percent-decoded."""
    for route in ROUTES:
        found = route.pattern.fullmatch(path)
        if found is not None:
            groups = {
                key: urllib.parse.unquote(value)
                for key, value in found.groupdict().items()
                if value is not None
            }
            return route, groups
    return None


def route_error(method: str, path: str, route: Route | None) -> KeyVaultError:
    """404 for a path no route serves, 405 for a verb the route does not have."""
    if route is None:
        return KeyVaultError(
            404, "NotFound", f"No HTTP resource was found that matches the request URI '{path}'."
        )
    return KeyVaultError(
        405,
        "MethodNotAllowed",
        f"The requested resource does not support http method '{method}'.",
        headers={"Allow": ", ".join(sorted(route.operations))},
    )
