"""Store ``vault-kv``: a key of a Vault KV v2 secret, with pending values kept aside.

Consumers read the *latest* version of a KV v2 path, so a pending value must
never become a version of that path before it is verified. The store keeps
it at a separate staging path instead:

- ``put_pending`` writes ``{staging_prefix}/{path}/{rotation_id}`` (in
  ``staging_mount``) with ``cas=0``, so it is create-only. Its data is the
  full data map ``promote`` will write: the current data of ``path``, other
  fields included, with ``key`` replaced by the new value. The version that
  map was composed from (the *base*) is recorded in the staging path's
  ``custom_metadata``; the id returned is the version ``promote`` will
  create, ``base + 1``.
- ``promote`` writes that map to ``path`` with check-and-set on the base
  version, so a concurrent writer makes it fail with ``ConflictError``
  (their value stays; nothing is overwritten). It then labels ``path`` in
  its ``custom_metadata`` (``rotator_current_version``,
  ``rotator_previous_version``, ``rotator_rotation_id``; other custom
  metadata and the path's ``max_versions``, ``cas_required`` and
  ``delete_version_after`` are carried over) and deletes the staging path.
- ``retire`` soft-deletes the old version (an operator can still undelete
  it), or destroys it with ``destroy_on_retire``, and drops the
  ``rotator_previous_version`` label. Used as a replica (a target), the
  path is retired the same way at revoke: the version the rotation's write
  replaced, which the labels name (``replaced_version``).

``check`` (the ``rotator check`` preflight) asks Vault, with
``sys/capabilities-self``, for the token's capabilities on every path a
rotation writes, and compares them with what the store needs there (the
policy in ``docs/providers/vault.md``); it writes nothing.

A string value is stored as a string under ``key``; a mapping value as a
nested JSON object. Reading back, a string is a string, an object whose
values are all strings is a mapping, and anything else is its JSON text.

The staging data holds the other fields of the secret too: give the staging
prefix the same ACL protection as the secret itself (see the docs' policy).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from pydantic import Field

from providers.vault.client import QUOTAS, session
from providers.vault.errors import answer_body, nothing_there
from rotator.adapters import (
    Permission,
    ProviderConfig,
    SecretValue,
    Store,
    Unchecked,
    Version,
    rates,
)
from rotator.errors import ConflictError, PermanentError, PermissionDeniedError

PROVIDER = "vault-kv"
#: custom_metadata keys rotator writes.
BASE_VERSION = "rotator_base_version"
ROTATION_ID = "rotator_rotation_id"
SECRET_NAME = "rotator_secret"  # noqa: S105 (a metadata key)
CURRENT_VERSION = "rotator_current_version"
PREVIOUS_VERSION = "rotator_previous_version"

_PATH = r"^[^/\s](?:[^\s]*[^/\s])?$"

#: The step ``sys/capabilities-self`` serves (``rotator check`` only; Vault's
#: default policy grants it too).
CHECK_STEP = "check: rotator check asks the token's capabilities"

#: The rotation id a staging path is asked about in ``check``: any id stands
#: for every other (the engine's are 32 hex digits), shown as ``<rotation-id>``.
SAMPLE_ROTATION_ID = "0" * 32

log = logging.getLogger(__name__)

T = TypeVar("T")


class VaultKvConfig(ProviderConfig):
    """Policy fields of the ``vault-kv`` store."""

    mount: str = Field(default="secret", min_length=1, pattern=_PATH)
    path: str = Field(min_length=1, pattern=_PATH)
    key: str = Field(default="value", min_length=1)
    #: Mount of the staging paths (default: ``mount``).
    staging_mount: str | None = Field(default=None, min_length=1, pattern=_PATH)
    staging_prefix: str = Field(default=".rotator-pending", min_length=1, pattern=_PATH)
    #: Destroy retired versions instead of soft-deleting them.
    destroy_on_retire: bool = False


@dataclass(frozen=True)
class Read:
    """One read of a KV v2 path's latest version."""

    #: The data map, or ``None`` if the path does not exist or its latest
    #: version is deleted or destroyed.
    data: dict[str, Any] | None
    #: The version number read (0: the path does not exist).
    version: int
    created_time: str = ""


