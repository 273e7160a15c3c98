"""The one copy of what adapters share: Retry-After, request outcomes, defusing an SDK exception."""

from __future__ import annotations

import re
import traceback
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.utils import format_datetime
from typing import Any

import pytest

from providers.transport.failures import (
    defuse,
    error_outcome,
    may_pass,
    status_outcome,
    vetted,
)
from providers.transport.retry_after import (
    LONGEST_WAIT,
    asked_wait,
    delay_seconds,
    header_value,
    retry_after,
    server_time,
)
from rotator.adapters.values import OUTCOMES
from rotator.errors import ConflictError, PermanentError, TransientError
from rotator.output import redact

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LEAK = "hunter2-very-secret-value"


def http_date(when: datetime) -> str:
    """Return ``when`` as an HTTP date (``Thu, 01 Jan 2026 12:00:30 GMT``)."""
    return format_datetime(when, usegmt=True)


# -- Retry-After ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("3", 3.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("1.5", 1.5),
        (7, 7.0),
        (2.5, 2.5),
        (http_date(NOW + timedelta(seconds=30)), 30.0),
        ("Thu, 01 Jan 2026 12:00:30 +0000", 30.0),
        (http_date(NOW - timedelta(minutes=5)), 0.0),
        (http_date(NOW + timedelta(days=30)), LONGEST_WAIT),
        ("99999999", LONGEST_WAIT),
        ("9" * 400, LONGEST_WAIT),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(raw: object, expected: float) -> None:
    """delay-seconds (a fraction too) and an HTTP date counted from ``now``; a past date is 0."""
    assert retry_after(raw, NOW) == expected


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "   ",
        "-1",
        "-0.5",
        "+5",
        "1e3",
        "inf",
        "nan",
        "Infinity",
        "٣",
        "soon",
        "5 seconds",
        "Thu, 45 Foo 2026 99:00:00 GMT",
        True,
        -3,
        float("nan"),
        b"30",
        ["30"],
    ],
)
def test_anything_else_asks_for_nothing(raw: object) -> None:
    """Negative, garbage, non-ASCII digits and unreadable dates all read as None, never as 0."""
    assert retry_after(raw, NOW) is None


def test_a_date_without_anything_to_count_from_is_not_read() -> None:
    """With no ``now``, an HTTP date says nothing; seconds still do."""
    assert retry_after(http_date(NOW), None) is None
    assert retry_after("4", None) == 4.0


def test_delay_seconds_counts_in_the_unit_given() -> None:
    """A millisecond header (Azure's retry-after-ms) reads in its unit, cut after converting."""
    assert delay_seconds("1500", unit=0.001) == 1.5
    assert delay_seconds(str(10**9), unit=0.001) == LONGEST_WAIT
    assert delay_seconds("-1500", unit=0.001) is None
    assert delay_seconds(float("inf")) == LONGEST_WAIT


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "3"},
        {"retry-after": "3"},
        {"RETRY-AFTER": "3"},
    ],
)
def test_headers_are_found_whatever_the_case_of_their_name(headers: dict[str, str]) -> None:
    """A plain dict's keys may be in any case (botocore lower-cases them, a test may not)."""
    assert asked_wait(headers) == 3.0


def test_a_header_object_with_get_is_read() -> None:
    """An ``http.client``-style message (not a mapping, but with ``get``) is read too."""
    message = Message()
    message["Retry-After"] = "9"
    assert header_value(message, "retry-after") == "9"
    assert asked_wait(message) == 9.0


@pytest.mark.parametrize("headers", [None, {}, "Retry-After: 3", 42])
def test_no_headers_ask_for_nothing(headers: Any) -> None:
    """An answer without headers, or something that is not headers, asks for no wait."""
    assert asked_wait(headers, NOW) is None


