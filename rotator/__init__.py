"""rotator: a key rotation orchestrator (the engine; adapters live in ``providers``)."""

__version__ = "0.1.0"
