"""``rotator permissions`` for AWS, proven with moto's IAM enforcement: sufficient and minimal.

An IAM user gets exactly the generated policy; the engine runs as that user
(its access key in the environment) and rotates a random Secrets Manager
secret, an IAM access key and an API Gateway key, through grace, revoke and
delete. Then each statement is dropped in turn: a rotation must fail, at the
engine step the statement's ``Sid`` names, on an API call the statement
grants, while the secrets that do not need it still rotate.

What moto cannot check, and how it is covered instead:

- moto evaluates Secrets Manager, IAM (user) and API Gateway calls against
  the resource ``*`` (``moto/core/responses.py`` ``call_action``; only a
  role's own IAM calls get their ARN), and a statement naming an ARN never
  matches ``*``. The policy the user gets therefore has ``"Resource": "*"``,
  and the resources are checked apart: each generated ARN pattern must match
  the real ARN moto reports (``describe_secret``, ``get_user``), with IAM's
  wildcards (fnmatch).
- moto names an API Gateway action after the operation
  (``apigateway:CreateApiKey``); IAM names it after the HTTP verb on a
  resource path (``apigateway:POST`` on ``/apikeys``). :func:`moto_policy`
  grants an operation exactly when the generated statements grant its verb
  on its path (botocore's model gives both), plus, for ``CreateApiKey`` with
  tags, ``PUT`` on its ``/tags/`` path, as the Service Authorization
  Reference lists.
- moto checks the signature of a bodiless request (GET, DELETE) against a
  body made of its headers, so every such API Gateway call fails as
  ``SignatureDoesNotMatch``; :func:`signed_like_aws` makes moto sign an empty
  body, as AWS does (and a test shows a wrong secret is still refused).
- moto ignores a statement's ``Condition``. API keys are granted by their
  ``rotator:secret`` tag (key ids are minted, so ARNs cannot name them), and
  those conditions are what keeps rotator off other keys: the same check
  evaluates them for every API Gateway request, against the tags moto holds
  for the key and the tags the request sends (:func:`apigateway_allowed`,
  ``StringEquals`` and ``ForAllValues:StringEquals`` as IAM reads them).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, unquote

import boto3
import botocore.session
import moto.iam.access_control as access_control
import pytest
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.apigateway.models import apigateway_backends
from moto.core.authorization import enable_iam_authentication

from providers.aws.permissions import AWS_ACCOUNT, apigateway_arn, secret_arn, user_arns
from providers.aws.policy import aws_policy
from rotator.adapters.values import Runtime
from rotator.engine.report import Result
from rotator.engine.runner import Engine
from rotator.journal.journal import Journal
from rotator.lifecycle import State
from rotator.policy.loader import load_policies
from rotator.reports.permissions import collect
from tests.conftest import FakeClock
from tests.providers.failures import first_failure

REGION = "us-east-1"
#: moto's default account.
ACCOUNT = "123456789012"
USER = "svc-app"
SECRETS = ("app/api", "app/db", "app/iam")

POLICIES = """
defaults:
  grace: 1h
  schedule: {{every: 30d}}
secrets:
  - name: app/db
    store: {{provider: aws-secretsmanager, secret_id: app/db}}
    issuer: {{kind: random, length: 24}}
  - name: app/iam
    store: {{provider: aws-secretsmanager, secret_id: app/iam}}
    issuer: {{kind: aws-iam-access-key, user: {user}}}
  - name: app/api
    store: {{provider: aws-secretsmanager, secret_id: app/api}}
    issuer: {{kind: aws-apigateway-api-key, usage_plans: [{plan}]}}
