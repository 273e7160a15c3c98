"""This run's share of each provider quota, held in the journal beside the other runs' shares.

The adapters pace their calls through the runtime's
:class:`rotator.adapters.ratelimit.Pacing`; this gives it the journal's
:class:`rotator.journal.shares.QuotaShares` to count the runs that divide
each quota. While a pass (or a rotation by hand) is under way, a heartbeat
thread renews this run's shares each second (off the threads that call
providers, so a slow journal never holds a call up past a join, and a run
whose calls all wait on their bucket still renews). A run holds shares only
while one of its rotations is under way (:meth:`QuotaSharing.rotating`): a
pass whose workers are only looking at secrets other runs have rotated, or
waiting on their leases, or that has no more to rotate, leaves its shares
at the next renewal, so the runs still rotating divide the quota without
it, and its next rotation joins again before its first call. Outside a
rotation (a plan, a check, the watch between passes, such a pass) the
engine counts the runs rotating without writing anything and paces at its
share beside them; the shares are given back at once when the pass ends.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager

import structlog

from rotator.adapters.ratelimit import BEAT, Pacing
from rotator.errors import JournalError
from rotator.journal.journal import Journal

log = structlog.get_logger("rotator.engine")


class QuotaSharing:
    """Holds this run's quota shares in the journal while it rotates; gives them back after."""

    def __init__(self, journal: Journal, owner: str) -> None:
        """Hold shares in ``journal`` under ``owner`` (the run's lease owner id)."""
        self.journal = journal
        self.owner = owner
        #: What the adapters pace their calls with (lent through the runtime).
        self.pacing = Pacing(self.holders)
        self._runs = 0
        #: Rotations under way (steps being taken): shares are held only while there is one.
        self._rotations = 0
        #: Whether a share may be held (renewed since the run began): to give back.
        self._held = False
        self._lock = threading.Lock()
        self._stop: threading.Event | None = None

    def holders(self, quotas: Collection[str]) -> dict[str, int]:
        """Renew this run's shares of ``quotas`` while rotating; return how many runs hold each.

        Outside a rotation nothing is written (``plan``, ``check`` and a dry
        run change nothing, the journal included): the runs rotating are
        counted, this one added, on a journal that exists. A share still
        held from a rotation that has ended is given back first.
        """
        if not self._rotations:
            if self._held:
                self.journal.shares.release(self.owner)
                self._held = False
            if not quotas or not self.journal.exists():
                return dict.fromkeys(quotas, 1)
            return self.journal.shares.count(self.owner, quotas)
        if quotas:
            self._held = True
        return self.journal.shares.renew(self.owner, quotas)

    @contextmanager
    def rotating(self) -> Iterator[None]:
        """Count a rotation under way (its steps being taken): shares are held only while one is.

        The first rotation after none joins each quota again at its next call
        (the renewals before only counted); after the last, the next renewal
        gives the shares back.
        """
        with self._lock:
            self._rotations += 1
            if self._rotations == 1:
                self.pacing.rejoin()
        try:
            yield
        finally:
            with self._lock:
                self._rotations -= 1

    @contextmanager
    def running(self) -> Iterator[None]:
        """Count a run (a pass, a rotation by hand) under way, renewing; the last gives back."""
        with self._lock:
            self._runs += 1
            if self._runs == 1:
                # Quotas called before (by a plan, counted only) are joined at their next call.
                self.pacing.forget()
                self._stop = threading.Event()
                threading.Thread(
                    target=self._beat, args=(self._stop,), name="quota-shares", daemon=True
                ).start()
        try:
            yield
        finally:
            with self._lock:
                self._runs -= 1
                if self._runs == 0:
                    if self._stop is not None:
                        self._stop.set()
                    self.give_back()

    def _beat(self, stop: threading.Event) -> None:
        """Renew the shares each second until ``stop`` is set (the heartbeat thread)."""
        while not stop.wait(BEAT):
            self.pacing.renew()

    def give_back(self) -> None:
        """Drop this run's shares: the other runs divide the quotas without it from now on."""
        self.pacing.forget()
        if not self._held:
            return
        self._held = False
        try:
            self.journal.shares.release(self.owner)
        except JournalError as exc:
            # They expire on their own (rotator.journal.shares.TTL).
            log.warning("quota shares not given back", error=type(exc).__name__)
