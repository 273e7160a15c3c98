"""A throwaway PostgreSQL server: the installed binaries, a fresh data directory, a loopback port.

:class:`~rotator.sandbox.postgresql.server.PostgreSqlServer` is what the
tests read a server log from (every statement is logged, so a password sent
in the clear would show) and what ``rotator sandbox`` rotates a database
password against (:mod:`.sandbox`), when one can be started.
"""
