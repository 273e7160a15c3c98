"""The AWS part of ``rotator sandbox``: a seeded moto_server on loopback.

:class:`AwsSandbox` starts ``moto_server`` as a subprocess on a free
127.0.0.1 port and seeds it with one of each thing the example policies
rotate:

- ``demo/db-password``: a Secrets Manager secret holding
  ``{"username": "app", "password": ...}`` (rotated with ``field: password``);
- IAM user ``demo-deployer`` with one access key, whose pair is stored in
  ``demo/deployer-key`` as ``{"AccessKeyId": ..., "SecretAccessKey": ...}``;
- a REST API with stage ``demo``, usage plan ``demo-plan`` and one API key
  attached to it, whose value is stored in ``demo/partner-api-key``.

The caller sets the environment :meth:`AwsSandbox.start` returns
(``AWS_ENDPOINT_URL`` and fake credentials); boto3 honours it natively, so
the adapters need nothing sandbox-specific. The usage plan's id is only known
once seeded: :meth:`AwsSandbox.policy_substitutions` gives it to the policy
templates.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from providers.aws.errors import aws_errors
from rotator.adapters.secret import SecretValue
from rotator.errors import PermanentError
from rotator.sandbox.core.process import ServerNotStarted, ServerProcess, free_port

if TYPE_CHECKING:
    from mypy_boto3_apigateway import APIGatewayClient
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

PROVIDER = "aws-sandbox"
REGION = "us-east-1"
DB_SECRET = "demo/db-password"  # noqa: S105 (a secret's name)
SHARED_SECRET = "demo/shared-token"  # noqa: S105 (a secret's name)
DEPLOYER_USER = "demo-deployer"
DEPLOYER_SECRET = "demo/deployer-key"  # noqa: S105 (a secret's name)
PARTNER_SECRET = "demo/partner-api-key"  # noqa: S105 (a secret's name)
PLAN_NAME = "demo-plan"
STAGE = "demo"
#: Seconds moto_server may take to answer its first request.
START_TIMEOUT = 30.0


class AwsSandbox:
    """Runs a seeded moto_server for ``rotator sandbox``; usable as a context manager."""

    def __init__(self) -> None:
        self._server: ServerProcess | None = None
        self._env: dict[str, str] = {}
        self._plan_ids: list[str] = []
        self._rest_api_id: str | None = None

    @property
    def endpoint(self) -> str | None:
        """The moto_server URL, once started."""
        return self._env.get("AWS_ENDPOINT_URL")

    def start(self, workdir: Path) -> dict[str, str]:
        """Start moto_server on a free loopback port; return the environment to use it.

        Its output goes to ``workdir/moto_server.log``. Returns
        ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``
        and ``AWS_DEFAULT_REGION`` (also ``AWS_REGION``). Calling it again
        while running returns the same environment.

        Raises:
            PermanentError: moto_server exited or did not answer within
                ``START_TIMEOUT`` seconds (see its log).
        """
        if self._server is not None and self._server.running:
            return dict(self._env)
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
        self._server = ServerProcess("moto_server", workdir / "moto_server.log")
        try:
            self._server.start(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                ready=f"{endpoint}/moto-api/",
                timeout=START_TIMEOUT,
                env=env,
                cwd=workdir,
            )
        except ServerNotStarted as exc:
            self._server = None
            raise PermanentError(str(exc), provider=PROVIDER) from None
        self._env = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }
        return dict(self._env)

    def _client(self, env: dict[str, str], service: str) -> Any:
        import boto3

        session = boto3.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env.get("AWS_DEFAULT_REGION", REGION),
        )
        return session.client(service, endpoint_url=env["AWS_ENDPOINT_URL"])  # type: ignore[call-overload]

    def seed(self, env: dict[str, str]) -> None:
        """Create the demo secrets, IAM user and key, and API Gateway plan and key.

        ``env`` is what :meth:`start` returned. Every value is random and
        registered for redaction; none is printed.

        Raises:
            ProviderError: moto_server refused a call (seeding twice, for instance).
        """
        sm: SecretsManagerClient = self._client(env, "secretsmanager")
        iam: IAMClient = self._client(env, "iam")
        apigw: APIGatewayClient = self._client(env, "apigateway")

        with aws_errors(PROVIDER, "seed Secrets Manager"):
            password = SecretValue(secrets.token_urlsafe(24))
            sm.create_secret(
                Name=DB_SECRET,
                Description="rotator sandbox: a database password (field: password)",
                SecretString=json.dumps({"username": "app", "password": password.reveal()}),
            )

            sm.create_secret(
                Name=SHARED_SECRET,
                Description="rotator sandbox: a token replicated to Vault, Key Vault and a file",
                SecretString=secrets.token_urlsafe(24),
            )

        with aws_errors(PROVIDER, "seed IAM"):
            iam.create_user(UserName=DEPLOYER_USER)
            key = iam.create_access_key(UserName=DEPLOYER_USER)["AccessKey"]
            pair = SecretValue(
                {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
            )
            sm.create_secret(
                Name=DEPLOYER_SECRET,
                Description=f"rotator sandbox: access key of IAM user {DEPLOYER_USER}",
                SecretString=pair.text(),
            )

        with aws_errors(PROVIDER, "seed API Gateway"):
            api_id = apigw.create_rest_api(name="demo-api")["id"]
            root = next(
                r["id"] for r in apigw.get_resources(restApiId=api_id)["items"] if r["path"] == "/"
            )
            apigw.put_method(
                restApiId=api_id,
                resourceId=root,
                httpMethod="GET",
                authorizationType="NONE",
                apiKeyRequired=True,
            )
            apigw.put_integration(
                restApiId=api_id,
                resourceId=root,
                httpMethod="GET",
                type="MOCK",
                requestTemplates={"application/json": '{"statusCode": 200}'},
            )
            apigw.create_deployment(restApiId=api_id, stageName=STAGE)
            plan_id = apigw.create_usage_plan(
                name=PLAN_NAME, apiStages=[{"apiId": api_id, "stage": STAGE}]
            )["id"]
            api_key = apigw.create_api_key(name="demo-partner", enabled=True)
            SecretValue(api_key["value"])
            apigw.create_usage_plan_key(usagePlanId=plan_id, keyId=api_key["id"], keyType="API_KEY")
            sm.create_secret(
                Name=PARTNER_SECRET,
                Description=f"rotator sandbox: API key of usage plan {PLAN_NAME}",
                SecretString=api_key["value"],
            )
        self._rest_api_id = api_id
        self._plan_ids = [plan_id]

    def usage_plan_ids(self) -> list[str]:
        """Return the ids of the usage plans :meth:`seed` created (empty before)."""
        return list(self._plan_ids)

    def policy_substitutions(self) -> dict[str, str]:
        """Return the placeholders the example policies use, with their values.

        ``DEMO_USAGE_PLAN_ID`` (after :meth:`seed`), ``DEMO_REST_API_ID``,
        ``DEMO_IAM_USER`` and ``DEMO_REGION``; none is secret.
        """
        subs = {"DEMO_IAM_USER": DEPLOYER_USER, "DEMO_REGION": REGION}
        if self._plan_ids:
            subs["DEMO_USAGE_PLAN_ID"] = self._plan_ids[0]
        if self._rest_api_id:
            subs["DEMO_REST_API_ID"] = self._rest_api_id
        return subs

    def stop(self) -> None:
        """Stop moto_server (SIGTERM, then SIGKILL after 10 s); no-op if not running."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> AwsSandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
