"""This run's share of each provider quota, held in the journal beside the other runs' shares.

The adapters pace their calls through the runtime's
:class:`rotator.adapters.ratelimit.Pacing`; this gives it the journal's
:class:`rotator.journal.shares.QuotaShares` to count the runs that divide
each quota, and gives this run's shares back as soon as its last rotation
ends (the service between passes, a one-shot run at its end), so the others
need not wait for the shares to expire.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager

import structlog

from rotator.adapters.ratelimit import Pacing
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
        self._lock = threading.Lock()

    def holders(self, quotas: Collection[str]) -> dict[str, int]:
        """Renew this run's shares of ``quotas``; return how many live runs hold each.

        Outside a rotation (``plan``, ``check``, a dry run: commands that
        change nothing, the journal included) the engine paces alone and
        holds no share.
        """
        if not self._runs:
            return dict.fromkeys(quotas, 1)
        return self.journal.shares.renew(self.owner, quotas)

    @contextmanager
    def running(self) -> Iterator[None]:
        """Count a run (a pass, a rotation by hand) under way; the last to end gives shares back."""
        with self._lock:
            self._runs += 1
            first = self._runs == 1
        if first:
            # Quotas called before (by a plan, alone) are joined again at their next call.
            self.pacing.forget()
        try:
            yield
        finally:
            with self._lock:
                self._runs -= 1
                last = self._runs == 0
            if last:
                self.give_back()

    def give_back(self) -> None:
        """Drop this run's shares: the other runs divide the quotas without it from now on."""
        self.pacing.forget()
        try:
            self.journal.shares.release(self.owner)
        except JournalError as exc:
            # They expire on their own (rotator.journal.shares.TTL).
            log.warning("quota shares not given back", error=type(exc).__name__)