"""


@dataclass(frozen=True)
class Expected:
    """Where dropping one statement must make a rotation fail."""

    secrets: tuple[str, ...]
    step: str
    operation: str


#: For each statement: the secrets that fail without it, the engine step, the call refused.
DROPPED = {
    "StoreReadCurrent": Expected(SECRETS, "mint", "GetSecretValue"),
    "StoreWritePending": Expected(SECRETS, "store", "PutSecretValue"),
    "StorePromote": Expected(SECRETS, "promote", "DescribeSecret"),
    "IssuerMintAccessKey": Expected(("app/iam",), "mint", "ListAccessKeys"),
    "IssuerVerifyAccessKey": Expected(("app/iam",), "verify", "GetUser"),
    "IssuerRevokeAccessKey": Expected(("app/iam",), "revoke", "GetAccessKeyLastUsed"),
    "IssuerDeleteAccessKey": Expected(("app/iam",), "delete", "DeleteAccessKey"),
    "IssuerMintApiKey": Expected(("app/api",), "mint", "GetUsagePlanKeys"),
    "IssuerFindApiKey": Expected(("app/api",), "mint", "GetApiKeys"),
    "IssuerCreateApiKey": Expected(("app/api",), "mint", "CreateApiKey"),
    "IssuerTagApiKey": Expected(("app/api",), "mint", "CreateApiKey"),
    "IssuerVerifyApiKey": Expected(("app/api",), "verify", "GetApiKey"),
    "IssuerVerifyApiKeyInUsagePlan": Expected(("app/api",), "verify", "GetUsagePlanKey"),
    "IssuerRevokeApiKey": Expected(("app/api",), "revoke", "UpdateApiKey"),
    "IssuerDetachApiKey": Expected(("app/api",), "delete", "DeleteUsagePlanKey"),
    "IssuerDeleteApiKey": Expected(("app/api",), "delete", "DeleteApiKey"),
}
#: The tag the API Gateway issuer marks its keys with, and what the policy conditions on it.
TAG_SECRET = "rotator:secret"
KEY_ARN = f"arn:aws:apigateway:{REGION}::/apikeys/{{}}"


class _SignedLikeAws(access_control.IAMRequest):  # type: ignore[misc]
    """moto's IAM request check, with a bodiless request's payload empty as AWS signs it.

    With :attr:`conditioned` set, an API Gateway request must also be
    granted by that policy with its conditions (see :func:`apigateway_allowed`).
    """

    #: The policy the restricted user holds, conditions included (None: not checked).
    conditioned: ClassVar[dict[str, Any] | None] = None

    def check_action_permitted(self, resource: str) -> None:
        super().check_action_permitted(resource)
        policy = type(self).conditioned
        if self._service == "apigateway" and policy is not None:
            context = _request_context(self._path, self._body)
            if not apigateway_allowed(policy, self._method, self._path.split("?")[0], context):
                self._raise_access_denied()

    def _create_aws_request(self) -> AWSRequest:
        request = super()._create_aws_request()
        if self._body or self._method not in ("GET", "HEAD", "DELETE"):
            return request
        fixed = AWSRequest(
            method=request.method, url=request.url, data=b"", headers=request.headers
        )
        fixed.context.update(request.context)
        return fixed


def _request_context(path: str, body: bytes | None) -> dict[str, list[str]]:
    """Return the tag condition keys of an API Gateway request: the key's tags, the request's."""
    context: dict[str, list[str]] = {}
    sent = json.loads(body) if body else {}
    tags = sent.get("tags") if isinstance(sent, dict) else None
    if isinstance(tags, dict):
        context.update({f"aws:RequestTag/{k}": [v] for k, v in tags.items()})
        context["aws:TagKeys"] = sorted(tags)
    key = re.fullmatch(r"/apikeys/([^/?]+)(\?.*)?", path)
    stored = apigateway_backends[ACCOUNT][REGION].keys.get(unquote(key[1])) if key else None
    for name, value in ((stored.tags if stored else None) or {}).items():
        context[f"aws:ResourceTag/{name}"] = [value]
    return context


def _holds(operator: str, key: str, allowed: list[str], context: dict[str, list[str]]) -> bool:
    """Evaluate one condition as IAM does (the two operators the policy uses)."""
    present = context.get(key)
    if operator == "StringEquals":  # a single-valued key: absent never matches
        return present is not None and all(v in allowed for v in present)
    if operator == "ForAllValues:StringEquals":  # every value sent is allowed
        return all(v in allowed for v in present or [])
    raise AssertionError(f"the test does not evaluate {operator}")


def _granted(policy: dict[str, Any], verb: str, path: str, context: dict[str, list[str]]) -> bool:
    """Tell whether a statement grants ``apigateway:VERB`` on the path with its conditions held."""
    arn = f"arn:aws:apigateway:{REGION}::{path}"
    return any(
        f"apigateway:{verb}" in s["Action"]
        and any(fnmatch.fnmatchcase(arn, r) for r in s["Resource"])
        and all(
            _holds(operator, key, allowed, context)
            for operator, keys in s.get("Condition", {}).items()
            for key, allowed in keys.items()
        )
        for s in policy["Statement"]
    )


def apigateway_allowed(
    policy: dict[str, Any], verb: str, path: str, context: dict[str, list[str]]
) -> bool:
    """Tell whether ``policy`` allows one API Gateway request, conditions included.

    Creating a key with tags also needs ``PUT`` on the new key's tags (the
    Service Authorization Reference), under the same request tags.
    """
    needed = [(verb, path)]
    if (verb, path) == ("POST", "/apikeys") and "aws:TagKeys" in context:
        needed.append(("PUT", "/tags/" + quote(KEY_ARN.format("sample"), safe="")))
    return all(_granted(policy, v, p, context) for v, p in needed)


@pytest.fixture
def signed_like_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto verify bodiless requests' signatures over an empty payload (see the module)."""
    monkeypatch.setattr(access_control, "IAMRequest", _SignedLikeAws)


