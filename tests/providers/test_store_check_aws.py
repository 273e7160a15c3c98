"""``SecretsManagerStore.check``: IAM's policy simulator asked, against in-process moto.

moto 5.2.5 does not implement ``SimulatePrincipalPolicy`` (in-process it
raises ``NotImplementedError``), so the tests that need the simulator's
answer have it given at botocore's ``before-call`` (``helpers.inject``), in
the shape IAM's API reference documents; every other call (STS, IAM
``GetRole``, Secrets Manager) is moto's.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from providers.aws.clients import client
from providers.aws.secretsmanager import (
    ACTIONS,
    SecretsManagerConfig,
    SecretsManagerStore,
    interpret,
    principal_of,
)
from rotator.adapters.values import Runtime, Unchecked
from rotator.errors import NotFoundError, PermissionDeniedError
from tests.providers.helpers import error_reply, inject

pytestmark = pytest.mark.usefixtures("aws")

SECRET_ID = "prod/payments/db"
VALUE = "old-password-0000000001"
ACCOUNT = "123456789012"
USER_ARN = f"arn:aws:iam::{ACCOUNT}:user/svc/rotator"


@pytest.fixture
def secret_arn() -> str:
    """Create the secret (tagged, holding VALUE) with moto's default identity; return its ARN."""
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    created = sm.create_secret(
        Name=SECRET_ID, SecretString=VALUE, Tags=[{"Key": "team", "Value": "payments"}]
    )
    return str(created["ARN"])


@pytest.fixture
def as_user(monkeypatch: pytest.MonkeyPatch, secret_arn: str) -> str:
    """Make the store's clients sign as IAM user svc/rotator (moto: an iam ARN); return its ARN."""
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_user(UserName="rotator", Path="/svc/")
    key = iam.create_access_key(UserName="rotator")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    return USER_ARN


@pytest.fixture
def calls(runtime: Runtime) -> list[str]:
    """Record every AWS call the store makes, as ``provider:Operation:outcome``."""
    seen: list[str] = []
    runtime.on_request = lambda provider, operation, outcome: seen.append(
        f"{provider}:{operation}:{outcome}"
    )
    return seen


def make_store(runtime: Runtime) -> SecretsManagerStore:
    """Build the store for SECRET_ID."""
    return SecretsManagerStore(SecretsManagerConfig(secret_id=SECRET_ID), runtime, "payments-db")


def result(action: str, resource: str, decision: str, missing: list[str] | None = None) -> Any:
    """Return one EvaluationResult in the shape IAM's SimulatePrincipalPolicy answers."""
    matched = (
        [
            {
                "SourcePolicyId": "rotator-secrets",
                "SourcePolicyType": "user",
                "StartPosition": {"Line": 1, "Column": 39},
                "EndPosition": {"Line": 1, "Column": 212},
            }
        ]
        if decision != "implicitDeny"
        else []
    )
    return {
        "EvalActionName": action,
        "EvalResourceName": resource,
        "EvalDecision": decision,
        "MatchedStatements": matched,
        "MissingContextValues": missing or [],
        "OrganizationsDecisionDetail": {"AllowedByOrganizations": True},
        "PermissionsBoundaryDecisionDetail": {"AllowedByPermissionsBoundary": True},
        "EvalDecisionDetails": {},
        "ResourceSpecificResults": [
            {
                "EvalResourceName": resource,
                "EvalResourceDecision": decision,
                "MatchedStatements": matched,
                "MissingContextValues": missing or [],
                "EvalDecisionDetails": {},
                "PermissionsBoundaryDecisionDetail": {"AllowedByPermissionsBoundary": True},
            }
        ],
    }


def simulated(results: list[Any], marker: str | None = None) -> Any:
    """Return a before-call answer carrying one page of SimulatePrincipalPolicy results."""
    http = AWSResponse("https://iam.amazonaws.com/", 200, HTTPHeaders(), None)
    page: dict[str, Any] = {
        "EvaluationResults": results,
        "IsTruncated": marker is not None,
        "ResponseMetadata": {"HTTPStatusCode": 200, "RequestId": "req-simulated"},
    }
    if marker is not None:
        page["Marker"] = marker
    return http, page