def test_an_http_date_counts_from_the_answers_own_date() -> None:
    """With a Date header, a clock here that is hours off does not change the wait."""
    server = NOW - timedelta(hours=3)
    headers = {"Date": http_date(server), "Retry-After": http_date(server + timedelta(seconds=20))}
    assert asked_wait(headers, NOW) == 20.0
    assert server_time(headers) == server


def test_without_a_date_header_an_http_date_counts_from_now() -> None:
    """No Date (or an unreadable one): the caller's ``now``; without that, nothing."""
    asked = http_date(NOW + timedelta(seconds=20))
    assert asked_wait({"Retry-After": asked}, NOW) == 20.0
    assert asked_wait({"Retry-After": asked, "Date": "yesterday"}, NOW) == 20.0
    assert asked_wait({"Retry-After": asked}) is None


# -- outcomes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "ok"),
        (201, "ok"),
        (204, "ok"),
        (301, "permanent"),
        (302, "permanent"),
        (304, "permanent"),
        (400, "permanent"),
        (401, "permanent"),
        (403, "permanent"),
        (404, "permanent"),
        (408, "transient"),
        (409, "permanent"),
        (422, "permanent"),
        (429, "throttled"),
        (500, "transient"),
        (501, "permanent"),
        (502, "transient"),
        (503, "transient"),
        (504, "transient"),
        (0, "permanent"),
        (100, "permanent"),
    ],
)
def test_statuses_map_to_one_outcome_for_every_adapter(status: int, outcome: str) -> None:
    """2xx ok, 429 throttled, 408 and 5xx but 501 transient, everything else permanent."""
    assert status_outcome(status) == outcome
    assert outcome in OUTCOMES
    assert may_pass(status) == (outcome in ("transient", "throttled"))


@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [
        (400, "ThrottlingException", "throttled"),
        (400, "InternalFailure", "transient"),
        (200, "InternalFailure", "transient"),
        (400, "ValidationException", "permanent"),
        (200, "SomeErrorCode", "permanent"),
        (503, "ValidationException", "transient"),
        (409, "ObjectIsBeingDeleted", "transient"),
    ],
)
def test_a_providers_codes_are_passed_in(status: int, code: str, outcome: str) -> None:
    """Codes meaning "slow down" or "may pass" decide whatever the status; any other refuses."""
    assert (
        status_outcome(
            status,
            code,
            throttling={"ThrottlingException"},
            passing={"InternalFailure", "ObjectIsBeingDeleted"},
        )
        == outcome
    )


def test_a_providers_own_retried_statuses_are_passed_in() -> None:
    """A status a provider retries itself (Kubernetes' 409) is transient for it alone."""
    assert status_outcome(409, passing_statuses=(409,)) == "transient"
    assert status_outcome(409) == "permanent"


def test_an_empty_code_matches_no_code_set() -> None:
    """No code is never taken for a code of the provider's sets."""
    assert status_outcome(400, "", throttling={""}, passing={""}) == "permanent"


def test_a_translated_error_gives_its_outcome() -> None:
    """A TransientError is transient; any other provider error permanent."""
    assert error_outcome(TransientError("x")) == "transient"
    assert error_outcome(PermanentError("x")) == "permanent"
    assert error_outcome(ConflictError("x")) == "permanent"


# -- vetting --------------------------------------------------------------------------

CODE = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")


def test_a_code_that_looks_like_one_is_kept() -> None:
    """An error code or request id passes as it is."""
    assert vetted("ThrottlingException", CODE, 64) == "ThrottlingException"
    assert vetted("  SecretDisabled \n", CODE, 64) == "SecretDisabled"


@pytest.mark.parametrize("raw", [None, "", "not a code", "Code; DROP", 42.5, ["Code"]])
def test_anything_else_is_dropped(raw: object) -> None:
    """Text that is not all code (or not text at all, but its rendering) gives nothing."""
    assert vetted(raw, CODE, 64) == ""


def test_an_echoed_secret_is_dropped_not_repeated() -> None:
    """A registered value sent back as the "code" is masked first, so it no longer matches."""
    redact.register("EchoedSecretValue42")
    assert vetted("EchoedSecretValue42", CODE, 64) == ""