@dataclass
class World:
    """What the unrestricted account set up: the plan, the policy file, the generated policy."""

    plan: str
    config: Path
    policy: dict[str, Any]


def _seed(tmp_path: Path, clock: FakeClock, *, tag_first_key: bool = True) -> World:
    """Create the secrets, the user and its first key, the usage plan and its first key.

    The first API key is tagged for ``app/api`` as the docs ask of an
    operator (rotator did not create it), unless ``tag_first_key`` is false.
    """
    sm = boto3.client("secretsmanager", region_name=REGION)
    iam = boto3.client("iam", region_name=REGION)
    ag = boto3.client("apigateway", region_name=REGION)
    iam.create_user(UserName=USER)
    first = iam.create_access_key(UserName=USER)["AccessKey"]
    plan = ag.create_usage_plan(name="orders")["id"]
    tags = {TAG_SECRET: "app/api"} if tag_first_key else {}
    key = ag.create_api_key(name="orders-first", enabled=True, tags=tags)
    ag.create_usage_plan_key(usagePlanId=plan, keyId=key["id"], keyType="API_KEY")
    sm.create_secret(Name="app/db", SecretString="initial-db-password-1234")
    sm.create_secret(
        Name="app/iam",
        SecretString=json.dumps(
            {"AccessKeyId": first["AccessKeyId"], "SecretAccessKey": first["SecretAccessKey"]}
        ),
    )
    sm.create_secret(Name="app/api", SecretString=key["value"])
    config = tmp_path / "policies.yaml"
    config.write_text(POLICIES.format(user=USER, plan=plan))
    engine = _engine(tmp_path / "generate.db", config, clock)
    policy = aws_policy(collect(engine.binding(n) for n in sorted(engine.policies)))
    return World(plan, config, policy)


def _engine(journal: Path, config: Path, clock: FakeClock) -> Engine:
    return Engine(
        load_policies(config),
        Journal(f"sqlite:///{journal}", clock),
        clock=clock,
        sleep=clock.sleep,
    )


