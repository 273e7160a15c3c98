"""The journal: rotator's durable memory, on SQLite or PostgreSQL.

It holds each rotation's progress and events, the leases that keep two
replicas off one secret, the alert outbox, and the tamper-evident audit
chain (:mod:`.audit`: records, hashes, anchors and exports). Every change of
state goes through :func:`rotator.lifecycle.check`, and every decision the
engine reads is sealed, so ``rotator audit verify`` sees an edited row.
"""
