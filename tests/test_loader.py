"""Policy files: every malformed input is refused at its file, line and column.

The registry here carries the real ``Config`` models of rotator's adapters
(and a stand-in second store), so that policies are validated exactly as in
production without loading any adapter implementation.
"""

from __future__ import annotations

import gc
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import Field

from providers.aws.apigateway import ApiKeyConfig
from providers.aws.iam import AccessKeyConfig
from providers.aws.secretsmanager import SecretsManagerConfig
from providers.random import RandomConfig
from rotator.adapters.discovery import Registry
from rotator.adapters.roles import Issuer, Store
from rotator.adapters.values import ProviderConfig
from rotator.errors import ConfigError, PolicyError, Problem
from rotator.policy.loader import _load_files, load_policies, load_readable_policies
from rotator.policy.located_yaml import MAX_FILE_BYTES
from rotator.policy.quick_load import SharedModels, load_quickly

# ------------------------------------------------------------------ the registry


class VaultKvConfig(ProviderConfig):
    """Stand-in fields of a vault-kv store, so that the registry lists two stores."""

    mount: str = "secret"
    path: str = Field(min_length=1)
    key: str = "value"


class SecretsManagerEntry(Store[SecretsManagerConfig]):
    """Registry entry carrying the real aws-secretsmanager Config; never instantiated."""

    provider = "aws-secretsmanager"
    Config = SecretsManagerConfig


class VaultKvEntry(Store[VaultKvConfig]):
    """Registry entry for the stand-in vault-kv store; never instantiated."""

    provider = "vault-kv"
    Config = VaultKvConfig


class RandomEntry(Issuer[RandomConfig]):
    """Registry entry carrying the real random issuer Config; never instantiated."""

    kind = "random"
    Config = RandomConfig


class AccessKeyEntry(Issuer[AccessKeyConfig]):
    """Registry entry carrying the real aws-iam-access-key Config; never instantiated."""

    kind = "aws-iam-access-key"
    Config = AccessKeyConfig


class ApiKeyEntry(Issuer[ApiKeyConfig]):
    """Registry entry carrying the real aws-apigateway-api-key Config; never instantiated."""

    kind = "aws-apigateway-api-key"
    Config = ApiKeyConfig


REGISTRY = Registry(
    stores={"aws-secretsmanager": SecretsManagerEntry, "vault-kv": VaultKvEntry},
    issuers={
        "random": RandomEntry,
        "aws-iam-access-key": AccessKeyEntry,
        "aws-apigateway-api-key": ApiKeyEntry,
    },
)


# ---------------------------------------------------------------------- helpers


def _write(directory: Path, name: str, text: str) -> Path:
    """Write a dedented policy file and return its path."""
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _problems(path: Path) -> list[Problem]:
    """Load ``path`` expecting a PolicyError and return its problems."""
    with pytest.raises(PolicyError) as caught:
        load_policies(path, REGISTRY)
    return caught.value.problems


def _assert_problem(
    problems: list[Problem], file: Path, line: int, column: int, path: str, reason: str
) -> None:
    """Assert that one problem is at exactly file:line:col with this path and reason."""
    where = f"{file}:{line}:{column}"
    found = [p for p in problems if f"{p.file}:{p.line}:{p.column}" == where and p.path == path]
    assert found, f"no problem at {where} {path}; got:\n" + "\n".join(map(str, problems))
    assert any(reason in p.reason for p in found), "\n".join(map(str, found))


# ------------------------------------------------------- malformed policies

# Each case: the file, then the expected (line, column, field path, reason).
# Lines and columns are 1-based; the valid secret these start from is
#
#   1 secrets:
#   2   - name: payments-db
#   3     store:
#   4       provider: aws-secretsmanager
#   5       secret_id: prod/payments/db
#   6     schedule:
#   7       every: 30d
#   8     grace: 24h