@dataclass(frozen=True)
class Metadata:
    """A KV v2 path's metadata, as far as the store uses it."""

    current_version: int
    max_versions: int
    cas_required: bool
    delete_version_after: str
    custom: dict[str, str] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)


def encode(value: SecretValue) -> Any:
    """Return what goes into the data map for ``value`` (a string or a dict)."""
    plain = value.reveal()
    return dict(plain) if isinstance(plain, Mapping) else plain


def decode(raw: Any) -> SecretValue | None:
    """Wrap one field of a data map; ``None`` if the field is absent."""
    if raw is None:
        return None
    if isinstance(raw, str):
        return SecretValue(raw)
    if isinstance(raw, Mapping) and all(isinstance(v, str) for v in raw.values()):
        return SecretValue({str(k): v for k, v in raw.items()})
    return SecretValue(json.dumps(raw, sort_keys=True))


def parse_time(text: Any) -> datetime | None:
    """Parse Vault's RFC 3339 time (nanoseconds, ``Z``); ``None`` for ``""`` or junk."""
    if not isinstance(text, str) or not text:
        return None
    raw = text.replace("Z", "+00:00")
    head, dot, rest = raw.partition(".")
    if dot:
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        zone = rest[len(digits) :]
        raw = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    # Vault always sends UTC; never hand the engine a naive time.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Need:
    """The capabilities a rotation needs on one path (``check``)."""

    #: The path as asked about (a staging path with :data:`SAMPLE_ROTATION_ID`).
    path: str
    #: The path as shown in messages (``<rotation-id>`` for the sample id).
    shown: str
    capabilities: tuple[str, ...]


def lacking(granted: Sequence[str], needed: Sequence[str]) -> list[str]:
    """Return the capabilities of ``needed`` that ``granted`` lacks, in ``needed``'s order.

    ``granted`` is what ``sys/capabilities-self`` answers for a path:
    ``["root"]`` for a root token (everything), ``["deny"]`` when no policy
    grants anything there or one denies it (nothing).
    """
    if "root" in granted:
        return []
    if "deny" in granted:
        return list(needed)
    return [cap for cap in needed if cap not in granted]


def _deleted_version(exc: BaseException) -> int | None:
    """Return the version a 404 says is deleted or destroyed, else ``None``.

    Vault answers a read of a deleted or destroyed version with the full
    envelope (``data.metadata`` set) and no ``errors`` key.
    """
    body = answer_body(exc)
    if not isinstance(body, Mapping) or "errors" in body:
        return None
    data = body.get("data")
    meta = data.get("metadata") if isinstance(data, Mapping) else None
    return int(meta.get("version") or 0) if isinstance(meta, Mapping) else None


