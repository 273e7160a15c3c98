"""The quota model: each provider declares its quotas once, and the rest follows from them.

An adapter's ``quotas`` mapping (what ``ROTATOR_RATE_LIMITS`` may set) is
the rates of the ``Quota`` values its module declares; AWS decides which
quota a call counts against, and whether it is paced per Region or per
account, from the same declarations.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from moto import mock_aws

from providers.aws.clients import ACCOUNT, QUOTAS, REGIONAL, client, quota
from rotator.adapters import Quota, Runtime, rates
from rotator.adapters.discovery import registry

#: Every quota rotator paces under, with its default calls per second.
DEFAULTS = {
    "secretsmanager.write": 50.0,
    "secretsmanager.read": 1000.0,
    "apigateway": 5.0,
    "iam": 10.0,
    "sts": 50.0,
    "vault": 50.0,
    "keyvault": 200.0,
    "kubernetes": 20.0,
    "gitlab": 10.0,
    "github.write": 1.0,
}
#: What AWS publishes as counting against Secrets Manager's 50 writes a second (its
#: quota table says ReplicateSecretToRegion; the API's operation is ReplicateSecretToRegions).
SECRETS_MANAGER_WRITES = {
    "PutSecretValue",
    "UpdateSecret",
    "UpdateSecretVersionStage",
    "RemoveRegionsFromReplication",
    "ReplicateSecretToRegions",
    "StopReplicationToReplica",
}


def _adapters() -> list[type[Any]]:
    base = registry()
    roles = (base.stores, base.issuers, base.targets, base.verifiers, base.notifiers)
    return [adapter for role in roles for adapter in role.values()]


def declared(adapter: type[Any]) -> tuple[Quota, ...]:
    """The ``Quota`` values the module of ``adapter`` declares (``QUOTAS``), if any."""
    found: tuple[Quota, ...] = getattr(sys.modules[adapter.__module__], "QUOTAS", ())
    return found


def _operations(service: str) -> list[str]:
    model = botocore.session.get_session().get_service_model(service)
    return list(model.operation_names)


def test_every_installed_adapters_quotas_are_the_rates_of_its_declared_quotas() -> None:
    """``quotas`` is ``rates(QUOTAS)`` of the adapter's module, and no name or rate moved."""
    seen: dict[str, float] = {}
    for adapter in _adapters():
        assert dict(adapter.quotas) == rates(declared(adapter)), adapter
        for each in declared(adapter):
            assert isinstance(each, Quota), adapter
            assert seen.setdefault(each.name, each.rate) == each.rate, each.name
            assert each.scope and each.documented, each.name
    assert seen == DEFAULTS


def test_a_quota_is_declared_once_with_a_usable_name_and_rate() -> None:
    """Two quotas of one name, a name ROTATOR_RATE_LIMITS cannot set, a rate of 0: refused."""
    with pytest.raises(ValueError, match="declared twice"):
        rates([Quota("pager", 1.0, "account"), Quota("pager", 2.0, "account")])
    for name in ("", "a=b", "a,b"):
        with pytest.raises(ValueError, match="cannot be set"):
            Quota(name, 1.0, "account")
    for rate in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="positive"):
            Quota("pager", rate, "account")


def test_every_secrets_manager_write_counts_against_the_write_quota_and_no_read_does() -> None:
    """Each operation of the Secrets Manager API: a declared write is a write, all else a read."""
    [write] = [q for q in QUOTAS if q.name == "secretsmanager.write"]
    assert write.calls == SECRETS_MANAGER_WRITES
    operations = _operations("secretsmanager")
    assert write.calls <= set(operations), "a declared call the API does not have"
    for operation in operations:
        expected = "secretsmanager.write" if operation in write.calls else "secretsmanager.read"
        assert quota("secretsmanager", operation) == expected, operation
    for read in ("GetSecretValue", "DescribeSecret", "ListSecretVersionIds", "unknown"):
        assert quota("secretsmanager", read) == "secretsmanager.read"


@pytest.mark.parametrize("service", ["iam", "sts", "apigateway"])
def test_every_call_of_a_single_quota_service_counts_against_it(service: str) -> None:
    """IAM, STS and API Gateway each have one quota, which every call of theirs counts against."""
    for operation in _operations(service):
        assert quota(service, operation) == service, operation


def test_a_service_with_no_declared_quota_is_named_after_itself() -> None:
    """A call of a service no quota is declared for counts against its own (unpaced) name."""
    assert quota("s3", "PutObject") == "s3"


def test_aws_scopes_are_what_aws_meters_by() -> None:
    """IAM and STS are metered per account, the others per account and Region."""
    scopes = {q.name: q.scope for q in QUOTAS}
    assert {name for name, scope in scopes.items() if scope == ACCOUNT} == {"iam", "sts"}
    assert {name for name, scope in scopes.items() if scope == REGIONAL} == {
        "secretsmanager.write",
        "secretsmanager.read",
        "apigateway",
    }


@pytest.mark.usefixtures("aws_env")
def test_calls_are_paced_per_region_or_per_account_as_declared() -> None:
    """Calls in two Regions: one IAM bucket for the account, Secrets Manager buckets per Region."""
    slept: list[float] = []
    with mock_aws():
        runtime = Runtime(clock=lambda: datetime.now(UTC), sleep=slept.append)
        for region in ("us-east-1", "eu-west-1"):
            client(runtime, "iam", region).list_users()
            sm = client(runtime, "secretsmanager", region)
            sm.create_secret(Name="db", SecretString="v1")
            sm.put_secret_value(SecretId="db", SecretString="v2")
            client(runtime, "sts", region).get_caller_identity()
        assert sorted(runtime.pacing.buckets()) == [
            "iam@",
            "secretsmanager.read@eu-west-1",
            "secretsmanager.read@us-east-1",
            "secretsmanager.write@eu-west-1",
            "secretsmanager.write@us-east-1",
            "sts@",
        ]
