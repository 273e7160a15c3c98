"""``rotator check``: prove that a policy will work before it rotates anything.

Certbot's most-requested missing feature was a dry run that exercises the
deploy hooks; this is rotator's. For each policy, changing nothing anywhere:

- the store: the current version can be read; where the store can tell
  without writing, that rotator may write it (``Store.check``);
- the issuer: the current credential's identifier and the issuer's
  inventory can be read (``Issuer.inventory``);
- every target is reachable and writable in principle (``Target.check``);
- every verifier accepts the *current* credential (if it refuses the one
  consumers use today, it would refuse the new one too).

Each check ends ``ok``, ``failed`` (with the reason, never a value),
``unknown`` (it tried and could not tell: no proof either way) or
``skipped`` (an earlier check failed, or the system offers no way to check
without acting).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rotator.adapters.roles import Issuer, Store, Target, Verifier
from rotator.adapters.values import Credential, NothingToCheck, Unchecked, Version
from rotator.errors import LimitExceededError, RotatorError


class Verdict(StrEnum):
    """How one preflight check ended."""

    OK = "ok"
    FAILED = "failed"
    #: It tried and could not tell: no proof either way.
    UNKNOWN = "unknown"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Finding:
    """One preflight check of one secret."""

    secret: str
    check: str
    verdict: Verdict
    detail: str

    def as_dict(self) -> dict[str, str]:
        """Return a JSON-ready mapping."""
        return {
            "secret": self.secret,
            "check": self.check,
            "verdict": self.verdict.value,
            "detail": self.detail,
        }


def _run(secret: str, check: str, call: Callable[[], str]) -> Finding:
    """Run one check: a rotator error fails it; what could not be checked is not ``ok``."""
    try:
        said = call()
    except RotatorError as exc:
        return Finding(secret, check, Verdict.FAILED, str(exc))
    if isinstance(said, Unchecked):
        return Finding(secret, check, Verdict.UNKNOWN, str(said))
    if isinstance(said, NothingToCheck):
        return Finding(secret, check, Verdict.SKIPPED, str(said))
    return Finding(secret, check, Verdict.OK, str(said))


def check_policy(
    name: str,
    store: Store[Any],
    issuer: Issuer[Any],
    targets: Sequence[Target[Any]],
    verifiers: Sequence[Verifier[Any]],
    kept: Collection[str] = (),
) -> list[Finding]:
    """Run every check of one policy's adapters; return the findings in order.

    ``kept`` holds the refs of credentials unfinished rotations hold (the
    issuer must leave them be); with the current one they are what the next
    rotation keeps, so the issuer is asked whether it could make room.
    """
    found: list[Finding] = []
    read: list[Version | None] = []

    def read_store() -> str:
        version = store.current()
        read.append(version)
        if version is None:
            return f"{store.describe()} is readable and holds no value yet"
        return f"{store.describe()} is readable (current version {version.version_id})"

    found.append(_run(name, "store read", read_store))
    found.append(_run(name, "store write", store.check))
    current = read[0] if read else None
    if not read:
        found.append(Finding(name, "issuer", Verdict.SKIPPED, "the store could not be read"))
    else:

        def read_issuer() -> str:
            ref = issuer.ref_of(current.value) if current is not None else None
            known = issuer.inventory()
            blocked = issuer.blocks({*kept, *([ref] if ref else [])})
            if blocked is not None:
                # What the next rotation's first step would meet: say it now.
                raise LimitExceededError(
                    f"the next rotation cannot mint: {blocked}",
                    provider=issuer.kind,
                    operation="check",
                )
            what = f"current credential {ref}" if ref else "no identifier in the current value"
            return f"{issuer.kind}: {what}; {len(known)} credential(s) in its slot"

        found.append(_run(name, "issuer", read_issuer))
    for number, target in enumerate(targets, start=1):
        found.append(_run(name, f"target {number} {target.describe()}", target.check))
    for verifier in verifiers:
        check = f"verify {verifier.describe()}"
        if current is None:
            found.append(Finding(name, check, Verdict.SKIPPED, "no current credential to try"))
            continue
        credential = Credential(current.value, issuer.ref_of(current.value))

        def verify(verifier: Verifier[Any] = verifier, credential: Credential = credential) -> str:
            verifier.verify(credential)
            return "accepts the current credential"

        found.append(_run(name, check, verify))
    return found