def decisions(arn: str, **by_action: str) -> list[Any]:
    """Return results for every action of ACTIONS: allowed unless named (by short name)."""
    return [
        result(action, arn, by_action.get(action.partition(":")[2], "allowed"))
        for action in ACTIONS
    ]


def test_moto_without_the_simulator_cannot_be_checked(
    runtime: Runtime, as_user: str, calls: list[str]
) -> None:
    """moto lacks SimulatePrincipalPolicy: the check says it could not tell, and does not fail."""
    answer = make_store(runtime).check()
    assert isinstance(answer, Unchecked), "reported as unknown by rotator check, never ok"
    assert answer == (
        "write access could not be checked: the endpoint does not implement the IAM policy "
        "simulator; the first rotation will tell"
    )
    assert calls == [
        "aws-secretsmanager:DescribeSecret:ok",
        "aws-sts:GetCallerIdentity:ok",
        "aws-iam:SimulatePrincipalPolicy:permanent",
    ]


def test_every_action_allowed_passes(runtime: Runtime, as_user: str, secret_arn: str) -> None:
    """All four actions allowed on the secret's ARN: the check names the user, actions and ARN."""
    iam = client(runtime, "iam")
    with inject(iam, "SimulatePrincipalPolicy", lambda _: simulated(decisions(secret_arn))) as sent:
        answer = make_store(runtime).check()
    assert answer == (
        f"IAM policy simulator: {USER_ARN} may GetSecretValue, DescribeSecret, PutSecretValue "
        f"and UpdateSecretVersionStage on {secret_arn} (its IAM policies; a resource policy on "
        "the secret or its KMS key is not simulated)"
    )
    assert VALUE not in answer
    [request] = sent
    body = request["body"]
    assert body["PolicySourceArn"] == USER_ARN
    assert body["ActionNames.member.1"] == "secretsmanager:GetSecretValue"
    assert body["ActionNames.member.4"] == "secretsmanager:UpdateSecretVersionStage"
    assert body["ResourceArns.member.1"] == secret_arn
    assert body["ContextEntries.member.1.ContextKeyName"] == "aws:ResourceTag/team"
    assert body["ContextEntries.member.1.ContextKeyValues.member.1"] == "payments"
    assert body["ContextEntries.member.2.ContextKeyName"] == "secretsmanager:ResourceTag/team"


def test_denied_writes_raise_naming_the_actions(
    runtime: Runtime, as_user: str, secret_arn: str
) -> None:
    """implicitDeny on PutSecretValue and explicitDeny on the relabel: PermissionDeniedError."""
    answer = simulated(
        decisions(
            secret_arn, PutSecretValue="implicitDeny", UpdateSecretVersionStage="explicitDeny"
        )
    )
    with (
        inject(client(runtime, "iam"), "SimulatePrincipalPolicy", lambda _: answer),
        pytest.raises(PermissionDeniedError) as caught,
    ):
        make_store(runtime).check()
    assert str(caught.value) == (
        f"aws-secretsmanager:SimulatePrincipalPolicy: the IAM policy simulator denies {USER_ARN} "
        "PutSecretValue (implicitDeny) and UpdateSecretVersionStage (explicitDeny) on "
        f"{secret_arn}, which a rotation needs (its IAM policies; a resource policy on the "
        "secret or its KMS key is not simulated)"
    )
    assert VALUE not in str(caught.value)


def test_results_over_two_pages_are_all_read(
    runtime: Runtime, as_user: str, secret_arn: str
) -> None:
    """A truncated answer is followed by its Marker; a denial on the second page still counts."""
    pages = iter(
        [
            simulated(decisions(secret_arn)[:2], marker="page-2"),
            simulated(decisions(secret_arn, PutSecretValue="implicitDeny")[2:]),
        ]
    )
    with (
        inject(client(runtime, "iam"), "SimulatePrincipalPolicy", lambda _: next(pages)) as sent,
        pytest.raises(PermissionDeniedError) as caught,
    ):
        make_store(runtime).check()
    assert "PutSecretValue (implicitDeny) on" in str(caught.value)
    assert [r["body"].get("Marker") for r in sent] == [None, "page-2"]


