"""Helpers shared by the AWS adapter tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders


@dataclass
class StepClock:
    """A clock that only moves when something sleeps on it; records every sleep."""

    now: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)


def new_rotation_id() -> str:
    """Return a rotation id as the engine makes them (32 hex characters)."""
    return uuid.uuid4().hex


def error_reply(code: str, status: int = 400, message: str = "injected") -> Any:
    """Return what a ``before-call`` handler returns to fake an AWS error answer."""
    http = AWSResponse("https://aws.invalid/", status, HTTPHeaders(), None)
    parsed = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "req-injected"},
    }
    return http, parsed


@contextmanager
def inject(
    client: Any,
    operation: str,
    reply: Callable[[dict[str, Any]], Any],
) -> Iterator[list[dict[str, Any]]]:
    """Answer ``operation`` on ``client`` with ``reply(params)`` instead of calling moto.

    Hooked at ``before-call`` (not ``before-send``, which in-process moto
    would still execute); botocore does not retry such answers. Yields the
    list of intercepted request dicts.
    """
    service_id = client.meta.service_model.service_id.hyphenize()
    event = f"before-call.{service_id}.{operation}"
    seen: list[dict[str, Any]] = []

    def handler(params: dict[str, Any], **_: Any) -> Any:
        seen.append(params)
        return reply(params)

    client.meta.events.register_first(event, handler, unique_id=f"test-{event}")
    try:
        yield seen
    finally:
        client.meta.events.unregister(event, unique_id=f"test-{event}")


@contextmanager
def count_calls(client: Any, operation: str) -> Iterator[list[str]]:
    """Count the calls of ``operation`` made through ``client`` (yields a growing list)."""
    service_id = client.meta.service_model.service_id.hyphenize()
    event = f"before-call.{service_id}.{operation}"
    calls: list[str] = []

    def handler(**_: Any) -> None:
        calls.append(operation)

    client.meta.events.register(event, handler, unique_id=f"count-{event}")
    try:
        yield calls
    finally:
        client.meta.events.unregister(event, unique_id=f"count-{event}")


@contextmanager
def outage(client: Any) -> Iterator[None]:
    """Answer every call made through ``client`` with a 503 ServiceUnavailable, within the block."""
    service_id = client.meta.service_model.service_id.hyphenize()
    event = f"before-call.{service_id}"

    def unavailable(**_: Any) -> Any:
        return error_reply("ServiceUnavailable", 503)

    client.meta.events.register_first(event, unavailable, unique_id=f"outage-{event}")
    try:
        yield
    finally:
        client.meta.events.unregister(event, unique_id=f"outage-{event}")
