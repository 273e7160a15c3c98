"""AWS access keys as secret scanners report them (``rotator leaks ingest``).

An access key id (``AKIA...``; ``ASIA...`` for a temporary key) identifies a
key: it is in every signed request and in CloudTrail, and it is what the
IAM issuer records as a rotation's ref. gitleaks' ``aws-access-token`` rule
reports the key id alone; trufflehog's ``Raw`` is the key id, and its
``RawV2`` the key id followed by the 40-character secret key (joined by
``:`` in current versions, by nothing before).
"""

from __future__ import annotations

import re

from providers.aws.iam import KEY_ID, SECRET_KEY
from rotator.adapters import CredentialFormat, LeakedPair, SecretValue

#: An AWS access key id.
ACCESS_KEY_ID = re.compile(r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}")
#: A key id and its secret access key, written together.
_KEY_PAIR = re.compile(r"((?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}):?([A-Za-z0-9+/]{40})")


class AccessKeyFormat(CredentialFormat):
    """An IAM access key: its id is an identifier; id and secret key together are a pair."""

    def is_identifier(self, text: str) -> bool:
        """Tell whether ``text`` is exactly an access key id."""
        return ACCESS_KEY_ID.fullmatch(text) is not None

    def pair(self, text: str) -> LeakedPair | None:
        """Return the key id and the secret key, alone and as the IAM issuer stores the pair."""
        found = _KEY_PAIR.fullmatch(text)
        if found is None:
            return None
        key_id, secret_key = found.groups()
        stored = SecretValue({KEY_ID: key_id, SECRET_KEY: secret_key})
        return LeakedPair(key_id, (SecretValue(secret_key), stored))