MALFORMED = [
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
            grace: 24h
        secret: []
        """,
        (9, 1, "secret", "unknown field 'secret'; did you mean 'secrets'?"),
        id="unknown-top-level-key",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
            grase: 24h
        """,
        (8, 5, "secrets[0].grase", "unknown field 'grase'; did you mean 'grace'?"),
        id="unknown-secret-key",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
              jiter: 1h
            grace: 24h
        """,
        (8, 7, "secrets[0].schedule.jiter", "unknown field 'jiter'; did you mean 'jitter'?"),
        id="unknown-schedule-key",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
              regoin: us-east-1
            schedule:
              every: 30d
            grace: 24h
        """,
        (6, 7, "secrets[0].store.regoin", "unknown field 'regoin'; did you mean 'region'?"),
        id="unknown-store-field",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
            grace: 24h
        """,
        (
            4,
            17,
            "secrets[0].store.provider",
            "unknown provider 'aws-secretmanager'; did you mean 'aws-secretsmanager'? "
            "known: aws-secretsmanager, vault-kv",
        ),
        id="unknown-provider-close-match",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: gcp
              secret_id: prod/payments/db
            schedule:
              every: 30d
            grace: 24h
        """,
        (
            4,
            17,
            "secrets[0].store.provider",
            "unknown provider 'gcp'; known: aws-secretsmanager, vault-kv",
        ),
        id="unknown-provider-no-match",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store: {secret_id: prod/payments/db}
            schedule:
              every: 30d
            grace: 24h
        """,
        (3, 5, "secrets[0].store.provider", "missing required field 'provider'"),
        id="store-without-provider",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            issuer:
              kind: randm
            schedule:
              every: 30d
            grace: 24h
        """,
        (
            7,
            13,
            "secrets[0].issuer.kind",
            "unknown issuer kind 'randm'; did you mean 'random'? known: aws-apigateway-api-key,",
        ),
        id="unknown-issuer-kind",
    ),
    pytest.param(
        """\
        secrets:
          - store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
            grace: 24h
        """,
        (2, 5, "secrets[0].name", "missing required field 'name'"),
        id="missing-name",
    ),
    pytest.param(
        """\
        secrets:
          - name: Payments DB
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
            grace: 24h
        """,
        (2, 11, "secrets[0].name", "invalid name 'Payments DB': use 1 to 128 lowercase letters"),
        id="bad-name",
    ),
    pytest.param(
        """\
        secrets:
          - name: -payments
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
            grace: 24h
        """,
        (2, 11, "secrets[0].name", "starting with a letter or digit"),
        id="name-starting-with-dash",
    ),
    pytest.param(
        f"""\
        secrets:
          - name: {"a" * 129}
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
            grace: 24h
        """,
        (2, 11, "secrets[0].name", "invalid name 'aaaa"),
        id="name-too-long",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            schedule:
              every: 30d
            grace: 24h
        """,
        (2, 5, "secrets[0].store", "missing required field 'store'"),
        id="missing-store",
    ),
    pytest.param(
        """\
        defaults:
          grace: 24h
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
        """,
        (4, 5, "secrets[0].schedule", "missing required field 'schedule'"),
        id="missing-schedule-none-in-defaults",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
        """,
        (2, 5, "secrets[0].grace", "missing required field 'grace'"),
        id="missing-grace",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
              cron: "0 3 * * MON"
            grace: 24h
        """,
        (6, 5, "secrets[0].schedule", "set either 'every' or 'cron', not both"),
        id="both-every-and-cron",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule: {timezone: UTC}
            grace: 24h
        """,
        (6, 5, "secrets[0].schedule", "missing 'every' or 'cron': set exactly one of them"),
        id="neither-every-nor-cron",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              cron: "0 3 * *"
            grace: 24h
        """,
        (7, 13, "secrets[0].schedule.cron", "cron expression must have 5 fields"),
        id="cron-four-fields",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              cron: "61 3 * * *"
            grace: 24h
        """,
        (
            7,
            13,
            "secrets[0].schedule.cron",
            "minute '61': Error validating expression '61': the last value (61) is higher",
        ),
        id="cron-minute-61",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              cron: "0 3 * * Funday"
            grace: 24h
        """,
        (7, 13, "secrets[0].schedule.cron", "invalid day-of-week 'Funday'"),
        id="cron-bad-day-name",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
              timezone: Europe/Berln
            grace: 24h
        """,
        (
            8,
            17,
            "secrets[0].schedule.timezone",
            "unknown time zone 'Europe/Berln'; did you mean 'Europe/Berlin'?",
        ),
        id="bad-timezone",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
              window: Mon-Fri
            grace: 24h
        """,
        (8, 15, "secrets[0].schedule.window", "expected a time range HH:MM-HH:MM"),
        id="window-without-times",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
              window: "Mon-Fri 25:00-05:00"
            grace: 24h
        """,
        (8, 15, "secrets[0].schedule.window", "'25:00' is not a time of day"),
        id="window-bad-hour",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
              window: "Mon-Fry 02:00-05:00"
            grace: 24h
        """,
        (8, 15, "secrets[0].schedule.window", "unknown day 'Fry'"),
        id="window-bad-day",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
              window: "02:00-02:00"
            grace: 24h
        """,
        (8, 15, "secrets[0].schedule.window", "opens and closes at the same time"),
        id="window-empty",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30 days
            grace: 24h
        """,
        (7, 14, "secrets[0].schedule.every", "malformed duration '30 days'"),
        id="duration-with-words",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
            grace: 1x
        """,
        (8, 12, "secrets[0].grace", "malformed duration '1x'"),
        id="duration-bad-unit",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
            grace: yes
        """,
        (8, 12, "secrets[0].grace", "a duration is a string such as 30d, not a boolean"),
        id="duration-boolean",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
              jitter: [1h]
            grace: 24h
        """,
        (8, 7, "secrets[0].schedule.jitter", "a duration is a string such as 30d, not list"),
        id="duration-list",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: P
            grace: 24h
        """,
        (7, 14, "secrets[0].schedule.every", "malformed duration 'P'"),
        id="duration-empty-iso",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
            grace: -1h
        """,
        (8, 12, "secrets[0].grace", "negative duration '-1h'"),
        id="negative-grace",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 1d
            grace: 24h
        """,
        (8, 12, "secrets[0].grace", "grace 1d must be shorter than the rotation interval 1d"),
        id="grace-equals-interval",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              cron: "0 */6 * * *"
            grace: 12h
        """,
        (
            8,
            12,
            "secrets[0].grace",
            "grace 12h must be shorter than the rotation interval 6h (the shortest gap of cron",
        ),
        id="grace-over-cron-interval",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              cron: "0 3 * * 0"
              timezone: America/New_York
            grace: 7d
        """,
        (
            9,
            12,
            "secrets[0].grace",
            "grace 7d must be shorter than the rotation interval 7d (the shortest gap of cron "
            "'0 3 * * 0' in America/New_York; 6d23h across a daylight-saving change)",
        ),
        id="grace-over-a-weekly-cron-across-daylight-saving",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 0s
            grace: 0s
        """,
        (7, 14, "secrets[0].schedule.every", "'every' must be longer than 0s"),
        id="every-zero",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            issuer:
              kind: random
              length: 8
            schedule:
              every: 30d
            grace: 24h
        """,
        (8, 15, "secrets[0].issuer.length", "must be at least 16, got 8"),
        id="random-length-8",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            issuer:
              length: 5000
            schedule:
              every: 30d
            grace: 24h
        """,
        (7, 15, "secrets[0].issuer.length", "must be at most 4096, got 5000"),
        id="random-length-5000-kind-omitted",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            issuer: {kind: random, alphabet: emoji}
            schedule:
              every: 30d
            grace: 24h
        """,
        (
            6,
            38,
            "secrets[0].issuer.alphabet",
            "expected one of 'alphanumeric', 'ascii-printable', 'hex' or 'base64url', got 'emoji'",
        ),
        id="random-bad-alphabet",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            issuer:
              alphabet: hex
              exclude: "0123456789"
            schedule:
              every: 30d
            grace: 24h
        """,
        (6, 5, "secrets[0].issuer", "exclude leaves 6 characters of hex; at least 10 are needed"),
        id="random-exclude-too-much",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
            grace: 24h
            grace: 12h
        """,
        (9, 5, "secrets[0].grace", "duplicate key 'grace' (first at line 8)"),
        id="duplicate-key",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store: {provider: aws-secretsmanager, secret_id: a, secret_id: b}
            schedule:
              every: 30d
            grace: 24h
        """,
        (3, 57, "secrets[0].store.secret_id", "duplicate key 'secret_id' (first at line 3)"),
        id="duplicate-key-in-flow-mapping",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: &interval 30d
            grace: 24h
        """,
        (7, 14, "", "YAML anchors and aliases are not allowed (found &interval)"),
        id="anchor",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
            grace: *day
        """,
        (8, 12, "", "YAML anchors and aliases are not allowed (found *day)"),
        id="alias",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            <<: {grace: 24h}
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
        """,
        (3, 5, "secrets[0]", "YAML merge keys ('<<') are not allowed"),
        id="merge-key",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
            grace: !!python/object/apply:os.system ["true"]
        """,
        (8, 12, "", "YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed"),
        id="python-tag",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
            grace: !!int abc
        """,
        (8, 12, "secrets[0].grace", "invalid YAML: cannot read 'abc' as !!int"),
        id="unreadable-tagged-value",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
            grace:
        """,
        (8, 11, "secrets[0].grace", "a duration is a string such as 30d, not null"),
        id="empty-grace",
    ),
    pytest.param(
        """\
        secrets: []
        ---
        secrets: []
        """,
        (2, 1, "", "a policy file holds one YAML document"),
        id="two-documents",
    ),
    pytest.param(
        "secrets:\n\t- name: payments-db\n",
        (2, 1, "", "invalid YAML: "),
        id="invalid-yaml-tab",
    ),
    pytest.param(
        "",
        (1, 1, "", "the file is empty; expected a mapping with 'secrets'"),
        id="empty-file",
    ),
    pytest.param(
        """\
        - name: payments-db
        - name: billing-db
        """,
        (1, 1, "", "the top level must be a mapping with 'defaults' and 'secrets', got a list"),
        id="top-level-list",
    ),
    pytest.param(
        """\
        defaults:
          grace: 24h
        """,
        (1, 1, "secrets", "missing required field 'secrets'"),
        id="missing-secrets",
    ),
    pytest.param(
        """\
        secrets:
          name: payments-db
        """,
        (2, 3, "secrets", "'secrets' must be a list of secrets, got a mapping"),
        id="secrets-not-a-list",
    ),
    pytest.param(
        """\
        secrets:
          - payments-db
        """,
        (2, 5, "secrets[0]", "each secret must be a mapping, got a string"),
        id="secret-not-a-mapping",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store: aws-secretsmanager
            schedule:
              every: 30d
            grace: 24h
        """,
        (3, 12, "secrets[0].store", "expected a mapping, got a string"),
        id="store-not-a-mapping",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
            grace: 24h
            when_old_still_used: delete
        """,
        (
            9,
            26,
            "secrets[0].when_old_still_used",
            "expected one of 'extend', 'alert' or 'revoke', got 'delete'",
        ),
        id="when-old-still-used",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
            grace: 24h
            labels: [env, prod]
        """,
        (9, 5, "secrets[0].labels", "expected a mapping, got a list"),
        id="labels-list",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
            grace: 24h
            labels: {version: 2}
        """,
        (
            9,
            23,
            "secrets[0].labels.version",
            "expected a string, got a number (2); put it in quotes",
        ),
        id="labels-number",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            description: 2026
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
            grace: 24h
        """,
        (3, 18, "secrets[0].description", "expected a string, got a number (2026)"),
        id="description-number",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
              region: us_east_1
            schedule:
              every: 30d
            grace: 24h
        """,
        (6, 15, "secrets[0].store.region", "'us_east_1' does not match the pattern"),
        id="bad-region",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: ""
            schedule:
              every: 30d
            grace: 24h
        """,
        (5, 18, "secrets[0].store.secret_id", "must not be empty"),
        id="empty-secret-id",
    ),
    pytest.param(
        """\
        secrets:
          - name: ci-deployer
            store:
              provider: aws-secretsmanager
              secret_id: ci/deployer
            issuer: {kind: aws-iam-access-key}
            schedule:
              every: 30d
            grace: 24h
        """,
        (6, 5, "secrets[0].issuer.user", "missing required field 'user'"),
        id="iam-user-missing",
    ),
    pytest.param(
        """\
        secrets:
          - name: partner-api
            store:
              provider: aws-secretsmanager
              secret_id: partner/api-key
            issuer:
              kind: aws-apigateway-api-key
              usage_plans: []
            schedule:
              every: 30d
            grace: 24h
        """,
        (8, 7, "secrets[0].issuer.usage_plans", "must have at least 1 item"),
        id="apigateway-usage-plans-empty",
    ),
    pytest.param(
        """\
        secrets:
          - name: payments-db
            store:
              provider: aws-secretsmanager
              secret_id: prod/payments/db
            schedule:
              every: 30d
            grace: 24h
            source_line: 3
        """,
        (9, 5, "secrets[0].source_line", "unknown field 'source_line'"),
        id="internal-field",
    ),
    pytest.param(
        """\
        defaults:
          name: shared
        secrets: []
        """,
        (2, 3, "defaults.name", "'name' cannot have a default"),
        id="defaults-name",
    ),
    pytest.param(
        """\
        defaults:
          grase: 24h
        secrets: []
        """,
        (2, 3, "defaults.grase", "unknown field 'grase'; did you mean 'grace'?"),
        id="defaults-unknown-key",
    ),
    pytest.param(
        """\
        defaults: [grace]
        secrets: []
        """,
        (1, 11, "defaults", "'defaults' must be a mapping, got a list"),
        id="defaults-not-a-mapping",
    ),
]


@pytest.mark.parametrize(("text", "expected"), MALFORMED)
def test_malformed_policy_is_refused_at_its_place(
    tmp_path: Path, text: str, expected: tuple[int, int, str, str]
) -> None:
    """A malformed policy file is refused with the exact file:line:col, field path and reason."""
    file = _write(tmp_path, "p.yaml", text)
    _assert_problem(_problems(file), file, *expected)


def test_problem_renders_as_file_line_col_path_reason(tmp_path: Path) -> None:
    """A PolicyError prints each problem as FILE:LINE:COL: field.path: reason."""
    file = _write(
        tmp_path,
        "p.yaml",
        """\
        secrets:
          - {name: db, store: {provider: vault-kv, path: db}, schedule: {every: 1d}, grase: 1h}
        """,
    )
    with pytest.raises(PolicyError) as caught:
        load_policies(file, REGISTRY)
    assert str(caught.value).splitlines() == [
        f"{file}:2:5: secrets[0].grace: missing required field 'grace'",
        f"{file}:2:78: secrets[0].grase: unknown field 'grase'; did you mean 'grace'?",
    ]


def test_oversize_file_is_refused_unparsed(tmp_path: Path) -> None:
    """A file over the size cap is refused at 1:1 without being parsed."""
    file = tmp_path / "big.yaml"
    file.write_bytes(b"[" * (MAX_FILE_BYTES + 1))  # would be a YAML error if parsed
    (problem,) = _problems(file)
    assert (problem.line, problem.column, problem.path) == (1, 1, "")
    assert "larger than 1048576 bytes (1 MiB)" in problem.reason


def test_file_at_the_size_cap_is_read(tmp_path: Path) -> None:
    """A file of exactly the cap is parsed normally."""
    body = "secrets: []\n"
    file = tmp_path / "p.yaml"
    file.write_text(body + "#" * (MAX_FILE_BYTES - len(body)))
    assert load_policies(file, REGISTRY) == []


def test_alias_bomb_is_refused_fast_without_expansion(tmp_path: Path) -> None:
    """A billion-laughs file is refused at its first anchor, quickly."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{','.join(['*' + prev] * 9)}]")
    file = tmp_path / "bomb.yaml"
    file.write_text("\n".join(lines) + "\n")
    started = time.perf_counter()
    (problem,) = _problems(file)
    assert time.perf_counter() - started < 1.0
    assert (problem.line, problem.column) == (1, 4)
    assert problem.reason == "YAML anchors and aliases are not allowed (found &a)"