def test_a_condition_on_a_missing_key_is_undecided(
    runtime: Runtime, as_user: str, secret_arn: str
) -> None:
    """implicitDeny for want of a context key is not a denial: the check says it cannot decide."""
    results = decisions(secret_arn)
    results[2] = result(ACTIONS[2], secret_arn, "implicitDeny", ["aws:SourceVpce"])
    with inject(client(runtime, "iam"), "SimulatePrincipalPolicy", lambda _: simulated(results)):
        answer = make_store(runtime).check()
    assert answer == (
        f"write access could not be checked: the IAM policy simulator cannot decide for "
        f"{USER_ARN} (PutSecretValue needs context keys aws:SourceVpce); the first rotation "
        "will tell"
    )


def test_simulator_access_denied_cannot_be_checked(runtime: Runtime, as_user: str) -> None:
    """AccessDenied on iam:SimulatePrincipalPolicy: the check says so instead of failing."""
    refused = error_reply("AccessDenied", 403)
    with inject(client(runtime, "iam"), "SimulatePrincipalPolicy", lambda _: refused):
        answer = make_store(runtime).check()
    assert answer == (
        "write access could not be checked: the identity may not call "
        f"iam:SimulatePrincipalPolicy on {USER_ARN}; the first rotation will tell"
    )