def test_a_code_longer_than_the_limit_is_dropped() -> None:
    """Cut short, a code carries an ellipsis and matches nothing."""
    assert vetted("A" * 70, CODE, 64) == ""


# -- defuse ---------------------------------------------------------------------------


class Held:
    """What an SDK keeps about a request: a body holding the value sent."""

    def __init__(self, body: str) -> None:
        self.body = body

    def __repr__(self) -> str:
        return f"Held({self.body!r})"


class SdkError(Exception):
    """An exception shaped like the SDKs': text, a response, a parsed body, an inner error."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.message = text
        self.response = Held(text)
        self.request = Held(text)
        self.json = {"data": text}
        self.errors = [text]
        self.body = text
        self.headers = {"X-Echo": text}
        self.inner_exception = ValueError(text)
        self.kwargs = {"report": text}
        self.status = 400


class ReadOnly(Exception):
    """An exception whose ``message`` cannot be set."""

    @property
    def message(self) -> str:
        return "fixed words"


def raised_in_context(exc: BaseException) -> BaseException:
    """Raise ``exc`` while handling an error quoting the secret; return it, traceback and all."""
    try:
        try:
            raise ValueError(f"parsing {LEAK}")
        except ValueError as inner:
            raise exc from inner
    except BaseException as caught:
        return caught


def test_defuse_empties_the_text_and_everything_held() -> None:
    """Text becomes the summary; response, request, bodies, headers, inner error are dropped."""
    exc = raised_in_context(SdkError(f"value {LEAK} refused"))
    exc.add_note(f"while sending {LEAK}")

    defuse(exc, "SdkError when calling write")

    assert exc.args == ("SdkError when calling write",)
    assert isinstance(exc, SdkError)
    assert exc.message == "SdkError when calling write"
    for name in ("response", "request", "json", "errors", "body", "headers", "inner_exception"):
        assert getattr(exc, name) is None, name
    assert exc.kwargs == {}
    assert exc.status == 400
    assert exc.__cause__ is None and exc.__context__ is None and exc.__traceback__ is None
    assert not hasattr(exc, "__notes__")
    assert LEAK not in "".join(traceback.format_exception(exc))
    assert LEAK not in repr(vars(exc))


def test_defuse_leaves_what_it_cannot_set() -> None:
    """A read-only attribute stays as it is, and the rest is still emptied."""
    exc = raised_in_context(ReadOnly(LEAK))

    defuse(exc, "ReadOnly")

    assert exc.args == ("ReadOnly",)
    assert exc.message == "fixed words"
    assert exc.__context__ is None and exc.__cause__ is None


def test_defuse_empties_real_sdk_exceptions() -> None:
    """botocore's, hvac's and requests' exceptions lose their text, response and request."""
    botocore = pytest.importorskip("botocore.exceptions")
    hvac = pytest.importorskip("hvac.exceptions")
    requests = pytest.importorskip("requests")

    client_error = botocore.ClientError(
        {"Error": {"Code": "ValidationException", "Message": f"bad {LEAK}"}}, "PutSecretValue"
    )
    invalid = hvac.InvalidRequest(errors=[LEAK], text=LEAK, json={"v": LEAK})
    prepared = requests.Request("POST", "http://x.invalid/", json={"v": LEAK}).prepare()
    lost = requests.exceptions.ConnectionError(LEAK, request=prepared)
    validation = botocore.ParamValidationError(report=f"Invalid {LEAK}")

    for exc in (client_error, invalid, lost, validation):
        defuse(raised_in_context(exc), type(exc).__name__)
        assert LEAK not in str(exc) and LEAK not in repr(exc.args)
        assert LEAK not in repr({k: v for k, v in vars(exc).items() if k != "fmt"})
        assert exc.__context__ is None and exc.__traceback__ is None