def test_deep_nesting_is_refused_before_it_is_built(tmp_path: Path) -> None:
    """Mappings nested deeper than the limit are refused at the first level too deep."""
    file = tmp_path / "deep.yaml"
    file.write_text("a: " + "{a: " * 40 + "1" + "}" * 40 + "\n")
    (problem,) = _problems(file)
    assert (problem.line, problem.column) == (1, 4 + 31 * 4)
    assert problem.reason == "nested deeper than 32 levels; refused"


def test_non_utf8_file_is_refused_at_the_bad_byte(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are refused with the line and column of the first bad byte."""
    file = tmp_path / "latin1.yaml"
    file.write_bytes(b"secrets:\n  - name: caf\xe9\n")
    (problem,) = _problems(file)
    assert (problem.line, problem.column) == (2, 14)
    assert problem.reason == "the file is not UTF-8 (byte 0xe9)"


def test_duplicate_names_across_files_are_refused_at_the_second(tmp_path: Path) -> None:
    """The second secret with a name is refused, naming the file and line of the first."""
    secret = """\
        secrets:
          - name: billing-db
            store: {provider: vault-kv, path: billing}
            schedule: {every: 30d}
            grace: 1d
          - name: payments-db
            store: {provider: aws-secretsmanager, secret_id: payments}
            schedule: {every: 30d}
            grace: 1d
        """
    first = _write(tmp_path, "a.yaml", secret)
    second = _write(tmp_path, "b.yaml", "# the same secret again\n" + textwrap.dedent(secret))
    problems = _problems(tmp_path)
    assert len(problems) == 2
    _assert_problem(
        problems,
        second,
        3,
        11,
        "secrets[0].name",
        f"duplicate secret name 'billing-db'; first defined at {first}:2",
    )
    _assert_problem(
        problems,
        second,
        7,
        11,
        "secrets[1].name",
        f"duplicate secret name 'payments-db'; first defined at {first}:6",
    )


def test_duplicate_names_in_one_file_are_refused(tmp_path: Path) -> None:
    """Two secrets of one file with the same name are refused at the second."""
    file = _write(
        tmp_path,
        "p.yaml",
        """\
        defaults: {grace: 1d, schedule: {every: 30d}}
        secrets:
          - {name: db, store: {provider: vault-kv, path: a}}
          - {name: db, store: {provider: vault-kv, path: b}}
        """,
    )
    (problem,) = _problems(file)
    assert str(problem) == (
        f"{file}:4:12: secrets[1].name: duplicate secret name 'db'; first defined at {file}:3"
    )


def test_problem_from_defaults_is_reported_once_at_the_defaults_line(tmp_path: Path) -> None:
    """A bad value in defaults is reported at its line in defaults, naming the secrets it breaks."""
    file = _write(
        tmp_path,
        "p.yaml",
        """\
        defaults:
          grace: 1x
          schedule: {every: 30d}
        secrets:
          - name: billing-db
            store: {provider: vault-kv, path: billing}
          - name: payments-db
            store: {provider: vault-kv, path: payments}
          - name: audit-db
            store: {provider: vault-kv, path: audit}
            grace: 1h
        """,
    )
    (problem,) = _problems(file)
    assert str(problem) == (
        f"{file}:2:10: defaults.grace: malformed duration '1x': use e.g. 45s, 90m, 12h, 30d, "
        "2w, 1d12h or P30D (in secrets 'billing-db', 'payments-db')"
    )


def test_default_grace_too_long_for_one_secret_is_reported_at_the_defaults(
    tmp_path: Path,
) -> None:
    """A default grace longer than one secret's cron interval is reported at the defaults line."""
    file = _write(
        tmp_path,
        "p.yaml",
        """\
        defaults:
          schedule:
            every: 30d
          grace: 2d
        secrets:
          - name: billing-db
            store: {provider: vault-kv, path: billing}
          - name: payments-db
            store: {provider: vault-kv, path: payments}
            schedule: {cron: "0 3 * * *"}
        """,
    )
    (problem,) = _problems(file)
    assert (problem.line, problem.column, problem.path) == (4, 10, "defaults.grace")
    assert problem.reason == (
        "grace 2d must be shorter than the rotation interval 1d "
        "(the shortest gap of cron '0 3 * * *') (in secret 'payments-db')"
    )


def test_field_missing_from_a_default_block_is_reported_at_the_secret(tmp_path: Path) -> None:
    """A field missing from a block taken whole from defaults is reported at the secret."""
    file = _write(
        tmp_path,
        "p.yaml",
        """\
        defaults:
          store: {provider: aws-secretsmanager}
          schedule: {every: 30d}
          grace: 1d
        secrets:
          - name: billing-db
        """,
    )
    (problem,) = _problems(file)
    assert str(problem) == (
        f"{file}:6:5: secrets[0].store.secret_id: missing required field 'secret_id'"
    )


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    """Problems of several secrets and of the YAML itself all come back in one error, sorted."""
    file = _write(
        tmp_path,
        "p.yaml",
        """\
        secrets:
          - name: Bad Name
            store: {provider: vault-kv, path: a}
            schedule: {every: 30d}
            grace: 1d
          - name: two
            store: {provider: vault-kv}
            schedule: {every: 30d, cron: "0 3 * * *"}
            grace: 1d
          - name: three
            store: {provider: vault-kv, path: c}
            schedule: {every: 1h}
            grace: 2h
            grace: 3h
        """,
    )
    problems = _problems(file)
    assert [(p.line, p.column, p.path) for p in problems] == [
        (2, 11, "secrets[0].name"),
        (7, 5, "secrets[1].store.path"),
        (8, 5, "secrets[1].schedule"),
        (13, 12, "secrets[2].grace"),
        (14, 5, "secrets[2].grace"),
    ]


def test_problems_of_every_file_are_reported_together(tmp_path: Path) -> None:
    """A directory with several bad files reports the problems of all of them."""
    a = _write(tmp_path, "a.yaml", "secrets: {}\n")
    b = _write(tmp_path, "b.yml", "defaults: {grace: nope}\nsecrets: []\nextra: 1\n")
    problems = _problems(tmp_path)
    assert [(Path(p.file).name, p.line, p.column) for p in problems] == [
        ("a.yaml", 1, 10),
        ("b.yml", 3, 1),
    ]
    _assert_problem(problems, a, 1, 10, "secrets", "must be a list of secrets")
    _assert_problem(problems, b, 3, 1, "extra", "unknown field 'extra'")


def test_missing_path_is_a_config_error(tmp_path: Path) -> None:
    """A path that does not exist is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="does not exist"):
        load_policies(tmp_path / "nowhere", REGISTRY)


def test_directory_without_policy_files_is_a_config_error(tmp_path: Path) -> None:
    """A directory with no *.yaml or *.yml file is a ConfigError."""
    (tmp_path / "notes.txt").write_text("secrets: []\n")
    with pytest.raises(ConfigError, match=r"no policy files \(\*.yaml, \*.yml\)"):
        load_policies(tmp_path, REGISTRY)


# ------------------------------------------------------------ valid policies

EXAMPLE = """\
defaults:
  grace: 24h
  schedule: {every: 30d, jitter: 1h}

secrets:
  - name: payments-db
    description: Payments database password
    owner: team-payments
    labels: {env: prod}

    store:
      provider: aws-secretsmanager
      secret_id: prod/payments/db
      region: us-east-1
      field: password

    issuer:
      kind: random
      length: 32
      alphabet: alphanumeric
      exclude: "\\"'\\\\"

    schedule:
      every: 30d
      timezone: UTC
      window: "Mon-Fri 02:00-05:00"
      jitter: 10m

    grace: 24h
    when_old_still_used: extend
"""


def test_the_documented_example_is_valid(tmp_path: Path) -> None:
    """The example of docs/policies.md, its notifiers and alerts aside, loads as written."""
    file = tmp_path / "example.yaml"
    file.write_text(EXAMPLE)
    (policy,) = load_policies(file, REGISTRY)
    assert policy.name == "payments-db"
    assert (policy.description, policy.owner, policy.labels) == (
        "Payments database password",
        "team-payments",
        {"env": "prod"},
    )
    assert policy.store.provider == "aws-secretsmanager"
    assert policy.store.config == SecretsManagerConfig(
        secret_id="prod/payments/db", region="us-east-1", field="password"
    )
    assert policy.issuer.kind == "random"
    assert isinstance(policy.issuer.config, RandomConfig)
    assert policy.issuer.config.exclude == "\"'\\"
    assert policy.schedule.every == timedelta(days=30)
    assert policy.schedule.jitter == timedelta(minutes=10)
    assert policy.schedule.parsed_window is not None
    assert policy.schedule.parsed_window.days == frozenset(range(5))
    assert policy.grace == timedelta(hours=24)
    assert policy.when_old_still_used == "extend"
    assert (policy.source_file, policy.source_line) == (str(file), 6)


def test_defaults_are_merged_under_each_secret(tmp_path: Path) -> None:
    """Defaults fill what a secret omits; a secret's own keys win, one by one."""
    file = _write(
        tmp_path,
        "p.yaml",
        """\
        defaults:
          grace: 1h
          owner: platform
          labels: {env: prod, tier: db}
          store: {provider: aws-secretsmanager, region: eu-west-1}
          schedule: {every: 30d, jitter: 1h, timezone: Europe/Berlin}
        secrets:
          - name: plain
            store: {secret_id: plain}
          - name: tuned
            labels: {tier: cache}
            store: {secret_id: tuned, region: us-east-1}
            schedule: {jitter: 5m}
            grace: 2h
          - name: by-cron
            store: {secret_id: by-cron}
            schedule: {cron: "0 3 * * MON"}
          - name: elsewhere
            store: {provider: vault-kv, path: apps/elsewhere}
        """,
    )
    plain, tuned, by_cron, elsewhere = load_policies(file, REGISTRY)
    assert plain.owner == "platform"
    assert plain.grace == timedelta(hours=1)
    assert plain.store.config == SecretsManagerConfig(secret_id="plain", region="eu-west-1")
    assert tuned.labels == {"env": "prod", "tier": "cache"}
    assert tuned.store.config == SecretsManagerConfig(secret_id="tuned", region="us-east-1")
    assert (tuned.schedule.every, tuned.schedule.jitter) == (timedelta(days=30), timedelta(0, 300))
    assert tuned.schedule.timezone == "Europe/Berlin"
    assert tuned.grace == timedelta(hours=2)
    # a secret's cron replaces the default's every instead of clashing with it
    assert (by_cron.schedule.cron, by_cron.schedule.every) == ("0 3 * * MON", None)
    assert by_cron.schedule.jitter == timedelta(hours=1)
    # a secret naming another store does not inherit the default store's fields
    assert elsewhere.store.provider == "vault-kv"
    assert elsewhere.store.config == VaultKvConfig(path="apps/elsewhere")


@pytest.mark.parametrize(
    ("every", "grace", "expected_every", "expected_grace"),
    [
        ("45s", "0s", timedelta(seconds=45), timedelta(0)),
        ("90m", "45s", timedelta(minutes=90), timedelta(seconds=45)),
        ("12h", "90m", timedelta(hours=12), timedelta(minutes=90)),
        ("2w", "1d12h", timedelta(weeks=2), timedelta(days=1, hours=12)),
        ("P30D", "PT12H", timedelta(days=30), timedelta(hours=12)),
        ("P1W", "P1DT6H", timedelta(weeks=1), timedelta(days=1, hours=6)),
        ("PT36H", "PT90M", timedelta(hours=36), timedelta(minutes=90)),
        ("86400", "3600", timedelta(days=1), timedelta(hours=1)),
    ],
)
def test_durations_in_every_form_are_accepted(
    tmp_path: Path,
    every: str,
    grace: str,
    expected_every: timedelta,
    expected_grace: timedelta,
) -> None:
    """Short, combined, ISO 8601 and plain-seconds durations all load."""
    file = _write(
        tmp_path,
        "p.yaml",
        f"""\
        secrets:
          - name: db
            store: {{provider: vault-kv, path: db}}
            schedule: {{every: {every}}}
            grace: {grace}
        """,
    )
    (policy,) = load_policies(file, REGISTRY)
    assert (policy.schedule.every, policy.grace) == (expected_every, expected_grace)


def test_directory_loads_every_yaml_file_in_name_order(tmp_path: Path) -> None:
    """All *.yaml and *.yml files of a directory load, sorted by name, not recursing."""
    body = """\
        secrets:
          - name: {name}
            store: {{provider: vault-kv, path: {name}}}
            schedule: {{cron: "0 3 * * *"}}
            grace: 1h
        """
    _write(tmp_path, "b.yml", body.format(name="second"))
    _write(tmp_path, "a.yaml", "# first file\n" + textwrap.dedent(body.format(name="first")))
    _write(tmp_path, "c.yaml", body.format(name="third"))
    _write(tmp_path, "notes.txt", body.format(name="ignored-text"))
    (tmp_path / "nested").mkdir()
    _write(tmp_path / "nested", "d.yaml", body.format(name="ignored-nested"))
    policies = load_policies(str(tmp_path), REGISTRY)
    assert [p.name for p in policies] == ["first", "second", "third"]
    assert [(Path(p.source_file).name, p.source_line) for p in policies] == [
        ("a.yaml", 3),
        ("b.yml", 2),
        ("c.yaml", 2),
    ]


def test_a_single_file_loads_whatever_its_extension(tmp_path: Path) -> None:
    """A path naming one file is read even without a .yaml extension."""
    file = _write(
        tmp_path,
        "policies.conf",
        """\
        secrets:
          - {name: db, store: {provider: vault-kv, path: db}, schedule: {every: 1d}, grace: 0s}
        """,
    )
    assert [p.name for p in load_policies(file, REGISTRY)] == ["db"]


def test_issuer_defaults_to_random_with_its_defaults(tmp_path: Path) -> None:
    """Without an issuer block the secret gets the random issuer and its default fields."""
    file = _write(
        tmp_path,
        "p.yaml",
        """\
        secrets:
          - name: db
            store: {provider: vault-kv, path: db}
            schedule: {every: 1d}
            grace: 1h
        """,
    )
    (policy,) = load_policies(file, REGISTRY)
    assert policy.issuer.kind == "random"
    assert policy.issuer.config == RandomConfig()


def test_adapter_configs_are_the_adapters_own_models(tmp_path: Path) -> None:
    """Issuer blocks become instances of the adapter's Config, durations included."""
    file = _write(
        tmp_path,
        "p.yaml",
        """\
        defaults: {grace: 1h, schedule: {every: 90d, window: "Sat,Sun 00:00-06:00"}}
        secrets:
          - name: ci/deployer
            store: {provider: aws-secretsmanager, secret_id: ci/deployer}
            issuer: {kind: aws-iam-access-key, user: ci-deployer, delete_after: 7d}
            when_old_still_used: alert
          - name: partner.api
            store: {provider: aws-secretsmanager, secret_id: partner/api}
            issuer:
              kind: aws-apigateway-api-key
              usage_plans: [plan-a, plan-b]
        """,
    )
    iam, api = load_policies(file, REGISTRY)
    assert iam.issuer.config == AccessKeyConfig(user="ci-deployer", delete_after=timedelta(days=7))
    assert iam.when_old_still_used == "alert"
    assert isinstance(api.issuer.config, ApiKeyConfig)
    assert api.issuer.config.usage_plans == ["plan-a", "plan-b"]


def test_empty_secret_list_loads_nothing(tmp_path: Path) -> None:
    """A file whose secrets list is empty is valid and yields no policy."""
    file = _write(tmp_path, "p.yaml", "defaults:\nsecrets:\n")
    assert load_policies(file, REGISTRY) == []


# ------------------------------------------------ the quick way and the located way

MERGED = """\
defaults:
  grace: 1h
  owner: platform
  labels: {env: prod, tier: db}
  store: {provider: aws-secretsmanager, region: eu-west-1}
  schedule: {every: 30d, jitter: 1h, timezone: Europe/Berlin}
secrets:
  - name: plain
    store: {secret_id: plain}
  - name: tuned
    description: 'quoted: "text"'
    labels: {tier: cache, "on": "yes"}
    store: {secret_id: tuned, region: us-east-1}
    schedule: {jitter: 5m}
    grace: 2h
  - name: by-cron
    store: {secret_id: by-cron}
    schedule: {cron: "0  3 * * MON", window: "Sat,Sun 00:00-06:00"}
  - name: elsewhere
    store: {provider: vault-kv, path: apps/elsewhere}
    issuer: {kind: aws-iam-access-key, user: ci, delete_after: 7d}
    when_old_still_used: alert
  - {name: flow.style, store: {provider: vault-kv, path: flow}, issuer: {length: 64}, grace: 0s}
  - name: api
    store: {provider: aws-secretsmanager, secret_id: api}
    issuer:
      kind: aws-apigateway-api-key
      usage_plans: [plan-a, plan-b]
    schedule:
      every: P1W
    grace: |
      PT12H
"""


@pytest.mark.parametrize("text", [EXAMPLE, MERGED], ids=["documented-example", "merged"])
def test_quick_and_located_ways_build_the_same_policies(tmp_path: Path, text: str) -> None:
    """A valid file loads the quick way into exactly the policies the located way builds."""
    file = tmp_path / "p.yaml"
    file.write_text(text)
    assert load_quickly(file, str(file), SharedModels(REGISTRY)) is not None, "took the located way"
    quick = _load_files([file], REGISTRY)
    located = _load_files([file], REGISTRY, quickly=False)
    assert quick == located
    assert [(p.source_file, p.source_line) for p in quick] == [
        (p.source_file, p.source_line) for p in located
    ]
    assert [p.model_fields_set for p in quick] == [p.model_fields_set for p in located]
    assert [p.store.config.model_fields_set for p in quick] == [
        p.store.config.model_fields_set for p in located
    ]


@pytest.mark.parametrize(("text", "expected"), MALFORMED)
def test_quick_way_leaves_every_malformed_file_to_the_located_way(
    tmp_path: Path, text: str, expected: tuple[int, int, str, str]
) -> None:
    """The quick way returns no policy for a file the located way finds a problem in."""
    file = _write(tmp_path, "p.yaml", text)
    assert load_quickly(file, str(file), SharedModels(REGISTRY)) is None


def test_quick_way_leaves_unreadable_files_to_the_located_way(tmp_path: Path) -> None:
    """Oversized, non-UTF-8, aliased and too deeply nested files are never read the quick way."""
    files = {
        "big.yaml": b"secrets: []\n" + b"#" * MAX_FILE_BYTES,
        "latin1.yaml": b"secrets:\n  - name: caf\xe9\n",
        "alias.yaml": b"defaults: {grace: &g 1h}\nsecrets: []\n",
        "deep.yaml": b"secrets: []\na: " + b"{a: " * 40 + b"1" + b"}" * 40 + b"\n",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        assert load_quickly(tmp_path / name, name, SharedModels(REGISTRY)) is None, name


def test_tagged_values_load_the_located_way(tmp_path: Path) -> None:
    """A valid file with a YAML tag, which the quick way does not read, still loads."""
    file = _write(
        tmp_path,
        "p.yaml",
        """\
        secrets:
          - name: db
            description: !!str 2026
            store: {provider: vault-kv, path: db}
            schedule: {every: 1d}
            grace: ! 1h
        """,
    )
    assert load_quickly(file, str(file), SharedModels(REGISTRY)) is None
    (policy,) = load_policies(file, REGISTRY)
    assert (policy.description, policy.grace) == ("2026", timedelta(hours=1))


def test_identical_blocks_are_shared_between_policies(tmp_path: Path) -> None:
    """Secrets with the same schedule and issuer hold one model of each; labels stay their own."""
    file = _write(
        tmp_path,
        "p.yaml",
        """\
        defaults:
          grace: 1h
          labels: {env: prod}
          schedule: {every: 30d, jitter: 1h}
        secrets:
          - {name: a, store: {provider: vault-kv, path: a}, issuer: {kind: random, length: 40}}
          - {name: b, store: {provider: vault-kv, path: b}, issuer: {kind: random, length: 40}}
          - name: c
            store: {provider: vault-kv, path: c}
            schedule: {every: 7d}
        """,
    )
    a, b, c = load_policies(file, REGISTRY)
    assert a.schedule is b.schedule
    assert a.issuer is b.issuer
    assert c.schedule is not a.schedule
    assert c.schedule.every == timedelta(days=7)
    assert c.issuer.config == RandomConfig()
    assert a.labels == b.labels == {"env": "prod"}
    assert a.labels is not b.labels


def test_shared_blocks_tell_a_boolean_from_a_number(tmp_path: Path) -> None:
    """A block that differs only by true instead of 1 is validated on its own and refused."""
    file = _write(
        tmp_path,
        "p.yaml",
        """\
        defaults: {grace: 0s}
        secrets:
          - {name: a, store: {provider: vault-kv, path: a}, schedule: {every: 1}}
          - {name: b, store: {provider: vault-kv, path: b}, schedule: {every: true}}
        """,
    )
    (problem,) = _problems(file)
    assert (problem.line, problem.path) == (4, "secrets[1].schedule.every")
    assert problem.reason == "a duration is a string such as 30d, not a boolean"


def test_shared_field_sets_stay_independent_under_copy(tmp_path: Path) -> None:
    """Policies share their set of given fields, and a copy with changes never alters another's."""
    file = _write(
        tmp_path,
        "p.yaml",
        """\
        defaults: {grace: 1h, schedule: {every: 1d}}
        secrets:
          - {name: a, store: {provider: vault-kv, path: a}}
          - {name: b, store: {provider: vault-kv, path: b}}
        """,
    )
    a, b = load_policies(file, REGISTRY)
    given = {"name", "store", "issuer", "schedule", "grace", "source_file", "source_line"}
    assert a.model_fields_set is b.model_fields_set
    changed = a.model_copy(update={"owner": "team"})
    assert changed.model_fields_set == given | {"owner"}
    assert a.model_fields_set == b.model_fields_set == given


def test_garbage_collection_is_left_as_it_was(tmp_path: Path) -> None:
    """Loading, valid or not, leaves automatic garbage collection enabled or disabled as found."""
    good = _write(
        tmp_path, "good.yaml", "secrets: [{name: a, store: {provider: vault-kv, path: a}}]\n"
    )
    was_enabled = gc.isenabled()
    try:
        gc.enable()
        with pytest.raises(PolicyError):
            load_policies(good, REGISTRY)
        assert gc.isenabled()
        good.write_text(
            "defaults: {grace: 1h, schedule: {every: 1d}}\n" + good.read_text(),
            encoding="utf-8",
        )
        assert len(load_policies(good, REGISTRY)) == 1
        assert gc.isenabled()
        gc.disable()
        assert len(load_policies(good, REGISTRY)) == 1
        assert not gc.isenabled()
    finally:
        if was_enabled:
            gc.enable()
        else:
            gc.disable()


def _secret(name: str) -> str:
    return (
        f"  - name: {name}\n    store: {{provider: aws-secretsmanager, secret_id: {name}}}\n"
        "    schedule: {every: 30d}\n    grace: 1h\n"
    )


def test_readable_policies_leave_out_whole_files_with_problems(tmp_path: Path) -> None:
    """A file with any problem is left out whole; the valid files' policies and notifiers kept."""
    _write(tmp_path, "a.yaml", "secrets:\n" + _secret("a1"))
    _write(tmp_path, "b.yaml", "secrets:\n" + _secret("b1") + _secret("b2").replace("30d", "30x"))
    _write(tmp_path, "c.yaml", "secrets:\n" + _secret("a1") + _secret("c1"))
    readable = load_readable_policies(tmp_path)
    assert sorted(p.name for p in readable.policies) == ["a1"]
    assert readable.skipped_files == [str(tmp_path / "b.yaml"), str(tmp_path / "c.yaml")]
    assert [(Path(p.file).name, p.line) for p in readable.problems] == [
        ("b.yaml", 8),
        ("c.yaml", 2),
    ]
    with pytest.raises(PolicyError) as strict:
        load_policies(tmp_path)
    assert strict.value.problems == readable.problems


def test_readable_policies_of_a_valid_set_are_the_policies(tmp_path: Path) -> None:
    """No problem: the same policies as load_policies, nothing skipped."""
    _write(tmp_path, "a.yaml", "secrets:\n" + _secret("a1") + _secret("a2"))
    readable = load_readable_policies(tmp_path)
    assert readable.problems == [] and readable.skipped_files == []
    assert [p.name for p in readable.policies] == [p.name for p in load_policies(tmp_path)]
