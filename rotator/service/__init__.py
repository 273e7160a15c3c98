"""``rotator run``: the engine as a long-running service.

:mod:`.loop` keeps the due-time index and reloads policies without dying of
a bad file; :mod:`.health` serves ``/healthz``, ``/readyz`` and ``/metrics``;
:mod:`.metrics` is the Prometheus registry they read.
"""
