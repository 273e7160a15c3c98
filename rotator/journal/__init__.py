"""The journal: rotator's durable memory, on SQLite or PostgreSQL.

:mod:`.journal` holds :class:`~rotator.journal.journal.Journal`, which opens
the database and keeps each rotation's progress and events; its other parts
are attributes of it, each in its own module:

- :mod:`.records`: what is recorded (Rotation, Event, Lease...) and how rows are sealed;
  :mod:`.rows`: the summaries' rows, decoded from the driver's own;
- :mod:`.schema`: the tables and their versioned migrations;
- :mod:`.database`: connecting, reading, writing, migrating; :mod:`.keys`: the key file;
- :mod:`.leases`: ``journal.leases``, one rotation of a secret at a time;
- :mod:`.trail`: ``journal.trail``, the audit chain as stored (:mod:`.audit`:
  its records, hashes, anchors and exports);
- :mod:`.tampering`: ``journal.tampering``, which rows are not as rotator wrote them;
- :mod:`.outbox`: ``journal.alerts``; :mod:`.usage`: ``journal.usage``.

Every change of state goes through :func:`rotator.lifecycle.destination`,
and every decision the engine reads is sealed, so ``rotator audit verify``
sees an edited row.
"""
