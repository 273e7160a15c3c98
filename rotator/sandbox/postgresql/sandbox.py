"""The PostgreSQL part of ``rotator sandbox``: alternating users on a throwaway local server.

When a local PostgreSQL can be started (:mod:`.server`: ``initdb`` in a
temporary directory), :class:`PostgreSqlSandbox` seeds it with a database
``demo``, a role ``demo_app`` that alone may read its table ``orders``, and
two secrets in the sandbox's Secrets Manager (moto_server, started before it):

- ``demo/postgres-app``: ``demo_app``'s credential in the AWS RDS JSON shape,
  rotated by ``postgresql-password`` with alternating users (rotator creates
  ``demo_app_clone`` at the first rotation, in role ``demo_app``);
- ``demo/postgres-admin``: the server's superuser as a URL, the admin
  credential the issuer reads (``admin: {secret: demo/postgres-admin}``),
  kept by hand (``manual``).

Its policies (``demo.yaml`` beside this module) are added to the sandbox's
only then. The demo needs more than the server: psycopg (the ``postgres``
extra), boto3, and the AWS sandbox's Secrets Manager (``AWS_ENDPOINT_URL``,
set by the AWS sandbox, which starts first). When any of these is missing,
or no server can be started, one warning says why, no server runs, and the
sandbox runs without these policies.

At stop, the server's log (every statement, with ``log_statement=all``) is
kept in the working directory as ``postgresql.log``: it shows SCRAM
verifiers, never a password.
"""

from __future__ import annotations

import importlib
import json
import os
import secrets
import shutil
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import structlog

from providers.databases.postgresql import scram_verifier
from rotator.adapters.secret import SecretValue
from rotator.sandbox.postgresql.server import PostgreSqlServer, PostgreSqlUnavailable

log = structlog.get_logger("rotator.sandbox")

APP_SECRET = "demo/postgres-app"  # noqa: S105 (a secret's name)
ADMIN_SECRET = "demo/postgres-admin"  # noqa: S105 (a secret's name)
APP_USER = "demo_app"
DATABASE = "demo"


#: What the demo imports besides the standard library, and the extra that installs each:
#: psycopg seeds the server and rotates on it; boto3 reaches the Secrets Manager it is stored in.
REQUIRED_MODULES = (("psycopg", "postgres"), ("boto3", "aws"))


def missing_prerequisite() -> str | None:
    """Say what the demo lacks besides a server (a module, the AWS sandbox), or ``None``."""
    for module, extra in REQUIRED_MODULES:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return f"{module} does not import ({why}): pip install 'rotator-keys[{extra}]'"
    if not os.environ.get("AWS_ENDPOINT_URL"):
        return (
            "AWS_ENDPOINT_URL is not set: the demo keeps its secrets in the AWS sandbox's "
            "Secrets Manager, which is not running"
        )
    return None


class PostgreSqlSandbox:
    """Runs a seeded throwaway PostgreSQL for ``rotator sandbox``, when one can be started."""

    def __init__(self, server: PostgreSqlServer | None = None) -> None:
        self._server = server or PostgreSqlServer()
        self._workdir: Path | None = None
        #: Why no server runs (``None`` while one does, or before ``start``).
        self.unavailable: str | None = None

    def start(self, workdir: Path) -> dict[str, str]:
        """Start the server if the demo can run; else say why, once, and start nothing.

        Returns no environment: nothing outside this sandbox needs to reach
        its server (the demo's admin credential is a secret it seeds).
        """
        self._workdir = workdir
        self.unavailable = missing_prerequisite()
        if self.unavailable is None:
            try:
                self._server.start()
            except PostgreSqlUnavailable as exc:
                self.unavailable = str(exc)
        if self.unavailable is not None:
            log.warning("no PostgreSQL rotation in this sandbox", reason=self.unavailable)
        return {}

    def seed(self, env: dict[str, str]) -> None:
        """Create the database, the role and its table, and the two secrets in Secrets Manager.

        ``env`` is what :meth:`start` returned, which is nothing: the Secrets
        Manager seeded is the AWS sandbox's, found through the environment it
        set (``AWS_ENDPOINT_URL``, checked by :meth:`start`).
        """
        if self.unavailable is not None:
            return
        import psycopg
        from psycopg import sql

        password = SecretValue(secrets.token_urlsafe(24))
        with psycopg.connect(self._server.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
            # As rotator sends it: the log of every statement shows no password, ever.
            verifier = scram_verifier(conn, APP_USER, password)
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(APP_USER), sql.Literal(verifier)
                )
            )
        with psycopg.connect(self._server.url(DATABASE), autocommit=True) as conn:
            conn.execute("CREATE TABLE orders (id int PRIMARY KEY, item text)")
            conn.execute("INSERT INTO orders VALUES (1, 'a rotated password')")
            conn.execute(sql.SQL("GRANT SELECT ON orders TO {}").format(sql.Identifier(APP_USER)))
        value = {
            "engine": "postgres",
            "host": self._server.host,
            "port": self._server.port,
            "username": APP_USER,
            "password": password.text(),
            "dbname": DATABASE,
        }
        secretsmanager = _secretsmanager()
        secretsmanager.create_secret(Name=APP_SECRET, SecretString=json.dumps(value))
        secretsmanager.create_secret(Name=ADMIN_SECRET, SecretString=self._server.url())

    def policy_substitutions(self) -> dict[str, str]:
        """Give the demo policy the server's port."""
        return {"DEMO_POSTGRES_PORT": str(self._server.port)} if self._server.port else {}

    def demo_policies(self) -> Traversable | None:
        """Return this sandbox's policy template, or ``None`` when no server runs."""
        if self.unavailable is not None or not self._server.running:
            return None
        return files("rotator.sandbox.postgresql").joinpath("demo.yaml")

    def stop(self) -> None:
        """Keep the server's log in the working directory, then stop the server."""
        if self._workdir is not None and self._server.running:
            try:
                shutil.copyfile(self._server.log_path, self._workdir / "postgresql.log")
            except OSError as exc:
                log.warning("the PostgreSQL log was not kept", error=exc.strerror)
        self._server.stop()


def _secretsmanager() -> Any:
    """Return a Secrets Manager client of the sandbox's moto_server (its environment is set)."""
    import boto3

    return boto3.client(
        "secretsmanager",
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    )
