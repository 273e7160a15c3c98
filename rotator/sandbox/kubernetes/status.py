"""Errors as the API server answers them: ``Status`` objects with its codes and messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

JSON = dict[str, Any]

#: Status reason and message of an injected fault, by HTTP status (others: InternalError).
FAULT_REASONS = {
    400: ("BadRequest", "injected fault: bad request"),
    401: ("Unauthorized", "Unauthorized"),
    403: ("Forbidden", "injected fault: forbidden"),
    404: ("NotFound", "injected fault: not found"),
    409: (
        "Conflict",
        "Operation cannot be fulfilled: the object has been modified; please apply your "
        "changes to the latest version and try again",
    ),
    422: ("Invalid", "injected fault: invalid"),
    429: ("TooManyRequests", "Too many requests, please try again later."),
    500: ("InternalError", "Internal error occurred: injected fault"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "the server was unable to return a response in the time allotted"),
}


class ApiError(Exception):
    """An error answer: a Kubernetes ``Status`` with ``code`` and ``reason``."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: JSON | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = dict(headers or {})

    def status(self) -> JSON:
        """Return the ``Status`` body the API server sends."""
        body: JSON = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def qualified(resource: str, group: str) -> str:
    """Return ``secrets`` or ``deployments.apps``, as API messages name a resource."""
    return f"{resource}.{group}" if group else resource


def details(resource: str, group: str, name: str) -> JSON:
    """Return the ``details`` of a ``Status`` about one object."""
    details: JSON = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return details


def not_found(resource: str, group: str, name: str) -> ApiError:
    """Return the API server's 404 for an object."""
    return ApiError(
        404,
        "NotFound",
        f'{qualified(resource, group)} "{name}" not found',
        details(resource, group, name),
    )


def conflict(resource: str, group: str, name: str, why: str) -> ApiError:
    """Return the API server's 409 ``Conflict`` (a failed precondition)."""
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
        details(resource, group, name),
    )


def invalid(kind: str, name: str, cause: str) -> ApiError:
    """Return the API server's 422 ``Invalid``."""
    return ApiError(
        422, "Invalid", f'{kind} "{name}" is invalid: {cause}', {"name": name, "kind": kind}
    )


def not_allowed() -> ApiError:
    """Return the API server's 405 for a verb a path does not serve."""
    return ApiError(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        {},
    )


def bad_request(message: str) -> ApiError:
    """Return a 400 ``BadRequest``."""
    return ApiError(400, "BadRequest", message, {})


MODIFIED = (
    "the object has been modified; please apply your changes to the latest version and try again"
)
