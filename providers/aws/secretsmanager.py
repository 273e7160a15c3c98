"""Store ``aws-secretsmanager``: AWS Secrets Manager with staging labels.

The store drives Secrets Manager's own labels, the way a rotation Lambda
would:

- *pending* is a version written with ``ClientRequestToken=rotation_id`` and
  ``VersionStages=["AWSPENDING"]``, so its version id *is* the rotation id;
- *promote* moves ``AWSCURRENT`` onto it (Secrets Manager moves
  ``AWSPREVIOUS`` onto the version it replaced), then removes
  ``AWSPENDING``, which Secrets Manager itself never cleans up when the
  labels are driven by hand. That third write is kept on purpose, though
  AWS's own rotation functions leave the label (the next ``PutSecretValue``
  with ``AWSPENDING`` would move it, and 3 writes a rotation instead of 4,
  with the revoke's, would raise a Region's ceiling from 12.5 to 16.7
  rotations a second): a
  version still labelled ``AWSPENDING`` after its promotion looks, once
  someone else has written the secret (or once its ``AWSPREVIOUS`` is
  retired), exactly like a pending version, and a replayed promote would
  then move ``AWSCURRENT`` back onto it, over the later value or onto a
  revoked credential. Removing the label is what makes a replay a no-op or
  a refusal (``ConflictError``), never a revival (without it, the store
  contract's ``test_a_promote_replay_never_overwrites_a_later_write``
  fails);
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

``check`` (the ``rotator check`` preflight) asks IAM's policy simulator
(``SimulatePrincipalPolicy``) whether the identity rotator runs as may make
those calls on the secret's ARN, writing nothing. It simulates the
identity's IAM policies (with its permissions boundary and the
organization's SCPs), not a resource policy on the secret or its KMS key,
nor a role session's own policy. When the simulator cannot answer (no
``iam:SimulatePrincipalPolicy`` permission, a root or federated-user caller,
an endpoint without it such as moto) the check says so instead of failing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from providers.aws.clients import QUOTAS, client
from providers.aws.errors import aws_errors
from providers.aws.permissions import secret_arn
from rotator.adapters import (
    Permission,
    ProviderConfig,
    SecretValue,
    Store,
    Unchecked,
    Version,
    rates,
)
from rotator.errors import (
    ConflictError,
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    ProviderError,
    TransientError,
)

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_secretsmanager.type_defs import GetSecretValueResponseTypeDef

PROVIDER = "aws-secretsmanager"
CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
PREVIOUS = "AWSPREVIOUS"

#: The IAM actions a rotation calls on the secret, which ``check`` simulates.
ACTIONS = (
    "secretsmanager:GetSecretValue",
    "secretsmanager:DescribeSecret",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
)
ALLOWED = "allowed"
#: How bad each simulator decision is; an unknown decision counts as a denial.
_RANK = {ALLOWED: 0, "implicitDeny": 1, "explicitDeny": 2}
_UNCHECKED = "write access could not be checked: {}; the first rotation will tell"


@dataclass(frozen=True)
class Principal:
    """The IAM entity whose policies the simulator evaluates for a caller."""

    #: The ``PolicySourceArn`` to simulate, or ``None`` if the caller cannot be.
    arn: str | None
    #: For an assumed role, its name (the session ARN does not show the role's path).
    role_name: str | None = None
    #: Why the caller cannot be simulated (when ``arn`` is ``None``).
    reason: str = ""


def principal_of(caller_arn: str) -> Principal:
    """Return what to simulate for the ARN ``GetCallerIdentity`` answered.

    An IAM user is simulated as itself; an assumed-role session as its role
    (``arn:aws:sts::111122223333:assumed-role/Name/session`` becomes
    ``arn:aws:iam::111122223333:role/Name``, without the path the session
    ARN leaves out). The account's root user and a federated user have no
    IAM policies of their own to simulate.
    """
    parts = caller_arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return Principal(None, reason=f"rotator runs as {caller_arn}")
    _, partition, service, _, account, resource = parts
    if service == "iam" and resource.startswith(("user/", "role/")):
        return Principal(caller_arn)
    if service == "sts" and resource.startswith("assumed-role/"):
        pieces = resource.split("/")
        if len(pieces) >= 3 and pieces[1]:
            return Principal(f"arn:{partition}:iam::{account}:role/{pieces[1]}", pieces[1])
    if service == "iam" and resource == "root":
        return Principal(None, reason="rotator runs as the account's root user")
    if service == "sts" and resource.startswith("federated-user/"):
        return Principal(None, reason=f"rotator runs as a federated user ({caller_arn})")
    return Principal(None, reason=f"rotator runs as {caller_arn}")


@dataclass(frozen=True)
class Simulation:
    """What a policy simulation says of each action asked about."""

    allowed: tuple[str, ...]
    #: (action, decision) for each action denied: ``implicitDeny`` or ``explicitDeny``.
    denied: tuple[tuple[str, str], ...]
    #: (action, context keys the simulator lacked) for each action it could not decide.
    undecided: tuple[tuple[str, tuple[str, ...]], ...]


def interpret(results: Iterable[Mapping[str, Any]], actions: Iterable[str] = ACTIONS) -> Simulation:
    """Sort ``actions`` by what the simulator's ``EvaluationResults`` decided for each.

    An action takes the worst decision among its results and their
    ``ResourceSpecificResults`` (``explicitDeny`` over ``implicitDeny`` over
    ``allowed``). An ``implicitDeny`` reported with ``MissingContextValues``
    is undecided (a policy's condition needed a key the simulation did not
    have), and so is an action the results leave out. Action names compare
    case-insensitively, as IAM's do.
    """
    worst: dict[str, str] = {}
    missing: dict[str, set[str]] = {}
    for result in results:
        action = str(result.get("EvalActionName") or "").lower()
        if not action:
            continue
        parts: list[Mapping[str, Any]] = [result]
        specific = result.get("ResourceSpecificResults")
        if isinstance(specific, list):
            parts += [r for r in specific if isinstance(r, Mapping)]
        for part in parts:
            decision = part.get("EvalDecision", part.get("EvalResourceDecision"))
            if isinstance(decision, str) and decision:
                held = worst.get(action)
                if held is None or _RANK.get(decision, 1) > _RANK.get(held, 1):
                    worst[action] = decision
            keys = part.get("MissingContextValues")
            if isinstance(keys, list):
                missing.setdefault(action, set()).update(str(k) for k in keys)
    allowed: list[str] = []
    denied: list[tuple[str, str]] = []
    undecided: list[tuple[str, tuple[str, ...]]] = []
    for action in actions:
        decision = worst.get(action.lower())
        keys = tuple(sorted(missing.get(action.lower(), ())))
        if decision == ALLOWED:
            allowed.append(action)
        elif decision is None or (decision == "implicitDeny" and keys):
            undecided.append((action, keys))
        else:
            denied.append((action, decision))
    return Simulation(tuple(allowed), tuple(denied), tuple(undecided))


def _short(action: str) -> str:
    return action.partition(":")[2] or action


def _listed(words: Iterable[str]) -> str:
    items = list(words)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


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
    example: ClassVar[Mapping[str, object]] = {"secret_id": "app/db", "region": "us-east-1"}
    docs = "docs/policies.md#stores-storeprovider"
    quotas = rates(QUOTAS)

    # -- plumbing ---------------------------------------------------------

    def quota_scope(self) -> str:
        """Return the Region: Secrets Manager's write quota is per account and Region.

        The Region the client resolves (the policy's, else boto3's chain:
        environment, profile), so the scope is the one its calls are paced in.
        """
        try:
            region = self._sm().meta.region_name
        except Exception:  # noqa: BLE001 (no Region to be found: the run's first call says so)
            return self.config.region or ""
        return region or ""

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

    def check(self) -> str:
        """Ask IAM's policy simulator whether rotator may make a rotation's calls on the secret.

        Reads the secret's ARN and tags (``DescribeSecret``) and the caller
        (``GetCallerIdentity``; an assumed role's ARN, path included, from
        ``GetRole`` when allowed), then runs ``SimulatePrincipalPolicy`` for
        :data:`ACTIONS` on the ARN, with the tags as ``aws:ResourceTag/*``
        and ``secretsmanager:ResourceTag/*`` context. Writes nothing. Says
        that it could not check when the simulator cannot run or cannot
        decide (see the module docstring).

        Raises:
            PermissionDeniedError: the simulator denies an action a rotation
                needs; the message names each with its decision.
            NotFoundError: the secret does not exist.
            TransientError: Secrets Manager is throttled or unreachable.
        """
        with aws_errors(PROVIDER, "DescribeSecret"):
            described = self._sm().describe_secret(SecretId=self.config.secret_id)
        secret_arn = described["ARN"]
        context: list[dict[str, Any]] = []
        for tag in described.get("Tags", []):
            if "Key" in tag and "Value" in tag:
                for prefix in ("aws", "secretsmanager"):
                    context.append(
                        {
                            "ContextKeyName": f"{prefix}:ResourceTag/{tag['Key']}",
                            "ContextKeyValues": [tag["Value"]],
                            "ContextKeyType": "string",
                        }
                    )
        outcome = self._simulate(secret_arn, context)
        if isinstance(outcome, str):
            return Unchecked(_UNCHECKED.format(outcome))
        source, results = outcome
        simulation = interpret(results)
        scope = "its IAM policies; a resource policy on the secret or its KMS key is not simulated"
        if simulation.denied:
            denied = _listed(f"{_short(a)} ({d})" for a, d in simulation.denied)
            raise PermissionDeniedError(
                f"the IAM policy simulator denies {source} {denied} on {secret_arn}, which "
                f"a rotation needs ({scope})",
                provider=PROVIDER,
                operation="SimulatePrincipalPolicy",
            )
        if simulation.undecided:
            reasons = []
            for action, keys in simulation.undecided:
                reasons.append(
                    f"{_short(action)} needs context keys {', '.join(keys)}"
                    if keys
                    else f"it gave no decision for {_short(action)}"
                )
            return Unchecked(
                _UNCHECKED.format(
                    f"the IAM policy simulator cannot decide for {source} ({'; '.join(reasons)})"
                )
            )
        allowed = _listed(_short(a) for a in simulation.allowed)
        return f"IAM policy simulator: {source} may {allowed} on {secret_arn} ({scope})"

    def _simulate(
        self, secret_arn: str, context: list[dict[str, Any]]
    ) -> tuple[str, list[Any]] | str:
        """Return the simulated principal and its ``EvaluationResults``, or why it cannot run."""
        try:
            with aws_errors(PROVIDER, "GetCallerIdentity"):
                caller = client(self.runtime, "sts", self.config.region).get_caller_identity()
        except ProviderError as exc:
            return f"the caller could not be identified ({exc})"
        principal = principal_of(caller["Arn"])
        if principal.arn is None:
            return f"{principal.reason}, whom the IAM policy simulator cannot simulate"
        source = principal.arn
        iam = client(self.runtime, "iam", self.config.region)
        if principal.role_name is not None:
            try:
                with aws_errors(PROVIDER, "GetRole"):
                    source = iam.get_role(RoleName=principal.role_name)["Role"]["Arn"]
            except ProviderError:
                pass  # keep the ARN without a path; right for a role at "/"
        results: list[Any] = []
        args: dict[str, Any] = {
            "PolicySourceArn": source,
            "ActionNames": list(ACTIONS),
            "ResourceArns": [secret_arn],
        }
        if context:
            args["ContextEntries"] = context
        try:
            while True:
                with aws_errors(PROVIDER, "SimulatePrincipalPolicy"):
                    page = iam.simulate_principal_policy(**args)
                results.extend(page.get("EvaluationResults", []))
                if not page.get("IsTruncated") or not page.get("Marker"):
                    return source, results
                args["Marker"] = page["Marker"]
        except PermissionDeniedError:
            return f"the identity may not call iam:SimulatePrincipalPolicy on {source}"
        except NotFoundError:
            return f"IAM knows no {source} to simulate"
        except TransientError:
            return "the IAM policy simulator did not answer"
        except PermanentError as exc:
            return f"the IAM policy simulator refused the request ({exc})"
        except NotImplementedError:
            # In-process moto raises this for the actions it lacks (SimulatePrincipalPolicy).
            return "the endpoint does not implement the IAM policy simulator"

    def permissions(self) -> list[Permission]:
        """Return the IAM actions a rotation calls on the secret's ARN, by step.

        ``GetSecretValue`` reads the current value (mint, rollback) and the
        pending one back (verify); ``PutSecretValue`` writes the pending
        version; ``DescribeSecret`` and ``UpdateSecretVersionStage`` move the
        labels (promote; retire at revoke; discard at rollback). Only the
        ARN's account may be asked of STS (see :mod:`providers.aws.permissions`).
        ``check`` also calls ``iam:SimulatePrincipalPolicy`` on rotator's own
        identity, which is left out: without it the preflight says it
        could not tell. A customer-managed KMS key on the secret needs
        ``kms:Decrypt`` and ``kms:GenerateDataKey`` on that key besides.
        """
        arn = secret_arn(self.runtime, self.config.secret_id, self.config.region)
        return [
            Permission(
                "aws", ("secretsmanager:GetSecretValue",), resource=arn, step="store: read current"
            ),
            Permission(
                "aws", ("secretsmanager:PutSecretValue",), resource=arn, step="store: write pending"
            ),
            Permission(
                "aws",
                ("secretsmanager:DescribeSecret", "secretsmanager:UpdateSecretVersionStage"),
                resource=arn,
                step="store: promote",
            ),
        ]

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
