"""Issuer ``aws-apigateway-api-key``: API Gateway API keys attached to usage plans."""

from __future__ import annotations

from datetime import timedelta

from rotator.durations import Duration

from pydantic import Field

from rotator.interfaces import ProviderConfig


class ApiKeyConfig(ProviderConfig):
    """Policy fields of the ``aws-apigateway-api-key`` issuer."""

    usage_plans: list[str] = Field(min_length=1)
    name_prefix: str = Field(default="rotator-", max_length=64)
    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    delete_after: Duration = timedelta(0)


# TODO(helper): class ApiKeyIssuer(Issuer[ApiKeyConfig])
