"""Client-side rate limits, so rotator uses a provider's published quota and never more.

A :class:`TokenBucket` lets ``rate`` calls a second through, with bursts of
up to ``burst``; a caller that finds it empty waits (on an injectable
sleeper) for the next token instead of being throttled by the provider.

The rate adapts, additive increase and multiplicative decrease (AIMD, as TCP
paces itself; botocore's ``adaptive`` retry mode is the same idea with a
CUBIC curve): it starts at its ceiling (near the documented quota, or the
operator's ``ROTATOR_RATE_LIMITS``); each throttling answer the provider
gives (:meth:`TokenBucket.throttled`) cuts it to :data:`DECREASE` of what
the bucket actually let through lately (or of its rate, if lower), at most
once per :data:`REACTION` seconds (the answers of one burst are one
signal), never below :data:`FLOOR` of the ceiling, and drops the tokens
saved up; each second since the last cut then gives back :data:`INCREASE`
of the ceiling, up to the ceiling and never past it. So a
quota shared with another client (a second rotator, a deploy script) is
found and kept to, and a quiet account is used whole again.
An adapter declares each quota it paces under as a :class:`Quota` (its
name, default rate, what the provider meters it by, which calls count and
the published figure); its ``quotas`` mapping is :func:`rates` of them.
Adapters keep one bucket per quota and scope (``limits`` names the quotas,
such as ``secretsmanager.write``; a scope is a Region, a Vault address, a
vault) in the runtime's :class:`Pacing`, so every client and every thread of
a process shares it.

A quota is also shared with the other runs on the same journal (replicas of
the service, one-shot runs beside them): the engine gives :class:`Pacing` a
``holders`` callable that renews this process's share of each quota it uses
and says how many live runs hold one (see :mod:`rotator.journal.shares`).
Each bucket's ceiling is then its quota divided by that count, so the
ceilings of all live runs add up to the quota, never more; the count is
renewed each :data:`BEAT` seconds while the process uses the quota, and asked
before the first call of a quota (a run starting beside three others paces
at a quarter from its first call, not at the whole quota).

``ROTATOR_RATE_LIMITS`` overrides the defaults:
``secretsmanager.write=25,apigateway=2`` (calls per second; ``0`` turns a
limit off).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

from rotator.errors import ConfigError

#: The environment variable that overrides the quotas adapters declare.
ENV = "ROTATOR_RATE_LIMITS"

#: What a throttling answer leaves of the rate (botocore's adaptive mode: 0.7).
DECREASE = 0.7
#: Seconds in which further throttling answers are the same signal as the first.
REACTION = 1.0
#: What each quiet second gives back, as a share of the ceiling.
INCREASE = 0.05
#: The lowest the rate goes, as a share of the ceiling.
FLOOR = 0.05
#: Seconds between two renewals of this process's shares of the quotas it uses.
BEAT = 1.0
#: Seconds without a call after which a quota is no longer in use (its share is given back).
IDLE = 2.0
#: Seconds a bucket's first call waits for a renewal under way before it joins on its own.
JOIN_WAIT = 1.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Quota:
    """One provider quota rotator paces its calls under: name, rate, scope, calls, figure.

    ``name`` is what ``ROTATOR_RATE_LIMITS`` sets it by; ``rate`` the calls
    a second rotator allows itself by default; ``scope`` what the provider
    meters it by ("account and Region", "vault"), one bucket each;
    ``calls`` the API operations that count against it, empty meaning every
    call of the service that no other quota of it names; ``documented`` the
    provider's published figure and where it is published, or "none
    published".
    """

    name: str
    rate: float
    scope: str
    calls: frozenset[str] = frozenset()
    documented: str = "none published"

    def __post_init__(self) -> None:
        if not self.name or "=" in self.name or "," in self.name:
            raise ValueError(f"quota name {self.name!r} cannot be set in {ENV}")
        if not 0 < self.rate < float("inf"):
            raise ValueError(f"quota {self.name}: rate must be a positive number")


def rates(quotas: Iterable[Quota]) -> dict[str, float]:
    """Return the default calls per second of ``quotas`` by name: an adapter's ``quotas``.

    Raises ``ValueError`` when two of them have the same name.
    """
    found: dict[str, float] = {}
    for quota in quotas:
        if quota.name in found:
            raise ValueError(f"quota {quota.name} declared twice")
        found[quota.name] = quota.rate
    return found


class TokenBucket:
    """Lets ``rate`` calls a second through, in bursts of at most ``burst``; adapts ``rate``.

    ``rate`` starts at ``ceiling`` (the quota it paces, or this process's
    share of it: :meth:`share`) and moves between ``FLOOR`` of it and it:
    down at each :meth:`throttled`, back up with time.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        #: The calls a second the quota allows this process when it paces it alone.
        self.quota = rate
        #: The most calls a second let through now: the quota, or this process's share of it.
        self.ceiling = rate
        self.rate = rate
        #: The burst given, or None: one second's worth at the current rate.
        self._burst = burst
        self._monotonic = monotonic
        self._sleep = sleep
        self._tokens = self.burst
        self._stamp = monotonic()
        #: When the rate was last cut (``None``: never), and what it was cut to.
        self._cut_at: float | None = None
        self._cut_to = rate
        #: When the calls of the last REACTION seconds were let through.
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()
        #: Seconds callers have waited in total (for figures and tests).
        self.waited = 0.0
        #: Throttling answers told (:meth:`throttled`), and the cuts they made.
        self.throttles = 0
        self.cuts = 0

    @property
    def burst(self) -> float:
        """Return the most calls let through at once: as given, or a second's worth now."""
        return self._burst if self._burst is not None else max(1.0, self.rate)

    def throttled(self) -> None:
        """Take a throttling answer from the provider: cut the rate, unless just cut.

        The cut starts from what this bucket has let through in the last
        REACTION seconds when that is below its rate (a caller sending 10
        calls a second is slowed from 10, not from a ceiling of 50), and the
        tokens saved up are dropped: the next calls wait at the new rate.
        """
        with self._lock:
            now = self._monotonic()
            self._refill(now)
            self.throttles += 1
            if self._cut_at is not None and now - self._cut_at < REACTION:
                return
            sent = len(self._sent) / REACTION
            base = min(self.rate, sent) if sent > 0 else self.rate
            self.rate = max(self.ceiling * FLOOR, base * DECREASE)
            self._cut_at, self._cut_to = now, self.rate
            self._tokens = min(self._tokens, 1.0)
            self.cuts += 1

    def share(self, holders: int) -> None:
        """Pace at a ``holders``-th of the quota (the live runs that share it, this one included).

        The rate follows the new ceiling at once when it was at the old one;
        a rate still recovering from a cut keeps growing from where it is,
        up to the new ceiling.
        """
        with self._lock:
            now = self._monotonic()
            self._refill(now)
            ceiling = self.quota / max(1, holders)
            if self.rate >= self.ceiling or self.rate > ceiling:
                self.rate = ceiling
            self.ceiling = ceiling
            self._tokens = min(self._tokens, self.burst)

    def _refill(self, now: float) -> None:
        """Add the tokens earned since the last call; raise the rate by the time since a cut."""
        if self._cut_at is not None and self.rate < self.ceiling:
            grown = self._cut_to + self.ceiling * INCREASE * (now - self._cut_at)
            self.rate = min(self.ceiling, grown)
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        while self._sent and now - self._sent[0] >= REACTION:
            self._sent.popleft()

    def acquire(self) -> float:
        """Take one token, waiting for it if needed; return the seconds waited."""
        with self._lock:
            now = self._monotonic()
            self._refill(now)
            self._tokens -= 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
            self.waited += wait
            self._sent.append(now + wait)
        if wait > 0:
            # The token is ours already (the count went negative): later
            # callers queue behind us, so waiting outside the lock is fair.
            self._sleep(wait)
        return wait