class VaultKvStore(Store[VaultKvConfig]):
    """Keeps a credential under one key of a Vault KV v2 secret."""

    provider = PROVIDER
    Config = VaultKvConfig
    requires = ("hvac",)
    extra = "vault"
    example: ClassVar[Mapping[str, object]] = {
        "mount": "secret",
        "path": "app/db",
        "key": "password",
    }
    docs = "docs/providers/vault.md#store-vault-kv"
    quotas = rates(QUOTAS)

    # -- plumbing ---------------------------------------------------------

    @property
    def _staging_mount(self) -> str:
        return self.config.staging_mount or self.config.mount

    def _staging_path(self, rotation_id: str) -> str:
        if not rotation_id or "/" in rotation_id or rotation_id in {".", ".."}:
            raise PermanentError(
                f"rotation id {rotation_id!r} cannot name a staging path", provider=PROVIDER
            )
        return f"{self.config.staging_prefix}/{self.config.path}/{rotation_id}"

    def _call(self, name: str, operation: str, fn: Callable[[Any], T]) -> T:
        """Make one Vault request; ``name`` is its kind (``kv.read``), ``operation`` its path."""
        return session(self.runtime).call(operation, fn, provider=PROVIDER, name=name)

    def _latest(self, mount: str, path: str) -> Read:
        """Read the latest version of ``mount/path``."""

        def read(client: Any) -> Read:
            from hvac.exceptions import InvalidPath

            try:
                answer = client.secrets.kv.v2.read_secret_version(
                    path=path, mount_point=mount, raise_on_deleted_version=True
                )
            except InvalidPath as exc:
                deleted = _deleted_version(exc)
                if deleted is not None:
                    return Read(None, deleted)
                # Any other 404 than "no such key" (an unknown namespace, no
                # mount there) is an error, never an absent secret.
                if not nothing_there(exc):
                    raise
                return Read(None, 0)
            data = answer.get("data") or {}
            meta = data.get("metadata") or {}
            content = data.get("data")
            return Read(
                dict(content) if isinstance(content, Mapping) else None,
                int(meta.get("version") or 0),
                str(meta.get("created_time") or ""),
            )

        return self._call("kv.read", f"read {mount}/data/{path}", read)

    def _metadata(self, mount: str, path: str) -> Metadata | None:
        """Read the metadata of ``mount/path``; ``None`` if the path does not exist."""

        def read(client: Any) -> Metadata | None:
            from hvac.exceptions import InvalidPath

            try:
                answer = client.secrets.kv.v2.read_secret_metadata(path=path, mount_point=mount)
            except InvalidPath as exc:
                if not nothing_there(exc):
                    raise
                return None
            data = answer.get("data") or {}
            custom = data.get("custom_metadata")
            return Metadata(
                current_version=int(data.get("current_version") or 0),
                max_versions=int(data.get("max_versions") or 0),
                cas_required=bool(data.get("cas_required")),
                delete_version_after=str(data.get("delete_version_after") or "0s"),
                custom={str(k): str(v) for k, v in custom.items()}
                if isinstance(custom, Mapping)
                else {},
                versions=dict(data.get("versions") or {}),
            )

        return self._call("kv.metadata.read", f"read {mount}/metadata/{path}", read)

    def _write_custom(self, mount: str, path: str, meta: Metadata, custom: dict[str, str]) -> None:
        """Replace the custom metadata, passing the path's settings explicitly.

        hvac's ``update_metadata`` sends ``delete_version_after="0s"`` unless
        told otherwise, which would reset the path's own setting.
        """
        self._call(
            "kv.metadata.write",
            f"write {mount}/metadata/{path}",
            lambda c: c.secrets.kv.v2.update_metadata(
                path=path,
                mount_point=mount,
                max_versions=meta.max_versions,
                cas_required=meta.cas_required,
                delete_version_after=meta.delete_version_after,
                custom_metadata=custom,
            ),
        )

    def _delete_all(self, mount: str, path: str) -> None:
        """Delete a path's metadata and every version; no-op if absent."""

        def delete(client: Any) -> None:
            from hvac.exceptions import InvalidPath

            try:
                client.secrets.kv.v2.delete_metadata_and_all_versions(path=path, mount_point=mount)
            except InvalidPath as exc:
                if not nothing_there(exc):
                    raise

        self._call("kv.metadata.delete", f"delete {mount}/metadata/{path}", delete)

    def _staged(self, rotation_id: str) -> tuple[dict[str, Any], int] | None:
        """Return the staged data map and its base version, or ``None`` if nothing is staged."""
        mount, path = self._staging_mount, self._staging_path(rotation_id)
        read = self._latest(mount, path)
        if read.data is None:
            return None
        meta = self._metadata(mount, path)
        base = meta.custom.get(BASE_VERSION) if meta is not None else None
        if base is None or not base.isdigit():
            raise ConflictError(
                f"staging path {mount}/{path} has no {BASE_VERSION} in its custom metadata "
                "(written by something other than rotator?)",
                provider=PROVIDER,
            )
        return read.data, int(base)

    # -- Store --------------------------------------------------------------

    def quota_scope(self) -> str:
        """Return the Vault address (``VAULT_ADDR``, one per process): its quotas are per server."""
        return os.environ.get("VAULT_ADDR", "").strip().rstrip("/")

    def describe(self) -> str:
        """Return ``vault-kv:<mount>/<path>``."""
        return f"{PROVIDER}:{self.config.mount}/{self.config.path}"

    def needs(self) -> list[Need]:
        """Return every path a rotation writes, with the capabilities it needs there.

        What each call of the store asks Vault for (a KV v2 write is
        ``create`` when the path has no metadata yet, ``update`` otherwise):

        - ``data/<path>``: ``read`` (current, promote), ``create`` (the
          first promote of a new path) and ``update`` (every later one);
        - ``metadata/<path>``: ``read`` and ``update`` (the labels);
        - ``delete/<path>`` (or ``destroy/<path>`` with
          ``destroy_on_retire``): ``update`` (retire);
        - the staging ``data/`` path: ``read`` and ``update`` (its metadata
          is always written first, so the data write is an update);
        - the staging ``metadata/`` path: ``create``, ``read``, ``update``
          (a replay) and ``delete`` (promote, discard).
        """
        mount, path = self.config.mount, self.config.path
        staging_mount = self._staging_mount
        staging = self._staging_path(SAMPLE_ROTATION_ID)
        shown = f"{self.config.staging_prefix}/{path}/<rotation-id>"
        retire = "destroy" if self.config.destroy_on_retire else "delete"
        return [
            Need(f"{mount}/data/{path}", f"{mount}/data/{path}", ("create", "read", "update")),
            Need(f"{mount}/metadata/{path}", f"{mount}/metadata/{path}", ("read", "update")),
            Need(f"{mount}/{retire}/{path}", f"{mount}/{retire}/{path}", ("update",)),
            Need(
                f"{staging_mount}/data/{staging}",
                f"{staging_mount}/data/{shown}",
                ("read", "update"),
            ),
            Need(
                f"{staging_mount}/metadata/{staging}",
                f"{staging_mount}/metadata/{shown}",
                ("create", "read", "update", "delete"),
            ),
        ]

    def permissions(self) -> list[Permission]:
        """Return the capabilities each step needs on each KV v2 path the store calls.

        ``data/<path>``: ``read`` (the current value, at mint and rollback)
        and ``create``/``update`` (promote's check-and-set write: ``create``
        while the path has no metadata yet, ``update`` after; Vault's
        existence check decides). ``metadata/<path>``: ``read`` and
        ``update`` (promote's labels; retire drops one; the plan reads when
        the value last changed). ``delete/<path>`` (``destroy/<path>`` with
        ``destroy_on_retire``): ``update``. The staging paths, one segment
        per rotation id (``+``): ``data/``: ``read`` and ``update`` (its
        metadata is written first, so the data write is an update);
        ``metadata/``: ``create`` (the first write), ``update`` (the same
        write replayed after a crash), ``read`` and ``delete`` (promote,
        discard). ``sys/capabilities-self`` is asked by ``rotator check``
        only (Vault's default policy grants it as well).
        """
        mount, path = self.config.mount, self.config.path
        staged = f"{self.config.staging_prefix}/{path}/+"
        staging = self._staging_mount
        retire = "destroy" if self.config.destroy_on_retire else "delete"

        def need(capabilities: tuple[str, ...], where: str, step: str) -> Permission:
            return Permission("vault", capabilities, resource=where, step=step)

        return [
            need(("read",), f"{mount}/data/{path}", "store: read current"),
            need(("create", "update"), f"{mount}/data/{path}", "store: promote"),
            need(("read", "update"), f"{mount}/metadata/{path}", "store: promote"),
            need(("read", "update"), f"{mount}/metadata/{path}", "store: retire"),
            need(("update",), f"{mount}/{retire}/{path}", "store: retire"),
            need(("read", "update"), f"{staging}/data/{staged}", "store: write pending"),
            need(("read",), f"{staging}/data/{staged}", "store: read pending"),
            need(("create", "update"), f"{staging}/metadata/{staged}", "store: write pending"),
            need(("read", "delete"), f"{staging}/metadata/{staged}", "store: promote"),
            need(("delete",), f"{staging}/metadata/{staged}", "store: discard pending"),
            need(("update",), "sys/capabilities-self", CHECK_STEP),
        ]

    def check(self) -> str:
        """Ask Vault for the token's capabilities on every path a rotation writes; write nothing.

        One ``sys/capabilities-self`` request (the default policy grants it
        to every token) for the paths of :meth:`needs`. A token Vault
        refuses that request to cannot be checked: that is said, not raised.

        Raises:
            PermissionDeniedError: the token lacks a capability a rotation
                needs; the message names each path and what it lacks there.
            PermanentError: Vault's answer leaves out a path asked about.
            TransientError: Vault is unavailable or unreachable; retry later.
        """
        needs = self.needs()
        paths = [need.path for need in needs]
        try:
            answer = self._call(
                "sys.capabilities_self",
                "update sys/capabilities-self",
                lambda c: c.sys.get_capabilities(paths=paths),
            )
        except PermissionDeniedError:
            return Unchecked(
                "write access could not be checked: Vault refused sys/capabilities-self to the "
                "token (it is invalid, or its policies lack the default policy); the first "
                "rotation will tell"
            )
        body = answer if isinstance(answer, Mapping) else {}
        data = body.get("data")
        data = data if isinstance(data, Mapping) else {}
        problems: list[str] = []
        roots = 0
        for need in needs:
            granted = data.get(need.path, body.get(need.path))
            if not isinstance(granted, list) or not all(isinstance(c, str) for c in granted):
                raise PermanentError(
                    f"Vault's answer to sys/capabilities-self has no capabilities for {need.shown}",
                    provider=PROVIDER,
                    operation="update sys/capabilities-self",
                )
            roots += "root" in granted
            missing = lacking(granted, need.capabilities)
            if missing:
                problems.append(f"{', '.join(missing)} on {need.shown}")
        if problems:
            raise PermissionDeniedError(
                f"the Vault token lacks {'; '.join(problems)} (asked with sys/capabilities-self; "
                "the vault-kv store's policy is in docs/providers/vault.md)",
                provider=PROVIDER,
                operation="update sys/capabilities-self",
            )
        if roots == len(needs):
            return "sys/capabilities-self: the token is a root token; it may write every path"
        granted_text = "; ".join(f"{', '.join(n.capabilities)} on {n.shown}" for n in needs)
        return f"sys/capabilities-self: the token may {granted_text}"

    def current(self) -> Version | None:
        """Return the latest version's value at ``key``.

        ``None`` if the path does not exist, its latest version is deleted or
        destroyed, or the data has no ``key``. Only Vault's "no such key" (a 404
        with an empty ``errors`` list) counts as absent.

        Raises:
            NotFoundError: the mount, or the namespace ``VAULT_NAMESPACE``
                names, does not exist (or Vault answered another 404).
            PermissionDeniedError: the token may not read the path.
            TransientError: Vault is unavailable or unreachable; retry later.
        """
        read = self._latest(self.config.mount, self.config.path)
        if read.data is None:
            return None
        value = decode(read.data.get(self.config.key))
        if value is None:
            return None
        return Version(str(read.version), value, parse_time(read.created_time))

    def last_changed(self) -> datetime | None:
        """Return when the path's current version was written; ``None`` if it has none.

        Raises:
            NotFoundError: the mount, or the namespace ``VAULT_NAMESPACE``
                names, does not exist (or Vault answered another 404).
            PermissionDeniedError: the token may not read the metadata.
            TransientError: Vault is unavailable or unreachable; retry later.
        """
        meta = self._metadata(self.config.mount, self.config.path)
        if meta is None or meta.current_version == 0:
            return None
        info = meta.versions.get(str(meta.current_version))
        return parse_time(info.get("created_time")) if isinstance(info, Mapping) else None

    def put_pending(self, rotation_id: str, value: SecretValue) -> str:
        """Stage the data map ``promote`` will write; return the version it will create.

        The map is the current data of ``path`` with ``key`` set to
        ``value``; it goes to the staging path with ``cas=0`` (create-only),
        after the base version is recorded in the staging path's custom
        metadata. Replaying with the same value changes nothing.

        Raises:
            ConflictError: this rotation already staged a different value.
            NotFoundError: the mount or staging mount does not exist.
            PermissionDeniedError: the token may not read ``path`` or write
                the staging path.
            PermanentError: the rotation id cannot name a path.
            TransientError: Vault is unavailable or unreachable; retry later.
        """
        mount, path = self._staging_mount, self._staging_path(rotation_id)
        staged = self._staged(rotation_id)
        if staged is not None:
            data, base = staged
            if decode(data.get(self.config.key)) != value:
                raise ConflictError(
                    f"rotation {rotation_id} already staged a different value at {mount}/{path}",
                    provider=PROVIDER,
                    operation=f"write {mount}/data/{path}",
                )
            return str(base + 1)

        current = self._latest(self.config.mount, self.config.path)
        data = dict(current.data or {})
        data[self.config.key] = encode(value)
        base = current.version
        custom = {BASE_VERSION: str(base), ROTATION_ID: rotation_id, SECRET_NAME: self.secret}
        # Metadata first: a staged map is never without its base version.
        self._call(
            "kv.metadata.write",
            f"write {mount}/metadata/{path}",
            lambda c: c.secrets.kv.v2.update_metadata(
                path=path, mount_point=mount, custom_metadata=custom
            ),
        )
        try:
            self._call(
                "kv.write",
                f"write {mount}/data/{path}",
                lambda c: c.secrets.kv.v2.create_or_update_secret(
                    path=path, mount_point=mount, secret=data, cas=0
                ),
            )
        except ConflictError:
            # Staged meanwhile (a replay racing a slow first write): same value is fine.
            again = self._staged(rotation_id)
            if again is None or decode(again[0].get(self.config.key)) != value:
                raise
            return str(again[1] + 1)
        log.info(
            "staged the pending value of rotation %s for %s (base version %s)",
            rotation_id,
            self.describe(),
            base,
        )
        return str(base + 1)

    def pending(self, rotation_id: str) -> SecretValue | None:
        """Return the value staged for this rotation (``key`` of the staged map), or ``None``.

        Raises:
            NotFoundError: the staging mount does not exist.
            PermissionDeniedError: the token may not read the staging path.
            PermanentError: the rotation id cannot name a path.
            TransientError: Vault is unavailable or unreachable; retry later.
        """
        read = self._latest(self._staging_mount, self._staging_path(rotation_id))
        if read.data is None:
            return None
        return decode(read.data.get(self.config.key))

    def promote(self, rotation_id: str, *, expires_on: datetime | None = None) -> str | None:
        """Write the staged map to ``path`` (check-and-set on its base); return the base.

        Then labels ``path``'s custom metadata and deletes the staging path.
        Replaying after a crash at any point finishes the job: a current
        version already holding exactly the staged map, or labelled with
        this rotation, is not written again. Returns ``None`` if ``path`` had
        no version before.

        Raises:
            ConflictError: nothing is staged for this rotation (and it did
                not promote), or someone else wrote ``path`` since
                ``put_pending`` (their value stays current).
            NotFoundError: the mount does not exist.
            PermissionDeniedError: the token may not write ``path``, its
                metadata, or delete the staging path.
            TransientError: Vault is unavailable or unreachable; retry later.
        """
        mount, path = self.config.mount, self.config.path
        staged = self._staged(rotation_id)
        meta = self._metadata(mount, path)
        labels = meta.custom if meta is not None else {}
        if staged is None:
            if labels.get(ROTATION_ID) == rotation_id:
                return labels.get(PREVIOUS_VERSION) or None
            raise ConflictError(
                f"{self.describe()} has no pending version for rotation {rotation_id}",
                provider=PROVIDER,
                operation=f"write {mount}/data/{path}",
            )
        data, base = staged
        current_version = meta.current_version if meta is not None else 0
        if labels.get(ROTATION_ID) == rotation_id and labels.get(CURRENT_VERSION):
            new_version = int(labels[CURRENT_VERSION])
        elif current_version == base:
            written = self._call(
                "kv.write",
                f"write {mount}/data/{path}",
                lambda c: c.secrets.kv.v2.create_or_update_secret(
                    path=path, mount_point=mount, secret=data, cas=base
                ),
            )
            new_version = int(((written or {}).get("data") or {}).get("version") or base + 1)
        else:
            latest = self._latest(mount, path)
            if latest.data != data:
                raise ConflictError(
                    f"{self.describe()} was written by someone else since rotation "
                    f"{rotation_id} staged its value (version {current_version}, expected "
                    f"{base}); their value stays current",
                    provider=PROVIDER,
                    operation=f"write {mount}/data/{path}",
                )
            new_version = latest.version  # our write landed; its answer was lost
        self._label(rotation_id, new_version, base)
        self._delete_all(self._staging_mount, self._staging_path(rotation_id))
        log.info(
            "promoted rotation %s: %s is at version %s", rotation_id, self.describe(), new_version
        )
        return str(base) if base else None

    def _label(self, rotation_id: str, new_version: int, base: int) -> None:
        """Record the promotion in ``path``'s custom metadata (other keys kept)."""
        mount, path = self.config.mount, self.config.path
        meta = self._metadata(mount, path)
        if meta is None:
            raise ConflictError(
                f"{self.describe()} vanished while promoting rotation {rotation_id}",
                provider=PROVIDER,
            )
        custom = dict(meta.custom)
        custom[CURRENT_VERSION] = str(new_version)
        custom[ROTATION_ID] = rotation_id
        if base:
            custom[PREVIOUS_VERSION] = str(base)
        else:
            custom.pop(PREVIOUS_VERSION, None)
        if custom != meta.custom:
            self._write_custom(mount, path, meta, custom)

    def discard(self, rotation_id: str) -> None:
        """Delete the staging path (metadata and every version); no-op if absent.

        Raises:
            NotFoundError: the staging mount does not exist.
            PermissionDeniedError: the token may not delete the staging path.
            PermanentError: the rotation id cannot name a path.
            TransientError: Vault is unavailable or unreachable; retry later.
        """
        self._delete_all(self._staging_mount, self._staging_path(rotation_id))

    def replaced_version(self, rotation_id: str) -> str | None:
        """Return the version this rotation's promote replaced, while ``path``'s labels say so.

        The labels name the latest promote only: ``None`` once another
        rotation has promoted, once ``retire`` dropped the label, or when
        the promote created ``path``.

        Raises:
            NotFoundError: the mount does not exist.
            PermissionDeniedError: the token may not read the metadata.
            TransientError: Vault is unavailable or unreachable; retry later.
        """
        meta = self._metadata(self.config.mount, self.config.path)
        if meta is None or meta.custom.get(ROTATION_ID) != rotation_id:
            return None
        return meta.custom.get(PREVIOUS_VERSION) or None

    def retire(self, version_id: str) -> None:
        """Soft-delete version ``version_id`` of ``path`` (destroy with ``destroy_on_retire``).

        A soft-deleted version can be undeleted by an operator. The current
        version is never touched; a version already gone (deleted,
        destroyed, pruned) is left as is. The ``rotator_previous_version``
        label is dropped if it names this version.

        Raises:
            NotFoundError: the mount does not exist.
            PermissionDeniedError: the token may not delete (or destroy)
                versions of ``path`` or write its metadata.
            PermanentError: ``version_id`` is not a version number.
            TransientError: Vault is unavailable or unreachable; retry later.
        """
        if not version_id.isdigit() or int(version_id) == 0:
            raise PermanentError(f"{version_id!r} is not a KV v2 version number", provider=PROVIDER)
        version = int(version_id)
        mount, path = self.config.mount, self.config.path
        meta = self._metadata(mount, path)
        if meta is None:
            return
        if version == meta.current_version:
            log.warning("not retiring version %s of %s: it is current", version, self.describe())
            return
        info = meta.versions.get(str(version))
        if isinstance(info, Mapping) and not info.get("destroyed"):
            if self.config.destroy_on_retire:
                self._call(
                    "kv.destroy",
                    f"write {mount}/destroy/{path}",
                    lambda c: c.secrets.kv.v2.destroy_secret_versions(
                        path=path, mount_point=mount, versions=[version]
                    ),
                )
            else:
                deleted_at = parse_time(info.get("deletion_time"))
                if deleted_at is None or deleted_at > self.runtime.clock():
                    self._call(
                        "kv.delete",
                        f"write {mount}/delete/{path}",
                        lambda c: c.secrets.kv.v2.delete_secret_versions(
                            path=path, mount_point=mount, versions=[version]
                        ),
                    )
        if meta.custom.get(PREVIOUS_VERSION) == version_id:
            custom = {k: v for k, v in meta.custom.items() if k != PREVIOUS_VERSION}
            self._write_custom(mount, path, meta, custom)