def test_an_assumed_role_is_simulated_as_its_role_with_its_path(
    runtime: Runtime, secret_arn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session of role service/rotator is simulated as the role's ARN, path from GetRole."""
    iam = boto3.client("iam", region_name="us-east-1")
    role = iam.create_role(
        RoleName="rotator", Path="/service/", AssumeRolePolicyDocument=json.dumps({})
    )["Role"]
    creds = boto3.client("sts", region_name="us-east-1").assume_role(
        RoleArn=role["Arn"], RoleSessionName="rotator-run"
    )["Credentials"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", creds["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", creds["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", creds["SessionToken"])
    answer = simulated(decisions(secret_arn))
    with inject(client(runtime, "iam"), "SimulatePrincipalPolicy", lambda _: answer) as sent:
        checked = make_store(runtime).check()
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/service/rotator"
    assert sent[0]["body"]["PolicySourceArn"] == role_arn
    assert checked.startswith(f"IAM policy simulator: {role_arn} may GetSecretValue")


def test_a_role_get_role_refuses_is_simulated_without_a_path(
    runtime: Runtime, secret_arn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When GetRole is refused, the session's role is simulated by the ARN its name gives."""
    iam = boto3.client("iam", region_name="us-east-1")
    role = iam.create_role(RoleName="rotator", AssumeRolePolicyDocument=json.dumps({}))["Role"]
    creds = boto3.client("sts", region_name="us-east-1").assume_role(
        RoleArn=role["Arn"], RoleSessionName="rotator-run"
    )["Credentials"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", creds["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", creds["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", creds["SessionToken"])
    refused = error_reply("AccessDenied", 403)
    answer = simulated(decisions(secret_arn, PutSecretValue="implicitDeny"))
    with (
        inject(client(runtime, "iam"), "GetRole", lambda _: refused) as get_role,
        inject(client(runtime, "iam"), "SimulatePrincipalPolicy", lambda _: answer) as sent,
        pytest.raises(PermissionDeniedError) as caught,
    ):
        make_store(runtime).check()
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/rotator"
    assert [r["body"]["RoleName"] for r in get_role] == ["rotator"]
    assert sent[0]["body"]["PolicySourceArn"] == role_arn
    assert f"denies {role_arn} PutSecretValue (implicitDeny) on" in str(caught.value)


def test_the_root_user_cannot_be_simulated(runtime: Runtime, secret_arn: str) -> None:
    """The account's root user has no IAM policies to simulate: said, and IAM is not asked."""
    identity = {
        "UserId": ACCOUNT,
        "Account": ACCOUNT,
        "Arn": f"arn:aws:iam::{ACCOUNT}:root",
        "ResponseMetadata": {"HTTPStatusCode": 200, "RequestId": "req-root"},
    }
    http = AWSResponse("https://sts.amazonaws.com/", 200, HTTPHeaders(), None)
    with (
        inject(client(runtime, "sts"), "GetCallerIdentity", lambda _: (http, identity)),
        inject(client(runtime, "iam"), "SimulatePrincipalPolicy", lambda _: None) as asked,
    ):
        answer = make_store(runtime).check()
    assert answer == (
        "write access could not be checked: rotator runs as the account's root user, whom the "
        "IAM policy simulator cannot simulate; the first rotation will tell"
    )
    assert asked == []


def test_moto_default_identity_cannot_be_simulated(
    runtime: Runtime, secret_arn: str, calls: list[str]
) -> None:
    """moto's default caller is no IAM user or role: said without asking IAM."""
    assert make_store(runtime).check() == (
        f"write access could not be checked: rotator runs as arn:aws:sts::{ACCOUNT}:user/moto, "
        "whom the IAM policy simulator cannot simulate; the first rotation will tell"
    )
    assert calls == ["aws-secretsmanager:DescribeSecret:ok", "aws-sts:GetCallerIdentity:ok"]


def test_a_missing_secret_is_not_found(runtime: Runtime, as_user: str) -> None:
    """A secret that does not exist fails the check with NotFoundError before IAM is asked."""
    store = SecretsManagerStore(SecretsManagerConfig(secret_id="no/such"), runtime, "x")
    with pytest.raises(NotFoundError):
        store.check()


@pytest.mark.parametrize(
    ("caller", "source", "role"),
    [
        (USER_ARN, USER_ARN, None),
        (
            f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Admin_0123/jane@example.com",
            f"arn:aws:iam::{ACCOUNT}:role/AWSReservedSSO_Admin_0123",
            "AWSReservedSSO_Admin_0123",
        ),
        (
            f"arn:aws-cn:sts::{ACCOUNT}:assumed-role/rotator/i-0abc",
            f"arn:aws-cn:iam::{ACCOUNT}:role/rotator",
            "rotator",
        ),
        (f"arn:aws:iam::{ACCOUNT}:root", None, None),
        (f"arn:aws:sts::{ACCOUNT}:federated-user/jane", None, None),
        # moto's default identity: an sts "user", which AWS never answers.
        (f"arn:aws:sts::{ACCOUNT}:user/moto", None, None),
        ("not-an-arn", None, None),
    ],
)
def test_principal_of(caller: str, source: str | None, role: str | None) -> None:
    """Users are simulated as themselves, sessions as their roles; root and federated not at all."""
    principal = principal_of(caller)
    assert (principal.arn, principal.role_name) == (source, role)
    assert bool(principal.reason) == (source is None)


def test_interpret_takes_the_worst_decision_per_action() -> None:
    """A resource-specific explicitDeny outweighs an allowed overall decision for that action."""
    arn = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/payments/db-AbCdEf"
    results = decisions(arn)
    results[3]["ResourceSpecificResults"][0]["EvalResourceDecision"] = "explicitDeny"
    simulation = interpret(results)
    assert simulation.allowed == ACTIONS[:3]
    assert simulation.denied == ((ACTIONS[3], "explicitDeny"),)
    assert simulation.undecided == ()


def test_interpret_reports_actions_left_out_and_compares_names_case_insensitively() -> None:
    """An action the results leave out is undecided; IAM's action names ignore case."""
    arn = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/payments/db-AbCdEf"
    results = [result(action.lower(), arn, "allowed") for action in ACTIONS[:3]]
    simulation = interpret(results)
    assert simulation.allowed == ACTIONS[:3]
    assert simulation.denied == ()
    assert simulation.undecided == ((ACTIONS[3], ()),)


def test_interpret_keeps_an_explicit_deny_despite_missing_keys() -> None:
    """explicitDeny is a denial even when context keys were missing; implicitDeny is undecided."""
    arn = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/payments/db-AbCdEf"
    results = [
        result(ACTIONS[0], arn, "allowed"),
        result(ACTIONS[1], arn, "allowed"),
        result(ACTIONS[2], arn, "explicitDeny", ["aws:SourceIp"]),
        result(ACTIONS[3], arn, "implicitDeny", ["aws:SourceIp", "aws:CurrentTime"]),
    ]
    simulation = interpret(results)
    assert simulation.denied == ((ACTIONS[2], "explicitDeny"),)
    assert simulation.undecided == ((ACTIONS[3], ("aws:CurrentTime", "aws:SourceIp")),)