def moto_policy(policy: dict[str, Any], plan: str) -> dict[str, Any]:
    """Return ``policy`` as moto evaluates it: resources ``*``, API Gateway verbs as operations."""
    statements: list[dict[str, Any]] = []
    for statement in policy["Statement"]:
        kept = [a for a in statement["Action"] if not a.startswith("apigateway:")]
        if kept:
            statements.append(
                {"Sid": statement["Sid"], "Effect": "Allow", "Action": kept, "Resource": "*"}
            )
    operations = sorted(apigateway_operations(policy, plan))
    if operations:
        statements.append(
            {
                "Sid": "ApiGatewayOperations",
                "Effect": "Allow",
                "Action": [f"apigateway:{o}" for o in operations],
                "Resource": "*",
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def _allows(policy: dict[str, Any], verb: str, path: str) -> bool:
    """Tell whether a statement grants ``apigateway:VERB`` on the path's ARN (IAM wildcards)."""
    arn = f"arn:aws:apigateway:{REGION}::{path}"
    return any(
        f"apigateway:{verb}" in s["Action"]
        and any(fnmatch.fnmatchcase(arn, r) for r in s["Resource"])
        for s in policy["Statement"]
    )


def apigateway_operations(policy: dict[str, Any], plan: str) -> set[str]:
    """Return the API Gateway operations every (verb, path) of which ``policy`` grants."""
    model = botocore.session.get_session().get_service_model("apigateway")
    sample_key = f"arn:aws:apigateway:{REGION}::/apikeys/sample"
    allowed: set[str] = set()
    for name in model.operation_names:
        http = model.operation_model(name).http
        path = str(http["requestUri"]).split("?")[0].replace("{usageplanId}", plan)
        while "{" in path:
            head, _, rest = path.partition("{")
            path = head + "sample" + rest.partition("}")[2]
        needed = [(str(http["method"]), path)]
        if name == "CreateApiKey":  # created with tags: TagResource's PUT on its ARN too
            needed.append(("PUT", "/tags/" + quote(sample_key, safe="")))
        if all(_allows(policy, verb, where) for verb, where in needed):
            allowed.add(name)
    return allowed


def _restricted(world: World, policy: dict[str, Any]) -> tuple[str, str]:
    """Create the user rotator runs as, holding exactly ``policy``; return its key pair."""
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="rotator")
    iam.put_user_policy(
        UserName="rotator",
        PolicyName="rotator",
        PolicyDocument=json.dumps(moto_policy(policy, world.plan)),
    )
    key = iam.create_access_key(UserName="rotator")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def _rotate_all(engine: Engine, clock: FakeClock) -> dict[str, State | None]:
    """Rotate every secret, then run once past the grace; return where each secret ended."""
    ended: dict[str, State | None] = {}
    for name in SECRETS:
        [outcome] = engine.rotate(name).outcomes
        ended[name] = outcome.state if outcome.result is Result.OK else None
    clock.advance(timedelta(hours=2))
    for outcome in engine.run_once().outcomes:
        ended[outcome.secret] = outcome.state if outcome.result is Result.OK else None
    return ended


@pytest.fixture
def moto_aws(aws_env: None, signed_like_aws: None) -> Iterator[None]:
    """In-process moto (fake credentials, us-east-1) with the signature fix."""
    with mock_aws():
        yield


def _run_as(
    world: World,
    policy: dict[str, Any],
    tmp_path: Path,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Engine, dict[str, State | None]]:
    """Run every rotation as a user holding ``policy``, under moto's IAM enforcement."""
    key_id, secret = _restricted(world, policy)
    monkeypatch.setattr(_SignedLikeAws, "conditioned", policy)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    engine = _engine(tmp_path / "run.db", world.config, clock)
    with enable_iam_authentication():
        ended = _rotate_all(engine, clock)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return engine, ended


def test_generated_policy_has_one_statement_per_step(moto_aws: None, tmp_path: Path) -> None:
    """The statements are exactly the steps the drop test knows, each scoped to named resources."""
    world = _seed(tmp_path, FakeClock())
    statements = {s["Sid"]: s for s in world.policy["Statement"]}
    assert set(statements) == set(DROPPED)
    assert "initial-db-password-1234" not in json.dumps(world.policy)
    assert all(s["Resource"] and "*" not in s["Resource"] for s in statements.values())
    assert statements["StoreWritePending"]["Action"] == ["secretsmanager:PutSecretValue"]


def test_generated_arns_match_the_real_ones(moto_aws: None, tmp_path: Path) -> None:
    """Every resource the policy names matches the ARN moto reports, and no other secret or user."""
    world = _seed(tmp_path, FakeClock())
    sm = boto3.client("secretsmanager", region_name=REGION)
    iam = boto3.client("iam", region_name=REGION)
    other = sm.create_secret(Name="app/db-other", SecretString="x" * 20)["ARN"]
    resources = {r for s in world.policy["Statement"] for r in s["Resource"]}
    secret_patterns = {r for r in resources if ":secretsmanager:" in r}
    for name in SECRETS:
        arn = sm.describe_secret(SecretId=name)["ARN"]
        assert [p for p in secret_patterns if fnmatch.fnmatchcase(arn, p)] == [
            f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-??????"
        ]
    assert not any(fnmatch.fnmatchcase(other, p) for p in secret_patterns)
    user_arn = iam.get_user(UserName=USER)["User"]["Arn"]
    pathed = iam.create_user(UserName="pathed", Path="/ops/")["User"]["Arn"]
    iam_patterns = {r for r in resources if ":iam::" in r}
    assert any(fnmatch.fnmatchcase(user_arn, p) for p in iam_patterns)
    assert not any(fnmatch.fnmatchcase(pathed, p) for p in iam_patterns)
    plan_keys = f"arn:aws:apigateway:{REGION}::/usageplans/{world.plan}/keys"
    assert plan_keys in resources and f"{plan_keys}/*" in resources


def test_api_keys_and_their_tags_are_granted_only_by_rotator_s_tag(
    moto_aws: None, tmp_path: Path
) -> None:
    """No statement grants every API key or every tag: each is held to the secret's tag."""
    world = _seed(tmp_path, FakeClock())
    statements = {s["Sid"]: s for s in world.policy["Statement"]}
    for statement in statements.values():
        wide = [r for r in statement["Resource"] if r.endswith("/apikeys/*") or "/tags/" in r]
        assert not wide or statement.get("Condition"), f"{statement['Sid']} is unconditioned"
        assert not any(r.endswith(("/tags/*", "::*", "::/*")) for r in statement["Resource"])
    by_tag = {"StringEquals": {f"aws:ResourceTag/{TAG_SECRET}": ["app/api"]}}
    for sid in ("IssuerVerifyApiKey", "IssuerRevokeApiKey", "IssuerDeleteApiKey"):
        assert statements[sid]["Resource"] == [KEY_ARN.format("*")]
        assert statements[sid]["Condition"] == by_tag
    tagging = {
        "StringEquals": {f"aws:RequestTag/{TAG_SECRET}": ["app/api"]},
        "ForAllValues:StringEquals": {"aws:TagKeys": ["rotator:rotation-id", TAG_SECRET]},
    }
    assert statements["IssuerCreateApiKey"]["Condition"] == tagging
    assert statements["IssuerTagApiKey"]["Condition"] == tagging
    # The tags resource names API keys' tags only: a real key's, not a stage's.
    key_id = boto3.client("apigateway", region_name=REGION).get_api_keys()["items"][0]["id"]
    stage = f"arn:aws:apigateway:{REGION}::/restapis/abc/stages/prod"
    patterns = statements["IssuerTagApiKey"]["Resource"]
    for arn, matches in ((KEY_ARN.format(key_id), True), (stage, False)):
        for form in (quote(arn, safe=""), arn):
            tags_arn = f"arn:aws:apigateway:{REGION}::/tags/{form}"
            assert any(fnmatch.fnmatchcase(tags_arn, p) for p in patterns) is matches


def test_keys_not_tagged_for_the_secret_are_refused(
    moto_aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Holding the policy, rotator may read its own key but not touch or create any other."""
    world = _seed(tmp_path, FakeClock())
    ag = boto3.client("apigateway", region_name=REGION)
    foreign = ag.create_api_key(name="partner", enabled=True)["id"]
    other = ag.create_api_key(name="other", enabled=True, tags={TAG_SECRET: "app/other"})["id"]
    ours = ag.create_api_key(name="ours", enabled=True, tags={TAG_SECRET: "app/api"})["id"]
    key_id, secret = _restricted(world, world.policy)
    monkeypatch.setattr(_SignedLikeAws, "conditioned", world.policy)
    rotator = boto3.client(
        "apigateway", region_name=REGION, aws_access_key_id=key_id, aws_secret_access_key=secret
    )
    disable = [{"op": "replace", "path": "/enabled", "value": "false"}]
    refused = [
        *(lambda k=k: rotator.get_api_key(apiKey=k) for k in (foreign, other)),
        *(
            lambda k=k: rotator.update_api_key(apiKey=k, patchOperations=disable)
            for k in (foreign, other)
        ),
        *(lambda k=k: rotator.delete_api_key(apiKey=k) for k in (foreign, other)),
        lambda: rotator.create_api_key(name="untagged", enabled=True),
        lambda: rotator.create_api_key(name="x", enabled=True, tags={TAG_SECRET: "app/other"}),
        lambda: rotator.create_api_key(name="y", tags={TAG_SECRET: "app/api", "owner": "me"}),
        lambda: rotator.tag_resource(
            resourceArn=KEY_ARN.format(foreign), tags={TAG_SECRET: "app/other"}
        ),
    ]
    with enable_iam_authentication():
        assert rotator.get_api_key(apiKey=ours)["id"] == ours
        for call in refused:
            with pytest.raises(ClientError, match="AccessDenied"):
                call()
    keys = {k["id"]: k for k in ag.get_api_keys()["items"]}
    assert keys[foreign]["enabled"] and keys[other]["enabled"]
    assert {k["name"] for k in keys.values()} == {"orders-first", "partner", "other", "ours"}


def test_an_untagged_first_key_is_not_revoked(
    moto_aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first key nobody tagged for the secret stays enabled: revoke is refused, as documented."""
    clock = FakeClock()
    world = _seed(tmp_path, clock, tag_first_key=False)
    engine, ended = _run_as(world, world.policy, tmp_path, clock, monkeypatch)
    assert ended["app/db"] is State.DONE and ended["app/iam"] is State.DONE
    assert ended["app/api"] is None
    failure = first_failure(engine.journal, "app/api")
    assert failure is not None and failure.step == "revoke"
    assert "UpdateApiKey" in failure.detail
    [first] = [
        k
        for k in boto3.client("apigateway", region_name=REGION).get_api_keys()["items"]
        if k["name"] == "orders-first"
    ]
    assert first["enabled"]


def test_signature_fix_still_refuses_a_wrong_secret(
    moto_aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the bodiless-signature fix, a GET signed with the wrong secret key is still refused."""
    world = _seed(tmp_path, FakeClock())
    key_id, _secret = _restricted(world, world.policy)
    ag = boto3.client(
        "apigateway",
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key="not-the-secret-key-of-this-user-at-all",
    )
    with enable_iam_authentication(), pytest.raises(ClientError) as caught:
        ag.get_api_keys()
    assert "SignatureDoesNotMatch" in str(caught.value)


def test_rotations_succeed_with_exactly_the_generated_policy(
    moto_aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a user holding only the generated policy, all three rotations reach done."""
    clock = FakeClock()
    world = _seed(tmp_path, clock)
    old_key = json.loads(
        boto3.client("secretsmanager", region_name=REGION).get_secret_value(SecretId="app/iam")[
            "SecretString"
        ]
    )["AccessKeyId"]
    _, ended = _run_as(world, world.policy, tmp_path, clock, monkeypatch)
    assert ended == dict.fromkeys(SECRETS, State.DONE)
    keys = boto3.client("iam", region_name=REGION).list_access_keys(UserName=USER)
    assert [k["AccessKeyId"] for k in keys["AccessKeyMetadata"]] != [old_key]
    assert len(keys["AccessKeyMetadata"]) == 1


def test_without_any_statement_nothing_rotates(
    moto_aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user with a policy granting nothing is refused at once: moto's enforcement is real."""
    clock = FakeClock()
    world = _seed(tmp_path, clock)
    # IAM refuses a policy without statements: grant only what every identity may anyway.
    deny_all = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Nothing",
                "Effect": "Allow",
                "Action": ["sts:GetCallerIdentity"],
                "Resource": ["*"],
            }
        ],
    }
    engine, ended = _run_as(world, deny_all, tmp_path, clock, monkeypatch)
    assert ended == dict.fromkeys(SECRETS, None)
    failure = first_failure(engine.journal, "app/db")
    assert failure is not None and failure.step == "mint"


@pytest.mark.parametrize("sid", sorted(DROPPED))
def test_each_statement_is_needed_by_the_step_it_names(
    sid: str, moto_aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without one statement a rotation fails at its step on its call; the others still rotate."""
    clock = FakeClock()
    world = _seed(tmp_path, clock)
    expected = DROPPED[sid]
    dropped = {
        "Version": world.policy["Version"],
        "Statement": [s for s in world.policy["Statement"] if s["Sid"] != sid],
    }
    engine, ended = _run_as(world, dropped, tmp_path, clock, monkeypatch)
    for name in SECRETS:
        if name not in expected.secrets:
            assert ended[name] is State.DONE, f"{name} does not need {sid}"
            continue
        assert ended[name] is not State.DONE, f"{name} rotated without {sid}"
        failure = first_failure(engine.journal, name)
        assert failure is not None, f"{name}: no failure recorded without {sid}"
        assert failure.step == expected.step, f"{name}: {failure}"
        assert expected.operation in failure.detail, f"{name}: {failure}"


def test_account_comes_from_sts_once_when_not_given(moto_aws: None, tmp_path: Path) -> None:
    """Without --account the ARNs carry the caller's account, asked once and kept in the cache."""
    world = _seed(tmp_path, FakeClock())
    engine = _engine(tmp_path / "again.db", world.config, FakeClock())
    runtime: Runtime = engine.runtime
    assert AWS_ACCOUNT not in runtime.cache
    collect(engine.binding(n) for n in sorted(engine.policies))
    assert runtime.cache[AWS_ACCOUNT] == ACCOUNT


def test_arn_forms_need_no_call_when_the_secret_is_an_arn(aws_env: None) -> None:
    """A secret given by ARN keeps it (a partial ARN gets the suffix); nothing asks STS."""
    clock = FakeClock()
    runtime = Runtime(clock=clock, sleep=clock.sleep)
    full = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:prod/db-AbC123"
    partial = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:prod/db"
    assert secret_arn(runtime, full, None) == full
    assert secret_arn(runtime, partial, None) == partial + "-??????"
    assert AWS_ACCOUNT not in runtime.cache


def test_partition_follows_the_region(aws_env: None) -> None:
    """ARNs in China and GovCloud regions carry their partition."""
    clock = FakeClock()
    runtime = Runtime(clock=clock, sleep=clock.sleep, cache={AWS_ACCOUNT: "111122223333"})
    assert secret_arn(runtime, "db", "cn-north-1").startswith("arn:aws-cn:secretsmanager:")
    assert user_arns(runtime, "ci", "us-gov-west-1") == [
        "arn:aws-us-gov:iam::111122223333:user/ci",
        "arn:aws-us-gov:iam::111122223333:user/*/ci",
    ]
    assert apigateway_arn(runtime, "/apikeys", None) == "arn:aws:apigateway:us-east-1::/apikeys"
