"""Store ``aws-secretsmanager``: AWS Secrets Manager with staging labels.

The store drives Secrets Manager's own labels, the way a rotation Lambda
would:

- *pending* is a version written with ``ClientRequestToken=rotation_id`` and
  ``VersionStages=["AWSPENDING"]``, so its version id *is* the rotation id;
- *promote* moves ``AWSCURRENT`` onto it (Secrets Manager moves
  ``AWSPREVIOUS`` onto the version it replaced), then removes
  ``AWSPENDING``, which Secrets Manager itself never cleans up when the
  labels are driven by hand;
- *retire* removes ``AWSPREVIOUS`` once the old credential is revoked.

Every read names the version (``VersionStage`` or ``VersionId``): a read by
``SecretId`` alone is stale in moto after a label move, and says nothing
about which version was meant anyway.

With ``field`` the secret is a JSON object and only that key is rotated; the
other keys are carried over from the current version. Without it, a string
value is stored as is and a mapping value as a JSON object, and a JSON object
whose values are all strings reads back as a mapping.

A secret with no value yet is a special case of Secrets Manager: the first
version ever written gets ``AWSCURRENT`` whatever labels are asked for, so its
pending value is visible at once (there was nothing current to protect).

Calls per rotation, when nothing goes wrong: ``PutSecretValue`` (pending; it
is idempotent by its ``ClientRequestToken``, so nothing is read first),
``GetSecretValue VersionId=`` (``pending``, to verify), then ``DescribeSecret``
and two ``UpdateSecretVersionStage`` (``promote``: the labels must be read to
know which version holds ``AWSCURRENT``). ``field`` adds one
``GetSecretValue AWSCURRENT`` to ``put_pending``, to merge the other keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import Field

from providers.aws.clients import client
from providers.aws.errors import aws_errors
from rotator.errors import ConflictError, NotFoundError, PermanentError
from rotator.interfaces import ProviderConfig, Store, Version
from rotator.secret import SecretValue

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_secretsmanager.type_defs import GetSecretValueResponseTypeDef

PROVIDER = "aws-secretsmanager"
CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
PREVIOUS = "AWSPREVIOUS"


class SecretsManagerConfig(ProviderConfig):
    """Policy fields of the ``aws-secretsmanager`` store."""

    secret_id: str = Field(min_length=1, max_length=2048)
    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    field: str | None = Field(default=None, min_length=1)


def _to_secret(raw: Any) -> SecretValue:
    """Wrap one decoded JSON value: a flat string map as a mapping, else a string."""
    if isinstance(raw, str):
        return SecretValue(raw)
    if isinstance(raw, Mapping) and all(isinstance(v, str) for v in raw.values()):
        return SecretValue({str(k): v for k, v in raw.items()})
    return SecretValue(json.dumps(raw))


def _to_json(value: SecretValue) -> Any:
    """Return what goes into a JSON document for ``value`` (a dict or a string)."""
    plain = value.reveal()
    return dict(plain) if isinstance(plain, Mapping) else plain


class SecretsManagerStore(Store[SecretsManagerConfig]):
    """Keeps a credential in one Secrets Manager secret, versioned by staging labels."""

    provider = PROVIDER
    Config = SecretsManagerConfig
    requires = ("boto3",)
    extra = "aws"

    # -- plumbing ---------------------------------------------------------

    def _sm(self) -> SecretsManagerClient:
        return client(self.runtime, "secretsmanager", self.config.region)

    def _stages(self) -> dict[str, list[str]]:
        """Return every version id of the secret with its staging labels."""
        with aws_errors(PROVIDER, "DescribeSecret"):
            described = self._sm().describe_secret(SecretId=self.config.secret_id)
        return {
            vid: list(stages) for vid, stages in described.get("VersionIdsToStages", {}).items()
        }

    def _read(
        self, *, version_id: str | None = None, stage: str | None = None
    ) -> GetSecretValueResponseTypeDef | None:
        """Read one version by id and/or stage; ``None`` if there is no such version."""
        args: dict[str, str] = {"SecretId": self.config.secret_id}
        if version_id is not None:
            args["VersionId"] = version_id
        if stage is not None:
            args["VersionStage"] = stage
        try:
            with aws_errors(PROVIDER, "GetSecretValue"):
                return self._sm().get_secret_value(**args)
        except NotFoundError:
            # Same error for "no such version" and "no such secret": tell them apart.
            self._stages()
            return None

    def _text(self, response: GetSecretValueResponseTypeDef) -> str:
        text = response.get("SecretString")
        if text is None:
            raise PermanentError(
                f"secret {self.config.secret_id} holds binary data (SecretBinary); "
                "only SecretString secrets can be rotated",
                provider=PROVIDER,
            )
        return text

    def _document(self, text: str, version_id: str) -> dict[str, Any]:
        """Parse a version as the JSON object ``field`` requires."""
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise PermanentError(
                f"version {version_id} of secret {self.config.secret_id} is not a JSON object, "
                f"so field {self.config.field!r} cannot be used",
                provider=PROVIDER,
            )
        return document

    def _decode(self, response: GetSecretValueResponseTypeDef) -> SecretValue | None:
        """Return the value a version holds (its ``field`` only, if configured)."""
        text = self._text(response)
        field = self.config.field
        if field is not None:
            document = self._document(text, response["VersionId"])
            return _to_secret(document[field]) if field in document else None
        if text.startswith("{"):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict) and all(isinstance(v, str) for v in parsed.values()):
                return _to_secret(parsed)
        return SecretValue(text)

    def _encode(self, value: SecretValue) -> str:
        """Return the SecretString to write for ``value`` (merged into the current JSON)."""
        field = self.config.field
        if field is None:
            return value.text()
        current = self._read(stage=CURRENT)
        document: dict[str, Any] = (
            {} if current is None else self._document(self._text(current), current["VersionId"])
        )
        document[field] = _to_json(value)
        return json.dumps(document)

    def _relabel(
        self, stage: str, *, move_to: str | None = None, remove_from: str | None = None
    ) -> None:
        args: dict[str, str] = {"SecretId": self.config.secret_id, "VersionStage": stage}
        if move_to is not None:
            args["MoveToVersionId"] = move_to
        if remove_from is not None:
            args["RemoveFromVersionId"] = remove_from
        with aws_errors(PROVIDER, "UpdateSecretVersionStage"):
            self._sm().update_secret_version_stage(**args)

    @staticmethod
    def _holder(stages: Mapping[str, list[str]], label: str) -> str | None:
        return next((vid for vid, labels in stages.items() if label in labels), None)

    @staticmethod
    def _check_token(rotation_id: str) -> None:
        if not 32 <= len(rotation_id) <= 64:
            raise PermanentError(
                f"rotation id {rotation_id!r} cannot be a ClientRequestToken "
                "(Secrets Manager needs 32 to 64 characters)",
                provider=PROVIDER,
            )

    # -- Store --------------------------------------------------------------

    def describe(self) -> str:
        """Return ``aws-secretsmanager:<secret_id>``."""
        return f"{PROVIDER}:{self.config.secret_id}"

    def current(self) -> Version | None:
        """Return the ``AWSCURRENT`` version, or ``None`` if the secret has no value yet.

        With ``field``, ``None`` also when the current JSON object lacks it.

        Raises:
            NotFoundError: the secret does not exist.
            PermanentError: the value is binary, or not a JSON object while
                ``field`` is set.
            TransientError: throttled or unreachable; retry later.
        """
        response = self._read(stage=CURRENT)
        if response is None:
            return None
        value = self._decode(response)
        if value is None:
            return None
        return Version(response["VersionId"], value, response.get("CreatedDate"))

    def last_changed(self) -> datetime | None:
        """Return when the current value was written (the current version's creation).

        Falls back on the secret's ``LastChangedDate`` or ``CreatedDate`` when
        it has no current value. The version date is preferred because
        ``LastChangedDate`` also moves for a pending write, a tag or a
        description change.

        Raises:
            NotFoundError: the secret does not exist.
            TransientError: throttled or unreachable; retry later.
        """
        response = self._read(stage=CURRENT)
        if response is not None and response.get("CreatedDate") is not None:
            return response["CreatedDate"]
        with aws_errors(PROVIDER, "DescribeSecret"):
            described = self._sm().describe_secret(SecretId=self.config.secret_id)
        return described.get("LastChangedDate") or described.get("CreatedDate")

    def put_pending(self, rotation_id: str, value: SecretValue) -> str:
        """Write ``value`` as version ``rotation_id`` labelled ``AWSPENDING``; return its id.

        With ``field`` the other keys are copied from the current version.
        Replaying with the same value changes nothing (the version exists; if
        it was discarded, ``AWSPENDING`` is put back on it).

        One call in the usual case: ``PutSecretValue`` with the rotation id
        as ``ClientRequestToken`` is idempotent in Secrets Manager (the same
        token and value is ignored and answered with the version's labels; the
        same token with another value is refused, ``ResourceExistsException``,
        since versions are immutable). Only that refusal, or a replay whose
        version lost its labels, costs more calls. (moto 5.2.5 overwrites a
        pending version instead of refusing; real Secrets Manager does not.)

        Raises:
            ConflictError: version ``rotation_id`` exists with another value.
            NotFoundError: the secret does not exist.
            PermanentError: the rotation id is not 32 to 64 characters, or
                the current value is not a JSON object while ``field`` is set.
            TransientError: throttled or unreachable; retry later.
        """
        self._check_token(rotation_id)
        text = self._encode(value)
        try:
            with aws_errors(PROVIDER, "PutSecretValue"):
                written = self._sm().put_secret_value(
                    SecretId=self.config.secret_id,
                    ClientRequestToken=rotation_id,
                    SecretString=text,
                    VersionStages=[PENDING],
                )
        except ConflictError:
            # The token is taken by a version with another SecretString. With
            # ``field`` that may be this very value next to other keys that
            # changed since the first write: compare the value itself.
            return self._replayed(rotation_id, value)
        stages = written.get("VersionStages")
        if stages is None:
            stages = self._stages().get(rotation_id, [PENDING])
        if not stages:
            # A replay after discard: the put was ignored, the version has no label.
            self._relabel(
                PENDING, move_to=rotation_id, remove_from=self._holder(self._stages(), PENDING)
            )
        return written["VersionId"]

    def _replayed(self, rotation_id: str, value: SecretValue) -> str:
        """Accept a refused put whose version holds ``value`` already; else raise ConflictError."""
        existing = self._read(version_id=rotation_id)
        if existing is None or self._decode(existing) != value:
            raise ConflictError(
                f"version {rotation_id} of secret {self.config.secret_id} already holds "
                "a different value (versions are immutable)",
                provider=PROVIDER,
                operation="PutSecretValue",
            )
        if not existing.get("VersionStages"):
            self._relabel(
                PENDING, move_to=rotation_id, remove_from=self._holder(self._stages(), PENDING)
            )
        return rotation_id

    def pending(self, rotation_id: str) -> SecretValue | None:
        """Return the value version ``rotation_id`` holds, or ``None``.

        ``None`` if the version does not exist or carries no label any more
        (discarded, or retired long after its promotion).

        Raises:
            NotFoundError: the secret does not exist.
            PermanentError: the value is binary, or not a JSON object while
                ``field`` is set.
            TransientError: throttled or unreachable; retry later.
        """
        self._check_token(rotation_id)
        response = self._read(version_id=rotation_id)
        if response is None or not response.get("VersionStages"):
            return None
        return self._decode(response)

    def promote(self, rotation_id: str, *, expires_on: datetime | None = None) -> str | None:
        """Move ``AWSCURRENT`` to version ``rotation_id``; return the version it left.

        Secrets Manager puts ``AWSPREVIOUS`` on the version that was current;
        ``AWSPENDING`` is then removed. Replaying after success only removes
        a leftover ``AWSPENDING`` and returns the ``AWSPREVIOUS`` holder.
        Returns ``None`` if the secret had no current version.

        Raises:
            ConflictError: version ``rotation_id`` is neither pending nor current.
            NotFoundError: the secret does not exist.
            TransientError: throttled or unreachable; retry later.
        """
        stages = self._stages()
        labels = stages.get(rotation_id, [])
        if CURRENT in labels:
            if PENDING in labels:
                self._relabel(PENDING, remove_from=rotation_id)
            return self._holder(stages, PREVIOUS)
        if PENDING not in labels:
            raise ConflictError(
                f"secret {self.config.secret_id} has no pending version for rotation {rotation_id}",
                provider=PROVIDER,
                operation="UpdateSecretVersionStage",
            )
        previous = self._holder(stages, CURRENT)
        self._relabel(CURRENT, move_to=rotation_id, remove_from=previous)
        self._relabel(PENDING, remove_from=rotation_id)
        return previous

    def discard(self, rotation_id: str) -> None:
        """Remove ``AWSPENDING`` from version ``rotation_id``; no-op if it is not there.

        The version itself stays (Secrets Manager has no per-version delete)
        but, unlabelled, it is deprecated and eventually pruned.

        Raises:
            NotFoundError: the secret does not exist.
            TransientError: throttled or unreachable; retry later.
        """
        if PENDING in self._stages().get(rotation_id, []):
            self._relabel(PENDING, remove_from=rotation_id)

    def retire(self, version_id: str) -> None:
        """Remove ``AWSPREVIOUS`` from ``version_id`` if it carries it; no-op otherwise.

        Called once the old credential is revoked, so no label points at a
        dead credential. ``AWSCURRENT`` is never touched.

        Raises:
            NotFoundError: the secret does not exist.
            TransientError: throttled or unreachable; retry later.
        """
        if PREVIOUS in self._stages().get(version_id, []):
            self._relabel(PREVIOUS, remove_from=version_id)
