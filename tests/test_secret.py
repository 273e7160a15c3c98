"""Secret values stay masked, and the scrubber finds them in every usual encoding."""

from __future__ import annotations

import hashlib
import json
import pickle
from urllib.parse import quote_plus
from xml.sax.saxutils import escape

import pytest

from rotator.adapters.secret import SecretValue
from rotator.output import redact


def test_repr_and_str_are_masked() -> None:
    """Printing a SecretValue, or a container holding one, never shows the value."""
    value = SecretValue("hunter2-but-longer")
    assert "hunter2" not in repr(value) and "hunter2" not in str(value)
    assert "hunter2" not in repr({"v": value})


def test_pickling_is_refused() -> None:
    """A SecretValue cannot be pickled into a cache or a queue by accident."""
    with pytest.raises(TypeError):
        pickle.dumps(SecretValue("hunter2-but-longer"))


@pytest.mark.parametrize(
    "encode",
    [str, lambda v: json.dumps(v)[1:-1], quote_plus, lambda v: escape(v, {'"': "&quot;"})],
)
def test_scrub_masks_plain_json_url_and_xml_forms(encode: object) -> None:
    """A registered value is masked whether logged raw, JSON-escaped, URL- or XML-encoded."""
    secret = 'a&b"c d/é+long-enough'
    SecretValue(secret)
    text = f"body={encode(secret)};"  # type: ignore[operator]
    assert redact.scrub(text) == f"body={redact.MASK};"


def test_access_key_id_is_not_masked_but_secret_key_is() -> None:
    """An access key id identifies a key (logs may name it); its secret half is masked."""
    SecretValue({"AccessKeyId": "AKIAEXAMPLEKEY12345", "SecretAccessKey": "s3cr3t/Key+value=="})
    line = redact.scrub("revoked AKIAEXAMPLEKEY12345 (secret s3cr3t/Key+value==)")
    assert "AKIAEXAMPLEKEY12345" in line and "s3cr3t" not in line


@pytest.mark.parametrize(
    ("plain", "expected"),
    [
        ({"role_id": "r-1", "secret_id": "s-1"}, ("r-1", "s-1")),
        (json.dumps({"role_id": "r-1", "secret_id": "s-1"}), ("r-1", "s-1")),
        ({"role_id": "r-1"}, None),
        ("not json at all, plainly", None),
    ],
)
def test_fields_reads_named_string_fields(plain: object, expected: object) -> None:
    """fields() returns the named string fields of a mapping or JSON text, else None."""
    assert SecretValue(plain).fields("role_id", "secret_id") == expected  # type: ignore[arg-type]


def test_overlapping_values_are_masked_whole() -> None:
    """When one registered value contains another, the longer one is masked in one piece."""
    SecretValue("abcdefgh-short")
    SecretValue("abcdefgh-short-and-then-longer")
    line = redact.scrub("x abcdefgh-short-and-then-longer y abcdefgh-short z")
    assert line == f"x {redact.MASK} y {redact.MASK} z"


def test_text_without_secrets_is_returned_unchanged() -> None:
    """A line holding no registered value comes back as the same string."""
    SecretValue("a-registered-value")
    text = "nothing to hide here, just a long enough line"
    assert redact.scrub(text) is text


def test_many_registered_values_are_all_still_masked() -> None:
    """After 5,000 random values are registered, each one is still masked, and no other text."""
    values = [hashlib.sha256(str(n).encode()).hexdigest()[:24] for n in range(5_000)]
    for value in values:
        redact.register(value)
    for value in values[::97]:
        assert redact.scrub(f"log {value} end") == f"log {redact.MASK} end"
    assert redact.scrub("log 0123456789abcdef-not-registered end").count(redact.MASK) == 0
