"""The adapter SDK: the roles an outside system plays, and what they exchange.

An adapter (in ``providers/`` or a third-party distribution) imports from
here and from :mod:`rotator.errors`, and from nothing else of rotator:

- :mod:`.roles`: ``Store``, ``Issuer``, ``Target``, ``Verifier``, ``Notifier``,
  the values they exchange (``Credential``, ``Version``, ``Permission``) and
  the registry that finds adapters through entry points;
- :mod:`.secret`: ``SecretValue``, a credential that never shows itself;
- :mod:`.durations`: the ``Duration`` type policy fields are written in;
- :mod:`.ratelimit`: client-side token buckets under a provider's quota;
- :mod:`.shutdown`: processes an adapter started, ended when rotator stops.
"""
