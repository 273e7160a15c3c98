"""Store ``aws-secretsmanager``: AWS Secrets Manager with staging labels."""

from __future__ import annotations

from pydantic import Field

from rotator.interfaces import ProviderConfig


class SecretsManagerConfig(ProviderConfig):
    """Policy fields of the ``aws-secretsmanager`` store."""

    secret_id: str = Field(min_length=1, max_length=2048)
    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    field: str | None = Field(default=None, min_length=1)


# TODO(helper): class SecretsManagerStore(Store[SecretsManagerConfig])
