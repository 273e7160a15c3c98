"""The ARNs the AWS adapters' permissions name: account, region and partition, resolved once.

``rotator permissions`` asks each adapter what it needs (``permissions()``);
nothing is called at AWS to answer, except that the account id an ARN needs
may be asked of STS once (``GetCallerIdentity``, which every identity may
call) when ``--account`` did not give it. The answer is kept in
``runtime.cache`` under :data:`AWS_ACCOUNT`, where the command puts
``--account`` too (through :meth:`providers.aws.policy.IamPolicy.use_account`).

The region is the policy's, else the AWS default chain's (``AWS_REGION``,
``AWS_DEFAULT_REGION``, the profile); the partition follows the region
(``aws``, ``aws-cn``, ``aws-us-gov``...), as botocore knows it. Building a
client to learn them sends nothing.

Secrets Manager appends six random characters to every secret's ARN
(``prod/db-a1B2c3``), so a secret named in a policy is granted as
``...:secret:prod/db-??????``: exactly that secret, whatever its suffix.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import quote

from providers.aws.clients import client
from providers.aws.errors import aws_errors
from rotator.adapters import Runtime
from rotator.errors import ConfigError, ProviderError

SYSTEM = "aws"
#: Where the AWS account id the ARNs carry is kept, in ``Runtime.cache``.
AWS_ACCOUNT = "rotator:aws-account-id"
#: What IAM matches any six characters with (Secrets Manager's random ARN suffix).
SECRET_SUFFIX = "-??????"  # noqa: S105 (an ARN wildcard)
_SUFFIXED = re.compile(r"-[A-Za-z0-9]{6}$")
#: An AWS account id: twelve digits.
ACCOUNT_ID = re.compile(r"^\d{12}$")
_LOCK = "aws:permissions-lock"


def _lock(runtime: Runtime) -> threading.Lock:
    lock: threading.Lock = runtime.cache.setdefault(_LOCK, threading.Lock())
    return lock


def region_of(runtime: Runtime, configured: str | None) -> str:
    """Return the policy's region, else the AWS default chain's.

    Raises:
        ConfigError: neither names a region.
    """
    if configured:
        return configured
    try:
        region = client(runtime, "secretsmanager", None).meta.region_name
    except ProviderError:
        region = None
    if not region:
        raise ConfigError(
            "no AWS region to build ARNs with: set `region` in the policy, or AWS_REGION "
            "(or AWS_DEFAULT_REGION) in the environment"
        )
    return str(region)


def partition_of(runtime: Runtime, region: str | None) -> str:
    """Return the partition of ``region`` (``aws`` when no region is known at all)."""
    try:
        made = client(runtime, "secretsmanager", region or None)
    except ProviderError:
        return "aws"
    return str(getattr(made.meta, "partition", None) or "aws")


def account_of(runtime: Runtime, region: str | None) -> str:
    """Return the account id: ``--account`` (in the cache), else STS ``GetCallerIdentity``, once.

    Raises:
        ConfigError: STS cannot tell (no credentials, no network) and
            ``--account`` was not given.
    """
    cached = runtime.cache.get(AWS_ACCOUNT)
    if isinstance(cached, str):
        return cached
    with _lock(runtime):
        cached = runtime.cache.get(AWS_ACCOUNT)
        if isinstance(cached, str):
            return cached
        try:
            with aws_errors(SYSTEM, "GetCallerIdentity"):
                answer = client(runtime, "sts", region or None).get_caller_identity()
        except ProviderError as exc:
            raise ConfigError(
                f"cannot tell the AWS account id the ARNs need ({exc}); pass --account ID"
            ) from None
        account = str(answer.get("Account") or "")
        if not ACCOUNT_ID.match(account):
            raise ConfigError(
                f"STS answered an account id that is not 12 digits ({account!r}); pass --account ID"
            )
        runtime.cache[AWS_ACCOUNT] = account
        return account


def secret_arn(runtime: Runtime, secret_id: str, region: str | None) -> str:
    """Return the ARN pattern of one Secrets Manager secret (its random suffix as ``-??????``).

    A ``secret_id`` that is an ARN already is kept (with ``-??????`` added
    when it lacks the six-character suffix, as a partial ARN does).
    """
    if secret_id.startswith("arn:"):
        return secret_id if _SUFFIXED.search(secret_id) else secret_id + SECRET_SUFFIX
    where = region_of(runtime, region)
    partition = partition_of(runtime, where)
    account = account_of(runtime, where)
    return f"arn:{partition}:secretsmanager:{where}:{account}:secret:{secret_id}{SECRET_SUFFIX}"


def user_arns(runtime: Runtime, user: str, region: str | None) -> list[str]:
    """Return the ARN patterns of one IAM user: at the root path, and under any path.

    A user's ARN carries its path (``user/ops/ci-deployer``), which a policy
    names only by the user's name; user names are unique in an account, so
    ``user/*/NAME`` matches that one user under whatever path it has.
    """
    partition = partition_of(runtime, region)
    account = account_of(runtime, region)
    return [
        f"arn:{partition}:iam::{account}:user/{user}",
        f"arn:{partition}:iam::{account}:user/*/{user}",
    ]


def apigateway_arn(runtime: Runtime, path: str, region: str | None) -> str:
    """Return the ARN of an API Gateway resource path (``/apikeys/*``) in the region."""
    where = region_of(runtime, region)
    return f"arn:{partition_of(runtime, where)}:apigateway:{where}::{path}"


def apigateway_tags_arns(runtime: Runtime, path: str, region: str | None) -> list[str]:
    """Return the ARN patterns of the tags of the resources under ``path`` (``/apikeys/``).

    Tags are the resource ``/tags/{UrlEncodedResourceARN}`` (the Service
    Authorization Reference); the resource's ARN is named URL-encoded, as
    the request path carries it, and as it reads, so that either form IAM
    compares matches the tags of those resources and of nothing else.
    """
    tagged = apigateway_arn(runtime, path, region)
    return [
        apigateway_arn(runtime, f"/tags/{quote(tagged, safe='')}*", region),
        apigateway_arn(runtime, f"/tags/{tagged}*", region),
    ]
