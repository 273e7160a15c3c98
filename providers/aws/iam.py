"""Issuer ``aws-iam-access-key``: an IAM user's access keys, two slots at most."""

from __future__ import annotations

from datetime import timedelta

from rotator.durations import Duration

from pydantic import Field

from rotator.interfaces import ProviderConfig


class AccessKeyConfig(ProviderConfig):
    """Policy fields of the ``aws-iam-access-key`` issuer."""

    user: str = Field(min_length=1, max_length=64, pattern=r"^[\w+=,.@-]+$")
    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    delete_after: Duration = timedelta(0)


# TODO(helper): class AccessKeyIssuer(Issuer[AccessKeyConfig])