#: Renews this process's shares of the quotas given (``QUOTA@SCOPE`` keys), drops its
#: others, and returns how many live runs hold a share of each (this one included).
Holders = Callable[[Collection[str]], Mapping[str, int]]


class Pacing:
    """The token buckets of one process, one per quota and scope, each at its share of the quota.

    Without ``holders`` the process paces every quota alone. With it, a
    bucket's first call first asks ``holders`` (the process joins the
    quota, waiting at most :data:`JOIN_WAIT` seconds for a renewal under
    way), and whoever owns the pacing calls :meth:`renew` each :data:`BEAT`
    seconds (the engine's heartbeat, off the threads that call providers).
    A quota not called for :data:`IDLE` seconds is left out of the next
    renewal, which gives its share back to the other runs; ``holders`` may
    also only count them (the engine does while it has no rotation under
    way), and :meth:`rejoin` makes each quota's next call join again. A renewal that
    fails (the journal is down) is logged and never fails a call: the
    shares stay as they were, and a quota joined then is paced at the
    largest count of holders seen so far, never at the whole quota by default.
    """

    def __init__(
        self, holders: Holders | None = None, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.holders = holders
        self._monotonic = monotonic
        self._buckets: dict[str, TokenBucket] = {}
        #: When each bucket was last called.
        self._used: dict[str, float] = {}
        #: The buckets the last renewal held a share for.
        self._joined: frozenset[str] = frozenset()
        #: The largest count of holders any renewal reported.
        self._most = 1
        #: Bumped by :meth:`rejoin`: a renewal under way meanwhile marks nothing joined.
        self._epoch = 0
        self._lock = threading.Lock()
        self._renewing = threading.Lock()

    def bucket(
        self, quota: str, scope: str, rate: float, *, sleep: Callable[[float], None] = time.sleep
    ) -> TokenBucket:
        """Return the bucket of ``quota`` for ``scope``, made at ``rate``, sleeping on ``sleep``."""
        key = f"{quota}@{scope}"
        with self._lock:
            found = self._buckets.get(key)
            if found is None:
                found = TokenBucket(rate, monotonic=self._monotonic, sleep=sleep)
                self._buckets[key] = found
        return found

    def buckets(self) -> dict[str, TokenBucket]:
        """Return the buckets made so far, by ``QUOTA@SCOPE``."""
        with self._lock:
            return dict(self._buckets)

    def take(
        self, quota: str, scope: str, rate: float, *, sleep: Callable[[float], None] = time.sleep
    ) -> float:
        """Take one token of ``quota`` for ``scope``, waiting if needed; return seconds waited."""
        bucket = self.bucket(quota, scope, rate, sleep=sleep)
        key = f"{quota}@{scope}"
        with self._lock:
            self._used[key] = self._monotonic()
        if self.holders is not None and key not in self._joined:
            self.renew(joining=key)
        return bucket.acquire()

    def renew(self, *, joining: str | None = None) -> None:
        """Renew this process's shares of the quotas it uses, and re-divide their buckets.

        A ``joining`` bucket that a renewal it waited for already took in is
        not renewed again.
        """
        if self.holders is None or not self._renewing.acquire(timeout=JOIN_WAIT):
            return
        try:
            if joining is not None and joining in self._joined:
                return
            now = self._monotonic()
            with self._lock:
                using = {k for k, at in self._used.items() if now - at <= IDLE}
                epoch = self._epoch
            try:
                holders = self.holders(sorted(using))
            except Exception as exc:  # noqa: BLE001 (the journal down, or a bug: calls go on)
                log.warning("quota shares not renewed (%s): pacing by the last", type(exc).__name__)
                for key in using - self._joined:
                    self._buckets[key].share(self._most)
                self._mark_joined(self._joined | using, epoch)
                return
            for key, count in holders.items():
                found = self._buckets.get(key)
                if found is not None:
                    found.share(count)
                self._most = max(self._most, count)
            self._mark_joined(frozenset(using), epoch)
        finally:
            self._renewing.release()

    def _mark_joined(self, keys: frozenset[str], epoch: int) -> None:
        """Record ``keys`` as joined by a renewal begun at ``epoch``: none if rejoined since."""
        with self._lock:
            # What ``holders`` answered may predate the rejoin (counted, not held):
            # each quota's next call must ask again.
            self._joined = keys if epoch == self._epoch else frozenset()

    def rejoin(self) -> None:
        """Join each quota again at its next call, asking ``holders`` before that call is paced.

        For a run that begins holding shares again (its first rotation after
        none): the renewals before only counted the holders.
        """
        with self._lock:
            self._joined = frozenset()
            self._epoch += 1

    def forget(self) -> None:
        """Count every quota as unused: its next call joins it again (its share was given back)."""
        with self._renewing, self._lock:
            self._used.clear()
            self._joined = frozenset()


def limits(defaults: Mapping[str, float], env: Mapping[str, str] | None = None) -> dict[str, float]:
    """Return the calls-per-second limits: ``defaults`` with ``ROTATOR_RATE_LIMITS`` applied.

    A malformed variable leaves the defaults in force: every command checks
    it, and every name in it, before its first provider call (refusing to
    act, or warning when it only reads: see ``rotator.cli.environment``), so
    it never fails a rotation half-way.
    """
    raw = (env if env is not None else os.environ).get(ENV, "")
    try:
        return {**defaults, **parse(raw)}
    except ConfigError:
        return dict(defaults)


def parse(text: str) -> dict[str, float]:
    """Read ``ROTATOR_RATE_LIMITS``'s ``NAME=CALLS_PER_SECOND,...`` (names not checked).

    Raises ``ConfigError`` naming the first entry that is not of that form.
    """
    result: dict[str, float] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = entry.partition("=")
        try:
            rate = float(value)
        except ValueError:
            rate = -1.0
        if not sep or not name.strip() or not rate >= 0 or rate == float("inf"):
            raise ConfigError(
                f"{ENV}: {entry!r} is not NAME=CALLS_PER_SECOND (a number, 0 to turn the limit off)"
            )
        result[name.strip()] = rate
    return result
